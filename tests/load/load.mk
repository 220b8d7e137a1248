# tests/load/load.mk — the load test on the test cluster (tests/load/run.sh,
# docs/RELIABILITY.md); included by tests/tests.mk. Runs as root.
#
#   make load                                  100 jobs, 100 at once, 4 workers
#   make load LOAD_JOBS=400 LOAD_CONCURRENCY=200 LOAD_WORKERS=8
#   make load BUILD=build-san SAN=1            on the ASan+UBSan build
#
# Figures and checks: build/load/summary.txt and build/load/report.json.

.PHONY: load

load: deps
	$(MAKE) all
	timeout -k 30 1200 tests/load/run.sh
