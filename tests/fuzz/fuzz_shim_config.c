/*
 * fuzz_shim_config.c — PMS's environment as the shim reads it at every
 * start (ClusterPlex's compose files included): a value is accepted within
 * its documented range or refused with a reason, never a crash.
 */

#include <stdint.h>
#include <stdlib.h>

#include "shim.h"
#include "fuzz_env.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
	"TRANSCODE_OPERATING_MODE", "ORCHESTRATOR_URL", "PMS_PORT", "PMS_IP",
	"PMS_SERVICE", "CLUSTERPLEX_DISPATCH_TIMEOUT_MS",
	"CLUSTERPLEX_SSH_TIMEOUT_MS", "CLUSTERPLEX_KEEPALIVE_MS",
	"CLUSTERPLEX_LINK_TIMEOUT_MS", "CLUSTERPLEX_LOCAL_JOBS",
	"TRANSCODE_EAE_LOCALLY", "CLUSTERPLEX_POOL", "CLUSTERPLEX_CALLBACKS",
	"TRANSCODER_VERBOSE", "CLUSTERPLEX_POOL_CHANNELS",
	"CLUSTERPLEX_POOL_IDLE_MS", "CLUSTERPLEX_RUN_DIR",
	"CLUSTERPLEX_TRANSCODE_DIR", "CLUSTERPLEX_LOCAL_TRANSCODER",
	"CLUSTERPLEX_SSH_KEY", "CLUSTERPLEX_KNOWN_HOSTS", "CLUSTERPLEX_TOKEN",
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shim_config cfg;
	char *cause = NULL;

	cpx_log_set_level(CPX_LOG_ERROR);
	fe_apply(names, sizeof names / sizeof names[0], data, size);
	if (shim_config_load(&cfg, "/usr/lib/plexmediaserver", &cause) == 0) {
		if (cause != NULL || cfg.orchestrator_url == NULL ||
		    cfg.pms_port < 1 || cfg.pms_port > 65535 ||
		    cfg.dispatch_timeout_ms <= 0 || cfg.ssh_timeout_ms <= 0 ||
		    cfg.run_dir == NULL)
			abort();
	} else if (cause == NULL) {
		abort();	/* refused without saying why */
	}
	shim_config_free(&cfg);
	free(cause);
	return 0;
}
