#!/bin/bash
# exec_codecs.sh — codec sets follow the job, on the test cluster (real
# dispatcher, agent serve, pool). PMS's codec folder holds a fake set of
# 25 MB. Checks: 8 concurrent jobs on 2 workers fetch the set once per
# worker (the others wait on the set's lock), every job's
# FFMPEG_EXTERNAL_LIBS names the worker's copy, the copies equal PMS's
# files; a later job fetches nothing; a fetch whose shim is SIGKILLed
# leaves nothing behind and the next job fetches the set whole; a worker
# of another CPU uses the set of its own CPU from its own folder, and
# without one refuses the job with a sentence saying why.
set -eu -o pipefail
export CPX_CLUSTER=${CPX_CLUSTER:-cxc} CPX_WORKERS=${CPX_WORKERS:-2}
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/exec_codecs_lib.sh"

t_require_parts clusterplex-dispatcher clusterplex-agent clusterplex-shim
cluster_trap
CPX_QUIET=1 cluster_up || t_fail "cluster up"
codecs_setup CLUSTERPLEX_MAX_TASKS=8
cluster_start_dispatcher && cluster_start_fake_pms && cluster_start_agents &&
	cluster_wait_workers "$CPX_WORKERS" 15 && cluster_start_pool ||
	t_fail "the ClusterPlex services did not start"
O=$(mktemp -d /tmp/cxc-out.XXXXXX)
CPX_EXIT_HOOK="rm -rf $O"
WANT="FFMPEG_EXTERNAL_LIBS=/run/clusterplex/codecs/$CODEC_SET/"

# The set's files and their SHA-256, as a sorted list (manifest excluded).
set_sums() {
	(cd "$1" && find . -type f ! -name .clusterplex-set.json -print0 |
		sort -z | xargs -0 sha256sum)
}
pms_sums=$(set_sums "$(cluster_host_dir pms etc)/Application Support/Codecs/$CODEC_SET")

t0=$(t_now)
for i in $(seq 8); do
	codecs_shim "c$i" "$CODEC_ENV" -- env >"$O/out.$i" 2>"$O/err.$i" &
done
fails=0
for i in $(seq 8); do
	wait -n || fails=$((fails + 1))
done
took=$(t_since "$t0")
[ "$fails" = 0 ] || { tail -n 5 "$O"/err.*; t_fail "$fails of 8 concurrent jobs failed"; }
used=""
for i in $(seq 8); do
	grep -qxF "$WANT" "$O/out.$i" ||
		t_fail "job $i: $(grep FFMPEG_EXTERNAL_LIBS "$O/out.$i" || echo no FFMPEG_EXTERNAL_LIBS)"
	w=$(codecs_worker_of "c$i")
	[ -n "$w" ] || t_fail "job $i ran on no worker"
	used="$used $w"
done
used=$(echo $used | tr ' ' '\n' | sort -u | tr '\n' ' ')
sent=$(cat "$O"/err.* | grep -c "sent codec set $CODEC_SET" || true)
[ "$sent" = "$(echo $used | wc -w)" ] ||
	t_fail "the set was sent $sent times for workers $used"
for w in $used; do
	c=$(cluster_host_dir "w$w" run)/codecs
	[ "$(set_sums "$c/$CODEC_SET")" = "$pms_sums" ] || t_fail "w$w's copy differs from PMS's"
	! ls -d "$c"/.tmp-* >/dev/null 2>&1 || t_fail "w$w: a fetch folder is left"
done
ms=$(cat "$O"/err.* | sed -n "s/.*sent codec set $CODEC_SET.* in \([0-9]*\) ms/\1/p" | sort -n | tail -1)
t_ok "8 concurrent jobs on workers $used: the 25 MB set sent $sent times (once per worker, at most $ms ms), copies equal PMS's, all 8 done after $took s"

rm -f "$O"/err.*
codecs_shim c9 "$CODEC_ENV" -- env >"$O/out.9" 2>"$O/err.9" || t_fail "a later job failed"
grep -qxF "$WANT" "$O/out.9" || t_fail "the later job's FFMPEG_EXTERNAL_LIBS"
! grep -q "sent codec set" "$O/err.9" || t_fail "a later job fetched the set again"
t_ok "a later job uses the cached set without a fetch"

# A fetch cut short: the shim of the only job fetching a new version is
# SIGKILLed mid-transfer; nothing is left and the next job fetches whole.
SET2=9aaa111-2900-linux-x86_64-standard
cp -a "$(cluster_host_dir pms etc)/Application Support/Codecs/$CODEC_SET" \
	"$(cluster_host_dir pms etc)/Application Support/Codecs/$SET2"
ENV2="FFMPEG_EXTERNAL_LIBS=$(printf '%s' "$CODEC_PARENT/$SET2" | sed 's/ /\\ /g')"
codecs_shim k1 "$ENV2" CLUSTERPLEX_POOL=off -- env >/dev/null 2>"$O/err.k1" &
job=$!
w=""
for i in $(seq 200); do
	w=$(codecs_worker_of k1)
	[ -n "$w" ] && ls -d "$(cluster_host_dir "w$w" run)/codecs/.tmp-$SET2-"* >/dev/null 2>&1 && break
	sleep 0.01
done
ls -d "$(cluster_host_dir "w$w" run)/codecs/.tmp-$SET2-"* >/dev/null 2>&1 ||
	t_fail "the fetch of $SET2 never began"
for p in $(ps -o pid= --ppid "$job"); do
	case $(readlink "/proc/$p/exe") in */clusterplex-shim) kill -9 "$p" ;; esac
done
wait "$job" 2>/dev/null || true
for i in $(seq 100); do
	! ls -d "$(cluster_host_dir "w$w" run)/codecs/.tmp-$SET2-"* >/dev/null 2>&1 && break
	sleep 0.05
done
! ls -d "$(cluster_host_dir "w$w" run)/codecs/.tmp-$SET2-"* >/dev/null 2>&1 ||
	t_fail "w$w kept the fetch folder of a killed job"
[ ! -e "$(cluster_host_dir "w$w" run)/codecs/$SET2" ] || t_fail "a half set was put in place"
codecs_shim k2 "$ENV2" -- env >"$O/out.k2" 2>"$O/err.k2" || t_fail "the job after the kill failed"
grep -qxF "FFMPEG_EXTERNAL_LIBS=/run/clusterplex/codecs/$SET2/" "$O/out.k2" ||
	t_fail "the job after the kill: $(grep FFMPEG "$O/out.k2")"
w2=$(codecs_worker_of k2)
[ "$(set_sums "$(cluster_host_dir "w$w2" run)/codecs/$SET2")" = "$pms_sums" ] ||
	t_fail "the set fetched after the kill differs"
t_ok "a fetch killed mid-transfer left nothing on w$w; the next job fetched the set whole"

# Another CPU: w2 says it is an aarch64 worker with its own folder of
# aarch64 sets; w1 drains, so the job must go to w2.
auth="Authorization: Bearer $(sed -n 's/^token=//p' "$(cluster_state)/cluster.env")"
drain() {
	cluster_pms curl -fsS -m 2 -o /dev/null -H "$auth" -H 'Content-Type: application/json' \
		-d "{\"drain\":$2}" "http://127.0.0.1:$CPX_DISPATCHER_PORT/api/v1/workers/w$1/drain"
}
own="$(cluster_host_dir w2 etc)/own-codecs/8bf330d-2818-linux-aarch64-standard"
mkdir -p "$own"
printf 'arm' >"$own/libhevc_decoder.so"
printf '%s\n' CLUSTERPLEX_CODEC_CPU=aarch64 CLUSTERPLEX_CODEC_DIRS=/etc/clusterplex/own-codecs \
	>>"$(cluster_host_dir w2 etc)/agent.env"
drain 1 true
codecs_shim a1 "$CODEC_ENV" -- env >"$O/out.a1" 2>"$O/err.a1" || t_fail "the job on the aarch64 worker failed"
[ "$(codecs_worker_of a1)" = 2 ] || t_fail "the job did not run on w2"
grep -qxF "FFMPEG_EXTERNAL_LIBS=/etc/clusterplex/own-codecs/8bf330d-2818-linux-aarch64-standard/" "$O/out.a1" ||
	t_fail "aarch64 worker: $(grep FFMPEG "$O/out.a1")"
! grep -q "sent codec set" "$O/err.a1" || t_fail "PMS's x86_64 set was sent to an aarch64 worker"
rm -rf "$own"
rc=0
codecs_shim a2 "$CODEC_ENV" -- env >/dev/null 2>"$O/err.a2" || rc=$?
[ "$rc" = 244 ] || t_fail "aarch64 worker without the set: exit $rc, not 244: $(tail -n 3 "$O/err.a2")"
grep -q "is not on this aarch64 worker and PMS has only $CODEC_SET" "$O/err.a2" ||
	t_fail "no clear refusal: $(tail -n 2 "$O/err.a2")"
drain 1 false
t_ok "an aarch64 worker used its own aarch64 set; without one it refused the job (exit 244, reason given)"
