/* serve.c — clusterplex-agent serve: registration, heartbeats, /health, clean leave. */

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cpx-httpd.h"
#include "cpx-protocol.h"
#include "serve.h"

static void on_call_done(struct agent_call *call);

static double
jitter(void)
{
	return drand48();
}

static void
start_call(struct agent_serve *sv, enum agent_call_kind kind)
{
	agent_call_start(sv, kind, on_call_done);
}

/* A tick of the heartbeat period; a slow dispatcher costs ticks, never a queue. */
static void
on_beat_timer(uv_timer_t *t)
{
	struct agent_serve *sv = t->data;

	if (sv->inflight != NULL) {
		cpx_debug("heartbeat skipped: the previous request is still "
		    "in flight");
		return;
	}
	start_call(sv, AGENT_CALL_BEAT);
}

static void
on_register_timer(uv_timer_t *t)
{
	struct agent_serve *sv = t->data;

	if (sv->inflight == NULL)
		start_call(sv, AGENT_CALL_REGISTER);
}

static void
schedule(struct agent_serve *sv, enum agent_call_kind kind,
    enum agent_outcome o, const struct agent_next *next)
{
	uint64_t period = (uint64_t)sv->cfg->heartbeat_ms;

	if (next->reg) {
		uv_timer_stop(&sv->timer);
		if (next->delay_ms == 0)
			start_call(sv, AGENT_CALL_REGISTER);
		else
			uv_timer_start(&sv->timer, on_register_timer,
			    next->delay_ms, 0);
	} else if (kind == AGENT_CALL_REGISTER && o == AGENT_OK)
		uv_timer_start(&sv->timer, on_beat_timer, period, period);
}

/* "HTTP 503: the sentence the dispatcher gave", or the client's cause. */
static char *
describe(const struct agent_call *call)
{
	char *err, *out;

	if (call->error != 0)
		return cpx_xstrdup(call->cause != NULL ? call->cause :
		    "no answer");
	err = agent_parse_error(call->body);
	out = cpx_xprintf("HTTP %d%s%s", call->status, err ? ": " : "",
	    err ? err : "");
	free(err);
	return out;
}

static void
dispatcher_ok(struct agent_serve *sv, const struct agent_call *call,
    const struct agent_next *next)
{
	const char *url = sv->cfg->orchestrator_url;

	if (call->kind == AGENT_CALL_REGISTER)
		cpx_info("registered with %s as %s (ssh %s, %zu running "
		    "job%s)", url, sv->cfg->name, call->endpoint, call->njobs,
		    call->njobs == 1 ? "" : "s");
	else if (call->kind == AGENT_CALL_LEAVE)
		cpx_info("left the dispatcher %s as %s%s", url, sv->cfg->name,
		    call->status == 404 ? " (it no longer knew us)" : "");
	else if (next->changed)
		cpx_info("dispatcher %s answers heartbeats again", url);
}

/* One line per change of the dispatcher's state, never one per attempt. */
static void
dispatcher_state(struct agent_serve *sv, const struct agent_call *call,
    enum agent_outcome o, const struct agent_next *next)
{
	const char *url = sv->cfg->orchestrator_url, *name = sv->cfg->name;
	char *why;

	if (o == AGENT_OK) {
		dispatcher_ok(sv, call, next);
		return;
	}
	if (o == AGENT_UNKNOWN) {
		cpx_info("dispatcher %s does not know %s (it restarted or "
		    "expired us): registering again with %zu running job%s",
		    url, name, call->njobs, call->njobs == 1 ? "" : "s");
		return;
	}
	why = describe(call);
	cpx_debug("%s: %s", call->kind == AGENT_CALL_BEAT ? "heartbeat" :
	    call->kind == AGENT_CALL_LEAVE ? "leave" : "registration", why);
	if (!next->changed && call->kind != AGENT_CALL_LEAVE) {
		free(why);
		return;
	}
	if (call->kind == AGENT_CALL_LEAVE)
		cpx_warn("could not leave the dispatcher (%s); it will expire "
		    "%s after its missed heartbeats", why, name);
	else if (o == AGENT_DOWN && sv->sm.registered)
		cpx_warn("dispatcher unreachable (%s); still beating every "
		    "%ld ms", why, sv->cfg->heartbeat_ms);
	else if (o == AGENT_DOWN)
		cpx_warn("dispatcher unreachable (%s); retrying, at most "
		    "%d s apart", why, AGENT_BACKOFF_MAX_MS / 1000);
	else if (o == AGENT_AUTH)
		cpx_error("dispatcher %s refused us (%s): %s; retrying every "
		    "%d s", url, why, sv->cfg->token == NULL ?
		    "it needs CLUSTERPLEX_TOKEN, which is not set here" :
		    "this CLUSTERPLEX_TOKEN is not the dispatcher's",
		    AGENT_BACKOFF_MAX_MS / 1000);
	else if (o == AGENT_CONFLICT)
		cpx_error("dispatcher %s refused the name %s (%s): each worker "
		    "needs its own CLUSTERPLEX_WORKER_NAME; retrying every %d s",
		    url, name, why, AGENT_BACKOFF_MAX_MS / 1000);
	else
		cpx_error("dispatcher %s rejected our %s (%s); retrying every "
		    "%d s", url, call->kind == AGENT_CALL_BEAT ? "heartbeat" :
		    "registration", why, AGENT_BACKOFF_MAX_MS / 1000);
	free(why);
}

/* What the answer says beyond its status: the drain flag, job folder trouble. */
static void
note_answer(struct agent_serve *sv, const struct agent_call *call,
    enum agent_outcome o)
{
	int drain;

	if (call->kind == AGENT_CALL_LEAVE)
		return;
	sv->njobs = call->njobs;
	if (call->scan_error != sv->scan_error && call->scan_error != 0)
		cpx_warn("cannot read %s/jobs: %s; reporting no running jobs",
		    sv->cfg->run_dir, strerror(-call->scan_error));
	sv->scan_error = call->scan_error;
	if (o != AGENT_OK || call->body == NULL ||
	    agent_parse_drain(call->body, &drain) != 0 ||
	    drain == sv->sm.drain)
		return;
	cpx_info("the dispatcher %s this worker", drain ? "drains" :
	    "no longer drains");
	sv->sm.drain = drain;
}

static void
close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Everything closes; uv_run returns once the handles are gone. */
static void
finish(struct agent_serve *sv)
{
	if (sv->httpd != NULL)
		cpx_httpd_close(sv->httpd);
	sv->httpd = NULL;
	close_handle((uv_handle_t *)&sv->timer);
	close_handle((uv_handle_t *)&sv->stop_timer);
	close_handle((uv_handle_t *)&sv->sigint);
	close_handle((uv_handle_t *)&sv->sigterm);
	agent_eae_stop(sv->eae);
	sv->eae = NULL;
}

/* Stopping: leave when the dispatcher may still list us, then finish. */
static void
continue_stop(struct agent_serve *sv)
{
	if (sv->sm.registered)
		start_call(sv, AGENT_CALL_LEAVE);
	else
		finish(sv);
}

static void
on_call_done(struct agent_call *call)
{
	struct agent_serve *sv = call->sv;
	enum agent_outcome o;
	struct agent_next next;

	sv->inflight = NULL;
	o = agent_classify(call->kind, call->error, call->status);
	note_answer(sv, call, o);
	agent_sm_done(&sv->sm, call->kind, o, cpx_now_ms(), jitter(), &next);
	/* While stopping, only the leave's outcome is news. */
	if (!sv->stopping || call->kind == AGENT_CALL_LEAVE)
		dispatcher_state(sv, call, o, &next);
	if (sv->stopping)
		continue_stop(sv);
	else
		schedule(sv, call->kind, o, &next);
	agent_call_free(call);
}

/*
 * A request is bounded by its timeout, but a name lookup for the default
 * SSH address is not: when even the safety bound passes, leave without
 * waiting for it. _exit, because a pool thread still holds the call.
 */
static void
on_stop_timeout(uv_timer_t *t)
{
	cpx_warn("a request to the dispatcher is still pending: exiting "
	    "without leaving; the dispatcher will expire this worker");
	_exit(0);
}

static void
on_signal(uv_signal_t *s, int signum)
{
	struct agent_serve *sv = s->data;

	if (sv->stopping)
		return;
	cpx_info("signal %d: leaving the dispatcher", signum);
	sv->stopping = 1;
	uv_timer_stop(&sv->timer);
	uv_timer_start(&sv->stop_timer, on_stop_timeout, sv->timeout_ms +
	    AGENT_VERSION_MS + AGENT_BENCH_MS + AGENT_LEAVE_MS + 1000, 0);
	if (sv->inflight == NULL)
		continue_stop(sv);
}

static cJSON *
health_json(const struct agent_serve *sv)
{
	cJSON *root = cJSON_CreateObject();
	uint64_t now = cpx_now_ms();

	cJSON_AddStringToObject(root, "status", sv->stopping ? "stopping" :
	    "ok");
	cJSON_AddStringToObject(root, "name", sv->cfg->name);
	cJSON_AddBoolToObject(root, "registered", sv->sm.registered);
	cJSON_AddStringToObject(root, "dispatcher",
	    agent_outcome_name(sv->sm.last));
	cJSON_AddNumberToObject(root, "jobs", (double)sv->njobs);
	cJSON_AddNumberToObject(root, "max_tasks", (double)sv->cfg->max_tasks);
	cJSON_AddBoolToObject(root, "drain", sv->sm.drain);
	if (sv->sm.last_ok_ms != 0)
		cJSON_AddNumberToObject(root, "last_heartbeat_age_ms",
		    (double)(now - sv->sm.last_ok_ms));
	else
		cJSON_AddNullToObject(root, "last_heartbeat_age_ms");
	cJSON_AddNumberToObject(root, "heartbeat_ms",
	    (double)sv->cfg->heartbeat_ms);
	cJSON_AddStringToObject(root, "version", CPX_VERSION);
	cJSON_AddNumberToObject(root, "uptime_s",
	    (double)((now - sv->started_ms) / 1000));
	cJSON_AddItemToObject(root, "eae", agent_eae_json(sv->eae));
	return root;
}

/*
 * GET /health answers 200 whenever the agent runs, registered or not: it
 * is the container's liveness probe, and a probe that failed while the
 * dispatcher is down would have the orchestrator restart every worker
 * and kill their running transcodes. "registered" tells the rest.
 */
static void
on_http(const struct cpx_httpd_req *req, struct cpx_httpd_resp *resp,
    void *arg)
{
	struct agent_serve *sv = arg;
	cJSON *root;
	char *text;

	cpx_httpd_resp_header(resp, "Cache-Control", "no-store");
	if (strcmp(req->path, "/health") != 0) {
		cpx_httpd_resp_error(resp, 404, "no route %s; try /health",
		    req->path);
		return;
	}
	if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
		cpx_httpd_resp_error(resp, 405, "method not allowed; use GET");
		cpx_httpd_resp_header(resp, "Allow", "GET, HEAD");
		return;
	}
	root = health_json(sv);
	text = cpx_json_take(root, 0);
	cpx_buf_printf(&resp->body, "%s\n", text);
	free(text);
}

/* What only shows when used: a bad URL, SSH address or host key file. */
static int
check_config(struct agent_serve *sv)
{
	struct agent_config *cfg = sv->cfg;
	char *host = NULL, *path = NULL, *cause = NULL;
	int port, error;

	error = cpx_parse_url(cfg->orchestrator_url, &host, &port, &path,
	    &cause);
	free(host);
	free(path);
	if (error == 0 && cfg->ssh_address != NULL) {
		host = NULL;
		error = agent_ssh_endpoint(cfg, NULL, &host, &port, &cause);
		free(host);
	}
	if (error == 0)
		error = agent_host_key(cfg->host_key_file, &sv->facts.host_key,
		    &cause);
	if (error != 0) {
		cpx_error("configuration: %s", cause);
		free(cause);
	}
	return error;
}

static void
start_handles(struct agent_serve *sv)
{
	uv_timer_init(sv->loop, &sv->timer);
	uv_timer_init(sv->loop, &sv->stop_timer);
	uv_signal_init(sv->loop, &sv->sigint);
	uv_signal_init(sv->loop, &sv->sigterm);
	sv->timer.data = sv->stop_timer.data = sv;
	sv->sigint.data = sv->sigterm.data = sv;
	uv_signal_start(&sv->sigint, on_signal, SIGINT);
	uv_signal_start(&sv->sigterm, on_signal, SIGTERM);
}

/*
 * Runs until SIGTERM or SIGINT, then leaves the dispatcher and returns 0;
 * 78 for a bad setting, 1 when the health port cannot be had. A missing
 * or failing dispatcher never ends it.
 */
int
agent_serve_main(struct agent_config *cfg)
{
	static struct agent_serve sv;
	char *cause = NULL;

	sv.cfg = cfg;
	sv.timeout_ms = agent_http_timeout_ms(cfg->heartbeat_ms);
	sv.started_ms = cpx_now_ms();
	cpx_log_add_secret(cfg->token);
	signal(SIGPIPE, SIG_IGN);
	srand48((long)(cpx_now_us() ^ (uint64_t)getpid()));
	if (check_config(&sv) != 0) {
		agent_facts_free(&sv.facts);
		return 78;
	}
	sv.loop = uv_default_loop();
	if (cpx_httpd_start(sv.loop, "0.0.0.0", (int)cfg->listen_port, NULL,
	    on_http, &sv, &sv.httpd, &cause) != 0) {
		cpx_error("health port: %s", cause);
		free(cause);
		agent_facts_free(&sv.facts);
		return 1;
	}
	start_handles(&sv);
	sv.eae = agent_eae_start(cfg, sv.loop);
	cpx_info("worker %s: /health on port %d, dispatcher %s, heartbeat "
	    "every %ld ms, up to %ld jobs", cfg->name, cpx_httpd_port(sv.httpd),
	    cfg->orchestrator_url, cfg->heartbeat_ms, cfg->max_tasks);
	if (cfg->token == NULL)
		cpx_warn("CLUSTERPLEX_TOKEN is not set: only a dispatcher with "
		    "CLUSTERPLEX_TRUSTED_NETWORK=true will accept this worker");
	start_call(&sv, AGENT_CALL_REGISTER);
	uv_run(sv.loop, UV_RUN_DEFAULT);
	uv_loop_close(sv.loop);
	agent_facts_free(&sv.facts);
	cpx_info("stopped");
	return 0;
}
