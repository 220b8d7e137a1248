/* dispatcher_api.c — routes, auth, bad bodies, metrics and configuration, without sockets. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "disp.h"

#define TOKEN "t0ken-for-tests-0123"
#define KEY "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOx0abcdef w"

static struct disp_config cfg;
static struct disp d;
static struct cpx_httpd_limits lim;
static char body_out[65536];

static int
setup(void **state)
{
	disp_config_defaults(&cfg);
	cfg.token = cpx_xstrdup(TOKEN);
	disp_init(&d, &cfg);
	cpx_httpd_limits_default(&lim);
	return 0;
}

static int
teardown(void **state)
{
	disp_free(&d);
	disp_config_free(&cfg);
	return 0;
}

/* Runs one request through the real parser and the API; returns the status. */
static int
call(const char *method, const char *target, int auth, const char *body)
{
	struct cpx_httpd_parser p;
	struct cpx_httpd_req *req;
	struct cpx_httpd_resp resp;
	char *raw;
	size_t used;
	int status;

	raw = cpx_xprintf("%s %s HTTP/1.1\r\nHost: x\r\n%s%s%sContent-Length: "
	    "%zu\r\n\r\n%s", method, target, auth ? "Authorization: Bearer " :
	    "", auth ? (auth > 0 ? TOKEN : "wrong-token-xyz") : "",
	    auth ? "\r\n" : "", body ? strlen(body) : 0, body ? body : "");
	cpx_httpd_parser_init(&p, &lim);
	assert_int_equal(cpx_httpd_parse(&p, raw, strlen(raw), &used, &req), 1);
	cpx_httpd_resp_init(&resp);
	disp_api_handle(req, &resp, &d);
	status = resp.status;
	snprintf(body_out, sizeof body_out, "%.*s", (int)resp.body.len,
	    resp.body.len ? (const char *)resp.body.data : "");
	cpx_httpd_resp_free(&resp);
	cpx_httpd_parser_free(&p);
	free(raw);
	return status;
}

static void
register_worker(const char *name)
{
	char body[512];

	snprintf(body, sizeof body, "{\"name\":\"%s\",\"ssh\":{\"host\":"
	    "\"127.0.0.1\",\"port\":2222,\"user\":\"cpx\",\"host_key\":\"" KEY
	    "\"},\"cpus\":4,\"bench\":900,\"max_tasks\":2}", name);
	assert_int_equal(call("POST", "/api/v1/workers", 1, body), 201);
}

static void
test_auth(void **state)
{
	static const char *const guarded[][2] = {
		{ "POST", "/api/v1/workers" },
		{ "PUT", "/api/v1/workers/w1/heartbeat" },
		{ "DELETE", "/api/v1/workers/w1" },
		{ "POST", "/api/v1/workers/w1/drain" },
		{ "POST", "/api/v1/placements" },
		{ "POST", "/api/v1/jobs/j1/end" },
	};
	size_t i;

	for (i = 0; i < CPX_ARRAY_SIZE(guarded); i++) {
		assert_int_equal(call(guarded[i][0], guarded[i][1], 0, "{}"),
		    401);
		assert_int_equal(call(guarded[i][0], guarded[i][1], -1, "{}"),
		    401);
		assert_null(strstr(body_out, TOKEN));
	}
	/* The open routes answer without a token and print no secret. */
	register_worker("w1");
	assert_int_equal(call("GET", "/health", 0, NULL), 200);
	assert_non_null(strstr(body_out, "\"workers\":1"));
	assert_int_equal(call("GET", "/metrics", 0, NULL), 200);
	assert_null(strstr(body_out, TOKEN));
	assert_int_equal(call("GET", "/api/v1/workers", 0, NULL), 200);
	assert_null(strstr(body_out, TOKEN));
	assert_int_equal(call("GET", "/", 0, NULL), 200);
	assert_non_null(strstr(body_out, "<title>ClusterPlex dispatcher"));
}

static void
test_routes(void **state)
{
	assert_int_equal(call("GET", "/nope", 0, NULL), 404);
	assert_int_equal(call("GET", "/api/v1/workers/w1/heartbeat", 1, NULL),
	    405);
	assert_int_equal(call("POST", "/health", 1, "{}"), 405);
	assert_int_equal(call("PUT", "/api/v1/workers", 1, "{}"), 405);
	assert_int_equal(call("GET", "/api/v1/placements", 1, NULL), 405);
	assert_int_equal(call("POST", "/api/v1/workers/bad%2Fname/drain", 1,
	    "{}"), 404);
	assert_int_equal(call("POST", "/api/v1/jobs/j1/finish", 1, "{}"), 404);
	assert_int_equal(call("GET", "/api/v1/jobs?recent=x", 0, NULL), 400);
	assert_int_equal(call("GET", "/api/v1/jobs?recent=5", 0, NULL), 200);
}

static void
test_bad_bodies(void **state)
{
	assert_int_equal(call("POST", "/api/v1/workers", 1, "{\"name\":"), 400);
	assert_non_null(strstr(body_out, "not valid JSON"));
	assert_int_equal(call("POST", "/api/v1/workers", 1, "[1,2]"), 400);
	assert_int_equal(call("POST", "/api/v1/workers", 1, ""), 400);
	assert_int_equal(call("POST", "/api/v1/workers", 1,
	    "{\"name\":\"a b\",\"ssh\":{}}"), 400);
	assert_non_null(strstr(body_out, "\\\"name\\\""));
	assert_int_equal(call("POST", "/api/v1/workers", 1,
	    "{\"name\":\"w\",\"ssh\":{\"host\":\"h\",\"port\":70000,"
	    "\"user\":\"u\",\"host_key\":\"" KEY "\"}}"), 400);
	assert_int_equal(call("POST", "/api/v1/workers", 1,
	    "{\"name\":\"w\",\"ssh\":{\"host\":\"h\",\"port\":22,"
	    "\"user\":\"u\",\"host_key\":\"not a key\"}}"), 400);
	assert_non_null(strstr(body_out, "host_key"));
	assert_int_equal(call("POST", "/api/v1/placements", 1,
	    "{\"caps\":\"vaapi\"}"), 400);
	assert_int_equal(call("POST", "/api/v1/jobs/j1/end", 1,
	    "{\"outcome\":\"great\"}"), 400);
	register_worker("w1");
	assert_int_equal(call("PUT", "/api/v1/workers/w1/heartbeat", 1,
	    "{\"cpu\":-3}"), 400);
	assert_int_equal(call("PUT", "/api/v1/workers/w1/heartbeat", 1,
	    "{\"cpu\":5,\"jobs\":[{\"session\":\"s\"}]}"), 400);
	assert_int_equal(call("POST", "/api/v1/workers/w1/drain", 1,
	    "{\"drain\":\"yes\"}"), 400);
}

static void
test_lifecycle(void **state)
{
	register_worker("w1");
	assert_int_equal(call("POST", "/api/v1/placements", 1,
	    "{\"job\":\"j1\",\"session\":\"s1\"}"), 200);
	assert_non_null(strstr(body_out, "\"job\":\"j1\""));
	assert_non_null(strstr(body_out, "\"host_key\":\"" KEY "\""));
	assert_non_null(strstr(body_out, "\"port\":2222"));
	assert_int_equal(call("PUT", "/api/v1/workers/w1/heartbeat", 1,
	    "{\"cpu\":40,\"jobs\":[{\"id\":\"j1\"}]}"), 200);
	assert_int_equal(call("POST", "/api/v1/workers/w1/drain", 1,
	    "{\"drain\":true}"), 200);
	/* The heartbeat tells the worker it drains, so it can say so after our restart. */
	assert_int_equal(call("PUT", "/api/v1/workers/w1/heartbeat", 1,
	    "{\"cpu\":40,\"jobs\":[{\"id\":\"j1\"}]}"), 200);
	assert_non_null(strstr(body_out, "\"drain\":true"));
	assert_int_equal(call("POST", "/api/v1/placements", 1, "{}"), 503);
	assert_non_null(strstr(body_out, "\"code\":\"draining\""));
	assert_int_equal(call("POST", "/api/v1/jobs/j1/end", 1,
	    "{\"outcome\":\"ok\",\"exit\":0,\"duration_ms\":1234}"), 204);
	assert_int_equal(call("POST", "/api/v1/jobs/j1/end", 1,
	    "{\"outcome\":\"ok\"}"), 409);
	assert_int_equal(call("POST", "/api/v1/jobs/zz/end", 1,
	    "{\"outcome\":\"ok\"}"), 404);
	assert_int_equal(call("GET", "/api/v1/jobs", 0, NULL), 200);
	assert_non_null(strstr(body_out, "\"duration_ms\":1234"));
	assert_int_equal(call("DELETE", "/api/v1/workers/w1", 1, NULL), 204);
	assert_int_equal(call("PUT", "/api/v1/workers/w1/heartbeat", 1,
	    "{\"cpu\":1}"), 404);
	assert_non_null(strstr(body_out, "\"register\":true"));
	assert_int_equal(call("DELETE", "/api/v1/workers/w1", 1, NULL), 404);
}

static void
test_metrics_series_leave(void **state)
{
	register_worker("w1");
	register_worker("w2");
	assert_int_equal(call("POST", "/api/v1/placements", 1, "{}"), 200);
	assert_int_equal(call("GET", "/metrics", 0, NULL), 200);
	assert_non_null(strstr(body_out, "clusterplex_workers 2\n"));
	assert_non_null(strstr(body_out, "clusterplex_worker_tasks"
	    "{worker=\"w2\"}"));
	assert_non_null(strstr(body_out, "clusterplex_placements_total"
	    "{strategy=\"LOAD_RANK\",worker=\"w1\"} 1\n"));
	assert_non_null(strstr(body_out,
	    "clusterplex_placement_duration_seconds_count 1\n"));
	assert_int_equal(call("DELETE", "/api/v1/workers/w2", 1, NULL), 204);
	assert_int_equal(call("GET", "/metrics", 0, NULL), 200);
	assert_null(strstr(body_out, "w2"));
	assert_non_null(strstr(body_out, "clusterplex_workers 1\n"));
}

static void
test_config(void **state)
{
	struct disp_config c;
	char *cause = NULL;

	unsetenv("CLUSTERPLEX_TRUSTED_NETWORK");
	unsetenv("CLUSTERPLEX_TOKEN");
	setenv("WORKER_SELECTION_STRATEGY", "\"LOAD_TASKS\"", 1);
	assert_int_equal(disp_config_load(&c, &cause), -EINVAL);
	assert_non_null(strstr(cause, "CLUSTERPLEX_TRUSTED_NETWORK"));
	free(cause);
	cause = NULL;
	disp_config_free(&c);
	setenv("CLUSTERPLEX_TRUSTED_NETWORK", "true", 1);
	assert_int_equal(disp_config_load(&c, &cause), 0);
	assert_int_equal(c.strategy, DISP_LOAD_TASKS);
	assert_null(c.token);
	disp_config_free(&c);
	setenv("WORKER_SELECTION_STRATEGY", "LOAD_FASTEST", 1);
	assert_int_equal(disp_config_load(&c, &cause), -EINVAL);
	assert_non_null(strstr(cause, "RR, LOAD_CPU, LOAD_TASKS, LOAD_RANK"));
	free(cause);
	cause = NULL;
	disp_config_free(&c);
	setenv("WORKER_SELECTION_STRATEGY", "'rr'", 1);
	setenv("CLUSTERPLEX_HEARTBEAT_MISSES", "0", 1);
	assert_int_equal(disp_config_load(&c, &cause), -ERANGE);
	free(cause);
	disp_config_free(&c);
	unsetenv("CLUSTERPLEX_HEARTBEAT_MISSES");
	unsetenv("WORKER_SELECTION_STRATEGY");
	unsetenv("CLUSTERPLEX_TRUSTED_NETWORK");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_bodies, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_lifecycle, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_metrics_series_leave,
		    setup, teardown),
		cmocka_unit_test(test_config),
	};

	cpx_log_set_level(CPX_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
