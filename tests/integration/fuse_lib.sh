# fuse_lib.sh — helpers for tests/integration/fuse_*.sh and bench/fuse.sh.
#
# Every test works in its own temporary folder ($FZ), mounts in
# $FZ/mnt, and cleans up on any exit (unmount, daemons, agents, sshd).
# Workers are real `clusterplex-agent exec` processes: spawned on a socket
# pair by build/tests/clusterplex-fuse-pipe (FZ_TRANSPORT=pipe, default),
# or behind a throwaway sshd on loopback (FZ_TRANSPORT=ssh, the product
# binary). Sourced by bash; the caller has `set -eu -o pipefail`.

FZ_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FZ_BUILD=${BUILD:-$FZ_SRC/build}
case $FZ_BUILD in /*) ;; *) FZ_BUILD=$FZ_SRC/$FZ_BUILD ;; esac
FZ_AGENT=$FZ_BUILD/clusterplex-agent
FZ_TRANSPORT=${FZ_TRANSPORT:-pipe}
FZ_PID=
FZ_SSHD_PID=
# Ports for the sshd: 22000 + a checksum of "fuse", + a slot (FZ_PORT_BASE
# sets another base: two runs at once on one machine).
FZ_PORT_BASE=${FZ_PORT_BASE:-$((22000 + $(printf fuse | cksum | cut -d' ' -f1) % 2000))}
export PYTHONPATH=$FZ_SRC/tests/integration${PYTHONPATH:+:$PYTHONPATH}

fz_fail() {
	echo "FAIL: $*" >&2
	if [ -n "${FZ:-}" ] && [ -f "$FZ/fuse.log" ]; then
		echo "--- last lines of fuse.log:" >&2
		tail -n 30 "$FZ/fuse.log" >&2
	fi
	exit 1
}

fz_ok() {
	echo "ok - $*"
}

fz_require() {
	[ "$(id -u)" = 0 ] || fz_fail "must run as root"
	[ -c /dev/fuse ] || fz_fail "/dev/fuse is missing"
	[ -x "$FZ_AGENT" ] || fz_fail "build/clusterplex-agent is not built"
	if [ "$FZ_TRANSPORT" = ssh ]; then
		FZ_FUSE=$FZ_BUILD/clusterplex-fuse
	else
		FZ_FUSE=$FZ_BUILD/tests/clusterplex-fuse-pipe
	fi
	[ -x "$FZ_FUSE" ] || fz_fail "$FZ_FUSE is not built (make fuse-tests)"
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null || fz_fail "$t is not installed"
	done
}

fz_mounted() {
	grep -q " $FZ/mnt fuse" /proc/self/mounts
}

# fz_kill_tree PID [SIGNAL]: PID and every process below it, by pid (an
# sshd's sessions and their agents), deepest first.
fz_kill_tree() {
	local sig=${2:-KILL} p
	for p in $(fz_descendants "$1"); do
		kill -"$sig" "$p" 2>/dev/null || true
	done
	kill -"$sig" "$1" 2>/dev/null || true
}

fz_descendants() {
	awk -v root="$1" '
	    { ppid[$1] = $4 }
	    END {
		n = 0; q[n++] = root
		for (i = 0; i < n; i++)
			for (p in ppid)
				if (ppid[p] == q[i]) { q[n++] = p; out[p] = i }
		for (p in out) print p
	    }' < <(ps -e -o pid=,comm=,stat=,ppid= | awk '{ print $1, "x", "x", $NF }') |
	    sort -rn
}

fz_cleanup() {
	local status=$? f
	set +e
	if [ -n "${FZ:-}" ]; then
		if fz_mounted; then
			fusermount3 -u "$FZ/mnt" 2>/dev/null || umount -l "$FZ/mnt"
		fi
		if [ -n "$FZ_PID" ] && kill -0 "$FZ_PID" 2>/dev/null; then
			kill -TERM "$FZ_PID"
			fz_wait_exit "$FZ_PID" 5 || kill -KILL "$FZ_PID"
		fi
		for f in "$FZ"/workers/*.pid "$FZ"/*.pid; do
			[ -f "$f" ] || continue
			kill -CONT "$(cat "$f")" 2>/dev/null
			fz_kill_tree "$(cat "$f")"
		done
		fz_mounted && umount -l "$FZ/mnt"
		if [ "$status" != 0 ] && [ -n "${FZ_KEEP_LOGS:-}" ]; then
			cp "$FZ/fuse.log" "$FZ_KEEP_LOGS" 2>/dev/null
		fi
		fz_mounted || rm -rf "$FZ"
	fi
	exit "$status"
}

# fz_setup: the test's folder, and the clean-up trap.
fz_setup() {
	FZ=$(mktemp -d /tmp/fuse-it.XXXXXX)
	chmod 755 "$FZ"
	mkdir -p "$FZ/mnt" "$FZ/run" "$FZ/workers"
	: >"$FZ/fuse.log"
	trap fz_cleanup EXIT
	trap 'exit 130' INT TERM HUP
}

# fz_worker NAME [NAME=value...]: a worker whose transcode folder is $FZ/NAME.
fz_worker() {
	local name=$1
	shift
	mkdir -p "$FZ/$name"
	{
		echo "CLUSTERPLEX_TRANSCODE_DIR=$FZ/$name"
		echo "CLUSTERPLEX_WORKER_NAME=$name"
		echo "CLUSTERPLEX_LOG_LEVEL=${FZ_AGENT_LOG:-info}"
		for kv in "$@"; do echo "$kv"; done
	} >"$FZ/workers/$name.env"
}

# fz_wait_exit PID SECONDS: waits for our child PID to end (not in a
# subshell: only its parent can wait); its status goes to FZ_STATUS.
fz_wait_exit() {
	local pid=$1 n=$(($2 * 20)) i=0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -le "$n" ] || return 1
		sleep 0.05
	done
	FZ_STATUS=0
	wait "$pid" 2>/dev/null || FZ_STATUS=$?
}

# fz_mount [NAME=value...]: starts the daemon on $FZ/mnt, waits for its
# mount. A dead mount left by a killed daemon does not count (and device
# numbers and mount ids are both reused at once): the daemon logs
# "serving" once its own mount is in place.
fz_mount() {
	local i old
	old=$(grep -c ' serving ' "$FZ/fuse.log" 2>/dev/null || true)
	env CFS_TEST_AGENT="$FZ_AGENT" CFS_TEST_WORKERS="$FZ/workers" \
	    CLUSTERPLEX_RUN_DIR="$FZ/run" \
	    CLUSTERPLEX_LOG_LEVEL="${FZ_LOG:-info}" \
	    CLUSTERPLEX_SSH_KEY="$FZ/ssh/id_ed25519" \
	    CLUSTERPLEX_KNOWN_HOSTS="$FZ/ssh/known_hosts" \
	    "$@" "$FZ_FUSE" "$FZ/mnt" >>"$FZ/fuse.log" 2>&1 &
	FZ_PID=$!
	for i in $(seq 100); do
		if [ "$(grep -c ' serving ' "$FZ/fuse.log")" -gt "${old:-0}" ] &&
		    fz_mounted; then
			return 0
		fi
		kill -0 "$FZ_PID" 2>/dev/null || fz_fail "the daemon died at start"
		sleep 0.05
	done
	fz_fail "no mount within 5 s"
}

# fz_unmount: fusermount3 -u, and the daemon must exit 0 by itself.
fz_unmount() {
	fusermount3 -u "$FZ/mnt" || fz_fail "fusermount3 -u failed"
	fz_wait_exit "$FZ_PID" 10 || fz_fail "daemon still running 10 s after unmount"
	[ "$FZ_STATUS" = 0 ] || fz_fail "daemon exited $FZ_STATUS after unmount"
	# libfuse reports a refused reply (a double answer, a bad length) here.
	if grep -q '^fuse: ' "$FZ/fuse.log"; then
		fz_fail "libfuse complained: $(grep -m3 '^fuse: ' "$FZ/fuse.log")"
	fi
	FZ_PID=
}

# fz_endpoint NAME: the worker's endpoint as JSON.
fz_endpoint() {
	local key=none port=22
	if [ "$FZ_TRANSPORT" = ssh ]; then
		key=$(cut -d' ' -f1,2 "$FZ/ssh/host_$1.pub")
		port=$(cat "$FZ/ssh/port_$1")
	fi
	printf '{"name":"%s","host":"127.0.0.1","port":%s,"user":"root","host_key":"%s"}' \
	    "$1" "$port" "$key"
}

# fz_route DIR JOB WORKER [EXPECT]: ROUTE_ADD; EXPECT is ok (default) or error.
fz_route() {
	local want=${4:-ok}
	python3 - "$FZ/run/fuse.sock" "$1" "$2" "$(fz_endpoint "$3")" "$want" <<'EOF'
import json, sys, fuse_wire as w
sock, d, job, ep, want = sys.argv[1:]
c = w.control(sock)
kind, ident, payload = w.route_add(c, 9, d, job, json.loads(ep))
ok = kind == w.MSG["ROUTE_OK"]
if ok != (want == "ok"):
    sys.exit("ROUTE_ADD %s: got %d %r" % (d, kind, payload))
EOF
}

fz_route_del() {
	python3 - "$FZ/run/fuse.sock" "$1" <<'EOF'
import sys, fuse_wire as w
c = w.control(sys.argv[1])
kind, ident, payload = w.route_del(c, 3, sys.argv[2])
if kind != w.MSG["ROUTE_OK"]:
    sys.exit("ROUTE_DEL: got %d %r" % (kind, payload))
EOF
}

# fz_routed DIR: 0 when fuse-routes.json keeps a route of DIR.
fz_routed() {
	python3 - "$FZ/run/fuse-routes.json" "$1" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))
sys.exit(0 if any(r["dir"] == sys.argv[2] for r in t["routes"]) else 1)
EOF
}

# fz_owed DIR WORKER: 0 when fuse-routes.json keeps a delete of DIR owed to
# WORKER.
fz_owed() {
	python3 - "$FZ/run/fuse-routes.json" "$1" "$2" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))
sys.exit(0 if any(d["dir"] == sys.argv[2] and d["worker"]["name"] == sys.argv[3]
                  for d in t.get("deletes", [])) else 1)
EOF
}

# fz_expect_host_key_refused DIR NAME HOST PUBKEY: ROUTE_ADD of DIR (below
# the mount) to worker NAME at HOST, w1's port, pinning PUBKEY's key, is
# answered ERROR host-key.
fz_expect_host_key_refused() {
	python3 - "$FZ/run/fuse.sock" "$@" "$(cat "$FZ/ssh/port_w1")" <<'EOF'
import sys, fuse_wire as w
sock, d, name, host, pub, port = sys.argv[1:]
ep = {"name": name, "host": host, "port": int(port), "user": "root",
      "host_key": " ".join(open(pub).read().split()[:2])}
kind, ident, payload = w.route_add(w.control(sock), 5, d, "job-" + name, ep)
assert kind == w.MSG["ERROR"] and b"host-key" in payload, (kind, payload)
EOF
}

# fz_expect_identical WORKER_DIR MOUNT_DIR: a 3 MB segment renamed into
# place and a 40 MB file written on the worker read the same through the
# mount (the segment within 5 s).
fz_expect_identical() {
	local w=$1 m=$2 i
	head -c 3000000 /dev/urandom >"$w/chunk-stream0-00001.m4s.tmp"
	mv "$w/chunk-stream0-00001.m4s.tmp" "$w/chunk-stream0-00001.m4s"
	for i in $(seq 100); do
		cmp -s "$w/chunk-stream0-00001.m4s" "$m/chunk-stream0-00001.m4s" && break
		sleep 0.05
	done
	cmp "$w/chunk-stream0-00001.m4s" "$m/chunk-stream0-00001.m4s" ||
		fz_fail "segment differs through the mount"
	head -c 40000000 /dev/urandom >"$w/big"
	cmp "$w/big" "$m/big" || fz_fail "large file differs through the mount"
}

# fz_expect_mute_withdrawn DIR: ROUTE_ADD of DIR (created below the mount)
# to a worker that accepts TCP and never says a word (its key pinned and
# listed, so either SSH client gets as far as waiting), by a shim that
# gives up after 0.5 s without ROUTE_DEL: no answer, and the route does
# not stay behind.
fz_expect_mute_withdrawn() {
	mkdir -p "$FZ/mnt/$1"
	python3 - "$FZ/run/fuse.sock" "$1" "$FZ/ssh/known_hosts" "$FZ/ssh/host_w1.pub" <<'EOF'
import json, socket, sys, time, fuse_wire as w
sock, d, kh, pub = sys.argv[1:]
mute = socket.socket()
mute.bind(("127.0.0.1", 0))
mute.listen(8)                          # accepts TCP, never says a word
key = " ".join(open(pub).read().split()[:2])
with open(kh, "a") as f:                # listed: ssh runs, and waits
    f.write("[127.0.0.1]:%d %s\n" % (mute.getsockname()[1], key))
ep = {"name": "mute", "host": "127.0.0.1", "port": mute.getsockname()[1],
      "user": "root", "host_key": key}
c = w.control(sock)
c.send(w.MSG["ROUTE_ADD"], 1, json.dumps({"dir": d, "job": "j", "worker": ep}).encode())
try:
    m = c.recv(0.5)
    sys.exit("an answer came from a mute worker: %r" % (m,))
except socket.timeout:
    pass
c.sock.close()                          # the shim gives up
time.sleep(0.5)
EOF
	grep -q "\"$1\"" "$FZ/run/fuse-routes.json" &&
		fz_fail "a route nobody waits for stayed"
	return 0
}

# fz_expect_lost FILE: w1's sshd killed with its sessions and agents;
# FILE (through the mount) fails within 2.5 s, never reads, never hangs.
fz_expect_lost() {
	local ms
	fz_kill_tree "$(cat "$FZ/sshd_w1.pid")"
	ms=$(fz_elapsed_ms cat "$1")
	[ "$ms" -lt 2500 ] || fz_fail "a lookup on a lost worker took $ms ms"
	if cat "$1" 2>/dev/null; then
		fz_fail "a read on a lost worker succeeded"
	fi
	fz_ok "worker gone: errors in $ms ms"
}

# fz_expect_back WORKER_FILE MOUNT_FILE: w1's sshd started again on its
# port; WORKER_FILE, written on the worker now, reads through the mount as
# MOUNT_FILE within 10 s: fuse reconnected by itself.
fz_expect_back() {
	local i
	/usr/sbin/sshd -D -f "$FZ/ssh/sshd_w1.conf" -E "$FZ/sshd_w1.log" &
	echo $! >"$FZ/sshd_w1.pid"
	echo back >"$1"
	for i in $(seq 200); do
		[ "$(cat "$2" 2>/dev/null)" = back ] && break
		sleep 0.05
	done
	[ "$(cat "$2")" = back ] || fz_fail "no reconnect within 10 s"
	fz_ok "sshd back: reconnected by itself"
}

# fz_sshd NAME: a throwaway sshd on 127.0.0.1 whose forced command is the
# worker's agent (key-only, pinned host key); sshfs gets a second key that
# runs sftp-server instead.
fz_sshd() {
	local name=$1 d=$FZ/ssh port i
	mkdir -p "$d"
	port=$((FZ_PORT_BASE + $(find "$d" -name 'port_*' | wc -l)))
	[ -f "$d/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$d/id_ed25519"
	[ -f "$d/sftp_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$d/sftp_ed25519"
	ssh-keygen -q -t ed25519 -N '' -f "$d/host_$name"
	echo "$port" >"$d/port_$name"
	{
		printf 'restrict,command="%s exec --env-file %s" %s\n' "$FZ_AGENT" \
		    "$FZ/workers/$name.env" "$(cat "$d/id_ed25519.pub")"
		printf 'restrict,command="/usr/lib/openssh/sftp-server" %s\n' \
		    "$(cat "$d/sftp_ed25519.pub")"
	} >"$d/authorized_$name"
	echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$d/host_$name.pub")" >>"$d/known_hosts"
	cat >"$d/sshd_$name.conf" <<EOF
ListenAddress 127.0.0.1:$port
HostKey $d/host_$name
AuthorizedKeysFile $d/authorized_$name
PidFile $d/sshd_$name.pid
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
DisableForwarding yes
PermitTTY no
MaxSessions 64
Subsystem sftp /usr/lib/openssh/sftp-server
MaxStartups 64:30:128
ClientAliveInterval 2
ClientAliveCountMax 3
LogLevel ERROR
EOF
	mkdir -p /run/sshd
	/usr/sbin/sshd -D -f "$d/sshd_$name.conf" -E "$FZ/sshd_$name.log" &
	echo $! >"$FZ/sshd_$name.pid"
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		sleep 0.05
	done
	fz_fail "sshd for $name did not listen on $port"
}

# fz_elapsed_ms CMD...: runs CMD, prints how long it took (ms); keeps going on failure.
fz_elapsed_ms() {
	local t0 t1
	t0=$(date +%s%N)
	"$@" >/dev/null 2>&1 || true
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}
