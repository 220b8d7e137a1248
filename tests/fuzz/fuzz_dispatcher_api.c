/*
 * fuzz_dispatcher_api.c — raw HTTP requests, pipelined, through the
 * dispatcher's parser and router into a live registry, as its port sees
 * them: every answer is a valid status (JSON bodies parse), and nothing
 * that changes the registry succeeds without the token.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "disp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOKEN "fuzz-token-0123456789"

static struct disp_config cfg;
static struct disp d;
static struct cpx_httpd_limits lim;

static int
guarded(const struct cpx_httpd_req *req)
{
	return (req->method != HTTP_GET && req->method != HTTP_HEAD) ||
	    strcmp(req->path, "/api/v1/auth") == 0;
}

static void
check(const struct cpx_httpd_req *req, const struct cpx_httpd_resp *resp)
{
	const char *auth = cpx_httpd_header(req, "Authorization");
	struct cpx_buf out;
	cJSON *j;

	if (resp->status < 100 || resp->status > 599)
		abort();
	/* The security property: no change without the token. */
	if (resp->status >= 200 && resp->status < 300 && guarded(req) &&
	    (auth == NULL || strstr(auth, TOKEN) == NULL))
		abort();
	if (resp->body.len > 0 && strcmp(resp->content_type,
	    "application/json") == 0) {
		j = cJSON_ParseWithLength((const char *)resp->body.data,
		    resp->body.len);
		if (j == NULL)
			abort();
		cJSON_Delete(j);
	}
	cpx_buf_init(&out);
	cpx_httpd_resp_serialize(resp, req->method == HTTP_HEAD, 1, 0, &out);
	cpx_buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct cpx_httpd_parser p;
	struct cpx_httpd_req *req;
	struct cpx_httpd_resp resp;
	size_t off = 0, used;

	if (!ready) {
		disp_config_defaults(&cfg);
		cfg.token = cpx_xstrdup(TOKEN);
		cfg.history = 50;
		cfg.max_workers = 64;
		cfg.max_jobs = 1000;
		cpx_log_set_level(CPX_LOG_ERROR);
		disp_init(&d, &cfg);
		cpx_httpd_limits_default(&lim);
		lim.max_body = 65536;
		ready = 1;
	}
	cpx_httpd_parser_init(&p, &lim);
	while (off < size && cpx_httpd_parse(&p, (const char *)data + off,
	    size - off, &used, &req) == 1) {
		off += used;
		cpx_httpd_resp_init(&resp);
		disp_api_handle(req, &resp, &d);
		check(req, &resp);
		cpx_httpd_resp_free(&resp);
		if (used == 0)
			break;
	}
	cpx_httpd_parser_free(&p);
	disp_sweep(&d, cpx_now_ms());
	return 0;
}
