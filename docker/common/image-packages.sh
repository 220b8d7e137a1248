#!/bin/sh
# image-packages.sh PACKAGE... — installs what an image's final stage needs
# (names may come from a build stage's runtime-packages list), only those
# missing, and leaves no apt lists or caches behind in the layer.
set -eu

missing=""
for p; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
	    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
