# bench/dispatch.mk — `make bench-dispatch [RUNS=300]`: exec of the shim to
# the first instruction of the worker's transcoder, beside a local start.
RUNS ?= 300

.PHONY: bench-dispatch
bench-dispatch: $(BUILD)/clusterplex-shim $(BUILD)/clusterplex-agent
	BUILD=$(BUILD) bench/dispatch.sh $(RUNS)

bench: bench-dispatch
