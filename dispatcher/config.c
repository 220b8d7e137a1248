/* config.c — the dispatcher's environment, validated before it listens. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "disp.h"

const char *const disp_strategy_names[] = {
	"RR", "LOAD_CPU", "LOAD_TASKS", "LOAD_RANK", NULL
};

void
disp_config_defaults(struct disp_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->listen_host = cpx_xstrdup("0.0.0.0");
	cfg->port = 3500;
	cfg->strategy = DISP_LOAD_RANK;
	cfg->misses = 3;
	cfg->backoff_ms = 30000;
	cfg->affinity_ms = 600000;
	cfg->start_grace_ms = 15000;
	cfg->history = 200;
	cfg->max_workers = 4096;
	cfg->max_jobs = 100000;
	cfg->max_conns = 1024;
	cfg->idle_ms = 60000;
	cfg->request_ms = 10000;
}

struct long_var {
	const char *name;
	size_t off;
	long min, max;
};

static const struct long_var long_vars[] = {
	{ "LISTENING_PORT", offsetof(struct disp_config, port), 1, 65535 },
	{ "CLUSTERPLEX_HEARTBEAT_MISSES",
	    offsetof(struct disp_config, misses), 1, 100 },
	{ "CLUSTERPLEX_WORKER_BACKOFF_MS",
	    offsetof(struct disp_config, backoff_ms), 0, 3600000 },
	{ "CLUSTERPLEX_SESSION_AFFINITY_MS",
	    offsetof(struct disp_config, affinity_ms), 0, 86400000 },
	{ "CLUSTERPLEX_JOB_START_GRACE_MS",
	    offsetof(struct disp_config, start_grace_ms), 1000, 600000 },
	{ "CLUSTERPLEX_JOB_HISTORY", offsetof(struct disp_config, history),
	    0, 100000 },
	{ "CLUSTERPLEX_MAX_WORKERS",
	    offsetof(struct disp_config, max_workers), 1, 100000 },
	{ "CLUSTERPLEX_MAX_JOBS", offsetof(struct disp_config, max_jobs),
	    1, 10000000 },
	{ "CLUSTERPLEX_HTTP_MAX_CONNECTIONS",
	    offsetof(struct disp_config, max_conns), 16, 100000 },
	{ "CLUSTERPLEX_HTTP_IDLE_MS", offsetof(struct disp_config, idle_ms),
	    1000, 3600000 },
	{ "CLUSTERPLEX_HTTP_REQUEST_MS",
	    offsetof(struct disp_config, request_ms), 100, 600000 },
};

static int
load_longs(struct disp_config *cfg, char **cause)
{
	size_t i;
	long *p;
	int error;

	for (i = 0; i < CPX_ARRAY_SIZE(long_vars); i++) {
		p = (long *)(void *)((char *)cfg + long_vars[i].off);
		error = cpx_env_long(long_vars[i].name, *p, long_vars[i].min,
		    long_vars[i].max, p, cause);
		if (error != 0)
			return error;
	}
	return 0;
}

/*
 * Without a token anyone who reaches the port could register a worker and
 * receive transcodes; that is allowed only when the operator says the
 * network is trusted.
 */
static int
load_token(struct disp_config *cfg, char **cause)
{
	int error;

	error = cpx_env_bool("CLUSTERPLEX_TRUSTED_NETWORK", 0,
	    &cfg->trusted_network, cause);
	if (error != 0)
		return error;
	cfg->token = cpx_env_value("CLUSTERPLEX_TOKEN");
	if (cfg->token == NULL && !cfg->trusted_network) {
		cpx_set_cause(cause, "CLUSTERPLEX_TOKEN is not set; set it (the "
		    "same value on workers and the PMS host), or set "
		    "CLUSTERPLEX_TRUSTED_NETWORK=true to run without one");
		return -EINVAL;
	}
	return 0;
}

int
disp_config_load(struct disp_config *cfg, char **cause)
{
	char *host;
	int error;

	disp_config_defaults(cfg);
	error = cpx_env_enum("WORKER_SELECTION_STRATEGY", "LOAD_RANK",
	    disp_strategy_names, &cfg->strategy, cause);
	if (error == 0)
		error = load_longs(cfg, cause);
	if (error == 0)
		error = load_token(cfg, cause);
	if (error == 0 && (host = cpx_env_value(
	    "CLUSTERPLEX_LISTEN_ADDRESS")) != NULL) {
		free(cfg->listen_host);
		cfg->listen_host = host;
	}
	return error;
}

void
disp_config_free(struct disp_config *cfg)
{
	free(cfg->token);
	free(cfg->listen_host);
	memset(cfg, 0, sizeof *cfg);
}
