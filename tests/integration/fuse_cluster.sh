#!/bin/bash
# fuse_cluster.sh — clusterplex-fuse in the test cluster (docs/testing.md):
# mounted over the pms host's /transcode with pms.env, a session folder
# routed by hand (as the shim would) to worker 1's sshd, where the agent
# runs as cpxworker. Segments written there by cpxworker read identical on
# the pms host, through the fake PMS too; PMS's delete reaches the worker;
# fuse stops with exit 0.
set -eu -o pipefail
export CPX_CLUSTER=${CPX_CLUSTER:-fuse} CPX_WORKERS=${CPX_WORKERS:-1}
source "$(dirname "$0")/lib.sh"
t_require_parts clusterplex-agent clusterplex-fuse
cluster_trap
cluster_up
cluster_start_fake_pms
cluster_start_fuse

W1=$(cluster_worker_ip 1)
KEY=$(grep "^$W1 " "$(cluster_host_dir pms etc)/ssh/known_hosts" | cut -d' ' -f2,3)
S=Transcode/Sessions/plex-transcode-fusecluster
cluster_pms mkdir -p "/transcode/$S"
t0=$(t_now)
cluster_pms env PYTHONPATH=/opt/clusterplex/tests/integration /usr/bin/python3 - \
    "$S" "$W1" "$KEY" <<'EOF' || t_fail "ROUTE_ADD refused"
import sys, fuse_wire as w
d, ip, key = sys.argv[1:]
kind, ident, payload = w.route_add(w.control("/run/clusterplex/fuse.sock"), 1, d,
    "job-fusecluster", {"name": "w1", "host": ip, "port": 22, "user": "cpxworker",
                        "host_key": key})
sys.exit(0 if kind == w.MSG["ROUTE_OK"] else "got %d %r" % (kind, payload))
EOF
t_ok "route to w1 confirmed in $(t_since "$t0") s (cold SSH connection)"

cluster_worker 1 setpriv --reuid=cpxworker --regid=cpxworker --init-groups sh -c "
	cd /transcode/$S &&
	for i in 1 2 3; do
		head -c 2500000 /dev/urandom >chunk-stream0-0000\$i.m4s.tmp &&
		mv chunk-stream0-0000\$i.m4s.tmp chunk-stream0-0000\$i.m4s
	done" || t_fail "cannot write segments on w1"
want=$(cluster_worker 1 sh -c "cd /transcode/$S && sha256sum chunk-*")
for i in $(seq 50); do
	got=$(cluster_pms sh -c "cd /transcode/$S && sha256sum chunk-* 2>/dev/null" || true)
	[ "$got" = "$want" ] && break
	sleep 0.1
done
[ "$got" = "$want" ] || t_fail "segments differ on the pms host: $got"
served=$(cluster_pms curl -sf "http://127.0.0.1:32400/_files/$S/chunk-stream0-00002.m4s" | sha256sum | cut -d' ' -f1)
[ "$served" = "$(echo "$want" | sed -n 2p | cut -d' ' -f1)" ] || t_fail "the fake PMS served other bytes"
t_ok "segments written by cpxworker on w1 read identical on pms (and served by the fake PMS)"

cluster_pms rm -rf "/transcode/$S"
cluster_worker 1 test ! -e "/transcode/$S" || t_fail "the session folder is still on w1"
t_ok "PMS's delete reached the worker"
cluster_stop_fuse || t_fail "fuse did not stop cleanly"
t_ok "fuse unmounted and exited 0"
