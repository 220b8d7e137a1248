#!/bin/bash
# run.sh [TEST...] — the integration tests: every tests/integration/*.sh
# but this one, the libraries (lib.sh, *_lib.sh) and the container tests
# (their own step: make containers), or the ones named,
# each run by the interpreter its first line names, one at a time,
# each under a cluster name of its own (CPX_TEST_PREFIX + index), within
# CPX_TEST_TIMEOUT seconds (default 600), output in build/integration/.
# A test that leaves any part of its cluster behind fails, and the runner
# cleans up after it. Ends with "N passed, N failed"; exit 1 on a failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
timeout=${CPX_TEST_TIMEOUT:-600}
prefix=${CPX_TEST_PREFIX:-it}
logs=$repo/build/integration
mkdir -p "$logs"

if [ $# -gt 0 ]; then
	tests=("$@")
else
	tests=()
	for t in "$here"/*.sh; do
		case ${t##*/} in
		# The container test has a make step of its own (make containers).
		run.sh | lib.sh | *_lib.sh | containers_*) ;;
		*) tests+=("$t") ;;
		esac
	done
fi

# Anything of cluster $1 (or the second one a test may make, $1x) left?
cleanup_after() {
	local c left=0
	for c in "$1" "${1}x"; do
		if ! CPX_CLUSTER=$c "$repo/tests/cluster/cluster.sh" leftovers >/dev/null 2>&1; then
			echo "   left cluster $c behind: cleaning"
			CPX_CLUSTER=$c "$repo/tests/cluster/cluster.sh" down 2>&1 | sed 's/^/   /'
			left=1
		fi
	done
	return $left
}

pass=0 fail=0 i=0
for t in "${tests[@]}"; do
	i=$((i + 1))
	name=$(basename "$t" .sh)
	log=$logs/$name.log
	t0=$SECONDS
	shell=bash
	[ "$(head -n 1 "$t")" != "#!/bin/sh" ] || shell=sh
	CPX_CLUSTER=$prefix$i timeout -k 15 "$timeout" "$shell" "$t" </dev/null >"$log" 2>&1
	rc=$?
	cleanup_after "$prefix$i" || rc=${rc/#0/99}
	secs=$((SECONDS - t0))
	if [ "$rc" = 0 ]; then
		pass=$((pass + 1))
		echo "PASS $name (${secs} s)"
	else
		fail=$((fail + 1))
		case $rc in
		124 | 137) why="timed out after $timeout s" ;;
		99) why="passed but left its cluster behind" ;;
		*) why="exit $rc" ;;
		esac
		echo "FAIL $name (${secs} s, $why); last lines of $log:"
		tail -n 25 "$log" | sed 's/^/   | /'
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
