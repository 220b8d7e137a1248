#!/bin/bash
# containers_lint.sh — ClusterPlex's deployment files, checked offline:
# compose, Swarm stack, Kubernetes manifests, the Helm chart rendered with
# several sets of values, the Grafana dashboard and the systemd units
# (docker/test/validate.py says what each check looks at).
#
# Needs: python3-yaml, systemd-analyze, the binaries in build/ (make all),
# and helm, which docker/test/helm.sh fetches once into the cache
# ($CPX_CONTAINERS_CACHE, default /var/cache/clusterplex-containers).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${CPX_CONTAINERS_CACHE:-/var/cache/clusterplex-containers}
cd "$repo"
# Run alone (make containers) or by tests/integration/run.sh: either way
# the packages this test needs are installed first, only those missing.
"$repo/scripts/deps.sh" containers cluster >/dev/null
tmp=$(mktemp -d /tmp/cpx-deploy-lint.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
results=$tmp/results
: >"$results"
mkdir -p "$tmp/renders"

ok() { echo "ok $*" >>"$results"; }
notok() { echo "not ok $1: $2" >>"$results"; }

chart=docker/helm/clusterplex
renders=()
if helm=$(docker/test/helm.sh "$cache" 2>"$tmp/helm.err"); then
	if "$helm" lint --strict "$chart" -f docker/kubernetes/values.yaml \
	    >"$tmp/lint" 2>&1; then
		ok "helm lint --strict"
	else
		notok "helm lint --strict" "$(tr '\n' ' ' <"$tmp/lint")"
	fi
	docker/kubernetes/render.sh "$helm" >"$tmp/manifests.yaml"
	if cmp -s "$tmp/manifests.yaml" docker/kubernetes/clusterplex.yaml; then
		ok "docker/kubernetes/clusterplex.yaml is the chart's render (make k8s-manifests)"
	else
		notok "docker/kubernetes/clusterplex.yaml is the chart's render" \
		    "it differs: run make k8s-manifests"
	fi
	# Each set of values that changes the shape of what is rendered.
	while read -r name secret sets; do
		args=()
		for s in $sets; do
			args+=(--set "$s")
		done
		if "$helm" template cpx "$chart" "${args[@]}" >"$tmp/renders/$name.yaml" \
		    2>"$tmp/$name.err"; then
			renders+=(--render "$name=$tmp/renders/$name.yaml:$secret")
		else
			notok "helm template ($name)" "$(tr '\n' ' ' <"$tmp/$name.err")"
		fi
	done <<-'EOF'
	keys-in-values - secret.sshPrivateKey=k secret.sshPublicKey=p secret.token=t
	statefulset-hard own worker.kind=StatefulSet worker.antiAffinity=hard secret.existingSecret=own
	statefulset-soft own worker.kind=StatefulSet worker.replicas=5 secret.existingSecret=own
	extras own secret.existingSecret=own metrics.serviceMonitor.enabled=true grafana.dashboard.enabled=true worker.devices={/dev/dri} pms.media[0].name=tv pms.media[0].mountPath=/data/tv pms.media[0].volume.hostPath.path=/srv/tv
	ports own secret.existingSecret=own dispatcher.env.LISTENING_PORT=4000 worker.env.LISTENING_PORT=4001 worker.env.CLUSTERPLEX_SSH_PORT=2222 pms.env.PMS_PORT=32401
	EOF
	# Without a key the chart must refuse, naming what is missing.
	if "$helm" template cpx "$chart" >/dev/null 2>"$tmp/nokey.err"; then
		notok "helm template without a key fails" "it rendered"
	elif grep -q 'sshPrivateKey' "$tmp/nokey.err"; then
		ok "helm template without a key fails, naming secret.sshPrivateKey"
	else
		notok "helm template without a key fails" "$(cat "$tmp/nokey.err")"
	fi
else
	echo "# helm unavailable ($(cat "$tmp/helm.err")): checking the rendered manifests only"
fi

# The published schemas: Kubernetes' OpenAPI (and Prometheus Operator's
# for the ServiceMonitor) for every object of the manifests and of each
# render, the Compose specification for the compose and stack files. They
# come from npm, pinned by docker/test/schema/package-lock.json, installed
# once into the cache.
schemas() {
	local lock=docker/test/schema/package-lock.json dir
	command -v node >/dev/null && command -v npm >/dev/null || {
		echo "node and npm are not installed"
		return 1
	}
	dir=$cache/schemas-$(sha256sum "$lock" | cut -c1-16)
	if [ ! -d "$dir/node_modules" ]; then
		rm -rf "$dir.part"
		mkdir -p "$dir.part"
		cp docker/test/schema/package.json "$lock" "$dir.part/"
		(cd "$dir.part" && npm ci --no-audit --no-fund --loglevel=error) >&2 ||
			return 1
		mv "$dir.part" "$dir"
	fi
	cp docker/test/schema/validate.mjs "$dir/"
	echo "$dir/validate.mjs"
}
if validator=$(schemas 2>"$tmp/schemas.err"); then
	node "$validator" compose docker/compose/*.yml docker/swarm/*.yml >>"$results"
	node "$validator" k8s docker/kubernetes/clusterplex.yaml "$tmp"/renders/*.yaml \
	    >>"$results"
else
	echo "# schemas unavailable ($(tail -1 "$tmp/schemas.err")): not checked against them"
fi

# The units, pointed at this build's binaries so systemd-analyze can check
# that every command exists, and Plex's own unit stood in for by a minimal
# one so the drop-in for it is verified too.
units=$tmp/units
mkdir -p "$units/plexmediaserver.service.d"
for u in docker/systemd/*.service docker/systemd/plexmediaserver.service.d/*.conf; do
	sed -e "s|/usr/local/bin/|$repo/build/|g" \
	    -e "s|/usr/local/lib/clusterplex/|$repo/scripts/|g" \
	    "$u" >"$units/${u#docker/systemd/}"
done
printf '[Unit]\nDescription=stand-in for Plex'"'"'s unit\n[Service]\nExecStart=/bin/true\n' \
    >"$units/plexmediaserver.service"

# sshd's own check of the worker image's config and the bare-metal drop-in.
ssh-keygen -q -t ed25519 -N '' -f "$tmp/hostkey"
sed "s|^HostKey .*|HostKey $tmp/hostkey|" docker/worker/root/etc/clusterplex/sshd_config \
    >"$tmp/sshd_config"
printf 'HostKey %s\nInclude %s\n' "$tmp/hostkey" "$repo/docker/systemd/sshd-clusterplex.conf" \
    >"$tmp/sshd_dropin"
mkdir -p /run/sshd
for f in sshd_config sshd_dropin; do
	if out=$(/usr/sbin/sshd -t -f "$tmp/$f" 2>&1); then
		ok "sshd -t: $f"
	else
		notok "sshd -t: $f" "$out"
	fi
done

/usr/bin/python3 docker/test/validate.py --repo "$repo" --results "$results" \
    --units "$units" "${renders[@]}"
