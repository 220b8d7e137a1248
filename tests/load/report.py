#!/usr/bin/python3
"""report.py — checks a load run and reports its figures (tests/load).

  report.py --dir OUT --mount DIR --workers N

OUT holds what tests/load/run.sh gathered: driver.json (every job's exit
and times), ref.json (the reference run's segment hashes and the exit
code of a job whose input is missing), logs/ (each shim's stderr at
debug level), pool.log (the agents' lines, relayed by the pool),
metrics-before and metrics-after (the dispatcher's /metrics), sample.json
(resource use). DIR is PMS's Sessions folder as seen through the fuse
mount. Every job must have ended with its expected exit code, and every
successful job's segments, read through the mount, must equal the
reference run's byte for byte. Writes OUT/report.json and prints the
figures; exit 1 when any job is wrong.
"""

import argparse
import hashlib
import json
import os
import re
import sys


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def stats(v):
    return {"n": len(v), "p50": pct(v, 50), "p95": pct(v, 95),
            "p99": pct(v, 99), "max": max(v) if v else None}


def metrics(path):
    out = {}
    with open(path) as f:
        for line in f:
            m = re.match(r'clusterplex_placement_duration_seconds_(bucket\{le="([^"]+)"\}|sum|count) (\S+)', line)
            if m:
                out[m.group(2) or m.group(1)] = float(m.group(3))
    return out


def placement(before, after):
    b, a = metrics(before), metrics(after)
    n = a.get("count", 0) - b.get("count", 0)
    res = {"placements": int(n)}
    if n <= 0:
        return res
    res["mean_us"] = round(1e6 * (a["sum"] - b.get("sum", 0)) / n, 1)
    les = sorted((float(k) if k != "+Inf" else float("inf"), k) for k in a
                 if k not in ("sum", "count"))
    for p in (50, 99):
        for le, k in les:
            if a[k] - b.get(k, 0) >= n * p / 100.0:
                res["p%d_under_us" % p] = le * 1e6 if le != float("inf") else None
                break
    return res


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--mount", required=True)
    ap.add_argument("--workers", type=int, required=True)
    a = ap.parse_args()
    D = a.dir
    drv = json.load(open(os.path.join(D, "driver.json")))
    ref = json.load(open(os.path.join(D, "ref.json")))
    runtime = {}       # job id -> transcoder's own run time (ms), by the agent
    worker_of = {}
    for line in open(os.path.join(D, "pool.log"), errors="replace"):
        m = re.search(r"info log_stderr: (w\d+): .* job (\S+): exit code \d+ after (\d+) ms", line)
        if m:
            runtime[m.group(2)] = int(m.group(3))
            worker_of[m.group(2)] = m.group(1)
    wrong, jobs = [], drv["jobs"]
    dispatch, overhead, wall, per_worker = [], [], [], {}
    for j in jobs:
        want = ref["fail_exit"] if j["expect_fail"] else 0
        if j.get("timed_out") or j["exit"] != want:
            wrong.append("job %d: exit %s signal %s, want %d" % (
                j["i"], j["exit"], j["signal"], want))
            continue
        wall.append(1000 * (j["end"] - j["start"]))
        log = open(os.path.join(D, "logs", j["session"]), errors="replace").read()
        m = re.search(r"job (\S+) started on (w\d+) (\d+) ms after exec", log)
        if m:
            dispatch.append(int(m.group(3)))
            per_worker[m.group(2)] = per_worker.get(m.group(2), 0) + 1
            if m.group(1) in runtime:
                overhead.append(1000 * (j["end"] - j["start"]) -
                                runtime[m.group(1)])
        else:
            wrong.append("job %d: no start line in its log (ran where?)" % j["i"])
        if j["expect_fail"]:
            continue
        d = os.path.join(a.mount, j["session"])
        try:
            got = {n: sha(os.path.join(d, n)) for n in os.listdir(d)
                   if n.endswith(".m4s")}
        except OSError as e:
            wrong.append("job %d: %s" % (j["i"], e))
            continue
        if got != ref["segments"]:
            wrong.append("job %d: segments %s differ from the reference" % (
                j["i"], sorted(set(got.items()) ^ set(ref["segments"].items()))[:2]))
    # PMS's view: from the shim's exec to the transcoder's first callback
    # (PUT progress?status=startup), which reaches PMS through the tunnel.
    first = {}
    for line in open(os.path.join(D, "requests.jsonl")):
        r = json.loads(line)
        m = re.search(r"/transcode/session/([^/]+)/", r["path"])
        if m and m.group(1) not in first:
            first[m.group(1)] = r["t"]
    to_callback = [1000 * (first[j["pms"]] - j["start"]) for j in jobs
                   if not j["expect_fail"] and j["pms"] in first]
    missing = [j["i"] for j in jobs if not j["expect_fail"] and j["pms"] not in first]
    if missing:
        wrong.append("jobs %s: no callback reached PMS" % missing[:5])
    sample = json.load(open(os.path.join(D, "sample.json")))
    rep = {
        "jobs": len(jobs), "failing_on_purpose": sum(j["expect_fail"] for j in jobs),
        "wrong": wrong, "seconds": round(drv["end"] - drv["start"], 1),
        "per_worker": dict(sorted(per_worker.items())),
        "exec_to_first_callback_ms": stats([round(x, 1) for x in to_callback]),
        "run_start_to_started_ms": stats(dispatch),
        "shim_overhead_ms": stats([round(x, 1) for x in overhead]),
        "shim_wall_ms": stats([round(x, 1) for x in wall]),
        "placement": placement(os.path.join(D, "metrics-before"),
                               os.path.join(D, "metrics-after")),
        "health_under_load": sample["health"],
        "resources": sample["procs"],
        "peak_processes": sample["peak_processes"],
    }
    with open(os.path.join(D, "report.json"), "w") as f:
        json.dump(rep, f, indent=1)
    ok = len(jobs) - len(wrong)
    print("jobs: %d in %.1f s, %d right (exit code and every segment equal to "
          "the reference through fuse), %d wrong" % (
              len(jobs), rep["seconds"], ok, len(wrong)))
    for w in wrong[:10]:
        print("  WRONG " + w)
    print("per worker: %s" % rep["per_worker"])
    for k in ("exec_to_first_callback_ms", "run_start_to_started_ms",
              "shim_overhead_ms", "shim_wall_ms"):
        s = rep[k]
        if s["n"]:
            print("%s: p50 %.0f, p95 %.0f, p99 %.0f, max %.0f (n %d)" % (
                k, s["p50"], s["p95"], s["p99"], s["max"], s["n"]))
    print("placement (dispatcher): %s" % rep["placement"])
    print("GET /health under load: %s" % rep["health_under_load"])
    for n, r in rep["resources"].items():
        print("%-14s peak RSS %6.1f MiB, CPU %6.2f s, peak fds %d" % (
            n, r["peak_rss_kb"] / 1024.0, r["cpu_s"] or 0, r["peak_fds"]))
    print("peak processes: %s" % rep["peak_processes"])
    return 0 if not wrong and len(per_worker) == a.workers else 1


if __name__ == "__main__":
    sys.exit(main())
