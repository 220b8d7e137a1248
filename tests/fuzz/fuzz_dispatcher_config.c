/*
 * fuzz_dispatcher_config.c — the dispatcher's environment (ClusterPlex
 * crashed on WORKER_SELECTION_STRATEGY="LOAD_RANK" with the quotes): every
 * value is accepted in range or refused with a reason.
 */

#include <stdint.h>
#include <stdlib.h>

#include "disp.h"
#include "fuzz_env.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
	"WORKER_SELECTION_STRATEGY", "LISTENING_PORT", "CLUSTERPLEX_TOKEN",
	"CLUSTERPLEX_TRUSTED_NETWORK", "CLUSTERPLEX_LISTEN_ADDRESS",
	"CLUSTERPLEX_HEARTBEAT_MISSES", "CLUSTERPLEX_WORKER_BACKOFF_MS",
	"CLUSTERPLEX_SESSION_AFFINITY_MS", "CLUSTERPLEX_JOB_START_GRACE_MS",
	"CLUSTERPLEX_JOB_HISTORY", "CLUSTERPLEX_MAX_WORKERS",
	"CLUSTERPLEX_MAX_JOBS", "CLUSTERPLEX_HTTP_MAX_CONNECTIONS",
	"CLUSTERPLEX_HTTP_IDLE_MS", "CLUSTERPLEX_HTTP_REQUEST_MS",
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct disp_config cfg;
	char *cause = NULL;

	cpx_log_set_level(CPX_LOG_ERROR);
	fe_apply(names, sizeof names / sizeof names[0], data, size);
	if (disp_config_load(&cfg, &cause) == 0) {
		if (cause != NULL || cfg.port < 1 || cfg.port > 65535 ||
		    cfg.strategy < 0 || cfg.misses < 1 || cfg.history < 0 ||
		    cfg.max_workers < 1 || cfg.max_jobs < 1 ||
		    (cfg.token == NULL && !cfg.trusted_network))
			abort();
	} else if (cause == NULL) {
		abort();
	}
	disp_config_free(&cfg);
	free(cause);
	return 0;
}
