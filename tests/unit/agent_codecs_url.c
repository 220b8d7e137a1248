/* agent_codecs_url.c — codec downloads: sources, the URL template, what is shown, curl's argv, the report to placement. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <cJSON.h>

#include "agent.h"
#include "cpx-protocol.h"

static void
test_sources(void **state)
{
	unsigned bits, order[AGENT_SRC_MAX];
	size_t n;

	assert_int_equal(agent_parse_sources("pms", &bits, order, &n), 0);
	assert_int_equal(bits, AGENT_SRC_PMS);
	assert_int_equal(n, 1);
	assert_int_equal(agent_parse_sources(" URL , pms ", &bits, order, &n),
	    0);
	assert_int_equal(bits, AGENT_SRC_PMS | AGENT_SRC_URL);
	assert_int_equal(n, 2);
	assert_int_equal(order[0], AGENT_SRC_URL);
	assert_int_equal(order[1], AGENT_SRC_PMS);
	assert_int_equal(agent_parse_sources("none", &bits, order, &n), 0);
	assert_int_equal(bits, 0);
	assert_int_equal(n, 0);
	assert_int_equal(agent_parse_sources("pms,pms", &bits, order, &n),
	    -EINVAL);
	assert_int_equal(agent_parse_sources("none,url", &bits, order, &n),
	    -EINVAL);
	assert_int_equal(agent_parse_sources("url,none", &bits, order, &n),
	    -EINVAL);
	assert_int_equal(agent_parse_sources("plex", &bits, order, &n),
	    -EINVAL);
	assert_int_equal(agent_parse_sources("pms;url", &bits, NULL, NULL),
	    -EINVAL);
}

static void
test_template(void **state)
{
	static const char *const bad[] = {
		"", "ftp://h/{file}", "https://", "https:///{file}",
		"https://{arch}/{file}", "https://h/{version}/{arch}",
		"https://h/{file", "https://h/file}/{file}",
		"https://h/{files}", "https://h/a b/{file}",
		"https://h/\x01/{file}", "https://h/\xc3\xa9/{file}",
	};
	char *cause = NULL, *u;
	size_t i;

	assert_int_equal(agent_codec_url_check("https://downloads.plex.tv/"
	    "codecs/{version}/{arch}/{file}", &cause), 0);
	assert_int_equal(agent_codec_url_check("HTTP://10.0.0.1:8080/{file}"
	    "?t=1", &cause), 0);
	for (i = 0; i < CPX_ARRAY_SIZE(bad); i++) {
		assert_int_equal(agent_codec_url_check(bad[i], &cause), -EINVAL);
		assert_non_null(cause);
		free(cause);
		cause = NULL;
	}
	u = agent_codec_url("https://downloads.plex.tv/codecs/{version}/{arch}/"
	    "{file}", "8bf330d-2818", "linux-aarch64-standard",
	    "libhevc_decoder.so");
	assert_string_equal(u, "https://downloads.plex.tv/codecs/8bf330d-2818/"
	    "linux-aarch64-standard/libhevc_decoder.so");
	free(u);
	/* A value is percent-encoded: it can never add a path or a query. */
	u = agent_codec_url("http://h/{file}/{file}", "v", "a", "x/../?a b%");
	assert_string_equal(u, "http://h/x%2F..%2F%3Fa%20b%25/x%2F..%2F%3Fa%20b%25");
	free(u);
}

static void
test_shown(void **state)
{
	static const char *const cases[][2] = {
		{ "https://h/a/b.so", "https://h/a/b.so" },
		{ "https://h/a/b.so?X-Plex-Token=secret", "https://h/a/b.so?..." },
		{ "https://u:pw@h:1/a.so", "https://h:1/a.so" },
		{ "https://a@b@h/x#frag", "https://h/x?..." },
		{ "http://h?q", "http://h?..." },
		{ "not a url", "not a url" },
	};
	size_t i;
	char *s;

	for (i = 0; i < CPX_ARRAY_SIZE(cases); i++) {
		s = agent_codec_url_shown(cases[i][0]);
		assert_string_equal(s, cases[i][1]);
		free(s);
	}
}

static void
test_arch_and_libs(void **state)
{
	struct cpx_codec_set s;
	char *a;

	assert_int_equal(cpx_codec_set_parse("8bf330d-2818-linux-aarch64-"
	    "standard", &s), 0);
	a = agent_codec_arch(&s);
	assert_string_equal(a, "linux-aarch64-standard");
	free(a);
	cpx_codec_set_free(&s);
	assert_int_equal(cpx_codec_set_parse("1-2-linux-armv7neon", &s), 0);
	a = agent_codec_arch(&s);
	assert_string_equal(a, "linux-armv7neon");
	free(a);
	cpx_codec_set_free(&s);
	assert_int_equal(cpx_codec_set_parse("custom", &s), 0);
	assert_null(agent_codec_arch(&s));
	cpx_codec_set_free(&s);
	assert_true(agent_codec_is_lib("libhevc_decoder.so"));
	assert_false(agent_codec_is_lib("EasyAudioEncoder/libx.so"));
	assert_false(agent_codec_is_lib(".hidden.so"));
	assert_false(agent_codec_is_lib("licence.txt"));
	assert_false(agent_codec_is_lib(".so"));
	assert_false(agent_codec_is_lib("lib x.so"));
}

static int
has_pair(char **v, const char *a, const char *b)
{
	size_t i;

	for (i = 0; v[i] != NULL && v[i + 1] != NULL; i++) {
		if (strcmp(v[i], a) == 0 && strcmp(v[i + 1], b) == 0)
			return 1;
	}
	return 0;
}

static void
test_curl_argv(void **state)
{
	char **v = agent_curl_argv("/usr/bin/curl", "https://h/x.so", 1048576,
	    2500);
	char *env[] = { "PATH=/bin", "https_proxy=http://p:3128", "HOME=/root",
		"SSL_CERT_FILE=/etc/ca.pem", "https_proxyX=1", NULL };
	char **e;
	size_t i;

	assert_string_equal(v[0], "/usr/bin/curl");
	/* -q must come first, or a ~/.curlrc would be read. */
	assert_string_equal(v[1], "-q");
	assert_true(has_pair(v, "--proto", "=https,http"));
	assert_true(has_pair(v, "--proto-redir", "=https"));
	assert_true(has_pair(v, "--max-time", "3"));
	assert_true(has_pair(v, "--connect-timeout", "3"));
	assert_true(has_pair(v, "--max-filesize", "1048576"));
	assert_true(has_pair(v, "--url", "https://h/x.so"));
	assert_true(has_pair(v, "--output", "-"));
	for (i = 0; v[i] != NULL; i++)
		assert_string_not_equal(v[i], "--insecure");
	assert_string_equal(v[i - 1], "https://h/x.so");
	for (i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
	v = agent_curl_argv("/usr/bin/curl", "http://h/x.so", 5, 600000);
	assert_true(has_pair(v, "--proto-redir", "=https,http"));
	assert_true(has_pair(v, "--connect-timeout", "10"));
	assert_true(has_pair(v, "--max-time", "600"));
	for (i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
	e = agent_curl_env(env);
	assert_string_equal(e[0], "https_proxy=http://p:3128");
	assert_string_equal(e[1], "SSL_CERT_FILE=/etc/ca.pem");
	assert_null(e[2]);
	free(e[0]);
	free(e[1]);
	free(e);
}

static char tmp[] = "/tmp/agent-codecs-url-XXXXXX";

/* The report to placement: CPU, sources in order, each set held once. */
static void
test_report(void **state)
{
	struct agent_config cfg;
	char *cache, *own, *p;
	cJSON *o, *sets;

	assert_non_null(mkdtemp(tmp));
	cache = cpx_xprintf("%s/cache", tmp);
	own = cpx_xprintf("%s/own", tmp);
	p = cpx_xprintf("%s/8bf330d-2818-linux-aarch64-standard", cache);
	assert_int_equal(cpx_mkdir_p(p, 0755), 0);
	free(p);
	p = cpx_xprintf("%s/.tmp-1-linux-aarch64-9", cache);
	assert_int_equal(cpx_mkdir_p(p, 0755), 0);
	free(p);
	/* A cache folder without its manifest is no set (a job ignores it). */
	p = cpx_xprintf("%s/7-7-linux-aarch64-standard", cache);
	assert_int_equal(cpx_mkdir_p(p, 0755), 0);
	free(p);
	p = cpx_xprintf("%s/6-6-linux-aarch64-standard", cache);
	assert_int_equal(cpx_mkdir_p(p, 0755), 0);
	free(p);
	p = cpx_xprintf("%s/6-6-linux-aarch64-standard/.clusterplex-set.json",
	    cache);
	fclose(fopen(p, "w"));
	free(p);
	p = cpx_xprintf("%s/8bf330d-2818-linux-aarch64-standard", own);
	assert_int_equal(cpx_mkdir_p(p, 0755), 0);
	free(p);
	p = cpx_xprintf("%s/9-9-linux-aarch64-standard", own);
	assert_int_equal(cpx_mkdir_p(p, 0755), 0);
	free(p);
	memset(&cfg, 0, sizeof cfg);
	cfg.codec_cache = cache;
	cfg.codec_dirs = own;
	cfg.codec_cpu = "aarch64";
	cfg.codec_order[0] = AGENT_SRC_URL;
	cfg.codec_order[1] = AGENT_SRC_PMS;
	cfg.ncodec_order = 2;
	o = agent_codecs_json(&cfg);
	assert_string_equal(cJSON_GetObjectItem(o, "cpu")->valuestring,
	    "aarch64");
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(o,
	    "sources"), 0)->valuestring, "url");
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(o,
	    "sources"), 1)->valuestring, "pms");
	sets = cJSON_GetObjectItem(o, "sets");
	assert_int_equal(cJSON_GetArraySize(sets), 3);
	p = cJSON_PrintUnformatted(sets);
	assert_non_null(strstr(p, "\"6-6-linux-aarch64-standard\""));
	assert_non_null(strstr(p, "\"8bf330d-2818-linux-aarch64-standard\""));
	assert_non_null(strstr(p, "\"9-9-linux-aarch64-standard\""));
	assert_null(strstr(p, "7-7"));
	cJSON_free(p);
	cJSON_Delete(o);
	p = cpx_xprintf("rm -rf '%s'", tmp);
	assert_int_equal(system(p), 0);
	free(p);
	free(cache);
	free(own);
}

/* The configuration refuses what would fail at the first download. */
static void
test_config(void **state)
{
	static const char *const bad[][2] = {
		{ "CLUSTERPLEX_CODEC_URL", "https://h/{version}/{arch}" },
		{ "CLUSTERPLEX_CODEC_URL", "file:///etc/{file}" },
		{ "CLUSTERPLEX_CODEC_CPU", "x86-64" },
		{ "CLUSTERPLEX_CODEC_SOURCES", "pms,none" },
		{ "CLUSTERPLEX_CODEC_MAX_MB", "0" },
	};
	struct agent_config cfg;
	char *cause = NULL;
	size_t i;

	setenv("CLUSTERPLEX_CODEC_SOURCES", "pms,url", 1);
	assert_int_equal(agent_config_load(&cfg, 0, &cause), 0);
	assert_non_null(cfg.curl);
	assert_true(cfg.curl[0] == '/');
	assert_int_equal(cfg.codec_max_mb, 1024);
	assert_string_equal(cfg.codec_url, "https://downloads.plex.tv/codecs/"
	    "{version}/{arch}/{file}");
	agent_config_free(&cfg);
	for (i = 0; i < CPX_ARRAY_SIZE(bad); i++) {
		setenv(bad[i][0], bad[i][1], 1);
		assert_int_equal(agent_config_load(&cfg, 0, &cause), -EINVAL);
		assert_non_null(strstr(cause, bad[i][0]));
		free(cause);
		cause = NULL;
		agent_config_free(&cfg);
		unsetenv(bad[i][0]);
	}
	unsetenv("CLUSTERPLEX_CODEC_SOURCES");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sources),
		cmocka_unit_test(test_template),
		cmocka_unit_test(test_shown),
		cmocka_unit_test(test_arch_and_libs),
		cmocka_unit_test(test_curl_argv),
		cmocka_unit_test(test_report),
		cmocka_unit_test(test_config),
	};

	cpx_log_set_level(CPX_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
