#!/bin/bash
# security_agent.sh — a hostile PMS host (it holds the key) against a
# worker of the test cluster, through the worker's real sshd and forced
# command: SSH_ORIGINAL_COMMAND injection, a pty, port forwarding, sftp;
# then security_client.py's cases against the job service (environment
# and argv injection, choosing the binary, cwd escapes by `..`, absolute
# paths, symlinks, long and NUL names, hostile input files, oversized
# frames and specs, protocol abuse, SIGSTOP) and the file service (`..`,
# absolute, symlinks out, creation through links, forged handles). After
# all of it: nothing outside the worker's /transcode changed, no process
# of any case left, agent serve still healthy, no token in any log.
set -eu -o pipefail
export CPX_CLUSTER=${CPX_CLUSTER:-rels} CPX_WORKERS=1 CPX_LOG_LEVEL=debug
source "$(dirname "$0")/lib.sh"

t_require_parts clusterplex-dispatcher clusterplex-agent
cluster_trap
CPX_QUIET=1 cluster_up || t_fail "cluster up"
# The process-semantics stand-in is the worker's transcoder.
d=$(cluster_host_dir w1 etc)/transcoder
cc -O2 -o "$d/exec-standin" "$CPX_REPO/tests/integration/exec_standin.c"
ln -sfn exec-standin "$d/Plex Transcoder"
cluster_start_dispatcher && cluster_start_agents && cluster_wait_workers 1 15 ||
	t_fail "the ClusterPlex services did not start"

# Everything from here runs as the PMS host would: OpenSSH with its key.
SSH=(nsenter --net="/run/netns/$CPX_CLUSTER-pms" --mount="$CPX_STATE/ns/pms" --
	ssh -F /dev/null -i /etc/clusterplex/ssh/id_ed25519 -o IdentitiesOnly=yes
	-o BatchMode=yes -o StrictHostKeyChecking=yes
	-o UserKnownHostsFile=/etc/clusterplex/ssh/known_hosts
	-o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=5 -o LogLevel=ERROR
	"$CPX_WORKER_USER@$(cluster_worker_ip 1)")
WFS=/proc/$(cluster_svc_pid w1 sshd)/root
O=$(mktemp -d /tmp/rels-out.XXXXXX)
CPX_EXIT_HOOK="rm -rf $O"
: >"$WFS/tmp/canary"
# The worker's private /tmp, name, size and time of every entry.
snapshot() { find "$WFS/tmp" -mindepth 1 ! -name sec-target -printf '%p %s %T@\n' | sort; }
before=$(snapshot)

echo "== SSH: the forced command decides, whatever the client asks"
timeout 20 "${SSH[@]}" 'touch /tmp/sec-cmd; echo INJECTED; id' </dev/null >"$O/cmd" 2>"$O/cmd.err" || true
! grep -q -e INJECTED -e 'uid=' "$O/cmd" && [ ! -e "$WFS/tmp/sec-cmd" ] ||
	t_fail "a requested command ran: $(head -c 200 "$O/cmd")"
t_ok "SSH_ORIGINAL_COMMAND 'touch ...; echo; id' ran nothing (the agent ignored it)"
timeout 20 "${SSH[@]}" -- --env-file /etc/shadow exec </dev/null >"$O/cmd" 2>"$O/cmd.err" || true
! grep -q 'root:' "$O/cmd" || t_fail "the agent read a file the client named"
t_ok "arguments for the agent in the requested command are ignored"
timeout 20 "${SSH[@]}" -tt true </dev/null >"$O/pty" 2>&1 || true
grep -qi 'PTY allocation request failed' "$O/pty" || t_fail "a pty was granted: $(head -c 200 "$O/pty")"
t_ok "no pty (restrict)"
rc=0
timeout 20 "${SSH[@]}" -o ExitOnForwardFailure=yes -N -R 0:127.0.0.1:22 </dev/null >"$O/fwd" 2>&1 || rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] || t_fail "remote forwarding was not refused (exit $rc)"
t_ok "remote port forwarding refused ($(grep -io 'remote port forwarding failed[^.]*' "$O/fwd" | head -n 1 || echo "exit $rc"))"
"${SSH[@]}" -N -L 127.0.0.1:3599:127.0.0.1:3501 </dev/null >"$O/lfwd" 2>&1 &
fwd=$!
sleep 1.5
body=$(cluster_pms curl -sS -m 3 http://127.0.0.1:3599/health 2>&1 || true)
kill "$fwd" 2>/dev/null || true
wait "$fwd" 2>/dev/null || true
! grep -q '"status"' <<<"$body" || t_fail "local forwarding reached the worker's agent: $body"
t_ok "local port forwarding refused (the worker's :3501 not reachable through it)"
out=$(cluster_pms timeout 20 sftp -F /dev/null -i /etc/clusterplex/ssh/id_ed25519 \
	-o BatchMode=yes -o StrictHostKeyChecking=yes \
	-o UserKnownHostsFile=/etc/clusterplex/ssh/known_hosts -b - \
	"$CPX_WORKER_USER@$(cluster_worker_ip 1)" <<<'get /etc/passwd /tmp/sec-got' 2>&1) && rc=0 || rc=$?
[ "$rc" != 0 ] && ! cluster_pms test -e /tmp/sec-got || t_fail "sftp worked: $out"
t_ok "sftp refused (the forced command is no sftp server)"

echo "== the job service, as a hostile client"
SEC_STDERR=$O/agent-job.log CPX_WORKER_USER=$CPX_WORKER_USER /usr/bin/python3 "$CPX_REPO/tests/integration/security_client.py" \
	job --worker-fs "$WFS" -- "${SSH[@]}" | tee "$O/job" || true
tail -n 1 "$O/job" | grep -q ', 0 failed$' || t_fail "hostile job requests: $(grep -c '^FAIL' "$O/job") failed"

echo "== the file service, as a hostile client"
SEC_STDERR=$O/agent-files.log CPX_WORKER_USER=$CPX_WORKER_USER /usr/bin/python3 "$CPX_REPO/tests/integration/security_client.py" \
	files --worker-fs "$WFS" -- "${SSH[@]}" | tee "$O/files" || true
tail -n 1 "$O/files" | grep -q ', 0 failed$' || t_fail "hostile file requests: $(grep -c '^FAIL' "$O/files") failed"

echo "== afterwards"
left=""
for i in $(seq 50); do
	left=$(for p in $(ip netns pids "$CPX_CLUSTER-w1"); do
		case $(readlink "/proc/$p/exe" 2>/dev/null) in
		*/exec-standin) echo "standin:$p" ;;
		*/clusterplex-agent) tr '\0' ' ' <"/proc/$p/cmdline" | grep -q ' exec' && echo "agent-exec:$p" ;;
		esac
	done || true)
	[ -z "$left" ] && break
	sleep 0.1
done
[ -z "$left" ] || t_fail "processes left on w1: $left"
t_ok "no transcoder and no agent exec left on w1"
[ "$(snapshot)" = "$before" ] && [ "$(cat "$WFS/tmp/sec-target")" = untouched ] ||
	t_fail "the worker's /tmp changed: $(diff <(echo "$before") <(snapshot))"
t_ok "the worker's /tmp is as before (the symlink target included)"
cluster_worker 1 curl -fsS -m 2 "http://$(cluster_worker_ip 1):$CPX_AGENT_PORT/health" >/dev/null ||
	t_fail "agent serve is not healthy"
t_ok "agent serve still healthy"
logs=$(ls "$CPX_STATE"/logs/*.log "$O"/*.log)
! grep -lF -e "$CPX_TOKEN" -e stolen-token $logs || t_fail "a token is in the logs above"
t_ok "CLUSTERPLEX_TOKEN (and the one smuggled in a spec) in none of $(wc -w <<<"$logs") logs, $(cat $logs | wc -l) lines at debug level (the agents' own included)"
