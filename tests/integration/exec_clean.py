#!/usr/bin/env python3
"""exec_clean.py T SECONDS — waits until no process runs T/bin/standin or
T/bin/clusterplex-agent; prints the milliseconds it took, or fails after
SECONDS with the survivors' pids."""
import os, sys, time

T, limit = sys.argv[1], float(sys.argv[2])
exes = {os.path.join(T, "bin", n) for n in ("standin", "clusterplex-agent")}


def survivors():
    left = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.readlink("/proc/%s/exe" % p) in exes:
                    left.append(p)
            except OSError:
                pass
    return left


t0 = time.time()
while survivors():
    if time.time() - t0 > limit:
        sys.exit("still running after %.1f s: %s" % (limit, " ".join(
            "%s(%s)" % (p, open("/proc/%s/cmdline" % p).read().replace("\0", " ").strip()) for p in survivors())))
    time.sleep(0.005)
print("%.0f" % ((time.time() - t0) * 1000))
