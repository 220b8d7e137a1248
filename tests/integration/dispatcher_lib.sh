#!/bin/sh
# dispatcher_lib.sh — helpers the dispatcher_*.sh tests source; running it alone does nothing.
#
# Every test starts its own dispatcher on loopback, on a port derived from
# the branch name (override: DISP_TEST_PORT), bounds every wait, and stops
# what it started in an EXIT trap.

[ -n "${DISP_LIB_SOURCED:-}" ] || [ "$(basename -- "$0")" != dispatcher_lib.sh ] || exit 0
DISP_LIB_SOURCED=1

TOP=$(cd "$(dirname -- "$0")/../.." && pwd)
DISP_BIN=${DISP_BIN:-$TOP/${BUILD:-build}/clusterplex-dispatcher}
# Two runners on one machine (CPX_CLUSTER differs) use other ports.
DISP_PORT=${DISP_TEST_PORT:-$((13563 + $(printf '%s' "${CPX_CLUSTER:-}" |
	cksum | awk '{ print ($1 % 70) * 100 }')))}
DISP_URL=http://127.0.0.1:$DISP_PORT
TOKEN=dispatcher-test-token-5f2a
KEY="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDisp0atcherTestKey0000 test"
WORK=$(mktemp -d /tmp/cpx-dispatcher-test.XXXXXX)
DISP_PID=
FAILS=0
PASSES=0

cleanup() {
	if [ -n "$DISP_PID" ]; then
		kill "$DISP_PID" 2>/dev/null
		wait "$DISP_PID" 2>/dev/null
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

ok() { PASSES=$((PASSES + 1)); echo "ok - $*"; }
not_ok() { FAILS=$((FAILS + 1)); echo "not ok - $*"; }

# check DESCRIPTION COMMAND...: one test line.
check() {
	desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# matches REGEX COMMAND...: the command's output matches the extended regex.
matches() {
	re=$1
	shift
	"$@" | grep -Eq -- "$re"
}

finish() {
	echo "$PASSES passed, $FAILS failed"
	[ "$FAILS" -eq 0 ]
}

# start_dispatcher [VAR=value...]: starts it and waits (<= 5 s) for /health.
start_dispatcher() {
	env CLUSTERPLEX_TOKEN=$TOKEN LISTENING_PORT=$DISP_PORT \
	    CLUSTERPLEX_LISTEN_ADDRESS=127.0.0.1 "$@" "$DISP_BIN" \
	    >>"$WORK/dispatcher.log" 2>&1 &
	DISP_PID=$!
	i=0
	while [ $i -lt 50 ]; do
		curl -fsS -m 1 "$DISP_URL/health" >/dev/null 2>&1 && return 0
		kill -0 "$DISP_PID" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	echo "dispatcher did not start:" >&2
	cat "$WORK/dispatcher.log" >&2
	return 1
}

stop_dispatcher() {
	kill "$DISP_PID" 2>/dev/null
	wait "$DISP_PID" 2>/dev/null
	DISP_PID=
}

# api METHOD PATH [BODY] [auth|noauth|TOKEN]: prints "STATUS BODY".
api() {
	case ${4:-auth} in
	auth) hdr="Authorization: Bearer $TOKEN" ;;
	noauth) hdr="X-None: 1" ;;
	*) hdr="Authorization: Bearer $4" ;;
	esac
	curl -sS -m 5 -o "$WORK/body" -w '%{http_code}' -X "$1" -H "$hdr" \
	    ${3:+--data-binary "$3"} "$DISP_URL$2" >"$WORK/code" 2>/dev/null
	printf '%s %s\n' "$(cat "$WORK/code")" "$(cat "$WORK/body" 2>/dev/null)"
}

# status METHOD PATH [BODY] [AUTH]: prints the status code only.
status() { api "$@" | cut -d' ' -f1; }

# register NAME [INTERVAL_MS] [JOBS_JSON]
register() {
	api POST /api/v1/workers "{\"name\":\"$1\",\"ssh\":{\"host\":\"127.0.0.1\",
	    \"port\":22,\"user\":\"cpx\",\"host_key\":\"$KEY\"},\"cpus\":2,
	    \"bench\":1000,\"max_tasks\":4,\"interval_ms\":${2:-2000},
	    \"jobs\":${3:-[]}}"
}

# json EXPR: evaluates a Python expression on the last response body (as j).
json() {
	python3 -c "import json,sys; j=json.load(open('$WORK/body')); print($1)"
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds.
wait_for() {
	limit=$(( $1 * 10 ))
	shift
	i=0
	while [ $i -lt $limit ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
