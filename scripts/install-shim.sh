#!/bin/sh
# install-shim.sh — puts clusterplex-shim in place of Plex's transcoder.
#
#   scripts/install-shim.sh [--plex-dir DIR] [--shim PATH]
#
# DIR (default /usr/lib/plexmediaserver) holds "Plex Transcoder". The real
# binary is kept as "Plex Transcoder.real" (the shim's default
# CLUSTERPLEX_LOCAL_TRANSCODER) and the shim takes its name.
#
# Safe to run again, at any time: a "Plex Transcoder" that is already the
# shim is never moved over the real one; after a Plex upgrade replaced the
# shim with a new real transcoder, that one becomes the .real. At no
# moment is "Plex Transcoder" missing, so PMS can start jobs throughout.
set -eu

plexdir=/usr/lib/plexmediaserver
shim=

while [ $# -gt 0 ]; do
	case $1 in
	--plex-dir) plexdir=$2; shift 2 ;;
	--shim) shim=$2; shift 2 ;;
	-h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "install-shim.sh: unknown option $1" >&2; exit 2 ;;
	esac
done

if [ -z "$shim" ]; then
	here=$(cd "$(dirname "$0")/.." && pwd)
	for c in "$here/build/clusterplex-shim" "$(command -v clusterplex-shim || true)"; do
		if [ -n "$c" ] && [ -x "$c" ]; then
			shim=$c
			break
		fi
	done
fi
[ -n "$shim" ] && [ -x "$shim" ] || {
	echo "install-shim.sh: no clusterplex-shim found (use --shim PATH)" >&2
	exit 1
}

target="$plexdir/Plex Transcoder"
real="$plexdir/Plex Transcoder.real"
marker=CLUSTERPLEX-SHIM-MARKER

is_shim() { [ -e "$1" ] && grep -qa "$marker" "$1"; }

is_shim "$shim" || {
	echo "install-shim.sh: $shim is not clusterplex-shim" >&2
	exit 1
}
if [ -e "$target" ] && ! is_shim "$target"; then
	# A real transcoder: a first install, or Plex upgraded itself.
	# Hard link then rename: .real is replaced in one step, and
	# "Plex Transcoder" itself stays in place until the shim replaces it.
	ln -f "$target" "$real.tmp.$$"
	mv -f "$real.tmp.$$" "$real"
	echo "install-shim.sh: kept the real transcoder as $real" >&2
fi
if [ ! -e "$real" ] || is_shim "$real"; then
	echo "install-shim.sh: no real transcoder in $plexdir (reinstall Plex, then run this again)" >&2
	exit 1
fi
cp "$shim" "$plexdir/.clusterplex-shim.tmp.$$"
chmod 0755 "$plexdir/.clusterplex-shim.tmp.$$"
mv -f "$plexdir/.clusterplex-shim.tmp.$$" "$target"
echo "install-shim.sh: $target is now clusterplex-shim" >&2
