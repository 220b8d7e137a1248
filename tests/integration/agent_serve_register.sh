#!/bin/sh
# agent_serve_register.sh — registration, heartbeats carrying the load, /health, clean leave.
. "$(dirname -- "$0")/agent_serve_lib.sh"

start_dispatcher || exit 1
start_agent CLUSTERPLEX_SSH_USER=cpxtest CLUSTERPLEX_MAX_TASKS=3 \
    CLUSTERPLEX_CAPS="vaapi, qsv" CLUSTERPLEX_LABELS="zone=a,gpu=intel" || exit 1
A1=$AGENT_PID

check "the worker appears in GET /api/v1/workers" wait_for 3 has_worker agent-test-1
check "SSH endpoint: the address that reaches the dispatcher, port 22, our user" \
    [ "$(worker agent-test-1 "w['ssh']['host'], w['ssh']['port'], w['ssh']['user']")" = "('127.0.0.1', 22, 'cpxtest')" ]
check "the host key is CLUSTERPLEX_HOST_KEY_FILE's line" \
    [ "$(worker agent-test-1 "w['ssh']['host_key']")" = "$(cat "$WORK/hostkey.pub")" ]
check "cpus is the machine's, bench is measured" \
    [ "$(worker agent-test-1 "(w['cpus'], w['bench'] > 0)")" = "($(nproc), True)" ]
check "max_tasks, caps and labels as configured" \
    [ "$(worker agent-test-1 "(w['max_tasks'], sorted(w['caps']), w['labels'])")" = "(3, ['qsv', 'vaapi'], {'zone': 'a', 'gpu': 'intel'})" ]
check "transcoder version and agent version" \
    [ "$(worker agent-test-1 "(w['transcoder'], w['version'])")" = "('ffmpeg version test-5.1 Copyright', '0.1.0')" ]
check "the heartbeat period is STAT_CPU_INTERVAL" \
    [ "$(worker agent-test-1 "w['heartbeat_ms']")" = 500 ]

# Heartbeats: the dispatcher keeps hearing us long past 3 missed periods.
fresh=0
i=0
while [ $i -lt 12 ]; do
	age=$(worker agent-test-1 "w['last_seen_ms'] if w['state']=='ready' else 99999")
	[ "${age:-99999}" -lt 800 ] && fresh=$((fresh + 1))
	worker agent-test-1 "w['cpu']" >>"$WORK/cpu-values"
	sleep 0.25
	i=$((i + 1))
done
check "3 s of heartbeats: always seen within 800 ms ($fresh/12)" [ $fresh -eq 12 ]

# The load they carry: a busy loop makes at least one of two cores busy.
timeout 4 sh -c 'while :; do :; done' &
BURN=$!
EXTRA_PIDS="$EXTRA_PIDS $BURN"
cpu_high() { [ "$(worker agent-test-1 "w['cpu'] >= 45")" = True ]; }
check "a busy loop shows in the reported cpu within 2 s" wait_for 2 cpu_high
worker agent-test-1 "w['cpu']" >>"$WORK/cpu-values"
check "the cpu value changes from beat to beat ($(sort -u "$WORK/cpu-values" | wc -l) values)" \
    [ "$(sort -u "$WORK/cpu-values" | wc -l)" -ge 2 ]
load_near() {
	[ "$(worker agent-test-1 "abs(w['load1'] - $(cut -d' ' -f1 /proc/loadavg)) < 1")" = True ]
}
check "load1 is the machine's /proc/loadavg" load_near
kill "$BURN" 2>/dev/null
wait "$BURN" 2>/dev/null

# /health, as the orchestrator's probe sees it.
check "/health: 200, ok, our name, registered, dispatcher up" \
    [ "$(hjson "(j['status'], j['name'], j['registered'], j['dispatcher'])")" = "('ok', 'agent-test-1', True, 'up')" ]
check "/health: jobs 0 of max_tasks 3, a fresh heartbeat" \
    [ "$(hjson "(j['jobs'], j['max_tasks'], j['last_heartbeat_age_ms'] < 800)")" = "(0, 3, True)" ]
check "/health: HEAD answers 200" \
    [ "$(curl -sS -m 1 -I -o /dev/null -w '%{http_code}' "$AGENT_URL/health")" = 200 ]
check "/health: POST is 405" \
    [ "$(curl -sS -m 1 -X POST -o /dev/null -w '%{http_code}' "$AGENT_URL/health")" = 405 ]
check "another path is 404" \
    [ "$(curl -sS -m 1 -o /dev/null -w '%{http_code}' "$AGENT_URL/nope")" = 404 ]

# CLUSTERPLEX_SSH_ADDRESS replaces the default endpoint.
start_agent LISTENING_PORT=$((AGENT_PORT + 1)) CLUSTERPLEX_WORKER_NAME=agent-test-2 \
    CLUSTERPLEX_SSH_ADDRESS=10.9.8.7:2222 || exit 1
A2=$AGENT_PID
check "a second worker registers" wait_for 3 has_worker agent-test-2
check "CLUSTERPLEX_SSH_ADDRESS is what it advertises" \
    [ "$(worker agent-test-2 "(w['ssh']['host'], w['ssh']['port'])")" = "('10.9.8.7', 2222)" ]

# SIGTERM: gone from the registry at once, exit 0.
t0=$(now_ms)
kill -TERM "$A1"
check "SIGTERM: the worker leaves the registry" wait_for 1 no_worker agent-test-1
t1=$(now_ms)
check "the leave took under 300 ms ($((t1 - t0)) ms)" [ $((t1 - t0)) -lt 300 ]
stop_agent "$A1"
check "exit status 0 after SIGTERM ($AGENT_STATUS)" [ "$AGENT_STATUS" = 0 ]
check "the leave is logged" [ "$(count 'left the dispatcher')" = 1 ]
check "the dispatcher saw a clean leave, not an expiry" \
    grep -q "agent-test-1 left" "$WORK/dispatcher.log"
check "the other worker stays" has_worker agent-test-2
stop_agent "$A2" INT
check "SIGINT: exit status 0 ($AGENT_STATUS)" [ "$AGENT_STATUS" = 0 ]
check "SIGINT: gone from the registry" no_worker agent-test-2
check "the registry is empty" [ "$(workers_json "len(j['workers'])")" = 0 ]
finish
