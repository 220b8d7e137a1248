#!/bin/bash
# e2e_dash.sh — one DASH direct stream through ClusterPlex, end to end, on
# the test cluster: dispatcher, agents, fake PMS, pool and fuse (over the
# pms host's /transcode) running; the dash-remux fixture played through
# the shim exactly as PMS starts its transcoder. Checks that the
# transcoder ran on a worker (as the worker user, nothing written on the
# PMS host's disk), that the fake PMS got the progress and manifest PUTs
# from 127.0.0.1 with the token, that every segment read through the fuse
# mount equals the worker's file, that the shim exited 0 and that fuse
# exits 0 when unmounted.
set -eu -o pipefail
export CPX_CLUSTER=${CPX_CLUSTER:-cle} CPX_WORKERS=${CPX_WORKERS:-2}
source "$(dirname "$0")/lib.sh"

TOKEN=local-00000000-1111-2222-3333-444444444444
SESSION=plex-transcode-e2e$$-d5b670a4-a535-490f-881e-dcbba86b8f82
DIR=Transcode/Sessions/$SESSION

t_require_parts clusterplex-dispatcher clusterplex-agent clusterplex-shim \
	clusterplex-fuse
t_movie
cluster_trap
CPX_QUIET=1 cluster_up || t_fail "cluster up"
cluster_start_all || t_fail "the ClusterPlex services did not all start"
t_ok "dispatcher, fake PMS, $CPX_WORKERS agents (registered), pool and fuse run"

rc=0
play_fixture dash-remux "$SESSION" "$CPX_SRC/$CPX_BUILD/clusterplex-shim" || rc=$?
[ "$rc" = 0 ] || t_fail "the shim exited $rc"
t_ok "the shim exited 0 after $(t_json "$(play_result "$SESSION")" seconds) s"

w=$(session_worker "$SESSION") || t_fail "the job did not run on exactly one worker"
owner=$(cluster_worker "$w" stat -c %U "/transcode/$DIR/init-stream0.m4s") ||
	t_fail "w$w has no init-stream0.m4s"
[ "$owner" = "$CPX_WORKER_USER" ] || t_fail "w$w's segments belong to $owner"
local_files=$(find "$(cluster_host_dir pms transcode)/$DIR" -type f 2>/dev/null | wc -l)
[ "$local_files" = 0 ] || t_fail "$local_files files landed on the PMS host's own disk"
t_ok "the transcoder ran on w$w ($(cluster_worker_ip "$w")) as $owner; nothing on the PMS host's disk"

requests_check whrtmao0hvjo0120h21kz6cb dash "$TOKEN" ||
	t_fail "the fake PMS did not get the transcoder's callbacks"

n=$(segments_compare "$SESSION" "$w" '*.m4s') || t_fail "segments differ"
[ "$n" -ge 10 ] || t_fail "only $n segments (want init + 4 chunks per stream)"
t_ok "$n segments read through fuse on pms (via the fake PMS) equal w$w's files"

cluster_stop_fuse || t_fail "fuse did not exit 0 after fusermount3 -u"
t_ok "fuse unmounted and exited 0"
