#!/bin/bash
# standin_fixtures.sh — the stand-in `Plex Transcoder` on the three PMS job
# fixtures against the fake PMS, inside the pms host of a cluster without
# workers: the files PMS expects appear, the fake PMS records Plex-shaped
# callbacks with the token, ffmpeg's exit status and death by signal are
# passed on, and a SIGKILL of the wrapper leaves no ffmpeg behind.
set -eu -o pipefail
export CPX_CLUSTER=${CPX_CLUSTER:-clst} CPX_WORKERS=0
source "$(dirname "$0")/lib.sh"

TOKEN=local-00000000-1111-2222-3333-444444444444
STANDIN=$CPX_SRC/tests/standin/plex-transcoder
SESS=/transcode/Transcode/Sessions

t_movie
cluster_trap
CPX_QUIET=1 cluster_up || t_fail "cluster up"
cluster_start_fake_pms || t_fail "fake PMS"

# Files in a folder of the pms host, one line.
files() { cluster_pms ls "$1" | tr '\n' ' '; }

echo "== dash-remux: DASH direct stream"
play_fixture dash-remux s-dash "$STANDIN" || t_fail "dash-remux exit $?"
got=$(files $SESS/s-dash)
want="chunk-stream0-00001.m4s chunk-stream0-00002.m4s chunk-stream0-00003.m4s chunk-stream0-00004.m4s chunk-stream1-00001.m4s chunk-stream1-00002.m4s chunk-stream1-00003.m4s chunk-stream1-00004.m4s init-stream0.m4s init-stream1.m4s "
[ "$got" = "$want" ] || t_fail "dash-remux wrote: $got"
t_ok "dash-remux wrote $got"
requests_check whrtmao0hvjo0120h21kz6cb dash "$TOKEN" || t_fail "dash-remux callbacks"

echo "== hls-seek-srt: HLS transcode after a seek, with an extracted SRT"
# The fixture seeks to 224 s, past the end of the test movie: ffmpeg still
# succeeds, writing the header and an empty first segment.
play_fixture hls-seek-srt s-hls224 "$STANDIN" || t_fail "hls-seek-srt exit $?"
got=$(files $SESS/s-hls224)
[ "$got" = "header media-00028.ts temp-0.srt " ] || t_fail "hls at 224 s wrote: $got"
t_ok "hls-seek-srt (seek 224 s) wrote $got"
play_fixture hls-seek-srt s-hls6 "$STANDIN" --seek 6 || t_fail "hls-seek-srt exit $?"
got=$(files $SESS/s-hls6)
[ "$got" = "header media-00028.ts media-00029.ts media-00030.ts temp-0.srt " ] ||
	t_fail "hls at 6 s wrote: $got"
t_ok "hls-seek-srt (seek 6 s) wrote $got"
# A player gets the header followed by a segment.
cluster_pms sh -c "cat $SESS/s-hls6/header $SESS/s-hls6/media-00029.ts |
	ffprobe -v error -show_entries stream=codec_name -of csv=p=0 -" |
	tr '\n' ' ' | grep -q '^h264 opus ass' ||
	t_fail "header + segment do not hold h264, opus and ass streams"
t_ok "header + media-00029.ts hold h264, opus and the subtitles"
requests_check e71a4d30-c14b-49b4-8d5e-3e3eee1a39e5 hls "$TOKEN" ||
	t_fail "hls-seek-srt callbacks"

echo "== detection-flac: an audio pre-pass to an absolute path"
play_fixture detection-flac "" "$STANDIN" || t_fail "detection-flac exit $?"
fmt=$(cluster_pms ffprobe -v error -show_entries format=format_name,duration \
	-of csv=p=0 /transcode/Transcode/Detection/some-uuid)
[[ $fmt = flac,19.* || $fmt = flac,20.* ]] || t_fail "detection output: $fmt"
t_ok "detection-flac wrote /transcode/Transcode/Detection/some-uuid ($fmt)"
requests_check /abc/def/ none "$TOKEN" || t_fail "detection callbacks"

echo "== exit status, log lines to PMS, signals"
# A missing media file: the wrapper's status must be ffmpeg's own, and the
# error reaches PMS as a log line (-loglevel_plex error) while stderr stays
# quiet (-loglevel quiet).
cluster_pms /usr/bin/python3 - "$STANDIN" <<'EOF' || t_fail "exit/log/signal checks"
import json, os, signal, subprocess, sys, time
standin = sys.argv[1]
fx = json.load(open("/opt/clusterplex/tests/fixtures/dash-remux.json"))
argv = fx["argv"]
argv[argv.index("-i") + 1] = "/media/no-such-movie.mkv"
cwd = "/transcode/Transcode/Sessions/s-fail"
os.makedirs(cwd)
env = dict(fx["env"], PATH="/usr/bin:/bin")
p = subprocess.run([standin] + argv, cwd=cwd, env=env, capture_output=True)
plain = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "quiet", "-i",
                        "/media/no-such-movie.mkv", "-f", "null", "-"])
print("missing input: wrapper exit %d, plain ffmpeg exit %d, stderr %d bytes"
      % (p.returncode, plain.returncode, len(p.stderr)))
assert p.returncode == plain.returncode != 0, "exit status not passed on"
assert p.stderr == b"", p.stderr

def children(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(x) for x in f.read().split()]

def start_endless():
    """The wrapper on an endless job; returns it and its ffmpeg's pid."""
    w = subprocess.Popen([standin, "-re", "-f", "lavfi", "-i", "testsrc2=size=160x90",
                          "-f", "null", "-"], cwd=cwd, env=env,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    for _ in range(100):
        kids = children(w.pid)
        if kids:
            return w, kids[0]
        time.sleep(0.05)
    raise SystemExit("no ffmpeg under the wrapper")

def gone(pid, secs=3):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().split(")")[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False

w, ff = start_endless()
os.kill(ff, signal.SIGKILL)
rc = w.wait(10)
print("ffmpeg SIGKILLed: wrapper returncode %d" % rc)
assert rc == -signal.SIGKILL, "death by signal not reproduced"

w, ff = start_endless()
time.sleep(0.5)
w.send_signal(signal.SIGTERM)
rc = w.wait(10)
print("wrapper SIGTERMed: ffmpeg stopped, wrapper exit %d" % rc)
assert rc == 255 and gone(ff), "SIGTERM not forwarded to ffmpeg"

w, ff = start_endless()
w.kill()
w.wait(10)
ok = gone(ff)
print("wrapper SIGKILLed: its ffmpeg %s" % ("is gone" if ok else "SURVIVED"))
assert ok

w, ff = start_endless()
os.killpg(w.pid, signal.SIGKILL)
w.wait(10)
assert gone(ff), "a group kill left ffmpeg"
print("process group SIGKILLed: wrapper and ffmpeg gone")
EOF
/usr/bin/python3 - "$(cluster_fake_pms_requests)" <<'EOF' || t_fail "no log line reached PMS"
import json, sys
logs = [json.loads(l) for l in open(sys.argv[1])]
logs = [r for r in logs if r["path"].endswith("/progress/log")]
assert logs and logs[0]["method"] == "POST" and logs[0]["query"]["level"] == ["0"], logs
print("log line to PMS: POST .../progress/log level=0 message=%r" % logs[0]["query"]["message"][0][:70])
EOF
t_ok "exit status, signals and log lines behave like the transcoder's"
