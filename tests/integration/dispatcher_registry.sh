#!/bin/sh
# dispatcher_registry.sh — registration expiry, clean leave and restart recovery, on loopback.
. "$(dirname -- "$0")/dispatcher_lib.sh"

workers_named() {
	curl -fsS -m 2 "$DISP_URL/api/v1/workers" >"$WORK/body" &&
	    [ "$(json "','.join(w['name'] for w in j['workers'])")" = "$1" ]
}
metrics_mention() { curl -fsS -m 2 "$DISP_URL/metrics" | grep -q "worker=\"$1\""; }
no_metrics_for() { ! metrics_mention "$1"; }

start_dispatcher CLUSTERPLEX_HEARTBEAT_MISSES=3 || exit 1

# Expiry: a worker beating every 200 ms is out after 3 missed beats.
check "register w-exp (201)" [ "$(register w-exp 200 | cut -d' ' -f1)" = 201 ]
check "register w-live (201)" [ "$(register w-live 200 | cut -d' ' -f1)" = 201 ]
check "w-exp has metrics series" metrics_mention w-exp
t0=$(date +%s%N)
i=0
while [ $i -lt 12 ]; do	# w-live keeps beating for ~1.2 s; w-exp stays silent
	status PUT /api/v1/workers/w-live/heartbeat '{"cpu":5}' >/dev/null
	sleep 0.1
	i=$((i + 1))
done
check "silent worker removed, beating one kept" wait_for 2 workers_named w-live
t1=$(date +%s%N)
check "removal took under 2 s (3 x 200 ms + sweep)" [ $(( (t1 - t0) / 1000000 )) -lt 2000 ]
check "expired worker's series are gone" no_metrics_for w-exp
check "heartbeat of the expired worker: 404 + register" \
    matches '^404 .*"register":true' api PUT /api/v1/workers/w-exp/heartbeat '{"cpu":1}'
grep -q "w-exp sent no heartbeat" "$WORK/dispatcher.log" && ok "expiry logged" || not_ok "expiry logged"

# Clean leave: gone at once, its series too.
check "w-live leaves (204)" [ "$(status DELETE /api/v1/workers/w-live)" = 204 ]
check "registry empty right after the leave" workers_named ""
check "left worker's series are gone" no_metrics_for w-live
check "placement with no worker: 503 no-workers" \
    matches '^503 .*no-workers' api POST /api/v1/placements '{}'

# Restart recovery: jobs known again after re-registration, nothing else needed.
register w-a 2000 >/dev/null
register w-b 2000 >/dev/null
api POST /api/v1/placements '{"job":"job-1","session":"s-1"}' >/dev/null
w1=$(json "j['worker']['name']")
api POST /api/v1/placements '{"job":"job-2","session":"s-2"}' >/dev/null
w2=$(json "j['worker']['name']")
check "two jobs placed on two workers" [ "$w1" != "$w2" ]
stop_dispatcher
start_dispatcher CLUSTERPLEX_HEARTBEAT_MISSES=3 || exit 1
check "after restart the registry is empty" workers_named ""
beat1=$(api PUT "/api/v1/workers/$w1/heartbeat" '{"cpu":50,"jobs":[{"id":"job-1","session":"s-1","started":1700000000}]}')
check "heartbeat after restart: 404 (register again)" [ "${beat1%% *}" = 404 ]
register "$w1" 2000 '[{"id":"job-1","session":"s-1","started":1700000000}]' >/dev/null
register "$w2" 2000 '[{"id":"job-2","session":"s-2","started":1700000001}]' >/dev/null
curl -fsS -m 2 "$DISP_URL/api/v1/jobs" >"$WORK/body"
check "both jobs running again on their workers" [ "$(json "sorted((x['id'], x['worker']) for x in j['running'])")" = "[('job-1', '$w1'), ('job-2', '$w2')]" ]
check "a job's start time survives the restart" [ "$(json "[x['started'] for x in j['running'] if x['id']=='job-1'][0]")" = 1700000000 ]
api POST /api/v1/placements '{"job":"job-3","session":"s-1"}' >/dev/null
check "session affinity rebuilt: s-1 goes to $w1" [ "$(json "j['worker']['name']")" = "$w1" ]
check "the shim's end report for a recovered job (204)" \
    [ "$(status POST /api/v1/jobs/job-1/end '{"outcome":"ok","exit":0}')" = 204 ]
finish
