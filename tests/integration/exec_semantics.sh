#!/bin/bash
# exec_semantics.sh — a remote job behaves like a local transcoder: exit
# codes 0-255, death by signal, stdin relay, stdout/stderr streaming,
# input files, and PMS's signals reaching the transcoder. Through the
# pool and over a direct connection.
. "$(dirname "$0")/exec_lib.sh"
exec_init semantics 24710
exec_start

S=$(exec_session sem)
W=$(exec_worker_dir sem)

check_codes() {
	local code
	for code in $(seq 0 255); do
		exec_run "$S" exit "$code"
		exec_expect_rc "$code" "exit $code ($1)"
	done
	exec_log "$1: exit codes 0-255 pass through"
}

check_signals() {
	local sig
	for sig in 1 2 3 4 6 8 9 10 11 12 13 14 15; do
		exec_run "$S" signal "$sig"
		exec_expect_rc $((128 + sig)) "signal $sig ($1)"
	done
	exec_log "$1: death by signal is re-raised"
}

check_stdin() {
	local got
	head -c 3000000 /dev/urandom >"$T/in.bin"
	set +e
	(cd "$S" && timeout 30 "$SHIM" cat <"$T/in.bin" >"$T/out.bin")
	RC=$?
	set -e
	exec_expect_rc 0 "cat ($1)"
	cmp -s "$T/in.bin" "$T/out.bin" || exec_die "$1: stdin relay altered 3 MB"
	got=$(cd "$S" && printf 'q' | "$SHIM" cat)
	[ "$got" = q ] || exec_die "$1: a single 'q' did not arrive"
	got=$(cd "$S" && "$SHIM" cat </dev/null | wc -c)
	[ "$got" = 0 ] || exec_die "$1: /dev/null stdin"
	exec_log "$1: stdin relayed byte-exact (3 MB, 'q', /dev/null)"
}

check_output() {
	local out err
	(cd "$S" && "$SHIM" out 5000000 >"$T/o" 2>"$T/e") || exec_die "$1: out"
	out=$(md5sum <"$T/o")
	err=$(md5sum <"$T/e")
	[ "$(stat -c %s "$T/o")" = 5000000 ] || exec_die "$1: stdout size"
	[ "$(stat -c %s "$T/e")" = 5000000 ] || exec_die "$1: stderr size"
	[ "$out" = "$err" ] || exec_die "$1: stdout and stderr differ"
	# Streaming: the first line arrives while the transcoder still runs.
	(cd "$S" && "$SHIM" tick 30 >"$T/ticks") &
	local pid=$! i
	for i in $(seq 100); do
		[ -s "$T/ticks" ] && break
		sleep 0.02
	done
	[ -s "$T/ticks" ] || exec_die "$1: no output within 2 s of start"
	kill -0 "$pid" 2>/dev/null || exec_die "$1: output only at exit"
	wait "$pid"
	[ "$(wc -l <"$T/ticks")" = 30 ] || exec_die "$1: ticks lost"
	exec_log "$1: stdout/stderr stream separately (5 MB each)"
}

check_inputs() {
	printf '1\n00:00:01,000 --> 00:00:02,000\nhello\n' >"$S/temp-0.srt"
	local got
	got=$(cd "$S" && "$SHIM" show temp-0.srt)
	[ "$got" = "$(cat "$S/temp-0.srt")" ] || exec_die "$1: input file"
	rm -f "$S/temp-0.srt"
	exec_log "$1: files PMS put in the session folder reach the worker"
}

check_forwarded_signal() {
	local sig=$2 pid i
	(cd "$S" && exec "$SHIM" sleep 30 2>>"$T/shim.err") &
	pid=$!
	for i in $(seq 200); do
		[ -n "$(exec_standins)" ] && [ -s "$W/pid" ] && break
		sleep 0.02
	done
	[ -s "$W/pid" ] || exec_die "$1: the transcoder did not start"
	kill -"$sig" "$pid"
	set +e
	{ wait "$pid"; } 2>/dev/null
	RC=$?
	set -e
	rm -f "$W/pid"
	exec_expect_rc $((128 + $(kill -l "$sig"))) "forwarded $sig ($1)"
	exec_no_standins "forwarded $sig ($1)"
}

for mode in direct pool; do
	if [ $mode = pool ]; then
		export CLUSTERPLEX_POOL=on
		exec_pool_start
	fi
	check_codes $mode
	check_signals $mode
	check_stdin $mode
	check_output $mode
	check_inputs $mode
	for sig in TERM INT HUP QUIT; do
		check_forwarded_signal $mode $sig
	done
	exec_log "$mode: SIGTERM/INT/HUP/QUIT reach the transcoder"
done
exec_log PASS
