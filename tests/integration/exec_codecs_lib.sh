# exec_codecs_lib.sh — shared by exec_codecs.sh and exec_eae.sh: a test
# cluster whose workers run the process-semantics stand-in, a fake codec
# set in PMS's codec folder (with a fake EasyAudioEncoder inside), and the
# shim run from a session folder as PMS runs it.

CODEC_SET=${CODEC_SET:-8bf330d-2818-linux-x86_64-standard}
# PMS's codec folder, as PMS names it: with a blank in the path.
CODEC_PARENT="/etc/clusterplex/Application Support/Codecs"
CODEC_ENV="FFMPEG_EXTERNAL_LIBS=$(printf '%s' "$CODEC_PARENT/$CODEC_SET/" | sed 's/ /\\ /g')"

# codecs_setup [AGENT_ENV_LINE...]: stand-in transcoders everywhere, the
# fake set on pms, extra lines in every worker's agent.env.
codecs_setup() {
	local h d i
	for h in pms $(for ((i = 1; i <= CPX_WORKERS; i++)); do echo "w$i"; done); do
		d=$(cluster_host_dir "$h" etc)/transcoder
		cc -O2 -o "$d/exec-standin" "$CPX_REPO/tests/integration/exec_standin.c"
		ln -sfn exec-standin "$d/Plex Transcoder"
	done
	d="$(cluster_host_dir pms etc)/Application Support/Codecs/$CODEC_SET"
	mkdir -p "$d/EasyAudioEncoder/EasyAudioEncoder"
	# Big enough that concurrent jobs overlap the fetch.
	head -c $((24 * 1024 * 1024)) /dev/urandom >"$d/libhevc_decoder.so"
	head -c 700000 /dev/urandom >"$d/libh264_decoder.so"
	printf 'tiny' >"$d/libaac_encoder.so"
	install -m 0755 "$CPX_REPO/tests/standin/fake-eae" \
		"$d/EasyAudioEncoder/EasyAudioEncoder/EasyAudioEncoder"
	echo "licence for the test" >"$d/EasyAudioEncoder/EasyAudioEncoder/eae-license.txt"
	for ((i = 1; i <= CPX_WORKERS; i++)); do
		printf '%s\n' "CLUSTERPLEX_CODEC_CACHE=/run/clusterplex/codecs" "$@" \
			>>"$(cluster_host_dir "w$i" etc)/agent.env"
	done
}

# codecs_shim SESSION [NAME=VALUE...] -- ARGS: the shim on pms in the
# session folder, with PMS's ClusterPlex environment (pms.env).
codecs_shim() { cluster_shim "$@"; }

# Fails when a sanitizer build reported anything in FILE... (the shims'
# stderr, which also carries a directly connected agent's).
codecs_no_sanitizer_report() {
	! grep -l -e "Sanitizer" -e "runtime error:" "$@" 2>/dev/null ||
		t_fail "sanitizer report: $(grep -h -A5 -e Sanitizer -e "runtime error:" "$@" | head -n 20)"
}

# The worker (index) whose /transcode has SESSION, or nothing.
codecs_worker_of() {
	local i
	for ((i = 1; i <= CPX_WORKERS; i++)); do
		[ -d "$(cluster_host_dir "w$i" transcode)/Transcode/Sessions/$1" ] && echo "$i"
	done
	return 0
}

# Processes of worker I whose executable or script is NAME.
codecs_procs() {
	local p
	for p in $(ip netns pids "$CPX_CLUSTER-w$1"); do
		case "$(tr "\0" " " 2>/dev/null <"/proc/$p/cmdline")" in
		*"$2"*) echo "$p" ;;
		esac
	done
	return 0
}
