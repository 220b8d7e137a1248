#!/bin/bash
# exec_fallback.sh — what the shim does when something is wrong before
# the transcoder started: in `both` the job runs locally (and quickly),
# in `remote` it fails with its documented code and one clear line.
# Also: config errors (78), local mode, a missing local transcoder
# (246), the fuse route (ROUTE_ADD before RUN, ROUTE_DEL on fallback,
# 247), and the dispatcher's job-end reports.
. "$(dirname "$0")/exec_lib.sh"
exec_init fallback 24750
exec_start
S=$(exec_session fb)
W=$(exec_worker_dir fb)
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Runs `where` (the stand-in prints its cwd); sets WHERE and RC.
where_ran() {
	local out
	set +e
	out=$(cd "$S" && timeout -s KILL 20 "$SHIM" where 2>>"$T/shim.err")
	RC=$?
	set -e
	case $out in
	"$S") WHERE=local ;;
	"$W") WHERE=remote ;;
	*) WHERE=none ;;
	esac
}

# expect MODE WHERE RC BOUND_MS LABEL: run in MODE and check the result.
expect() {
	local t0 took
	t0=$(now_ms)
	TRANSCODE_OPERATING_MODE=$1 where_ran
	took=$(($(now_ms) - t0))
	[ "$WHERE" = "$2" ] || exec_die "$5 ($1): ran $WHERE (exit $RC), expected $2"
	exec_expect_rc "$3" "$5 ($1)"
	[ "$took" -le "$4" ] || exec_die "$5 ($1): took $took ms (bound $4)"
	exec_log "$5: $1 -> $2, exit $RC, $took ms"
}

expect both remote 0 2000 "healthy cluster"
expect remote remote 0 2000 "healthy cluster"
expect local local 0 2000 "local mode"

# The dispatcher: down, slow, full, failing, refusing our token.
ORCHESTRATOR_URL=http://127.0.0.1:1 expect both local 0 1000 "dispatcher down"
ORCHESTRATOR_URL=http://127.0.0.1:1 expect remote none 240 1000 "dispatcher down"
echo slow >"$T/state/mode"
expect both local 0 1000 "dispatcher hangs"
expect remote none 240 1000 "dispatcher hangs"
echo 503 >"$T/state/mode"
expect both local 0 1000 "no worker free"
expect remote none 241 1000 "no worker free"
echo 500 >"$T/state/mode"
expect remote none 240 1000 "dispatcher error"
echo ok >"$T/state/mode"
CLUSTERPLEX_TOKEN=wrong expect remote none 240 1000 "wrong token"
grep -q 'CLUSTERPLEX_TOKEN' "$T/shim.err" || exec_die "no hint about the token"

# SSH: wrong pinned key, unknown client key, nothing listening.
cp "$T/state/worker.json" "$T/worker.good"
ssh-keygen -q -t ed25519 -N '' -f "$T/other" -C other
python3 - "$T" <<'PY'
import json, sys
t = sys.argv[1]
w = json.load(open(t + "/worker.good"))
w["host_key"] = open(t + "/other.pub").read().strip()
json.dump(w, open(t + "/state/worker.json", "w"))
PY
expect both local 0 2000 "host key mismatch"
expect remote none 243 2000 "host key mismatch"
grep -q "host key mismatch" "$T/shim.err" || exec_die "no host key line"
cp "$T/worker.good" "$T/state/worker.json"
CLUSTERPLEX_SSH_KEY=$T/other expect remote none 243 2000 "key refused"
# A known_hosts file must accept the worker as well as the pinned key.
echo "[127.0.0.1]:$SSH_PORT $(cat "$T/sshd/host_key.pub")" >"$T/kh.good"
echo "[127.0.0.1]:$SSH_PORT $(cat "$T/other.pub")" >"$T/kh.bad"
CLUSTERPLEX_KNOWN_HOSTS=$T/kh.good expect remote remote 0 2000 "known_hosts agrees"
CLUSTERPLEX_KNOWN_HOSTS=$T/kh.bad expect remote none 243 2000 "known_hosts disagrees"
sed "s/\"port\":$SSH_PORT/\"port\":1/" "$T/worker.good" >"$T/state/worker.json"
expect both local 0 2000 "sshd unreachable"
expect remote none 242 2000 "sshd unreachable"
cp "$T/worker.good" "$T/state/worker.json"

# A worker that fails before it has the job is replaced once: the
# dispatcher is asked again, excluding it.
python3 - "$T" "$SSH_PORT" <<'PY'
import json, sys
t, port = sys.argv[1], sys.argv[2]
good = json.load(open(t + "/worker.good"))
bad = dict(good, name="w0", port=1)
json.dump([bad, good], open(t + "/state/worker.json", "w"))
PY
: >"$T/state/ends.log"
expect remote remote 0 2000 "first worker unreachable, second fine"
python3 - "$T/state" <<'PY' || exec_die "retry: placements or job ends"
import json, sys
d = sys.argv[1]
p = [json.loads(l) for l in open(d + "/placements.log")][-2:]
assert p[0]["exclude"] == [] and p[1]["exclude"] == ["w0"], p
e = [json.loads(l) for l in open(d + "/ends.log")]
assert [x["outcome"] for x in e] == ["worker-error", "ok"], e
assert e[0]["exit"] == 242 and e[0]["job"] != e[1]["job"], e
PY
cp "$T/worker.good" "$T/state/worker.json"

# The agent refuses: no transcoder there, a cwd that escapes.
cp "$T/agent.env" "$T/agent.good"
sed -i 's/^TRANSCODER_NAME=.*/TRANSCODER_NAME=missing/' "$T/agent.env"
expect both local 0 2000 "worker lacks its transcoder"
expect remote none 244 2000 "worker lacks its transcoder"
cp "$T/agent.good" "$T/agent.env"
mkdir -p "$T/outside"
ln -s "$T/outside" "$W.esc"
S0=$S W0=$W
S=$(exec_session fb.esc) W=$W.esc
expect remote none 244 2000 "cwd escapes the worker's folder"
[ -z "$(ls "$T/outside")" ] || exec_die "something was written outside"
S=$S0 W=$W0

# An argv too large for one frame (ARG_MAX allows 2 MB) stays local.
big=$(head -c 100000 /dev/zero | tr '\0' x)
set +e
out=$(cd "$S" && TRANSCODE_OPERATING_MODE=both "$SHIM" where $(for i in $(seq 12); do
	echo "$big"; done) 2>>"$T/shim.err")
RC=$?
set -e
exec_expect_rc 0 "huge argv (both)"
[ "$out" = "$S" ] || exec_die "huge argv did not run locally: $out"
exec_log "an argv of 1.2 MB: both -> local"

# Configuration errors: one line, exit 78, before anything else.
for bad in TRANSCODE_OPERATING_MODE=hybrid PMS_PORT=0 CLUSTERPLEX_POOL=maybe \
	'WORKER=x TRANSCODER_VERBOSE=verbose' CLUSTERPLEX_KEEPALIVE_MS=-5; do
	set +e
	msg=$(cd "$S" && env $bad "$SHIM" where 2>&1 >/dev/null)
	RC=$?
	set -e
	exec_expect_rc 78 "config $bad"
	[ "$(printf '%s\n' "$msg" | wc -l)" = 1 ] || exec_die "config $bad: $msg"
done
exec_log "bad configuration: exit 78 with one line each"

# The local transcoder is missing when the job must run here.
CLUSTERPLEX_LOCAL_TRANSCODER=$T/bin/nothing expect local none 246 1000 \
	"local transcoder missing"

# fuse's route: added before the job runs, removed on fallback.
python3 "$EXEC_TOP/tests/integration/exec_fuse.py" "$T/run/fuse.sock" "$T/state" &
EXEC_PIDS+=($!)
for i in $(seq 100); do [ -S "$T/run/fuse.sock" ] && break; sleep 0.02; done
expect remote remote 0 2000 "with fuse"
python3 - "$T/state/routes.log" <<'PY' || exec_die "ROUTE_ADD content"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
a = r[-1]
assert a["op"] == "ROUTE_ADD" and a["dir"] == "Transcode/Sessions/plex-transcode-fb", a
assert a["worker"]["name"] == "w1" and a["worker"]["host_key"].startswith("ssh-ed25519"), a
assert len(a["job"]) == 32, a
PY
sed -i 's/^TRANSCODER_NAME=.*/TRANSCODER_NAME=missing/' "$T/agent.env"
expect both local 0 2000 "fuse, worker refuses"
tail -n 2 "$T/state/routes.log" | grep -q '"op": "ROUTE_DEL"' ||
	exec_die "no ROUTE_DEL before the local fallback"
cp "$T/agent.good" "$T/agent.env"
echo error >"$T/state/route-mode"
expect both local 0 2000 "fuse refuses the route"
expect remote none 247 2000 "fuse refuses the route"
rm "$T/run/fuse.sock"

# What the dispatcher heard about the jobs it placed.
python3 - "$T/state/ends.log" <<'PY' || exec_die "job end reports"
import json, sys
ends = [json.loads(l) for l in open(sys.argv[1])]
outcomes = {e["outcome"] for e in ends}
# The dispatcher's vocabulary (docs/dispatcher.md), nothing else.
assert outcomes <= {"ok", "failed", "killed", "worker-error"}, outcomes
for want in ("ok", "failed", "worker-error"):
    assert want in outcomes, (want, outcomes)
assert all(isinstance(e["duration_ms"], (int, float)) for e in ends)
assert any(e["outcome"] == "failed" and e["exit"] == 247 for e in ends), ends
PY
exec_log "job ends reported: $(cut -d'"' -f8 "$T/state/ends.log" | sort | uniq -c | tr -s ' \n' ' ')"
exec_log PASS
