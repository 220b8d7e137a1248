#!/bin/sh
# make-movie.sh OUT [SECONDS] — the test movie: lavfi testsrc2 + sine, H.264
# and AAC in Matroska (the shape most Plex libraries hold), keyframes every
# 2 s so DASH and HLS can cut 5 s and 8 s segments. Reused while OUT exists
# with the same length, so tests and the demo pay for it once.
set -eu

usage() {
	echo "usage: make-movie.sh OUT [SECONDS]   (SECONDS: 1-600, default 20)" >&2
	exit 2
}

[ $# -ge 1 ] && [ $# -le 2 ] || usage
out=$1
secs=${2:-20}
case $secs in
'' | *[!0-9]*) usage ;;
esac
[ "$secs" -ge 1 ] && [ "$secs" -le 600 ] || usage

# The stamp records how the cached file was made; another length remakes it.
stamp="$out.made"
want="testsrc2 640x360@24 h264 + sine aac, $secs s, v1"
if [ -s "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	exit 0
fi

command -v ffmpeg >/dev/null || {
	echo "make-movie.sh: ffmpeg is not installed (scripts/deps.sh cluster)" >&2
	exit 1
}
mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$.mkv"
trap 'rm -f "$tmp"' EXIT INT TERM
ffmpeg -nostdin -hide_banner -loglevel error -y \
	-f lavfi -i "testsrc2=size=640x360:rate=24:duration=$secs" \
	-f lavfi -i "sine=frequency=440:beep_factor=4:sample_rate=48000:duration=$secs" \
	-map 0:v -map 1:a -ac 2 \
	-c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p \
	-g 48 -keyint_min 48 -sc_threshold 0 -b:v 800k \
	-c:a aac -b:a 128k \
	-metadata title="ClusterPlex test movie" \
	-metadata:s:v:0 language=eng -metadata:s:a:0 language=eng \
	"$tmp"
mv -f "$tmp" "$out"
trap - EXIT INT TERM
echo "$want" >"$stamp"
