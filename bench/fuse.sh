#!/bin/bash
# bench/fuse.sh — clusterplex-fuse, measured in one run, on loopback:
#
#   (a) a segment renamed into place on the worker: how long until it can
#       be opened and its first bytes read through the mount, and until
#       its whole contents were read (p50, p99);
#   (b) a large remote file read cold and sequentially through the mount,
#       beside sshfs mounting the same worker folder over the same sshd;
#   (c) segments fetched already, read through the mount, beside the same
#       bytes read from local files: each segment opened, read and closed
#       (what serving one costs), and read() alone on open files.
#
# The worker is a real `clusterplex-agent exec` behind a throwaway sshd on
# 127.0.0.1 (tests/integration/fuse_lib.sh); the product binary connects
# over SSH with a pinned host key. Knobs (environment):
#   BENCH_SEGMENTS (200)   segments for (a) and (c)
#   BENCH_SEG_KB (2048)    segment size (4 s of 720p at 4 Mbit/s)
#   BENCH_BIG_MB (256)     file size for (b); BENCH_RUNS (3) runs per side
# Targets: (a) p50 < 5 ms; (b) >= 2x sshfs; (c) >= 0.8x local.
set -eu -o pipefail
FZ_TRANSPORT=ssh
. "$(dirname "$0")/../tests/integration/fuse_lib.sh"
fz_require python3 sshfs ssh-keygen
[ -x "$FZ_BUILD/bench/fuse_read" ] || fz_fail "build/bench/fuse_read is not built (make bench-fuse)"
fz_setup
fz_worker w1
fz_sshd w1
fz_mount
S=Transcode/Sessions
mkdir -p "$FZ/mnt/$S/bench" "$FZ/sshfs"
fz_route "$S/bench" bench w1
W=$FZ/w1/$S/bench
port=$(cat "$FZ/ssh/port_w1")
sshfs -p "$port" -o IdentitiesOnly=yes,IdentityFile="$FZ/ssh/sftp_ed25519" \
    -o UserKnownHostsFile="$FZ/ssh/known_hosts",StrictHostKeyChecking=yes \
    "root@127.0.0.1:$FZ/w1" "$FZ/sshfs"
trap 'fusermount3 -u "$FZ/sshfs" 2>/dev/null || true; fz_cleanup' EXIT

python3 - "$W" "$FZ/mnt/$S/bench" "$FZ/sshfs/$S/bench" "$FZ_BUILD/bench/fuse_read" <<'EOF'
import os, statistics, subprocess, sys, time
worker, mnt, sshfs, reader = sys.argv[1:]
nseg = int(os.environ.get("BENCH_SEGMENTS", "200"))
seg = int(os.environ.get("BENCH_SEG_KB", "2048")) * 1024
big = int(os.environ.get("BENCH_BIG_MB", "256")) << 20
runs = int(os.environ.get("BENCH_RUNS", "3"))

def payload(i, size):
    head = b"segment %06d " % i
    return (head * (size // len(head) + 1))[:size]

def read_all(path, chunk=1 << 20):
    n = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(chunk)
            if not b:
                return n
            n += len(b)

# (a) rename on the worker -> first bytes, then all of it, through the mount.
first, whole = [], []
for i in range(nseg):
    name = "chunk-stream0-%05d.m4s" % i
    data = payload(i, seg)
    with open(os.path.join(worker, name + ".tmp"), "wb") as f:
        for k in range(0, seg, 32768):     # as ffmpeg's 32 KiB I/O buffer does
            f.write(data[k:k + 32768])
    path = os.path.join(mnt, name)
    t0 = time.perf_counter()
    os.rename(os.path.join(worker, name + ".tmp"), os.path.join(worker, name))
    while True:
        try:
            with open(path, "rb", buffering=0) as f:
                head = f.read(65536)
                if head != data[:65536]:
                    continue
                t1 = time.perf_counter()
                rest = f.read(seg)
            if head + rest == data:
                break
        except FileNotFoundError:
            pass
        time.sleep(0.0001)
    first.append((t1 - t0) * 1000)
    whole.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.02)        # segments come some time apart
def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * q))]
print("(a) rename -> readable, %d x %d KiB: first bytes p50 %.2f ms, p99 %.2f ms;"
      " whole segment p50 %.2f ms, p99 %.2f ms (target p50 < 5 ms)"
      % (nseg, seg >> 10, pct(first, .5), pct(first, .99), pct(whole, .5),
         pct(whole, .99)))

# (c) fetched segments through the mount, beside the same bytes read
# locally, by a C reader with one reused buffer (bench/fuse_read.c).
names = ["chunk-stream0-%05d.m4s" % i for i in range(nseg)]
def rates(top):
    out = subprocess.run([reader, "3"] + [os.path.join(top, n) for n in names],
                         check=True, capture_output=True, text=True).stdout
    return [float(x) for x in out.split()]
rates(worker)                                  # the local copy is warm too
crun = [(rates(mnt), rates(worker)) for _ in range(3)]
for k, label in ((0, "open+read+close per segment"), (1, "read() on open files")):
    m = statistics.median(r[0][k] for r in crun)
    l = statistics.median(r[1][k] for r in crun)
    print("(c) fetched segments, %s: mount %.0f MB/s, local %.0f MB/s: %.2fx"
          " (target >= 0.8x)" % (label, m, l, m / l))

# (b) cold sequential reads of a large file: a fresh file for every run.
block = os.urandom(1 << 20)
def make(path):
    with open(path, "wb") as f:
        for _ in range(big >> 20):
            f.write(block)
res = {"clusterplex-fuse": [], "sshfs": []}
for r in range(runs):
    for side, top in (("clusterplex-fuse", mnt), ("sshfs", sshfs)):
        name = "big-%s-%d.bin" % (side.split("-")[0], r)
        make(os.path.join(worker, name))
        time.sleep(0.2)
        t0 = time.perf_counter()
        n = read_all(os.path.join(top, name))
        res[side].append(n / (time.perf_counter() - t0) / 1e6)
        assert n == big, (side, n)
        os.unlink(os.path.join(worker, name))
ours, theirs = statistics.median(res["clusterplex-fuse"]), statistics.median(res["sshfs"])
print("(b) cold sequential %d MiB, median of %d: clusterplex-fuse %.0f MB/s, "
      "sshfs %.0f MB/s: %.2fx (target >= 2x)" % (big >> 20, runs, ours, theirs,
                                                  ours / theirs))
print("    runs: ours %s; sshfs %s" % (" ".join("%.0f" % x for x in res["clusterplex-fuse"]),
                                      " ".join("%.0f" % x for x in res["sshfs"])))
EOF
fusermount3 -u "$FZ/sshfs"
fz_unmount
