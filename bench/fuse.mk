# bench/fuse.mk — `make bench-fuse`: clusterplex-fuse over SSH on loopback,
# beside sshfs and local files, with the raw SSH ceiling (bench/fuse.sh
# prints the figures).

FUSE_READ := $(BUILD)/bench/fuse_read
FUSE_RAW := $(BUILD)/bench/fuse_raw

$(FUSE_READ): bench/fuse_read.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

$(FUSE_RAW): bench/fuse_raw.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LDLIBS)

.PHONY: bench-fuse
bench-fuse: $(BUILD)/clusterplex-agent $(BUILD)/clusterplex-fuse $(FUSE_READ) $(FUSE_RAW)
	bench/fuse.sh
