/* agent_config.c — the agent's env file and environment validation. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent.h"

struct seen {
	char names[8][64];
	char values[8][64];
	int n;
};

static int
record(const char *name, const char *value, void *arg)
{
	struct seen *s = arg;

	snprintf(s->names[s->n], 64, "%s", name);
	snprintf(s->values[s->n], 64, "%s", value);
	s->n++;
	return 0;
}

static void
test_env_file_lines(void **state)
{
	const char *text = "# comment\n\nA=1\n  export B = x\nC=\"quoted value\"\r\n"
	    "D=a=b";
	struct seen s = { .n = 0 };
	char *cause = NULL;

	assert_int_equal(agent_env_file_parse(text, strlen(text), record, &s,
	    &cause), -EINVAL);
	assert_non_null(strstr(cause, "line 4"));
	free(cause);
	cause = NULL;

	text = "# comment\n\nA=1\n  export B=x \nC=\"quoted value\"\r\nD=a=b";
	s.n = 0;
	assert_int_equal(agent_env_file_parse(text, strlen(text), record, &s,
	    &cause), 0);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.names[1], "B");
	assert_string_equal(s.values[1], "x");
	assert_string_equal(s.values[2], "\"quoted value\"");
	assert_string_equal(s.names[3], "D");
	assert_string_equal(s.values[3], "a=b");
}

static void
test_env_file_refuses_garbage(void **state)
{
	const char *bad[] = { "=x", "1A=x", "A B=x", "novalue", "A-B=1" };
	struct seen s = { .n = 0 };
	size_t i;

	for (i = 0; i < CPX_ARRAY_SIZE(bad); i++) {
		char *cause = NULL;

		assert_int_equal(agent_env_file_parse(bad[i], strlen(bad[i]),
		    record, &s, &cause), -EINVAL);
		assert_non_null(cause);
		free(cause);
	}
	assert_int_equal(s.n, 0);
}

static void
test_config_defaults_and_errors(void **state)
{
	struct agent_config cfg;
	char *cause = NULL;

	unsetenv("ORCHESTRATOR_URL");
	setenv("TRANSCODER_PATH", "/opt/plex", 1);
	setenv("TRANSCODER_NAME", "\"Plex Transcoder\"", 1);
	setenv("FFMPEG_HWACCEL", "false", 1);
	assert_int_equal(agent_config_load(&cfg, 0, &cause), 0);
	assert_string_equal(cfg.transcoder, "/opt/plex/Plex Transcoder");
	assert_null(cfg.hwaccel);
	assert_string_equal(cfg.root, "/transcode");
	agent_config_free(&cfg);

	assert_int_not_equal(agent_config_load(&cfg, 1, &cause), 0);
	assert_non_null(strstr(cause, "ORCHESTRATOR_URL"));
	free(cause);
	cause = NULL;
	agent_config_free(&cfg);

	setenv("ORCHESTRATOR_URL", "http://127.0.0.1:3500", 1);
	setenv("STAT_CPU_INTERVAL", "soon", 1);
	assert_int_not_equal(agent_config_load(&cfg, 1, &cause), 0);
	assert_non_null(strstr(cause, "STAT_CPU_INTERVAL"));
	free(cause);
	agent_config_free(&cfg);
	unsetenv("STAT_CPU_INTERVAL");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_file_lines),
		cmocka_unit_test(test_env_file_refuses_garbage),
		cmocka_unit_test(test_config_defaults_and_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
