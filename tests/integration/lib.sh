# lib.sh — sourced by tests/integration/*.sh and scripts/demo.sh: the test
# cluster library plus checks of one job played through ClusterPlex.

# shellcheck source=../cluster/cluster.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../cluster" && pwd)/cluster.sh"

CPX_MOVIE=${CPX_MOVIE:-$CPX_MEDIA_DIR/movie.mkv}
CPX_MOVIE_SECONDS=${CPX_MOVIE_SECONDS:-20}

t_fail() {
	echo "FAIL: $*" >&2
	exit 1
}

t_ok() { echo "ok: $*"; }

# Seconds since the epoch with milliseconds, for step timings.
t_now() { date +%s.%3N; }
t_since() { awk -v a="$1" -v b="$(t_now)" 'BEGIN { printf "%.2f", b - a }'; }

# t_require_parts BIN...: fail with one line naming every binary that is
# not built (the parts other engineers deliver).
t_require_parts() {
	local b missing=()
	for b in "$@"; do
		[ -x "$CPX_REPO/$CPX_BUILD/$b" ] || missing+=("$CPX_BUILD/$b")
	done
	[ ${#missing[@]} = 0 ] && return 0
	t_fail "needs ${missing[*]}: not built yet (make ${missing[*]})"
}

t_movie() {
	"$CPX_REPO/tests/media/make-movie.sh" "$CPX_MOVIE" "$CPX_MOVIE_SECONDS" ||
		t_fail "cannot make the test movie"
}

# JSON field of a file, e.g. t_json FILE exit.
t_json() {
	/usr/bin/python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2"
}

# play_fixture NAME SESSION TRANSCODER [play-fixture options...]: starts
# TRANSCODER on the pms host as PMS would (fixture argv and env, media
# swapped, cwd = the fresh session folder SESSION under the fixture's
# Sessions folder, or the fixture's own folder when SESSION is empty),
# with PMS's ClusterPlex environment. The result: $(play_result SESSION).
play_fixture() {
	local name=$1 session=$2 transcoder=$3
	shift 3
	cluster_pms /usr/bin/python3 "$CPX_SRC/tests/standin/play-fixture" \
		"$CPX_SRC/tests/fixtures/$name.json" --transcoder "$transcoder" \
		--media /media/"${CPX_MOVIE##*/}" ${session:+--session "$session"} \
		--env-file /etc/clusterplex/pms.env \
		--result "/run/clusterplex/play-${session:-$name}.json" "$@"
}

play_result() { echo "$(cluster_host_dir pms run)/play-$1.json"; }

# The worker whose /transcode holds SESSION (its index); fails unless
# exactly one does.
session_worker() {
	local i found=()
	for ((i = 1; i <= CPX_WORKERS; i++)); do
		cluster_worker "$i" test -d "/transcode/Transcode/Sessions/$1" && found+=("$i")
	done
	[ ${#found[@]} = 1 ] || { echo "session $1 on workers: ${found[*]:-none}" >&2; return 1; }
	echo "${found[0]}"
}

# requests_check URL_PART KIND TOKEN: checks the fake PMS's record for
# the callbacks of one transcode; prints a one-line summary.
#   KIND dash|hls|none  which manifest must have arrived
requests_check() {
	/usr/bin/python3 - "$(cluster_fake_pms_requests)" "$1" "$2" "$3" <<'EOF'
import json, sys
path, part, kind, token = sys.argv[1:5]
reqs = [json.loads(l) for l in open(path)]
mine = [r for r in reqs if part in r["path"]]
def fail(msg):
    print("callbacks: " + msg, file=sys.stderr)
    for r in mine[:20]:
        print("  %s %s %s from %s" % (r["method"], r["path"], r["query"], r["peer"]), file=sys.stderr)
    sys.exit(1)
if not mine:
    fail("none recorded for %s (of %d requests)" % (part, len(reqs)))
bad = [r for r in mine if r["peer"] != "127.0.0.1"]
if bad:
    fail("%d not from 127.0.0.1 (e.g. %s)" % (len(bad), bad[0]["peer"]))
badtok = [r for r in mine if r["headers"].get("X-Plex-Token") != token]
if badtok:
    fail("%d without the X-Plex-Token header of the job" % len(badtok))
prog = [r for r in mine if r["method"] == "PUT" and r["path"].endswith("/progress")]
if not prog or prog[0]["query"].get("status") != ["startup"]:
    fail("the first progress PUT is not status=startup")
reports = [r for r in prog if "progress" in r["query"]]
if not reports:
    fail("no PUT progress?progress=... report")
for key in ("size", "remaining", "speed"):
    if key not in reports[0]["query"]:
        fail("progress report without %s" % key)
man = [r for r in mine if r["path"].endswith("/manifest")]
if kind == "dash" and not any("<MPD" in r.get("body", "") for r in man):
    fail("no DASH manifest PUT")
if kind == "hls" and not any(".ts," in r.get("body", "") for r in man):
    fail("no CSV segment-list PUT")
print("%d callbacks from 127.0.0.1 with the token: startup, %d progress reports, %d manifest PUTs"
      % (len(mine), len(reports), len(man)))
EOF
}

# segments_compare SESSION WORKER PATTERN: every file matching PATTERN in
# the session folder, read through the fuse mount on pms (via the fake
# PMS, as PMS serves segments), must equal the worker's file byte for byte
# (hashed inside the worker). Prints the count.
segments_compare() {
	local w=$2 pat=$3 dir="Transcode/Sessions/$1" names n=0 f a b
	names=$(cluster_pms curl -fsS -m 10 "http://127.0.0.1:$CPX_PMS_PORT/_files/$dir/" |
		/usr/bin/python3 -c '
import fnmatch, json, sys
for e in json.load(sys.stdin):
    if e["type"] == "file" and fnmatch.fnmatch(e["name"], sys.argv[1]):
        print(e["name"])' "$pat") || { echo "cannot list $dir through fuse" >&2; return 1; }
	[ -n "$names" ] || { echo "no $pat in $dir as seen through fuse" >&2; return 1; }
	for f in $names; do
		a=$(cluster_pms curl -fsS -m 10 "http://127.0.0.1:$CPX_PMS_PORT/_files/$dir/$f" |
			sha256sum | cut -d' ' -f1)
		b=$(cluster_worker "$w" sha256sum "/transcode/$dir/$f" | cut -d' ' -f1)
		[ -n "$b" ] && [ "$a" = "$b" ] ||
			{ echo "$f differs: through fuse $a, on w$w ${b:-missing}" >&2; return 1; }
		n=$((n + 1))
	done
	echo "$n"
}

# cluster_shim SESSION [NAME=VALUE...] -- ARGS: the shim under test on the
# pms host, run from the session folder (made first) with PMS's ClusterPlex
# environment (pms.env) and the NAME=VALUE pairs added.
cluster_shim() {
	local s=$1
	shift
	cluster_pms mkdir -p "/transcode/Transcode/Sessions/$s"
	cluster_pms /bin/bash -c '
		while IFS= read -r l; do
			case $l in "" | "#"*) ;; *) export "$l" ;; esac
		done </etc/clusterplex/pms.env
		cd "/transcode/Transcode/Sessions/$1" && shift
		v=()
		while [ "$1" != -- ]; do v+=("$1"); shift; done
		shift
		exec env "${v[@]}" "$0" "$@"' "$CPX_SRC/$CPX_BUILD/clusterplex-shim" "$s" "$@"
}
