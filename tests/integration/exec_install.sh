#!/bin/bash
# exec_install.sh — install-shim.sh is idempotent and survives Plex
# upgrades without ever losing the real transcoder; the installed shim
# finds it; provision-keys.sh never replaces a key and writes one line.
. "$(dirname "$0")/exec_lib.sh"
exec_init install 24780
P="$T/plex"
mkdir -p "$P"
fake_real() {
	printf '#!/bin/sh\necho "real-%s $*"\n' "$1" >"$P/Plex Transcoder"
	chmod 755 "$P/Plex Transcoder"
}
install() { "$EXEC_TOP/scripts/install-shim.sh" --plex-dir "$P" \
	--shim "$EXEC_TOP/$EXEC_BUILD/clusterplex-shim" 2>>"$T/install.log"; }
is_shim() { grep -qa CLUSTERPLEX-SHIM-MARKER "$1"; }
run_local() {
	(cd "$T" && TRANSCODE_OPERATING_MODE=local CLUSTERPLEX_LOCAL_TRANSCODER= \
		"$P/Plex Transcoder" -i in.mkv out.ts 2>>"$T/shim.err")
}

fake_real v1
install
is_shim "$P/Plex Transcoder" || exec_die "first install: no shim in place"
grep -q real-v1 "$P/Plex Transcoder.real" || exec_die "first install: real lost"
[ "$(run_local)" = "real-v1 -i in.mkv out.ts" ] || exec_die "installed shim: $(run_local)"

install
install
grep -q real-v1 "$P/Plex Transcoder.real" || exec_die "re-run overwrote the real transcoder"
is_shim "$P/Plex Transcoder" || exec_die "re-run: no shim"
[ "$(run_local)" = "real-v1 -i in.mkv out.ts" ] || exec_die "after re-runs: $(run_local)"

# A Plex upgrade puts a new real transcoder where the shim was.
fake_real v2
[ "$(run_local)" = "real-v2 -i in.mkv out.ts" ] || exec_die "upgrade itself"
install
grep -q real-v2 "$P/Plex Transcoder.real" || exec_die "after upgrade: old real kept"
is_shim "$P/Plex Transcoder" || exec_die "after upgrade: no shim"
install
grep -q real-v2 "$P/Plex Transcoder.real" || exec_die "after upgrade, re-run"
[ "$(run_local)" = "real-v2 -i in.mkv out.ts" ] || exec_die "after upgrade: $(run_local)"

# Nothing real anywhere: refuse, change nothing.
rm "$P/Plex Transcoder.real"
set +e
install
RC=$?
set -e
[ "$RC" != 0 ] || exec_die "installed without any real transcoder"
is_shim "$P/Plex Transcoder" || exec_die "refusal removed the shim"
exec_log "install: idempotent, upgrade-safe, the shim finds the real transcoder"

# Keys: created once, never replaced; one authorized_keys line.
K="$T/keys"
line=$("$EXEC_TOP/scripts/provision-keys.sh" --dir "$K" --agent /opt/cp/clusterplex-agent \
	--env-file /etc/cp/agent.env --authorized-keys "$T/ak" 2>/dev/null)
pub=$(cat "$K/id_ed25519.pub")
[ "$line" = "restrict,command=\"/opt/cp/clusterplex-agent exec --env-file /etc/cp/agent.env\" $pub" ] ||
	exec_die "authorized_keys line: $line"
[ "$(stat -c %a "$K/id_ed25519")" = 600 ] || exec_die "private key mode"
sum=$(md5sum <"$K/id_ed25519")
line2=$("$EXEC_TOP/scripts/provision-keys.sh" --dir "$K" --agent /opt/cp/clusterplex-agent \
	--env-file /etc/cp/agent.env --authorized-keys "$T/ak" 2>/dev/null)
[ "$sum" = "$(md5sum <"$K/id_ed25519")" ] || exec_die "the key was replaced"
[ "$line" = "$line2" ] || exec_die "the line changed"
[ "$(wc -l <"$T/ak")" = 1 ] || exec_die "authorized_keys got the line twice"
exec_log "keys: ed25519 created once, one restrict+command line"
exec_log PASS
