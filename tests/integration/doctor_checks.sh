#!/bin/bash
# doctor_checks.sh — `clusterplex-shim doctor` on the test cluster: with
# everything right it exits 0 and every check passes; then each check it
# claims, one at a time, on a cluster where exactly that one thing is
# broken: that check (and only that one, but for the skips a failed
# connection implies) fails with exit 1, and passes again once repaired.
# Until clusterplex-fuse lands, the right setup is shared storage
# (CLUSTERPLEX_SHARED_TRANSCODE=true); the fuse check is shown failing
# without it. Needs faketime (the clock check).
set -eu -o pipefail
export CPX_CLUSTER=${CPX_CLUSTER:-cxd} CPX_WORKERS=1
source "$(dirname "$0")/lib.sh"

t_require_parts clusterplex-dispatcher clusterplex-agent clusterplex-shim
command -v faketime >/dev/null || t_fail "needs faketime (scripts/deps.sh cluster)"
t_movie
cluster_trap
CPX_QUIET=1 cluster_up || t_fail "cluster up"
E=$(cluster_host_dir pms etc)
W=$(cluster_host_dir w1 etc)
SET=8bf330d-2818-linux-x86_64-standard
mkdir -p "$E/pms-data/Codecs/$SET"
printf 'x' >"$E/pms-data/Codecs/$SET/libh264_decoder.so"
prefs() {
	printf '<?xml version="1.0" encoding="utf-8"?>\n<Preferences OldestPreviousVersion="1.40.0" TranscoderTempDirectory="%s" FriendlyName="pms &amp; co"/>\n' "$1" \
		>"$E/pms-data/Preferences.xml"
}
prefs /transcode
printf '%s\n' CLUSTERPLEX_PMS_DATA_DIR=/etc/clusterplex/pms-data CLUSTERPLEX_SHARED_TRANSCODE=true >>"$E/pms.env"
echo CLUSTERPLEX_CODEC_CACHE=/run/clusterplex/codecs >>"$W/agent.env"
cluster_start_dispatcher && cluster_start_agents && cluster_wait_workers 1 15 ||
	t_fail "the ClusterPlex services did not start"
O=$(mktemp -d /tmp/cxd-out.XXXXXX)
CPX_EXIT_HOOK="rm -rf $O"

# doctor [NAME=VALUE...]: runs it on pms; sets RC, the JSON in $O/doc.json.
doctor() {
	RC=0
	cluster_pms /bin/bash -c '
		while IFS= read -r l; do
			case $l in "" | "#"*) ;; *) export "$l" ;; esac
		done </etc/clusterplex/pms.env
		exec env "$@"' doctor "$@" "$CPX_SRC/$CPX_BUILD/clusterplex-shim" doctor --json \
		--media /media/movie.mkv >"$O/doc.json" 2>"$O/doc.err" || RC=$?
}
# The status of check ID (first match).
status() {
	/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(next((c["status"] for c in d["checks"] if c["check"] == sys.argv[2]), "absent"))' "$O/doc.json" "$1"
}
failing() {
	/usr/bin/python3 -c '
import json, sys
print(" ".join(c["check"] for c in json.load(open(sys.argv[1]))["checks"] if c["status"] == "fail"))' "$O/doc.json"
}
message() {
	/usr/bin/python3 -c '
import json, sys
c = next(c for c in json.load(open(sys.argv[1]))["checks"] if c["check"] == sys.argv[2])
print(c["message"] + ("  [fix: " + c["fix"] + "]" if "fix" in c else ""))' "$O/doc.json" "$1"
}
all_pass() {
	doctor
	[ "$RC" = 0 ] && [ -z "$(failing)" ] ||
		{ cat "$O/doc.json" "$O/doc.err" >&2; t_fail "$1: doctor exit $RC, failing: $(failing)"; }
}
# expect_fail ID WHAT [NAME=VALUE...]: only ID fails (and listed followers).
expect_fail() {
	local id=$1 what=$2 also=""
	shift 2
	case $id in
	worker.ssh | worker.host_key | worker.forced_command | worker.agent) also="any" ;;
	esac
	doctor "$@"
	[ "$RC" = 1 ] || t_fail "$what: doctor exited $RC, not 1"
	[ "$(status "$id")" = fail ] || { cat "$O/doc.json" >&2; t_fail "$what: $id is $(status "$id")"; }
	[ -n "$also" ] || [ "$(failing)" = "$id" ] || t_fail "$what: failing: $(failing), not just $id"
	t_ok "$what -> $id: $(message "$id")"
}

all_pass "right setup"
doctor
n=$(/usr/bin/python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["checks"]))' "$O/doc.json")
t_ok "right setup: doctor exits 0, $n checks, none failing (skipped: fuse.mount on shared storage)"
cluster_pms /bin/bash -c '
	while IFS= read -r l; do
		case $l in "" | "#"*) ;; *) export "$l" ;; esac
	done </etc/clusterplex/pms.env
	exec "$0" doctor --media /media/movie.mkv' "$CPX_SRC/$CPX_BUILD/clusterplex-shim" | sed 's/^/    /'

cluster_stop_svc pms dispatcher
expect_fail dispatcher.reachable "dispatcher stopped"
cluster_start_dispatcher && cluster_wait_workers 1 15 || t_fail "dispatcher restart"

expect_fail dispatcher.token "wrong token" CLUSTERPLEX_TOKEN=not-the-token

prefs "/var/lib/plexmediaserver/Library/Application Support/Plex Media Server/Cache/Transcode"
expect_fail pms.transcoder_temp "PMS transcodes into its own cache"
prefs /transcode

expect_fail fuse.mount "no fuse mount and no shared storage" CLUSTERPLEX_SHARED_TRANSCODE=false

cluster_stop_svc w1 sshd
expect_fail worker.ssh "sshd stopped on w1"
cluster__start_sshd w1 || t_fail "sshd restart"

cp "$E/ssh/known_hosts" "$O/known_hosts"
ssh-keygen -q -t ed25519 -N '' -f "$O/other" -C other
echo "$(cluster_worker_ip 1) $(cut -d' ' -f1,2 "$O/other.pub")" >"$E/ssh/known_hosts"
expect_fail worker.host_key "w1's host key is not the known one"
cp "$O/known_hosts" "$E/ssh/known_hosts"

cp "$W/ssh/authorized_keys" "$O/authorized_keys"
sed 's/^restrict,command="[^"]*" //' "$O/authorized_keys" >"$W/ssh/authorized_keys"
expect_fail worker.forced_command "authorized_keys without command="
sed 's|command="[^ ]*clusterplex-agent|command="/nonexistent/clusterplex-agent|' \
	"$O/authorized_keys" >"$W/ssh/authorized_keys"
expect_fail worker.agent "the forced command names a missing agent"
cp "$O/authorized_keys" "$W/ssh/authorized_keys"

mv "$W/transcoder/Plex Transcoder" "$O/transcoder-link"
expect_fail worker.transcoder "w1 has no transcoder"
mv "$O/transcoder-link" "$W/transcoder/Plex Transcoder"

cp "$W/agent.env" "$O/agent.env"
echo CLUSTERPLEX_CODEC_CPU=aarch64 >>"$W/agent.env"
expect_fail worker.codecs "an aarch64 worker without an aarch64 set"
cp "$O/agent.env" "$W/agent.env"

chmod 0555 "$(cluster_host_dir w1 transcode)"
expect_fail worker.transcode_dir "w1's transcode folder read-only"
chmod 0755 "$(cluster_host_dir w1 transcode)"

echo CLUSTERPLEX_PATH_MAP=/media=/mnt/nas-not-mounted >>"$W/agent.env"
expect_fail worker.media "the path map points where the media is not"
cp "$O/agent.env" "$W/agent.env"

# faketime preloads its library; a sanitizer build must be told to accept
# a library loaded before its runtime.
sed 's|command="|command="/usr/bin/env ASAN_OPTIONS=verify_asan_link_order=0 /usr/bin/faketime -f +30s |' \
	"$O/authorized_keys" >"$W/ssh/authorized_keys"
expect_fail worker.clock "w1's clock 30 s ahead"
cp "$O/authorized_keys" "$W/ssh/authorized_keys"

all_pass "everything repaired"
t_ok "everything repaired: doctor exits 0 again"
