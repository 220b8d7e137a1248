# tests/faults/faults.mk — the fault-injection suite on the test cluster
# (tests/faults/run.sh, docs/RELIABILITY.md); included by tests/tests.mk.
# Runs as root, about 3-4 minutes on 2 cores.
#
#   make faults                          the whole suite, release build
#   make faults FAULTS="link-cut ..."    some scenarios
#   make faults BUILD=build-san SAN=1    on the ASan+UBSan build
#
# FAULTS_KILLS (16) shim SIGKILLs, FAULTS_SEED their moments; the results
# are in build/faults/results.tsv and the table at the end of the output.

.PHONY: faults

faults: deps
	$(MAKE) all
	timeout -k 30 1200 tests/faults/run.sh $(FAULTS)
