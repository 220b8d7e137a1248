#!/bin/bash
# exec_cluster.sh — the shim, the pool and the agent's job service on the
# test cluster, with the real dispatcher (placement, host keys pinned from
# registration, job ends) and agent serve (running jobs from the job
# service's state files). The worker's transcoder is the process-semantics
# stand-in. Checks: a job runs on a worker and its exit code comes back;
# the dispatcher lists it while it runs; SIGKILL of the shim leaves
# nothing on the worker; a cut link (the worker's veth down) ends the
# shim with 245 in bounded time and the worker kills the orphan;
# dispatcher down: local run in `both`, 240 in `remote`.
set -eu -o pipefail
export CPX_CLUSTER=${CPX_CLUSTER:-cxe} CPX_WORKERS=${CPX_WORKERS:-2}
source "$(dirname "$0")/lib.sh"

t_require_parts clusterplex-dispatcher clusterplex-agent clusterplex-shim
cluster_trap
CPX_QUIET=1 cluster_up || t_fail "cluster up"

# The process-semantics stand-in replaces the worker's (and PMS's) transcoder.
for h in pms $(for ((i = 1; i <= CPX_WORKERS; i++)); do echo "w$i"; done); do
	d=$(cluster_host_dir "$h" etc)/transcoder
	cc -O2 -o "$d/exec-standin" "$CPX_REPO/tests/integration/exec_standin.c"
	ln -sfn exec-standin "$d/Plex Transcoder"
done
cluster_start_dispatcher && cluster_start_fake_pms && cluster_start_agents &&
	cluster_wait_workers "$CPX_WORKERS" 15 && cluster_start_pool ||
	t_fail "the ClusterPlex services did not start"
t_ok "dispatcher, fake PMS, $CPX_WORKERS agents (registered) and the pool run"

# shim SESSION [NAME=VALUE...] -- ARGS: the shim on the pms host, from the
# session folder, with PMS's ClusterPlex environment (pms.env).
shim() { cluster_shim "$@"; }

# Stand-ins running on worker I (by the worker's network namespace).
standins_on() {
	local p
	for p in $(ip netns pids "$CPX_CLUSTER-w$1"); do
		case $(readlink "/proc/$p/exe" 2>/dev/null) in
		*/exec-standin) echo "$p" ;;
		esac
	done
	return 0
}

# The worker (index) whose /transcode has SESSION, or nothing.
worker_of() {
	local i
	for ((i = 1; i <= CPX_WORKERS; i++)); do
		[ -d "$(cluster_host_dir "w$i" transcode)/Transcode/Sessions/$1" ] && echo "$i"
	done
	return 0
}

rc=0
shim s1 -- exit 42 || rc=$?
[ "$rc" = 42 ] || t_fail "exit 42 came back as $rc"
w=$(worker_of s1)
[ -n "$w" ] || t_fail "the job ran on no worker"
t_ok "a job ran on w$w through the pool; its exit code 42 came back"
out=$(shim s2 -- where)
w=$(worker_of s2)
[ "$out" = "/transcode/Transcode/Sessions/s2" ] && [ -n "$w" ] ||
	t_fail "cwd on the worker: $out"

# Running: the dispatcher lists the job (agent serve reads the state file).
shim s3 -- sleep 30 &
job=$!
jobs_url=http://127.0.0.1:$CPX_DISPATCHER_PORT/api/v1/jobs
for i in $(seq 100); do
	w=$(worker_of s3)
	[ -n "$w" ] && [ -n "$(standins_on "$w")" ] && break
	sleep 0.1
done
[ -n "$w" ] || t_fail "the sleeping job did not start"
listed=0
for i in $(seq 60); do
	if cluster_pms curl -fsS -m 2 "$jobs_url" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if any(j.get("session") == "s3" or "s3" in json.dumps(j) for j in d["running"]) else 1)'; then
		listed=1
		break
	fi
	sleep 0.1
done
[ "$listed" = 1 ] || t_fail "the dispatcher never listed the running job"
t_ok "the dispatcher lists the running job (agent serve read its state file)"

# SIGKILL, as PMS stops its transcoders: the shim itself (nsenter and
# bash exec'd into it, below the background subshell).
shim_pid=
for p in $(ps -o pid= --ppid "$job"); do
	case $(readlink "/proc/$p/exe") in */clusterplex-shim) shim_pid=$p ;; esac
done
[ -n "$shim_pid" ] || t_fail "no shim process below $job"
kill -9 "$shim_pid"
t0=$(t_now)
wait "$job" 2>/dev/null || true
for i in $(seq 100); do
	[ -z "$(standins_on "$w")" ] && break
	sleep 0.01
done
[ -z "$(standins_on "$w")" ] || t_fail "SIGKILL: transcoder left on w$w after 1 s"
t_ok "SIGKILL of the shim: w$w clean after $(t_since "$t0") s"

# A cut link: the worker's veth goes down mid-job.
shim s4 CLUSTERPLEX_KEEPALIVE_MS=500 CLUSTERPLEX_LINK_TIMEOUT_MS=3000 -- sleep 60 &
job=$!
for i in $(seq 100); do
	w=$(worker_of s4)
	[ -n "$w" ] && [ -n "$(standins_on "$w")" ] && break
	sleep 0.1
done
[ -n "$(standins_on "$w")" ] || t_fail "the job for the cut did not start"
ip -n "$CPX_CLUSTER-w$w" link set eth0 down
t0=$(t_now)
rc=0
wait "$job" || rc=$?
took=$(t_since "$t0")
[ "$rc" = 245 ] || t_fail "cut link: the shim exited $rc, not 245"
awk -v t="$took" 'BEGIN { exit !(t < 5) }' || t_fail "cut link: 245 only after $took s"
# The agent hears nothing for its CLUSTERPLEX_LINK_TIMEOUT_MS (10 s).
for i in $(seq 150); do
	[ -z "$(standins_on "$w")" ] && break
	sleep 0.1
done
[ -z "$(standins_on "$w")" ] || t_fail "cut link: the orphan still runs on w$w"
t_ok "cut link: the shim exited 245 after $took s; w$w killed the orphan $(t_since "$t0") s after the cut"
ip -n "$CPX_CLUSTER-w$w" link set eth0 up

# The dispatcher down: both runs locally at once, remote fails with 240.
cluster_stop_svc pms dispatcher
t0=$(t_now)
out=$(shim s5 TRANSCODE_OPERATING_MODE=both -- where)
took=$(t_since "$t0")
[ "$out" = /transcode/Transcode/Sessions/s5 ] && [ -z "$(worker_of s5)" ] ||
	t_fail "dispatcher down, both: ran at '$out'"
awk -v t="$took" 'BEGIN { exit !(t < 1) }' || t_fail "dispatcher down: local run after $took s"
rc=0
shim s6 -- exit 0 || rc=$?
[ "$rc" = 240 ] || t_fail "dispatcher down, remote: exit $rc"
t_ok "dispatcher down: both ran locally after $took s; remote exited 240"
