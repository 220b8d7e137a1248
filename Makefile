# ClusterPlex — top-level build.
#
#   make            build the four binaries into $(BUILD)/
#   make demo       the main job: a local multi-host cluster transcoding a generated movie
#   make check      everything CI runs: unit, integration, fault, fuzz and sanitizer suites
#   make install    PREFIX=/usr/local DESTDIR=...
#
# Both `demo` and `check` first install missing Debian packages (scripts/deps.sh).

PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
LIBEXEC ?= $(PREFIX)/lib/clusterplex
DESTDIR ?=
BUILD   ?= build
SAN     ?=

CC      ?= cc
PKGS    := fuse3 libssh2 libuv libcjson
LLHTTP_SRC ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp

WARN    := -Wall -Wextra -Werror -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
           -Wshadow -Wpointer-arith -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -D_GNU_SOURCE -fno-strict-aliasing $(WARN) \
           -I common -I $(LLHTTP_INC) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread

ifneq ($(SAN),)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

BINS := clusterplex-shim clusterplex-dispatcher clusterplex-agent clusterplex-fuse

# The first rule is what plain `make` builds.
.DEFAULT_GOAL := all

# Every folder lists its own sources; a new file in a folder needs no edit here.
COMMON_SRC := $(wildcard common/*.c)
LLHTTP_OBJ := $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o $(BUILD)/llhttp/llhttp.o
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o) $(LLHTTP_OBJ)

define binary
$(1)_SRC := $(wildcard $(2)/*.c)
$(1)_OBJ := $$($(1)_SRC:%.c=$(BUILD)/%.o)
$(BUILD)/$(1): $$($(1)_OBJ) $(BUILD)/libcpx.a
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(eval $(call binary,clusterplex-shim,shim))
$(eval $(call binary,clusterplex-dispatcher,dispatcher))
$(eval $(call binary,clusterplex-agent,agent))
$(eval $(call binary,clusterplex-fuse,fuse))

.PHONY: all deps demo check unit integration faults fuzz fuzz-long san-check bench \
        containers install clean format
all: $(BINS:%=$(BUILD)/%)

$(BUILD)/libcpx.a: $(COMMON_OBJ)
	$(AR) rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# llhttp comes from Debian's node-llhttp as C sources; it is compiled, never copied in.
$(BUILD)/llhttp/%.o: $(LLHTTP_SRC)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Werror -W%,$(CFLAGS)) -w -c -o $@ $<

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

deps:
	scripts/deps.sh

include tests/tests.mk

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXEC)
	install -m 0755 $(BINS:%=$(BUILD)/%) $(DESTDIR)$(BINDIR)/
	install -m 0755 scripts/install-shim.sh scripts/provision-keys.sh \
		$(DESTDIR)$(LIBEXEC)/

format:
	clang-format -i $(wildcard */*.c */*.h)

clean:
	rm -rf build build-san build-fuzz
