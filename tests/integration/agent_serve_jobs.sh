#!/bin/sh
# agent_serve_jobs.sh — job state files reach GET /api/v1/jobs within one heartbeat, and leave it.
. "$(dirname -- "$0")/agent_serve_lib.sh"

PERIOD=1000
SLACK=300	# one HTTP exchange, the poll's own step, a loaded machine

start_dispatcher || exit 1
start_agent STAT_CPU_INTERVAL=$PERIOD || exit 1
check "registered" wait_for 3 has_worker agent-test-1

# Files that are not running jobs: a dead pid, not JSON, a bad id, a temp file.
sh -c 'exit 0' &
dead=$!
wait $dead
job_file job-stale "$dead"
printf 'not json' >"$WORK/run/jobs/job-junk.json"
printf '{"id":"../x","pid":%s}' $$ >"$WORK/run/jobs/bad-id.json"
printf '{"id":"job-tmp","pid":%s}' $$ >"$WORK/run/jobs/job-tmp.json.tmp"

# A running job: appears within one heartbeat period.
sleeper
J1=$SLEEPER
t0=$(now_ms)
job_file job-a1 "$J1" plex-transcode-a1 1700000100.5
i=0
while [ $i -lt 60 ] && ! running_job job-a1; do
	sleep 0.05
	i=$((i + 1))
done
t1=$(now_ms)
check "a job state file appears in /api/v1/jobs" running_job job-a1
check "within one heartbeat ($((t1 - t0)) ms <= $PERIOD + $SLACK)" \
    [ $((t1 - t0)) -le $((PERIOD + SLACK)) ]
check "its session and start time are the file's" \
    [ "$(jobs_json "[(x['session'], x['started']) for x in j['running'] if x['id']=='job-a1']")" = "[('plex-transcode-a1', 1700000100.5)]" ]
check "stale, malformed and temporary files are not jobs" \
    [ "$(jobs_json "sorted(x['id'] for x in j['running'])")" = "['job-a1']" ]
check "the worker counts 1 task" [ "$(worker agent-test-1 "w['tasks']")" = 1 ]
check "/health counts 1 running job" [ "$(hjson "j['jobs']")" = 1 ]

# A second job, then the first one's transcoder dies (its file stays behind).
sleeper
J2=$SLEEPER
job_file job-a2 "$J2"
check "a second job appears" wait_for 2 running_job job-a2
kill "$J1"
wait "$J1" 2>/dev/null
t0=$(now_ms)
gone() { ! running_job job-a1; }
i=0
while [ $i -lt 60 ] && ! gone; do
	sleep 0.05
	i=$((i + 1))
done
t1=$(now_ms)
check "a job whose process died leaves the running list ($((t1 - t0)) ms)" \
    [ $((t1 - t0)) -le $((PERIOD + SLACK)) ]
check "the dispatcher ended it (outcome 'ended')" \
    [ "$(jobs_json "[x.get('outcome') for x in j['recent'] if x['id']=='job-a1']")" = "['ended']" ]

# Removing the file ends the job as well.
rm "$WORK/run/jobs/job-a2.json"
check "a removed job file ends the job" wait_for 2 sh -c \
    "! curl -fsS -m 1 '$DISP_URL/api/v1/jobs' | grep -q '\"id\":\"job-a2\",[^}]*\"state\":\"running\"'"
check "no running jobs left" [ "$(jobs_json "j['running_count']")" = 0 ]
check "/health counts 0 running jobs" wait_for 2 sh -c \
    "curl -fsS -m 1 '$AGENT_URL/health' | grep -q '\"jobs\":0'"

# The run dir's jobs folder missing altogether: no jobs, no trouble.
rm -rf "$WORK/run/jobs"
sleep 1.2
check "without a jobs folder the worker keeps beating" \
    [ "$(worker agent-test-1 "(w['state'], w['last_seen_ms'] < 1500)")" = "('ready', True)" ]
check "and logs no warning about it" [ "$(count 'cannot read')" = 0 ]
stop_agent "$AGENT_PID"
check "exit 0 after SIGTERM" [ "$AGENT_STATUS" = 0 ]
finish
