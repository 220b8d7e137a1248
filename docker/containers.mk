# docker/containers.mk — ClusterPlex's images and deployment files
# (docker/README.md). Included by tests/tests.mk.
#
#   make containers        the deployment files checked offline, then the
#                          images built on a Debian base made here, run as
#                          podman containers, with a fixture played through
#                          PMS, dispatcher and two workers
#   make containers-lint   only the deployment files
#   make k8s-manifests     re-renders docker/kubernetes/clusterplex.yaml
#
# Caches (debootstrap root, helm) live in CPX_CONTAINERS_CACHE, outside the
# clone, so a fresh clone on the same machine starts warm.

CPX_CONTAINERS_CACHE ?= /var/cache/clusterplex-containers
export CPX_CONTAINERS_CACHE

.PHONY: containers containers-lint k8s-manifests

containers-lint: all
	scripts/deps.sh containers
	tests/integration/containers_lint.sh

containers: containers-lint
	tests/integration/containers_e2e.sh

k8s-manifests:
	docker/kubernetes/render.sh "$$(docker/test/helm.sh $(CPX_CONTAINERS_CACHE))" \
	    >docker/kubernetes/clusterplex.yaml
