#!/bin/bash
# exec_eae.sh — EasyAudioEncoder on workers, on the test cluster. The fake
# EAE (tests/standin/fake-eae, a watch-folder converter with a PID file in
# its root, like the real one) comes with PMS's codec set. Checks: six
# concurrent EAE jobs with one EAE_ROOT on two workers get one EAE per
# worker (three jobs each share it, both workers convert at once: no PID
# file shared between workers); another EAE_ROOT gets its own EAE; an EAE
# SIGKILLed mid-job is restarted and the job finishes; idle EAEs stop;
# TRANSCODE_EAE_LOCALLY=false sends EAE jobs to workers, =true keeps them.
set -eu -o pipefail
export CPX_CLUSTER=${CPX_CLUSTER:-cxa} CPX_WORKERS=${CPX_WORKERS:-2}
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/exec_codecs_lib.sh"

t_require_parts clusterplex-dispatcher clusterplex-agent clusterplex-shim
cluster_trap
CPX_QUIET=1 cluster_up || t_fail "cluster up"
codecs_setup CLUSTERPLEX_MAX_TASKS=3 CLUSTERPLEX_EAE_IDLE_MS=1500
cluster_start_dispatcher && cluster_start_fake_pms && cluster_start_agents &&
	cluster_wait_workers "$CPX_WORKERS" 15 && cluster_start_pool ||
	t_fail "the ClusterPlex services did not start"
O=$(mktemp -d /tmp/cxa-out.XXXXXX)
CPX_EXIT_HOOK="rm -rf $O"
ROOT_A=EAE_ROOT=/tmp/pms-aaaa-1111/EasyAudioEncoder
ROOT_B=EAE_ROOT=/tmp/pms-bbbb-2222/EasyAudioEncoder

eae_job() {	# SESSION ROOT N [NAME=VALUE...]
	local s=$1 root=$2 n=$3
	shift 3
	codecs_shim "$s" "$CODEC_ENV" "$root" "$@" -- eae "$n" -codec:1 eac3_eae \
		-eae_prefix:1 "${s}_" >"$O/out.$s" 2>"$O/err.$s"
}
# The EAE pids that converted a job's audio.
pids_of() { sed -n 's/^converted by eae \([0-9]*\): .*/\1/p' "$O/out.$1" | sort -u; }
eaes_on() { codecs_procs "$1" EasyAudioEncoder/EasyAudioEncoder/EasyAudioEncoder; }
health() { cluster_worker "$1" curl -fsS -m 2 "http://$(cluster_worker_ip "$1"):$CPX_AGENT_PORT/health"; }

# Six jobs, max three per worker: both workers, three jobs each, one root.
for i in $(seq 6); do
	eae_job "e$i" "$ROOT_A" 8 &
done
fails=0
for i in $(seq 6); do
	wait -n || fails=$((fails + 1))
done
[ "$fails" = 0 ] || { tail -n 3 "$O"/err.* "$O"/out.*; t_fail "$fails of 6 EAE jobs failed"; }
declare -A per_worker=()
for i in $(seq 6); do
	w=$(codecs_worker_of "e$i")
	n=$(grep -c "^converted by eae" "$O/out.e$i" || true)
	[ "$n" = 8 ] || t_fail "job e$i: $n of 8 conversions"
	[ "$(pids_of "e$i" | wc -l)" = 1 ] || t_fail "job e$i was served by several EAEs"
	per_worker[$w]="${per_worker[$w]:-} $(pids_of "e$i")"
done
[ "${#per_worker[@]}" = 2 ] || t_fail "the jobs ran on ${#per_worker[@]} worker(s), not 2"
for w in "${!per_worker[@]}"; do
	[ "$(echo ${per_worker[$w]} | tr ' ' '\n' | sort -u | wc -l)" = 1 ] ||
		t_fail "w$w ran several EAEs for one root: ${per_worker[$w]}"
	[ "$(echo ${per_worker[$w]} | wc -w)" = 3 ] || t_fail "w$w ran $(echo ${per_worker[$w]} | wc -w) jobs, not 3"
done
t_ok "6 concurrent EAE jobs, one EAE_ROOT: one EAE on each worker (pids$(for w in "${!per_worker[@]}"; do echo -n " w$w:$(echo ${per_worker[$w]} | cut -d' ' -f1)"; done)), 3 jobs each, all 48 conversions done"

# Another root on the same worker: its own EAE; the first one is kept.
eae_job f1 "$ROOT_A" 6 &
a=$!
sleep 0.5
w=$(codecs_worker_of f1)
eae_job f2 "$ROOT_B" 2 CLUSTERPLEX_POOL=off &
b=$!
wait "$a" || t_fail "job f1 failed"
wait "$b" || t_fail "job f2 failed"
[ "$(pids_of f1)" != "$(pids_of f2)" ] || t_fail "two roots shared one EAE"
t_ok "another EAE_ROOT got its own EAE (pid $(pids_of f2); the first root's: $(pids_of f1))"

# Idle: within the idle time (1.5 s) and the grace, no EAE is left.
for i in $(seq 100); do
	[ -z "$(eaes_on 1)$(eaes_on 2)" ] && break
	sleep 0.1
done
[ -z "$(eaes_on 1)$(eaes_on 2)" ] || t_fail "EAEs still run after the idle time"
health 1 | grep -q '"eae":\[\]' || t_fail "w1's /health still lists an EAE"
t_ok "idle EAEs stopped (none left on either worker)"

# A crash mid-job: SIGKILL the EAE; it is restarted and the job finishes.
eae_job g1 "$ROOT_A" 12 &
job=$!
for i in $(seq 100); do
	w=$(codecs_worker_of g1)
	[ -n "$w" ] && [ -n "$(eaes_on "$w")" ] && [ -s "$O/out.g1" ] && break
	sleep 0.05
done
first=$(eaes_on "$w")
[ -n "$first" ] || t_fail "no EAE for job g1"
kill -9 $first
t0=$(t_now)
wait "$job" || { cat "$O/out.g1"; t_fail "job g1 did not survive the EAE's crash"; }
[ "$(pids_of g1 | wc -l)" = 2 ] || t_fail "job g1: EAE pids $(pids_of g1 | tr '\n' ' ')"
health "$w" | grep -q '"restarts":1' || t_fail "/health does not count the restart"
t_ok "EAE $first SIGKILLed mid-job: restarted (pid $(pids_of g1 | grep -vx "$first")), all 12 conversions done"

# TRANSCODE_EAE_LOCALLY: false sends the job to a worker, true keeps it here.
eae_job l1 "$ROOT_A" 1 TRANSCODE_EAE_LOCALLY=false || t_fail "EAE job with TRANSCODE_EAE_LOCALLY=false"
[ -n "$(codecs_worker_of l1)" ] || t_fail "TRANSCODE_EAE_LOCALLY=false kept the job local"
rc=0
eae_job l2 "$ROOT_A" 1 TRANSCODE_EAE_LOCALLY=true || rc=$?
[ -z "$(codecs_worker_of l2)" ] || t_fail "TRANSCODE_EAE_LOCALLY=true sent the job to a worker"
grep -q "EAE jobs run locally" "$O/err.l2" || t_fail "no log line for the local EAE job"
t_ok "TRANSCODE_EAE_LOCALLY=false: on a worker; =true: on the PMS host"
