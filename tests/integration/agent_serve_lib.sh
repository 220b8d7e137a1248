#!/bin/sh
# agent_serve_lib.sh — helpers for agent_serve_*.sh; running it alone does nothing.
#
# On top of dispatcher_lib.sh (a dispatcher on loopback, bounded waits,
# cleanup in a trap): agents on ports next to the dispatcher's (override:
# AGENT_TEST_PORT), each with its own host key, run dir and log, stopped
# by pid in the same trap.

[ "$(basename -- "$0")" != agent_serve_lib.sh ] || exit 0
. "$(dirname -- "$0")/dispatcher_lib.sh"

AGENT_BIN=${AGENT_BIN:-$TOP/${BUILD:-build}/clusterplex-agent}
AGENT_PORT=${AGENT_TEST_PORT:-$((DISP_PORT + 1))}
AGENT_URL=http://127.0.0.1:$AGENT_PORT
AGENT_PID=
AGENT_PIDS=
AGENT_STATUS=
EXTRA_PIDS=

ssh-keygen -q -t ed25519 -N '' -C agent-test -f "$WORK/hostkey" || exit 1
mkdir -p "$WORK/run/jobs"
# A stand-in transcoder: only its -version line matters here.
printf '#!/bin/sh\necho "ffmpeg version test-5.1 Copyright"\n' >"$WORK/transcoder"
chmod 755 "$WORK/transcoder"

cleanup() {
	for p in $AGENT_PIDS $EXTRA_PIDS $DISP_PID; do
		kill "$p" 2>/dev/null
	done
	for p in $AGENT_PIDS $EXTRA_PIDS $DISP_PID; do
		wait "$p" 2>/dev/null
	done
	[ -n "${KEEP_WORK:-}" ] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}

# finish, as in dispatcher_lib.sh, and no sanitizer report in any log
# (an ASan+UBSan build reports there; see `make BUILD=build-san SAN=1`).
finish() {
	if grep -qE 'Sanitizer|runtime error:' "$WORK"/*.log 2>/dev/null; then
		not_ok "sanitizer reports in the logs"
		grep -hE -A20 'Sanitizer|runtime error:' "$WORK"/*.log | head -60
	fi
	echo "$PASSES passed, $FAILS failed"
	[ "$FAILS" -eq 0 ]
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# sleep_until MS: sleeps until now_ms reaches MS (at once when it has).
sleep_until() {
	r=$(( $1 - $(now_ms) ))
	[ $r -le 0 ] || sleep "$((r / 1000)).$(printf %03d $((r % 1000)))"
}

# start_agent [VAR=value...]: an agent whose /health answers within 5 s;
# its log is $WORK/agent.log unless AGENT_LOG says otherwise.
start_agent() {
	env ORCHESTRATOR_URL="$DISP_URL" CLUSTERPLEX_TOKEN="$TOKEN" \
	    LISTENING_PORT="$AGENT_PORT" STAT_CPU_INTERVAL=500 \
	    CLUSTERPLEX_WORKER_NAME=agent-test-1 \
	    CLUSTERPLEX_HOST_KEY_FILE="$WORK/hostkey.pub" \
	    CLUSTERPLEX_RUN_DIR="$WORK/run" TRANSCODER_PATH="$WORK" \
	    TRANSCODER_NAME=transcoder "$@" "$AGENT_BIN" serve \
	    >>"${AGENT_LOG:-$WORK/agent.log}" 2>&1 &
	AGENT_PID=$!
	AGENT_PIDS="$AGENT_PIDS $AGENT_PID"
	port=$(printf '%s\n' "$@" | sed -n 's/^LISTENING_PORT=//p')
	i=0
	while [ $i -lt 50 ]; do
		curl -fsS -m 1 "http://127.0.0.1:${port:-$AGENT_PORT}/health" \
		    >/dev/null 2>&1 && return 0
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	echo "agent did not start:" >&2
	cat "${AGENT_LOG:-$WORK/agent.log}" >&2
	return 1
}

# alive PID: running, not a zombie waiting for us.
alive() {
	[ -e "/proc/$1" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# stop_agent PID [SIGNAL] [SECONDS]: signals it and waits at most SECONDS
# (default 5) for it to exit; AGENT_STATUS is its exit status, or "hung"
# (then it is killed).
stop_agent() {
	kill -"${2:-TERM}" "$1" 2>/dev/null
	i=0
	while [ $i -lt $(( ${3:-5} * 20 )) ] && alive "$1"; do
		sleep 0.05
		i=$((i + 1))
	done
	if alive "$1"; then
		kill -KILL "$1" 2>/dev/null
		wait "$1" 2>/dev/null
		AGENT_STATUS=hung
	else
		wait "$1"
		AGENT_STATUS=$?
	fi
	AGENT_PIDS=$(printf '%s\n' $AGENT_PIDS | grep -vx "$1" | tr '\n' ' ')
}

# health [PORT]: the agent's /health into $WORK/body; fails unless 200 within 1 s.
health() {
	curl -fsS -m 1 -o "$WORK/body" "http://127.0.0.1:${1:-$AGENT_PORT}/health"
}

# hjson EXPR [PORT]: a Python expression on the agent's /health (as j).
hjson() {
	health "$2" && json "$1"
}

# workers_json EXPR: a Python expression on GET /api/v1/workers (as j).
workers_json() {
	curl -fsS -m 1 -o "$WORK/body" "$DISP_URL/api/v1/workers" && json "$1"
}

# jobs_json EXPR: a Python expression on GET /api/v1/jobs (as j).
jobs_json() {
	curl -fsS -m 1 -o "$WORK/body" "$DISP_URL/api/v1/jobs" && json "$1"
}

# worker NAME EXPR: EXPR on that worker's entry (as w), "None" when absent.
worker() {
	workers_json "next((($2) for w in j['workers'] if w['name']=='$1'), None)"
}

has_worker() { [ "$(worker "$1" True)" = True ]; }
no_worker() { [ "$(worker "$1" True)" = None ]; }

# running_job ID: the dispatcher lists that job as running.
running_job() {
	[ "$(jobs_json "[x['worker'] for x in j['running'] if x['id']=='$1']")" = "['${2:-agent-test-1}']" ]
}

# count REGEX [FILE]: lines of the agent's log matching REGEX.
count() { grep -Ec -- "$1" "${2:-$WORK/agent.log}"; }

# job_file ID PID [SESSION] [STARTED]: a job state file as the job service writes it.
job_file() {
	printf '{"id":"%s","session":"%s","pid":%s,"started":%s}\n' "$1" \
	    "${3:-sess-$1}" "$2" "${4:-1700000000}" >"$WORK/run/jobs/$1.json.tmp"
	mv "$WORK/run/jobs/$1.json.tmp" "$WORK/run/jobs/$1.json"
}

# A process standing in for a running transcoder; stopped in cleanup.
sleeper() {
	sleep 120 &
	EXTRA_PIDS="$EXTRA_PIDS $!"
	SLEEPER=$!
}
