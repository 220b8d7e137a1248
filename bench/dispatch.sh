#!/bin/bash
# dispatch.sh — how long from PMS exec'ing "Plex Transcoder" to the first
# instruction of the transcoder on a worker, against the same transcoder
# started locally in the same run. The worker is a throwaway sshd on
# loopback (the shared test set-up, tests/integration/exec_lib.sh), the
# dispatcher a small placement responder; the transcoder a C stand-in that
# stamps the clock in a constructor (bench/dispatch_standin.c).
#
#   bench/dispatch.sh [RUNS]        (make bench-dispatch RUNS=...)
#
# Prints p50/p99 per path and the overhead over local: the target is
# p50 < 20 ms and p99 < 50 ms through the pool.
. "$(dirname "$0")/../tests/integration/exec_lib.sh"
RUNS=${1:-${RUNS:-300}}
EXEC_TIMEOUT=$((RUNS * 2 + 300))
exec_init bench 24790
exec_start
cc -O2 -static -o "$T/bin/dispatch-standin" "$EXEC_TOP/bench/dispatch_standin.c" 2>/dev/null ||
	cc -O2 -o "$T/bin/dispatch-standin" "$EXEC_TOP/bench/dispatch_standin.c"
cc -O2 -o "$T/bin/dispatch-run" "$EXEC_TOP/bench/dispatch_run.c"
sed -i 's/^TRANSCODER_NAME=.*/TRANSCODER_NAME=dispatch-standin/' "$T/agent.env"
export TRANSCODE_OPERATING_MODE=remote
S=$(exec_session bench)
W=$(exec_worker_dir bench)
mkdir -p "$W"
chown "$EXEC_USER" "$W"

# pct FILE P: the P-th percentile (nearest rank) of sorted microseconds, in ms.
pct() {
	local n
	n=$(wc -l <"$1")
	awk -v n="$n" -v p="$2" 'NR == int((n * p + 99) / 100) { printf "%.2f", $1 / 1000 }' "$1"
}

measure() {
	local name=$1 runs=$2 stamp=$3
	shift 3
	"$T/bin/dispatch-run" "$runs" "$S" "$stamp" "$@" >"$T/$name.us" ||
		exec_die "$name: a run failed: $(tail -n 3 "$T/shim.err" 2>/dev/null)"
}

# Warm-up: caches, the pool's first session.
export CLUSTERPLEX_POOL=on
exec_pool_start
measure warm 20 "$W/dispatch.ts" "$SHIM" -i x 2>>"$T/shim.err"

measure local "$RUNS" "$S/dispatch.ts" "$T/bin/dispatch-standin"
measure pool "$RUNS" "$W/dispatch.ts" "$SHIM" -i x 2>>"$T/shim.err"
TRANSCODE_OPERATING_MODE=local CLUSTERPLEX_LOCAL_TRANSCODER=$T/bin/dispatch-standin \
	measure shimlocal "$RUNS" "$S/dispatch.ts" "$SHIM" -i x
DIRECT=$((RUNS / 5 > 20 ? RUNS / 5 : 20))
CLUSTERPLEX_POOL=off measure direct "$DIRECT" "$W/dispatch.ts" "$SHIM" -i x 2>>"$T/shim.err"

lp50=$(pct "$T/local.us" 50)
printf '\nexec -> first transcoder instruction (%s runs; direct %s), ms\n' "$RUNS" "$DIRECT"
printf '%-34s %8s %8s %10s %10s %10s\n' path p50 p99 "p50 over" "p99 over" "p50 ratio"
for name in local shimlocal pool direct; do
	p50=$(pct "$T/$name.us" 50)
	p99=$(pct "$T/$name.us" 99)
	case $name in
	local) label="transcoder started locally" ;;
	shimlocal) label="shim, local mode (execs it)" ;;
	pool) label="shim -> pool -> worker" ;;
	direct) label="shim -> fresh SSH -> worker" ;;
	esac
	printf '%-34s %8s %8s %10s %10s %9sx\n' "$label" "$p50" "$p99" \
		"$(awk -v a="$p50" -v b="$lp50" 'BEGIN { printf "+%.2f", a - b }')" \
		"$(awk -v a="$p99" -v b="$lp50" 'BEGIN { printf "+%.2f", a - b }')" \
		"$(awk -v a="$p50" -v b="$lp50" 'BEGIN { printf "%.1f", a / b }')"
done
ok=$(awk -v p50="$(pct "$T/pool.us" 50)" -v p99="$(pct "$T/pool.us" 99)" -v l="$lp50" \
	'BEGIN { print (p50 - l < 20 && p99 - l < 50) ? "met" : "MISSED" }')
printf '\npool target (overhead p50 < 20 ms, p99 < 50 ms): %s\n' "$ok"
