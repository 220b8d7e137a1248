#!/bin/bash
# demo.sh — ClusterPlex on a multi-host cluster built on this machine: a PMS
# host and CPX_WORKERS workers (default 2), each a network namespace with a
# private mount namespace and, on workers, its own sshd. Plays the
# dash-remux job through the shim exactly as Plex Media Server starts its
# transcoder, shows where each step ran and how long it took, checks the
# result, and tears everything down. Run as root: `make demo`.
set -eu -o pipefail
export CPX_CLUSTER=${CPX_CLUSTER:-demo} CPX_WORKERS=${CPX_WORKERS:-2}
source "$(cd "$(dirname "$0")/.." && pwd)/tests/integration/lib.sh"

TOKEN=local-00000000-1111-2222-3333-444444444444
SESSION=plex-transcode-demo$$-d5b670a4-a535-490f-881e-dcbba86b8f82
DIR=Transcode/Sessions/$SESSION

[ "$(id -u)" = 0 ] || t_fail "the demo builds namespaces and mounts: run it as root"
t_require_parts clusterplex-dispatcher clusterplex-agent clusterplex-shim \
	clusterplex-fuse

T0=$(t_now)
# step LABEL WHERE CMD...: runs CMD, prints how long it took.
step() {
	local label=$1 where=$2 t out
	shift 2
	t=$(t_now)
	if ! out=$("$@"); then
		printf '  %-11s %6s s  %s  FAILED%s\n' "$label" "$(t_since "$t")" \
			"$where" "${out:+: $out}"
		t_fail "$label"
	fi
	printf '  %-11s %6s s  %s%s\n' "$label" "$(t_since "$t")" "$where" "${out:+  $out}"
}

workers() {
	local i s=
	for ((i = 1; i <= CPX_WORKERS; i++)); do
		s="$s, w$i $(cluster_worker_ip "$i")"
	done
	echo "${s#, }"
}

play() {
	local rc=0
	play_fixture dash-remux "$SESSION" "$CPX_SRC/$CPX_BUILD/clusterplex-shim" >&2 ||
		rc=$?
	echo "the shim exited $rc"
	return $rc
}

ran_where() {
	local w
	w=$(session_worker "$SESSION") || return
	echo "$w" >"$CPX_STATE/demo-worker"
	echo "transcoder ran on w$w ($(cluster_worker_ip "$w")) as" \
		"$(cluster_worker "$w" stat -c %U "/transcode/$DIR/init-stream0.m4s");" \
		"files: $(cluster_worker "$w" ls "/transcode/$DIR" | wc -l) in /transcode/$DIR"
}

segments() {
	local w n
	w=$(cat "$CPX_STATE/demo-worker")
	n=$(segments_compare "$SESSION" "$w" '*.m4s') || return
	echo "$n segments read through fuse (GET from fake PMS) == w$w's files (sha256)"
}

movie() {
	t_movie
	echo "$CPX_MOVIE ($CPX_MOVIE_SECONDS s, H.264 + AAC)"
}

up() {
	CPX_QUIET=1 cluster_up || return
	echo "pms $(cluster_pms_ip), $(workers); sshd on each worker"
}

registered() {
	cluster_wait_workers "$CPX_WORKERS" 15 && echo "$CPX_WORKERS workers"
}

unmount() { cluster_stop_fuse && echo "fuse exited 0"; }

down() {
	CPX_QUIET=1 cluster_down && echo "no namespace, mount or process left"
}

cluster__vars || exit
echo "ClusterPlex demo: cluster '$CPX_CLUSTER' on this machine"
step movie "host" movie
cluster_trap
step up "host" up
cluster__vars	# the new cluster's settings (token), made in step's subshell
step dispatcher "pms $(cluster_pms_ip):$CPX_DISPATCHER_PORT" cluster_start_dispatcher
step fake-pms "pms 127.0.0.1:$CPX_PMS_PORT" cluster_start_fake_pms
step agents "$(workers)" cluster_start_agents
step registered "dispatcher" registered
step pool "pms /run/clusterplex/pool.sock" cluster_start_pool
step fuse "pms /transcode" cluster_start_fuse
step play "pms, shim in /transcode/$DIR" play
step where "workers" ran_where
step callbacks "fake PMS" requests_check whrtmao0hvjo0120h21kz6cb dash "$TOKEN"
step segments "pms -> worker" segments
step unmount "pms /transcode" unmount
step teardown "host" down
printf '  %-11s %6s s\n' total "$(t_since "$T0")"
