#!/usr/bin/python3
"""check.py — the invariants the fault suite checks after every fault.

Runs on the machine (not inside a host) and looks at the test cluster from
outside: processes by network namespace, the hosts' folders under the
cluster's state folder, the dispatcher's API through the pms namespace.

  check.py procs    [--wait S]          no transcoder left on any host
  check.py jobs     [--wait S] [--job ID --outcome A,B...]
                                        the dispatcher's job list equals what
                                        the workers run (and the job ended so)
  check.py sessions [--wait S] NAME...  no copy of the session folders left
                                        on pms's disk or on any worker
  check.py probe    --from T --to T     the longest system call on the mount
  check.py where    NAME                the worker running session NAME:
                                        "INDEX JOB-ID AGENT-PID PID"

Environment: CPX_CLUSTER, CPX_STATE (the cluster's state folder).
Each check prints one line of figures; exit 0 when the invariant holds,
1 when it does not (after --wait seconds of retrying).
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import time

CLUSTER = os.environ.get("CPX_CLUSTER", "")
STATE = os.environ.get("CPX_STATE", "")


def hosts():
    return sorted(os.listdir(os.path.join(STATE, "hosts")))


def workers():
    return [h for h in hosts() if h.startswith("w")]


def ns_pids(host):
    r = subprocess.run(["ip", "netns", "pids", "%s-%s" % (CLUSTER, host)],
                       capture_output=True, text=True)
    return [int(p) for p in r.stdout.split()]


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0")]
    except OSError:
        return []


def exe(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return ""


def is_transcoder(pid):
    """The stand-in (python running plex-transcoder) or its ffmpeg."""
    if os.path.basename(exe(pid)) in ("ffmpeg", "exec-standin"):
        return True
    # The stand-in runs as itself or through the name PMS uses.
    argv = cmdline(pid)
    return len(argv) > 1 and os.path.basename(argv[1]) in (
        "plex-transcoder", "Plex Transcoder")


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def transcoders():
    found = []
    for h in hosts():
        for p in ns_pids(h):
            if alive(p) and is_transcoder(p):
                found.append("%s:%d(%s)" % (h, p, os.path.basename(exe(p))))
    return found


def worker_jobs():
    """{job id: (worker, state)} for every job state file with a live transcoder."""
    jobs = {}
    for w in workers():
        for f in glob.glob(os.path.join(STATE, "hosts", w, "run", "jobs",
                                        "*.json")):
            try:
                with open(f) as fh:
                    st = json.load(fh)
            except (OSError, ValueError):
                continue
            if alive(st.get("pid", 0)) and is_transcoder(st["pid"]):
                jobs[st["id"]] = (w, st)
    return jobs


def api(path):
    r = subprocess.run(["nsenter", "--net=/run/netns/%s-pms" % CLUSTER,
                        "curl", "-fsS", "-m", "2",
                        "http://127.0.0.1:3500" + path],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("GET %s: %s" % (path, r.stderr.strip()))
    return json.loads(r.stdout)


def retry(wait, fn):
    """fn() -> (ok, message); retried until ok or `wait` seconds passed."""
    t0 = time.monotonic()
    while True:
        try:
            ok, msg = fn()
        except (RuntimeError, ValueError, KeyError) as e:
            ok, msg = False, str(e)
        took = time.monotonic() - t0
        if ok or took >= wait:
            return ok, msg, took
        time.sleep(0.1)


def cmd_procs(a):
    def fn():
        left = transcoders()
        return not left, "left: " + " ".join(left) if left else "none"
    ok, msg, took = retry(a.wait, fn)
    print("transcoders: %s after %.2f s" % (msg, took))
    return ok


def jobs_consistent(a):
    real = worker_jobs()
    d = api("/api/v1/jobs?recent=200")
    ws = api("/api/v1/workers")["workers"]
    health = api("/health")
    listed = {j["id"]: j for j in d["running"]}
    problems = []
    if d["running_count"] != len(d["running"]):
        problems.append("running_count %d != %d listed" %
                        (d["running_count"], len(d["running"])))
    if health["jobs"] != d["running_count"]:
        problems.append("/health jobs %d != %d" % (health["jobs"],
                                                    d["running_count"]))
    for jid in set(listed) - set(real):
        problems.append("listed as running, not running: %s on %s (%s)" % (
            jid[:12], listed[jid]["worker"], listed[jid]["state"]))
    for jid in set(real) - set(listed):
        problems.append("running on %s, not listed: %s" % (real[jid][0],
                                                          jid[:12]))
    for jid in set(real) & set(listed):
        if listed[jid]["worker"] != real[jid][0]:
            problems.append("%s listed on %s, runs on %s" % (
                jid[:12], listed[jid]["worker"], real[jid][0]))
    for w in ws:
        n = sum(1 for j in d["running"] if j["worker"] == w["name"])
        if w["tasks"] != n:
            problems.append("%s: tasks %d != %d running jobs" % (
                w["name"], w["tasks"], n))
    if a.job:
        ended = [j for j in d["recent"] if j["id"] == a.job]
        want = a.outcome.split(",") if a.outcome else []
        if a.job in listed:
            problems.append("job %s still running" % a.job[:12])
        elif not ended:
            problems.append("job %s in neither list" % a.job[:12])
        elif want and ended[0].get("outcome") not in want:
            problems.append("job %s ended %s, want %s" % (
                a.job[:12], ended[0].get("outcome"), "/".join(want)))
    if problems:
        return False, "; ".join(problems)
    return True, "%d running, all on the workers that run them%s" % (
        len(real), ", job %s ended %s" % (a.job[:12], ended[0]["outcome"])
        if a.job else "")


def cmd_jobs(a):
    ok, msg, took = retry(a.wait, lambda: jobs_consistent(a))
    print("jobs: %s (%.2f s)" % (msg, took))
    return ok


def transcode_dir(host):
    """The host's /transcode as its processes see it (mounts made inside
    the host show), or its folder under the state folder; on pms, the
    folder under the fuse mount."""
    pids = ns_pids(host) if host != "pms" else []
    for p in pids:
        d = "/proc/%d/root/transcode" % p
        if os.path.isdir(d):
            return d
    return os.path.join(STATE, "hosts", host, "transcode")


def cmd_sessions(a):
    def fn():
        left = []
        for h in hosts():
            for s in a.names:
                p = os.path.join(transcode_dir(h), "Transcode", "Sessions", s)
                if os.path.lexists(p):
                    n = sum(len(f) for _, _, f in os.walk(p))
                    left.append("%s:%s(%d files)" % (h, s[-16:], n))
        return not left, "left: " + " ".join(left) if left else "gone"
    ok, msg, took = retry(a.wait, fn)
    print("session folders: %s everywhere after %.2f s" % (msg, took)
          if ok else "session folders %s after %.2f s" % (msg, took))
    return ok


def cmd_probe(a):
    worst, call, n, errors, lines = 0.0, "", 0, {}, 0
    with open(a.file) as f:
        for line in f:
            r = json.loads(line)
            if not a.t0 <= r["t"] <= a.t1 + 0.5:
                continue
            lines += 1
            n += r["calls"]
            for k, v in r["errors"].items():
                errors[k] = errors.get(k, 0) + v
            if r["max"] > worst:
                worst, call = r["max"], r["worst"]
            if r["inflight"] > worst:
                worst, call = r["inflight"], r["inflight_call"] + " (in flight)"
    if lines == 0 or a.t1 - a.t0 > 1 and lines < (a.t1 - a.t0) * 2:
        print("mount: the prober reported only %d times in %.1f s: it hangs"
              % (lines, a.t1 - a.t0))
        return False
    ok = worst <= a.bound
    print("mount: %d calls, longest %.2f s (%s), bound %.1f s, errors %s"
          % (n, worst, call.strip(), a.bound,
             ",".join("%s:%d" % e for e in sorted(errors.items())) or "none"))
    return ok


def cmd_segments(a):
    """Every segment of session NAME as PMS reads it through the fuse mount
    equals the worker's file, and none is empty."""
    pms = [p for p in ns_pids("pms")
           if os.path.isdir("/proc/%d/root/transcode/Transcode" % p)]
    if not pms:
        print("segments: no process on pms to look through")
        return False
    mine = os.path.join("/proc/%d/root/transcode/Transcode/Sessions" % pms[0],
                        a.name)
    theirs = os.path.join(transcode_dir("w" + a.worker), "Transcode",
                          "Sessions", a.name)
    try:
        names = sorted(n for n in os.listdir(mine) if n.endswith(".m4s"))
    except OSError as e:
        print("segments: cannot list %s through fuse: %s" % (a.name, e))
        return False
    total, bad = 0, []
    for n in names:
        try:
            with open(os.path.join(mine, n), "rb") as f:
                got = f.read()
            with open(os.path.join(theirs, n), "rb") as f:
                want = f.read()
        except OSError as e:
            bad.append("%s: %s" % (n, e.strerror))
            continue
        if not got or got != want:
            bad.append("%s: %d bytes through fuse, %d on w%s" % (
                n, len(got), len(want), a.worker))
        total += len(got)
    if len(names) < a.min:
        bad.append("%d segments, want at least %d" % (len(names), a.min))
    print("segments: %d, %d KiB, through fuse = on w%s%s" % (
        len(names), total >> 10, a.worker, "; " + "; ".join(bad[:3]) if bad
        else ""))
    return not bad


def cmd_ran_on(a):
    """The worker (index) whose copy of session NAME holds the output."""
    for w in workers():
        if os.path.exists(os.path.join(transcode_dir(w), "Transcode",
                                       "Sessions", a.name,
                                       "init-stream0.m4s")):
            print(w[1:])
            return True
    print("none")
    return False


def cmd_where(a):
    for w in workers():
        for f in glob.glob(os.path.join(STATE, "hosts", w, "run", "jobs",
                                        "*.json")):
            try:
                with open(f) as fh:
                    st = json.load(fh)
            except (OSError, ValueError):
                continue
            if st.get("cwd", "").endswith("/" + a.name) and alive(st["pid"]):
                print(w[1:], st["id"], st.get("agent_pid", 0), st["pid"])
                return True
    return False


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("procs")
    p.add_argument("--wait", type=float, default=0)
    p = sub.add_parser("jobs")
    p.add_argument("--wait", type=float, default=0)
    p.add_argument("--job")
    p.add_argument("--outcome")
    p = sub.add_parser("sessions")
    p.add_argument("--wait", type=float, default=0)
    p.add_argument("names", nargs="+")
    p = sub.add_parser("probe")
    p.add_argument("--file", required=True)
    p.add_argument("--from", dest="t0", type=float, required=True)
    p.add_argument("--to", dest="t1", type=float, required=True)
    p.add_argument("--bound", type=float, required=True)
    p = sub.add_parser("segments")
    p.add_argument("name")
    p.add_argument("worker")
    p.add_argument("--min", type=int, default=4)
    p = sub.add_parser("ran_on")
    p.add_argument("name")
    p = sub.add_parser("where")
    p.add_argument("name")
    a = ap.parse_args()
    ok = globals()["cmd_" + a.cmd](a)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
