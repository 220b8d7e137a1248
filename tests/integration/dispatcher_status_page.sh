#!/bin/sh
# dispatcher_status_page.sh — the status page, rendered by headless Chromium: the
# script fills the tables from the JSON API, and a screenshot is kept to look at
# (build/dispatcher-status.png, or $DISP_SCREENSHOT).
. "$(dirname -- "$0")/dispatcher_lib.sh"

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
	echo "chromium is missing (scripts/deps.sh browser)" >&2
	exit 1
fi
SHOT=${DISP_SCREENSHOT:-$TOP/build/dispatcher-status.png}
mkdir -p "$(dirname "$SHOT")"

start_dispatcher WORKER_SELECTION_STRATEGY=LOAD_RANK || exit 1

# A small cluster with some history.
reg() {
	api POST /api/v1/workers "{\"name\":\"$1\",\"ssh\":{\"host\":\"$2\",\"port\":22,
	    \"user\":\"clusterplex\",\"host_key\":\"$KEY\"},\"cpus\":$3,\"bench\":$4,
	    \"max_tasks\":$5,\"interval_ms\":60000,\"version\":\"0.1.0\",
	    \"transcoder\":\"ffmpeg 5.1.6\",\"caps\":$6,\"labels\":{\"zone\":\"a\"}}" >/dev/null
}
reg worker-alpha 10.77.0.11 8 2400 4 '["vaapi"]'
reg worker-bravo 10.77.0.12 4 1300 2 '[]'
reg worker-charlie 10.77.0.13 16 4100 6 '["vaapi","qsv"]'
n=1
for s in sa sa sb sc sd se; do
	api POST /api/v1/placements "{\"job\":\"plex-job-$n\",\"session\":\"plex-transcode-$s\"}" >/dev/null
	n=$((n + 1))
done
api POST /api/v1/jobs/plex-job-2/end '{"outcome":"ok","exit":0,"duration_ms":93000}' >/dev/null
api POST /api/v1/jobs/plex-job-4/end '{"outcome":"killed","exit":-9,"duration_ms":4100}' >/dev/null
api POST /api/v1/jobs/plex-job-5/end '{"outcome":"worker-error","duration_ms":300}' >/dev/null
for w in worker-alpha worker-bravo worker-charlie; do
	curl -fsS -m 2 "$DISP_URL/api/v1/workers" >"$WORK/body"
	jobs=$(json "','.join('{\"id\":\"%s\"}' % i for w in j['workers'] if w['name']=='$w' for i in w['jobs'])")
	cpu=$(python3 -c "print({'worker-alpha':63.5,'worker-bravo':18,'worker-charlie':91}['$w'])")
	api PUT "/api/v1/workers/$w/heartbeat" "{\"cpu\":$cpu,\"load1\":2.5,\"jobs\":[$jobs]}" >/dev/null
done
api POST /api/v1/workers/worker-bravo/drain '{"drain":true}' >/dev/null

chrome() {
	timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu \
	    --disable-background-networking --disable-component-update \
	    --disable-sync --no-first-run --user-data-dir="$WORK/chrome" \
	    --disable-dev-shm-usage --hide-scrollbars --window-size=1400,860 \
	    --virtual-time-budget=4000 "$@" "$DISP_URL/" 2>>"$WORK/chrome.log"
}
chrome --dump-dom >"$WORK/dom.html"
rm -f "$SHOT"
chrome --screenshot="$SHOT" >/dev/null

check "page script rendered every worker" sh -c "grep -q worker-alpha '$WORK/dom.html' &&
    grep -q worker-bravo '$WORK/dom.html' && grep -q worker-charlie '$WORK/dom.html'"
check "workers show state and load" sh -c "grep -q 's-draining' '$WORK/dom.html' && grep -q '64 %' '$WORK/dom.html'"
check "jobs show where they ran and how it ended" sh -c "grep -q 'plex-job-2' '$WORK/dom.html' &&
    grep -q 'o-worker-error' '$WORK/dom.html' && grep -q '1 min 33 s' '$WORK/dom.html'"
check "live status says connected" sh -c "grep -q 'updated' '$WORK/dom.html'"
check "no external asset referenced" sh -c "! grep -Eq '(src|href)=\"(https?:)?//' '$WORK/dom.html'"
check "screenshot written ($SHOT)" test -s "$SHOT"
check "screenshot is a 1400x860 PNG" python3 -c "
import struct,sys
d=open('$SHOT','rb').read(24)
sys.exit(0 if d[:8]==b'\x89PNG\r\n\x1a\n' and struct.unpack('>II',d[16:24])==(1400,860) else 1)"
finish
