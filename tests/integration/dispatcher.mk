# tests/integration/dispatcher.mk — the dispatcher's and agent serve's loopback integration tests.
#
#   make integration-dispatcher     every tests/integration/dispatcher_*.sh
#                                   (tests/integration/run.sh runs them too)
#                                   and agent_serve_*.sh (the status-page
#                                   test needs chromium: scripts/deps.sh browser)

DISP_ITESTS := $(filter-out %/dispatcher_lib.sh,$(wildcard tests/integration/dispatcher_*.sh))
AGENT_SERVE_ITESTS := $(filter-out %/agent_serve_lib.sh,$(wildcard tests/integration/agent_serve_*.sh))

.PHONY: integration-dispatcher
integration-dispatcher: $(BUILD)/clusterplex-dispatcher $(BUILD)/clusterplex-agent
	@set -e; for t in $(DISP_ITESTS) $(AGENT_SERVE_ITESTS); do echo "== $$t"; \
		DISP_BIN=$(abspath $(BUILD)/clusterplex-dispatcher) \
		AGENT_BIN=$(abspath $(BUILD)/clusterplex-agent) timeout 300 sh $$t; done

