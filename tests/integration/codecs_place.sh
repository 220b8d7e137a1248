#!/bin/bash
# codecs_place.sh — placement avoids workers that cannot run a job's codec
# set, on the test cluster (real dispatcher, agent serve, pool). w2 says
# it is aarch64 (CLUSTERPLEX_CODEC_CPU) and may fetch only from PMS
# (CLUSTERPLEX_CODEC_SOURCES=pms), which has x86_64 codecs. Checks: the
# workers' view shows what each reported; 8 concurrent jobs with PMS's
# set all run on w1 and none is refused; a job without a set still goes
# to w2; with w1 drained a job with the set gets "no worker" at once
# (remote mode: exit 241; both mode: it runs on the PMS host); once w2
# holds the aarch64 set, its heartbeat says so and the job runs there.
set -eu -o pipefail
export CPX_CLUSTER=${CPX_CLUSTER:-cxp} CPX_WORKERS=${CPX_WORKERS:-2}
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/exec_codecs_lib.sh"

t_require_parts clusterplex-dispatcher clusterplex-agent clusterplex-shim
cluster_trap
CPX_QUIET=1 cluster_up || t_fail "cluster up"
codecs_setup CLUSTERPLEX_MAX_TASKS=8
printf '%s\n' CLUSTERPLEX_CODEC_CPU=aarch64 CLUSTERPLEX_CODEC_SOURCES=pms \
	>>"$(cluster_host_dir w2 etc)/agent.env"
cluster_start_dispatcher && cluster_start_fake_pms && cluster_start_agents &&
	cluster_wait_workers "$CPX_WORKERS" 15 && cluster_start_pool ||
	t_fail "the ClusterPlex services did not start"
O=$(mktemp -d /tmp/cxp-out.XXXXXX)
CPX_EXIT_HOOK="rm -rf $O"
API="http://127.0.0.1:$CPX_DISPATCHER_PORT"
auth="Authorization: Bearer $(sed -n 's/^token=//p' "$(cluster_state)/cluster.env")"
ARM=${CODEC_SET%-linux-*}-linux-aarch64-standard

workers() { cluster_pms curl -fsS -m 2 "$API/api/v1/workers"; }
# codecs_of NAME FIELD: the worker's reported codecs field, as JSON.
codecs_of() {
	workers | /usr/bin/python3 -c 'import json, sys
w = [w for w in json.load(sys.stdin)["workers"] if w["name"] == sys.argv[1]][0]
print(json.dumps(w.get("codecs", {}).get(sys.argv[2])))' "$1" "$2"
}
drain() {
	cluster_pms curl -fsS -m 2 -o /dev/null -H "$auth" -H 'Content-Type: application/json' \
		-d "{\"drain\":$2}" "$API/api/v1/workers/w$1/drain"
}

[ "$(codecs_of w1 cpu)" = '"x86_64"' ] || t_fail "w1 reports cpu $(codecs_of w1 cpu)"
[ "$(codecs_of w2 cpu)" = '"aarch64"' ] || t_fail "w2 reports cpu $(codecs_of w2 cpu)"
[ "$(codecs_of w2 sources)" = '["pms"]' ] || t_fail "w2 reports sources $(codecs_of w2 sources)"
t_ok "the workers' view: w1 x86_64 $(codecs_of w1 sources), w2 aarch64 $(codecs_of w2 sources)"

for i in $(seq 8); do
	codecs_shim "p$i" "$CODEC_ENV" -- env >"$O/out.$i" 2>"$O/err.$i" &
done
fails=0
for i in $(seq 8); do
	wait -n || fails=$((fails + 1))
done
[ "$fails" = 0 ] || { tail -n 3 "$O"/err.*; t_fail "$fails of 8 jobs failed"; }
for i in $(seq 8); do
	[ "$(codecs_worker_of "p$i")" = 1 ] || t_fail "job $i ran on w$(codecs_worker_of "p$i")"
done
! grep -q "refused\|is not on this" "$O"/err.* || t_fail "a worker refused a job"
t_ok "8 concurrent jobs with PMS's x86_64 set: all on w1, none offered to w2"

drain 1 true
codecs_shim n1 -- env >/dev/null 2>"$O/err.n1" || t_fail "a job without codecs failed"
[ "$(codecs_worker_of n1)" = 2 ] || t_fail "the job without codecs ran on w$(codecs_worker_of n1)"
t_ok "w1 drained: a job without a codec set still goes to w2"

rc=0
t0=$(t_now)
codecs_shim r1 "$CODEC_ENV" -- env >/dev/null 2>"$O/err.r1" || rc=$?
took=$(t_since "$t0")
[ "$rc" = 241 ] || { tail -n 3 "$O/err.r1"; t_fail "remote mode, no worker for the set: exit $rc, not 241"; }
grep -q "no worker can take the job" "$O/err.r1" || t_fail "no clear line: $(tail -n 2 "$O/err.r1")"
[ -z "$(codecs_worker_of r1)" ] || t_fail "the job reached w$(codecs_worker_of r1)"
reason=$(cluster_pms curl -sS -m 2 -H "$auth" -H 'Content-Type: application/json' \
	-d "{\"codecs\":\"$CODEC_SET\"}" "$API/api/v1/placements")
case $reason in *"1 draining"*"1 unable to get codec set $CODEC_SET"*) ;;
*) t_fail "placement answer: $reason" ;; esac
t_ok "w1 drained: remote mode exits 241 after $took s; the dispatcher says: $reason"

codecs_shim b1 "$CODEC_ENV" TRANSCODE_OPERATING_MODE=both -- env >"$O/out.b1" 2>"$O/err.b1" ||
	t_fail "both mode: the job failed"
[ -z "$(codecs_worker_of b1)" ] || t_fail "both mode: the job reached w$(codecs_worker_of b1)"
grep -qxF "$CODEC_ENV" "$O/out.b1" || t_fail "both mode: the local job's FFMPEG_EXTERNAL_LIBS"
t_ok "both mode: the job ran on the PMS host with PMS's own codecs"

# w2 gets the aarch64 set in its cache; its next heartbeat reports it.
d="$(cluster_host_dir w2 run)/codecs/$ARM"
mkdir -p "$d"
printf 'arm' >"$d/libhevc_decoder.so"
echo '{"name":"'"$ARM"'","from":"test"}' >"$d/.clusterplex-set.json"
chown -R "$CPX_WORKER_USER" "$(cluster_host_dir w2 run)/codecs"
for i in $(seq 50); do
	codecs_of w2 sets | grep -q "$ARM" && break
	sleep 0.1
done
codecs_of w2 sets | grep -q "$ARM" || t_fail "w2's heartbeat does not report $ARM: $(codecs_of w2 sets)"
codecs_shim h1 "$CODEC_ENV" -- env >"$O/out.h1" 2>"$O/err.h1" || t_fail "the job for w2 failed"
[ "$(codecs_worker_of h1)" = 2 ] || t_fail "the job did not run on w2"
grep -qxF "FFMPEG_EXTERNAL_LIBS=/run/clusterplex/codecs/$ARM/" "$O/out.h1" ||
	t_fail "w2: $(grep FFMPEG "$O/out.h1")"
drain 1 false
codecs_no_sanitizer_report "$O"/err.*
t_ok "w2 holds $ARM (heartbeat): the job runs there with it"
