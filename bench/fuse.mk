# bench/fuse.mk — `make bench-fuse`: clusterplex-fuse over SSH on loopback,
# beside sshfs and local files (bench/fuse.sh prints the figures).

FUSE_READ := $(BUILD)/bench/fuse_read

$(FUSE_READ): bench/fuse_read.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

.PHONY: bench-fuse
bench-fuse: $(BUILD)/clusterplex-agent $(BUILD)/clusterplex-fuse $(FUSE_READ)
	bench/fuse.sh
