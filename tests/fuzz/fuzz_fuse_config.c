/*
 * fuzz_fuse_config.c — clusterplex-fuse's environment: every value is
 * accepted in range or refused with a reason.
 */

#include <stdint.h>
#include <stdlib.h>

#include "cfs.h"
#include "fuzz_env.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
	"CLUSTERPLEX_TRANSCODE_DIR", "CLUSTERPLEX_RUN_DIR",
	"CLUSTERPLEX_FUSE_TIMEOUT_MS", "CLUSTERPLEX_CONNECT_TIMEOUT_MS",
	"CLUSTERPLEX_KEEPALIVE_MS", "CLUSTERPLEX_FUSE_CONNECTIONS",
	"CLUSTERPLEX_FUSE_CACHE_MB", "CLUSTERPLEX_FUSE_PREFETCH_MAX_MB",
	"CLUSTERPLEX_FUSE_READAHEAD_KB", "CLUSTERPLEX_FUSE_THREADS",
	"CLUSTERPLEX_FUSE_SHUTDOWN_MS", "CLUSTERPLEX_SSH_KEY",
	"CLUSTERPLEX_KNOWN_HOSTS",
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfs_settings set;
	char *cause = NULL;

	cpx_log_set_level(CPX_LOG_ERROR);
	fe_apply(names, sizeof names / sizeof names[0], data, size);
	if (cfs_settings_load(&set, &cause) == 0) {
		if (cause != NULL || set.run_dir[0] != '/')
			abort();
		if (cfs_settings_mountpoint(&set, NULL, &cause) == 0 &&
		    set.mountpoint[0] != '/')
			abort();
	} else if (cause == NULL) {
		abort();
	}
	cfs_settings_free(&set);
	free(cause);
	return 0;
}
