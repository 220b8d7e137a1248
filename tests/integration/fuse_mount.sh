#!/bin/bash
# fuse_mount.sh — the mount itself: every operation PMS uses on local
# paths, permissions and ownership for other users (PUID/PGID), clean
# unmounts (fusermount3 -u, SIGTERM with files open), and a restart over
# the stale mount a killed daemon leaves.
set -eu -o pipefail
. "$(dirname "$0")/fuse_lib.sh"
fz_require python3 setpriv
fz_setup

# Files that were there before the mount stay visible through it.
mkdir -p "$FZ/mnt/Transcode/Sessions" "$FZ/mnt/Cache"
echo before >"$FZ/mnt/Cache/old.txt"
chown 4242:4343 "$FZ/mnt/Transcode/Sessions"
fz_mount
grep -q " $FZ/mnt fuse.clusterplex " /proc/self/mounts || fz_fail "not a clusterplex mount"
[ "$(cat "$FZ/mnt/Cache/old.txt")" = before ] || fz_fail "old file not visible"
fz_ok "mounted over a populated folder"

python3 - "$FZ/mnt" <<'EOF'
import errno, os, stat, sys
m = sys.argv[1]
p = lambda *a: os.path.join(m, *a)
def expect_err(code, f, *a):
    try:
        f(*a)
    except OSError as e:
        assert e.errno == code, (f, a, e)
        return
    raise AssertionError("no error from %r %r" % (f, a))

os.mkdir(p("d"), 0o750)
assert stat.S_IMODE(os.stat(p("d")).st_mode) == 0o750
fd = os.open(p("d", "f"), os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o640)
assert os.write(fd, b"hello world") == 11
os.lseek(fd, 0, 0)
assert os.read(fd, 100) == b"hello world"
os.close(fd)
expect_err(errno.EEXIST, os.open, p("d", "f"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
st = os.stat(p("d", "f"))
assert st.st_size == 11 and stat.S_IMODE(st.st_mode) == 0o640
os.truncate(p("d", "f"), 5)
assert open(p("d", "f"), "rb").read() == b"hello"
with open(p("d", "f"), "r+b") as f:
    f.truncate(3)
assert os.stat(p("d", "f")).st_size == 3
os.chmod(p("d", "f"), 0o600)
assert stat.S_IMODE(os.stat(p("d", "f")).st_mode) == 0o600
os.utime(p("d", "f"), (1000000000, 1200000000))
assert os.stat(p("d", "f")).st_mtime == 1200000000
with open(p("d", "f"), "ab") as f:
    f.write(b"++")
assert open(p("d", "f"), "rb").read() == b"hel++"
os.rename(p("d", "f"), p("d", "g"))
expect_err(errno.ENOENT, os.stat, p("d", "f"))
assert sorted(os.listdir(p("d"))) == ["g"]
os.symlink("g", p("d", "l"))
assert os.readlink(p("d", "l")) == "g"
assert open(p("d", "l"), "rb").read() == b"hel++"
os.link(p("d", "g"), p("d", "h"))
assert open(p("d", "h"), "rb").read() == b"hel++"
os.mkdir(p("d", "sub"))
os.rename(p("d", "sub"), p("d", "sub2"))
open(p("d", "sub2", "x"), "w").write("x")
expect_err(errno.ENOTEMPTY, os.rmdir, p("d", "sub2"))
os.unlink(p("d", "sub2", "x"))
os.rmdir(p("d", "sub2"))
os.unlink(p("d", "h"))
open(p("d", "r"), "w").write("replacement")
os.rename(p("d", "r"), p("d", "g"))     # replaces g
assert open(p("d", "g")).read() == "replacement"
assert sorted(os.listdir(p("d"))) == ["g", "l"]
for n in ("g", "l"):
    os.unlink(p("d", n))
expect_err(errno.ENOENT, os.unlink, p("d", "g"))
os.rmdir(p("d"))
sv = os.statvfs(m)
assert sv.f_bsize > 0 and sv.f_blocks > 0 and sv.f_namemax >= 255
expect_err(errno.ENAMETOOLONG, os.stat, p("x" * 300))
print("local operations behave")
EOF
fz_ok "create/list/stat/read/write/rename/truncate/unlink/mkdir/rmdir/statfs/symlink/link"

# PUID/PGID: another user works in a folder of theirs, and owns what it makes.
d=$FZ/mnt/Transcode/Sessions
setpriv --reuid=4242 --regid=4343 --clear-groups sh -c "
	mkdir '$d/plex-transcode-x' && echo seg >'$d/plex-transcode-x/chunk' &&
	cat '$d/plex-transcode-x/chunk' >/dev/null" || fz_fail "the folder's owner cannot work in it"
[ "$(stat -c %u:%g "$d/plex-transcode-x/chunk")" = 4242:4343 ] ||
	fz_fail "new file owned by $(stat -c %u:%g "$d/plex-transcode-x/chunk"), not 4242:4343"
if setpriv --reuid=5555 --regid=5555 --clear-groups sh -c "echo x >'$d/intruder'" 2>/dev/null; then
	fz_fail "another user could write into a 0755 folder it does not own"
fi
setpriv --reuid=5555 --regid=5555 --clear-groups cat "$d/plex-transcode-x/chunk" >/dev/null ||
	fz_fail "allow_other: another user cannot read a 0644 file"
mkdir "$FZ/mnt/shared" && chown 0:4343 "$FZ/mnt/shared" && chmod 2775 "$FZ/mnt/shared"
setpriv --reuid=4242 --regid=7777 --groups=4343 sh -c "echo x >'$FZ/mnt/shared/f'" ||
	fz_fail "group member cannot write into a group-writable folder"
[ "$(stat -c %u:%g "$FZ/mnt/shared/f")" = 4242:4343 ] ||
	fz_fail "setgid folder: file is $(stat -c %u:%g "$FZ/mnt/shared/f"), not 4242:4343"
fz_ok "ownership and permissions for other users (default_permissions, allow_other, setgid)"

fz_unmount
[ "$(stat -c %u:%g "$FZ/mnt/Transcode/Sessions/plex-transcode-x/chunk")" = 4242:4343 ] ||
	fz_fail "ownership not on the folder underneath"
[ "$(cat "$FZ/mnt/Transcode/Sessions/plex-transcode-x/chunk")" = seg ] ||
	fz_fail "content not on the folder underneath"
fz_ok "fusermount3 -u: daemon exited 0; files are on the folder underneath"

# SIGTERM while a file is open and a process sits in the mount: still exit 0,
# and no "Transport endpoint is not connected" left behind.
fz_mount CLUSTERPLEX_FUSE_SHUTDOWN_MS=500
(cd "$FZ/mnt/Cache" && exec 3<old.txt && sleep 30) &
holder=$!
sleep 0.3
kill -TERM "$FZ_PID"
fz_wait_exit "$FZ_PID" 10 || fz_fail "daemon still running 10 s after SIGTERM"
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
FZ_PID=
[ "$FZ_STATUS" = 0 ] || fz_fail "daemon exited $FZ_STATUS after SIGTERM"
fz_mounted && fz_fail "still mounted after SIGTERM"
stat "$FZ/mnt" >/dev/null || fz_fail "mount point unusable after SIGTERM"
[ "$(cat "$FZ/mnt/Cache/old.txt")" = before ] || fz_fail "folder underneath changed"
fz_ok "SIGTERM with open files: exit 0, mount gone, folder usable"

# A daemon killed hard leaves a dead mount; the next one clears it.
fz_mount
kill -KILL "$FZ_PID"
wait "$FZ_PID" 2>/dev/null || true
stat "$FZ/mnt" >/dev/null 2>&1 && fz_fail "expected a dead mount after SIGKILL"
fz_mount
[ "$(cat "$FZ/mnt/Cache/old.txt")" = before ] || fz_fail "remount over a stale mount"
[ "$(grep -c " $FZ/mnt fuse" /proc/self/mounts)" = 1 ] || fz_fail "stacked mounts"
fz_unmount
fz_ok "restart over a stale mount"
