# services.sh — part of cluster.sh: provisioning (keys, sshd, env files) and
# the services of the test cluster, each in its host's namespaces, logging
# to $CPX_STATE/logs/HOST-NAME.log, tracked by $CPX_STATE/pids/HOST-NAME.pid
# (the pid of a small sh that waits for the service and writes its exit
# status to HOST-NAME.status).

CPX_DISPATCHER_PORT=3500
CPX_AGENT_PORT=3501
CPX_PMS_PORT=32400
CPX_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# --- provisioning -------------------------------------------------------------

cluster__sshd_config() {
	cat <<EOF
# sshd of worker $1 in test cluster $CPX_CLUSTER (tests/cluster/services.sh)
ListenAddress $(cluster_host_ip "$1"):22
HostKey /etc/clusterplex/ssh/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile /etc/clusterplex/ssh/authorized_keys
AllowUsers $CPX_WORKER_USER
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
PermitRootLogin no
PermitEmptyPasswords no
UsePAM no
StrictModes yes
DisableForwarding yes
AllowTcpForwarding no
AllowStreamLocalForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTunnel no
PermitTTY no
PermitUserRC no
PermitUserEnvironment no
# A cut link ends the session within ~6 s even when no data flows.
ClientAliveInterval 2
ClientAliveCountMax 3
TCPKeepAlive yes
UseDNS no
# One warm connection from the pool carries many channels.
MaxSessions 64
MaxStartups 64:30:128
LoginGraceTime 10
PrintMotd no
PrintLastLog no
LogLevel VERBOSE
EOF
}

cluster__agent_env() {
	cat <<EOF
# clusterplex-agent on worker $1 of test cluster $CPX_CLUSTER
CLUSTERPLEX_WORKER_NAME=$1
CLUSTERPLEX_TRANSCODE_DIR=/transcode
CLUSTERPLEX_RUN_DIR=/run/clusterplex
TRANSCODER_PATH=/etc/clusterplex/transcoder/
TRANSCODER_NAME=Plex Transcoder
ORCHESTRATOR_URL=http://$(cluster_pms_ip):$CPX_DISPATCHER_PORT
CLUSTERPLEX_TOKEN=$CPX_TOKEN
CLUSTERPLEX_SSH_ADDRESS=$(cluster_host_ip "$1"):22
CLUSTERPLEX_SSH_USER=$CPX_WORKER_USER
CLUSTERPLEX_HOST_KEY_FILE=/etc/clusterplex/ssh/ssh_host_ed25519_key.pub
LISTENING_PORT=$CPX_AGENT_PORT
STAT_CPU_INTERVAL=1000
CLUSTERPLEX_LOG_LEVEL=$CPX_LOG_LEVEL
EOF
}

# What PMS's environment holds on a ClusterPlex PMS host: read by the shim
# (PMS starts it with its own environment), the pool and fuse.
cluster__pms_env() {
	cat <<EOF
# ClusterPlex settings in PMS's environment, test cluster $CPX_CLUSTER
ORCHESTRATOR_URL=http://127.0.0.1:$CPX_DISPATCHER_PORT
CLUSTERPLEX_TOKEN=$CPX_TOKEN
TRANSCODE_OPERATING_MODE=remote
PMS_PORT=$CPX_PMS_PORT
CLUSTERPLEX_TRANSCODE_DIR=/transcode
CLUSTERPLEX_RUN_DIR=/run/clusterplex
CLUSTERPLEX_SSH_KEY=/etc/clusterplex/ssh/id_ed25519
CLUSTERPLEX_KNOWN_HOSTS=/etc/clusterplex/ssh/known_hosts
CLUSTERPLEX_LOCAL_TRANSCODER=/etc/clusterplex/transcoder/Plex Transcoder
CLUSTERPLEX_LOG_LEVEL=$CPX_LOG_LEVEL
EOF
}

# The real transcoder's name, space included, pointing at the stand-in:
# workers run it, the PMS host runs it for jobs that stay local.
cluster__transcoder_link() {
	mkdir -p "$1/transcoder" &&
		ln -sfn "$CPX_SRC/tests/standin/plex-transcoder" \
			"$1/transcoder/Plex Transcoder"
}

cluster__dispatcher_env() {
	cat <<EOF
LISTENING_PORT=$CPX_DISPATCHER_PORT
CLUSTERPLEX_TOKEN=$CPX_TOKEN
CLUSTERPLEX_LOG_LEVEL=$CPX_LOG_LEVEL
EOF
}

cluster__provision_worker() {
	local h=$1 pub=$2 d="$CPX_STATE/hosts/$1" u=$CPX_WORKER_USER
	ssh-keygen -q -t ed25519 -N '' -C "$h@$CPX_CLUSTER" \
		-f "$d/etc/ssh/ssh_host_ed25519_key" || return
	echo "$(cluster_host_ip "$h") $(cut -d' ' -f1,2 "$d/etc/ssh/ssh_host_ed25519_key.pub")" \
		>>"$CPX_STATE/hosts/pms/etc/ssh/known_hosts"
	cluster__sshd_config "$h" >"$d/etc/ssh/sshd_config"
	printf 'restrict,command="%s exec --env-file /etc/clusterplex/agent.env" %s\n' \
		"$CPX_SRC/$CPX_BUILD/clusterplex-agent" "$pub" >"$d/etc/ssh/authorized_keys"
	cluster__agent_env "$h" >"$d/etc/agent.env"
	chgrp "$u" "$d/etc/agent.env" && chmod 640 "$d/etc/agent.env" || return
	cluster__transcoder_link "$d/etc" && chown "$u:$u" "$d/transcode" "$d/run"
}

cluster__provision() {
	local d="$CPX_STATE/hosts/pms/etc" h pub
	ssh-keygen -q -t ed25519 -N '' -C "pms@$CPX_CLUSTER" -f "$d/ssh/id_ed25519" ||
		return
	pub=$(cat "$d/ssh/id_ed25519.pub")
	: >"$d/ssh/known_hosts"
	cluster__pms_env >"$d/pms.env"
	cluster__dispatcher_env >"$d/dispatcher.env"
	chmod 600 "$d/pms.env" "$d/dispatcher.env"
	cluster__transcoder_link "$d" || return
	for h in $(cluster_hosts); do
		[ "$h" = pms ] || cluster__provision_worker "$h" "$pub" || return
	done
}

cluster__start_sshd() {
	local h=$1
	cluster_on "$h" /usr/sbin/sshd -t -f /etc/clusterplex/ssh/sshd_config ||
		{ cluster__err "sshd config of $h refused"; return; }
	cluster_spawn "$h" sshd -- /usr/sbin/sshd -D -e \
		-f /etc/clusterplex/ssh/sshd_config || return
	cluster_wait_tcp pms "$(cluster_host_ip "$h")" 22 10
}

# --- processes ------------------------------------------------------------------

# cluster_spawn HOST NAME [--user U] [--env-file HOSTPATH] [--set N=V]... -- CMD...
# Starts CMD in HOST's namespaces with a clean environment (PATH, LANG,
# HOME, then the env file's NAME=value lines, then --set), in a session and
# process group of its own, stdin from /dev/null, output to its log.
cluster_spawn() {
	local -
	set +e +o pipefail	# whatever the caller set
	local h=$1 name=$2 user="" envf=""
	local -a sets=() envv
	shift 2
	while [ $# -gt 0 ]; do
		case $1 in
		--user) user=$2; shift 2 ;;
		--env-file) envf=$2; shift 2 ;;
		--set) sets+=("$2"); shift 2 ;;
		--) shift; break ;;
		*) cluster__err "cluster_spawn: unknown option $1"; return ;;
		esac
	done
	local pidf="$CPX_STATE/pids/$h-$name.pid" log
	log=$(cluster_log "$h" "$name")
	if cluster_svc_alive "$h" "$name"; then
		cluster__err "$name already runs on $h"
		return
	fi
	envv=(env -i "PATH=$CPX_PATH" LANG=C.UTF-8 HOME=/root)
	if [ -n "$user" ]; then
		envv+=("HOME=$(getent passwd "$user" | cut -d: -f6)" "USER=$user" "LOGNAME=$user")
	fi
	# The env file's lines are exported by a shell reading them from fd 5,
	# never put on a command line: they hold tokens, and ps shows argv.
	if [ -n "$envf" ]; then
		# shellcheck disable=SC2016
		envv+=(/bin/sh -c 'while IFS= read -r l || [ -n "$l" ]; do
			case $l in "" | "#"*) ;; *) export "$l" ;; esac
			done <&5; exec 5<&-; exec "$@"' envfile)
	fi
	[ ${#sets[@]} = 0 ] || envv+=(env "${sets[@]}")
	[ -z "$user" ] || envv+=(setpriv --reuid="$user" --regid="$user" --init-groups --)
	rm -f "$pidf" "$pidf.tmp" "${pidf%.pid}.status"
	echo "=== $(date '+%F %T') $h: $*" >>"$log"
	# The outer ( ... & ) orphans the service at once: no job of the
	# caller's shell, no zombie, no "Killed" message from bash.
	("${CPX_IN_CPU_GROUP[@]}" "$(cluster__cpu_group "$h")" \
		nsenter --net="/run/netns/$CPX_CLUSTER-$h" --mount="$CPX_STATE/ns/$h" --wd=/ -- \
		setsid /bin/sh -c 'echo $$ >&3; exec 3>&-; "$@" 4>&-; echo $? >&4' \
		sh "${envv[@]}" "$@" 3>"$pidf.tmp" 4>"${pidf%.pid}.status" \
		5<"${envf:-/dev/null}" </dev/null >>"$log" 2>&1 &)
	local end=$((SECONDS + 5))
	while [ ! -s "$pidf.tmp" ]; do
		[ $SECONDS -lt $end ] || { cluster__err "$name on $h did not start"; return; }
		sleep 0.05
	done
	mv "$pidf.tmp" "$pidf"
}

# The pid of the sh that leads the service's session and process group.
cluster__svc_leader() {
	local -
	set +e +o pipefail	# whatever the caller set
	local pid f="$CPX_STATE/pids/$1-$2.pid"
	[ -s "$f" ] || return 1
	read -r pid <"$f"
	[ -e "/proc/$pid" ] || return 1
	# A pid of ours is in the host's netns; anything else is a reused pid.
	[ "$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null)" = \
		"$(stat -L -c %i "/run/netns/$CPX_CLUSTER-$1" 2>/dev/null)" ] || return 1
	[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
	echo "$pid"
}

# cluster_svc_pid HOST NAME: the service's own pid (the leader's child).
cluster_svc_pid() {
	local -
	set +e +o pipefail	# whatever the caller set
	local leader kids
	leader=$(cluster__svc_leader "$1" "$2") || return 1
	kids=$(cat "/proc/$leader/task/$leader/children" 2>/dev/null)
	[ -n "$kids" ] || return 1
	echo "${kids%% *}"
}

cluster_svc_alive() { cluster_svc_pid "$1" "$2" >/dev/null; }

# "running (pid N)", "exited N" or "killed".
cluster_svc_state() {
	local -
	set +e +o pipefail	# whatever the caller set
	local pid st="$CPX_STATE/pids/$1-$2.status"
	if pid=$(cluster_svc_pid "$1" "$2"); then
		echo "running (pid $pid)"
	elif [ -s "$st" ]; then
		echo "exited $(cat "$st")"
	else
		echo "killed"
	fi
}

# The service's exit status once it has ended (empty when it was killed).
cluster_svc_status() { cat "$CPX_STATE/pids/$1-$2.status" 2>/dev/null; }

cluster__svc_died() {
	cluster__err "$2 on $1 $(cluster_svc_state "$1" "$2"); last lines of $(cluster_log "$1" "$2"):"
	tail -n 15 "$(cluster_log "$1" "$2")" | sed 's/^/    /' >&2
	return 1
}

# cluster_stop_svc HOST NAME [GRACE]: SIGTERM to the service, SIGKILL to its
# whole process group after GRACE seconds (default 5). Returns 0 when it is
# gone (its exit status: cluster_svc_status).
cluster_stop_svc() {
	local -
	set +e +o pipefail	# whatever the caller set
	local h=$1 name=$2 end=$((SECONDS + ${3:-5})) leader pid
	leader=$(cluster__svc_leader "$h" "$name") || return 0
	if pid=$(cluster_svc_pid "$h" "$name"); then
		kill -TERM "$pid" 2>/dev/null
	fi
	while cluster__svc_leader "$h" "$name" >/dev/null; do
		if [ $SECONDS -ge $end ]; then
			kill -KILL -- "-$leader" 2>/dev/null
			sleep 0.2
			break
		fi
		sleep 0.05
	done
	! cluster__svc_leader "$h" "$name" >/dev/null ||
		cluster__err "$name on $h survived SIGKILL"
}

cluster_stop_all() {
	local -
	set +e +o pipefail	# whatever the caller set
	cluster__vars || return
	local f h name
	cluster_stop_fuse >/dev/null 2>&1
	for f in "$CPX_STATE"/pids/*.pid; do
		[ -e "$f" ] || continue
		f=${f##*/}
		f=${f%.pid}
		h=${f%%-*}
		name=${f#*-}
		cluster_stop_svc "$h" "$name" 3
	done
}

# --- the ClusterPlex services ---------------------------------------------------

cluster__need_bin() {
	[ -x "$CPX_REPO/$CPX_BUILD/$1" ] ||
		cluster__err "cannot start $2: $CPX_BUILD/$1 is not built yet (make $CPX_BUILD/$1)"
}

cluster_start_dispatcher() {
	local -
	set +e +o pipefail	# whatever the caller set
	cluster__vars && cluster__need_bin clusterplex-dispatcher dispatcher || return
	cluster_spawn pms dispatcher \
		--env-file "$CPX_STATE/hosts/pms/etc/dispatcher.env" -- \
		"$CPX_SRC/$CPX_BUILD/clusterplex-dispatcher" || return
	cluster_wait_http pms "http://127.0.0.1:$CPX_DISPATCHER_PORT/health" 10 dispatcher
}

# The fake PMS records every request to $(cluster_fake_pms_requests).
cluster_start_fake_pms() {
	local -
	set +e +o pipefail	# whatever the caller set
	cluster__vars || return
	cluster_spawn pms fake-pms -- /usr/bin/python3 "$CPX_SRC/tests/standin/fake-pms" \
		--listen "127.0.0.1:$CPX_PMS_PORT" --root /transcode \
		--record /run/clusterplex/fake-pms-requests.jsonl || return
	cluster_wait_http pms "http://127.0.0.1:$CPX_PMS_PORT/identity" 10 fake-pms
}

cluster_fake_pms_requests() { echo "$CPX_STATE/hosts/pms/run/fake-pms-requests.jsonl"; }

cluster_start_agent() {
	local -
	set +e +o pipefail	# whatever the caller set
	local h=w$1
	cluster__vars && cluster__need_bin clusterplex-agent "agent serve on $h" || return
	cluster_spawn "$h" agent --user "$CPX_WORKER_USER" \
		--env-file "$CPX_STATE/hosts/$h/etc/agent.env" -- \
		"$CPX_SRC/$CPX_BUILD/clusterplex-agent" serve || return
	cluster_wait_http "$h" "http://$(cluster_host_ip "$h"):$CPX_AGENT_PORT/health" 10 agent
}

cluster_start_agents() {
	local -
	set +e +o pipefail	# whatever the caller set
	local i
	cluster__vars || return
	for ((i = 1; i <= CPX_WORKERS; i++)); do
		cluster_start_agent "$i" || return
	done
}

# cluster_wait_workers N SECONDS: until the dispatcher lists N workers.
cluster_wait_workers() {
	local -
	set +e +o pipefail	# whatever the caller set
	local n=$1 end=$((SECONDS + $2)) got
	while :; do
		got=$(cluster_pms curl -fsS -m 2 "http://127.0.0.1:$CPX_DISPATCHER_PORT/api/v1/workers" 2>/dev/null |
			/usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print(len(d if isinstance(d, list) else d.get("workers", [])))' 2>/dev/null)
		[ "${got:-0}" -ge "$n" ] && return 0
		[ $SECONDS -lt $end ] ||
			{ cluster__err "dispatcher lists ${got:-no} worker(s), not $n, after $2 s"; return; }
		sleep 0.2
	done
}

cluster_start_pool() {
	local -
	set +e +o pipefail	# whatever the caller set
	local sock="$CPX_STATE/hosts/pms/run/pool.sock" end
	cluster__vars && cluster__need_bin clusterplex-shim "the shim's pool" || return
	cluster_spawn pms pool --env-file "$CPX_STATE/hosts/pms/etc/pms.env" -- \
		"$CPX_SRC/$CPX_BUILD/clusterplex-shim" pool || return
	end=$((SECONDS + 10))
	while [ ! -S "$sock" ]; do
		cluster_svc_alive pms pool || { cluster__svc_died pms pool; return; }
		[ $SECONDS -lt $end ] ||
			{ cluster__err "pool made no /run/clusterplex/pool.sock in 10 s"; return; }
		sleep 0.05
	done
}

cluster__fuse_mounted() {
	cluster_pms findmnt -n -o FSTYPE --mountpoint /transcode 2>/dev/null |
		grep -q '^fuse'
}

# Mounts clusterplex-fuse over the pms host's /transcode (CPX_FUSE_ARGS).
cluster_start_fuse() {
	local -
	set +e +o pipefail	# whatever the caller set
	local end
	cluster__vars && cluster__need_bin clusterplex-fuse fuse || return
	# shellcheck disable=SC2086
	cluster_spawn pms fuse --env-file "$CPX_STATE/hosts/pms/etc/pms.env" -- \
		"$CPX_SRC/$CPX_BUILD/clusterplex-fuse" $CPX_FUSE_ARGS || return
	end=$((SECONDS + 10))
	until cluster__fuse_mounted; do
		cluster_svc_alive pms fuse || { cluster__svc_died pms fuse; return; }
		[ $SECONDS -lt $end ] ||
			{ cluster__err "fuse did not mount /transcode in 10 s"; return; }
		sleep 0.05
	done
}

# Unmounts /transcode as an administrator would; the daemon must then exit
# by itself, with status 0, within 10 s. Returns non-zero otherwise.
cluster_stop_fuse() {
	local -
	set +e +o pipefail	# whatever the caller set
	local end=$((SECONDS + 10)) st
	cluster__vars || return
	[ -e "$CPX_STATE/pids/pms-fuse.pid" ] || return 0
	if cluster__fuse_mounted && ! cluster_pms fusermount3 -u /transcode; then
		cluster__err "fusermount3 -u /transcode failed; lazy unmount"
		cluster_pms umount -l /transcode
	fi
	# The leader writes fuse's exit status once fuse is gone: wait for it
	# too, or the status may not be there yet.
	while cluster__svc_leader pms fuse >/dev/null; do
		if [ $SECONDS -ge $end ]; then
			cluster__err "fuse still runs 10 s after the unmount"
			cluster_stop_svc pms fuse 1
			return 1
		fi
		sleep 0.05
	done
	st=$(cluster_svc_status pms fuse)
	rm -f "$CPX_STATE/pids/pms-fuse.pid"
	[ "$st" = 0 ] || { cluster__err "fuse exited with status ${st:-(killed)}"; return 1; }
}

# Dispatcher, fake PMS, every agent (registered), pool, fuse.
cluster_start_all() {
	local -
	set +e +o pipefail	# whatever the caller set
	cluster_start_dispatcher && cluster_start_fake_pms && cluster_start_agents &&
		cluster_wait_workers "$CPX_WORKERS" 15 && cluster_start_pool &&
		cluster_start_fuse
}

cluster_start() {
	case ${1:-} in
	dispatcher) cluster_start_dispatcher ;;
	fake-pms) cluster_start_fake_pms ;;
	agent) cluster_start_agent "$2" ;;
	agents) cluster_start_agents ;;
	pool) cluster_start_pool ;;
	fuse) cluster_start_fuse ;;
	all) cluster_start_all ;;
	*) cluster__err "start what? dispatcher|fake-pms|agent I|agents|pool|fuse|all" ;;
	esac
}
