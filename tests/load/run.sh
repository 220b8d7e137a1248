#!/bin/bash
# run.sh — the load test: LOAD_JOBS short transcodes through ClusterPlex,
# LOAD_CONCURRENCY at a time, over LOAD_WORKERS workers of the test
# cluster (real dispatcher, agents, pool, fuse, fake PMS, stand-in
# transcoder). Every job is a DASH remux of an 8 s movie (the dash-remux
# fixture); every LOAD_FAIL_EVERY-th job reads a missing input and must
# fail with the stand-in's own exit code. Checks every job's exit code,
# every successful job's segments through the fuse mount against a
# reference run on the PMS host (byte for byte), that every worker took
# jobs, and afterwards: no transcoder left, the dispatcher's job list
# consistent, nothing of the session folders left after PMS deletes them.
# Reports dispatcher latency (placement time, GET /health under load),
# the shim's time to the transcoder's start and its overhead over the
# transcoder's own run time, and the resource use of every service.
# Output: build/load/ (report.json, the figures printed at the end).
#
# Environment: LOAD_JOBS (100), LOAD_CONCURRENCY (100), LOAD_WORKERS (4),
# LOAD_FAIL_EVERY (10; 0: none), LOAD_MOVIE_SECONDS (8), CPX_CLUSTER
# (rell), BUILD (binaries; build-san for the sanitizer build).
set -eu -o pipefail
export CPX_CLUSTER=${CPX_CLUSTER:-rell}
LOAD_JOBS=${LOAD_JOBS:-100}
LOAD_CONCURRENCY=${LOAD_CONCURRENCY:-100}
LOAD_WORKERS=${LOAD_WORKERS:-4}
LOAD_FAIL_EVERY=${LOAD_FAIL_EVERY:-10}
export CPX_WORKERS=$LOAD_WORKERS CPX_MOVIE_SECONDS=${LOAD_MOVIE_SECONDS:-8}
source "$(dirname "$0")/../integration/lib.sh"
CPX_MOVIE=$CPX_MEDIA_DIR/load.mkv
OUT=$CPX_REPO/build/load
CHECK=$CPX_REPO/tests/faults/check.py
FX=$CPX_REPO/tests/fixtures/dash-remux.json

t_require_parts clusterplex-dispatcher clusterplex-agent clusterplex-shim clusterplex-fuse
t_movie
rm -rf "$OUT"
mkdir -p "$OUT"
cluster_trap
CPX_QUIET=1 cluster_up || t_fail "cluster up"
# Room for every job at once: each worker takes its share and some.
per=$(((LOAD_CONCURRENCY + LOAD_WORKERS - 1) / LOAD_WORKERS + 4))
for ((i = 1; i <= LOAD_WORKERS; i++)); do
	echo "CLUSTERPLEX_MAX_TASKS=$per" >>"$(cluster_host_dir "w$i" etc)/agent.env"
done
echo "CLUSTERPLEX_JOB_HISTORY=$((LOAD_JOBS + 100))" >>"$(cluster_host_dir pms etc)/dispatcher.env"
cluster_start_all || t_fail "the ClusterPlex services did not all start"
t_ok "cluster $CPX_CLUSTER: $LOAD_WORKERS workers ($per tasks each), build $CPX_BUILD"

py() { CPX_CLUSTER=$CPX_CLUSTER CPX_STATE=$CPX_STATE /usr/bin/python3 "$@"; }

# The reference: the stand-in itself on the PMS host, once with the movie,
# once with a missing input.
cluster_pms /usr/bin/python3 - "$CPX_SRC/tests/fixtures/dash-remux.json" "/media/${CPX_MOVIE##*/}" >"$OUT/ref.json" <<'EOF'
import hashlib, json, os, subprocess, sys, tempfile
fx = json.load(open(sys.argv[1]))
def run(media):
    d = tempfile.mkdtemp()
    argv = [a.replace(fx["cwd"], d) for a in fx["argv"]]
    argv = [a.replace("http://127.0.0.1:32400", "http://127.0.0.1:9") for a in argv]
    argv[argv.index("-i") + 1] = media
    env = dict(fx["env"], PATH="/usr/bin:/bin")
    env.pop("FFMPEG_EXTERNAL_LIBS")
    rc = subprocess.run(["/etc/clusterplex/transcoder/Plex Transcoder"] + argv,
                        cwd=d, env=env, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL).returncode
    segs = {n: hashlib.sha256(open(os.path.join(d, n), "rb").read()).hexdigest()
            for n in os.listdir(d) if n.endswith(".m4s")}
    return rc, segs
rc, segs = run(sys.argv[2])
assert rc == 0 and segs, (rc, segs)
frc, _ = run("/media/missing-input.mkv")
assert frc != 0
print(json.dumps({"segments": segs, "fail_exit": frc}))
EOF
t_ok "reference run: $(py -c 'import json,sys; r=json.load(open(sys.argv[1])); print(len(r["segments"]), "segments; a missing input exits", r["fail_exit"])' "$OUT/ref.json")"

cp "$(cluster_host_dir pms etc)/pms.env" "$(cluster_host_dir pms run)/load.env"
echo CLUSTERPLEX_LOG_LEVEL=debug >>"$(cluster_host_dir pms run)/load.env"
cp "$FX" "$(cluster_host_dir pms run)/load-fixture.json"
cluster_pms curl -fsS -m 5 "http://127.0.0.1:$CPX_DISPATCHER_PORT/metrics" >"$OUT/metrics-before"
procs=("dispatcher=$(cluster_svc_pid pms dispatcher)" "pool=$(cluster_svc_pid pms pool)"
	"fuse=$(cluster_svc_pid pms fuse)" "fake-pms=$(cluster_svc_pid pms fake-pms)")
for ((i = 1; i <= LOAD_WORKERS; i++)); do
	procs+=("agent-serve-w$i=$(cluster_svc_pid "w$i" agent)")
done
rm -f "$OUT/stop"
py "$CPX_REPO/tests/load/sample.py" --out "$OUT/sample.json" --stop "$OUT/stop" \
	--cluster "$CPX_CLUSTER" "${procs[@]}" &
sampler=$!
CPX_EXIT_HOOK="touch $OUT/stop; kill $sampler 2>/dev/null"
t0=$(t_now)
cluster_pms /usr/bin/python3 "$CPX_SRC/tests/load/driver.py" \
	--fixture /run/clusterplex/load-fixture.json --media "/media/${CPX_MOVIE##*/}" \
	--missing /media/missing-input.mkv --shim "$CPX_SRC/$CPX_BUILD/clusterplex-shim" \
	--env-file /run/clusterplex/load.env --jobs "$LOAD_JOBS" \
	--concurrency "$LOAD_CONCURRENCY" --fail-every "$LOAD_FAIL_EVERY" \
	--out /run/clusterplex/load-driver.json || t_fail "the driver failed"
took=$(t_since "$t0")
touch "$OUT/stop"
wait "$sampler" || t_fail "the sampler failed"
cluster_pms curl -fsS -m 5 "http://127.0.0.1:$CPX_DISPATCHER_PORT/metrics" >"$OUT/metrics-after"
cp "$(cluster_host_dir pms run)/load-driver.json" "$OUT/driver.json"
cp -r "$(cluster_host_dir pms run)/load-logs" "$OUT/logs"
cp "$(cluster_log pms pool)" "$OUT/pool.log"
cp "$(cluster_fake_pms_requests)" "$OUT/requests.jsonl"
t_ok "$LOAD_JOBS jobs, $LOAD_CONCURRENCY at a time, ended in $took s"

echo "== figures"
mount=/proc/$(cluster_svc_pid pms fake-pms)/root/transcode/Transcode/Sessions
rc=0
py "$CPX_REPO/tests/load/report.py" --dir "$OUT" --mount "$mount" \
	--workers "$LOAD_WORKERS" | tee "$OUT/summary.txt" || rc=$?
[ "$rc" = 0 ] || t_fail "some jobs are wrong (above), or a worker took none"

echo "== afterwards"
py "$CHECK" procs --wait 5 || t_fail "transcoders left"
py "$CHECK" jobs --wait 5 || t_fail "the dispatcher's job list is wrong"
sessions=$(py -c 'import json,sys; print(" ".join(j["session"] for j in json.load(open(sys.argv[1]))["jobs"]))' "$OUT/driver.json")
t0=$(t_now)
for s in $sessions; do
	echo "/transcode/Transcode/Sessions/$s"
done | cluster_pms timeout 120 xargs rm -rf || t_fail "PMS could not delete the session folders"
t_ok "PMS deleted $LOAD_JOBS session folders through the mount in $(t_since "$t0") s"
# shellcheck disable=SC2086
py "$CHECK" sessions --wait 15 $sessions || t_fail "session folders left"
grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$OUT"/logs/* && t_fail "sanitizer reports in the shims' logs"
t_ok "load test passed: $(head -n 1 "$OUT/summary.txt")"
