#!/bin/sh
# build-stage.sh DESTDIR BINARY... — the build stage of every image.
#
# Runs on the same base as the image it builds for, so the binaries link
# that base's own libraries (linuxserver's images are Ubuntu, the dispatcher
# image is Debian). Installs the compiler and -dev packages the base lacks,
# builds the binaries, installs them under DESTDIR/usr/bin and writes
# DESTDIR/usr/share/clusterplex/runtime-packages: the base's packages that
# hold the shared libraries they link, which the final stage installs.
set -eu

dest=$1
shift
scripts/deps.sh compile
targets=""
for b; do
	targets="$targets build/$b"
done
# shellcheck disable=SC2086
make -j"$(nproc)" $targets

install -d "$dest/usr/bin" "$dest/usr/share/clusterplex"
for b; do
	install -m 0755 "build/$b" "$dest/usr/bin/$b"
done

# A library path as ldd prints it may differ from the one dpkg recorded
# (merged /usr, symlinked sonames): try each spelling.
owner() {
	for p in "$1" "$(readlink -f "$1")"; do
		for q in "$p" "/usr$p" "${p#/usr}"; do
			dpkg -S "$q" 2>/dev/null | sed -n '1s/[:,].*//p' | grep . && return 0
		done
	done
	echo "build-stage.sh: no package owns $1" >&2
	return 1
}
for b; do
	ldd "build/$b"
done | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u >/tmp/libs
: >/tmp/pkgs
while read -r lib; do
	owner "$lib" >>/tmp/pkgs
done </tmp/libs
sort -u /tmp/pkgs >"$dest/usr/share/clusterplex/runtime-packages"
echo "build-stage.sh: $* need: $(tr '\n' ' ' <"$dest/usr/share/clusterplex/runtime-packages")"
