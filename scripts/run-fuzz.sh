#!/bin/sh
# run-fuzz.sh SECONDS TARGET... — runs each libFuzzer target for a bounded
# time from its seed corpus (tests/fuzz/corpus/<name>) and prints the
# number of executions, so docs/RELIABILITY.md can quote real figures.
set -eu
secs=$1
shift
top=$(cd "$(dirname "$0")/.." && pwd)
status=0
for bin in "$@"; do
	name=$(basename "$bin" | sed 's/^fuzz_//')
	seeds="$top/tests/fuzz/corpus/$name"
	work=$(mktemp -d)
	mkdir -p "$seeds"
	cp -r "$seeds/." "$work/" 2>/dev/null || true
	log="$work.log"
	if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 "$work" >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		echo "fuzz $name: ${runs:-?} executions in ${secs}s, no failure"
	else
		echo "fuzz $name: FAILED" >&2
		tail -n 40 "$log" >&2
		status=1
	fi
	rm -rf "$work" "$log"
done
exit $status
