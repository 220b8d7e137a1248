# exec_lib.sh — shared set-up for the exec_*.sh tests: a throwaway
# unprivileged sshd on a loopback port whose forced command is the agent,
# a placement responder where the dispatcher would be, a fake PMS for
# callbacks, and the stand-in transcoder. Everything lives below $T and
# is removed, and every process started here is stopped, by exec_cleanup.
#
#   . tests/integration/exec_lib.sh
#   exec_init NAME PORT_BASE        # ports PORT_BASE..PORT_BASE+2
#   exec_start                      # sshd, dispatcher, PMS; exports the shim's env

set -eu

EXEC_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
EXEC_BUILD=${BUILD:-build}
EXEC_USER=cpx-exec
EXEC_TOKEN=exec-test-token-0123456789
export EXEC_TOKEN
EXEC_PIDS=()
EXEC_MADE_USER=0

exec_log() { printf '%s: %s\n' "$EXEC_NAME" "$*" >&2; }
exec_die() {
	exec_log "FAIL: $*"
	[ -s "${T:-/nonexistent}/shim.err" ] && tail -n 5 "$T/shim.err" >&2
	exit 1
}

# Processes running $T/bin/NAME (default: the stand-in transcoder),
# found by that unique executable path.
exec_standins() {
	local p want="$T/bin/${1:-standin}"
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$want" ] &&
			echo "${p#/proc/}"
	done
	return 0
}

exec_cleanup() {
	local rc=$? pid kids
	set +e
	if [ -n "${EXEC_WATCHDOG:-}" ]; then
		kill $(ps -o pid= --ppid "$EXEC_WATCHDOG") "$EXEC_WATCHDOG" 2>/dev/null
	fi
	[ -n "${T:-}" ] && kill -9 $(exec_standins) 2>/dev/null
	if [ -n "${T:-}" ] && [ -f "$T/run/pool.sock.pid" ]; then
		pid=$(cat "$T/run/pool.sock.pid")
		kill "$pid" 2>/dev/null
		# A pool the shim started is not our child: wait for its exit.
		for kids in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.02
		done
	fi
	for pid in "${EXEC_PIDS[@]}"; do
		kids=$(ps -o pid= --ppid "$pid" 2>/dev/null)
		kill "$pid" $kids 2>/dev/null
	done
	for pid in "${EXEC_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	# Sanitizer builds: the pool's, the shims' and (through the channel's
	# stderr) the agents' reports end up in these logs.
	if [ -n "${T:-}" ] && grep -qs -e "Sanitizer" -e "runtime error:" \
		"$T/shim.err" "$T/pool.log" "$T/run/pool.log"; then
		exec_log "FAIL: sanitizer report:"
		grep -hs -A12 -e "Sanitizer" -e "runtime error:" "$T/shim.err" \
			"$T/pool.log" "$T/run/pool.log" | head -n 40 >&2
		rc=1
	fi
	if [ "$EXEC_MADE_USER" = 1 ]; then
		sleep 0.2
		userdel "$EXEC_USER" 2>/dev/null
	fi
	[ -n "${T:-}" ] && rm -rf "$T"
	exit $rc
}

exec_init() {
	EXEC_NAME=$1
	# Two runners on one machine (CPX_CLUSTER differs) use other ports.
	SSH_PORT=$(($2 + $(printf '%s' "${CPX_CLUSTER:-}" | cksum |
		awk '{ print ($1 % 70) * 100 }')))
	DISP_PORT=$((SSH_PORT + 1))
	PMS_PORT=$((SSH_PORT + 2))
	[ -x "$EXEC_TOP/$EXEC_BUILD/clusterplex-shim" ] ||
		exec_die "build $EXEC_BUILD/clusterplex-shim first"
	T=$(mktemp -d "/tmp/cpx-exec-$EXEC_NAME.XXXXXX")
	chmod 755 "$T"
	trap exec_cleanup EXIT
	trap 'exec_log "interrupted (timeout?)"; exit 130' INT TERM
	# Every test is bounded, whatever hangs. (No stdio: a caller reading
	# our output through a pipe must see its end when we end.)
	(sleep "${EXEC_TIMEOUT:-300}" & wait $!; kill -TERM $$) \
		</dev/null >/dev/null 2>&1 &
	EXEC_WATCHDOG=$!
}

# Waits up to $2 seconds (default 2) until no stand-in runs; fails otherwise.
exec_no_standins() {
	local i left
	for i in $(seq $((${2:-2} * 50))); do
		left=$(exec_standins)
		[ -z "$left" ] && return 0
		sleep 0.02
	done
	exec_die "$1: transcoder processes left: $left"
}

# Runs the shim from a session folder; sets RC. Usage: exec_run SESSION ARGS...
exec_run() {
	local s=$1
	shift
	set +e
	# bash reports a child's death by signal on stderr: not ours to show.
	{ (cd "$s" && timeout -s KILL "${EXEC_RUN_TIMEOUT:-30}" "$SHIM" "$@" \
		2>>"$T/shim.err"); } 2>/dev/null
	RC=$?
	set -e
}

exec_expect_rc() {
	[ "$RC" = "$1" ] || exec_die "$2: exit status $RC, expected $1"
}

exec_user() {
	if ! id "$EXEC_USER" >/dev/null 2>&1; then
		useradd --system --shell /bin/sh --home-dir / --no-create-home \
			"$EXEC_USER"
		EXEC_MADE_USER=1
	fi
	# A locked account ("!") is refused even for key auth.
	usermod -p '*' "$EXEC_USER" 2>/dev/null || true
}

exec_wait_port() {
	local i
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	exec_die "nothing listens on port $1"
}

exec_layout() {
	mkdir -p "$T/bin" "$T/sshd" "$T/worker" "$T/worker-run" "$T/run" \
		"$T/state" "$T/pms/Transcode/Sessions"
	cp "$EXEC_TOP/$EXEC_BUILD/clusterplex-agent" "$EXEC_TOP/$EXEC_BUILD/clusterplex-shim" "$T/bin/"
	cc -O2 -o "$T/bin/standin" "$EXEC_TOP/tests/integration/exec_standin.c"
	ssh-keygen -q -t ed25519 -N '' -f "$T/sshd/host_key" -C worker-host
	ssh-keygen -q -t ed25519 -N '' -f "$T/client_key" -C pms-host
	cat >"$T/agent.env" <<EOT
CLUSTERPLEX_WORKER_NAME=w1
CLUSTERPLEX_TRANSCODE_DIR=$T/worker
CLUSTERPLEX_RUN_DIR=$T/worker-run
TRANSCODER_PATH=$T/bin
TRANSCODER_NAME=standin
CLUSTERPLEX_LINK_TIMEOUT_MS=${EXEC_AGENT_LINK_TIMEOUT_MS:-3000}
CLUSTERPLEX_MAX_TASKS=64
CLUSTERPLEX_LOG_LEVEL=warn
EOT
	echo "restrict,command=\"$T/bin/clusterplex-agent exec --env-file $T/agent.env\" $(cat "$T/client_key.pub")" \
		>"$T/sshd/authorized_keys"
	cat >"$T/sshd/config" <<EOT
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $T/sshd/host_key
PidFile $T/sshd/pid
AuthorizedKeysFile $T/sshd/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxStartups 200
MaxSessions 20
LogLevel ERROR
EOT
	chown -R "$EXEC_USER" "$T/sshd" "$T/worker" "$T/worker-run"
	printf '{"name":"w1","host":"127.0.0.1","port":%d,"user":"%s","host_key":"%s"}\n' \
		"$SSH_PORT" "$EXEC_USER" "$(cat "$T/sshd/host_key.pub")" >"$T/state/worker.json"
	echo ok >"$T/state/mode"
}

exec_sshd_start() {
	setpriv --reuid "$EXEC_USER" --regid "$EXEC_USER" --clear-groups \
		/usr/sbin/sshd -D -e -f "$T/sshd/config" 2>>"$T/sshd.log" &
	EXEC_PIDS+=($!)
	SSHD_PID=$!
	exec_wait_port "$SSH_PORT"
}

exec_sshd_stop() {
	local kids
	kids=$(ps -o pid= --ppid "$SSHD_PID" 2>/dev/null || true)
	kill "$SSHD_PID" $kids 2>/dev/null || true
	wait "$SSHD_PID" 2>/dev/null || true
}

exec_start() {
	exec_user
	exec_layout
	exec_sshd_start
	python3 "$EXEC_TOP/tests/integration/exec_dispatcher.py" "$DISP_PORT" "$T/state" &
	EXEC_PIDS+=($!)
	python3 "$EXEC_TOP/tests/integration/exec_dispatcher.py" "$PMS_PORT" "$T/state" &
	EXEC_PIDS+=($!)
	exec_wait_port "$DISP_PORT"
	exec_wait_port "$PMS_PORT"
	export ORCHESTRATOR_URL="http://127.0.0.1:$DISP_PORT"
	export CLUSTERPLEX_TOKEN="$EXEC_TOKEN"
	export CLUSTERPLEX_SSH_KEY="$T/client_key"
	export CLUSTERPLEX_RUN_DIR="$T/run"
	export CLUSTERPLEX_LOCAL_TRANSCODER="$T/bin/standin"
	export CLUSTERPLEX_LOCAL_JOBS=none
	export CLUSTERPLEX_POOL=off
	export PMS_PORT
	export X_PLEX_TOKEN=plex-token-abcdef
	SHIM="$T/bin/clusterplex-shim"
}

# A fresh PMS session folder; prints its path.
exec_session() {
	local d="$T/pms/Transcode/Sessions/plex-transcode-$1"
	mkdir -p "$d"
	echo "$d"
}

# The worker's side of a session folder.
exec_worker_dir() { echo "$T/worker/Transcode/Sessions/plex-transcode-$1"; }

exec_pool_start() {
	"$SHIM" pool 2>>"$T/pool.log" &
	EXEC_PIDS+=($!)
	POOL_PID=$!
	local i
	for i in $(seq 100); do
		[ -S "$T/run/pool.sock" ] && return 0
		sleep 0.02
	done
	exec_die "the pool did not start"
}
