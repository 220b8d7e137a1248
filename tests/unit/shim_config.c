/* shim_config.c — the shim's environment: defaults and clear refusals. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shim.h"

static const char *const vars[] = { "ORCHESTRATOR_URL",
    "TRANSCODE_OPERATING_MODE", "TRANSCODER_VERBOSE", "PMS_PORT", "PMS_IP",
    "PMS_SERVICE", "CLUSTERPLEX_TOKEN", "CLUSTERPLEX_SSH_KEY",
    "CLUSTERPLEX_KNOWN_HOSTS", "CLUSTERPLEX_RUN_DIR", "CLUSTERPLEX_POOL",
    "CLUSTERPLEX_LOCAL_TRANSCODER", "CLUSTERPLEX_TRANSCODE_DIR",
    "CLUSTERPLEX_DISPATCH_TIMEOUT_MS", "CLUSTERPLEX_SSH_TIMEOUT_MS",
    "CLUSTERPLEX_KEEPALIVE_MS", "CLUSTERPLEX_LINK_TIMEOUT_MS",
    "CLUSTERPLEX_CALLBACKS", "CLUSTERPLEX_LOCAL_JOBS",
    "TRANSCODE_EAE_LOCALLY", "CLUSTERPLEX_POOL_IDLE_MS",
    "CLUSTERPLEX_POOL_CHANNELS", "CLUSTERPLEX_LOG_LEVEL" };

static int
clean_env(void **state)
{
	size_t i;

	for (i = 0; i < sizeof vars / sizeof vars[0]; i++)
		unsetenv(vars[i]);
	return 0;
}

/* Loads and expects failure whose message names `needle`. */
static void
refused(const char *needle)
{
	struct shim_config cfg;
	char *cause = NULL;

	assert_int_not_equal(shim_config_load(&cfg, "/opt/plex", &cause), 0);
	assert_non_null(cause);
	if (strstr(cause, needle) == NULL)
		fail_msg("\"%s\" does not mention %s", cause, needle);
	free(cause);
	shim_config_free(&cfg);
}

static void
test_defaults(void **state)
{
	struct shim_config cfg;
	char *cause = NULL;

	assert_int_equal(shim_config_load(&cfg, "/opt/plex", &cause), 0);
	assert_string_equal(cfg.orchestrator_url, "http://127.0.0.1:3500");
	assert_int_equal(cfg.mode, SHIM_MODE_BOTH);
	assert_int_equal(cfg.pms_port, 32400);
	assert_int_equal(cfg.pool, SHIM_POOL_AUTO);
	assert_int_equal(cfg.callbacks, SHIM_CB_TUNNEL);
	assert_string_equal(cfg.local_transcoder,
	    "/opt/plex/Plex Transcoder.real");
	assert_string_equal(cfg.run_dir, "/run/clusterplex");
	assert_int_equal(cfg.local_jobs,
	    SHIM_LOCAL_CREDITS | SHIM_LOCAL_THUMBNAILS);
	assert_true(cfg.dispatch_timeout_ms < 1000);
	assert_null(cfg.token);
	shim_config_free(&cfg);
}

/* Compose files carry quotes into the environment: accept one layer. */
static void
test_quotes_and_case(void **state)
{
	struct shim_config cfg;
	char *cause = NULL;

	setenv("TRANSCODE_OPERATING_MODE", "\"Remote\"", 1);
	setenv("TRANSCODER_VERBOSE", "'1'", 1);
	setenv("PMS_PORT", " 32401 ", 1);
	setenv("CLUSTERPLEX_LOCAL_JOBS", "EAE, credits", 1);
	assert_int_equal(shim_config_load(&cfg, "/x", &cause), 0);
	assert_int_equal(cfg.mode, SHIM_MODE_REMOTE);
	assert_true(cfg.verbose);
	assert_int_equal(cfg.pms_port, 32401);
	assert_int_equal(cfg.local_jobs, SHIM_LOCAL_EAE | SHIM_LOCAL_CREDITS);
	shim_config_free(&cfg);
}

static void
test_eae_locally(void **state)
{
	static const char *const no[] = { "false", "FALSE", "0", "no", "off",
	    "\"false\"" };
	struct shim_config cfg;
	char *cause = NULL;
	size_t i;

	setenv("CLUSTERPLEX_LOCAL_JOBS", "none", 1);
	for (i = 0; i < sizeof no / sizeof no[0]; i++) {
		setenv("TRANSCODE_EAE_LOCALLY", no[i], 1);
		assert_int_equal(shim_config_load(&cfg, "/x", &cause), 0);
		assert_int_equal(cfg.local_jobs, 0);
		shim_config_free(&cfg);
	}
	setenv("TRANSCODE_EAE_LOCALLY", "true", 1);
	assert_int_equal(shim_config_load(&cfg, "/x", &cause), 0);
	assert_int_equal(cfg.local_jobs, SHIM_LOCAL_EAE);
	shim_config_free(&cfg);
	setenv("TRANSCODE_EAE_LOCALLY", "maybe", 1);
	refused("TRANSCODE_EAE_LOCALLY");
}

static void
test_refusals(void **state)
{
	setenv("TRANSCODE_OPERATING_MODE", "hybrid", 1);
	refused("TRANSCODE_OPERATING_MODE");
	clean_env(state);
	setenv("PMS_PORT", "70000", 1);
	refused("PMS_PORT");
	clean_env(state);
	setenv("ORCHESTRATOR_URL", "https://dispatcher:3500", 1);
	refused("http://");
	clean_env(state);
	setenv("ORCHESTRATOR_URL", "http://:3500", 1);
	refused("host");
	clean_env(state);
	setenv("CLUSTERPLEX_POOL", "sometimes", 1);
	refused("CLUSTERPLEX_POOL");
	clean_env(state);
	setenv("CLUSTERPLEX_CALLBACKS", "rewrite", 1);
	refused("PMS_IP");
	clean_env(state);
	setenv("CLUSTERPLEX_KEEPALIVE_MS", "5000", 1);
	setenv("CLUSTERPLEX_LINK_TIMEOUT_MS", "6000", 1);
	refused("twice");
	clean_env(state);
	setenv("CLUSTERPLEX_DISPATCH_TIMEOUT_MS", "soon", 1);
	refused("not a number");
	clean_env(state);
	setenv("CLUSTERPLEX_LOCAL_JOBS", "credits,previews", 1);
	refused("CLUSTERPLEX_LOCAL_JOBS");
	clean_env(state);
	setenv("CLUSTERPLEX_RUN_DIR", "run", 1);
	refused("absolute");
	clean_env(state);
	setenv("CLUSTERPLEX_KNOWN_HOSTS", "/nonexistent/known_hosts", 1);
	refused("CLUSTERPLEX_KNOWN_HOSTS");
	clean_env(state);
	setenv("CLUSTERPLEX_LOG_LEVEL", "loud", 1);
	refused("CLUSTERPLEX_LOG_LEVEL");
}

static void
test_rewrite_mode(void **state)
{
	struct shim_config cfg;
	char *cause = NULL;

	setenv("CLUSTERPLEX_CALLBACKS", "rewrite", 1);
	setenv("PMS_SERVICE", "plex.default.svc", 1);
	assert_int_equal(shim_config_load(&cfg, "/x", &cause), 0);
	assert_string_equal(cfg.pms_host, "plex.default.svc");
	shim_config_free(&cfg);
	setenv("PMS_IP", "10.1.2.3", 1);
	assert_int_equal(shim_config_load(&cfg, "/x", &cause), 0);
	assert_string_equal(cfg.pms_host, "10.1.2.3");
	shim_config_free(&cfg);
}

static void
test_local_jobs_parser(void **state)
{
	unsigned v;

	assert_int_equal(shim_parse_local_jobs("", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(shim_parse_local_jobs("all", &v), 0);
	assert_int_equal(v, SHIM_LOCAL_CREDITS | SHIM_LOCAL_THUMBNAILS |
	    SHIM_LOCAL_EAE);
	assert_int_equal(shim_parse_local_jobs(",,thumbnails ,", &v), 0);
	assert_int_equal(v, SHIM_LOCAL_THUMBNAILS);
	assert_int_not_equal(shim_parse_local_jobs("credit", &v), 0);
	assert_int_not_equal(shim_parse_local_jobs("creditsx", &v), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_defaults, clean_env),
		cmocka_unit_test_setup(test_quotes_and_case, clean_env),
		cmocka_unit_test_setup(test_eae_locally, clean_env),
		cmocka_unit_test_setup(test_refusals, clean_env),
		cmocka_unit_test_setup(test_rewrite_mode, clean_env),
		cmocka_unit_test_setup(test_local_jobs_parser, clean_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
