#!/usr/bin/python3
"""bigfile.py — a large file on a worker, read through fuse while it fails.

  bigfile.py make PATH MB            writes MB MiB of checkable content
  bigfile.py read PATH --out FILE [--rate MB/s] [--deadline S]

Block i (64 KiB) is sha256("i") repeated, so a reader checks every byte
without a copy of the file. `read` reads the file in 256 KiB calls at
about --rate and writes one JSON line to FILE when it stops:
  {"bytes": n read and checked, "ok": whole file read, "errno": name of the
   error that stopped it, "t_error": unix time of that error,
   "longest": longest read() in s, "wrong": offset of wrong bytes or null}
It never stops on its own before --deadline (default 60 s).
"""

import errno
import hashlib
import json
import os
import sys
import time

BLOCK = 64 * 1024


def block(i):
    return hashlib.sha256(b"%d" % i).digest() * (BLOCK // 32)


def make(path, mb):
    with open(path + ".tmp", "wb") as f:
        for i in range(mb * 1024 * 1024 // BLOCK):
            f.write(block(i))
    os.rename(path + ".tmp", path)


def read(path, out, rate, deadline):
    res = {"bytes": 0, "ok": False, "errno": None, "t_error": None,
           "longest": 0.0, "wrong": None}
    chunk = 4 * BLOCK
    end = time.monotonic() + deadline
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            while time.monotonic() < end:
                t0 = time.monotonic()
                data = os.pread(fd, chunk, res["bytes"])
                res["longest"] = max(res["longest"], time.monotonic() - t0)
                if not data:
                    res["ok"] = True
                    break
                off = res["bytes"]
                for k in range(0, len(data), BLOCK):
                    i = (off + k) // BLOCK
                    if data[k:k + BLOCK] != block(i)[:len(data) - k]:
                        res["wrong"] = off + k
                        raise SystemExit
                res["bytes"] += len(data)
                time.sleep(max(0.0, len(data) / (rate * 1024 * 1024) -
                               (time.monotonic() - t0)))
        finally:
            os.close(fd)
    except OSError as e:
        res["errno"] = errno.errorcode.get(e.errno, str(e.errno))
        res["t_error"] = round(time.time(), 3)
    except SystemExit:
        pass
    res["longest"] = round(res["longest"], 3)
    with open(out, "w") as f:
        f.write(json.dumps(res) + "\n")


def main():
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]))
        return
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd")
    ap.add_argument("path")
    ap.add_argument("--out", required=True)
    ap.add_argument("--rate", type=float, default=8.0)
    ap.add_argument("--deadline", type=float, default=60.0)
    a = ap.parse_args()
    read(a.path, a.out, a.rate, a.deadline)


if __name__ == "__main__":
    main()
