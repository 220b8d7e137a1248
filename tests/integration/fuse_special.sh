#!/bin/bash
# fuse_special.sh — PMS sees only regular files and folders of a worker.
# A FIFO, a device node, a socket or a symlink a (broken or hostile)
# worker puts into a routed session folder is not listed and is ENOENT by
# name, however it got there (already there, created later, renamed over
# a segment), so no open() of PMS's can block on a FIFO whose writer is
# on another host. A symlink inside the worker's folder is followed by
# name (it shows as its target); one pointing out is refused. PMS's
# delete of the session still removes everything, hidden names included.
set -eu -o pipefail
. "$(dirname "$0")/fuse_lib.sh"
fz_require python3 mkfifo mknod timeout
fz_setup
fz_worker w1
S=Transcode/Sessions
fz_mount
mkdir -p "$FZ/mnt/$S/s1"
fz_route "$S/s1" job-1 w1
W=$FZ/w1/$S/s1
M=$FZ/mnt/$S/s1
echo segment >"$W/seg-1.m4s"
mkdir "$W/sub"
echo inner >"$W/sub/f"
mkfifo "$W/evil-fifo"
mknod "$W/evil-zero" c 1 5
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$W/evil-sock"
ln -s seg-1.m4s "$W/link-in"
ln -s /etc/passwd "$W/link-out"
ln -s nowhere "$W/link-dangling"

# Every call on the mount has a deadline: one that blocks is a failure.
t() { timeout 5 "$@"; }

names=$(t ls -A "$M" | tr '\n' ' ')
[ "$names" = "seg-1.m4s sub " ] || fz_fail "listing shows: $names"
for n in evil-fifo evil-zero evil-sock link-dangling link-out; do
	rc=0
	out=$(t cat "$M/$n" 2>&1) || rc=$?
	[ "$rc" != 124 ] || fz_fail "$n: open blocked"
	[ "$rc" != 0 ] || fz_fail "$n: read: $out"
	# A symlink out is an escape attempt: refused with an error of its own.
	[ "$n" = link-out ] || [[ "$out" = *"No such file"* ]] || fz_fail "$n: not ENOENT: $out"
	t stat "$M/$n" >/dev/null 2>&1 && fz_fail "$n: stat succeeded"
done
[ "$(t cat "$M/link-in")" = segment ] || fz_fail "a symlink inside the worker's folder is not followed"
[ "$(t stat -c %F "$M/link-in")" = "regular file" ] || fz_fail "link-in is not shown as its target"
[ "$(t cat "$M/sub/f")" = inner ] || fz_fail "a subfolder's file"
fz_ok "FIFO, device node, socket, dangling symlink: not listed, ENOENT by name; a symlink out refused; nothing blocks"

# Created later (an event), and renamed over a segment PMS already read.
mkfifo "$W/late-fifo"
echo two >"$W/seg-2.m4s"
[ "$(t cat "$M/seg-2.m4s")" = two ] || fz_fail "seg-2"
mkfifo "$W/tmp-fifo"
mv "$W/tmp-fifo" "$W/seg-2.m4s"
ok=
for i in $(seq 60); do
	rc=0
	t cat "$M/seg-2.m4s" >/dev/null 2>&1 || rc=$?
	[ "$rc" != 124 ] || fz_fail "seg-2 (now a FIFO): open blocked"
	if [ "$rc" != 0 ] && ! t stat "$M/seg-2.m4s" >/dev/null 2>&1; then
		ok=1
		break
	fi
	sleep 0.05
done
[ -n "$ok" ] || fz_fail "a segment replaced by a FIFO is still shown"
rc=0
t cat "$M/late-fifo" >/dev/null 2>&1 || rc=$?
[ "$rc" = 1 ] || fz_fail "late-fifo: exit $rc"
[[ " $(t ls -A "$M" | tr '\n' ' ') " = *fifo* ]] && fz_fail "a FIFO created later is listed"
fz_ok "a FIFO created later or renamed over a segment: hidden at once"

# PMS's delete: everything it sees goes, then the hidden names with the
# folder (also in a subfolder that holds only hidden names).
mkdir "$W/only-hidden"
mkfifo "$W/only-hidden/f"
rc=0
t rm -rf "$M" || rc=$?
[ "$rc" = 0 ] || fz_fail "PMS's rm -rf of the session: exit $rc"
[ ! -e "$M" ] || fz_fail "the session folder stayed on the PMS host"
[ ! -e "$W" ] && [ ! -L "$W" ] || fz_fail "the worker's folder stayed: $(ls -A "$W" | tr '\n' ' ')"
[ -e /etc/passwd ] || fz_fail "a symlink's target was deleted"
fz_ok "PMS's delete removes the hidden names with the folder"
fz_unmount
