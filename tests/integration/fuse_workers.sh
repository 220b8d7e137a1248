#!/bin/bash
# fuse_workers.sh — two sessions on two workers at once; one worker is
# killed, then the other's link is cut (the agent frozen: no EOF, only
# silence). Reads of the lost session fail within a bound and never hang;
# reads of the other session keep working; each worker comes back by
# itself once it is reachable again.
set -eu -o pipefail
. "$(dirname "$0")/fuse_lib.sh"
fz_require python3
fz_setup
fz_worker w1
fz_worker w2
# Keepalive 300 ms: a silent link is declared lost after ~0.9 s.
fz_mount CLUSTERPLEX_KEEPALIVE_MS=300 CLUSTERPLEX_FUSE_TIMEOUT_MS=2000
S=Transcode/Sessions
mkdir -p "$FZ/mnt/$S/s1" "$FZ/mnt/$S/s2"
fz_route "$S/s1" job1 w1
fz_route "$S/s2" job2 w2
fz_ok "two sessions routed to two workers"

python3 - "$FZ" <<'EOF'
import errno, os, signal, sys, threading, time
FZ = sys.argv[1]
S = "Transcode/Sessions"
SEG = 256 * 1024
stop = threading.Event()
log = {"s1": [], "s2": []}           # (start, seconds, ok, errno)

def content(session, n):
    head = b"%s-%05d-" % (session.encode(), n)
    return (head * (SEG // len(head) + 1))[:SEG]

def writer(session, worker):
    d = os.path.join(FZ, worker, S, session)
    n = 0
    while not stop.is_set():
        tmp = os.path.join(d, "seg-%05d.tmp" % n)
        with open(tmp, "wb") as f:
            f.write(content(session, n))
        os.rename(tmp, os.path.join(d, "seg-%05d" % n))
        n += 1
        time.sleep(0.05)

def reader(session):
    """As PMS does: open the next segment by name, once it exists."""
    d = os.path.join(FZ, "mnt", S, session)
    n = 0
    while not stop.is_set():
        t0 = time.time()
        try:
            names = [x for x in os.listdir(d) if x.startswith("seg-") and
                     not x.endswith(".tmp")]
            if names:       # skip ahead to the newest few, like a live player
                n = max(n, max(int(x.split("-")[1]) for x in names) - 2)
            data = open(os.path.join(d, "seg-%05d" % n), "rb").read()
            if data != content(session, n):
                raise AssertionError("%s/seg-%05d: wrong bytes" % (session, n))
            n += 1
            log[session].append((t0, time.time() - t0, True, 0))
        except OSError as e:
            ok = e.errno == errno.ENOENT     # not written yet: normal
            log[session].append((t0, time.time() - t0, ok, e.errno))
        time.sleep(0.02)

def pids(worker):
    """Every agent of the worker (one per connection)."""
    d = os.path.join(FZ, "workers")
    return [int(open(os.path.join(d, f)).read()) for f in os.listdir(d)
            if f.startswith(worker + ".") and f.endswith(".pid")]

def signal_all(worker, sig):
    for p in pids(worker):
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass

def window(session, a, b):
    return [e for e in log[session] if a <= e[0] < b]

threads = [threading.Thread(target=writer, args=(s, w), daemon=True)
           for s, w in (("s1", "w1"), ("s2", "w2"))]
threads += [threading.Thread(target=reader, args=(s,), daemon=True)
            for s in ("s1", "s2")]
for t in threads:
    t.start()
time.sleep(1.5)
assert all(e[2] for e in log["s1"] + log["s2"]), "errors before any fault"

# 1. w1 dies (its agent killed; reconnects refused while w1.down exists).
down = os.path.join(FZ, "workers", "w1.down")
open(down, "w").close()
t_kill = time.time()
signal_all("w1", signal.SIGKILL)
time.sleep(2.0)
lost = window("s1", t_kill, t_kill + 2.0)
errs = [e for e in lost if not e[2]]
assert errs, "no error on s1 after its worker died"
first = min(e[0] + e[1] for e in errs) - t_kill
# A name the kernel was told is missing stays so for CFS_REMOTE_NEGATIVE
# (1 s): a reader waiting on the next name sees the error only after it.
# Usually 3-25 ms (a listing or read in flight fails); once, under ASan on
# the shared 2-core host, 1.51 s: the bound is that second plus 1.5 s.
assert first < 2.5, "first error on s1 after %.2f s" % first
assert max(e[1] for e in lost) < 1.0, "an s1 op took %.2f s" % max(e[1] for e in lost)
assert all(e[3] in (errno.EIO, errno.ENOENT) for e in errs), set(e[3] for e in errs)
other = window("s2", t_kill, t_kill + 2.0)
assert other and all(e[2] for e in other), "s2 suffered from w1's death"
print("worker killed: s1 errors after %.0f ms (EIO), longest s1 op %.0f ms, "
      "s2 ok (%d reads)" % (first * 1000, max(e[1] for e in lost) * 1000, len(other)))

# 2. w1 reachable again: it comes back by itself.
os.unlink(down)
t_up = time.time()
while time.time() < t_up + 8:
    ok = [e for e in window("s1", t_up, time.time()) if e[2]]
    if ok:
        break
    time.sleep(0.1)
assert ok, "s1 did not recover within 8 s"
print("w1 back: s1 reads again after %.1f s" % (ok[0][0] - t_up))

# 3. w2's link cut: its agent frozen, so the link just goes silent.
open(os.path.join(FZ, "workers", "w2.down"), "w").close()
frozen = pids("w2")
for i, p in enumerate(frozen):
    open(os.path.join(FZ, "frozen%d.pid" % i), "w").write(str(p))
t_cut = time.time()
signal_all("w2", signal.SIGSTOP)
time.sleep(3.5)
cut = window("s2", t_cut, t_cut + 3.5)
errs = [e for e in cut if not e[2]]
assert errs, "no error on s2 after its link was cut"
first = min(e[0] + e[1] for e in errs) - t_cut
longest = max(e[1] for e in cut)
assert first < 3.0, "first error on s2 after %.2f s" % first
assert longest < 2.6, "an s2 op blocked %.2f s" % longest
s1 = window("s1", t_cut, t_cut + 3.5)
assert s1 and all(e[2] for e in s1), "s1 suffered from w2's cut link"
print("link cut: s2 errors after %.0f ms, longest s2 op %.0f ms, s1 ok (%d reads)"
      % (first * 1000, longest * 1000, len(s1)))
os.unlink(os.path.join(FZ, "workers", "w2.down"))
t_up = time.time()
while time.time() < t_up + 8:
    ok = [e for e in window("s2", t_up, time.time()) if e[2]]
    if ok:
        break
    time.sleep(0.1)
assert ok, "s2 did not recover within 8 s"
print("w2 back: s2 reads again after %.1f s" % (ok[0][0] - t_up))
stop.set()
for t in threads:
    t.join(5)
for p in frozen:
    os.kill(p, signal.SIGKILL)
EOF
fz_ok "a lost worker fails fast, the other session is untouched, both come back"
fz_unmount
fz_ok "unmounted cleanly"
