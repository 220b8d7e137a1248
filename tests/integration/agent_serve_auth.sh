#!/bin/sh
# agent_serve_auth.sh — wrong or missing token, a taken name, bad settings: one clear line
# each, the agent keeps serving /health, and no token ever reaches a log.
. "$(dirname -- "$0")/agent_serve_lib.sh"

WRONG=wrong-token-7c1e-agent-test

start_dispatcher || exit 1

# Wrong token: refused, said once, retried every 5 s.
AGENT_LOG=$WORK/agent-wrong.log
start_agent CLUSTERPLEX_TOKEN=$WRONG CLUSTERPLEX_LOG_LEVEL=debug || exit 1
A1=$AGENT_PID
refused() { [ "$(count 'refused us \(HTTP 401' "$AGENT_LOG")" -ge 1 ]; }
check "wrong token: a clear error line" wait_for 3 refused
check "... naming the cause" \
    [ "$(count 'error .*refused us \(HTTP 401: the bearer token is not CLUSTERPLEX_TOKEN\): this CLUSTERPLEX_TOKEN is not the dispatcher.s; retrying every 5 s' "$AGENT_LOG")" = 1 ]
check "/health: unauthorized, not registered" \
    [ "$(hjson "(j['status'], j['dispatcher'], j['registered'])")" = "('ok', 'unauthorized', False)" ]
check "the worker is not registered" no_worker agent-test-1

# No token at all, against a dispatcher that needs one.
AGENT_LOG=$WORK/agent-none.log
start_agent CLUSTERPLEX_TOKEN= LISTENING_PORT=$((AGENT_PORT + 1)) \
    CLUSTERPLEX_WORKER_NAME=agent-test-2 || exit 1
A2=$AGENT_PID
needs() { [ "$(count 'it needs CLUSTERPLEX_TOKEN, which is not set here' "$AGENT_LOG")" = 1 ]; }
check "no token: a line saying the dispatcher needs one" wait_for 3 needs
check "... and a warning at start" \
    [ "$(count 'warn .*CLUSTERPLEX_TOKEN is not set' "$AGENT_LOG")" = 1 ]

# Two attempts each (5 s apart), still one line each.
sleep 5.5
check "after a retry, still one refusal line (wrong token)" \
    [ "$(count 'refused us' "$WORK/agent-wrong.log")" = 1 ]
check "after a retry, still one refusal line (no token)" \
    [ "$(count 'refused us' "$WORK/agent-none.log")" = 1 ]
check "... though it tried again (debug: $(count 'debug .*registration: HTTP 401' "$WORK/agent-wrong.log") attempts)" \
    [ "$(count 'debug .*registration: HTTP 401' "$WORK/agent-wrong.log")" -ge 2 ]
check "both agents still run" alive "$A1"
check "... and answer /health" health $((AGENT_PORT + 1))

# The right token: the same agent binary registers (proves the test's setup).
stop_agent "$A1"
check "wrong-token agent: exit 0 on SIGTERM" [ "$AGENT_STATUS" = 0 ]
stop_agent "$A2"
check "no-token agent: exit 0 on SIGTERM" [ "$AGENT_STATUS" = 0 ]
AGENT_LOG=$WORK/agent-a.log
start_agent || exit 1
A3=$AGENT_PID
check "the right token registers" wait_for 3 has_worker agent-test-1

# The same name from another SSH endpoint: 409, said once, the first keeps it.
AGENT_LOG=$WORK/agent-dup.log
start_agent LISTENING_PORT=$((AGENT_PORT + 1)) \
    CLUSTERPLEX_SSH_ADDRESS=127.0.0.2:2222 || exit 1
A4=$AGENT_PID
conflict() { [ "$(count 'refused the name agent-test-1 \(HTTP 409' "$AGENT_LOG")" = 1 ]; }
check "a taken name: one line saying so" wait_for 3 conflict
check "... and how to fix it" \
    [ "$(count 'CLUSTERPLEX_WORKER_NAME' "$AGENT_LOG")" = 1 ]
check "/health of the second: name-conflict" \
    [ "$(hjson "j['dispatcher']" $((AGENT_PORT + 1)))" = name-conflict ]
check "the first keeps its endpoint" \
    [ "$(worker agent-test-1 "w['ssh']['host']")" = 127.0.0.1 ]
stop_agent "$A4"
check "the refused twin: exit 0 on SIGTERM" [ "$AGENT_STATUS" = 0 ]
stop_agent "$A3"
check "the registered one: exit 0 on SIGTERM" [ "$AGENT_STATUS" = 0 ]

# No token in any log, under any spelling the logs could carry it.
for f in "$WORK"/*.log; do
	check "no token in $(basename "$f")" sh -c \
	    "! grep -qF -e '$TOKEN' -e '$WRONG' '$f'"
done

# Settings that are wrong: exit 78 and one line naming the variable or file.
bad() {
	: >"$WORK/bad.log"
	env ORCHESTRATOR_URL="$DISP_URL" LISTENING_PORT=$((AGENT_PORT + 3)) \
	    CLUSTERPLEX_HOST_KEY_FILE="$WORK/hostkey.pub" \
	    CLUSTERPLEX_RUN_DIR="$WORK/run" "$@" timeout 5 "$AGENT_BIN" serve \
	    >"$WORK/bad.log" 2>&1
	echo "$? $(grep -c . "$WORK/bad.log")"
}
check "ORCHESTRATOR_URL not http: 78, one line" \
    [ "$(bad ORCHESTRATOR_URL=ftp://x)" = "78 1" ]
check "... naming the value" grep -q '"ftp://x" is not an http:// URL' "$WORK/bad.log"
check "ORCHESTRATOR_URL empty: 78" [ "$(bad ORCHESTRATOR_URL=)" = "78 1" ]
check "host key file missing: 78, one line" \
    [ "$(bad CLUSTERPLEX_HOST_KEY_FILE=/nonexistent/key.pub)" = "78 1" ]
grep -q 'cannot read host key /nonexistent/key.pub' "$WORK/bad.log" &&
    ok "... naming the file" || not_ok "... naming the file"
check "a private key instead of the .pub: 78" \
    [ "$(bad CLUSTERPLEX_HOST_KEY_FILE="$WORK/hostkey")" = "78 1" ]
check "CLUSTERPLEX_SSH_ADDRESS malformed: 78" \
    [ "$(bad CLUSTERPLEX_SSH_ADDRESS=host:notaport)" = "78 1" ]
check "STAT_CPU_INTERVAL=50: 78" [ "$(bad STAT_CPU_INTERVAL=50)" = "78 1" ]
check "LISTENING_PORT=0: 78" [ "$(bad LISTENING_PORT=0)" = "78 1" ]
python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(1)
time.sleep(10)
' $((AGENT_PORT + 3)) &
EXTRA_PIDS="$EXTRA_PIDS $!"
held() { ss -Htln "sport = :$((AGENT_PORT + 3))" | grep -q LISTEN; }
wait_for 3 held
check "health port taken: exit 1, one line" [ "$(bad)" = "1 1" ]
finish
