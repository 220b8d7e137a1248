#!/bin/sh
# agent_serve_down.sh — no dispatcher at start, then a dispatcher that never answers:
# the agent keeps retrying, /health keeps answering, a stop stays bounded.
. "$(dirname -- "$0")/agent_serve_lib.sh"

# No dispatcher at all.
start_agent || exit 1
A1=$AGENT_PID
check "/health answers with no dispatcher" health
check "/health: not registered, no heartbeat yet" \
    [ "$(json "(j['status'], j['registered'], j['last_heartbeat_age_ms'])")" = "('ok', False, None)" ]
sleep 4	# attempts at ~0, 0.5, 1.5 and 3.5 s
check "/health: dispatcher unreachable" [ "$(hjson "j['dispatcher']")" = unreachable ]
check "4 s of retries: one 'unreachable' line" [ "$(count unreachable)" = 1 ]
check "the line says why and that it retries" \
    [ "$(count 'unreachable \(POST http://127.0.0.1:[0-9]+/api/v1/workers: Connection refused\); retrying')" = 1 ]
check "still running" alive "$A1"
t0=$(now_ms)
start_dispatcher || exit 1
check "registers once the dispatcher comes up (back-off <= 5 s)" wait_for 6 has_worker agent-test-1
t1=$(now_ms)
check "... $((t1 - t0)) ms after it started" [ $((t1 - t0)) -le 5500 ]
check "/health: registered, up" \
    [ "$(hjson "(j['registered'], j['dispatcher'])")" = "(True, 'up')" ]
stop_agent "$A1"
check "exit 0 after SIGTERM" [ "$AGENT_STATUS" = 0 ]
stop_dispatcher

# A "dispatcher" that accepts connections, counts them, and never answers.
SLOW_PORT=$((AGENT_PORT + 2))
python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
held = []
while True:
    held.append(s.accept()[0])
    with open(sys.argv[2], "w") as f:
        f.write("%d\n" % len(held))
' "$SLOW_PORT" "$WORK/accepted" &
EXTRA_PIDS="$EXTRA_PIDS $!"
accepted() { cat "$WORK/accepted" 2>/dev/null || echo 0; }
listening() { curl -s -m 0.2 "http://127.0.0.1:$SLOW_PORT/" >/dev/null; [ $? = 28 ]; }
check "the silent listener is up" wait_for 3 listening
base=$(accepted)
: >"$WORK/agent.log"
start_agent ORCHESTRATOR_URL="http://127.0.0.1:$SLOW_PORT" || exit 1
A2=$AGENT_PID
t_start=$(now_ms)
slow=0
i=0
while [ $i -lt 20 ]; do	# 2 s, across in-flight registrations and their timeouts
	t0=$(now_ms)
	health || slow=$((slow + 100))
	t1=$(now_ms)
	[ $((t1 - t0)) -lt 200 ] || slow=$((slow + 1))
	sleep 0.1
	i=$((i + 1))
done
check "/health answered 20 of 20 within 200 ms while the dispatcher hangs (misses: $slow)" [ $slow = 0 ]
check "/health: unreachable, not registered" \
    [ "$(hjson "(j['dispatcher'], j['registered'])")" = "('unreachable', False)" ]
# Requests time out after 1 s; retries follow at 0.5 and 1 s: three by 4.6 s.
sleep_until $((t_start + 4600))
tries=$(( $(accepted) - base ))
check "the agent kept trying ($tries registrations in 4.6 s)" [ "$tries" -ge 3 ]
check "one log line for all of them" [ "$(count 'unreachable')" = 1 ]
check "... saying 'timed out'" [ "$(count 'unreachable .*timed out')" = 1 ]
stop_agent "$A2" TERM 8
check "SIGTERM: exit 0 ($AGENT_STATUS)" [ "$AGENT_STATUS" = 0 ]

# SIGTERM while a registration hangs (5 s timeout with a 5 s period): the
# exit waits for that request's deadline, not longer, and says nothing false.
: >"$WORK/agent.log"
base=$(accepted)
start_agent ORCHESTRATOR_URL="http://127.0.0.1:$SLOW_PORT" STAT_CPU_INTERVAL=5000 || exit 1
A3=$AGENT_PID
in_flight() { [ "$(accepted)" -gt "$base" ]; }
check "a registration is in flight" wait_for 3 in_flight
sleep 1
t0=$(now_ms)
stop_agent "$A3" TERM 8
t1=$(now_ms)
check "SIGTERM with a request hanging: exit 0 ($AGENT_STATUS)" [ "$AGENT_STATUS" = 0 ]
check "... within the request's deadline ($((t1 - t0)) ms <= 4500)" [ $((t1 - t0)) -le 4500 ]
check "no 'retrying' line while stopping" [ "$(count retrying)" = 0 ]
finish
