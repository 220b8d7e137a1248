#!/bin/bash
# fuse_openssh.sh — the product binary with CLUSTERPLEX_FUSE_SSH=openssh:
# each connection is a /usr/bin/ssh process behind which a throwaway sshd
# on loopback runs the worker's agent. The same checks as fuse_ssh.sh
# (pinned host key, segments and a large file identical on two
# connections, another host key refused with "host-key", sshd gone →
# errors fast, sshd back → reconnected), and the processes: ssh is never
# left behind, neither as a zombie nor after fuse exits or is killed.
set -eu -o pipefail
FZ_TRANSPORT=ssh
. "$(dirname "$0")/fuse_lib.sh"
FZ_PORT_BASE=$((FZ_PORT_BASE + 100))	# apart from fuse_ssh.sh's sshd
fz_require python3 ssh ssh-keygen
fz_setup
fz_worker w1
fz_sshd w1
KEY=$FZ/ssh/id_ed25519

# ssh processes of this test (ours carry its key path in their argv).
ossh_pids() {
	pgrep -f -- "-i $KEY " || true
}

# ossh_gone SECONDS: no ssh of ours left within that time.
ossh_gone() {
	local i
	for i in $(seq $(($1 * 20))); do
		[ -z "$(ossh_pids)" ] && return 0
		sleep 0.05
	done
	return 1
}

# Zombies under fuse that stay zombies (one may be caught between its
# exit and the loop reaping it).
fuse_zombies() {
	local a b
	a=$(ps --ppid "$FZ_PID" -o pid=,stat= | awk '$2 ~ /^Z/ { print $1 }')
	sleep 0.3
	b=$(ps --ppid "$FZ_PID" -o pid=,stat= | awk '$2 ~ /^Z/ { print $1 }')
	comm -12 <(echo "$a" | sort) <(echo "$b" | sort) | grep -c . || true
}

fz_mount CLUSTERPLEX_FUSE_SSH=openssh CLUSTERPLEX_KEEPALIVE_MS=300 \
    CLUSTERPLEX_FUSE_TIMEOUT_MS=2000
grep -q 'openssh transport' "$FZ/fuse.log" || fz_fail "not the openssh transport"
S=Transcode/Sessions
mkdir -p "$FZ/mnt/$S/a" "$FZ/mnt/$S/bad" "$FZ/mnt/$S/unlisted"
fz_route "$S/a" job-a w1
[ -d "$FZ/w1/$S/a" ] || fz_fail "the worker does not watch the folder"
fz_ok "ROUTE_OK through OpenSSH's client (host key pinned)"

# The pinned key, alone, in a private known_hosts file.
khs=$(find "$FZ/run/fuse-ssh" -name 'known_hosts.*' ! -name '*.tmp')
[ -n "$khs" ] || fz_fail "no known_hosts file of ours"
for kh in $khs; do
	[ "$(stat -c %a "$kh")" = 600 ] || fz_fail "$kh is not 0600"
	[ "$(cat "$kh")" = "clusterplex-worker $(cut -d' ' -f1,2 "$FZ/ssh/host_w1.pub")" ] ||
		fz_fail "$kh holds something else than the pinned key"
done
[ "$(stat -c %a "$FZ/run/fuse-ssh")" = 700 ] || fz_fail "fuse-ssh/ is not 0700"
pid=$(ossh_pids | head -n 1)
tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- '-F /dev/null .*StrictHostKeyChecking=yes' ||
	fz_fail "ssh runs without its strict options: $(tr '\0' ' ' <"/proc/$pid/cmdline")"
[ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ] || fz_fail "ssh is not in its own process group"
fz_ok "the pinned key alone in a 0600 known_hosts; ssh strict, in its own group"

W=$FZ/w1/$S/a
fz_expect_identical "$W" "$FZ/mnt/$S/a"
# The second connection is started once the first is ready; an ssh
# process takes longer to get there than the 40 MB above may take.
for i in $(seq 100); do
	grep -q "w1: lane 1: file service ready" "$FZ/fuse.log" && break
	sleep 0.05
done
grep -q "w1: lane 1: file service ready" "$FZ/fuse.log" ||
	fz_fail "the second connection never came up"
n=$(ossh_pids | wc -l)
[ "$n" = 2 ] || fz_fail "$n ssh processes for 2 connections"
fz_ok "segments and a 40 MB file identical through ssh, on two connections"

# Another host key than the pinned one: refused, with libssh2's error.
fz_expect_host_key_refused "$S/bad" w1-imposter 127.0.0.1 "$FZ/ssh/id_ed25519.pub"
grep -q '"Transcode/Sessions/bad"' "$FZ/run/fuse-routes.json" && fz_fail "refused route persisted"
fz_ok "a worker presenting another host key is refused (ERROR host-key)"

# The same, with CLUSTERPLEX_KNOWN_HOSTS listing the pinned (wrong) key for
# that name: ssh itself sees another key and refuses it.
echo "[localhost]:$(cat "$FZ/ssh/port_w1") $(cut -d' ' -f1,2 "$FZ/ssh/id_ed25519.pub")" \
    >>"$FZ/ssh/known_hosts"
mkdir -p "$FZ/mnt/$S/bad2"
fz_expect_host_key_refused "$S/bad2" w1-imposter2 localhost "$FZ/ssh/id_ed25519.pub"
grep -q 'w1-imposter2: lane 0: ssh: Host key verification failed' "$FZ/fuse.log" ||
	fz_fail "ssh's reason is not in the log"
fz_ok "ssh refusing the server's key is the same ERROR host-key, its reason logged"

# The right key pinned, but CLUSTERPLEX_KNOWN_HOSTS does not list it for
# that name: refused too, as libssh2 does (both must accept the server).
fz_expect_host_key_refused "$S/unlisted" w1-unlisted localhost "$FZ/ssh/host_w1.pub"
fz_ok "a pinned key that CLUSTERPLEX_KNOWN_HOSTS does not list is refused (host-key)"

# A worker that never answers, and a shim that stops waiting.
fz_expect_mute_withdrawn "$S/mute"
fz_ok "a route abandoned by its shim before it was confirmed is withdrawn"

# sshd and its sessions gone: reads fail within the bound, never hang.
fz_expect_lost "$FZ/mnt/$S/a/chunk-stream0-00002.m4s"
sleep 1		# a few reconnects refused meanwhile
[ "$(fuse_zombies)" = 0 ] || fz_fail "zombie ssh processes under fuse"
grep -q 'w1: lane 0: ssh: .*Connection refused' "$FZ/fuse.log" ||
	fz_fail "refused reconnects not logged from ssh's stderr"
fz_ok "reconnects refused meanwhile: each ssh reaped, its reason logged"

fz_expect_back "$W/chunk-stream0-00003.m4s" "$FZ/mnt/$S/a/chunk-stream0-00003.m4s"
rm -rf "$FZ/mnt/$S/a"
[ -e "$W" ] && fz_fail "session folder not deleted on the worker"
fz_ok "session deleted on the worker"
fz_unmount
ossh_gone 2 || fz_fail "ssh left after fuse exited: $(ossh_pids)"
[ -z "$(find "$FZ/run/fuse-ssh" -name 'known_hosts.*')" ] ||
	fz_fail "known_hosts files left behind"
fz_ok "fuse exited 0: no ssh left, its known_hosts files removed"

# fuse killed outright: its ssh processes die with it (PR_SET_PDEATHSIG).
mkdir -p "$FZ/w1/$S/k"
fz_mount CLUSTERPLEX_FUSE_SSH=openssh
mkdir -p "$FZ/mnt/$S/k"
fz_route "$S/k" job-k w1
[ -n "$(ossh_pids)" ] || fz_fail "no ssh for the route"
# The worker frozen: ssh would wait for it (ServerAlive: 3 s and more)
# rather than end at the EOF of its stdin; only the death signal ends it.
fz_kill_tree "$(cat "$FZ/sshd_w1.pid")" STOP
kill -KILL "$FZ_PID"
ossh_gone 1 || fz_fail "ssh outlived a killed fuse: $(ossh_pids)"
fz_kill_tree "$(cat "$FZ/sshd_w1.pid")" CONT
fz_wait_exit "$FZ_PID" 5 || true
FZ_PID=
fz_ok "fuse killed (worker frozen): no ssh left"
