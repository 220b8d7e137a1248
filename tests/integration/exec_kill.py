#!/usr/bin/env python3
"""exec_kill.py T SESSION WORKER_DIR ROUNDS — SIGKILL the shim at random
moments and measure how long the worker needs to be clean.

Each round starts `clusterplex-shim sleep 30` (the stand-in forks a
child that sleeps too), SIGKILLs the shim after a delay (0 ms: before
placement; a few ms: during placement, handshake or channel open;
"started": once the transcoder runs), then polls /proc every 2 ms for
processes of T/bin/standin and T/bin/clusterplex-agent. Fails when any
survives 1 s, or when one shows up again within 300 ms after.
"""
import os, random, signal, subprocess, sys, time

T, session, worker, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
exes = {os.path.join(T, "bin", n) for n in ("standin", "clusterplex-agent")}
pidfile = os.path.join(worker, "pid")


def survivors():
    left = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.readlink("/proc/%s/exe" % p) in exes:
                    left.append(int(p))
            except OSError:
                pass
    return left


def one(delay):
    if os.path.exists(pidfile):
        os.unlink(pidfile)
    shim = subprocess.Popen([os.path.join(T, "bin", "clusterplex-shim"), "sleep", "30"],
                            cwd=session, stderr=open(os.path.join(T, "shim.err"), "a"))
    if delay == "started":
        deadline = time.time() + 5
        while not os.path.exists(pidfile):
            if time.time() > deadline:
                sys.exit("the transcoder never started")
            time.sleep(0.002)
    else:
        time.sleep(delay / 1000)
    shim.send_signal(signal.SIGKILL)
    t0 = time.time()
    shim.wait()
    while survivors():
        if time.time() - t0 > 1.0:
            sys.exit("kill after %s ms: left running after 1 s: %s" % (delay, survivors()))
        time.sleep(0.002)
    took = (time.time() - t0) * 1000
    time.sleep(0.3)
    if survivors():
        sys.exit("kill after %s ms: a transcoder started after the kill" % delay)
    return took


worst = {}
rng = random.Random(int(sys.argv[5]) if len(sys.argv) > 5 else 1)
for r in range(rounds):
    for label, delay in (("before placement", 0), ("handshake", rng.randrange(1, 40)),
                         ("startup", rng.randrange(1, 150)), ("mid-run", "started")):
        worst[label] = max(worst.get(label, 0), one(delay))
print(", ".join("%s %.0f ms" % kv for kv in worst.items()))
