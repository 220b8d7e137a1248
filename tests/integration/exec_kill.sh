#!/bin/bash
# exec_kill.sh — PMS stops a transcoder with SIGKILL on the shim; the
# remote transcoder (and the agent) must be gone within a second, and
# stay gone. The shim is killed at random moments: before placement,
# during the SSH handshake or channel open, and mid-run. Direct and pool.
. "$(dirname "$0")/exec_lib.sh"
exec_init kill 24730
exec_start
S=$(exec_session kill)
W=$(exec_worker_dir kill)
ROUNDS=${EXEC_KILL_ROUNDS:-25}
for mode in direct pool; do
	if [ $mode = pool ]; then
		export CLUSTERPLEX_POOL=on
		exec_pool_start
	fi
	out=$(python3 "$EXEC_TOP/tests/integration/exec_kill.py" "$T" "$S" "$W" "$ROUNDS")
	exec_log "$mode: $((ROUNDS * 4)) SIGKILLs; worst time until the worker was clean: $out"
done
exec_log PASS
