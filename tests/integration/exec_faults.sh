#!/bin/bash
# exec_faults.sh — a worker or link that fails mid-job: the shim exits
# with 245 in bounded time and the worker kills the orphaned transcoder.
#   blocked link:  SIGSTOP on the sshd process that carries the session
#   agent killed:  SIGKILL on clusterplex-agent
#   sshd killed:   SIGKILL on the session's sshd process
# Direct and pool; afterwards the pool serves new jobs again.
. "$(dirname "$0")/exec_lib.sh"
EXEC_AGENT_LINK_TIMEOUT_MS=2000
exec_init faults 24740
exec_start
export CLUSTERPLEX_KEEPALIVE_MS=300 CLUSTERPLEX_LINK_TIMEOUT_MS=1500
S=$(exec_session faults)
W=$(exec_worker_dir faults)

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# The sshd processes serving connections: every sshd below the listener
# (the privsep monitor and the child that carries the channels).
session_sshds() {
	local unvisited=("$SSHD_PID") p
	while [ ${#unvisited[@]} -gt 0 ]; do
		p=${unvisited[0]}
		unvisited=("${unvisited[@]:1}" $(ps -o pid= --ppid "$p"))
		[ "$p" != "$SSHD_PID" ] &&
			[ "$(readlink "/proc/$p/exe" 2>/dev/null)" = /usr/sbin/sshd ] &&
			echo "$p"
	done
	return 0
}

start_job() {
	rm -f "$W/pid"
	(cd "$S" && exec "$SHIM" sleep 60 2>>"$T/shim.err") &
	JOB=$!
	local i
	for i in $(seq 250); do
		[ -s "$W/pid" ] && return 0
		sleep 0.02
	done
	exec_die "the transcoder did not start"
}

# Waits for the shim; checks 245 within $2 ms, then a clean worker.
expect_lost() {
	local t0=$1 bound=$2 label=$3 took clean
	set +e
	{ wait "$JOB"; } 2>/dev/null
	RC=$?
	set -e
	took=$(($(now_ms) - t0))
	exec_expect_rc 245 "$label"
	[ "$took" -le "$bound" ] || exec_die "$label: the shim needed $took ms"
	clean=$(python3 "$EXEC_TOP/tests/integration/exec_clean.py" "$T" 4) ||
		exec_die "$label: $clean"
	exec_log "$label: shim exited 245 after $took ms, worker clean $clean ms later"
}

fault_stop() {
	local victims
	start_job
	victims=$(session_sshds)
	kill -STOP $victims
	expect_lost "$(now_ms)" 2500 "$1: link blocked (sshd stopped)"
	kill -CONT $victims 2>/dev/null || true
}

# The agent itself, not its guard (a forked child running the same file).
agent_pid() {
	local p parent
	for p in $(exec_standins clusterplex-agent); do
		parent=$(ps -o ppid= -p "$p" | tr -d ' ')
		[ "$(readlink "/proc/$parent/exe")" = "$T/bin/clusterplex-agent" ] ||
			echo "$p"
	done
}

fault_agent() {
	start_job
	kill -9 $(agent_pid)
	expect_lost "$(now_ms)" 1000 "$1: agent killed"
}

fault_sshd() {
	start_job
	kill -9 $(session_sshds)
	expect_lost "$(now_ms)" 1000 "$1: sshd killed"
}

for mode in direct pool; do
	if [ $mode = pool ]; then
		export CLUSTERPLEX_POOL=on
		exec_pool_start
	fi
	fault_stop $mode
	fault_agent $mode
	fault_sshd $mode
	exec_run "$S" exit 5
	exec_expect_rc 5 "$mode: a job after the faults"
done
exec_log PASS
