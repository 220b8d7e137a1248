# bench/fuse.mk — `make bench-fuse`: clusterplex-fuse over SSH on loopback,
# beside sshfs and a local file (bench/fuse.sh prints the figures).

.PHONY: bench-fuse
bench-fuse: $(BUILD)/clusterplex-agent $(BUILD)/clusterplex-fuse
	bench/fuse.sh
