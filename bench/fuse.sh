#!/bin/bash
# bench/fuse.sh — clusterplex-fuse measured on loopback, in one run:
#
#   (0) the ceiling: what one SSH connection carries on this machine with
#       nothing else in the way: a blocking libssh2 1.10 reader (our SSH
#       library; bench/fuse_raw.c) and OpenSSH's `ssh ... cat`, with the
#       client's CPU per MB;
#   (a) a segment renamed (DASH) or closed (HLS) on the worker: how long
#       until its first bytes, and its whole contents, read through the
#       mount (one process writes and reads: one clock; p50, p99).
#       Written the way ffmpeg 5.1 writes them (strace): DASH, the whole
#       segment in 256 KiB writes right before its rename (the muxer
#       keeps the fragment in memory); HLS (mpegts), 32 KiB writes while
#       it encodes (here 2 MiB over ~0.2 s), then close. And real ffmpeg
#       writing DASH segments, timed from its renames seen by inotify;
#   (b) a large file read cold and sequentially through the mount, beside
#       sshfs mounting the same worker folder through the same sshd (as it
#       comes, and told to use aes128-gcm as our transport does): the
#       same file size, read the same way (1 MiB reads), each side on a
#       fresh file whose pages were dropped on the worker (fsync, then
#       POSIX_FADV_DONTNEED), the order of the sides rotating, medians of
#       the runs, and the CPU each side's processes spent per MB;
#   (c) segments fetched already (those of (a)), read through the mount,
#       beside the same bytes in local files: the worker's own copies (as
#       the writer wrote them) and copies written in one write (as ours
#       are, which decides the page cache's folio sizes); read() alone,
#       and open+read+close per segment.
#
# The worker is a real `clusterplex-agent exec` behind a throwaway sshd on
# 127.0.0.1 (tests/integration/fuse_lib.sh); the product binary connects
# over SSH with a pinned host key. (a), (b), (c) run once per transport
# (CLUSTERPLEX_FUSE_SSH: libssh2 in the daemon, openssh = /usr/bin/ssh
# per connection), one after the other on a fresh mount, each with its own
# session folders, sshfs beside each in (b). Knobs (environment):
#   BENCH_SEGMENTS (60)   segments per (a) series
#   BENCH_BIG_MB (256)    file size for (0) and (b); BENCH_RUNS (6) runs
#   BENCH_FFMPEG (1)      0 skips the real-ffmpeg series of (a)
#   BENCH_TRANSPORTS ("libssh2 openssh")   the transports measured
#   BENCH_CEILING (1)     0 skips (0)
# Targets: (a) p50 < 5 ms; (b) >= 2x sshfs; (c) >= 0.8x local.
set -eu -o pipefail
FZ_TRANSPORT=ssh
. "$(dirname "$0")/../tests/integration/fuse_lib.sh"
fz_require python3 sshfs ssh ssh-keygen
for b in fuse_read fuse_raw; do
	[ -x "$FZ_BUILD/bench/$b" ] || fz_fail "build/bench/$b is not built (make bench-fuse)"
done
fz_setup
fz_worker w1
fz_sshd w1
# The ceiling's key runs `cat` of one file instead of the agent.
ssh-keygen -q -t ed25519 -N '' -f "$FZ/ssh/raw_ed25519"
printf 'restrict,command="cat %s" %s\n' "$FZ/w1/raw.bin" \
    "$(cat "$FZ/ssh/raw_ed25519.pub")" >>"$FZ/ssh/authorized_w1"
S=Transcode/Sessions
port=$(cat "$FZ/ssh/port_w1")
sshd_pid=$(cat "$FZ/sshd_w1.pid")
trap 'for m in "$FZ"/sshfs*; do fusermount3 -u "$m" 2>/dev/null || true; done; fz_cleanup' EXIT
# sshfs_mount DIR [OPTION...]: sshfs of the worker folder; prints the
# processes that serve it (sshfs, its ssh, its session below our sshd).
sshfs_mount() {
	local dir=$1 before pid ssh sess
	shift
	mkdir -p "$dir"
	before=$(pgrep -P "$sshd_pid" | sort)
	sshfs -p "$port" -o IdentitiesOnly=yes,IdentityFile="$FZ/ssh/sftp_ed25519" \
	    -o UserKnownHostsFile="$FZ/ssh/known_hosts",StrictHostKeyChecking=yes \
	    "$@" "root@127.0.0.1:$FZ/w1" "$dir"
	pid=$(pgrep -n -f "sshfs -p $port") || fz_fail "no sshfs process"
	ssh=$(pgrep -n -x ssh) || fz_fail "no ssh process under sshfs"
	sess=$(comm -13 <(echo "$before") <(pgrep -P "$sshd_pid" | sort) | head -1)
	[ -n "$sess" ] || fz_fail "no sshd session for sshfs"
	echo "$pid,$ssh,$sess"
}
# sshfs as it comes, and told to use the cipher our transport prefers.
sshfs_default=$(sshfs_mount "$FZ/sshfs")
sshfs_gcm=$(sshfs_mount "$FZ/sshfs-gcm" -o Ciphers=aes128-gcm@openssh.com)
ceiling=${BENCH_CEILING:-1}
for transport in ${BENCH_TRANSPORTS:-libssh2 openssh}; do
fz_mount CLUSTERPLEX_LOG_LEVEL=debug CLUSTERPLEX_FUSE_SSH="$transport"
mkdir -p "$FZ/mnt/$S/bench-$transport" "$FZ/mnt/$S/ffmpeg-$transport"
fz_route "$S/bench-$transport" "bench-$transport" w1
fz_route "$S/ffmpeg-$transport" "ffmpeg-$transport" w1
sleep 0.5

python3 - "$FZ" "$FZ_BUILD/bench" "$port" "$FZ_PID" "$sshd_pid" \
    "$sshfs_default" "$sshfs_gcm" "$transport" "$ceiling" <<'EOF'
import ctypes, os, select, statistics, struct, subprocess, sys, time
fz, bench, port, fuse_pid, sshd_pid, sshfs_default, sshfs_gcm, transport, ceiling = sys.argv[1:]
port, fuse_pid, sshd_pid = int(port), int(fuse_pid), int(sshd_pid)
sshfs_procs = {"sshfs": [int(x) for x in sshfs_default.split(",")],
               "sshfs-gcm": [int(x) for x in sshfs_gcm.split(",")]}
S = "Transcode/Sessions"
sess = "bench-" + transport
wrk, mnt = os.path.join(fz, "w1", S, sess), os.path.join(fz, "mnt", S, sess)
sshfs_dir = os.path.join(fz, "sshfs", S, sess)
nseg = int(os.environ.get("BENCH_SEGMENTS", "60"))
big = int(os.environ.get("BENCH_BIG_MB", "256")) << 20
runs = int(os.environ.get("BENCH_RUNS", "6"))
HZ = os.sysconf("SC_CLK_TCK")

def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * q))]

def load():
    return open("/proc/loadavg").read().split()[0]

print("=== transport %s (CLUSTERPLEX_FUSE_SSH)" % transport)
print("machine: %d cpus, Linux %s, load average %s" % (os.cpu_count(),
      os.uname().release, load()))

# --- whose CPU is whose: processes below our sshd, by their command ---
def procs():
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            s = open("/proc/%s/stat" % p).read()
            cmd = open("/proc/%s/cmdline" % p, "rb").read().replace(b"\0", b" ")
        except OSError:
            continue
        f = s[s.rindex(")") + 2:].split()
        out[int(p)] = (int(f[1]), int(f[11]) + int(f[12]), cmd.decode("latin1"))
    return out

def sides():
    """Process ids of each side: ours (fuse, its ssh processes if any, its
    sessions and agents) and each sshfs's (sshfs, its ssh, its session and
    sftp-server)."""
    ps = procs()
    kids = {}
    for pid, (ppid, _, _) in ps.items():
        kids.setdefault(ppid, []).append(pid)
    def tree(pid):
        out, unvisited = [], [pid]
        while unvisited:
            p = unvisited.pop()
            out.append(p)
            unvisited += kids.get(p, [])
        return out
    out = {"clusterplex-fuse": tree(fuse_pid)}	# with fuse's ssh, if any
    for sess in kids.get(sshd_pid, []):
        t = tree(sess)
        if "clusterplex-agent" in " ".join(ps[p][2] for p in t if p in ps):
            out["clusterplex-fuse"] += t
    for side, pids in sshfs_procs.items():
        out[side] = [p for top in pids for p in tree(top)]
    return out

def cpu(pids):
    ps = procs()
    return sum(ps[p][1] for p in pids if p in ps) / HZ

def cpu_by_program(pids):
    """CPU seconds of each program among pids (fuse, ssh, sshd, agent...)."""
    ps, out = procs(), {}
    for p in pids:
        if p in ps:
            prog = os.path.basename(ps[p][2].split(" ")[0]) or "?"
            out[prog] = out.get(prog, 0) + ps[p][1] / HZ
    return out

# --- (0) the ceiling (once per run) ---
def ceiling_run():
    block = os.urandom(1 << 20)
    with open(os.path.join(fz, "w1", "raw.bin"), "wb") as f:
        for _ in range(big >> 20):
            f.write(block)
    key = os.path.join(fz, "ssh", "raw_ed25519")
    for mac in ("hmac-sha2-256", "hmac-sha1"):
        rs = [subprocess.run([os.path.join(bench, "fuse_raw"), str(port), key,
                              "aes128-ctr", mac], check=True, capture_output=True,
                             text=True).stdout.split() for _ in range(3)]
        print("(0) ceiling, libssh2 1.10, one blocking connection, aes128-ctr %s:"
              " %.0f MB/s, client %.2f ms CPU per MB (median of 3)" % (mac,
              statistics.median(float(r[0]) for r in rs),
              statistics.median(float(r[1]) for r in rs)))
    for cipher in (None, "aes128-gcm@openssh.com", "aes128-ctr"):
        rates, cpus = [], []
        for _ in range(3):
            c0 = os.times()
            t0 = time.perf_counter()
            subprocess.run(["ssh", "-q", "-F", "/dev/null", "-p", str(port),
                            "-i", key, "-o", "IdentitiesOnly=yes", "-o",
                            "UserKnownHostsFile=" +
                            os.path.join(fz, "ssh", "known_hosts")] +
                           (["-c", cipher] if cipher else []) +
                           ["root@127.0.0.1"], check=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            t = time.perf_counter() - t0
            c1 = os.times()
            rates.append(big / t / 1e6)
            cpus.append((c1.children_user + c1.children_system -
                         c0.children_user - c0.children_system) * 1e3 /
                        (big / 1e6))
        print("(0) ceiling, OpenSSH ssh ... cat, %s: %.0f MB/s, client %.2f ms"
              " CPU per MB (median of 3)" % (cipher or "its default cipher",
              statistics.median(rates), statistics.median(cpus)))
    os.unlink(os.path.join(fz, "w1", "raw.bin"))

if ceiling == "1":
    ceiling_run()

# --- (a) rename or close -> readable ---
def payload(tag, size):
    head = b"%s " % tag.encode()
    return (head * (size // len(head) + 1))[:size]

# The reader reads into one buffer it keeps, as a server does: with a
# fresh 2 MiB object per read, Python itself spent ~1.5 ms per segment
# (page faults), even on a local file.
rbytes = bytearray(4 << 20)
rbuf = memoryview(rbytes)

def read_into(f, n, size):
    """Reads f, at offset n, into rbuf[n:] until size bytes or EOF."""
    while n < size:
        k = f.readinto(rbuf[n:size])
        if not k:
            break
        n += k
    return n

def poll(path, data, t0):
    """Opens and reads path until it reads as data: the times from t0 at
    which its first 64 KiB and all of it had been read (the clock stops
    when a read returns; comparing the bytes is not part of the wait)."""
    global rbytes, rbuf
    first, size, head = None, len(data), min(len(data), 65536)
    if size > len(rbytes):
        rbytes = bytearray(size)
        rbuf = memoryview(rbytes)
    while True:
        try:
            with open(path, "rb", buffering=0) as f:
                got = read_into(f, 0, head)
                t_head = time.perf_counter()
                if got == head and rbytes.startswith(data[:head]):
                    if first is None:
                        first = t_head - t0
                    got = read_into(f, got, size)
                    t_all = time.perf_counter()
                    if got == size and f.read(1) == b"" and \
                            rbytes.startswith(data):
                        return first, t_all - t0
        except FileNotFoundError:
            pass
        time.sleep(0.0001)

def local_read_ms(paths):
    """The same reader on local files (the worker's own): its own cost."""
    out = []
    for p in paths:
        data = open(p, "rb").read()
        t0 = time.perf_counter()
        out.append(poll(p, data, t0)[1] * 1000)
    return out

def series(kind, size):
    first, whole = [], []
    for i in range(nseg):
        name = "%s-%d-%05d.m4s" % (kind, size >> 10, i)
        data = payload(name, size)
        if kind == "dash":
            tmp = os.path.join(wrk, name + ".tmp")
            with open(tmp, "wb") as f:
                for k in range(0, size, 262144):
                    f.write(data[k:k + 262144])
            t0 = time.perf_counter()
            os.rename(tmp, os.path.join(wrk, name))
        else:
            fd = os.open(os.path.join(wrk, name), os.O_WRONLY | os.O_CREAT)
            for k in range(0, size, 32768):
                os.write(fd, data[k:k + 32768])
                time.sleep(0.003)
            t0 = time.perf_counter()
            os.close(fd)
        a, b = poll(os.path.join(mnt, name), data, t0)
        first.append(a * 1000)
        whole.append(b * 1000)
        time.sleep(0.05)	# segments come some time apart
    slow = sorted(range(nseg), key=lambda i: whole[i])[-3:][::-1]
    local = local_read_ms([os.path.join(wrk, "%s-%d-%05d.m4s" % (kind,
                           size >> 10, i)) for i in range(nseg)])
    print("(a) %s, %d x %d KiB: whole segment p50 %.2f ms, p99 %.2f ms;"
          " first bytes p50 %.2f ms, p99 %.2f ms (target p50 < 5 ms);"
          " slowest: %s; the same reader on the worker's own files: p50"
          " %.2f ms" % (
          "DASH (256 KiB writes, rename)" if kind == "dash" else
          "HLS (32 KiB writes over ~0.2 s, close)", nseg, size >> 10,
          pct(whole, .5), pct(whole, .99), pct(first, .5), pct(first, .99),
          ", ".join("#%d %.1f ms" % (i, whole[i]) for i in slow),
          pct(local, .5)))

series("dash", 2 << 20)
series("dash", 1 << 20)
series("hls", 2 << 20)

def ffmpeg_series():
    """Real ffmpeg writing DASH on the worker; its renames seen by inotify."""
    src = os.path.join(fz, "clip.mkv")
    if not os.path.exists(src):		# one clip for every transport
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                        "testsrc2=s=1280x720:r=24:d=16", "-c:v", "libx264",
                        "-preset", "ultrafast", "-g", "24", "-b:v", "16M",
                        "-maxrate", "16M", "-bufsize", "4M", src], check=True)
    d = os.path.join(fz, "w1", S, "ffmpeg-" + transport)
    libc = ctypes.CDLL(None, use_errno=True)
    ifd = libc.inotify_init1(0)
    libc.inotify_add_watch(ifd, d.encode(), 0x80)	# IN_MOVED_TO
    p = subprocess.Popen(["ffmpeg", "-v", "error", "-re", "-i", src,
                          "-map", "0", "-c", "copy", "-f", "dash",
                          "-seg_duration", "1", "-init_seg_name",
                          "init-stream$RepresentationID$.m4s",
                          "-media_seg_name",
                          "chunk-stream$RepresentationID$-$Number%05d$.m4s",
                          "dash"], cwd=d)
    whole, sizes = [], []
    while p.poll() is None or select.select([ifd], [], [], 0)[0]:
        if not select.select([ifd], [], [], 0.5)[0]:
            continue
        buf = os.read(ifd, 4096)
        t0 = time.perf_counter()
        off, names = 0, []
        while off < len(buf):
            _, _, _, n = struct.unpack_from("iIII", buf, off)
            names.append(buf[off + 16:off + 16 + n].rstrip(b"\0").decode())
            off += 16 + n
        for name in names:
            if not name.startswith("chunk-"):
                continue
            data = open(os.path.join(d, name), "rb").read()
            _, b = poll(os.path.join(fz, "mnt", S, "ffmpeg-" + transport,
                             name), data, t0)
            whole.append(b * 1000)
            sizes.append(len(data))
    p.wait()
    os.close(ifd)
    print("(a) real ffmpeg DASH (16 Mbit/s, 1 s segments), %d segments of "
          "%.0f KiB: whole segment p50 %.2f ms, p99 %.2f ms (from its rename)"
          % (len(whole), statistics.mean(sizes) / 1024, pct(whole, .5),
             pct(whole, .99)))

if os.environ.get("BENCH_FFMPEG", "1") != "0":
    ffmpeg_series()

# --- (c) fetched segments: the 2 MiB DASH ones of (a) ---
names = ["dash-2048-%05d.m4s" % i for i in range(nseg)]
copies = os.path.join(fz, "copies-" + transport)
os.mkdir(copies)
for n in names:		# the same bytes, written in one write
    with open(os.path.join(copies, n), "wb") as f:
        f.write(open(os.path.join(wrk, n), "rb").read())
def rates(top):
    out = subprocess.run([os.path.join(bench, "fuse_read"), "3"] +
                         [os.path.join(top, n) for n in names], check=True,
                         capture_output=True, text=True).stdout
    return [float(x) for x in out.split()]
rates(wrk), rates(copies)			# local pages warm too
crun = [(rates(mnt), rates(wrk), rates(copies)) for _ in range(3)]
for k, label in ((1, "read() on open files"), (0, "open+read+close per segment")):
    m = statistics.median(r[0][k] for r in crun)
    l = statistics.median(r[1][k] for r in crun)
    c = statistics.median(r[2][k] for r in crun)
    print("(c) fetched segments, %s: mount %.0f MB/s; local as the writer "
          "wrote it %.0f MB/s: %.2fx; local written in one write %.0f MB/s:"
          " %.2fx (target >= 0.8x)" % (label, m, l, m / l, c, m / c))
passed = sum(1 for l in open(os.path.join(fz, "fuse.log"))
             if ": passed through" in l and "/" + sess + "/" in l)
print("    opens passed through to local copies: %d" % passed)

# --- (b) cold sequential reads of a large file ---
def make(path):
    with open(path, "wb") as f:
        for _ in range(big >> 20):
            f.write(os.urandom(1 << 20))
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)

def read_all(path):
    n = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return n
            n += len(b)

# Each side in turn, the order rotating from run to run; sshfs as it comes
# (OpenSSH's default cipher) and told to use the cipher our transport
# prefers (aes128-gcm), so the cipher alone does not make the difference.
order = [("clusterplex-fuse", mnt), ("sshfs", sshfs_dir),
         ("sshfs-gcm", os.path.join(fz, "sshfs-gcm", S, sess))]
res, cpm, split = ({side: [] for side, _ in order} for _ in range(3))
for r in range(runs):
    for side, top in order[r % 3:] + order[:r % 3]:
        name = "big-%s-%d.bin" % (side, r)
        make(os.path.join(wrk, name))
        time.sleep(0.3)
        pids = sides()[side]
        c0, p0 = cpu(pids), cpu_by_program(pids)
        t0 = time.perf_counter()
        n = read_all(os.path.join(top, name))
        t = time.perf_counter() - t0
        c, p1 = cpu(pids) - c0, cpu_by_program(pids)
        assert n == big, (side, n)
        res[side].append(n / t / 1e6)
        cpm[side].append(c * 1e3 / (n / 1e6))
        split[side].append({k: (p1[k] - p0.get(k, 0)) * 1e3 / (n / 1e6)
                            for k in p1})
        os.unlink(os.path.join(wrk, name))
med = {side: statistics.median(v) for side, v in res.items()}
ours = med["clusterplex-fuse"]
print("(b) cold sequential %d MiB, median of %d: clusterplex-fuse (%s) %.0f "
      "MB/s; sshfs %.0f MB/s: %.2fx (target >= 2x); sshfs with aes128-gcm "
      "%.0f MB/s: %.2fx" % (big >> 20, runs, transport, ours, med["sshfs"],
      ours / med["sshfs"], med["sshfs-gcm"], ours / med["sshfs-gcm"]))
for side, _ in order:
    progs = sorted({k for d in split[side] for k in d})
    print("    %s: runs %s MB/s; CPU per MB read %.2f ms (median): %s" % (
          side, " ".join("%.0f" % x for x in res[side]),
          statistics.median(cpm[side]), ", ".join("%s %.2f" % (k,
          statistics.median(d.get(k, 0) for d in split[side])) for k in progs)))
print("load average at the end: %s" % load())
EOF
fz_unmount
ceiling=0
done
for m in "$FZ"/sshfs*; do fusermount3 -u "$m"; done
