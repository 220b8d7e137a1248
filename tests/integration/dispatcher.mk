# tests/integration/dispatcher.mk — the dispatcher's loopback integration tests.
#
#   make integration-dispatcher     every tests/integration/dispatcher_*.sh
#                                   (the status-page test needs chromium:
#                                   scripts/deps.sh browser)

DISP_ITESTS := $(filter-out %/dispatcher_lib.sh,$(wildcard tests/integration/dispatcher_*.sh))

.PHONY: integration-dispatcher
integration-dispatcher: $(BUILD)/clusterplex-dispatcher
	@set -e; for t in $(DISP_ITESTS); do echo "== $$t"; \
		DISP_BIN=$(abspath $(BUILD)/clusterplex-dispatcher) timeout 300 sh $$t; done

integration: integration-dispatcher
