#!/bin/bash
# exec_argv.sh — argv reaches the worker's transcoder byte for byte:
# thousands of generated argvs, every byte value 1-255, empty strings,
# invalid UTF-8, 5000 arguments, a 120 KB argument.
. "$(dirname "$0")/exec_lib.sh"
exec_init argv 24720
exec_start
S=$(exec_session argv)
W=$(exec_worker_dir argv)
out=$(python3 "$EXEC_TOP/tests/integration/exec_argv.py" "$SHIM" "$S" "$W" \
	"${EXEC_ARGV_DIRECT:-200}" 1)
exec_log "direct: $out"
export CLUSTERPLEX_POOL=on
exec_pool_start
out=$(python3 "$EXEC_TOP/tests/integration/exec_argv.py" "$SHIM" "$S" "$W" \
	"${EXEC_ARGV_COUNT:-3000}" 2)
exec_log "pool: $out"
exec_log PASS
