#!/bin/bash
# fuse_stress.sh — the filesystem checks a FUSE mount can take, on a local
# folder and on a routed one: many small files, large files, and
# create/rename/unlink races between processes, ending with the mount's
# view equal to the disk's (pjdfstest is not packaged in Debian).
set -eu -o pipefail
. "$(dirname "$0")/fuse_lib.sh"
fz_require python3
fz_setup
fz_worker w1
fz_mount
S=Transcode/Sessions
mkdir -p "$FZ/mnt/local" "$FZ/mnt/$S/r"
fz_route "$S/r" job-stress w1

cat >"$FZ/stress.py" <<'EOF'
import errno, hashlib, multiprocessing as mp, os, random, sys, time
mode, d, n_small, big_mb, race_s = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])

def blob(i, size):
    seed = hashlib.sha256(b"%d" % i).digest()
    return (seed * (size // len(seed) + 1))[:size]

if mode == "small":
    names = ["f%05d" % i for i in range(n_small)]
    for i, n in enumerate(names):
        with open(os.path.join(d, n), "wb") as f:
            f.write(blob(i, 100 + i % 3000))
    assert set(names) <= set(os.listdir(d))
    for i, n in enumerate(names):
        assert open(os.path.join(d, n), "rb").read() == blob(i, 100 + i % 3000), n
        assert os.stat(os.path.join(d, n)).st_size == 100 + i % 3000
    for n in names:
        os.unlink(os.path.join(d, n))
    assert not set(names) & set(os.listdir(d))
    print("%d small files written, listed, read back, removed" % n_small)

elif mode == "big":
    path, chunk = os.path.join(d, "big.bin"), 1 << 20
    h = hashlib.sha256()
    t0 = time.time()
    with open(path, "wb") as f:
        for i in range(big_mb):
            b = blob(i, chunk)
            h.update(b)
            f.write(b)
    t1 = time.time()
    r = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 << 20)
            if not b:
                break
            r.update(b)
    t2 = time.time()
    assert r.hexdigest() == h.hexdigest(), "large file read back differs"
    assert os.stat(path).st_size == big_mb * chunk
    with open(path, "r+b") as f:          # rewrite in the middle, truncate
        f.seek(big_mb * chunk // 2)
        f.write(b"middle")
        f.truncate(big_mb * chunk - 12345)
    with open(path, "rb") as f:
        f.seek(big_mb * chunk // 2)
        assert f.read(6) == b"middle"
    assert os.stat(path).st_size == big_mb * chunk - 12345
    print("%d MB: write %.0f MB/s, read %.0f MB/s, identical" %
          (big_mb, big_mb / (t1 - t0), big_mb / (t2 - t1)))
    print(h.hexdigest())

elif mode == "race":
    NAMES = ["n%d" % i for i in range(12)]
    OK = {errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR}
    # A routed file deleted or replaced on the worker while open reads as
    # stale (as on NFS), unless its bytes were fetched already.
    OK_READ = OK | ({errno.ESTALE} if os.environ.get("STRESS_REMOTE") else set())
    def worker(seed, q):
        rnd, bad, ops = random.Random(seed), [], 0
        end = time.time() + race_s
        while time.time() < end:
            a, b = os.path.join(d, rnd.choice(NAMES)), os.path.join(d, rnd.choice(NAMES))
            op = rnd.randrange(8)
            try:
                if op == 0:
                    with open(a, "wb") as f:
                        f.write(blob(seed, rnd.randrange(1, 20000)))
                elif op == 1:
                    os.rename(a, b)
                elif op == 2:
                    os.unlink(a)
                elif op == 3:
                    os.stat(a)
                elif op == 4:
                    open(a, "rb").read()
                elif op == 5:
                    os.mkdir(a)
                elif op == 6:
                    os.rmdir(a)
                else:
                    os.listdir(d)
            except OSError as e:
                if e.errno not in (OK_READ if op == 4 else OK):
                    bad.append((op, e.errno, os.strerror(e.errno)))
            ops += 1
        q.put((ops, bad))
    q = mp.Queue()
    ps = [mp.Process(target=worker, args=(s, q)) for s in range(4)]
    for p in ps:
        p.start()
    res = [q.get(timeout=race_s + 60) for _ in ps]
    for p in ps:
        p.join()
    bad = [b for _, bs in res for b in bs]
    assert not bad, "unexpected errors: %r" % bad[:10]
    print("%d racing operations by 4 processes, no unexpected error" % sum(r[0] for r in res))

elif mode == "snapshot":      # name, type and content digest of every entry
    for n in sorted(os.listdir(d)):
        p = os.path.join(d, n)
        if os.path.isdir(p):
            print(n, "dir")
        else:
            print(n, hashlib.sha256(open(p, "rb").read()).hexdigest())
EOF

for where in local "$S/r"; do
	python3 "$FZ/stress.py" small "$FZ/mnt/$where" 3000 0 0 || fz_fail "small files in $where"
done
fz_ok "many small files, local and routed"

python3 "$FZ/stress.py" big "$FZ/mnt/local" 0 256 0 | tee "$FZ/big-local.out" || fz_fail "large local file"
python3 "$FZ/stress.py" big "$FZ/mnt/$S/r" 0 64 0 | tee "$FZ/big-remote.out" || fz_fail "large remote file"
# The worker's copy is the file that was written through the mount.
python3 - "$FZ/w1/$S/r/big.bin" <<'EOF' || fz_fail "worker's copy of the large file"
import hashlib, os, sys
path = sys.argv[1]
assert os.stat(path).st_size == 64 * (1 << 20) - 12345
EOF
fz_ok "large files, local and routed"

python3 "$FZ/stress.py" race "$FZ/mnt/local" 0 0 8 || fz_fail "races in a local folder"
STRESS_REMOTE=1 python3 "$FZ/stress.py" race "$FZ/mnt/$S/r" 0 0 8 || fz_fail "races in a routed folder"
python3 "$FZ/stress.py" snapshot "$FZ/mnt/$S/r" 0 0 0 >"$FZ/remote-mnt.snap"
python3 "$FZ/stress.py" snapshot "$FZ/w1/$S/r" 0 0 0 >"$FZ/remote-disk.snap"
diff "$FZ/remote-mnt.snap" "$FZ/remote-disk.snap" || fz_fail "routed folder: mount and worker disagree after the races"
python3 "$FZ/stress.py" snapshot "$FZ/mnt/local" 0 0 0 >"$FZ/local-mnt.snap"
fz_unmount
python3 "$FZ/stress.py" snapshot "$FZ/mnt/local" 0 0 0 >"$FZ/local-disk.snap"
diff "$FZ/local-mnt.snap" "$FZ/local-disk.snap" || fz_fail "local folder: mount and disk disagree after the races"
fz_ok "create/rename/unlink races: no unexpected error, mount and disk agree"
