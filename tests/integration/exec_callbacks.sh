#!/bin/bash
# exec_callbacks.sh — progress callbacks reach PMS from 127.0.0.1 through
# the job's link (the transcoder's URL points at the agent's loopback
# listener), with PMS's token, concurrently; a PMS that is down yields the
# transcoder's own error, not a hang; rewrite mode points URLs at PMS_IP.
. "$(dirname "$0")/exec_lib.sh"
exec_init callbacks 24760
exec_start
export CLUSTERPLEX_LOG_LEVEL=debug
S=$(exec_session cb)
W=$(exec_worker_dir cb)
URL="http://127.0.0.1:$PMS_PORT/video/:/transcode/session/s1/j1/progress?progress=8.7&size=-22"

for mode in direct pool; do
	if [ $mode = pool ]; then
		export CLUSTERPLEX_POOL=on
		exec_pool_start
	fi
	rm -f "$T/state/callbacks.log"
	exec_run "$S" callback "$URL"
	exec_expect_rc 0 "$mode: callback"
	python3 - "$T/state/callbacks.log" "$URL" <<'PY' || exec_die "$mode: what PMS saw"
import json, sys
c = [json.loads(l) for l in open(sys.argv[1])]
assert len(c) == 1, c
assert c[0]["peer"] == "127.0.0.1", c
assert c[0]["token"] == "plex-token-abcdef", c
assert "http://127.0.0.1:" + sys.argv[2].split(":", 2)[2].split("/", 1)[0] + "/" + c[0]["path"].lstrip("/") == sys.argv[2], c
PY
	# The transcoder itself was given the agent's port, not PMS's.
	exec_run "$S" argv "$URL"
	tr '\0' '\n' <"$W/argv.bin" | grep -q "^http://127.0.0.1:[0-9]*/video/:/transcode/session/s1/j1/progress" ||
		exec_die "$mode: no callback URL in argv"
	tr '\0' '\n' <"$W/argv.bin" | grep -q ":$PMS_PORT/" &&
		exec_die "$mode: the transcoder was given PMS's own port"
	# Twenty jobs calling back at once.
	rm -f "$T/state/callbacks.log"
	pids=()
	for i in $(seq 20); do
		(cd "$S" && "$SHIM" callback "$URL&n=$i" >/dev/null 2>>"$T/shim.err") &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || exec_die "$mode: a concurrent callback failed"; done
	[ "$(wc -l <"$T/state/callbacks.log")" = 20 ] || exec_die "$mode: callbacks lost"
	# PMS down: the transcoder's connection fails like it would locally.
	PMS_PORT=1 exec_run "$S" callback "http://127.0.0.1:1/video/:/x"
	[ "$RC" = 6 ] || [ "$RC" = 7 ] || exec_die "$mode: PMS down gave exit $RC"
	exec_log "$mode: callbacks tunnelled from 127.0.0.1 with the token, 20 at once, PMS down handled"
done

# ClusterPlex's compatible way: URLs rewritten to PMS_IP.
CLUSTERPLEX_CALLBACKS=rewrite PMS_IP=10.9.8.7 exec_run "$S" argv "$URL"
tr '\0' '\n' <"$W/argv.bin" | grep -qx "http://10.9.8.7:$PMS_PORT/video/:/transcode/session/s1/j1/progress?progress=8.7&size=-22" ||
	exec_die "rewrite mode: $(tr '\0' ' ' <"$W/argv.bin")"
exec_log "rewrite mode: callback URLs point at PMS_IP"

# Tokens never reach a log line, even at debug level.
! grep -q -e plex-token-abcdef -e "$EXEC_TOKEN" "$T/shim.err" "$T/pool.log" ||
	exec_die "a token appears in a log"
exec_log PASS
