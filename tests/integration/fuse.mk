# tests/integration/fuse.mk — clusterplex-fuse's integration tests.
#
#   make fuse-tests     every tests/integration/fuse_*.sh, bounded, as root
#
# build/tests/clusterplex-fuse-pipe is clusterplex-fuse with a test-only
# transport: each worker is a local `clusterplex-agent exec` on a socket
# pair (no sshd), so the daemon and the file service run together for real.

FUSE_PIPE := $(BUILD)/tests/clusterplex-fuse-pipe
FUSE_TESTS := $(filter-out %_lib.sh,$(sort $(wildcard tests/integration/fuse_*.sh)))

$(FUSE_PIPE): tests/integration/fuse_pipe.c $(call part_objs,clusterplex-fuse) $(BUILD)/libcpx.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I fuse $(LDFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: fuse-tests
fuse-tests: $(BUILD)/clusterplex-agent $(BUILD)/clusterplex-fuse $(FUSE_PIPE)
	@set -e; for t in $(FUSE_TESTS); do echo "== $$t"; \
		timeout 600 $$t || { echo "FAILED: $$t"; exit 1; }; done

# tests/integration/run.sh runs the fuse tests too: build what they need.
integration: $(FUSE_PIPE)
