#!/bin/bash
# fuse_restart.sh — routes outlive the daemon: restarted (cleanly or after
# a crash), it serves the running jobs' folders from their workers again
# without any shim asking. ROUTE_DEL makes a folder local again, a route
# whose worker cannot be reached is refused (so the shim can still run the
# job locally), and routes of folders deleted meanwhile are dropped.
set -eu -o pipefail
. "$(dirname "$0")/fuse_lib.sh"
fz_require python3
fz_setup
fz_worker w1
fz_worker w2
S=Transcode/Sessions
fz_mount
mkdir -p "$FZ/mnt/$S/a" "$FZ/mnt/$S/b" "$FZ/mnt/$S/gone"
fz_route "$S/a" job-a w1
fz_route "$S/b" job-b w2
fz_route "$S/gone" job-gone w1
echo one >"$FZ/w1/$S/a/chunk-1"
[ "$(cat "$FZ/mnt/$S/a/chunk-1")" = one ] || fz_fail "first read"
fz_ok "three routes added"

# A clean restart.
kill -TERM "$FZ_PID"
fz_wait_exit "$FZ_PID" 10 || fz_fail "no exit after SIGTERM"
[ "$FZ_STATUS" = 0 ] || fz_fail "exit $FZ_STATUS after SIGTERM"
rmdir "$FZ/mnt/$S/gone"		# PMS cleaned up while we were away
fz_mount
[ "$(cat "$FZ/mnt/$S/a/chunk-1")" = one ] || fz_fail "route a lost over a restart"
echo two >"$FZ/w1/$S/a/chunk-2.tmp"
mv "$FZ/w1/$S/a/chunk-2.tmp" "$FZ/w1/$S/a/chunk-2"
echo bee >"$FZ/w2/$S/b/chunk-1"
for i in $(seq 40); do
	[ "$(cat "$FZ/mnt/$S/a/chunk-2" 2>/dev/null)" = two ] && break
	sleep 0.05
done
[ "$(cat "$FZ/mnt/$S/a/chunk-2")" = two ] || fz_fail "new segment not seen after a restart"
[ "$(cat "$FZ/mnt/$S/b/chunk-1")" = bee ] || fz_fail "route b lost over a restart"
fz_routed "$S/gone" && fz_fail "a route whose folder is gone was kept"
fz_ok "SIGTERM and restart: routes restored, the gone folder's route dropped"

# A crash: the stale mount is cleared and the routes come back.
kill -KILL "$FZ_PID"
wait "$FZ_PID" 2>/dev/null || true
fz_mount
[ "$(cat "$FZ/mnt/$S/b/chunk-1")" = bee ] || fz_fail "route b lost over a crash"
fz_ok "SIGKILL and restart: routes restored"

# ROUTE_DEL: the folder shows its local content again (nothing deleted).
fz_route_del "$S/b"
# The kernel's cached names of the folder go a moment later (asynchronously).
for i in $(seq 40); do
	[ -e "$FZ/mnt/$S/b/chunk-1" ] || break
	sleep 0.05
done
[ -e "$FZ/mnt/$S/b/chunk-1" ] && fz_fail "route b still served after ROUTE_DEL"
[ -e "$FZ/w2/$S/b/chunk-1" ] || fz_fail "ROUTE_DEL deleted the worker's file"
fz_route_del "$S/never-routed"	# idempotent
fz_ok "ROUTE_DEL"

# A worker that cannot be reached: ERROR, not a route that would serve nothing.
touch "$FZ/workers/w2.down"
cat "$FZ"/workers/w2.*.pid | xargs kill -KILL
mkdir -p "$FZ/mnt/$S/c"
fz_route "$S/c" job-c w2 error
fz_routed "$S/c" && fz_fail "a refused route was persisted"
# Nested routes are refused, a route again for the same folder replaces it.
fz_route "$S/a/inner" job-x w1 error
fz_route "$S" job-x w1 error
rm "$FZ/workers/w2.down"
mkdir -p "$FZ/w2/$S/a" && echo moved >"$FZ/w2/$S/a/chunk-1"
fz_route "$S/a" job-a2 w2
[ "$(cat "$FZ/mnt/$S/a/chunk-1")" = moved ] || fz_fail "a replacing route still reads the old worker"
fz_ok "unreachable worker refused; nested routes refused; a newer route replaces"
fz_unmount
