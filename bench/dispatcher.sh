#!/bin/sh
# dispatcher.sh — placement throughput and latency of clusterplex-dispatcher with
# 1,000 registered workers, beside a baseline (/health) measured in the same run.
#
#   bench/dispatcher.sh            (make bench-dispatcher)
#
# The dispatcher runs pinned to CPU 0, wrk (Debian's, with a Lua script) to
# CPU 1, both on loopback. Figures: placements/s over keep-alive connections,
# p50/p99 latency at full load and at ~1,000 placements/s, RSS with 1,000
# workers and 10,000 jobs, and peak RSS after the run. Results also go to
# build/bench-dispatcher.txt.
set -eu
TOP=$(cd "$(dirname -- "$0")/.." && pwd)
BIN=${DISP_BIN:-$TOP/build/clusterplex-dispatcher}
PORT=${BENCH_PORT:-13564}
SECS=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNECTIONS:-32}
OUT=$TOP/build/bench-dispatcher.txt
export BENCH_TOKEN=bench-token-dispatcher-7c1e
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }
ncpu=$(nproc)
pin_disp="" pin_load=""
if command -v taskset >/dev/null && [ "$ncpu" -ge 2 ]; then
	pin_disp="taskset -c 0" pin_load="taskset -c 1"
fi

work=$(mktemp -d /tmp/cpx-dispatcher-bench.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

CLUSTERPLEX_TOKEN=$BENCH_TOKEN LISTENING_PORT=$PORT CLUSTERPLEX_LISTEN_ADDRESS=127.0.0.1 \
    CLUSTERPLEX_MAX_JOBS=5000000 CLUSTERPLEX_LOG_LEVEL=warn \
    $pin_disp "$BIN" >"$work/dispatcher.log" 2>&1 &
pid=$!
i=0
until curl -fsS -m 1 "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 50 ] || { cat "$work/dispatcher.log"; exit 1; }
	sleep 0.1
done

rss_kb() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" /proc/$pid/status; }
python3 "$TOP/bench/dispatcher_setup.py" "$PORT" "$BENCH_TOKEN" 1000 10000
rss_1k=$(rss_kb VmRSS)

run() { # NAME [VAR=value...] -> RESULT line in $work/NAME
	name=$1; shift
	env BENCH_PREFIX="$name" "$@" $pin_load wrk -t1 -c"${C:-$CONNS}" -d"${SECS}s" \
	    -s "$TOP/bench/dispatcher_place.lua" "http://127.0.0.1:$PORT" >"$work/$name" 2>&1
	grep '^RESULT' "$work/$name" || { cat "$work/$name"; exit 1; }
}
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
field() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" "$work/$1"; }

run health BENCH_PATH=/health
run place
C=5 run paced BENCH_DELAY_MS=5
rss_peak=$(rss_kb VmHWM)
jobs=$(curl -fsS -m 5 "http://127.0.0.1:$PORT/health" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"])')

{
	echo "clusterplex-dispatcher benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(uname -m), $ncpu CPUs"
	echo "1000 workers (LOAD_RANK), wrk -t1 -c$CONNS -d${SECS}s, dispatcher ${pin_disp:-unpinned}"
	printf '%-34s %12s %10s %10s\n' "run" "req/s" "p50 ms" "p99 ms"
	for r in health place paced; do
		label=$(case $r in health) echo "baseline GET /health";;
		    place) echo "placements (full load)";;
		    paced) echo "placements (paced, 5 conns)";; esac)
		printf '%-34s %12s %10s %10s\n' "$label" "$(field $r rps)" \
		    "$(div "$(field $r p50_us)" 1000)" "$(div "$(field $r p99_us)" 1000)"
	done
	echo "non-2xx answers: place $(field place non2xx), paced $(field paced non2xx)"
	echo "placements/s vs baseline: $(div "$(field place rps)" "$(field health rps)")" \
	    "  p99 vs baseline: $(div "$(field place p99_us)" "$(field health p99_us)")"
	echo "RSS with 1000 workers + 10000 jobs: $((rss_1k / 1024)) MB ($rss_1k kB)"
	echo "peak RSS after the run ($jobs jobs tracked): $((rss_peak / 1024)) MB"
	echo "targets: >= 20000 placements/s, p99 < 2 ms at ~1000/s, RSS < 20 MB"
} | tee "$OUT"
