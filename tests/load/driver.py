#!/usr/bin/python3
"""driver.py — plays PMS starting many transcoders at once (tests/load).

  driver.py --fixture F --media M --shim PATH --env-file F --jobs N
            --concurrency C --fail-every K --missing M2 --out FILE

Runs on the PMS host of the test cluster. Job i gets a session folder of
its own (created first, as PMS does) and a PMS session id of its own in
its callback URLs; every K-th job reads a missing input (M2), so its
transcoder fails with its own exit code. At most C shims run at once.
Writes FILE: one JSON object with every job's
{"i", "session", "pms", "expect_fail", "exit", "signal", "start", "end"}
(wall-clock seconds) and the run's start and end.
"""

import argparse
import json
import os
import subprocess
import threading
import time


def load_env(fixture_env, env_file):
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root",
           "LANG": "C.UTF-8"}
    env.update(fixture_env)
    env.pop("FFMPEG_EXTERNAL_LIBS", None)   # no codec folder on this PMS host
    with open(env_file) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, _, v = line.partition("=")
                env[k] = v
    return env


def job_argv(fx, session_dir, pms, media):
    old = fx["cwd"]
    out = []
    for a in fx["argv"]:
        a = a.replace(old, session_dir).replace("whrtmao0hvjo0120h21kz6cb", pms)
        out.append(a)
    i = out.index("-i")
    out[i + 1] = media
    return out


def main():
    ap = argparse.ArgumentParser()
    for k in ("fixture", "media", "shim", "env-file", "missing", "out"):
        ap.add_argument("--" + k, required=True)
    ap.add_argument("--jobs", type=int, required=True)
    ap.add_argument("--concurrency", type=int, required=True)
    ap.add_argument("--fail-every", type=int, default=0)
    a = ap.parse_args()
    with open(a.fixture) as f:
        fx = json.load(f)
    env = load_env(fx.get("env", {}), a.env_file)
    sessions = os.path.dirname(fx["cwd"])
    sem = threading.Semaphore(a.concurrency)
    jobs = []
    lock = threading.Lock()

    def run(i):
        fail = a.fail_every > 0 and i % a.fail_every == 0
        name = "plex-transcode-load%04d-%d" % (i, os.getpid())
        d = os.path.join(sessions, name)
        pms = "load%04dx%d" % (i, os.getpid())
        rec = {"i": i, "session": name, "pms": pms, "expect_fail": fail}
        with sem:
            os.makedirs(d, exist_ok=True)
            argv = job_argv(fx, d, pms, a.missing if fail else a.media)
            rec["start"] = time.time()
            with open(os.path.join("/run/clusterplex/load-logs", name), "wb") as err:
                p = subprocess.Popen([a.shim] + argv, cwd=d, env=env,
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=err)
                try:
                    rc = p.wait(240)
                except subprocess.TimeoutExpired:
                    p.kill()
                    rc = p.wait()
                    rec["timed_out"] = True
            rec["end"] = time.time()
        rec["exit"] = rc if rc >= 0 else None
        rec["signal"] = -rc if rc < 0 else None
        with lock:
            jobs.append(rec)

    os.makedirs("/run/clusterplex/load-logs", exist_ok=True)
    t0 = time.time()
    threads = [threading.Thread(target=run, args=(i,))
               for i in range(1, a.jobs + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(a.out, "w") as f:
        json.dump({"start": t0, "end": time.time(),
                   "jobs": sorted(jobs, key=lambda r: r["i"])}, f)


if __name__ == "__main__":
    main()
