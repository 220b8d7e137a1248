#!/usr/bin/python3
"""probe.py — plays PMS's side of the transcode folder while faults happen.

  probe.py --root DIR --out FILE [--threads N]

Runs on the PMS host, on the clusterplex-fuse mount. N threads (PMS serves
players from several) walk every session folder under DIR again and again:
stat the folder, list it, and open + read + close the newest few files,
as PMS does when it serves segments. Every system call is timed. Another
thread watches the calls in flight, so a call that blocks is seen while it
blocks, not only when (if ever) it returns.

Every 0.25 s one JSON line goes to FILE:
  {"t": unix time, "calls": n since the last line, "max": longest call that
   ended since the last line (s), "worst": "op path errno", "inflight": age
   of the oldest call still in flight (s), "inflight_call": "op path",
   "errors": {"EIO": n, ...}}
tests/faults/check.py reads the lines of a time window: the longest any
call took or has been blocked in that window is the figure for the
"no syscall blocked longer than a bound" invariant.
"""

import argparse
import errno
import json
import os
import threading
import time

lock = threading.Lock()
stats = {"calls": 0, "max": 0.0, "worst": "", "errors": {}}
inflight = {}           # thread id -> (start, "op path")


def timed(op, path, fn, *args):
    tid = threading.get_ident()
    t0 = time.monotonic()
    with lock:
        inflight[tid] = (t0, "%s %s" % (op, path))
    err = None
    try:
        return fn(*args)
    except OSError as e:
        err = e
        raise
    finally:
        dt = time.monotonic() - t0
        with lock:
            del inflight[tid]
            stats["calls"] += 1
            name = errno.errorcode.get(err.errno, str(err.errno)) if err else ""
            if err is not None and err.errno != errno.ENOENT:
                stats["errors"][name] = stats["errors"].get(name, 0) + 1
            if dt > stats["max"]:
                stats["max"] = dt
                stats["worst"] = "%s %s %s" % (op, path, name)


def read_file(path):
    fd = timed("open", path, os.open, path, os.O_RDONLY)
    try:
        while timed("read", path, os.read, fd, 128 * 1024):
            pass
    finally:
        timed("close", path, os.close, fd)


def walk(root):
    try:
        sessions = timed("listdir", root, os.listdir, root)
    except OSError:
        return
    for s in sessions:
        d = os.path.join(root, s)
        try:
            timed("stat", d, os.stat, d)
            names = sorted(timed("listdir", d, os.listdir, d))
        except OSError:
            continue
        # The newest segments, as a player asks for them.
        for n in [x for x in names if not x.endswith(".tmp")][-4:]:
            try:
                p = os.path.join(d, n)
                # Segments are small; bigger files belong to other checks.
                if timed("stat", p, os.stat, p).st_size <= 4 << 20:
                    read_file(p)
            except OSError:
                pass


def worker(root, stop):
    while not stop.is_set():
        walk(root)
        time.sleep(0.1)


def report(out, stop):
    with open(out, "a", buffering=1) as f:
        while not stop.is_set():
            time.sleep(0.25)
            now = time.monotonic()
            with lock:
                old = min(inflight.values(), default=(now, ""))
                line = {"t": round(time.time(), 3), "calls": stats["calls"],
                        "max": round(stats["max"], 4),
                        "worst": stats["worst"],
                        "inflight": round(now - old[0], 4),
                        "inflight_call": old[1], "errors": stats["errors"]}
                stats.update(calls=0, max=0.0, worst="", errors={})
            f.write(json.dumps(line) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=3)
    a = ap.parse_args()
    stop = threading.Event()
    for _ in range(a.threads):
        threading.Thread(target=worker, args=(a.root, stop),
                         daemon=True).start()
    report(a.out, stop)


if __name__ == "__main__":
    main()
