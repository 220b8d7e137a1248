#!/bin/bash
# containers_e2e.sh — ClusterPlex's images, built and run for real: the
# dispatcher image, and the PMS and worker images on a stand-in for
# linuxserver's plex image (docker/test/lsio: a Debian root made here, s6,
# the stand-in transcoder as `Plex Transcoder`, the fake PMS as `Plex Media
# Server`). Rootful podman with runc; the containers live on a podman
# network inside a network namespace of this test's own, so nothing is
# reachable from or to the host's network.
#
# One DASH fixture is played through them as PMS plays it: inside the PMS
# container, as PMS's user, with PMS's environment. Checked: the shim is in
# place of `Plex Transcoder` after linuxserver's "Plex update" reinstalled
# it; the transcode ran on a worker container (files in its /transcode,
# none on PMS's disk); the segments read through clusterplex-fuse in the
# PMS container equal the worker's; the fake PMS got the progress and
# manifest callbacks from 127.0.0.1; PMS's codec set followed the job
# into the worker's /config; the images' health checks pass; the
# dispatcher runs as non-root on a read-only root; a worker's sshd lets
# PMS's key run the agent only; `clusterplex-shim doctor` passes every
# check in PMS's container; a SIGKILL of the shim in PMS's container
# ends the transcoder on the worker within a second. Then the PMS side as a docker mod: the
# plain base image with DOCKER_MODS gets the mod's packages installed, the
# shim in place, fuse mounted and the pool running.
#
# Environment: CPX_CONTAINERS_CACHE (debootstrap root; default
# /var/cache/clusterplex-containers), CPX_CT (name prefix of everything it
# creates; default ct$CPX_CLUSTER), CPX_CT_KEEP=1 (leave it all running to
# look at).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${CPX_CONTAINERS_CACHE:-/var/cache/clusterplex-containers}
# Unique per run of tests/integration/run.sh (which sets CPX_CLUSTER).
P=${CPX_CT:-ct${CPX_CLUSTER:-x}}
NS=$P-net
NET=$P-net
TOKEN=containers-$$-0f1e2d3c4b5a69788796a5b4c3d2e1f0
SESSION=plex-transcode-ct$$-d5b670a4-a535-490f-881e-dcbba86b8f82
DIR=/transcode/Transcode/Sessions/$SESSION
IMG=localhost/clusterplex-test
ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
start=$(date +%s)
"$repo/scripts/deps.sh" containers cluster >/dev/null

say() { echo "# $*"; }
ok() { echo "ok: $*"; }
fail() {
	echo "FAIL: $*" >&2
	if [ -n "${logs:-}" ]; then
		for c in dispatcher pms w1 w2 mod; do
			podman logs "$P-$c" >"$logs/$c.log" 2>&1 || true
		done
		echo "FAIL: container logs in $logs" >&2
	fi
	exit 1
}

# podman in the test's network namespace; runc, and the ulimits this
# machine's sandbox needs, for every container.
pod() { nsenter --net="/run/netns/$NS" podman --runtime runc "$@"; }

# Everything this test creates has a name of its own ($P-...): what a
# killed run left behind is removed before a run, and all of it after.
remove_all() {
	local c
	for c in dispatcher pms w1 w2 mod; do
		podman rm -f -t 1 "$P-$c" >/dev/null 2>&1 || true
	done
	if [ -e "/run/netns/$NS" ]; then
		pod network rm -f "$NET" >/dev/null 2>&1 || true
		ip netns del "$NS" 2>/dev/null || true
	fi
}

cleanup() {
	if [ "${CPX_CT_KEEP:-}" = 1 ]; then
		say "kept: containers $P-*, netns $NS"
		return
	fi
	remove_all
	[ -n "${tmp:-}" ] && rm -rf "$tmp"
}

for t in podman runc debootstrap nsenter ip; do
	command -v "$t" >/dev/null || fail "$t is missing (scripts/deps.sh containers)"
done
[ "$(id -u)" = 0 ] || fail "needs root (rootful podman, a network namespace)"

# --- images ---------------------------------------------------------------

timed() {
	local t0=$SECONDS name=$1
	shift
	"$@" >"$logs/build-$name.log" 2>&1 || {
		tail -30 "$logs/build-$name.log" >&2
		fail "building $name"
	}
	say "$name: $((SECONDS - t0)) s"
}

build() {
	podman --runtime runc build -q --network host "${ULIMITS[@]}" \
	    --format docker "$@"
}

trap cleanup EXIT
tmp=$(mktemp -d "/tmp/$P.XXXXXX")
# Kept after a failure (build logs, each container's log).
logs=$repo/build/containers-e2e
rm -rf "$logs"
mkdir -p "$logs" "$tmp/pms-config" "$tmp/pms-transcode"
remove_all

cd "$repo"
timed debian-base docker/test/debian-base.sh "$IMG/debian:bookworm" "$cache"
timed lsio-base build --ignorefile docker/test/lsio/Dockerfile.dockerignore \
    -f docker/test/lsio/Dockerfile --build-arg DEBIAN_IMAGE="$IMG/debian:bookworm" \
    -t "$IMG/lsio" .
for target in dispatcher pms worker; do
	timed "$target" build --ignorefile docker/Dockerfile.dockerignore \
	    -f docker/Dockerfile --target "$target" \
	    --build-arg DEBIAN_IMAGE="$IMG/debian:bookworm" \
	    --build-arg DISPATCHER_IMAGE="$IMG/debian:bookworm" \
	    --build-arg PLEX_IMAGE="$IMG/lsio" \
	    --build-arg TRANSCODER_PATH=/usr/lib/plexmediaserver/ \
	    --build-arg "TRANSCODER_NAME=Plex Transcoder" \
	    -t "$IMG/$target" .
done
ok "images built ($(($(date +%s) - start)) s so far)"

# The test movie the cluster's tests use (made once, kept in build/media),
# at the same path in PMS and the workers, like a media share.
media=$repo/build/media
"$repo/tests/media/make-movie.sh" "$media/movie.mkv" 20 ||
	fail "cannot make the test movie"

# --- the network ------------------------------------------------------------

ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
# --internal: no gateway, no NAT; the containers reach each other only.
# Podman picks a subnet no other network of its uses.
pod network create --internal "$NET" >/dev/null
subnet=$(podman network inspect --format '{{range .Subnets}}{{.Subnet}}{{end}}' "$NET")
case $subnet in
*.0/24) SUBNET=${subnet%.0/24} ;;
*) fail "podman gave network $NET the subnet '$subnet', not a /24" ;;
esac
HOSTS=(--add-host "dispatcher:$SUBNET.10" --add-host "pms:$SUBNET.11"
    --add-host "w1:$SUBNET.21" --add-host "w2:$SUBNET.22")

run() {
	local name=$1 ip=$2
	shift 2
	pod run -d --name "$P-$name" --hostname "$name" "${ULIMITS[@]}" \
	    --network "$NET" --ip "$ip" "${HOSTS[@]}" --health-interval disable \
	    "$@" >/dev/null 2>"$tmp/run-$name.err" || {
		cat "$tmp/run-$name.err" >&2
		fail "cannot start $name"
	}
}

# wait_for SECONDS WHAT CMD...: polls CMD every 0.2 s.
wait_for() {
	local secs=$1 what=$2 deadline=$((SECONDS + $1))
	shift 2
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt "$deadline" ] || fail "$what (waited $secs s)"
		sleep 0.2
	done
}

healthy() { podman healthcheck run "$P-$1" >/dev/null 2>&1; }

# An HTTP GET from inside the PMS container (python3 is in the test base).
get() {
	podman exec "$P-pms" python3 -c '
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"
}

# --- containers ---------------------------------------------------------------

run dispatcher "$SUBNET.10" --read-only -e "CLUSTERPLEX_TOKEN=$TOKEN" \
    "$IMG/dispatcher"
wait_for 20 "the dispatcher's health check" healthy dispatcher
uid=$(podman top "$P-dispatcher" huser | sed -n 2p)
[ "$uid" = 3500 ] || fail "the dispatcher runs as uid $uid, not 3500"
ok "dispatcher healthy, uid $uid, read-only root"

# VERSION=latest: the test base reinstalls its "Plex" package at start, as
# linuxserver's image updates Plex, overwriting the shim.
run pms "$SUBNET.11" --device /dev/fuse --cap-add SYS_ADMIN \
    -e PUID=1000 -e PGID=1000 -e TZ=Etc/UTC -e VERSION=latest \
    -e ORCHESTRATOR_URL=http://dispatcher:3500 -e "CLUSTERPLEX_TOKEN=$TOKEN" \
    -v "$tmp/pms-config:/config" -v "$tmp/pms-transcode:/transcode" \
    -v "$media:/data/movies:ro" -v "$repo/tests:/opt/clusterplex/tests:ro" \
    "$IMG/pms"
wait_for 60 "PMS's health check (fake PMS on 32400)" healthy pms
# (Logs go to a file first: grep -q would close the pipe early, and with
# pipefail podman's SIGPIPE would fail the check.)
podman logs "$P-pms" >"$logs/pms.log" 2>&1
grep -q 'Plex package reinstalled' "$logs/pms.log" ||
	fail "the test base did not reinstall its Plex package (VERSION=latest)"
key=$(podman exec "$P-pms" cat /config/clusterplex/ssh/id_ed25519.pub) ||
	fail "PMS made no SSH key under /config"
ok "PMS up: fuse mounted before Plex started, key under /config"

# w1 gets PMS's key as a value (another host, Kubernetes); w2 reads it
# from PMS's config folder, as the single-host compose file has it.
keyarg=(-e "CLUSTERPLEX_AUTHORIZED_KEYS=$key")
for i in 1 2; do
	run "w$i" "$SUBNET.2$i" -e PUID=1000 -e PGID=1000 -e TZ=Etc/UTC \
	    -e ORCHESTRATOR_URL=http://dispatcher:3500 -e "CLUSTERPLEX_TOKEN=$TOKEN" \
	    "${keyarg[@]}" -v "$media:/data/movies:ro" "$IMG/worker"
	keyarg=(-e CLUSTERPLEX_AUTHORIZED_KEYS_FILE=/pms-ssh/id_ed25519.pub
	    -v "$tmp/pms-config/clusterplex/ssh:/pms-ssh:ro")
done
workers() {
	get http://dispatcher:3500/api/v1/workers | /usr/bin/python3 -c '
import json, sys
names = sorted(w["name"] for w in json.load(sys.stdin)["workers"])
sys.exit(0 if names == ["w1", "w2"] else 1)'
}
wait_for 60 "both workers registered with the dispatcher" workers
wait_for 20 "the workers' health checks" healthy w1
wait_for 20 "the workers' health checks" healthy w2
ok "workers w1, w2 registered and healthy ($(($(date +%s) - start)) s so far)"

# --- the shim, after the "update" ---------------------------------------------

transcoder="/usr/lib/plexmediaserver/Plex Transcoder"
podman exec "$P-pms" cmp -s /usr/bin/clusterplex-shim "$(podman exec "$P-pms" \
    readlink -f "$transcoder")" || fail "\"$transcoder\" is not the shim"
ok "the shim is in place of Plex Transcoder after the Plex package was reinstalled"

# --- one transcode, as PMS starts it ---------------------------------------------

# PMS keeps the codecs its transcoder loads in its config folder, and a
# job's FFMPEG_EXTERNAL_LIBS names that set; the set follows the job to
# the worker (docs/workers.md). A stand-in set where the fixture says.
codecs=$(/usr/bin/python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))["env"]["FFMPEG_EXTERNAL_LIBS"]
print(v.replace("\\ ", " ").rstrip("/"))' "$repo/tests/fixtures/dash-remux.json")
codec_set=${codecs##*/}
podman exec "$P-pms" s6-setuidgid abc sh -c 'mkdir -p "$1" &&
    head -c 300000 /dev/urandom >"$1/libh264_decoder.so" &&
    printf tiny >"$1/libaac_encoder.so"' sh "$codecs" ||
	fail "cannot make PMS's codec set"

# PMS hands its own environment (the container's, through with-contenv)
# to its transcoder; play-fixture starts from the fixture's, so ClusterPlex's
# settings are added from PMS's environment.
podman exec "$P-pms" with-contenv sh -c 'env | grep -E \
    "^(CLUSTERPLEX_|ORCHESTRATOR_URL=|TRANSCODE|PMS_)" >/tmp/pms.env'
t0=$SECONDS
rc=0
podman exec "$P-pms" with-contenv s6-setuidgid abc \
    /usr/lib/plexmediaserver/play-fixture \
    /opt/clusterplex/tests/fixtures/dash-remux.json --transcoder "$transcoder" \
    --media /data/movies/movie.mkv --session "$SESSION" --env-file /tmp/pms.env \
    --result /tmp/play-result.json >"$logs/play.log" 2>&1 || rc=$?
[ "$rc" = 0 ] || { cat "$logs/play.log" >&2; fail "the shim exited $rc"; }
ok "the shim exited 0 after $((SECONDS - t0)) s"

ran_on=()
for w in w1 w2; do
	if podman exec "$P-$w" test -d "$DIR"; then
		ran_on+=("$w")
	fi
done
[ ${#ran_on[@]} = 1 ] || fail "the session folder is on workers: ${ran_on[*]:-none}"
w=${ran_on[0]}
owner=$(podman exec "$P-$w" stat -c %u "$DIR/init-stream0.m4s") ||
	fail "$w has no init-stream0.m4s"
[ "$owner" = 1000 ] || fail "$w's segments belong to uid $owner, not PUID 1000"
on_disk=$(find "$tmp/pms-transcode" -type f | wc -l)
[ "$on_disk" = 0 ] || fail "$on_disk files on PMS's own transcode folder"
ok "the transcode ran on $w as PUID 1000; nothing on PMS's disk"

setsums() { podman exec "$P-$1" sh -c "cd '$2' && sha256sum lib*.so"; }
[ "$(setsums "$w" "/config/clusterplex/codecs/$codec_set")" = \
    "$(setsums pms "$codecs")" ] || fail "$w's copy of codec set $codec_set differs"
ok "codec set $codec_set followed the job into $w's /config"

# Every segment PMS reads through fuse equals the worker's file.
sums() { podman exec "$P-$1" sh -c "cd '$DIR' && sha256sum *.m4s | sort -k2"; }
theirs=$(sums "$w")
mine=$(sums pms)
n=$(printf '%s\n' "$theirs" | grep -c .)
[ "$n" -ge 10 ] || fail "only $n segments on $w"
[ "$mine" = "$theirs" ] || fail "segments read through fuse differ from $w's"
ok "$n segments read through fuse in the PMS container equal $w's files"

get http://127.0.0.1:32400/_requests >"$tmp/requests.jsonl"
/usr/bin/python3 - "$tmp/requests.jsonl" "$TOKEN" <<'PY' || fail "callbacks"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
mine = [r for r in reqs if "/video/:/transcode/session/" in r["path"]]
progress = [r for r in mine if r["path"].endswith("/progress") and r["method"] == "PUT"]
manifest = [r for r in mine if r["path"].endswith("/manifest")]
peers = {r["peer"] for r in mine}
problems = []
if len(progress) < 2:
    problems.append(f"{len(progress)} progress PUTs")
if not manifest:
    problems.append("no manifest")
if peers - {"127.0.0.1"}:
    problems.append(f"callbacks from {sorted(peers)}")
if problems:
    print("callbacks: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"ok: fake PMS got {len(progress)} progress PUTs and {len(manifest)} "
      "manifest requests, all from 127.0.0.1")
PY

jobs=$(get http://dispatcher:3500/api/v1/jobs)
printf '%s' "$jobs" | /usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)
ended = [x for x in j["recent"] if x.get("worker") == sys.argv[1]]
sys.exit(0 if ended and ended[0].get("outcome") == "ok" else 1)' "$w" ||
	fail "the dispatcher does not list the job as ended ok on $w: $jobs"
ok "the dispatcher lists the job on $w, outcome ok"

# --- the worker's sshd: PMS's key runs the agent, nothing else --------------------

podman exec "$P-pms" sh -c "cat /config/clusterplex/ssh/id_ed25519 >/tmp/k &&
    chmod 600 /tmp/k" || fail "cannot read PMS's key"
sshw() {
	podman exec "$P-pms" timeout 10 ssh -o BatchMode=yes -o UserKnownHostsFile=/dev/null \
	    -o StrictHostKeyChecking=no -i /tmp/k "$@" </dev/null 2>&1
}
out=$(sshw abc@w1 id) || true
case $out in *uid=*) fail "w1 ran a shell command: $out" ;; esac
# -W asks for a forwarded connection at once: to w1's own sshd, whose
# banner would come back if it were allowed.
out=$(sshw -W 127.0.0.1:22 abc@w1) || true
case $out in
*SSH-2.0*) fail "w1 forwarded a connection" ;;
*prohibited*) ;;
*) fail "w1's answer to a forwarding request: $out" ;;
esac
out=$(sshw root@w1 id) || true
case $out in *"Permission denied"*) ;; *) fail "w1 and root: $out" ;; esac
ok "w1's sshd: PMS's key gets the agent only (no command, no forwarding, no root)"

# --- clusterplex-shim doctor, in PMS's container ---------------------------------

# Plex's own setting, as a user makes it (Settings, Transcoder): the
# transcode folder is /transcode. Then every check of the doctor must pass
# in this deployment: dispatcher, token, fuse, and on each worker SSH, the
# pinned host key, the forced command, the agent, transcoder, codecs,
# transcode folder, media and clock.
podman exec "$P-pms" s6-setuidgid abc sh -c 'mkdir -p "$1" && printf "%s\n" \
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>" \
    "<Preferences TranscoderTempDirectory=\"/transcode\"/>" >"$1/Preferences.xml"' \
    sh "/config/Library/Application Support/Plex Media Server"
podman exec "$P-pms" with-contenv s6-setuidgid abc clusterplex-shim doctor --json \
    >"$logs/doctor.json" 2>&1 || true
/usr/bin/python3 - "$logs/doctor.json" <<'PY' || fail "doctor (build/containers-e2e/doctor.json)"
import json, sys
d = json.load(open(sys.argv[1]))
bad = [f'{c["check"]} {c.get("target", "")}: {c["message"]}'
       for c in d["checks"] if c["status"] != "pass"]
for b in bad:
    print("doctor: " + b, file=sys.stderr)
sys.exit(1 if bad or not d["ok"] else 0)
PY
ok "clusterplex-shim doctor in PMS's container: $(/usr/bin/python3 -c '
import json, sys; print(len(json.load(open(sys.argv[1]))["checks"]))' "$logs/doctor.json") checks passed"

# --- PMS's SIGKILL stops the remote transcoder ----------------------------------

# A transcode long enough to be killed midway (libx264, a 60 s movie).
"$repo/tests/media/make-movie.sh" "$media/movie-60.mkv" 60 ||
	fail "cannot make the 60 s test movie"
KILLED=plex-transcode-kill$$-e71a4d30-c14b-49b4-8d5e-3e3eee1a39e5
podman exec -d "$P-pms" with-contenv s6-setuidgid abc \
    /usr/lib/plexmediaserver/play-fixture \
    /opt/clusterplex/tests/fixtures/hls-seek-srt.json --transcoder "$transcoder" \
    --media /data/movies/movie-60.mkv --seek 0 --session "$KILLED" \
    --env-file /tmp/pms.env --pidfile /tmp/kill.pid >/dev/null
running_on() {
	local w
	for w in w1 w2; do
		if podman exec "$P-$w" pgrep -u 1000 ffmpeg >/dev/null 2>&1; then
			echo "$w"
			return 0
		fi
	done
	return 1
}
wait_for 30 "the long transcode running on a worker" running_on
kw=$(running_on)
# The clock runs on the worker: a watcher starts it just before PMS's
# SIGKILL and stops it when no transcoder process of the job is left, so
# podman's own latency only makes the figure larger.
podman exec -d "$P-$kw" bash -c 'until [ -e /tmp/kill-go ]; do sleep 0.005; done
	t0=$(date +%s%N)
	while pgrep -u 1000 -f "ffmpeg|Plex Transcoder" >/dev/null; do sleep 0.01; done
	echo $(( ($(date +%s%N) - t0) / 1000000 )) >/tmp/kill-gone-ms' >/dev/null
sleep 0.3
podman exec "$P-$kw" touch /tmp/kill-go
podman exec "$P-pms" sh -c 'kill -KILL "$(cat /tmp/kill.pid)"'
wait_for 10 "the transcoder on $kw to go after the SIGKILL" \
    podman exec "$P-$kw" test -s /tmp/kill-gone-ms
ms=$(podman exec "$P-$kw" cat /tmp/kill-gone-ms)
[ "$ms" -le 1000 ] || fail "the transcoder on $kw outlived the shim's SIGKILL by $ms ms"
ok "PMS SIGKILLs the shim: the transcoder on $kw is gone $ms ms later"

# --- the docker mod, applied at start to the plain plex image ---------------------

# linuxserver's init unpacks DOCKER_MODS over the container before the
# services start (the test base takes the mod from /mods/<name>.tar, as no
# registry is reachable), then installs the packages the mod asked for: on
# slirp4netns, this one container reaches Debian's mirror, nothing else.
timed mod build --ignorefile docker/Dockerfile.dockerignore -f docker/Dockerfile \
    --target mod --build-arg PLEX_IMAGE="$IMG/lsio" -t "$IMG/mod" .
mnt=$(podman image mount "$IMG/mod")
tar -C "$mnt" -cf "$tmp/clusterplex-mod.tar" .
podman image unmount "$IMG/mod" >/dev/null
podman --runtime runc run -d --name "$P-mod" --hostname mod "${ULIMITS[@]}" \
    --network slirp4netns --device /dev/fuse --cap-add SYS_ADMIN \
    -e DOCKER_MODS=localhost/clusterplex-mod:latest -e PUID=1000 -e PGID=1000 \
    -e "CLUSTERPLEX_TOKEN=$TOKEN" \
    -v "$tmp/clusterplex-mod.tar:/mods/clusterplex-mod.tar:ro" \
    "$IMG/lsio" >/dev/null || fail "cannot start the mod's container"
up() {
	podman logs "$P-mod" >"$logs/mod.log" 2>&1
	grep -q 'services are up' "$logs/mod.log"
}
wait_for 180 "the mod's container: services up" up
for pkg in $(podman exec "$P-mod" cat /usr/share/clusterplex/runtime-packages \
    /usr/share/clusterplex/pms-packages); do
	podman exec "$P-mod" dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null |
	    grep -q 'ok installed' || fail "the mod did not get $pkg installed"
done
podman exec "$P-mod" cmp -s /usr/bin/clusterplex-shim "$(podman exec "$P-mod" \
    readlink -f "$transcoder")" || fail "the mod did not install the shim"
podman exec "$P-mod" awk '$2 == "/transcode" && $3 ~ /^fuse/ { f = 1 } END { exit !f }' \
    /proc/self/mounts || fail "the mod did not mount fuse"
podman exec "$P-mod" pgrep -u abc -f 'clusterplex-shim pool' >/dev/null ||
	fail "the mod's pool is not running"
ok "the docker mod on the plain plex image: packages installed, shim in place, fuse mounted, pool running"

echo "ok: containers end to end in $(($(date +%s) - start)) s"
