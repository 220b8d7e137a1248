#!/bin/bash
# cluster.sh — a ClusterPlex test cluster on this machine: a "pms" host and
# CPX_WORKERS worker hosts. Each host is a network namespace (veth to a
# bridge in a namespace of its own) with a persistent private mount
# namespace holding its own /transcode, /run/clusterplex, /etc/clusterplex
# and /tmp, the test media read-only at /media and this repository
# read-only at /opt/clusterplex. Workers run their own sshd.
#
#   cluster.sh up|down|status|leftovers          (CPX_CLUSTER, CPX_WORKERS)
#   cluster.sh start dispatcher|fake-pms|agents|pool|fuse|all
#   cluster.sh pms CMD...  |  cluster.sh worker I CMD...
#
# Sourced, it is the library of tests/integration and scripts/demo.sh:
# cluster_up, cluster_down, cluster_trap, cluster_pms, cluster_worker,
# cluster_start_*, ... (docs/testing.md). Functions return non-zero with a
# message on stderr; nothing here calls exit.

CPX_CLUSTER=${CPX_CLUSTER:-cpx}
CPX_WORKERS=${CPX_WORKERS:-2}
CPX_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CPX_SRC=/opt/clusterplex	# where every host sees the repository
# The binaries' folder, relative to the repository: BUILD=build-san runs
# the cluster on the ASan+UBSan build.
CPX_BUILD=${BUILD:-build}
case $CPX_BUILD in /*) CPX_BUILD=${CPX_BUILD#"$CPX_REPO"/} ;; esac
CPX_WORKER_USER=${CPX_WORKER_USER:-cpxworker}
CPX_MEDIA_DIR=${CPX_MEDIA_DIR:-$CPX_REPO/build/media}
CPX_FUSE_ARGS=${CPX_FUSE_ARGS:-/transcode}
CPX_LOG_LEVEL=${CPX_LOG_LEVEL:-info}

# Host-side mount points; created when missing and left in place (empty),
# since removing one could detach another cluster's mounts.
CPX_MOUNTPOINTS="/transcode /media /opt/clusterplex /etc/clusterplex
/run/clusterplex"

source "$CPX_REPO/tests/cluster/services.sh"

cluster__err() {
	echo "cluster $CPX_CLUSTER: $*" >&2
	return 1
}

cluster__say() {
	[ -n "${CPX_QUIET:-}" ] || echo "cluster $CPX_CLUSTER: $*" >&2
}

# Derived names. Called by every public function, so a caller may change
# CPX_CLUSTER between calls; the subnet comes from the name, so clusters
# of different names never share addresses.
cluster__vars() {
	case $CPX_CLUSTER in
	[a-z]*) ;;
	*) cluster__err "CPX_CLUSTER must start with a lowercase letter"; return ;;
	esac
	if [ ${#CPX_CLUSTER} -gt 8 ] || [[ $CPX_CLUSTER = *[!a-z0-9]* ]]; then
		cluster__err "CPX_CLUSTER must be 1-8 of [a-z0-9]"
		return
	fi
	CPX_STATE=${CPX_STATE_DIR:-/tmp/$CPX_CLUSTER-cluster}
	local h
	h=$(printf %s "$CPX_CLUSTER" | cksum)
	h=${h%% *}
	CPX_NET=10.$((64 + h % 128)).$(((h / 128) % 256))
	if [ -f "$CPX_STATE/cluster.env" ]; then
		# A running cluster keeps the worker count it was made with.
		CPX_WORKERS=$(sed -n 's/^workers=//p' "$CPX_STATE/cluster.env")
		CPX_TOKEN=$(sed -n 's/^token=//p' "$CPX_STATE/cluster.env")
	fi
	if [[ ! $CPX_WORKERS =~ ^[0-9]+$ ]] || [ "$CPX_WORKERS" -gt 200 ]; then
		cluster__err "CPX_WORKERS must be 0-200"
	fi
}

# --- names and addresses ---------------------------------------------------

cluster_hosts() {
	local i
	echo pms
	for ((i = 1; i <= CPX_WORKERS; i++)); do
		echo "w$i"
	done
}

cluster_host_ip() {
	case $1 in
	pms) echo "$CPX_NET.1" ;;
	w[0-9]*) echo "$CPX_NET.$((10 + ${1#w}))" ;;
	*) cluster__err "no host '$1'" ;;
	esac
}

cluster_pms_ip() { cluster_host_ip pms; }
cluster_worker_ip() { cluster_host_ip "w$1"; }
cluster_netns() { echo "$CPX_CLUSTER-$1"; }
cluster_state() { echo "$CPX_STATE"; }
# The host-side folder behind a host's /etc/clusterplex, /run/clusterplex
# or /transcode (etc, run, transcode).
cluster_host_dir() { echo "$CPX_STATE/hosts/$1/$2"; }
cluster_log() { echo "$CPX_STATE/logs/$1-$2.log"; }

# --- running things inside a host -------------------------------------------

# The hosts share this machine's CPUs. Each gets a CPU cgroup of its own
# (cgroup v1 `cpu`, equal shares), so that when all are busy each host has
# its share, as separate machines would: without them every SSH session
# on a worker (each its own autogroup) weighs as much as all of the PMS
# host's daemons together, and 100 transcodes on the workers starved fuse's
# loop for seconds. Where there is no such controller, hosts share as
# processes do.
CPX_CPU_CGROUPS=/sys/fs/cgroup/cpu

# cluster__cpu_group HOST: prints the host's CPU cgroup, made if need be;
# nothing where there is none.
cluster__cpu_group() {
	local g="$CPX_CPU_CGROUPS/cpx-$CPX_CLUSTER/$1"
	[ -d "$CPX_CPU_CGROUPS" ] || return 0
	mkdir -p "$g" 2>/dev/null && [ -w "$g/cgroup.procs" ] && echo "$g"
	return 0
}

cluster__drop_cpu_groups() {
	local top="$CPX_CPU_CGROUPS/cpx-$CPX_CLUSTER"
	[ -d "$top" ] || return 0
	rmdir "$top"/* "$top" 2>/dev/null
	return 0
}

# CPX_IN_CPU_GROUP: a command prefix that moves itself into the cgroup
# given as its first argument (none: stays), then runs the rest. It comes
# before nsenter: a host's mount namespace has a /sys of its own, without
# the cgroup folders.
# shellcheck disable=SC2016
CPX_IN_CPU_GROUP=(/bin/sh -c '[ -z "$0" ] || echo $$ >"$0/cgroup.procs"; exec "$@"')

# cluster_on HOST CMD...: runs CMD in HOST's network and mount namespaces
# and CPU cgroup, from / (or from $CPX_WD when set), with this shell's
# environment.
cluster_on() {
	local h=$1
	shift
	[ -e "/run/netns/$CPX_CLUSTER-$h" ] ||
		{ cluster__err "host $h is not up"; return; }
	"${CPX_IN_CPU_GROUP[@]}" "$(cluster__cpu_group "$h")" \
		nsenter --net="/run/netns/$CPX_CLUSTER-$h" --mount="$CPX_STATE/ns/$h" \
		--wd="${CPX_WD:-/}" -- "$@"
}

cluster_pms() { cluster_on pms "$@"; }

cluster_worker() {
	local i=$1
	shift
	cluster_on "w$i" "$@"
}

# cluster_ssh I [ARGS...]: OpenSSH's client on the pms host, with the PMS
# key, the cluster's known_hosts and StrictHostKeyChecking=yes, to worker I.
cluster_ssh() {
	local i=$1
	shift
	cluster_pms ssh -F /dev/null -i /etc/clusterplex/ssh/id_ed25519 \
		-T -o IdentitiesOnly=yes -o BatchMode=yes \
		-o StrictHostKeyChecking=yes \
		-o UserKnownHostsFile=/etc/clusterplex/ssh/known_hosts \
		-o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=5 \
		-o LogLevel=ERROR "$CPX_WORKER_USER@$(cluster_worker_ip "$i")" "$@"
}

# --- bounded waits ------------------------------------------------------------

# cluster_wait_tcp HOST IP PORT SECONDS: until a TCP connect from HOST works.
cluster_wait_tcp() {
	local -
	set +e +o pipefail	# whatever the caller set
	local h=$1 ip=$2 port=$3 end=$((SECONDS + $4))
	while ! cluster_on "$h" timeout 1 bash -c \
	    "exec 3<>/dev/tcp/$ip/$port" 2>/dev/null; do
		[ $SECONDS -lt $end ] ||
			{ cluster__err "$ip:$port unreachable from $h after $4 s"; return; }
		sleep 0.1
	done
}

# cluster_wait_http HOST URL SECONDS [SVC]: until URL answers 2xx from HOST;
# gives up at once when service SVC on HOST has died.
cluster_wait_http() {
	local -
	set +e +o pipefail	# whatever the caller set
	local h=$1 url=$2 end=$((SECONDS + $3)) svc=${4:-}
	while ! cluster_on "$h" curl -fsS -m 1 -o /dev/null "$url" 2>/dev/null; do
		if [ -n "$svc" ] && ! cluster_svc_alive "$h" "$svc"; then
			cluster__svc_died "$h" "$svc"
			return
		fi
		[ $SECONDS -lt $end ] ||
			{ cluster__err "$url did not answer on $h within $3 s"; return; }
		sleep 0.1
	done
}

# --- bring-up -----------------------------------------------------------------

cluster__preflight() {
	local t
	[ "$(id -u)" = 0 ] || { cluster__err "must run as root"; return; }
	for t in ip nsenter unshare setpriv taskset ssh-keygen /usr/sbin/sshd ssh curl \
	    fusermount3 findmnt /usr/bin/python3 ffmpeg; do
		command -v "$t" >/dev/null ||
			{ cluster__err "missing $t: run scripts/deps.sh"; return; }
	done
}

# A worker account for sshd: key-only, /bin/sh (sshd runs the forced command
# through the login shell; a locked "!" password would refuse even keys).
cluster__ensure_user() {
	local u=$CPX_WORKER_USER
	for _ in 1 2 3 4 5; do
		getent passwd "$u" >/dev/null && break
		useradd --system --user-group --create-home \
			--home-dir "/var/lib/$u" --shell /bin/sh "$u" 2>/dev/null &&
			break
		sleep 0.5	# another cluster may hold /etc/passwd's lock
	done
	getent passwd "$u" >/dev/null || { cluster__err "cannot create user $u"; return; }
	[ "$(getent passwd "$u" | cut -d: -f7)" = /bin/sh ] || usermod -s /bin/sh "$u"
	[ "$(getent shadow "$u" | cut -d: -f2)" = '*' ] || usermod -p '*' "$u"
}

# Is anything of this cluster's name still around (a previous run)?
cluster__exists() {
	[ -e "$CPX_STATE" ] && return 0
	ip netns list 2>/dev/null | grep -qE "^$CPX_CLUSTER-(br|pms|w[0-9]+)( |$)"
}

cluster__net_host() {
	local h=$1 ns=$CPX_CLUSTER-$1 ip
	ip=$(cluster_host_ip "$h") || return
	ip netns add "$ns" || return
	ip -n "$CPX_CLUSTER-br" link add "$h" type veth peer name eth0 \
		netns "$ns" || return
	ip -n "$CPX_CLUSTER-br" link set "$h" master br0 up &&
		ip -n "$ns" link set lo up &&
		ip -n "$ns" addr add "$ip/24" dev eth0 &&
		ip -n "$ns" link set eth0 up
}

# Runs inside a new mount namespace (cluster.sh __host-setup HOST).
cluster__host_setup() {
	local h=$1 d="$CPX_STATE/hosts/$1" mp
	# This namespace began as a copy of the machine's mount table. Copies of
	# namespace files and fuse mounts would keep other clusters' namespaces
	# and fuse daemons alive after their owners let go: drop them.
	awk '{ for (i = 7; $i != "-"; i++); t = $(i + 1);
	       if (t == "nsfs" || t ~ /^fuse/) print $5 }' /proc/self/mountinfo |
		sort -r | while read -r mp; do
		umount -l "$(printf '%b' "$(sed 's/\\\([0-7]\{3\}\)/\\0\1/g' <<<"$mp")")" \
			2>/dev/null
	done
	mount -t sysfs sysfs /sys &&
		mount --bind "$d/etc" /etc/clusterplex &&
		mount --bind "$d/run" /run/clusterplex &&
		mount --bind "$d/transcode" /transcode &&
		mount --bind "$CPX_MEDIA_DIR" /media &&
		mount -o remount,bind,ro /media &&
		mount --bind "$CPX_REPO" "$CPX_SRC" &&
		mount -o remount,bind,ro "$CPX_SRC" &&
		mount -t tmpfs -o mode=1777,size=256m "$CPX_CLUSTER-$h-tmp" /tmp
}

# cluster__new_mountns HOST [PREFIX...]: the host's mount namespace, bound
# to $CPX_STATE/ns/HOST, set up by __host-setup; PREFIX runs unshare (taskset).
cluster__new_mountns() {
	local h=$1
	shift
	"$@" nsenter --net="/run/netns/$CPX_CLUSTER-$h" -- \
		unshare --mount="$CPX_STATE/ns/$h" --propagation private -- \
		env CPX_CLUSTER="$CPX_CLUSTER" CPX_STATE_DIR="$CPX_STATE" \
		CPX_MEDIA_DIR="$CPX_MEDIA_DIR" \
		bash "$CPX_REPO/tests/cluster/cluster.sh" __host-setup "$h"
}

cluster__mount_host() {
	local h=$1 d="$CPX_STATE/hosts/$1" f="$CPX_STATE/ns/$1" cpu
	mkdir -p "$d/etc/ssh" "$d/run" "$d/transcode" || return
	: >"$f" || return
	# Linux (6.18) numbers mount namespaces from per-CPU batches, and binds
	# a namespace file only when its id is above the binding process's
	# namespace's (a guard against loops). Run nested (in a container),
	# unshare therefore fails on some CPUs and works on others: when it
	# fails, try it pinned to each CPU in turn.
	if ! cluster__new_mountns "$h" 2>"$d/unshare.err"; then
		[ "$(stat -f -c %T "$f")" != nsfs ] ||
			{ cat "$d/unshare.err" >&2; cluster__err "setting up $h failed"; return; }
		for cpu in $(seq 0 $(($(nproc --all) - 1))); do
			cluster__new_mountns "$h" taskset -c "$cpu" 2>>"$d/unshare.err" &&
				break
		done
		[ "$(stat -f -c %T "$f")" = nsfs ] ||
			{ cat "$d/unshare.err" >&2; cluster__err "mount namespace of $h failed"; return; }
	fi
	# Kept so that `down` finds processes even if the files are gone.
	echo "net=$(stat -L -c %i "/run/netns/$CPX_CLUSTER-$h") mnt=$(stat -c %i "$f")" \
		>"$d/ids"
}

cluster_up() {
	local -
	set +e +o pipefail	# whatever the caller set
	cluster__vars && cluster__preflight || return
	if cluster__exists; then
		cluster__say "a previous run of this name is still here: cleaning it"
		cluster_down || return
	fi
	local h mp t0=$SECONDS
	CPX_UP_STARTED=1	# from here on, a failed up leaves things to clean
	CPX_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
	mkdir -p "$CPX_STATE"/{ns,hosts,logs,pids} "$CPX_MEDIA_DIR" /run/sshd || return
	printf 'name=%s\nworkers=%s\nnet=%s\ntoken=%s\nrepo=%s\n' "$CPX_CLUSTER" \
		"$CPX_WORKERS" "$CPX_NET" "$CPX_TOKEN" "$CPX_REPO" >"$CPX_STATE/cluster.env"
	# Namespace files may only be bound below a private mount.
	mount --bind "$CPX_STATE/ns" "$CPX_STATE/ns" &&
		mount --make-private "$CPX_STATE/ns" || return
	for mp in $CPX_MOUNTPOINTS; do
		mkdir -p "$mp" || return
	done
	cluster__ensure_user || return
	ip netns add "$CPX_CLUSTER-br" &&
		ip -n "$CPX_CLUSTER-br" link add br0 type bridge &&
		ip -n "$CPX_CLUSTER-br" link set br0 up || return
	for h in $(cluster_hosts); do
		cluster__net_host "$h" && cluster__mount_host "$h" || return
	done
	cluster__provision || return
	for h in $(cluster_hosts); do
		[ "$h" = pms ] || cluster__start_sshd "$h" || return
	done
	cluster__say "up in $((SECONDS - t0)) s: pms $(cluster_pms_ip), $CPX_WORKERS worker(s) on $CPX_NET.0/24, state $CPX_STATE"
}

# --- tear-down ----------------------------------------------------------------

# Hosts this name ever had: named namespaces, state folders, ns files.
cluster__known_hosts() {
	{
		ip netns list 2>/dev/null | awk '{print $1}' |
			sed -n "s/^$CPX_CLUSTER-\(pms\|w[0-9]\+\)$/\1/p"
		ls "$CPX_STATE/hosts" "$CPX_STATE/ns" 2>/dev/null | grep -E '^(pms|w[0-9]+)$'
	} | sort -u
}

# Processes in HOST's namespaces: by the named netns, by its mount
# namespace file, or, once both are gone, by the pair of namespace ids
# recorded at creation (both must match, so a reused id never matches).
cluster__host_pids() {
	local h=$1 f="$CPX_STATE/ns/$1" mnt="" rnet="" rmnt=""
	{
		[ -e "/run/netns/$CPX_CLUSTER-$h" ] && ip netns pids "$CPX_CLUSTER-$h"
		[ "$(stat -f -c %T "$f" 2>/dev/null)" = nsfs ] && mnt=$(stat -c %i "$f")
		[ -f "$CPX_STATE/hosts/$h/ids" ] &&
			read -r rnet rmnt <"$CPX_STATE/hosts/$h/ids"
		/usr/bin/python3 -c '
import os, sys
mnt, rnet, rmnt = sys.argv[1:4]
def ns(p, kind):
    try:
        return os.readlink("/proc/%s/ns/%s" % (p, kind)).split("[")[1][:-1]
    except (OSError, IndexError):
        return None
for p in filter(str.isdigit, os.listdir("/proc")):
    m = ns(p, "mnt")
    if m and (m == mnt or (m == rmnt and ns(p, "net") == rnet)):
        print(p)
' "$mnt" "${rnet#net=}" "${rmnt#mnt=}"
	} | sort -un | grep -vx -e "$$" -e "$BASHPID"
	return 0
}

cluster__kill_host() {
	local h=$1 pids end=$((SECONDS + 10))
	pids=$(cluster__host_pids "$h")
	while [ -n "$pids" ]; do
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null
		[ $SECONDS -lt $end ] || { cluster__err "processes left in $h: $pids"; return; }
		sleep 0.1
		pids=$(cluster__host_pids "$h")
	done
	return 0
}

cluster__unmount_host() {
	local h=$1 f="$CPX_STATE/ns/$1"
	[ "$(stat -f -c %T "$f" 2>/dev/null)" = nsfs ] || return 0
	if nsenter --mount="$f" findmnt -n -o FSTYPE --mountpoint /transcode |
	    grep -q '^fuse'; then
		nsenter --mount="$f" fusermount3 -u /transcode 2>/dev/null ||
			nsenter --mount="$f" umount -l /transcode
	fi
	umount "$f" 2>/dev/null || umount -l "$f"
}

cluster_down() {
	local -
	set +e +o pipefail	# whatever the caller set
	cluster__vars || return
	local h hosts rc=0 t0=$SECONDS m
	hosts=$(cluster__known_hosts)
	[ -e "$CPX_STATE" ] || [ -n "$hosts" ] || ip netns list | grep -q "^$CPX_CLUSTER-br" ||
		{ cluster__say "nothing to tear down"; return 0; }
	cluster_stop_all 2>/dev/null
	for h in $hosts; do
		cluster__kill_host "$h" || rc=1
	done
	for h in $hosts; do
		cluster__unmount_host "$h" || rc=1
	done
	cluster__drop_cpu_groups
	for h in $hosts br; do
		if [ -e "/run/netns/$CPX_CLUSTER-$h" ]; then
			ip netns del "$CPX_CLUSTER-$h" || rc=1
		fi
	done
	# Anything still mounted below the state folder (the private ns bind).
	for m in $(findmnt -rn -o TARGET | grep -F "$CPX_STATE" | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" || rc=1
	done
	rm -rf "$CPX_STATE" || rc=1
	cluster_leftovers || rc=1
	[ $rc = 0 ] && cluster__say "down in $((SECONDS - t0)) s"
	return $rc
}

# Prints what is left of this cluster (namespaces, mounts, processes, state)
# and fails when anything is.
cluster_leftovers() {
	local -
	set +e +o pipefail	# whatever the caller set
	cluster__vars 2>/dev/null
	local left=0 ns p
	ns=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$CPX_CLUSTER-(br|pms|w[0-9]+)$")
	[ -z "$ns" ] || { echo "left: netns $ns" >&2; left=1; }
	if findmnt -rn -o TARGET | grep -qF "$CPX_STATE"; then
		echo "left: mounts $(findmnt -rn -o TARGET | grep -F "$CPX_STATE" | tr '\n' ' ')" >&2
		left=1
	fi
	[ ! -e "$CPX_STATE" ] || { echo "left: state folder $CPX_STATE" >&2; left=1; }
	for h in $(cluster__known_hosts); do
		p=$(cluster__host_pids "$h")
		[ -z "$p" ] || { echo "left: processes in $h: $p" >&2; left=1; }
	done
	return $left
}

# cluster_trap: tear the cluster down when the calling script ends, fails or
# is interrupted (CPX_KEEP=1 keeps it for a post-mortem); the script's exit
# status is kept.
cluster_trap() {
	trap 'cluster__on_exit' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
}

cluster__on_exit() {
	local rc=$?
	local -
	set +e +o pipefail	# whatever the caller set
	# CPX_EXIT_HOOK: a command a test adds to the tear-down (e.g. a second
	# cluster's cluster_down).
	[ -z "${CPX_EXIT_HOOK:-}" ] || eval "$CPX_EXIT_HOOK" || true
	# A sanitizer build reports on stderr, into the service logs: any
	# report fails the test, whatever the test itself concluded.
	if [ -d "$CPX_STATE/logs" ] && grep -rlE \
	    'ERROR: (Address|Leak)Sanitizer|runtime error:' "$CPX_STATE/logs" >&2; then
		echo "cluster $CPX_CLUSTER: sanitizer report in the service logs above" >&2
		[ "$rc" != 0 ] || rc=1
	fi
	# A failure's service logs outlive the state folder.
	if [ "$rc" != 0 ] && [ -d "$CPX_STATE/logs" ]; then
		local keep="$CPX_REPO/build/cluster-logs/$CPX_CLUSTER"
		rm -rf "$keep" && mkdir -p "$keep" && cp -a "$CPX_STATE/logs/." "$keep/" &&
			echo "cluster $CPX_CLUSTER: service logs kept in $keep" >&2
	fi
	if [ -n "${CPX_KEEP:-}" ]; then
		echo "cluster $CPX_CLUSTER kept (CPX_KEEP): $CPX_REPO/tests/cluster/cluster.sh down" >&2
	else
		CPX_QUIET=${CPX_QUIET:-} cluster_down
	fi
	exit $rc
}

cluster_status() {
	local -
	set +e +o pipefail	# whatever the caller set
	cluster__vars || return
	if ! cluster__exists; then
		echo "cluster $CPX_CLUSTER: down"
		return 1
	fi
	echo "cluster $CPX_CLUSTER: net $CPX_NET.0/24, state $CPX_STATE"
	local h f
	for h in $(cluster__known_hosts); do
		printf '  %-4s %-14s netns:%s mountns:%s\n' "$h" "$(cluster_host_ip "$h")" \
			"$([ -e "/run/netns/$CPX_CLUSTER-$h" ] && echo ok || echo MISSING)" \
			"$([ "$(stat -f -c %T "$CPX_STATE/ns/$h" 2>/dev/null)" = nsfs ] && echo ok || echo MISSING)"
		for f in "$CPX_STATE/pids/$h"-*.pid; do
			[ -e "$f" ] || continue
			f=${f##*/}
			f=${f%.pid}
			printf '       %-12s %s\n' "${f#"$h"-}" "$(cluster_svc_state "$h" "${f#"$h"-}")"
		done
	done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	cmd=${1:-}
	shift || true
	case $cmd in
	__host-setup) cluster__vars && cluster__host_setup "$@" ;;
	up) [ $# = 0 ] || CPX_WORKERS=$1
	    cluster_up || { rc=$?; [ -z "${CPX_UP_STARTED:-}" ] || cluster_down; exit $rc; } ;;
	down) cluster_down ;;
	status) cluster_status ;;
	leftovers) cluster__vars && cluster_leftovers && echo "cluster $CPX_CLUSTER: nothing left" ;;
	start) cluster__vars && cluster_start "$@" ;;
	stop) cluster__vars && cluster_stop_svc "$@" ;;
	pms) cluster__vars && cluster_pms "$@" ;;
	worker) cluster__vars && cluster_worker "$@" ;;
	ssh) cluster__vars && cluster_ssh "$@" ;;
	*) sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
	esac
fi
