#!/bin/bash
# fuse_ssh.sh — the product binary over real SSH: a throwaway sshd on
# loopback runs the worker's agent as its forced command. Segments arrive
# through the mount; a wrong pinned host key or an unknown worker is
# refused at ROUTE_ADD; sshd going away fails reads fast; sshd back, the
# daemon reconnects by itself.
set -eu -o pipefail
FZ_TRANSPORT=ssh
. "$(dirname "$0")/fuse_lib.sh"
fz_require python3 ssh-keygen
fz_setup
fz_worker w1
fz_sshd w1
fz_mount CLUSTERPLEX_FUSE_SSH=libssh2 CLUSTERPLEX_KEEPALIVE_MS=300 CLUSTERPLEX_FUSE_TIMEOUT_MS=2000
S=Transcode/Sessions
mkdir -p "$FZ/mnt/$S/a" "$FZ/mnt/$S/bad"
fz_route "$S/a" job-a w1
[ -d "$FZ/w1/$S/a" ] || fz_fail "the worker does not watch the folder"
fz_ok "ROUTE_OK over SSH (host key pinned)"

W=$FZ/w1/$S/a
fz_expect_identical "$W" "$FZ/mnt/$S/a"
grep -q "w1: lane 1: file service ready" "$FZ/fuse.log" ||
	fz_fail "the second connection never came up"
fz_ok "segments and a 40 MB file identical over SSH, on two connections"

# Another host key than the pinned one: refused, and said so.
fz_expect_host_key_refused "$S/bad" w1-imposter 127.0.0.1 "$FZ/ssh/id_ed25519.pub"
grep -q '"Transcode/Sessions/bad"' "$FZ/run/fuse-routes.json" && fz_fail "refused route persisted"
fz_ok "a worker presenting another host key is refused (ERROR host-key)"

# A worker that never answers, and a shim that stops waiting (it runs the
# job locally then, without ROUTE_DEL): the route must not stay behind.
fz_expect_mute_withdrawn "$S/mute"
echo local >"$FZ/mnt/$S/mute/temp-0.srt"
[ -f "$FZ/mnt/$S/mute/temp-0.srt" ] && [ ! -e "$FZ/w1/$S/mute" ] ||
	fz_fail "the abandoned route still takes writes"
fz_ok "a route abandoned by its shim before it was confirmed is withdrawn"

# sshd and its sessions gone: reads fail within the bound, never hang.
fz_expect_lost "$FZ/mnt/$S/a/chunk-stream0-00002.m4s"
# sshd back on the same port: the route works again without the shim.
fz_expect_back "$W/chunk-stream0-00003.m4s" "$FZ/mnt/$S/a/chunk-stream0-00003.m4s"
rm -rf "$FZ/mnt/$S/a"
[ -e "$W" ] && fz_fail "session folder not deleted on the worker"
fz_ok "session deleted on the worker over SSH"
fz_unmount
