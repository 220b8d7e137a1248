/* api.c — the dispatcher's HTTP routes: who may call what, and the answers. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "disp.h"

/*
 * Handlers answer at once from the registry; none waits for anything.
 * Errors are JSON {"error": "..."} with a status that says whose fault it
 * is: 400 bad body, 401 token, 404 unknown route or name, 405 method,
 * 409 conflict, 503 no worker (with a "code" naming why).
 */

#define RECENT_DEFAULT 50

static int
is_get(const struct cpx_httpd_req *req)
{
	return req->method == HTTP_GET || req->method == HTTP_HEAD;
}

static void
method_not_allowed(struct cpx_httpd_resp *resp, const char *allow)
{
	cpx_httpd_resp_error(resp, 405, "method not allowed; use %s", allow);
	cpx_httpd_resp_header(resp, "Allow", "%s", allow);
}

/* The bearer token, compared in constant time; 1 when the request may pass. */
static int
authorized(struct disp *d, const struct cpx_httpd_req *req,
    struct cpx_httpd_resp *resp)
{
	const char *auth;

	if (d->cfg->token == NULL)
		return 1;
	auth = cpx_httpd_header(req, "Authorization");
	if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0 &&
	    cpx_ct_equal(auth + 7, d->cfg->token))
		return 1;
	cpx_httpd_resp_error(resp, 401, "%s", auth == NULL ?
	    "this endpoint needs \"Authorization: Bearer <CLUSTERPLEX_TOKEN>\"" :
	    "the bearer token is not CLUSTERPLEX_TOKEN");
	cpx_httpd_resp_header(resp, "WWW-Authenticate",
	    "Bearer realm=\"clusterplex\"");
	return 0;
}

static void
json_reply(struct cpx_httpd_resp *resp, int status, cJSON *root)
{
	char *text = cJSON_PrintUnformatted(root);

	resp->status = status;
	if (text != NULL) {
		cpx_buf_add(&resp->body, text, strlen(text));
		free(text);
	}
	cpx_buf_add(&resp->body, "\n", 1);
	cJSON_Delete(root);
}

static void
bad_body(struct cpx_httpd_resp *resp, char *cause)
{
	cpx_httpd_resp_error(resp, 400, "%s", cause != NULL ? cause :
	    "invalid body");
	free(cause);
}

static void
do_register(struct disp *d, const struct cpx_httpd_req *req,
    struct cpx_httpd_resp *resp)
{
	struct disp_reg reg;
	struct disp_worker *w;
	char *cause = NULL;
	cJSON *root;
	int error;

	if (disp_msg_register(req->body, req->body_len, &reg, &cause) != 0) {
		bad_body(resp, cause);
		return;
	}
	error = disp_register(d, &reg, cpx_now_ms(), &w, &cause);
	disp_reg_free(&reg);
	if (error != 0) {
		cpx_httpd_resp_error(resp, error == -EEXIST ? 409 : 503, "%s",
		    cause);
		free(cause);
		return;
	}
	root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "name", w->ep.name);
	cJSON_AddNumberToObject(root, "heartbeat_ms", (double)w->interval_ms);
	cJSON_AddNumberToObject(root, "misses", (double)d->cfg->misses);
	cJSON_AddBoolToObject(root, "drain", w->draining);
	cJSON_AddStringToObject(root, "instance", d->instance);
	json_reply(resp, 201, root);
}

static void
do_heartbeat(struct disp *d, const char *name, const struct cpx_httpd_req *req,
    struct cpx_httpd_resp *resp)
{
	struct disp_beat beat;
	struct disp_worker *w;
	char *cause = NULL;
	cJSON *root;

	if (disp_msg_heartbeat(req->body, req->body_len, &beat, &cause) != 0) {
		bad_body(resp, cause);
		return;
	}
	if (disp_heartbeat(d, name, &beat, cpx_now_ms(), &w) != 0) {
		disp_beat_free(&beat);
		root = cJSON_CreateObject();
		cJSON_AddStringToObject(root, "error", "unknown worker; "
		    "register again with the running jobs");
		cJSON_AddBoolToObject(root, "register", 1);
		json_reply(resp, 404, root);
		return;
	}
	disp_beat_free(&beat);
	root = cJSON_CreateObject();
	cJSON_AddBoolToObject(root, "drain", w->draining);
	cJSON_AddStringToObject(root, "instance", d->instance);
	json_reply(resp, 200, root);
}

static void
do_leave(struct disp *d, const char *name, struct cpx_httpd_resp *resp)
{
	if (disp_leave(d, name, cpx_now_ms()) != 0) {
		cpx_httpd_resp_error(resp, 404, "no worker named %s", name);
		return;
	}
	resp->status = 204;
}

static void
do_drain(struct disp *d, const char *name, const struct cpx_httpd_req *req,
    struct cpx_httpd_resp *resp)
{
	char *cause = NULL;
	cJSON *root;
	int drain;

	if (disp_msg_drain(req->body, req->body_len, &drain, &cause) != 0) {
		bad_body(resp, cause);
		return;
	}
	if (disp_drain(d, name, drain) != 0) {
		cpx_httpd_resp_error(resp, 404, "no worker named %s", name);
		return;
	}
	root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "name", name);
	cJSON_AddBoolToObject(root, "drain", drain);
	json_reply(resp, 200, root);
}

static void
place_reply(struct disp *d, const struct disp_placement *pl,
    struct cpx_httpd_resp *resp)
{
	cJSON *root = cJSON_CreateObject(), *worker;

	cJSON_AddStringToObject(root, "job", pl->job->id);
	worker = cJSON_AddObjectToObject(root, "worker");
	cpx_endpoint_to_json(&pl->w->ep, worker);
	cJSON_AddBoolToObject(root, "affinity", pl->affinity);
	cJSON_AddStringToObject(root, "strategy",
	    disp_strategy_names[d->cfg->strategy]);
	json_reply(resp, 200, root);
}

static void
do_place(struct disp *d, const struct cpx_httpd_req *req,
    struct cpx_httpd_resp *resp)
{
	uint64_t t0 = cpx_now_us();
	struct disp_place_req pr;
	struct disp_placement pl;
	char *cause = NULL;
	cJSON *root;
	int error;

	if (disp_msg_place(req->body, req->body_len, &pr, &cause) != 0) {
		bad_body(resp, cause);
		return;
	}
	error = disp_place(d, &pr, t0 / 1000, &pl);
	disp_place_req_free(&pr);
	if (error == 0)
		place_reply(d, &pl, resp);
	else if (error == -EEXIST)
		cpx_httpd_resp_error(resp, 409, "%s", pl.reason);
	else {
		root = cJSON_CreateObject();
		cJSON_AddStringToObject(root, "error", pl.reason);
		cJSON_AddStringToObject(root, "code",
		    disp_place_fail_names[pl.fail]);
		json_reply(resp, 503, root);
		cpx_httpd_resp_header(resp, "Retry-After", "2");
	}
	disp_observe_latency(d, cpx_now_us() - t0);
}

static void
do_job_end(struct disp *d, const char *id, const struct cpx_httpd_req *req,
    struct cpx_httpd_resp *resp)
{
	struct disp_end end;
	char *cause = NULL;
	int error;

	if (disp_msg_end(req->body, req->body_len, &end, &cause) != 0) {
		bad_body(resp, cause);
		return;
	}
	error = disp_job_end(d, id, &end, cpx_now_ms());
	if (error == -ENOENT)
		cpx_httpd_resp_error(resp, 404, "no job %s", id);
	else if (error == -EALREADY)
		cpx_httpd_resp_error(resp, 409, "job %s already ended", id);
	else
		resp->status = 204;
}

static void
do_jobs(struct disp *d, const struct cpx_httpd_req *req,
    struct cpx_httpd_resp *resp)
{
	char v[16], *end;
	long limit = RECENT_DEFAULT;

	if (cpx_httpd_query(req, "recent", v, sizeof v) == 0) {
		limit = strtol(v, &end, 10);
		if (*end != '\0' || end == v || limit < 0) {
			cpx_httpd_resp_error(resp, 400, "recent=%s is not a "
			    "count", v);
			return;
		}
	}
	disp_render_jobs(d, cpx_now_ms(), limit, &resp->body);
}

/* "/api/v1/workers/{name}[/{action}]": copies name, returns the action ("" if none). */
static const char *
split_name(const char *rest, char *name, size_t size)
{
	const char *slash = strchr(rest, '/');
	size_t n = slash != NULL ? (size_t)(slash - rest) : strlen(rest);

	if (n >= size) {
		name[0] = '\0';
		return "";
	}
	memcpy(name, rest, n);
	name[n] = '\0';
	return slash != NULL ? slash + 1 : "";
}

static void
worker_routes(struct disp *d, const char *rest,
    const struct cpx_httpd_req *req, struct cpx_httpd_resp *resp)
{
	char name[DISP_NAME_MAX + 1];
	const char *action = split_name(rest, name, sizeof name);

	if (!disp_valid_name(name, DISP_NAME_MAX)) {
		cpx_httpd_resp_error(resp, 404, "no such worker route");
		return;
	}
	if (strcmp(action, "") == 0) {
		if (req->method != HTTP_DELETE)
			method_not_allowed(resp, "DELETE");
		else if (authorized(d, req, resp))
			do_leave(d, name, resp);
	} else if (strcmp(action, "heartbeat") == 0) {
		if (req->method != HTTP_PUT)
			method_not_allowed(resp, "PUT");
		else if (authorized(d, req, resp))
			do_heartbeat(d, name, req, resp);
	} else if (strcmp(action, "drain") == 0) {
		if (req->method != HTTP_POST)
			method_not_allowed(resp, "POST");
		else if (authorized(d, req, resp))
			do_drain(d, name, req, resp);
	} else
		cpx_httpd_resp_error(resp, 404, "no such worker route");
}

static void
job_routes(struct disp *d, const char *rest, const struct cpx_httpd_req *req,
    struct cpx_httpd_resp *resp)
{
	char id[DISP_JOB_ID_MAX + 1];
	const char *action = split_name(rest, id, sizeof id);

	if (!disp_valid_name(id, DISP_JOB_ID_MAX) || strcmp(action, "end") != 0)
		cpx_httpd_resp_error(resp, 404, "no such job route");
	else if (req->method != HTTP_POST)
		method_not_allowed(resp, "POST");
	else if (authorized(d, req, resp))
		do_job_end(d, id, req, resp);
}

/* The routes that read: no token, nothing secret. */
static int
read_routes(struct disp *d, const struct cpx_httpd_req *req,
    struct cpx_httpd_resp *resp)
{
	const char *p = req->path;

	if (strcmp(p, "/") == 0 || strcmp(p, "/index.html") == 0) {
		resp->content_type = "text/html; charset=utf-8";
		cpx_buf_add(&resp->body, disp_status_page,
		    strlen(disp_status_page));
	} else if (strcmp(p, "/health") == 0)
		disp_render_health(d, &resp->body);
	else if (strcmp(p, "/metrics") == 0) {
		resp->content_type = "text/plain; version=0.0.4";
		disp_render_metrics(d, cpx_now_ms(), &resp->body);
	} else if (strcmp(p, "/api/v1/jobs") == 0)
		do_jobs(d, req, resp);
	else if (strcmp(p, "/api/v1/workers") == 0)
		disp_render_workers(d, cpx_now_ms(), &resp->body);
	else
		return 0;
	return 1;
}

void
disp_api_handle(const struct cpx_httpd_req *req, struct cpx_httpd_resp *resp,
    void *arg)
{
	struct disp *d = arg;
	const char *p = req->path;

	cpx_httpd_resp_header(resp, "Cache-Control", "no-store");
	if (strcmp(p, "/api/v1/auth") == 0) {
		/* `doctor` asks whether its token is accepted; nothing changes. */
		if (!is_get(req))
			method_not_allowed(resp, "GET, HEAD");
		else if (authorized(d, req, resp))
			cpx_buf_printf(&resp->body, "{\"ok\":true}\n");
	} else if (strcmp(p, "/api/v1/placements") == 0) {
		if (req->method != HTTP_POST)
			method_not_allowed(resp, "POST");
		else if (authorized(d, req, resp))
			do_place(d, req, resp);
	} else if (strcmp(p, "/api/v1/workers") == 0 &&
	    req->method == HTTP_POST) {
		if (authorized(d, req, resp))
			do_register(d, req, resp);
	} else if (strncmp(p, "/api/v1/workers/", 16) == 0)
		worker_routes(d, p + 16, req, resp);
	else if (strncmp(p, "/api/v1/jobs/", 13) == 0)
		job_routes(d, p + 13, req, resp);
	else if (is_get(req)) {
		if (!read_routes(d, req, resp))
			cpx_httpd_resp_error(resp, 404, "no route %s", p);
	} else if (strcmp(p, "/") == 0 || strcmp(p, "/health") == 0 ||
	    strcmp(p, "/metrics") == 0 || strcmp(p, "/api/v1/jobs") == 0)
		method_not_allowed(resp, "GET, HEAD");
	else if (strcmp(p, "/api/v1/workers") == 0)
		method_not_allowed(resp, "GET, HEAD, POST");
	else
		cpx_httpd_resp_error(resp, 404, "no route %s", p);
}
