#!/bin/bash
# fuse_push.sh — contents pushed while segments are written (PUSH/FPUSH):
#
#  1. never torn, never stale: a writer on the "worker" writes segments
#     the ways transcoders do (DASH *.tmp + rename, HLS in place + close),
#     and the nasty ways (a header patched after its block went out, a
#     name replaced by a rename, a file truncated and rewritten); a reader
#     on the PMS side reads each name the moment it is renamed or closed.
#     Every read of a new name returns exactly its final bytes; a replaced
#     name shows the old bytes, then only the new ones; with 2 and 3
#     connections (each lane pushes its share);
#  2. a file deleted while written (and one deleted after close, before
#     its rename) leaves nothing: no descriptor in any agent, nothing held
#     by fuse;
#  3. memory stays bounded: 24 sessions writing at once, against a 16 MiB
#     cache: fuse's and the agents' peak RSS do not grow with the data;
#  4. with the default 256 MiB cache, blocks do not stay once not needed:
#     64 segments of 2 MiB read as PMS does (their passthrough copies hold
#     them), then a 96 MiB file read once (the kernel's page cache holds
#     it): fuse's RSS stays far below what went through.
set -eu -o pipefail
. "$(dirname "$0")/fuse_lib.sh"
fz_require python3
fz_setup
fz_worker w1
S=Transcode/Sessions

# Descriptors of the worker's agents that point at deleted files.
agent_deleted_fds() {
	local f p n=0
	for f in "$FZ"/workers/w1.*.pid; do
		p=$(cat "$f")
		[ -d "/proc/$p" ] || continue
		n=$((n + $(find "/proc/$p/fd" -type l -printf '%l\n' 2>/dev/null |
		    grep -c '(deleted)' || true)))
	done
	echo "$n"
}

# 2 connections with passthrough (complete files read from local copies),
# 3 without (their pages pushed into the kernel's page cache).
for conns in 2 3; do
	pt=$((conns == 2))
	fz_mount CLUSTERPLEX_FUSE_CONNECTIONS=$conns CLUSTERPLEX_LOG_LEVEL=debug \
	    CLUSTERPLEX_FUSE_PASSTHROUGH=$pt
	mkdir -p "$FZ/mnt/$S/torn$conns"
	fz_route "$S/torn$conns" "job-torn$conns" w1
	sleep 0.3	# every lane's PUSH acknowledged
	python3 - "$FZ/w1/$S/torn$conns" "$FZ/mnt/$S/torn$conns" <<'EOF'
import errno, hashlib, os, queue, random, sys, threading, time
wrk, mnt = sys.argv[1:]
rng = random.Random(7)
B = 128 * 1024
ready = queue.Queue()
def content(tag, size):
    seed = hashlib.sha256(tag.encode()).digest()
    return (seed * (size // 32 + 1))[:size]
def write_pieces(fd, data, piece, pause=0.0):
    for k in range(0, len(data), piece):
        os.write(fd, data[k:k + piece])
        if pause:
            time.sleep(pause)
def writer():
    sizes = [1, 1000, B - 1, B, B + 1, 2 * B, 3 * B + 5, 1 << 20, (2 << 20) + 3]
    for i in range(60):
        kind = ("dash", "hls", "patch", "replace", "rewrite")[i % 5]
        size = sizes[i % len(sizes)] if i < 45 else rng.randrange(1, 3 << 20)
        name = "%s-%03d.m4s" % (kind, i)
        new = content(name + "/final", size)
        old = None
        if kind == "dash":
            fd = os.open(os.path.join(wrk, name + ".tmp"), os.O_WRONLY | os.O_CREAT)
            write_pieces(fd, new, 256 * 1024)
            os.close(fd)
            os.rename(os.path.join(wrk, name + ".tmp"), os.path.join(wrk, name))
        elif kind == "hls":
            fd = os.open(os.path.join(wrk, name), os.O_WRONLY | os.O_CREAT)
            write_pieces(fd, new, 32768, 0.0005)
            os.close(fd)
        elif kind == "patch":
            # Blocks go out while written; then the header is rewritten.
            first = bytearray(new)
            first[:min(64, size)] = b"\xee" * min(64, size)
            fd = os.open(os.path.join(wrk, name + ".tmp"), os.O_WRONLY | os.O_CREAT)
            write_pieces(fd, bytes(first), 32768, 0.0003)
            time.sleep(0.02)
            os.pwrite(fd, new[:64], 0)
            os.close(fd)
            os.rename(os.path.join(wrk, name + ".tmp"), os.path.join(wrk, name))
        elif kind == "replace":
            old = content(name + "/old", size)
            with open(os.path.join(wrk, name), "wb") as f:
                f.write(old)
            ready.put((name, old, None, time.time()))
            time.sleep(0.05)
            with open(os.path.join(wrk, name + ".tmp"), "wb") as f:
                f.write(new)
            os.rename(os.path.join(wrk, name + ".tmp"), os.path.join(wrk, name))
        else:
            old = content(name + "/old", size + 17)
            with open(os.path.join(wrk, name), "wb") as f:
                f.write(old)
            ready.put((name, old, None, time.time()))
            time.sleep(0.05)
            fd = os.open(os.path.join(wrk, name), os.O_WRONLY | os.O_TRUNC)
            write_pieces(fd, new, 32768)
            os.close(fd)
        ready.put((name, new, old, time.time()))
        time.sleep(0.01)
    ready.put(None)
bad = []
def read(path):
    # Not there yet, or replaced while this read ran (ESTALE, as on NFS):
    # read again. Anything else it returns must be whole.
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ESTALE:
            return None
        raise
def reader():
    while True:
        item = ready.get()
        if item is None:
            return
        name, want, old, t0 = item
        path = os.path.join(mnt, name)
        deadline = time.time() + 3
        seen_new = False
        while time.time() < deadline:
            got = read(path)
            if got == want:
                seen_new = True
                # Once the final bytes showed, they stay.
                for _ in range(3):
                    if read(path) != want:
                        bad.append("%s: changed after the final bytes" % name)
                break
            if got is None or (old is not None and got == old):
                time.sleep(0.0002)
                continue
            bad.append("%s: read %d bytes that are neither final nor old"
                       " (want %d)" % (name, len(got), len(want)))
            break
        if not seen_new and not bad:
            bad.append("%s: final bytes not seen within 3 s" % name)
w = threading.Thread(target=writer)
w.start()
reader()
w.join()
if bad:
    sys.exit("\n".join(bad[:10]))
EOF
	grep -q 'blocks pushed' "$FZ/fuse.log" || fz_fail "nothing was pushed"
	pushed=$(grep -o '[0-9]* blocks pushed' "$FZ/fuse.log" | awk '{ n += $1 } END { print n }')
	fetched=$(grep -o '[0-9]* fetched' "$FZ/fuse.log" | awk '{ n += $1 } END { print n }')
	passed=$(grep -c ': passed through' "$FZ/fuse.log" || true)
	if [ "$pt" = 1 ] && [ "$passed" = 0 ] &&
	    grep -q 'passthrough unavailable' "$FZ/fuse.log"; then
		passed="none: kernel without passthrough"
	elif [ "$pt" = 1 ] && [ "$passed" = 0 ]; then
		fz_fail "no open was passed through"
	fi
	fz_ok "$conns connections, passthrough $pt: 60 segments never torn or stale ($pushed blocks pushed, $fetched fetched, opens passed through: $passed)"
	fz_unmount
	: >"$FZ/fuse.log"
done

# 1b. A segment read passed through, and a writer through the mount.
fz_mount CLUSTERPLEX_LOG_LEVEL=debug
mkdir -p "$FZ/mnt/$S/pt"
fz_route "$S/pt" job-pt w1
sleep 0.3
python3 - "$FZ/w1/$S/pt" "$FZ/mnt/$S/pt" "$FZ/fuse.log" <<'EOF'
import errno, os, sys, time
wrk, mnt, log = sys.argv[1:]
seg = os.urandom(3 << 20)
with open(os.path.join(wrk, "s.m4s.tmp"), "wb") as f:
    f.write(seg)
os.rename(os.path.join(wrk, "s.m4s.tmp"), os.path.join(wrk, "s.m4s"))
p = os.path.join(mnt, "s.m4s")
for _ in range(2000):
    try:
        if open(p, "rb").read() == seg:
            break
    except FileNotFoundError:
        pass
    time.sleep(0.002)
else:
    sys.exit("segment never readable")
def passed():
    return open(log).read().count("s.m4s: passed through")
for _ in range(500):		# until its local copy is made
    n = passed()
    reader = open(p, "rb")
    if passed() > n or "passthrough unavailable" in open(log).read():
        break
    reader.close()
    time.sleep(0.01)
else:
    sys.exit("never passed through")
try:
    open(p, "r+b")
    sys.exit("a writer was let in beside a passed-through reader")
except OSError as e:
    if e.errno != errno.ETXTBSY:
        raise
assert reader.read() == seg
reader.close()
time.sleep(0.05)		# the kernel's release reaches the daemon
new = os.urandom(100000)
with open(p, "r+b") as f:	# now it may be written, on the worker
    f.write(new)
want = new + seg[len(new):]
deadline = time.time() + 3
while open(os.path.join(wrk, "s.m4s"), "rb").read() != want:
    assert time.time() < deadline, "the write did not reach the worker"
    time.sleep(0.01)
while open(p, "rb").read() != want:	# and never the stale local copy
    assert time.time() < deadline, "the mount still shows the old bytes"
    time.sleep(0.01)
EOF
grep -q 's.m4s: passed through' "$FZ/fuse.log" ||
    grep -q 'passthrough unavailable' "$FZ/fuse.log" ||
    fz_fail "the segment was not passed through"
fz_ok "a passed-through segment refuses a writer (ETXTBSY), takes it once closed, never shows stale bytes"
fz_unmount
: >"$FZ/fuse.log"

# 2. Deleted while written: nothing stays behind.
fz_mount CLUSTERPLEX_LOG_LEVEL=debug
mkdir -p "$FZ/mnt/$S/gone"
fz_route "$S/gone" job-gone w1
sleep 0.3
W=$FZ/w1/$S/gone
python3 - "$W" <<'EOF'
import os, sys, time
w = sys.argv[1]
data = os.urandom(3 << 20)
# Deleted while written.
fd = os.open(os.path.join(w, "a.m4s.tmp"), os.O_WRONLY | os.O_CREAT)
for k in range(0, 1536 << 10, 256 << 10):
    os.write(fd, data[k:k + (256 << 10)])
    time.sleep(0.06)	# slower than fuse's tick: it reports what it holds
os.unlink(os.path.join(w, "a.m4s.tmp"))
time.sleep(0.2)
os.write(fd, data[:1 << 20])	# the transcoder writes on: still nothing
os.close(fd)
# Deleted after close, before its rename.
with open(os.path.join(w, "b.m4s.tmp"), "wb") as f:
    f.write(data)
os.unlink(os.path.join(w, "b.m4s.tmp"))
EOF
grep -q 'pushed contents held: [1-9]' "$FZ/fuse.log" ||
    fz_fail "fuse never held the file being written"
ok=0
for i in $(seq 40); do
	if [ "$(agent_deleted_fds)" = 0 ] &&
	    tail -n 1 < <(grep 'pushed contents held' "$FZ/fuse.log") |
	    grep -q 'held: 0 files, 0 bytes'; then
		ok=1
		break
	fi
	sleep 0.1
done
[ "$ok" = 1 ] || fz_fail "a deleted file is still held: $(agent_deleted_fds) agent fds; $(grep 'pushed contents held' "$FZ/fuse.log" | tail -n 1)"
[ -z "$(ls "$FZ/mnt/$S/gone")" ] || fz_fail "deleted files still listed"
fz_ok "files deleted while written leave no descriptor and nothing held"
fz_unmount

# 3. Many sessions at once: memory does not follow the data.
fz_mount CLUSTERPLEX_FUSE_CACHE_MB=16
for i in $(seq 24); do
	mkdir -p "$FZ/mnt/$S/many$i"
	fz_route "$S/many$i" "job-many$i" w1
done
sleep 0.3
python3 - "$FZ/w1/$S" "$FZ/mnt/$S" <<'EOF'
import hashlib, os, sys, threading, time
wrk, mnt = sys.argv[1:]
errors = []
def session(i):
    for n in range(10):
        name = "chunk-%05d.m4s" % n
        data = hashlib.sha256(b"%d/%d" % (i, n)).digest() * (32768 + 1000 * i)
        d = os.path.join(wrk, "many%d" % i)
        with open(os.path.join(d, name + ".tmp"), "wb") as f:
            for k in range(0, len(data), 262144):
                f.write(data[k:k + 262144])
        os.rename(os.path.join(d, name + ".tmp"), os.path.join(d, name))
        p = os.path.join(mnt, "many%d" % i, name)
        for _ in range(5000):
            try:
                if open(p, "rb").read() == data:
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.001)
        else:
            errors.append("many%d/%s never readable" % (i, name))
        time.sleep(0.02)
ts = [threading.Thread(target=session, args=(i,)) for i in range(1, 25)]
for t in ts:
    t.start()
for t in ts:
    t.join()
if errors:
    sys.exit("\n".join(errors[:5]))
EOF
fuse_hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$FZ_PID/status")
agent_hwm=0
for f in "$FZ"/workers/w1.*.pid; do
	h=$(awk '/VmHWM/ { print $2 }' "/proc/$(cat "$f")/status" 2>/dev/null || echo 0)
	[ "$h" -gt "$agent_hwm" ] && agent_hwm=$h
done
# 24 sessions x 10 segments of ~1.3 MiB went through; the cache holds 16
# MiB. An agent stops reading requests once 16 MiB of replies wait to be
# written (FILES_PAUSE_BYTES), so its peak is its ~12 MiB plus up to that
# much queued output: 48 MiB, whatever the amount of data (one run in
# five reached 37 MiB when fuse's reads came in a burst).
# (A sanitizer build keeps freed memory in quarantine: no bound then.)
if ! grep -qa __asan_init "$FZ_FUSE"; then
	[ "$fuse_hwm" -lt $((96 * 1024)) ] || fz_fail "fuse peaked at $fuse_hwm KiB"
	[ "$agent_hwm" -lt $((48 * 1024)) ] ||
	    fz_fail "an agent peaked at $agent_hwm KiB"
fi
fz_ok "24 sessions at once: ~330 MB through, fuse peak RSS $((fuse_hwm / 1024)) MiB, agent $((agent_hwm / 1024)) MiB"
fz_unmount

# 4. The default cache: what the kernel or a local copy holds is let go.
: >"$FZ/fuse.log"
fz_mount CLUSTERPLEX_LOG_LEVEL=debug
mkdir -p "$FZ/mnt/$S/warm"
fz_route "$S/warm" job-warm w1
sleep 0.3
fuse_rss() { awk '/VmRSS/ { print $2 }' "/proc/$FZ_PID/status"; }
python3 - "$FZ/w1/$S/warm" "$FZ/mnt/$S/warm" <<'EOF'
import os, sys, time
wrk, mnt = sys.argv[1:]
for n in range(64):
    name = "seg-%05d.m4s" % n
    data = ((b"%05d " % n) * ((2 << 20) // 6 + 1))[:2 << 20]
    with open(os.path.join(wrk, name + ".tmp"), "wb") as f:
        f.write(data)
    os.rename(os.path.join(wrk, name + ".tmp"), os.path.join(wrk, name))
    for _ in range(5000):
        try:
            if open(os.path.join(mnt, name), "rb").read() == data:
                break
        except FileNotFoundError:
            pass
        time.sleep(0.001)
    else:
        sys.exit("%s never readable" % name)
    time.sleep(0.05)	# its local copy is made 30 ms after it completed
EOF
sleep 0.2
seg_rss=$(fuse_rss)
head -c $((96 << 20)) /dev/urandom >"$FZ/w1/$S/warm/big.bin"
cmp "$FZ/w1/$S/warm/big.bin" "$FZ/mnt/$S/warm/big.bin" ||
    fz_fail "the 96 MiB file reads differently through the mount"
big_rss=$(fuse_rss)
# Before, every block stayed until the 256 MiB were full: ~130 MiB after
# the segments, ~220 MiB after the large file. Now the segments' blocks go
# once their copies are registered, and at most 4 MiB of blocks the
# kernel read to their end stay (malloc keeps what it once used: RSS is
# the peak of the blocks in use). Without passthrough the segments' blocks
# stay (the kernel's page cache is not ours to count on).
if ! grep -qa __asan_init "$FZ_FUSE"; then
	if ! grep -q 'passthrough unavailable' "$FZ/fuse.log"; then
		[ "$seg_rss" -lt $((48 * 1024)) ] ||
		    fz_fail "128 MiB of segments left fuse at $seg_rss KiB"
	fi
	[ "$big_rss" -lt $((96 * 1024)) ] ||
	    fz_fail "a 96 MiB file read once left fuse at $big_rss KiB"
fi
fz_ok "default cache: 128 MiB of segments leave fuse at $((seg_rss / 1024)) MiB RSS, then a 96 MiB file read once at $((big_rss / 1024)) MiB"
fz_unmount
