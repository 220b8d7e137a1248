# tests/integration/exec.mk — the remote-execution tests (shim, pool, SSH,
# agent job service): exec_*.sh against a throwaway sshd on loopback,
# exec_cluster.sh on the test cluster with the real dispatcher and agent
# serve (always the build/ binaries). Each is bounded and cleans up after
# itself; root is needed. tests/integration/run.sh runs them with the
# others. ASan/UBSan: make integration-exec BUILD=build-san SAN=1
EXEC_TESTS := $(filter-out %/exec_lib.sh,$(sort $(wildcard tests/integration/exec_*.sh)))

.PHONY: integration-exec
integration-exec: $(BUILD)/clusterplex-shim $(BUILD)/clusterplex-agent \
    build/clusterplex-shim build/clusterplex-agent build/clusterplex-dispatcher
	@set -e; for t in $(EXEC_TESTS); do \
		echo "== $$t"; BUILD=$(BUILD) bash $$t; done

