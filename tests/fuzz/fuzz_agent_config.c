/*
 * fuzz_agent_config.c — the worker's environment (agent serve's, and the
 * env file `agent exec` loads): every value is accepted in range or
 * refused with a reason.
 */

#include <stdint.h>
#include <stdlib.h>

#include "agent.h"
#include "fuzz_env.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
	"ORCHESTRATOR_URL", "CLUSTERPLEX_WORKER_NAME", "LISTENING_PORT",
	"STAT_CPU_INTERVAL", "CLUSTERPLEX_MAX_TASKS", "CLUSTERPLEX_MIN_FREE_MB",
	"CLUSTERPLEX_LINK_TIMEOUT_MS", "CLUSTERPLEX_TRANSCODE_DIR",
	"CLUSTERPLEX_PATH_MAP", "FFMPEG_HWACCEL", "TRANSCODER_PATH",
	"TRANSCODER_NAME", "CLUSTERPLEX_SSH_ADDRESS", "CLUSTERPLEX_CAPS",
	"CLUSTERPLEX_LABELS", "CLUSTERPLEX_CODEC_SOURCES",
	"CLUSTERPLEX_CODEC_CACHE", "CLUSTERPLEX_CODEC_TIMEOUT_MS",
	"CLUSTERPLEX_EAE_DIR", "CLUSTERPLEX_EAE_PATH", "CLUSTERPLEX_EAE_IDLE_MS",
	"CLUSTERPLEX_RUN_DIR", "CLUSTERPLEX_TOKEN", "CLUSTERPLEX_CODEC_URL",
	"CLUSTERPLEX_CODEC_CPU", "CLUSTERPLEX_CODEC_MAX_MB",
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_config cfg;
	char *cause = NULL;
	int serve;

	cpx_log_set_level(CPX_LOG_ERROR);
	fe_apply(names, sizeof names / sizeof names[0], data, size);
	for (serve = 0; serve <= 1; serve++) {
		if (agent_config_load(&cfg, serve, &cause) == 0) {
			if (cause != NULL || cfg.root[0] != '/' ||
			    cfg.max_tasks < 1 || cfg.link_timeout_ms < 1 ||
			    (serve && (cfg.listen_port < 1 ||
			    cfg.listen_port > 65535 || cfg.heartbeat_ms < 100)))
				abort();
		} else if (cause == NULL) {
			abort();
		}
		agent_config_free(&cfg);
		free(cause);
		cause = NULL;
	}
	return 0;
}
