#!/bin/bash
# fuse_segments.sh — a DASH and an HLS transcode written by ffmpeg on the
# "worker" (real agent, real inotify), read through the mount while they
# run, as PMS reads them: every segment byte-identical to the worker's
# file, during the run and after. PMS's own file in the session folder
# (temp-0.srt) stays visible; deleting the folder deletes it on the
# worker and ends the route.
set -eu -o pipefail
. "$(dirname "$0")/fuse_lib.sh"
fz_require python3 ffmpeg
fz_setup
fz_worker w1
fz_mount

media=$FZ/movie.mkv
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=s=640x360:r=24:d=8 \
    -f lavfi -i sine=f=440:d=8 -c:v libx264 -preset ultrafast -g 24 \
    -c:a aac -shortest "$media" || fz_fail "cannot make the test movie"

S=Transcode/Sessions
for s in plex-transcode-dash plex-transcode-hls; do
	mkdir -p "$FZ/mnt/$S/$s"		# PMS makes the folder first
done
echo "1
00:00:00,000 --> 00:00:01,000
hi" >"$FZ/mnt/$S/plex-transcode-hls/temp-0.srt"
fz_route "$S/plex-transcode-dash" job-dash w1
fz_route "$S/plex-transcode-hls" job-hls w1
[ -d "$FZ/w1/$S/plex-transcode-dash" ] || fz_fail "ROUTE_OK before the worker watches"
fz_ok "routes confirmed (the worker watches both folders)"

# The "remote transcoders", in the worker's folders, in real time.
(cd "$FZ/w1/$S/plex-transcode-dash" && exec ffmpeg -hide_banner -loglevel error \
    -re -i "$media" -map 0 -c copy -f dash -seg_duration 1 \
    -init_seg_name 'init-stream$RepresentationID$.m4s' \
    -media_seg_name 'chunk-stream$RepresentationID$-$Number%05d$.m4s' dash) &
dash_pid=$!
(cd "$FZ/w1/$S/plex-transcode-hls" && exec ffmpeg -hide_banner -loglevel error \
    -re -i "$media" -map 0 -c copy -f ssegment -segment_format mpegts \
    -segment_time 1 -segment_list list.csv -segment_list_type csv \
    media-%05d.ts) &
hls_pid=$!

# PMS's side: read each finished segment as soon as the mount lists it.
python3 - "$FZ/mnt/$S" "$FZ/w1/$S" "$dash_pid" "$hls_pid" <<'EOF'
import hashlib, os, sys, time
mnt, wrk, dash_pid, hls_pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def alive(pid):
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return False
def h(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()
seen = {}
def done_names(session, names):
    if session.endswith("dash"):
        return [n for n in names if n.startswith("chunk-") and n.endswith(".m4s")]
    # ssegment writes in place: a segment is finished once the CSV lists it
    try:
        rows = open(os.path.join(mnt, session, "list.csv")).read().split("\n")
    except FileNotFoundError:
        return []
    return [r.split(",")[0] for r in rows if r.startswith("media-")]
deadline = time.time() + 60
while time.time() < deadline:
    running = os.path.exists("/proc/%d" % dash_pid) or os.path.exists("/proc/%d" % hls_pid)
    for session in ("plex-transcode-dash", "plex-transcode-hls"):
        names = os.listdir(os.path.join(mnt, session))
        for n in done_names(session, names):
            key = (session, n)
            if key not in seen:
                seen[key] = h(os.path.join(mnt, session, n))
    if not running:
        break
    time.sleep(0.05)
during = len(seen)
assert during >= 10, "only %d segments seen while running" % during
# After the run: everything the worker has, the mount has, byte for byte.
files = 0
for session in ("plex-transcode-dash", "plex-transcode-hls"):
    wnames = sorted(os.listdir(os.path.join(wrk, session)))
    mnames = sorted(os.listdir(os.path.join(mnt, session)))
    extra = set(mnames) - set(wnames)
    assert extra <= {"temp-0.srt"}, extra
    assert set(wnames) <= set(mnames), set(wnames) - set(mnames)
    for n in wnames:
        a, b = h(os.path.join(wrk, session, n)), h(os.path.join(mnt, session, n))
        assert a == b, "%s/%s differs through the mount" % (session, n)
        if (session, n) in seen:
            assert seen[(session, n)] == a, "%s/%s was read before it was whole" % (session, n)
        files += 1
assert any(n.startswith("init-stream") for n in os.listdir(os.path.join(mnt, "plex-transcode-dash")))
print("%d segments read while ffmpeg ran, %d files identical after" % (during, files))
EOF
wait "$dash_pid" || fz_fail "ffmpeg dash failed"
wait "$hls_pid" || fz_fail "ffmpeg hls failed"
fz_ok "DASH and HLS segments byte-identical through the mount, during and after"

grep -q hi "$FZ/mnt/$S/plex-transcode-hls/temp-0.srt" || fz_fail "PMS's own temp-0.srt is gone"
fz_ok "PMS's own file in a routed folder stays visible"

# PMS ends the session: the folder goes, on the worker too, and so does the route.
rm -rf "$FZ/mnt/$S/plex-transcode-dash" "$FZ/mnt/$S/plex-transcode-hls"
[ -e "$FZ/w1/$S/plex-transcode-dash" ] && fz_fail "dash folder still on the worker"
[ -e "$FZ/w1/$S/plex-transcode-hls" ] && fz_fail "hls folder still on the worker"
[ -e "$FZ/mnt/$S/plex-transcode-hls" ] && fz_fail "hls folder still on the PMS host"
grep -q plex-transcode "$FZ/run/fuse-routes.json" && fz_fail "routes outlived their folders"
fz_ok "deleting the session folder deletes it on the worker and ends its route"
fz_unmount
[ -z "$(ls -A "$FZ/mnt/$S")" ] || fz_fail "leftovers under the mount: $(ls -A "$FZ/mnt/$S")"
fz_ok "unmounted, nothing left"
