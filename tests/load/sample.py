#!/usr/bin/python3
"""sample.py — resource use of the test cluster's processes under load.

  sample.py --out FILE --stop FILE --cluster NAME NAME=PID...

Every 0.25 s until the stop file exists: resident memory, CPU time and
open descriptors of each named process (the services), and how many
ClusterPlex and transcoder processes run in the cluster's namespaces
(shims, agents, pool channels, ffmpeg). Another thread times GET /health
on the dispatcher from the PMS host every 0.2 s (the dispatcher's
responsiveness while it places jobs). Writes FILE (JSON) at the end.
"""

import argparse
import json
import os
import subprocess
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")


def status(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            kv = dict(l.split(":", 1) for l in f if ":" in l)
        with open("/proc/%d/stat" % pid) as f:
            st = f.read().rsplit(")", 1)[1].split()
        fds = len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None
    return {"rss_kb": int(kv["VmRSS"].split()[0]),
            "hwm_kb": int(kv["VmHWM"].split()[0]),
            "cpu_s": (int(st[11]) + int(st[12])) / TICK, "fds": fds}


def ns_pids(ns):
    r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                       text=True)
    return [int(p) for p in r.stdout.split()]


def kind(pid):
    try:
        exe = os.path.basename(os.readlink("/proc/%d/exe" % pid))
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return None
    if exe == "clusterplex-agent" and len(argv) > 1 and argv[1] == b"exec":
        return "agent-exec"
    if exe == "clusterplex-shim" and (len(argv) < 2 or argv[1] != b"pool"):
        return "shim"
    if exe == "ffmpeg":
        return "ffmpeg"
    if exe == "sshd":
        return "sshd"
    return None


def health_loop(cluster, stop, out):
    while not os.path.exists(stop):
        r = subprocess.run(["nsenter", "--net=/run/netns/%s-pms" % cluster,
                            "curl", "-sS", "-o", "/dev/null", "-m", "5",
                            "-w", "%{http_code} %{time_total}",
                            "http://127.0.0.1:3500/health"],
                           capture_output=True, text=True)
        code, _, t = r.stdout.partition(" ")
        out.append((code, float(t or 0)))
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--stop", required=True)
    ap.add_argument("--cluster", required=True)
    ap.add_argument("procs", nargs="*")
    a = ap.parse_args()
    procs = dict((p.split("=")[0], int(p.split("=")[1])) for p in a.procs)
    first = {n: status(p) for n, p in procs.items()}
    peak = {n: {"rss_kb": 0, "fds": 0} for n in procs}
    counts = {}
    health = []
    hosts = [n for n in os.listdir("/run/netns") if n.startswith(a.cluster + "-")]
    t = threading.Thread(target=health_loop, args=(a.cluster, a.stop, health),
                         daemon=True)
    t.start()
    samples = 0
    while not os.path.exists(a.stop):
        for n, p in procs.items():
            s = status(p)
            if s:
                peak[n]["rss_kb"] = max(peak[n]["rss_kb"], s["rss_kb"])
                peak[n]["fds"] = max(peak[n]["fds"], s["fds"])
        now = {}
        for h in hosts:
            for p in ns_pids(h):
                k = kind(p)
                if k:
                    now[k] = now.get(k, 0) + 1
        for k, v in now.items():
            counts[k] = max(counts.get(k, 0), v)
        samples += 1
        time.sleep(0.25)
    t.join(10)
    res = {"samples": samples, "procs": {}, "peak_processes": counts}
    for n, p in procs.items():
        last = status(p)
        res["procs"][n] = {
            "peak_rss_kb": peak[n]["rss_kb"],
            "hwm_kb": last["hwm_kb"] if last else None,
            "cpu_s": round(last["cpu_s"] - first[n]["cpu_s"], 2)
            if last and first[n] else None,
            "peak_fds": peak[n]["fds"]}
    lat = sorted(x[1] for x in health if x[0] == "200")
    res["health"] = {"probes": len(health),
                     "failed": sum(1 for x in health if x[0] != "200"),
                     "p50_ms": round(1000 * lat[len(lat) // 2], 2) if lat else None,
                     "p99_ms": round(1000 * lat[int(len(lat) * 0.99)], 2) if lat else None,
                     "max_ms": round(1000 * lat[-1], 2) if lat else None}
    with open(a.out, "w") as f:
        json.dump(res, f)


if __name__ == "__main__":
    main()
