/* main.c — clusterplex-fuse: PMS's transcode folder, with remote sessions. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfs.h"

static const char usage[] =
    "usage: clusterplex-fuse [-f] [-d] [MOUNTPOINT]\n"
    "\n"
    "Mounts over PMS's transcode folder (MOUNTPOINT, default\n"
    "$CLUSTERPLEX_TRANSCODE_DIR or /transcode). Local files pass through to\n"
    "the folder underneath; session folders that shims route to a worker\n"
    "(over $CLUSTERPLEX_RUN_DIR/fuse.sock) show that worker's files, read\n"
    "over SSH. Runs in the foreground; SIGTERM or `fusermount3 -u` unmounts\n"
    "and exits 0.\n"
    "\n"
    "  -f  accepted for compatibility (always in the foreground)\n"
    "  -d  trace every FUSE request (libfuse debug output)\n"
    "\n"
    "Environment: see docs/fuse.md.\n";

int
main(int argc, char **argv)
{
	struct cfs_settings set;
	const char *mountpoint = NULL;
	char *cause = NULL;
	int i, debug = 0;

	cpx_log_init("clusterplex-fuse");
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(usage, stdout);
			return 0;
		} else if (strcmp(argv[i], "-f") == 0) {
			continue;
		} else if (strcmp(argv[i], "-d") == 0) {
			debug = 1;
		} else if (argv[i][0] != '-' && mountpoint == NULL) {
			mountpoint = argv[i];
		} else {
			fputs(usage, stderr);
			return 2;
		}
	}
	if (cfs_settings_load(&set, &cause) != 0 ||
	    cfs_settings_mountpoint(&set, mountpoint, &cause) != 0) {
		cpx_error("configuration: %s", cause);
		free(cause);
		cfs_settings_free(&set);
		return 78;
	}
	set.debug = debug;
	return cfs_run(&set, set.openssh ? &cfs_openssh_transport :
	    &cfs_ssh_transport, NULL);
}
