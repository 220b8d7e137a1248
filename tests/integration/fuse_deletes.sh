#!/bin/bash
# fuse_deletes.sh — nothing of a session folder outlives PMS's delete on
# any worker. A worker that cannot be reached when PMS deletes the folder
# does not make PMS wait, and gets the delete once it is back — also when
# fuse was restarted (or killed) meanwhile. A folder routed to a worker
# before its job moved to another goes from the first worker if it is
# empty (at once, or once that worker is back), and stays if it is not. A
# folder routed to the same worker again is its new job's: an owed delete
# never reaches it. A delete the worker refuses is tried again (bounded),
# and given up at once when no retry can help (its path now leads out of
# the worker's folder: nothing outside is touched).
set -eu -o pipefail
. "$(dirname "$0")/fuse_lib.sh"
fz_require python3 chattr
fz_setup
fz_worker w1
fz_worker w2
fz_worker w3
# An immutable file would outlive the clean-up: it is made mutable first.
cleanup() {
	local st=$?
	chattr -i "$FZ/w1/$S/r/seg-1.m4s" 2>/dev/null || true
	(exit "$st")
	fz_cleanup
}
trap cleanup EXIT
S=Transcode/Sessions
BOUND=15	# s: fuse's reconnect back-off is at most 5 s

# down W: the worker's agents die and it refuses connections; up W: back.
down() {
	local f
	touch "$FZ/workers/$1.down"
	for f in "$FZ"/workers/"$1".*.pid; do
		[ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
	done
	return 0
}
up() { rm -f "$FZ/workers/$1.down"; }

# gone PATH SECONDS: PATH disappears within SECONDS; prints how long it took.
gone() {
	local t0 i
	t0=$(date +%s%N)
	for i in $(seq $(($2 * 20))); do
		if [ ! -e "$1" ]; then
			echo "$((($(date +%s%N) - t0) / 1000000)) ms"
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# session NAME WORKER: a routed session folder with three segments and a
# subfolder on the worker.
session() {
	mkdir -p "$FZ/mnt/$S/$1"
	fz_route "$S/$1" "job-$1" "$2"
	mkdir -p "$FZ/$2/$S/$1/sub"
	for i in 1 2 3; do
		head -c 65536 /dev/urandom >"$FZ/$2/$S/$1/seg-$i.m4s"
	done
	echo x >"$FZ/$2/$S/$1/sub/f"
	ls "$FZ/mnt/$S/$1/seg-3.m4s" >/dev/null || fz_fail "$1: not served"
}

# pms_delete NAME: PMS's rm -rf through the mount ends at once.
pms_delete() {
	local ms
	ms=$(fz_elapsed_ms rm -rf "$FZ/mnt/$S/$1")
	[ ! -e "$FZ/mnt/$S/$1" ] || fz_fail "$1: PMS's delete left the folder"
	[ "$ms" -lt 3000 ] || fz_fail "$1: PMS's delete took $ms ms"
	echo "$ms"
}

fz_mount
session a w1
down w1
ms=$(pms_delete a)
[ -e "$FZ/w1/$S/a/seg-1.m4s" ] || fz_fail "a: deleted on a worker that was down?"
fz_owed "$S/a" w1 || fz_fail "a: the owed delete is not in fuse-routes.json"
grep -q "worker w1: delete of $S/a owed" "$FZ/fuse.log" || fz_fail "a: no log line"
sleep 1
[ -e "$FZ/w1/$S/a" ] || fz_fail "a: gone while w1 was still down"
up w1
took=$(gone "$FZ/w1/$S/a" $BOUND) || fz_fail "a: still on w1 $BOUND s after it came back"
fz_owed "$S/a" w1 && fz_fail "a: still owed after the delete"
grep -q "worker w1: deleted $S/a (owed for" "$FZ/fuse.log" || fz_fail "a: no log line for the replay"
fz_ok "a worker down at PMS's delete: PMS done in $ms ms, the worker's copy gone $took after it was back"

# The same across restarts: SIGTERM with the worker down, then SIGKILL.
session b w1
down w1
pms_delete b >/dev/null
kill -TERM "$FZ_PID"
fz_wait_exit "$FZ_PID" 10 || fz_fail "no exit after SIGTERM"
fz_mount
fz_owed "$S/b" w1 || fz_fail "b: the owed delete lost over a restart"
kill -KILL "$FZ_PID"
wait "$FZ_PID" 2>/dev/null || true
fz_mount
fz_owed "$S/b" w1 || fz_fail "b: the owed delete lost over a crash"
grep -q "worker w1: delete of $S/b still owed" "$FZ/fuse.log" || fz_fail "b: no log line at restart"
[ -e "$FZ/w1/$S/b/seg-1.m4s" ] || fz_fail "b: gone while w1 was down"
up w1
took=$(gone "$FZ/w1/$S/b" $BOUND) || fz_fail "b: still on w1 $BOUND s after it came back"
fz_ok "the owed delete survives SIGTERM and SIGKILL restarts, done $took after the worker was back"

# PMS deletes a folder while fuse is down: the worker's copy goes too.
session g w2
kill -TERM "$FZ_PID"
fz_wait_exit "$FZ_PID" 10 || fz_fail "no exit after SIGTERM"
rm -rf "${FZ:?}/mnt/$S/g"
fz_mount
took=$(gone "$FZ/w2/$S/g" $BOUND) || fz_fail "g: still on w2 after a restart without its folder"
fz_ok "a folder PMS deleted while fuse was down: the worker's copy gone $took after the restart"

# A job moved to another worker: the first one's (empty) folder goes.
mkdir -p "$FZ/mnt/$S/c"
fz_route "$S/c" job-c1 w1
[ -d "$FZ/w1/$S/c" ] || fz_fail "c: WATCH did not create the folder on w1"
fz_route "$S/c" job-c2 w2
took=$(gone "$FZ/w1/$S/c" 5) || fz_fail "c: the empty folder stayed on w1"
[ -d "$FZ/w2/$S/c" ] || fz_fail "c: not on w2"
fz_owed "$S/c" w1 && fz_fail "c: still owed"
fz_ok "a job moved to another worker: its empty folder on the first gone in $took"

# The same with the first worker down when the job moves.
mkdir -p "$FZ/mnt/$S/d"
fz_route "$S/d" job-d1 w1
down w1
fz_route "$S/d" job-d2 w2
fz_owed "$S/d" w1 || fz_fail "d: the removal is not owed to w1"
[ -d "$FZ/w1/$S/d" ] || fz_fail "d: gone while w1 was down"
up w1
took=$(gone "$FZ/w1/$S/d" $BOUND) || fz_fail "d: the empty folder stayed on w1"
fz_ok "the first worker down when the job moved: its empty folder gone $took after it was back"

# A folder that is not empty on the first worker stays as it is.
mkdir -p "$FZ/mnt/$S/e"
fz_route "$S/e" job-e1 w1
echo keep >"$FZ/w1/$S/e/seg-1.m4s"
fz_route "$S/e" job-e2 w2
for i in $(seq 100); do
	grep -q "worker w1: $S/e is not empty, left as it is" "$FZ/fuse.log" && break
	sleep 0.05
done
grep -q "worker w1: $S/e is not empty" "$FZ/fuse.log" || fz_fail "e: no log line"
[ "$(cat "$FZ/w1/$S/e/seg-1.m4s")" = keep ] || fz_fail "e: a file of the first worker was deleted"
fz_owed "$S/e" w1 && fz_fail "e: still owed"
fz_ok "a folder that is not empty on the first worker is left as it is"

# Routed to the same worker again while a delete is owed: the new job's
# files are never touched.
session f w1
down w1
pms_delete f >/dev/null
mkdir -p "$FZ/mnt/$S/f"
up w1
fz_route "$S/f" job-f2 w1
echo new >"$FZ/w1/$S/f/seg-new.m4s"
sleep 2
[ "$(cat "$FZ/w1/$S/f/seg-new.m4s")" = new ] || fz_fail "f: the new job's file was deleted"
[ "$(cat "$FZ/mnt/$S/f/seg-new.m4s")" = new ] || fz_fail "f: the new job's file is not served"
fz_owed "$S/f" w1 && fz_fail "f: still owed after the new route"
fz_ok "routed to the same worker again: the owed delete never reaches the new job"

# The worker refuses the delete (a file it cannot remove): tried again.
session r w1
chattr +i "$FZ/w1/$S/r/seg-1.m4s"
down w1
pms_delete r >/dev/null
up w1
for i in $(seq $((BOUND * 20))); do
	grep -q "worker w1: deleting $S/r failed: Operation not permitted (attempt 1 of 10)" \
	    "$FZ/fuse.log" && break
	sleep 0.05
done
grep -q "worker w1: deleting $S/r failed: .*attempt 1 of 10" "$FZ/fuse.log" ||
	fz_fail "r: no failed attempt logged"
fz_owed "$S/r" w1 || fz_fail "r: no longer owed after a failed attempt"
chattr -i "$FZ/w1/$S/r/seg-1.m4s"
took=$(gone "$FZ/w1/$S/r" $BOUND) || fz_fail "r: not deleted by a later attempt"
fz_owed "$S/r" w1 && fz_fail "r: still owed"
fz_ok "a delete the worker refused is tried again: done $took after it could be"

# No retry can help: the path leads out of the worker's folder now.
session p w3
down w3
pms_delete p >/dev/null
mv "$FZ/w3/Transcode" "$FZ/w3-moved"
ln -s "$FZ/w3-moved" "$FZ/w3/Transcode"
up w3
for i in $(seq $((BOUND * 20))); do
	grep -q "worker w3: giving up deleting $S/p: Invalid cross-device link (0 attempts)" \
	    "$FZ/fuse.log" && break
	sleep 0.05
done
grep -q "worker w3: giving up deleting $S/p: Invalid cross-device link" "$FZ/fuse.log" ||
	fz_fail "p: not given up: $(grep "$S/p" "$FZ/fuse.log" | tail -n 2)"
fz_owed "$S/p" w3 && fz_fail "p: still owed"
[ -e "$FZ/w3-moved/Sessions/p/seg-1.m4s" ] || fz_fail "p: deleted through a symlink out of the worker's folder"
fz_ok "a delete whose path leads out of the worker's folder is given up at once, nothing outside touched"

# A worker that never got the WATCH (down) owes nothing.
down w2
mkdir -p "$FZ/mnt/$S/h"
fz_route "$S/h" job-h w2 error
fz_owed "$S/h" w2 && fz_fail "h: a delete owed to a worker that never had the folder"
up w2
fz_ok "a route refused by an unreachable worker owes it nothing"
fz_unmount
