#!/usr/bin/env python3
"""dispatcher_setup.py PORT TOKEN WORKERS JOBS — fills a dispatcher for bench/dispatcher.sh:
registers WORKERS workers, then places JOBS jobs, over one keep-alive connection."""
import http.client
import json
import sys

port, token, nworkers, njobs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchBenchBenchBenchBench0000 bench"
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
hdr = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}


def call(method, path, body):
    conn.request(method, path, json.dumps(body), hdr)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit("%s %s: %d %s" % (method, path, r.status, data[:200]))


for i in range(nworkers):
    call("POST", "/api/v1/workers", {
        "name": "bench-w%04d" % i,
        "ssh": {"host": "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255),
                "port": 22, "user": "clusterplex", "host_key": key},
        "cpus": 4 + i % 29, "bench": 800 + (i * 37) % 3000,
        "cpu": (i * 13) % 90, "max_tasks": 1024, "interval_ms": 600000,
        "caps": ["vaapi"] if i % 4 == 0 else [], "labels": {"rack": "r%d" % (i % 10)},
        "version": "0.1.0", "transcoder": "ffmpeg 5.1.6"})
for i in range(njobs):
    call("POST", "/api/v1/placements", {"job": "setup-%d" % i, "session": "setup-s%d" % i})
print("registered %d workers, placed %d jobs" % (nworkers, njobs))
