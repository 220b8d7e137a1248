# shellcheck shell=bash
# lib.sh — sourced by tests/faults/run.sh: jobs played through ClusterPlex
# on the test cluster, the faults done to it, the repairs, and the record
# of every invariant checked (build/faults/results.tsv).

# shellcheck source=../integration/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../integration" && pwd)/lib.sh"

F_DIR=$CPX_REPO/tests/faults
F_OUT=${F_OUT:-$CPX_REPO/build/faults}
F_CHECK=$F_DIR/check.py
F_RESULTS=$F_OUT/results.tsv
F_SCENARIO=
F_FAILED=0
F_T0=0
# Checks that fail because of a defect reported to another part's owner:
# "scenario/invariant" words, recorded XFAIL instead of FAIL; one that
# passes is recorded XPASS (take it off the list). docs/RELIABILITY.md,
# "Known defects", says what each is. None is known now.
F_XFAIL=${CPX_FAULTS_XFAIL-}
declare -A JOB_SESSION JOB_BG JOB_PMS

f_log() { echo "[$(date +%T.%3N)] $*"; }

# f_check INVARIANT CMD...: runs one invariant check and records its line.
f_check() {
	local inv=$1 out rc=0 st
	shift
	out=$("$@" 2>&1) || rc=$?
	out=$(tr '\n' ' ' <<<"$out" | sed 's/ *$//')
	if [[ " $F_XFAIL " = *" $F_SCENARIO/$inv "* ]]; then
		st=XFAIL
		[ "$rc" != 0 ] || st=XPASS
	elif [ "$rc" = 0 ]; then
		st=PASS
	else
		st=FAIL
		F_FAILED=$((F_FAILED + 1))
	fi
	printf '%s\t%s\t%s\t%s\n' "$F_SCENARIO" "$inv" "$st" "$out" >>"$F_RESULTS"
	printf '  %-5s %-10s %s\n' "$st" "$inv" "$out"
	[ "$rc" = 0 ]
}

# f_assert INVARIANT CONDITION-TEXT MESSAGE: records a check done in bash.
f_assert() {
	local inv=$1 cond=$2 msg=$3
	if eval "$cond"; then
		f_check "$inv" echo "$msg"
	else
		f_check "$inv" sh -c 'echo "$1"; exit 1' sh "$msg"
	fi
}

f_py() { CPX_CLUSTER=$CPX_CLUSTER CPX_STATE=$CPX_STATE /usr/bin/python3 "$F_CHECK" "$@"; }

now_s() { date +%s.%3N; }

# --- jobs ------------------------------------------------------------------------

# fixture_for FIXTURE PMS_SESSION: the fixture with its PMS session id
# replaced, without FFMPEG_EXTERNAL_LIBS: PMS's codec folder does not
# exist on the test cluster's PMS host, and codec sets have their own test
# (exec_codecs.sh).
fixture_for() {
	/usr/bin/python3 -c '
import json, sys
fx = json.loads(open(sys.argv[1]).read().replace("whrtmao0hvjo0120h21kz6cb", sys.argv[2]))
fx["env"].pop("FFMPEG_EXTERNAL_LIBS", None)
print(json.dumps(fx, indent=1))' "$1" "$2"
}

# job_start NAME [--fixture F] [--pms-session ID] [NAME=VALUE...]: plays a
# fixture through the shim on pms, in the background, as PMS starts its
# transcoder. The PMS session id in the callback URLs is ID (default: one
# of its own, so session affinity does not pin every job to one worker);
# NAME=VALUE pairs are added to PMS's environment.
job_start() {
	local name=$1 fx=$F_DIR/dash-live.json pms=rel$RANDOM$RANDOM run
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--fixture) fx=$2; shift 2 ;;
		--pms-session) pms=$2; shift 2 ;;
		*) break ;;
		esac
	done
	run=$(cluster_host_dir pms run)
	JOB_SESSION[$name]=plex-transcode-$name-$RANDOM$RANDOM
	JOB_PMS[$name]=$pms
	fixture_for "$fx" "$pms" >"$run/fx-$name.json"
	{ cat "$(cluster_host_dir pms etc)/pms.env"; printf '%s\n' "$@"; } >"$run/env-$name"
	rm -f "$run/play-$name.json" "$run/pid-$name"
	cluster_pms /usr/bin/python3 "$CPX_SRC/tests/standin/play-fixture" \
		"/run/clusterplex/fx-$name.json" \
		--transcoder "$CPX_SRC/$CPX_BUILD/clusterplex-shim" \
		--media "/media/${CPX_MOVIE##*/}" --session "${JOB_SESSION[$name]}" \
		--env-file "/run/clusterplex/env-$name" --timeout 120 \
		--result "/run/clusterplex/play-$name.json" \
		--pidfile "/run/clusterplex/pid-$name" \
		>"$F_OUT/jobs/$name.log" 2>&1 &
	JOB_BG[$name]=$!
}

job_session() { echo "${JOB_SESSION[$1]}"; }

# The shim's pid (play-fixture's child), once it runs.
job_shim_pid() {
	local f
	f="$(cluster_host_dir pms run)/pid-$1"
	[ -s "$f" ] && cat "$f"
}

# job_where NAME SECONDS: waits until the job's transcoder runs on a worker
# and has written its first segments; prints "INDEX JOBID AGENT_PID PID".
job_where() {
	local name=$1 secs=$2 end=$((SECONDS + $2)) w
	while [ $SECONDS -lt "$end" ]; do
		if w=$(f_py where "${JOB_SESSION[$name]}"); then
			[ -e "$(worker_path "${w%% *}" "Transcode/Sessions/${JOB_SESSION[$name]}/init-stream0.m4s")" ] &&
				{ echo "$w"; return 0; }
		fi
		[ -e "$(cluster_host_dir pms run)/play-$name.json" ] && break
		sleep 0.1
	done
	echo "job $name did not start on a worker within $secs s" >&2
	tail -n 5 "$F_OUT/jobs/$name.log" >&2
	return 1
}

# job_wait NAME SECONDS: waits for the job's end; prints "exit N" or
# "signal N" and how long after $F_T0 it came, e.g. "exit 245 3.41".
job_wait() {
	local name=$1 end=$((SECONDS + $2)) f
	f="$(cluster_host_dir pms run)/play-$name.json"
	while [ ! -s "$f" ]; do
		[ $SECONDS -lt "$end" ] || { echo "running after $2 s"; return 1; }
		sleep 0.05
	done
	wait "${JOB_BG[$name]}" 2>/dev/null || true
	/usr/bin/python3 -c '
import json, os, sys
r = json.load(open(sys.argv[1]))
took = os.path.getmtime(sys.argv[1]) - float(sys.argv[2])
kind = "signal" if r["signal"] is not None else "exit"
print(kind, r["signal"] if r["signal"] is not None else r["exit"], "%.2f" % took)
' "$f" "$F_T0"
}

# job_expect NAME "exit 245|signal 9" BOUND: the shim's end as documented,
# within BOUND seconds of the fault ($F_T0).
job_expect() {
	local name=$1 want=$2 bound=$3 got
	got=$(job_wait "$name" $((${bound%.*} + 30))) || got="none: $got"
	set -- $got
	local took=${3:-999}
	f_assert shim-exit "[[ \"$1 $2\" =~ ^($want)\$ ]] && awk -v t=$took -v b=$bound 'BEGIN{exit !(t <= b)}'" \
		"shim: $1 $2 after ${took} s (want $want within $bound s)"
}

# job_next NAME BAD [--pms-session ID]: the next job, started right after a
# fault, must run on a healthy worker (not worker BAD), exit 0 and give
# PMS every segment whole and intact.
job_next() {
	local name=$1 bad=$2 got w n
	shift 2
	job_start "$name" --fixture "$CPX_REPO/tests/fixtures/dash-remux.json" "$@"
	got=$(job_wait "$name" 40) || got="none $got"
	w=$(f_py ran_on "${JOB_SESSION[$name]}")
	n=$(f_py segments "${JOB_SESSION[$name]}" "$w" 2>&1) && n="ok $n" || n="bad $n"
	f_assert next-job "[ \"${got% *}\" = 'exit 0' ] && [ \"$w\" != none ] && [ \"$w\" != \"$bad\" ] && [ \"${n%% *}\" = ok ]" \
		"next job: ${got% *} on w$w (faulty: w$bad), ${n#* }"
}

# pms_delete NAME...: PMS removes the session folders through the mount
# when their sessions end (bounded: a blocked rmdir is a failure too).
pms_delete() {
	local n t0 rc=0
	t0=$(now_s)
	for n in "$@"; do
		cluster_pms timeout 20 rm -rf "/transcode/Transcode/Sessions/${JOB_SESSION[$n]}" || rc=$?
	done
	f_assert pms-delete "[ $rc = 0 ]" "PMS's rm -rf of $# session folder(s): status $rc in $(t_since "$t0") s"
}

# sessions_gone WAIT NAME...: nothing of those session folders anywhere.
sessions_gone() {
	local wait=$1 n s=()
	shift
	for n in "$@"; do
		s+=("${JOB_SESSION[$n]}")
	done
	f_check sessions f_py sessions --wait "$wait" "${s[@]}"
}

# --- the cluster's health ---------------------------------------------------------

api_post() {
	cluster_pms curl -fsS -m 3 -o /dev/null -X POST \
		-H "Authorization: Bearer $CPX_TOKEN" -H 'Content-Type: application/json' \
		-d "$2" "http://127.0.0.1:$CPX_DISPATCHER_PORT$1"
}

# pin_to I: only worker I takes new jobs (the others drain); unpin: all do.
pin_to() {
	local i
	for ((i = 1; i <= CPX_WORKERS; i++)); do
		[ "$i" = "$1" ] && continue
		api_post "/api/v1/workers/w$i/drain" '{"drain":true}'
	done
}

unpin() {
	local i
	for ((i = 1; i <= CPX_WORKERS; i++)); do
		api_post "/api/v1/workers/w$i/drain" '{"drain":false}' 2>/dev/null || true
	done
}

# worker_path I REL: REL below worker I's /transcode as its own processes
# see it (a mount made inside the worker shows), else its host folder.
worker_path() {
	local p
	p=$(ip netns pids "$CPX_CLUSTER-w$1" 2>/dev/null | head -n 1)
	if [ -n "$p" ]; then
		echo "/proc/$p/root/transcode/$2"
	else
		echo "$(cluster_host_dir "w$1" transcode)/$2"
	fi
}

# Processes of worker I whose executable is EXE (basename), by pid.
worker_procs() {
	local p
	for p in $(ip netns pids "$CPX_CLUSTER-w$1"); do
		[ "$(basename "$(readlink "/proc/$p/exe" 2>/dev/null)")" = "$2" ] && echo "$p"
	done
	return 0
}

# Every worker back: links up, nothing stopped, no small disk, sshd and
# agent serve running, the dispatcher running and listing every worker.
heal() {
	local i d
	for ((i = 1; i <= CPX_WORKERS; i++)); do
		ip -n "$CPX_CLUSTER-w$i" link set eth0 up 2>/dev/null
		for d in $(ip netns pids "$CPX_CLUSTER-w$i"); do
			kill -CONT "$d" 2>/dev/null
		done
		if cluster_worker "$i" findmnt -n /transcode/Transcode/Sessions >/dev/null 2>&1; then
			cluster_worker "$i" umount -l /transcode/Transcode/Sessions
		fi
		cluster_svc_alive "w$i" sshd || cluster__start_sshd "w$i" ||
			f_log "heal: sshd of w$i does not start"
		cluster_svc_alive "w$i" agent || cluster_start_agent "$i" ||
			f_log "heal: agent serve of w$i does not start"
	done
	cluster_svc_alive pms dispatcher || cluster_start_dispatcher ||
		f_log "heal: the dispatcher does not start"
	unpin
	cluster_wait_workers "$CPX_WORKERS" 20 || f_log "heal: workers missing"
}

# --- the mount prober ---------------------------------------------------------------

probe_start() {
	rm -f "$(cluster_host_dir pms run)/probe.jsonl"
	cluster_spawn pms probe -- /usr/bin/python3 "$CPX_SRC/tests/faults/probe.py" \
		--root /transcode/Transcode/Sessions --out /run/clusterplex/probe.jsonl
}

# probe_check BOUND: the longest system call on the mount since $F_T_START.
probe_check() {
	sleep 0.6	# the prober's next report covers the end of the window
	f_check mount f_py probe --file "$(cluster_host_dir pms run)/probe.jsonl" \
		--from "$F_T_START" --to "$(now_s)" --bound "$1"
}

# --- scenarios ------------------------------------------------------------------------

# scenario NAME TEXT: opens a scenario; its checks are recorded under NAME.
scenario() {
	F_SCENARIO=$1
	F_T_START=$(now_s)
	echo
	f_log "== $1: $2"
}
