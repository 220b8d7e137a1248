# tests/cluster/cluster.mk — the local test cluster, the demo and the
# integration tests; included by tests/tests.mk. All of them run as root.
#
#   make demo           deps, build, then scripts/demo.sh
#   make integration    deps, build, then tests/integration/run.sh
#   make cluster-up     a cluster to explore by hand (CPX_CLUSTER, CPX_WORKERS)
#   make cluster-down   and away with it
#
# Steps run in order through sub-makes, so `make -j` never builds while
# deps.sh is still installing the compiler.

.PHONY: demo integration cluster-up cluster-down cluster-status

demo: deps
	$(MAKE) all
	scripts/demo.sh

integration: deps
	$(MAKE) all
	tests/integration/run.sh

cluster-up: deps
	$(MAKE) $(BUILD)/clusterplex-agent
	tests/media/make-movie.sh build/media/movie.mkv
	tests/cluster/cluster.sh up

cluster-down:
	tests/cluster/cluster.sh down

cluster-status:
	tests/cluster/cluster.sh status
