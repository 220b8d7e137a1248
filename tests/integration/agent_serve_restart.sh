#!/bin/sh
# agent_serve_restart.sh — a dispatcher killed and restarted gets the worker and its job back
# within one heartbeat period; /health answers throughout; one log line per state change.
. "$(dirname -- "$0")/agent_serve_lib.sh"

PERIOD=1000
SLACK=400	# the dispatcher's own start, one re-registration, the poll's step

start_dispatcher || exit 1
start_agent STAT_CPU_INTERVAL=$PERIOD || exit 1
sleeper
job_file job-r1 "$SLEEPER" plex-transcode-r1 1700000200
check "registered with its running job" wait_for 3 running_job job-r1

# A drain the operator asked for reaches the agent with the next heartbeat
# answer, and the agent repeats it when it registers again.
check "drain the worker (200)" \
    [ "$(status POST /api/v1/workers/agent-test-1/drain '{"drain":true}')" = 200 ]
drained() { [ "$(hjson "j['drain']")" = True ]; }
check "/health learns the drain within a heartbeat" wait_for 2 drained
check "logged once" [ "$(count 'the dispatcher drains this worker')" = 1 ]

for round in 1 2; do
	kill -KILL "$DISP_PID"
	wait "$DISP_PID" 2>/dev/null
	DISP_PID=
	sleep 2.5	# two heartbeats and more into the void
	t0=$(now_ms)
	check "round $round: /health answers at once while the dispatcher is down" health
	t1=$(now_ms)
	check "round $round: ... in $((t1 - t0)) ms" [ $((t1 - t0)) -lt 300 ]
	check "round $round: /health says unreachable, still registered, 1 job" \
	    [ "$(json "(j['dispatcher'], j['registered'], j['jobs'], j['last_heartbeat_age_ms'] > 2000)")" = "('unreachable', True, 1, True)" ]
	check "round $round: one 'unreachable' line for the whole outage" \
	    [ "$(count 'unreachable')" = $round ]
	t0=$(now_ms)
	start_dispatcher || exit 1
	i=0
	while [ $i -lt 100 ] && ! running_job job-r1; do
		sleep 0.03
		i=$((i + 1))
	done
	t1=$(now_ms)
	check "round $round: worker and job back ($((t1 - t0)) ms <= $PERIOD + $SLACK)" \
	    [ $((t1 - t0)) -le $((PERIOD + SLACK)) ]
	check "round $round: the job is running on agent-test-1" running_job job-r1
	check "round $round: its session and start time survived" \
	    [ "$(jobs_json "[(x['session'], x['started']) for x in j['running']]")" = "[('plex-transcode-r1', 1700000200)]" ]
	[ $round = 1 ] && want=draining || want=ready
	check "round $round: the worker is $want" \
	    [ "$(worker agent-test-1 "w['state']")" = $want ]
	check "round $round: /health registered, up" wait_for 2 sh -c \
	    "curl -fsS -m 1 '$AGENT_URL/health' | grep -q '\"registered\":true,\"dispatcher\":\"up\"'"
	if [ $round = 1 ]; then
		check "round 1: the drain survived the restart" \
		    [ "$(worker agent-test-1 "w['draining']")" = True ]
		status POST /api/v1/workers/agent-test-1/drain '{"drain":false}' >/dev/null
		undrained() { [ "$(hjson "j['drain']")" = False ]; }
		check "undrained: /health learns it within a heartbeat" wait_for 2 undrained
	else
		check "round 2: not draining after the restart" \
		    [ "$(worker agent-test-1 "w['draining']")" = False ]
	fi
done

check "each restart logged as 'does not know' once" [ "$(count 'does not know agent-test-1')" = 2 ]
check "three registrations logged in all" [ "$(count 'registered with')" = 3 ]
check "10 log lines in all: start, registration, drain, undrain, 3 per outage ($(count ' (warn|info|error) '))" \
    [ "$(count ' (warn|info|error) ')" = 10 ]
stop_agent "$AGENT_PID"
check "exit status 0 after SIGTERM" [ "$AGENT_STATUS" = 0 ]
finish
