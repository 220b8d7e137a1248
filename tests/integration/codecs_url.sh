#!/bin/bash
# codecs_url.sh — a worker of another CPU downloads its codec set
# (CLUSTERPLEX_CODEC_SOURCES=pms,url), on the test cluster (real
# dispatcher, agent serve, pool). w2 says it is aarch64
# (CLUSTERPLEX_CODEC_CPU); a stand-in for downloads.plex.tv
# (codecs_http.py) runs on the pms host's cluster address and serves
# aarch64 files for the versions PMS has for x86_64. w1 drains, so jobs go
# to w2. Checks: 6 concurrent jobs download each file once, all run with
# FFMPEG_EXTERNAL_LIBS naming the download, whose files equal the served
# ones and whose manifest records them; the URL's token never shows; a
# 404, a truncated file, a file over CLUSTERPLEX_CODEC_MAX_MB (announced
# or not), the deadline and a SIGKILLed shim each refuse the job (or end
# it) with one line naming the URL, and leave no partial set, no
# temporary folder and no curl behind; over HTTPS, an untrusted
# certificate and a redirect to http are refused, and a CA named by
# CURL_CA_BUNDLE is trusted; doctor says which source each worker uses.
set -eu -o pipefail
export CPX_CLUSTER=${CPX_CLUSTER:-cxu} CPX_WORKERS=${CPX_WORKERS:-2}
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/exec_codecs_lib.sh"

t_require_parts clusterplex-dispatcher clusterplex-agent clusterplex-shim
cluster_trap
CPX_QUIET=1 cluster_up || t_fail "cluster up"
PORT=18089
URL="http://$(cluster_pms_ip):$PORT"
TOKEN=sekrit-0123456789abcdef
W2ENV="$(cluster_host_dir w2 etc)/agent.env"
CACHE="$(cluster_host_dir w2 run)/codecs"
codecs_setup CLUSTERPLEX_MAX_TASKS=8
printf '%s\n' CLUSTERPLEX_CODEC_CPU=aarch64 CLUSTERPLEX_CODEC_SOURCES=pms,url \
	"CLUSTERPLEX_CODEC_URL=$URL/ok/{version}/{arch}/{file}?X-Plex-Token=$TOKEN" >>"$W2ENV"
cluster_start_dispatcher && cluster_start_fake_pms && cluster_start_agents &&
	cluster_wait_workers "$CPX_WORKERS" 15 && cluster_start_pool ||
	t_fail "the ClusterPlex services did not start"
O=$(mktemp -d /tmp/cxu-out.XXXXXX)
CPX_EXIT_HOOK="rm -rf $O"

# Plex's side: aarch64 files per version, as downloads.plex.tv lays them out.
PLEX="$(cluster_host_dir pms etc)/plex"
plex_files() { # VERSION SIZE_OF_libhevc_decoder.so_IN_KB
	local d="$PLEX/$1/linux-aarch64-standard"
	mkdir -p "$d"
	head -c $(($2 * 1024)) /dev/urandom >"$d/libhevc_decoder.so"
	head -c 300000 /dev/urandom >"$d/libh264_decoder.so"
	printf 'arm aac' >"$d/libaac_encoder.so"
}
# PMS's side: its x86_64 set of VERSION, whose names w2 asks for.
pms_set() {
	local p="$(cluster_host_dir pms etc)/Application Support/Codecs"
	[ -d "$p/$1-linux-x86_64-standard" ] ||
		cp -a "$p/$CODEC_SET" "$p/$1-linux-x86_64-standard"
	echo "FFMPEG_EXTERNAL_LIBS=$(printf '%s' "$CODEC_PARENT/$1-linux-x86_64-standard/" | sed 's/ /\\ /g')"
}
set_env() { # NAME VALUE: w2's agent.env, read by every job's agent
	sed -i "/^$1=/d" "$W2ENV"
	printf '%s=%s\n' "$1" "$2" >>"$W2ENV"
}
curls() { codecs_procs 2 "curl -q --silent"; }
agents() { codecs_procs 2 "clusterplex-agent exec"; }
# Nothing of a fetch that failed: no set, no temporary folder, no curl, and
# the job's agent ends (within 2 s).
no_leftovers() { # VERSION WHAT
	local set=$1-linux-aarch64-standard i
	for i in $(seq 100); do
		[ -z "$(agents)" ] && break
		sleep 0.02
	done
	[ -z "$(agents)" ] || t_fail "$2: the job's agent did not end"
	[ ! -e "$CACHE/$set" ] || t_fail "$2: a set was put in place"
	! ls -d "$CACHE"/.tmp-* >/dev/null 2>&1 || t_fail "$2: a temporary folder is left: $(ls -a "$CACHE")"
	[ -z "$(curls)" ] || t_fail "$2: curl still runs: $(curls)"
}
# A job that must be refused: exit 244 and one line naming the URL.
refused() { # SESSION VERSION WHAT PATTERN
	local rc=0
	codecs_shim "$1" "$(pms_set "$2")" -- env >/dev/null 2>"$O/err.$1" || rc=$?
	[ "$rc" = 244 ] || { tail -n 3 "$O/err.$1"; t_fail "$3: exit $rc, not 244"; }
	grep -q -- "$4" "$O/err.$1" || { tail -n 3 "$O/err.$1"; t_fail "$3: no line like '$4'"; }
	no_leftovers "$2" "$3"
	echo "   $(grep -m1 -o -- "codec set [^ ]* from .*" "$O/err.$1")"
}

cluster_pms /usr/bin/python3 "$CPX_SRC/tests/integration/codecs_http.py" "$(cluster_pms_ip)" \
	"$PORT" /etc/clusterplex/plex /run/clusterplex/http.log >/dev/null 2>&1 &
HTTPLOG="$(cluster_host_dir pms run)/http.log"
cluster_wait_tcp w2 "$(cluster_pms_ip)" "$PORT" 10 || t_fail "the download server did not start"

auth="Authorization: Bearer $(sed -n 's/^token=//p' "$(cluster_state)/cluster.env")"
cluster_pms curl -fsS -m 2 -o /dev/null -H "$auth" -H 'Content-Type: application/json' \
	-d '{"drain":true}' "http://127.0.0.1:$CPX_DISPATCHER_PORT/api/v1/workers/w1/drain"

# 1. Six concurrent jobs: one download, every job on it.
V1=${CODEC_SET%-linux-*}
SET1=$V1-linux-aarch64-standard
plex_files "$V1" 6000
t0=$(t_now)
for i in $(seq 6); do
	codecs_shim "u$i" "$CODEC_ENV" -- env >"$O/out.$i" 2>"$O/err.$i" &
done
fails=0
for i in $(seq 6); do
	wait -n || fails=$((fails + 1))
done
took=$(t_since "$t0")
[ "$fails" = 0 ] || { tail -n 3 "$O"/err.*; t_fail "$fails of 6 concurrent jobs failed"; }
for i in $(seq 6); do
	grep -qxF "FFMPEG_EXTERNAL_LIBS=/run/clusterplex/codecs/$SET1/" "$O/out.$i" ||
		t_fail "job $i: $(grep FFMPEG_EXTERNAL_LIBS "$O/out.$i" || echo no FFMPEG_EXTERNAL_LIBS)"
	[ "$(codecs_worker_of "u$i")" = 2 ] || t_fail "job $i did not run on w2"
done
for f in libaac_encoder.so libh264_decoder.so libhevc_decoder.so; do
	n=$(grep -cxF "ok $V1/linux-aarch64-standard/$f" "$HTTPLOG" || true)
	[ "$n" = 1 ] || t_fail "$f was requested $n times"
	cmp -s "$PLEX/$V1/linux-aarch64-standard/$f" "$CACHE/$SET1/$f" || t_fail "$f differs from the served file"
	sum=$(sha256sum "$CACHE/$SET1/$f" | cut -d' ' -f1)
	grep -q "\"$sum\"" "$CACHE/$SET1/.clusterplex-set.json" || t_fail "the manifest lacks $f's SHA-256"
done
[ "$(wc -l <"$HTTPLOG")" = 3 ] || t_fail "unexpected requests: $(cat "$HTTPLOG")"
[ ! -e "$CACHE/$SET1/EasyAudioEncoder" ] || t_fail "PMS's EasyAudioEncoder folder was downloaded"
grep -q '"from":.*"url"' "$CACHE/$SET1/.clusterplex-set.json" || t_fail "the manifest does not say url"
listed=$(cat "$O"/err.* | grep -c "listed codec set $CODEC_SET" || true)
[ "$listed" = 1 ] || t_fail "PMS's set was listed $listed times"
! grep -q "sent codec set" "$O"/err.* || t_fail "PMS's x86_64 files were sent to the aarch64 worker"
no_leftovers 0000000-0000 "after the download"
t_ok "6 concurrent jobs on the aarch64 worker: each of 3 files downloaded once (6 MB), all jobs used it; done after $took s"

# 2. Failures. A 404 (the URL's query, with its token, is not shown).
plex_files 2222222-0002 100
rm "$PLEX/2222222-0002/linux-aarch64-standard/libhevc_decoder.so"
refused f404 2222222-0002 "404" \
	"from CLUSTERPLEX_CODEC_URL: $URL/ok/2222222-0002/linux-aarch64-standard/libhevc_decoder.so?...: curl: (22).*404"
t_ok "a 404: refused with the URL named, nothing left"

plex_files 3333333-0003 600
set_env CLUSTERPLEX_CODEC_URL "$URL/trunc/{version}/{arch}/{file}"
refused trunc 3333333-0003 "a truncated file" "$URL/trunc/3333333-0003/linux-aarch64-standard/lib[a-z0-9_]*.so: curl: (18)"
t_ok "a truncated file: refused, nothing left"

plex_files 4444444-0004 1500
set_env CLUSTERPLEX_CODEC_MAX_MB 1
set_env CLUSTERPLEX_CODEC_URL "$URL/ok/{version}/{arch}/{file}"
refused big 4444444-0004 "an announced oversized file" \
	"$URL/ok/4444444-0004/linux-aarch64-standard/libhevc_decoder.so: curl: (63)"
set_env CLUSTERPLEX_CODEC_URL "$URL/nolen/{version}/{arch}/{file}"
refused biglen 4444444-0004 "an unannounced oversized file" \
	"$URL/nolen/4444444-0004/linux-aarch64-standard/libhevc_decoder.so: the set is larger than CLUSTERPLEX_CODEC_MAX_MB (1 MB)"
sed -i '/^CLUSTERPLEX_CODEC_MAX_MB=/d' "$W2ENV"
t_ok "files over CLUSTERPLEX_CODEC_MAX_MB, with and without Content-Length: refused, nothing left"

plex_files 5555555-0005 1024
set_env CLUSTERPLEX_CODEC_URL "$URL/slow/{version}/{arch}/{file}"
set_env CLUSTERPLEX_CODEC_TIMEOUT_MS 2000
t0=$(t_now)
refused slow 5555555-0005 "the deadline" \
	"$URL/slow/5555555-0005/linux-aarch64-standard/lib[a-z0-9_]*.so: timed out (CLUSTERPLEX_CODEC_TIMEOUT_MS)"
took=$(t_since "$t0")
sed -i '/^CLUSTERPLEX_CODEC_TIMEOUT_MS=/d' "$W2ENV"
t_ok "a download slower than CLUSTERPLEX_CODEC_TIMEOUT_MS=2000: refused after $took s, nothing left"

# A shim SIGKILLed mid-download: curl and the folder go with the job.
codecs_shim kill "$(pms_set 5555555-0005)" CLUSTERPLEX_POOL=off -- env >/dev/null 2>"$O/err.kill" &
job=$!
for i in $(seq 300); do
	[ -n "$(curls)" ] && ls -d "$CACHE"/.tmp-* >/dev/null 2>&1 && break
	sleep 0.02
done
[ -n "$(curls)" ] || t_fail "the slow download never began"
for p in $(ps -o pid= --ppid "$job"); do
	case $(readlink "/proc/$p/exe") in */clusterplex-shim) kill -9 "$p" ;; esac
done
wait "$job" 2>/dev/null || true
t0=$(t_now)
for i in $(seq 100); do
	[ -z "$(curls)" ] && ! ls -d "$CACHE"/.tmp-* >/dev/null 2>&1 && break
	sleep 0.02
done
gone=$(t_since "$t0")
no_leftovers 5555555-0005 "after the SIGKILL"
t_ok "a shim SIGKILLed mid-download: curl and the temporary folder gone within $gone s, the agent ended"

# 3. HTTPS, as Plex serves it: a certificate curl does not trust is
# refused; trusted through CURL_CA_BUNDLE in the worker's environment, the
# download works; a redirect from https to http is refused.
TLSPORT=18443
TLSURL="https://$(cluster_pms_ip):$TLSPORT"
e=$(cluster_host_dir pms etc)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-subj "/CN=$(cluster_pms_ip)" -addext "subjectAltName=IP:$(cluster_pms_ip)" \
	-keyout "$e/tls.key" -out "$e/tls.crt" 2>/dev/null || t_fail "openssl could not make a certificate"
cp "$e/tls.crt" "$(cluster_host_dir w2 etc)/ca.pem"
cluster_pms /usr/bin/python3 "$CPX_SRC/tests/integration/codecs_http.py" "$(cluster_pms_ip)" \
	"$TLSPORT" /etc/clusterplex/plex /run/clusterplex/https.log /etc/clusterplex/tls.crt \
	/etc/clusterplex/tls.key "$URL" >/dev/null 2>&1 &
cluster_wait_tcp w2 "$(cluster_pms_ip)" "$TLSPORT" 10 || t_fail "the https server did not start"
plex_files 6666666-0006 200
set_env CLUSTERPLEX_CODEC_URL "$TLSURL/ok/{version}/{arch}/{file}"
refused tls1 6666666-0006 "an untrusted certificate" \
	"$TLSURL/ok/6666666-0006/linux-aarch64-standard/libaac_encoder.so: curl: (60)"
set_env CURL_CA_BUNDLE /etc/clusterplex/ca.pem
codecs_shim tls2 "$(pms_set 6666666-0006)" -- env >"$O/out.tls2" 2>"$O/err.tls2" ||
	{ tail -n 3 "$O/err.tls2"; t_fail "the https download failed"; }
grep -qxF "FFMPEG_EXTERNAL_LIBS=/run/clusterplex/codecs/6666666-0006-linux-aarch64-standard/" "$O/out.tls2" ||
	t_fail "https: $(grep FFMPEG "$O/out.tls2")"
cmp -s "$PLEX/6666666-0006/linux-aarch64-standard/libhevc_decoder.so" \
	"$CACHE/6666666-0006-linux-aarch64-standard/libhevc_decoder.so" || t_fail "https: the file differs"
plex_files 7777777-0007 10
set_env CLUSTERPLEX_CODEC_URL "$TLSURL/redir/{version}/{arch}/{file}"
refused redir 7777777-0007 "a redirect to http" \
	"$TLSURL/redir/7777777-0007/linux-aarch64-standard/libaac_encoder.so: curl: (1) Protocol \"http\""
grep -q "ok 7777777-0007" "$HTTPLOG" && t_fail "curl followed the redirect to http"
t_ok "https: an untrusted certificate refused, trusted through CURL_CA_BUNDLE downloaded, a redirect to http refused"

# doctor says how each worker will get a set it does not have yet.
cluster_pms /bin/bash -c '
	while IFS= read -r l; do
		case $l in "" | "#"*) ;; *) export "$l" ;; esac
	done </etc/clusterplex/pms.env
	exec env "$@"' doctor "$(pms_set 8888888-0008)" "$CPX_SRC/$CPX_BUILD/clusterplex-shim" \
	doctor --json >"$O/doc.json" 2>/dev/null || true
msg() {
	/usr/bin/python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(next((c["status"] + ": " + c["message"] for c in d["checks"]
	if c["check"] == "worker.codecs" and c["target"] == "worker " + sys.argv[2]), "absent"))' "$O/doc.json" "$1"
}
case $(msg w2) in "pass: codec set 8888888-0008-linux-aarch64-standard is downloaded from CLUSTERPLEX_CODEC_URL"*) ;;
*) t_fail "doctor on w2: $(msg w2)" ;; esac
case $(msg w1) in "pass: codec set 8888888-0008-linux-x86_64-standard is fetched from PMS"*) ;;
*) t_fail "doctor on w1: $(msg w1)" ;; esac
t_ok "doctor: w2 \"$(msg w2)\""

codecs_no_sanitizer_report "$O"/err.*
! grep -rq "$TOKEN" "$O" "$(cluster_state)/logs" || t_fail "the URL's token was logged"
t_ok "the token in CLUSTERPLEX_CODEC_URL appears in no log"
