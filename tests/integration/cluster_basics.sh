#!/bin/bash
# cluster_basics.sh — the test cluster itself: up and down twice, recovery
# from a half-torn-down run, two clusters side by side, SSH from the pms
# host into `clusterplex-agent exec` on every worker (host key pinned, PMS
# key only), and one /transcode per host. Needs build/clusterplex-agent.
set -eu -o pipefail
export CPX_CLUSTER=${CPX_CLUSTER:-clb} CPX_WORKERS=2
source "$(dirname "$0")/lib.sh"

OTHER=${CPX_CLUSTER}x
t_require_parts clusterplex-agent
cluster_trap
CPX_EXIT_HOOK='(CPX_CLUSTER=$OTHER CPX_QUIET=1 cluster_down)'

# Every process of the cluster, over all its hosts (pid list).
all_pids() {
	local h
	for h in $(cluster__known_hosts); do
		cluster__host_pids "$h"
	done | sort -n | tr '\n' ' '
}

# Nothing of the cluster may remain: netns, mounts, state, and none of the
# processes it had (pids given), checked without the cluster's own records.
check_clean() {
	local p left=
	cluster_leftovers || t_fail "cluster_leftovers lists remains"
	! ip netns list | grep -q "^$CPX_CLUSTER-" || t_fail "netns left: $(ip netns list)"
	! findmnt -rn -o TARGET | grep -q "$CPX_STATE" || t_fail "mounts left"
	for p in $1; do
		[ ! -e "/proc/$p" ] || [ "$(awk '{print $3}' "/proc/$p/stat")" = Z ] ||
			left="$left $p($(tr '\0' ' ' <"/proc/$p/cmdline" | cut -c1-40))"
	done
	[ -z "$left" ] || t_fail "processes left:$left"
}

echo "== up, down, up, down"
for round in 1 2; do
	CPX_QUIET=1 cluster_up || t_fail "up (round $round)"
	pids=$(all_pids)
	[ -n "$pids" ] || t_fail "no process in the cluster after up"
	cluster_down || t_fail "down (round $round)"
	check_clean "$pids"
	t_ok "round $round: up and down, nothing left (had pids $pids)"
done

echo "== up after a half-torn-down run"
CPX_QUIET=1 cluster_up || t_fail up
pids=$(all_pids)
kill -9 "$(cluster_svc_pid w1 sshd)"
ip netns del "$CPX_CLUSTER-w2"
CPX_QUIET=1 cluster_up || t_fail "up over a half-torn-down run"
for p in $pids; do
	[ ! -e "/proc/$p" ] || [ "$(awk '{print $3}' "/proc/$p/stat")" = Z ] ||
		t_fail "pid $p of the broken run survived the new up"
done
[ "$(cluster_svc_state w1 sshd)" != killed ] && cluster_svc_alive w2 sshd ||
	t_fail "sshd not running after recovery"
t_ok "sshd of w1 killed and netns of w2 deleted: up cleaned all of it (pids $pids) and came up"

echo "== a second cluster side by side"
(CPX_CLUSTER=$OTHER CPX_WORKERS=1 CPX_QUIET=1 cluster_up) || t_fail "second cluster up"
a=$(cluster_pms_ip)
b=$(CPX_CLUSTER=$OTHER; cluster__vars; cluster_pms_ip)
[ "${a%.*}" != "${b%.*}" ] || t_fail "both clusters on ${a%.*}.0/24"
! cluster_pms curl -s -m 2 "http://$b:1" 2>/dev/null ||
	t_fail "cluster $CPX_CLUSTER reaches $OTHER"
(CPX_CLUSTER=$OTHER cluster_down) || t_fail "second cluster down"
cluster_svc_alive w1 sshd || t_fail "the other cluster's down touched this one"
t_ok "$OTHER ($b) came and went beside $CPX_CLUSTER ($a), which kept running"

echo "== SSH into clusterplex-agent exec"
for i in $(seq 1 "$CPX_WORKERS"); do
	out=$("$CPX_REPO/tests/cluster/cpx-hello" --wait 5 -- \
		"$CPX_REPO/tests/cluster/cluster.sh" ssh "$i" 2>/dev/null) || true
	echo "$out" | sed "s/^/   w$i> /"
	first=$(echo "$out" | head -n 1)
	echo "$first" | grep -q '"name": "HELLO"' ||
		t_fail "w$i: no HELLO from the agent"
	echo "$first" | grep -Eq "\"(who|worker)\": \"w$i\"" ||
		t_fail "w$i: the agent that answered is not w$i"
	grep -q "forced-command (key-option) '$CPX_SRC/$CPX_BUILD/clusterplex-agent exec" \
		"$(cluster_log "w$i" sshd)" || t_fail "w$i: sshd did not run the forced command"
done
t_ok "every worker's sshd accepted the PMS key and ran the agent, which answered HELLO"

ssh_try() {
	local ip=$1
	shift
	cluster_pms ssh -F /dev/null -T -o BatchMode=yes -o ConnectTimeout=5 \
		-o IdentitiesOnly=yes -o GlobalKnownHostsFile=/dev/null "$@" "$ip" \
		</dev/null 2>&1
}
ip=$(cluster_worker_ip 1)
cluster_pms ssh-keygen -q -t ed25519 -N '' -f /tmp/other-key
out=$(ssh_try "$CPX_WORKER_USER@$ip" -i /tmp/other-key -o StrictHostKeyChecking=yes \
	-o UserKnownHostsFile=/etc/clusterplex/ssh/known_hosts) &&
	t_fail "a key other than PMS's was accepted"
echo "$out" | grep -q "Permission denied (publickey)" || t_fail "other key: $out"
t_ok "another key is refused: $out"
out=$(ssh_try "root@$ip" -i /etc/clusterplex/ssh/id_ed25519 -o StrictHostKeyChecking=yes \
	-o UserKnownHostsFile=/etc/clusterplex/ssh/known_hosts) && t_fail "root login accepted"
t_ok "root is refused: $out"
out=$(ssh_try "$CPX_WORKER_USER@$ip" -i /etc/clusterplex/ssh/id_ed25519 \
	-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/dev/null) &&
	t_fail "a worker with an unknown host key was accepted"
echo "$out" | grep -q "Host key verification failed" || t_fail "host key: $out"
t_ok "a host key not in known_hosts is refused: $(echo "$out" | tail -n 1)"
out=$(cluster_pms ssh -F /dev/null -o BatchMode=yes -o ConnectTimeout=5 \
	-o PreferredAuthentications=password,keyboard-interactive \
	-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/etc/clusterplex/ssh/known_hosts \
	"$CPX_WORKER_USER@$ip" </dev/null 2>&1) && t_fail "password login possible"
echo "$out" | grep -q "Permission denied (publickey)" || t_fail "password: $out"
t_ok "sshd offers public-key authentication only"

echo "== one /transcode per host"
for h in $(cluster_hosts); do
	cluster_on "$h" sh -c "echo $h >/transcode/owner-$h"
done
for h in $(cluster_hosts); do
	seen=$(cluster_on "$h" ls /transcode | tr '\n' ' ')
	[ "$seen" = "owner-$h " ] || t_fail "$h sees $seen in /transcode"
	echo "   $h ($(cluster_host_ip "$h")) sees: $seen"
done
cluster_worker 1 touch /media/x 2>/dev/null && t_fail "/media is writable"
cluster_worker 1 test -r /media/movie.mkv -o -d /media || t_fail "/media missing"
t_ok "each host sees only its own /transcode; /media is read-only"

pids=$(all_pids)
cluster_down || t_fail down
check_clean "$pids"
t_ok "down: no namespace, mount, state or process left"
