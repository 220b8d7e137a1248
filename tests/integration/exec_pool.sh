#!/bin/bash
# exec_pool.sh — the pool: started on demand by a shim (CLUSTERPLEX_POOL=
# auto), one at a time per socket, private socket, many concurrent jobs
# spread over several sessions (sshd's MaxSessions), idle sessions
# closed, a restarted sshd, and the pool killed mid-job (245, worker clean).
. "$(dirname "$0")/exec_lib.sh"
exec_init pool 24770
exec_start
S=$(exec_session pool)
W=$(exec_worker_dir pool)

# On demand: the first job goes direct and leaves a pool behind.
export CLUSTERPLEX_POOL=auto
exec_run "$S" exit 3
exec_expect_rc 3 "auto: first job"
for i in $(seq 100); do [ -S "$T/run/pool.sock" ] && break; sleep 0.02; done
[ -S "$T/run/pool.sock" ] || exec_die "auto: no pool was started"
[ "$(stat -c %a "$T/run/pool.sock")" = 600 ] || exec_die "pool socket is not private"
exec_run "$S" exit 4
exec_expect_rc 4 "auto: second job"
grep -q "session to w1" "$T/run/pool.log" || exec_die "auto: the second job did not use the pool"
set +e
"$SHIM" pool 2>"$T/second.err"
RC=$?
set -e
exec_expect_rc 1 "a second pool"
grep -q "already serves" "$T/second.err" || exec_die "second pool: $(cat "$T/second.err")"
kill "$(cat "$T/run/pool.sock.pid")"
for i in $(seq 100); do [ -S "$T/run/pool.sock" ] || break; sleep 0.02; done
[ -S "$T/run/pool.sock" ] && exec_die "the pool did not stop on SIGTERM"
exec_log "auto: a shim started the pool; private socket; one pool per socket"

# Concurrency: 40 jobs at once, 8 channels per session. The Python
# stand-in dispatcher is slow with 40 requests on two cores: allow it.
export CLUSTERPLEX_POOL=on CLUSTERPLEX_POOL_IDLE_MS=1500
export TRANSCODE_OPERATING_MODE=remote CLUSTERPLEX_DISPATCH_TIMEOUT_MS=10000
exec_pool_start
pids=()
for i in $(seq 40); do
	(cd "$S" && exec "$SHIM" exit "$i" 2>>"$T/shim.err") &
	pids+=($!)
done
i=0
for p in "${pids[@]}"; do
	i=$((i + 1))
	set +e
	wait "$p"
	RC=$?
	set -e
	exec_expect_rc "$i" "concurrent job $i"
done
# Forty that overlap need at least five sessions of eight channels.
pids=()
for i in $(seq 40); do
	(cd "$S" && exec "$SHIM" sleep 2 2>>"$T/shim.err") &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || exec_die "an overlapping job failed"
done
n=$(grep -c "session to w1" "$T/pool.log")
[ "$n" -ge 5 ] || exec_die "40 overlapping jobs used $n sessions"
exec_log "40 concurrent jobs, exit codes intact; 40 overlapping ones over $n sessions"
unset TRANSCODE_OPERATING_MODE CLUSTERPLEX_DISPATCH_TIMEOUT_MS

# Idle sessions are closed, and the next job gets a fresh one.
sleep 3
grep -q "closing the idle session" "$T/pool.log" || exec_die "no idle session was closed"
exec_run "$S" exit 9
exec_expect_rc 9 "after idle expiry"

# A restarted sshd: the warm session is gone; the next job reconnects.
exec_run "$S" exit 0
exec_sshd_stop
exec_sshd_start
exec_run "$S" exit 11
exec_expect_rc 11 "after an sshd restart"
exec_log "idle sessions closed; sshd restart survived"

# The pool dies mid-job: the shim reports a lost job, the worker is clean.
rm -f "$W/pid"
(cd "$S" && exec "$SHIM" sleep 60 2>>"$T/shim.err") &
job=$!
for i in $(seq 250); do [ -s "$W/pid" ] && break; sleep 0.02; done
kill -9 "$POOL_PID"
set +e
{ wait "$job"; } 2>/dev/null
RC=$?
set -e
exec_expect_rc 245 "pool killed mid-job"
clean=$(python3 "$EXEC_TOP/tests/integration/exec_clean.py" "$T" 2) || exec_die "$clean"
exec_log "pool killed mid-job: 245, worker clean after $clean ms"
exec_log PASS
