/* serve_call.c — one exchange with the dispatcher, run off the loop thread. */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpx-http.h"
#include "serve.h"

/* Measured once, on the first registration, so the loop starts at once. */
static void
prepare_facts(struct agent_serve *sv)
{
	struct agent_facts *f = &sv->facts;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	f->cpus = cpus > 0 ? cpus : 1;
	f->transcoder_version = agent_transcoder_version(sv->cfg->transcoder,
	    AGENT_VERSION_MS);
	f->bench = agent_cpu_bench(f->cpus, AGENT_BENCH_MS);
	sv->facts_ready = 1;
}

/*
 * The SSH endpoint is found again for every registration: the route to
 * the dispatcher (and so the default address) may have changed since.
 */
static int
refresh_endpoint(struct agent_serve *sv, char **cause)
{
	struct agent_config *cfg = sv->cfg;
	char *local = NULL, *host = NULL;
	int port, error = 0;

	if (cfg->ssh_address == NULL)
		error = agent_local_address(cfg->orchestrator_url, &local,
		    cause);
	if (error == 0)
		error = agent_ssh_endpoint(cfg, local, &host, &port, cause);
	if (error == 0) {
		free(sv->facts.ssh_host);
		sv->facts.ssh_host = host;
		sv->facts.ssh_port = port;
	}
	free(local);
	return error;
}

/* The machine's load since the previous call, one decimal. */
static double
measure_cpu(struct agent_serve *sv)
{
	struct agent_cpu_sample cur;
	double pct;

	if (agent_cpu_sample(&cur) != 0)
		return agent_cpu_estimate(agent_load1(), sv->facts.cpus);
	if (sv->have_prev)
		pct = agent_cpu_percent(&sv->prev, &cur);
	else
		pct = agent_cpu_estimate(agent_load1(), sv->facts.cpus);
	sv->prev = cur;
	sv->have_prev = 1;
	return (double)(long)(pct * 10.0 + 0.5) / 10.0;
}

/* Registration or heartbeat body, with the running jobs; caller frees. */
static char *
build_body(struct agent_call *call)
{
	struct agent_serve *sv = call->sv;
	struct agent_job *jobs = NULL;
	size_t njobs = 0;
	char *body = NULL;

	if (call->kind == AGENT_CALL_REGISTER) {
		if (!sv->facts_ready)
			prepare_facts(sv);
		call->error = refresh_endpoint(sv, &call->cause);
		if (call->error != 0)
			return NULL;
		call->endpoint = cpx_xprintf("%s:%d", sv->facts.ssh_host,
		    sv->facts.ssh_port);
	}
	call->scan_error = agent_jobs_scan(sv->cfg->run_dir, &jobs, &njobs);
	call->njobs = njobs;
	if (call->kind == AGENT_CALL_REGISTER)
		body = agent_reg_body(sv->cfg, &sv->facts, measure_cpu(sv),
		    call->drain, jobs, njobs);
	else
		body = agent_beat_body(sv->cfg, measure_cpu(sv), agent_load1(),
		    jobs, njobs);
	agent_jobs_free(jobs, njobs);
	return body;
}

static void
call_work(uv_work_t *w)
{
	struct agent_call *call = w->data;
	struct agent_serve *sv = call->sv;
	struct cpx_http_response resp;
	const char *method = "POST";
	char *body = NULL, *path = NULL;
	unsigned timeout = sv->timeout_ms;

	switch (call->kind) {
	case AGENT_CALL_REGISTER:
		path = cpx_xstrdup("/api/v1/workers");
		break;
	case AGENT_CALL_BEAT:
		method = "PUT";
		path = cpx_xprintf("/api/v1/workers/%s/heartbeat",
		    sv->cfg->name);
		break;
	case AGENT_CALL_LEAVE:
		method = "DELETE";
		path = cpx_xprintf("/api/v1/workers/%s", sv->cfg->name);
		if (timeout > AGENT_LEAVE_MS)
			timeout = AGENT_LEAVE_MS;
		break;
	}
	if (call->kind != AGENT_CALL_LEAVE &&
	    (body = build_body(call)) == NULL)
		goto out;
	call->error = cpx_http_request(sv->cfg->orchestrator_url, method, path,
	    sv->cfg->token, body, timeout, &resp, &call->cause);
	if (call->error == 0) {
		call->status = resp.status;
		call->body = resp.body;
	}
out:
	free(body);
	free(path);
}

static void
call_after(uv_work_t *w, int status)
{
	struct agent_call *call = w->data;

	call->done(call);
}

/*
 * Starts one exchange; done() runs on the loop thread when it is over and
 * owns the call. The caller makes sure no other call is in flight.
 */
void
agent_call_start(struct agent_serve *sv, enum agent_call_kind kind,
    void (*done)(struct agent_call *))
{
	struct agent_call *call;
	int error;

	if (sv->inflight != NULL)
		cpx_fatal("a call to the dispatcher is already in flight");
	call = cpx_xcalloc(1, sizeof *call);
	call->sv = sv;
	call->kind = kind;
	call->drain = sv->sm.drain;
	call->done = done;
	call->work.data = call;
	sv->inflight = call;
	error = uv_queue_work(sv->loop, &call->work, call_work, call_after);
	if (error != 0)
		cpx_fatal("uv_queue_work: %s", uv_strerror(error));
}

void
agent_call_free(struct agent_call *call)
{
	free(call->body);
	free(call->cause);
	free(call->endpoint);
	free(call);
}
