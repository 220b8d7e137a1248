#!/bin/bash
# run.sh [SCENARIO...] — the fault-injection suite: a whole ClusterPlex
# cluster (dispatcher, fake PMS, pool, fuse over PMS's transcode folder,
# CPX_WORKERS workers with sshd and agent serve, the stand-in transcoder)
# takes one fault after another while a prober on the PMS host keeps
# using the mount as PMS does. After each fault the same invariants are
# checked and recorded in build/faults/results.tsv:
#
#   shim-exit  the shim's exit status is the documented one, within a bound
#   orphans    no transcoder left on any host, within a bound
#   mid-read   a read through fuse of the lost worker's file fails, never hangs
#   next-job   the next job (same PMS session: affinity points at the faulty
#              worker) runs on a healthy worker, exits 0, segments intact
#   jobs       the dispatcher's job list equals what the workers run, and
#              the faulted job ended with the right outcome
#   mount      no system call on the mount took longer than a bound
#   sessions   after PMS deletes the session folders (through the mount),
#              nothing of them is left on the PMS host or any worker
#
# Scenarios (default: all, in this order): agent-killed sshd-killed
# sshd-down namespace-killed link-cut dispatcher-restart dispatcher-frozen
# serve-killed shim-killed transcoder-crash disk-full.
#
# Environment: CPX_CLUSTER (default relf), CPX_WORKERS (3), FAULTS_KILLS
# (shim kills, 16), FAULTS_SEED (their random moments), BUILD (the
# binaries the cluster runs: build-san for the ASan+UBSan build; default
# build), CPX_FAULTS_XFAIL ("scenario/invariant ..." recorded XFAIL: a
# known defect of another part, see docs/RELIABILITY.md).
# Exit 1 when any invariant failed. Prints a table at the end.
set -u -o pipefail
export CPX_CLUSTER=${CPX_CLUSTER:-relf} CPX_WORKERS=${CPX_WORKERS:-3}
export CPX_MOVIE_SECONDS=12
source "$(dirname "$0")/lib.sh"
CPX_MOVIE=$CPX_MEDIA_DIR/live.mkv
FAULTS_KILLS=${FAULTS_KILLS:-16}
FAULTS_SEED=${FAULTS_SEED:-$RANDOM}

# Bounds, in seconds, from the documented defaults (docs/shim.md,
# docs/fuse.md, docs/dispatcher.md): shim keepalive 2 s and link timeout
# 10 s, agent link timeout 10 s, fuse keepalive 1 s and call deadline 5 s,
# heartbeats every 1 s (the cluster's STAT_CPU_INTERVAL), 3 misses.
B_KILLED=1	# a SIGKILLed shim's transcoder is gone (DESIGN.md)
B_EOF=3		# worker gone with a closed connection: shim exits 245
B_SILENT=12	# worker gone silent: shim exits 245 (link timeout + 2)
B_ORPHAN=12	# a silent link's orphan killed by its agent (link timeout + 2)
B_MOUNT=6	# no call on the mount longer (fuse deadline + 1)
B_JOBS=5	# the job list settles (3 heartbeats + 2)
B_GRACE=18	# a placed job that never started ends (start grace 15 + 3)
B_GONE=15	# session folders gone everywhere after PMS's delete

ALL="agent-killed sshd-killed sshd-down namespace-killed link-cut dispatcher-restart
dispatcher-frozen serve-killed shim-killed transcoder-crash disk-full"

# --- faults -----------------------------------------------------------------------

# place_on I NAME [ENV...]: starts job NAME on worker I (the others drain
# meanwhile) and waits until it runs there; sets W JOBID APID TPID.
place_on() {
	local i=$1 name=$2 where
	shift 2
	pin_to "$i"
	job_start "$name" "$@"
	where=$(job_where "$name" 20)
	unpin
	[ -n "$where" ] || { f_check setup false; return 1; }
	read -r W JOBID APID TPID <<<"$where"
	f_log "job $name ($JOBID) runs on w$W: agent $APID, transcoder $TPID"
}

# bigread_start I NAME: a 64 MiB file in job NAME's session folder on
# worker I, read through the mount on pms at 8 MiB/s (so the fault lands
# mid-read).
bigread_start() {
	local d
	d="$(cluster_host_dir "w$1" transcode)/Transcode/Sessions/${JOB_SESSION[$2]}"
	/usr/bin/python3 "$F_DIR/bigfile.py" make "$d/big.bin" 64 &&
		chown "$CPX_WORKER_USER:" "$d/big.bin"
	rm -f "$(cluster_host_dir pms run)/bigread.json"
	cluster_pms /usr/bin/python3 "$CPX_SRC/tests/faults/bigfile.py" read \
		"/transcode/Transcode/Sessions/${JOB_SESSION[$2]}/big.bin" \
		--out /run/clusterplex/bigread.json --rate 8 --deadline 40 &
	BIGREAD=$!
	sleep 1
}

# bigread_check: the read stopped with an error (not a hang, not wrong
# bytes) within B_MOUNT of the fault, no read() longer than B_MOUNT.
bigread_check() {
	local f
	f="$(cluster_host_dir pms run)/bigread.json"
	timeout 45 tail --pid="$BIGREAD" -f /dev/null
	f_check mid-read /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
after = r["t_error"] - float(sys.argv[2]) if r["t_error"] else None
print("read through fuse: %d MiB checked, then %s %s; longest read() %.2f s" % (
    r["bytes"] >> 20, r["errno"] or ("end of file" if r["ok"] else "?"),
    "%.2f s after the fault" % after if after is not None else "", r["longest"]))
sys.exit(0 if r["errno"] and r["wrong"] is None and after <= float(sys.argv[3])
         and r["longest"] <= float(sys.argv[3]) else 1)' "$f" "$F_T0" "$B_MOUNT"
}

fault_agent_killed() {
	scenario agent-killed "SIGKILL of the job's clusterplex-agent exec on its worker"
	place_on 1 a1 || return
	F_T0=$(now_s)
	kill -KILL "$APID"
	job_expect a1 "exit 245" "$B_EOF"
	f_check orphans f_py procs --wait 1
	job_next a1n "$W" --pms-session "${JOB_PMS[a1]}"
	f_check jobs f_py jobs --wait "$B_JOBS" --job "$JOBID" --outcome worker-error
	pms_delete a1 a1n
	probe_check "$B_MOUNT"
	heal
	sessions_gone "$B_GONE" a1 a1n
}

fault_sshd_killed() {
	scenario sshd-killed "SIGKILL of every sshd on the job's worker (listener and sessions)"
	place_on 2 s1 || return
	F_T0=$(now_s)
	kill -KILL $(worker_procs "$W" sshd)
	job_expect s1 "exit 245" "$B_EOF"
	f_check orphans f_py procs --wait 1
	job_next s1n "$W" --pms-session "${JOB_PMS[s1]}"
	f_check jobs f_py jobs --wait "$B_JOBS" --job "$JOBID" --outcome worker-error
	pms_delete s1 s1n
	probe_check "$B_MOUNT"
	heal
	sessions_gone "$B_GONE" s1 s1n
}

fault_sshd_down() {
	scenario sshd-down "sshd of an idle worker dies, agent serve keeps heartbeating; its PMS session's next job"
	local got
	pin_to 1
	job_start h1 --fixture "$CPX_REPO/tests/fixtures/dash-remux.json"
	got=$(job_wait h1 30)
	unpin
	[ "${got% *}" = "exit 0" ] || { f_check setup false; return; }
	F_T0=$(now_s)
	kill -KILL $(worker_procs 1 sshd)
	# Session affinity sends the next job to w1, which is still listed.
	job_next h1n 1 --pms-session "${JOB_PMS[h1]}"
	job_next h2n 1
	f_check jobs f_py jobs --wait "$B_JOBS"
	f_check orphans f_py procs
	pms_delete h1 h1n h2n
	probe_check "$B_MOUNT"
	heal
	sessions_gone "$B_GONE" h1 h1n h2n
}

fault_namespace_killed() {
	scenario namespace-killed "every process of the job's worker SIGKILLed (a crashed container), mid-read"
	place_on 3 n1 || return
	bigread_start "$W" n1
	F_T0=$(now_s)
	kill -KILL $(ip netns pids "$CPX_CLUSTER-w$W")
	job_expect n1 "exit 245" "$B_EOF"
	bigread_check
	f_check orphans f_py procs --wait 1
	job_next n1n "$W" --pms-session "${JOB_PMS[n1]}"
	f_check jobs f_py jobs --wait "$B_JOBS" --job "$JOBID" --outcome worker-error,lost
	pms_delete n1 n1n
	probe_check "$B_MOUNT"
	heal
	sessions_gone "$B_GONE" n1 n1n
}

fault_link_cut() {
	scenario link-cut "the job's worker's link down mid-job and mid-read, restored later"
	place_on 1 l1 || return
	bigread_start "$W" l1
	F_T0=$(now_s)
	ip -n "$CPX_CLUSTER-w$W" link set eth0 down
	bigread_check
	job_expect l1 "exit 245" "$B_SILENT"
	f_check orphans f_py procs --wait "$(awk -v b="$B_ORPHAN" -v t="$(t_since "$F_T0")" 'BEGIN { print (b > t ? b - t : 0) }')"
	job_next l1n "$W" --pms-session "${JOB_PMS[l1]}"
	f_check jobs f_py jobs --wait "$B_JOBS" --job "$JOBID" --outcome worker-error,lost
	pms_delete l1 l1n
	probe_check "$B_MOUNT"
	heal
	sessions_gone "$B_GONE" l1 l1n
}

fault_dispatcher_restart() {
	scenario dispatcher-restart "SIGKILL of the dispatcher mid-job; jobs while it is down; restart"
	place_on 2 d1 || return
	F_T0=$(now_s)
	cluster_stop_svc pms dispatcher 0 >/dev/null 2>&1
	job_start d2
	job_expect d2 "exit 240" 2
	job_start d3 --fixture "$CPX_REPO/tests/fixtures/dash-remux.json" TRANSCODE_OPERATING_MODE=both
	got=$(job_wait d3 30)
	f_assert local-run "[ '${got% *}' = 'exit 0' ] && [ -e '$(cluster_host_dir pms transcode)/Transcode/Sessions/${JOB_SESSION[d3]}/init-stream0.m4s' ]" \
		"dispatcher down, mode both: ${got% *}, ran on the PMS host"
	cluster_start_dispatcher || f_check setup false
	f_check jobs-back f_py jobs --wait 3
	F_T0=$(now_s)
	job_expect d1 "exit 0" 20
	f_check jobs f_py jobs --wait "$B_JOBS" --job "$JOBID" --outcome ok
	f_check orphans f_py procs
	job_next d1n none --pms-session "${JOB_PMS[d1]}"
	pms_delete d1 d2 d3 d1n
	probe_check "$B_MOUNT"
	sessions_gone "$B_GONE" d1 d2 d3 d1n
}

fault_dispatcher_frozen() {
	scenario dispatcher-frozen "the dispatcher stopped (SIGSTOP): accepts, never answers"
	local pid
	pid=$(cluster_svc_pid pms dispatcher)
	kill -STOP "$pid"
	F_T0=$(now_s)
	job_start f1
	job_expect f1 "exit 240" 2
	job_start f2 --fixture "$CPX_REPO/tests/fixtures/dash-remux.json" TRANSCODE_OPERATING_MODE=both
	got=$(job_wait f2 30)
	f_assert local-run "[ '${got% *}' = 'exit 0' ]" "dispatcher frozen, mode both: ${got% *} after ${got##* } s"
	kill -CONT "$pid"
	# Placements it made for shims that gave up wait for the start grace.
	f_check jobs f_py jobs --wait "$B_GRACE"
	f_check orphans f_py procs
	job_next f1n none --pms-session "${JOB_PMS[f1]}"
	pms_delete f1 f2 f1n
	probe_check "$B_MOUNT"
	sessions_gone "$B_GONE" f1 f2 f1n
}

fault_serve_killed() {
	scenario serve-killed "SIGKILL of agent serve mid-job (the worker leaves the registry; its job runs on)"
	place_on 3 v1 || return
	F_T0=$(now_s)
	kill -KILL "$(cluster_svc_pid "w$W" agent)"
	sleep 4	# three missed heartbeats: the dispatcher drops the worker
	job_next v1n "$W" --pms-session "${JOB_PMS[v1]}"
	heal
	job_expect v1 "exit 0" 20
	f_check jobs f_py jobs --wait "$B_JOBS" --job "$JOBID" --outcome ok
	f_check orphans f_py procs
	pms_delete v1 v1n
	probe_check "$B_MOUNT"
	sessions_gone "$B_GONE" v1 v1n
}

fault_shim_killed() {
	scenario shim-killed "SIGKILL of the shim at $FAULTS_KILLS random moments (seed $FAULTS_SEED)"
	local k delay pid names=() worst=0 took started=0
	RANDOM=$FAULTS_SEED
	for ((k = 1; k <= FAULTS_KILLS; k++)); do
		# Half in the first 150 ms (placement, route, SSH), half later.
		if ((k % 2)); then delay=$((RANDOM % 150)); else delay=$((150 + RANDOM % 1850)); fi
		job_start "k$k"
		names+=("k$k")
		pid=
		for _ in $(seq 200); do
			pid=$(job_shim_pid "k$k") && break
			sleep 0.01
		done
		[ -n "$pid" ] || { f_check setup false; continue; }
		sleep "$(awk -v d="$delay" 'BEGIN { printf "%.3f", d / 1000 }')"
		grep -qs "/${JOB_SESSION[k$k]}\"" "$CPX_STATE"/hosts/w*/run/jobs/*.json &&
			started=$((started + 1))
		kill -KILL "$pid"
		F_T0=$(now_s)
		took=$(f_py procs --wait 3 | sed -n 's/.* after \([0-9.]*\) s$/\1/p')
		worst=$(awk -v a="$worst" -v b="${took:-99}" 'BEGIN { print (b > a ? b : a) }')
		wait "${JOB_BG[k$k]}" 2>/dev/null
	done
	f_assert orphans "awk -v w=$worst -v b=$B_KILLED 'BEGIN { exit !(w <= b) }'" \
		"$FAULTS_KILLS shims SIGKILLed ($started with their transcoder running): every worker clean within $worst s (bound $B_KILLED s)"
	job_next k0n none
	f_check jobs f_py jobs --wait "$B_GRACE"
	pms_delete "${names[@]}" k0n
	probe_check "$B_MOUNT"
	sessions_gone "$B_GONE" "${names[@]}" k0n
}

fault_transcoder_crash() {
	scenario transcoder-crash "the worker's transcoder crashes: ffmpeg SIGSEGV, then the wrapper SIGABRT"
	local ff
	place_on 1 c1 || return
	ff=$(ps -o pid= --ppid "$TPID" | tr -d ' ')
	F_T0=$(now_s)
	kill -SEGV "$ff"
	job_expect c1 "signal 11" 2
	local j1=$JOBID
	place_on 1 c2 || return
	F_T0=$(now_s)
	kill -ABRT "$TPID"
	job_expect c2 "signal 6" 2
	f_check orphans f_py procs --wait 1
	f_check jobs f_py jobs --wait "$B_JOBS" --job "$j1" --outcome killed
	job_next c1n none --pms-session "${JOB_PMS[c1]}"
	pms_delete c1 c2 c1n
	probe_check "$B_MOUNT"
	sessions_gone "$B_GONE" c1 c2 c1n
}

fault_disk_full() {
	scenario disk-full "the worker's transcode folder fills up mid-job; the next job must avoid it"
	local i=2 code env
	env="$(cluster_host_dir "w$i" etc)/agent.env"
	# The job starts with 6 MiB free; below 2 MiB the worker refuses jobs.
	echo CLUSTERPLEX_MIN_FREE_MB=2 >>"$env"
	cluster_worker "$i" mkdir -p /transcode/Transcode/Sessions
	cluster_worker "$i" mount -t tmpfs -o "size=6m,mode=0755,uid=$(id -u "$CPX_WORKER_USER"),gid=$(id -g "$CPX_WORKER_USER")" \
		"$CPX_CLUSTER-full" /transcode/Transcode/Sessions
	place_on "$i" u1 || return
	F_T0=$(now_s)
	cluster_worker "$i" dd if=/dev/zero of=/transcode/Transcode/Sessions/filler bs=64k status=none 2>/dev/null
	got=$(job_wait u1 30)
	code=$(grep -ho "job $JOBID: exit code [0-9]*" "$(cluster_log pms pool)" | awk '{print $NF}' | tail -n 1)
	# ffmpeg writes empty segments and exits 0 on a full disk: whatever it
	# exits with, the shim must exit the same.
	f_assert shim-exit "[ '${got% *}' = 'exit ${code:-none}' ]" \
		"disk full mid-job: shim ${got% *}, the worker's transcoder exited ${code:-?} (passed through) after ${got##* } s"
	f_check orphans f_py procs --wait 1
	job_next u1n "$i" --pms-session "${JOB_PMS[u1]}"
	f_check jobs f_py jobs --wait "$B_JOBS" --job "$JOBID" --outcome ok,failed
	pms_delete u1 u1n
	probe_check "$B_MOUNT"
	sessions_gone "$B_GONE" u1 u1n
	sed -i '/^CLUSTERPLEX_MIN_FREE_MB=2$/d' "$env"
	cluster_worker "$i" rm -f /transcode/Transcode/Sessions/filler
	heal
}

# --- the run ------------------------------------------------------------------------

# The last word on the whole run: nothing left, nothing leaked.
final_checks() {
	scenario final "after every fault: the cluster as a whole"
	F_T_START=$F_T_PROBE
	f_check orphans f_py procs
	f_check jobs f_py jobs --wait "$B_JOBS"
	sessions_gone 0 "${!JOB_SESSION[@]}"
	local logs leaks
	logs=$(ls "$CPX_STATE"/logs/*.log "$F_OUT"/jobs/*.log 2>/dev/null)
	leaks=$(grep -lF -e "$CPX_TOKEN" -e "local-00000000-1111-2222-3333-444444444444" $logs 2>/dev/null)
	f_assert tokens "[ -z '$leaks' ]" "CLUSTERPLEX_TOKEN and X_PLEX_TOKEN in none of $(wc -w <<<"$logs") logs${leaks:+; found in: $leaks}"
	leaks=$(grep -lE 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' $logs 2>/dev/null)
	f_assert sanitizers "[ -z '$leaks' ]" "no sanitizer report in the logs (build: $CPX_BUILD)${leaks:+; found in: $leaks}"
	probe_check "$B_MOUNT"
}

summary() {
	echo
	echo "== fault suite: $(cut -f1 "$F_RESULTS" | sort -u | wc -l) scenarios, $(wc -l <"$F_RESULTS") checks in $((SECONDS - F_START)) s"
	/usr/bin/python3 - "$F_RESULTS" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
scen = list(dict.fromkeys(r[0] for r in rows))
invs = list(dict.fromkeys(r[1] for r in rows))
cell = {}
for s, i, st, _ in rows:
    prev = cell.get((s, i))
    cell[(s, i)] = st if prev in (None, "PASS", "XPASS") else prev
w = max(len(s) for s in scen)
print(" " * w + " " + " ".join("%-9s" % i[:9] for i in invs))
for s in scen:
    print(s.ljust(w) + " " + " ".join("%-9s" % cell.get((s, i), "-") for i in invs))
n = {k: sum(1 for r in rows if r[2] == k) for k in ("PASS", "FAIL", "XFAIL", "XPASS")}
print("%(PASS)d passed, %(FAIL)d failed, %(XFAIL)d known defects (XFAIL), "
      "%(XPASS)d known defects no longer seen (XPASS)" % n)
EOF
}

main() {
	local s
	mkdir -p "$F_OUT/jobs"
	: >"$F_RESULTS"
	F_START=$SECONDS
	F_T_RUN=$(now_s)
	t_require_parts clusterplex-dispatcher clusterplex-agent clusterplex-shim clusterplex-fuse
	t_movie
	CPX_MOVIE=$CPX_MEDIA_DIR/movie.mkv CPX_MOVIE_SECONDS=20 t_movie
	cluster_trap
	CPX_QUIET=1 cluster_up || t_fail "cluster up"
	cluster_start_all || t_fail "the ClusterPlex services did not all start"
	probe_start || t_fail "the mount prober did not start"
	sleep 0.5
	F_T_PROBE=$(now_s)
	f_log "cluster $CPX_CLUSTER: $CPX_WORKERS workers, build $CPX_BUILD, seed $FAULTS_SEED"
	for s in ${*:-$ALL}; do
		"fault_${s//-/_}"
		heal
	done
	final_checks
	summary
	[ "$F_FAILED" = 0 ]
}

main "$@"
