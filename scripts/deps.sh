#!/bin/sh
# deps.sh [GROUP...] — installs the Debian 12 packages ClusterPlex needs,
# only those missing; safe to run any number of times. Groups:
#   compile     compiler and libraries for the four binaries alone (what an
#               image's build stage installs)
#   build       compile, plus what the unit and fuzz tests build with
#   cluster     what the local test cluster and the demo run on
#   containers  rootful podman with runc and slirp4netns, debootstrap, and
#               python3-yaml for the container and deployment-file tests
#   browser     headless Chromium for the status-page test
# Without arguments: build and cluster.
set -eu

compile="gcc libc6-dev make pkg-config libfuse3-dev libssh2-1-dev libuv1-dev
libcjson-dev node-llhttp"
build="$compile libcmocka-dev clang libclang-rt-14-dev"
cluster="ffmpeg openssh-server openssh-client fuse3 sshfs iproute2 procps
psmisc util-linux passwd python3 curl ca-certificates faketime"
containers="podman runc debootstrap slirp4netns python3-yaml iproute2 util-linux"
browser="chromium"

groups=${*:-build cluster}
want=""
for g in $groups; do
	case $g in
	compile) want="$want $compile" ;;
	build) want="$want $build" ;;
	cluster) want="$want $cluster" ;;
	containers) want="$want $containers" ;;
	browser) want="$want $browser" ;;
	*) echo "deps.sh: unknown group '$g' (compile, build, cluster, containers, browser)" >&2
	   exit 2 ;;
	esac
done

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing Debian packages:$missing" >&2
	echo "deps.sh: run as root (or: sudo apt-get install$missing)" >&2
	exit 1
fi
echo "deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
