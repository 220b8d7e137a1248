# bench/dispatcher.mk — placement benchmark (needs wrk: apt-get install wrk).

.PHONY: bench-dispatcher
bench-dispatcher: $(BUILD)/clusterplex-dispatcher
	DISP_BIN=$(abspath $(BUILD)/clusterplex-dispatcher) sh bench/dispatcher.sh

bench: bench-dispatcher
