# tests/tests.mk — test targets, included by the top-level Makefile.
#
# tests/unit/<part>_<name>.c     cmocka programs; <part> is common, shim,
#                                dispatcher, agent or fuse, and the program
#                                links that part's objects except main.o.
# tests/fuzz/fuzz_<part>_<name>.c  libFuzzer targets, same convention.
# tests/integration/*.sh         scripts run inside the test cluster.

UNIT_SRC  := $(wildcard tests/unit/*.c)
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BUILD ?= build-fuzz
FUZZ_BINS := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_SECONDS ?= 20

part_objs = $(filter-out %/main.o,$($(1)_OBJ))
unit_part = $(firstword $(subst _, ,$(notdir $(1))))
part_bin  = $(if $(filter common,$(1)),,clusterplex-$(1))

.SECONDEXPANSION:
$(BUILD)/tests/%: tests/unit/%.c $$(call part_objs,$$(call part_bin,$$(call unit_part,$$*))) $(BUILD)/libcpx.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I $(call unit_part,$*) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done
	scripts/check-docs.sh

# libFuzzer targets build with clang and sanitizers straight from the
# sources of common/ and of the part they exercise (all but main.c).
FUZZ_CFLAGS := -O1 -g -std=gnu11 -D_GNU_SOURCE -I common -I $(LLHTTP_INC) \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
	-fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer
fuzz_srcs = $(COMMON_SRC) $(wildcard $(LLHTTP_SRC)/*.c) \
	$(if $(filter common,$(1)),,$(filter-out %/main.c,$(wildcard $(1)/*.c)))

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $$(call fuzz_srcs,$$(call unit_part,$$*))
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -I $(call unit_part,$*) -o $@ $^ \
		$(shell pkg-config --libs $(PKGS)) -lpthread

fuzz-build: $(FUZZ_BINS)

# A bounded run of every target from its seed corpus (CI); fuzz-long for more.
fuzz: fuzz-build
	scripts/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

fuzz-long: fuzz-build
	scripts/run-fuzz.sh 600 $(FUZZ_BINS)

# The README's test command: everything CI runs, on a clean clone, as
# root. Each step is a sub-make so that nothing compiles before deps.sh
# has installed the compiler. CHECK_STEPS lets a developer run a subset.
CHECK_DEPS  ?= build cluster browser containers
CHECK_STEPS ?= all unit integration faults load fuzz san-check containers

check:
	scripts/deps.sh $(CHECK_DEPS)
	@set -e; for step in $(CHECK_STEPS); do \
		echo "==== make $$step"; t0=$$(date +%s); \
		$(MAKE) --no-print-directory $$step; \
		echo "==== make $$step: $$(( $$(date +%s) - t0 )) s"; done

# The same unit and integration suites on an ASan+UBSan build: a sanitizer
# report anywhere (a test's output or a cluster service's log) fails it.
san-check:
	$(MAKE) BUILD=build-san SAN=1 all unit
	$(MAKE) BUILD=build-san SAN=1 integration

# Folders add their own targets (cluster, integration, bench, containers).
include $(sort $(wildcard tests/*/*.mk bench/*.mk docker/*.mk))
