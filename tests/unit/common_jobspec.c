/* common_jobspec.c — the job spec travels byte-for-byte and refuses bad input. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cpx-protocol.h"

static char *
xorshift_arg(uint32_t *state, size_t len)
{
	char *s = cpx_xmalloc(len + 1);
	size_t i;

	for (i = 0; i < len; i++) {
		uint32_t x = *state;

		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		*state = x;
		s[i] = (char)(1 + x % 255);	/* every byte value but NUL */
	}
	s[len] = '\0';
	return s;
}

static void
fill_spec(struct cpx_jobspec *js, char **argv, size_t argc)
{
	static char *env[] = { "X_PLEX_TOKEN=secret", "A=b c", NULL };

	memset(js, 0, sizeof *js);
	js->id = "job-1";
	js->session = "sess";
	js->root = "/transcode";
	js->cwd = "/transcode/Transcode/Sessions/plex-transcode-x";
	js->argv = argv;
	js->argc = argc;
	js->env = env;
	js->envc = 2;
	js->pms_port = 32400;
	js->tunnel = 1;
}

static void
roundtrip(char **argv, size_t argc)
{
	struct cpx_jobspec in, out;
	char *json, *cause = NULL;
	size_t i;

	fill_spec(&in, argv, argc);
	json = cpx_jobspec_encode(&in);
	assert_int_equal(cpx_jobspec_decode(json, strlen(json), &out, &cause), 0);
	assert_int_equal(out.argc, argc);
	for (i = 0; i < argc; i++)
		assert_string_equal(out.argv[i], argv[i]);
	assert_null(out.argv[argc]);
	assert_string_equal(out.cwd, in.cwd);
	assert_int_equal(out.envc, 2);
	assert_string_equal(out.env[1], "A=b c");
	assert_int_equal(out.pms_port, 32400);
	assert_true(out.tunnel);
	cpx_jobspec_free(&out);
	free(json);
}

static void
test_plain_and_hostile_args(void **state)
{
	char *argv[] = { "-i", "", "a b", "'\"$;`\\", "line\nbreak",
		"\xff\xfe not utf8", "caf\xc3\xa9", "\xed\xa0\x80", "\x01\x1f\x7f",
		"init-stream$RepresentationID$.m4s" };

	roundtrip(argv, CPX_ARRAY_SIZE(argv));
}

static void
test_every_byte_value(void **state)
{
	char *argv[255];
	size_t i;

	for (i = 0; i < 255; i++) {
		argv[i] = cpx_xmalloc(2);
		argv[i][0] = (char)(i + 1);
		argv[i][1] = '\0';
	}
	roundtrip(argv, 255);
	for (i = 0; i < 255; i++)
		free(argv[i]);
}

static void
test_random_argvs(void **state)
{
	uint32_t seed = 0x9e3779b9;
	int round;

	for (round = 0; round < 500; round++) {
		char *argv[16];
		size_t i, argc = 1 + seed % 16;

		for (i = 0; i < argc; i++)
			argv[i] = xorshift_arg(&seed, seed % 64);
		roundtrip(argv, argc);
		for (i = 0; i < argc; i++)
			free(argv[i]);
	}
}

static void
expect_refused(const char *json, const char *fragment)
{
	struct cpx_jobspec js;
	char *cause = NULL;

	assert_int_not_equal(cpx_jobspec_decode(json, strlen(json), &js,
	    &cause), 0);
	assert_non_null(cause);
	assert_non_null(strstr(cause, fragment));
	free(cause);
	cpx_jobspec_free(&js);
}

static void
test_refuses_bad_specs(void **state)
{
	expect_refused("", "not a JSON object");
	expect_refused("[1]", "not a JSON object");
	expect_refused("{\"v\":2}", "version");
	expect_refused("{\"v\":1,\"id\":\"\"}", "\"id\"");
	expect_refused("{\"v\":1,\"id\":\"a\",\"root\":\"rel\",\"cwd\":\"/x\"}",
	    "absolute");
	expect_refused("{\"v\":1,\"id\":\"a\",\"root\":\"/r\",\"cwd\":\"/x\","
	    "\"pms_port\":0}", "pms_port");
	expect_refused("{\"v\":1,\"id\":\"a\",\"root\":\"/r\",\"cwd\":\"/x\","
	    "\"pms_port\":1,\"argv\":[1]}", "argv");
	expect_refused("{\"v\":1,\"id\":\"a\",\"root\":\"/r\",\"cwd\":\"/x\","
	    "\"pms_port\":1,\"argv\":[{\"b64\":\"AA==\"}]}", "argv");
	expect_refused("{\"v\":1,\"id\":\"a\",\"root\":\"/r\",\"cwd\":\"/x\","
	    "\"pms_port\":1,\"argv\":[],\"env\":[],\"inputs\":[{\"name\":"
	    "\"../x\",\"size\":1}]}", "input");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_and_hostile_args),
		cmocka_unit_test(test_every_byte_value),
		cmocka_unit_test(test_random_argvs),
		cmocka_unit_test(test_refuses_bad_specs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
