# tests/integration/exec.mk — the remote-execution tests (shim, pool, SSH,
# agent job service) against a throwaway sshd on loopback; each script
# is bounded and cleans up after itself. Root is needed (a test user,
# sshd as that user). ASan/UBSan: make integration-exec BUILD=build-san SAN=1
EXEC_TESTS := $(filter-out %/exec_lib.sh,$(sort $(wildcard tests/integration/exec_*.sh)))

.PHONY: integration-exec
integration-exec: $(BUILD)/clusterplex-shim $(BUILD)/clusterplex-agent
	@set -e; for t in $(EXEC_TESTS); do \
		echo "== $$t"; BUILD=$(BUILD) bash $$t; done

integration: integration-exec
