/* config.c — the shim's environment, validated before anything runs. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "shim.h"

static const char *const modes[] = { "local", "remote", "both", NULL };
static const char *const pool_uses[] = { "auto", "on", "off", NULL };
static const char *const callbacks[] = { "tunnel", "rewrite", NULL };

/* "credits,thumbnails,eae", "none" or "all"; case and blanks ignored. */
int
shim_parse_local_jobs(const char *s, unsigned *out)
{
	static const struct { const char *name; unsigned bit; } kinds[] = {
		{ "credits", SHIM_LOCAL_CREDITS },
		{ "thumbnails", SHIM_LOCAL_THUMBNAILS },
		{ "eae", SHIM_LOCAL_EAE },
		{ "all", SHIM_LOCAL_CREDITS | SHIM_LOCAL_THUMBNAILS |
		    SHIM_LOCAL_EAE },
		{ "none", 0 },
	};
	size_t i, n;

	*out = 0;
	while (*s != '\0') {
		s += strspn(s, " ,");
		n = strcspn(s, " ,");
		if (n == 0)
			break;
		for (i = 0; i < CPX_ARRAY_SIZE(kinds); i++) {
			if (strlen(kinds[i].name) == n &&
			    strncasecmp(s, kinds[i].name, n) == 0)
				break;
		}
		if (i == CPX_ARRAY_SIZE(kinds))
			return -EINVAL;
		*out |= kinds[i].bit;
		s += n;
	}
	return 0;
}

static int
load_local_jobs(struct shim_config *cfg, char **cause)
{
	char *v = NULL;
	int eae, error = 0;

	cpx_env_str("CLUSTERPLEX_LOCAL_JOBS", "credits,thumbnails", &v);
	if (shim_parse_local_jobs(v, &cfg->local_jobs) != 0) {
		cpx_set_cause(cause, "CLUSTERPLEX_LOCAL_JOBS=\"%s\" is not a "
		    "list of credits, thumbnails, eae (or none, all)", v);
		error = -EINVAL;
	} else if (cpx_env_bool("TRANSCODE_EAE_LOCALLY", 0, &eae, cause) != 0) {
		error = -EINVAL;
	} else if (eae) {
		cfg->local_jobs |= SHIM_LOCAL_EAE;
	}
	free(v);
	return error;
}

static int
load_paths(struct shim_config *cfg, const char *self_dir, char **cause)
{
	char *def = cpx_xprintf("%s/Plex Transcoder.real", self_dir);

	cpx_env_str("CLUSTERPLEX_SSH_KEY", "/etc/clusterplex/id_ed25519",
	    &cfg->key_path);
	cfg->known_hosts = cpx_env_value("CLUSTERPLEX_KNOWN_HOSTS");
	cpx_env_str("CLUSTERPLEX_RUN_DIR", "/run/clusterplex", &cfg->run_dir);
	cpx_env_str("CLUSTERPLEX_LOCAL_TRANSCODER", def,
	    &cfg->local_transcoder);
	cfg->transcode_dir = cpx_env_value("CLUSTERPLEX_TRANSCODE_DIR");
	free(def);
	if (cfg->run_dir[0] != '/' || cfg->key_path[0] != '/' ||
	    (cfg->transcode_dir != NULL && cfg->transcode_dir[0] != '/')) {
		cpx_set_cause(cause, "CLUSTERPLEX_RUN_DIR, CLUSTERPLEX_SSH_KEY "
		    "and CLUSTERPLEX_TRANSCODE_DIR must be absolute paths");
		return -EINVAL;
	}
	if (cfg->known_hosts != NULL && access(cfg->known_hosts, R_OK) != 0) {
		cpx_set_cause(cause, "CLUSTERPLEX_KNOWN_HOSTS=\"%s\": %s",
		    cfg->known_hosts, strerror(errno));
		return -EINVAL;
	}
	return 0;
}

static int
load_times(struct shim_config *cfg, char **cause)
{
	if (cpx_env_long("CLUSTERPLEX_DISPATCH_TIMEOUT_MS", 500, 50, 60000,
	    &cfg->dispatch_timeout_ms, cause) != 0 ||
	    cpx_env_long("CLUSTERPLEX_SSH_TIMEOUT_MS", 3000, 100, 60000,
	    &cfg->ssh_timeout_ms, cause) != 0 ||
	    cpx_env_long("CLUSTERPLEX_KEEPALIVE_MS", 2000, 100, 60000,
	    &cfg->keepalive_ms, cause) != 0 ||
	    cpx_env_long("CLUSTERPLEX_LINK_TIMEOUT_MS", 10000, 500, 600000,
	    &cfg->link_timeout_ms, cause) != 0 ||
	    cpx_env_long("CLUSTERPLEX_POOL_IDLE_MS", 600000, 1000, 86400000,
	    &cfg->pool_idle_ms, cause) != 0 ||
	    cpx_env_long("CLUSTERPLEX_POOL_CHANNELS", 8, 1, 64,
	    &cfg->pool_channels, cause) != 0)
		return -EINVAL;
	if (cfg->link_timeout_ms < 2 * cfg->keepalive_ms) {
		cpx_set_cause(cause, "CLUSTERPLEX_LINK_TIMEOUT_MS=%ld must be at "
		    "least twice CLUSTERPLEX_KEEPALIVE_MS=%ld",
		    cfg->link_timeout_ms, cfg->keepalive_ms);
		return -EINVAL;
	}
	return 0;
}

static int
load_pms(struct shim_config *cfg, char **cause)
{
	char *host = NULL, *path = NULL, *level;
	enum cpx_log_level lv;
	int port, error = 0;

	if (cpx_env_long("PMS_PORT", 32400, 1, 65535, &cfg->pms_port,
	    cause) != 0)
		return -EINVAL;
	cfg->pms_host = cpx_env_value("PMS_IP");
	if (cfg->pms_host == NULL)
		cfg->pms_host = cpx_env_value("PMS_SERVICE");
	if (cfg->callbacks == SHIM_CB_REWRITE && cfg->pms_host == NULL) {
		cpx_set_cause(cause, "CLUSTERPLEX_CALLBACKS=rewrite needs PMS_IP "
		    "or PMS_SERVICE");
		return -EINVAL;
	}
	cpx_env_str("ORCHESTRATOR_URL", "http://127.0.0.1:3500",
	    &cfg->orchestrator_url);
	error = cpx_parse_url(cfg->orchestrator_url, &host, &port, &path,
	    cause);
	free(host);
	free(path);
	level = cpx_env_value("CLUSTERPLEX_LOG_LEVEL");
	if (error == 0 && level != NULL && cpx_log_parse_level(level, &lv)) {
		cpx_set_cause(cause, "CLUSTERPLEX_LOG_LEVEL=\"%s\" is not one "
		    "of error, warn, info, debug", level);
		error = -EINVAL;
	}
	free(level);
	return error;
}

/*
 * Fills *cfg from the environment. Every value is checked here, so a
 * typo is one clear line at the first job, never a crash later.
 * `self_dir` is where the shim is installed (for the default local
 * transcoder).
 */
int
shim_config_load(struct shim_config *cfg, const char *self_dir, char **cause)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->token = cpx_env_value("CLUSTERPLEX_TOKEN");
	if (cpx_env_enum("TRANSCODE_OPERATING_MODE", "both", modes, &cfg->mode,
	    cause) != 0 ||
	    cpx_env_bool("TRANSCODER_VERBOSE", 0, &cfg->verbose, cause) != 0 ||
	    cpx_env_enum("CLUSTERPLEX_POOL", "auto", pool_uses, &cfg->pool,
	    cause) != 0 ||
	    cpx_env_enum("CLUSTERPLEX_CALLBACKS", "tunnel", callbacks,
	    &cfg->callbacks, cause) != 0)
		return -EINVAL;
	if (load_pms(cfg, cause) != 0 || load_paths(cfg, self_dir, cause) != 0 ||
	    load_times(cfg, cause) != 0 || load_local_jobs(cfg, cause) != 0)
		return -EINVAL;
	return 0;
}

void
shim_config_free(struct shim_config *cfg)
{
	free(cfg->orchestrator_url);
	free(cfg->pms_host);
	free(cfg->token);
	free(cfg->key_path);
	free(cfg->known_hosts);
	free(cfg->run_dir);
	free(cfg->local_transcoder);
	free(cfg->transcode_dir);
	memset(cfg, 0, sizeof *cfg);
}
