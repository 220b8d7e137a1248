#!/bin/sh
# debian-base.sh IMAGE CACHE_DIR — the Debian root the container test builds on.
#
# Base images cannot be pulled here (no registry but Debian's), so the test
# makes its own: debootstrap --variant=minbase from this machine's own apt
# sources, imported into podman as IMAGE. Reused, cheapest first:
#   1. IMAGE already in podman's store, labelled with this recipe's hash;
#   2. $CACHE_DIR/debian-<suite>-<hash>.tar from an earlier run;
#   3. a fresh debootstrap (about 30 s here, plus the import).
# The cache lives outside the clone on purpose: CI starts from a clean clone,
# but on the same machine, so podman's store and the tarball survive.
set -eu

image=$1
cache=$2
here=$(cd "$(dirname "$0")" && pwd)
. /etc/os-release
suite=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}
arch=$(dpkg --print-architecture)

# This machine's Debian sources: "deb URI SUITE COMPONENT" lines, nothing
# else it may have configured (third-party repositories stay out).
sources=$(apt-get indextargets --format \
    '$(ORIGIN)|$(ARCHITECTURE)|$(REPO_URI)|$(RELEASE)|$(COMPONENT)' \
    'Identifier: Packages' | awk -F'|' -v a="$arch" \
    '$1 == "Debian" && $2 == a { print "deb " $3 " " $4 " " $5 }' | sort -u)
mirror=$(printf '%s\n' "$sources" | awk -v s="$suite" '$3 == s { print $2; exit }')
if [ -z "$mirror" ]; then
	echo "debian-base.sh: no Debian '$suite' source in this machine's apt" \
	    "configuration (apt-get update first?)" >&2
	exit 1
fi
# The apt settings the machine relies on (e.g. a snapshot mirror whose
# Release files are past Valid-Until) must hold inside the images too.
aptconf=$(apt-config dump | grep -E '^Acquire::(Check-Valid-Until|Check-Date|https?::Proxy) ' || true)

recipe=$(printf '%s\n%s\n%s\n%s\n' "$suite" "$sources" "$aptconf" \
    "$(cat "$0")" | sha256sum | cut -c1-16)

have=$(podman image inspect --format '{{index .Labels "org.clusterplex.recipe"}}' \
    "$image" 2>/dev/null || true)
if [ "$have" = "$recipe" ]; then
	echo "debian-base.sh: $image is current ($recipe)"
	exit 0
fi

tarball=$cache/debian-$suite-$recipe.tar
if [ ! -s "$tarball" ]; then
	mkdir -p "$cache"
	root=$(mktemp -d "$cache/root.XXXXXX")
	trap 'rm -rf "$root" "$root.log"' EXIT INT TERM
	echo "debian-base.sh: debootstrap $suite from $mirror (cold cache)"
	debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
		tail -20 "$root.log" >&2
		exit 1
	}
	rm -f "$root.log"
	printf '%s\n' "$sources" >"$root/etc/apt/sources.list"
	if [ -n "$aptconf" ]; then
		printf '%s\n' "$aptconf" >"$root/etc/apt/apt.conf.d/90clusterplex-host"
	fi
	# Images must stay small: no package cache, lists or docs; apt in a
	# build step runs `apt-get update` first, as on any slim image.
	cat >"$root/etc/apt/apt.conf.d/90clusterplex-slim" <<'CONF'
APT::Install-Recommends "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
CONF
	cat >"$root/etc/dpkg/dpkg.cfg.d/90clusterplex-slim" <<'CONF'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CONF
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
	    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
	tar --numeric-owner -C "$root" -cf "$tarball.part" .
	mv "$tarball.part" "$tarball"
	rm -rf "$root"
	trap - EXIT INT TERM
	# Older recipes' tarballs are dead weight.
	find "$cache" -maxdepth 1 -name "debian-$suite-*.tar" ! -name "${tarball##*/}" -delete
fi
podman import -q --change "LABEL org.clusterplex.recipe=$recipe" \
    --change 'CMD ["/bin/bash"]' "$tarball" "$image" >/dev/null
echo "debian-base.sh: imported $image ($recipe)"
