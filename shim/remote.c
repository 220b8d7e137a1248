/* remote.c — one job on a worker: the link, its frames, stdio, signals, tunnels. */

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "cpx-link.h"
#include "cpx-ssh.h"
#include "cpx-tunnel.h"
#include "shim.h"

#define OUT_HIGH_WATER (4 * 1024 * 1024)
#define IN_HIGH_WATER (1024 * 1024)
#define INPUT_CHUNK (CPX_FRAME_MAX - 8)
#define MAX_TUNNELS 64

enum phase {
	PH_CONNECT,	/* direct SSH connection being set up */
	PH_POOL,	/* POOL_OPEN sent, waiting for POOL_READY */
	PH_HELLO,	/* job sent, waiting for the agent's HELLO */
	PH_RUN,		/* the agent has the job */
	PH_DONE,
};

static const int fwd_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT };

struct run {
	const struct shim_config *cfg;
	const struct shim_job *job;
	const struct shim_placement *pl;
	const struct shim_inputs *in;
	struct shim_outcome *out;
	uv_loop_t loop;
	struct cpx_ssh_conn *conn;
	struct cpx_link *link;
	enum phase phase;
	int started;
	int out_paused;
	uint64_t last_rx;
	uint64_t t0;
	uv_timer_t ping;
	uv_signal_t sig[CPX_ARRAY_SIZE(fwd_signals)];
	struct shim_sink sout, serr;
	struct shim_source sin;
	int sin_open;
	struct cpx_tunnels *tunnels;
	char *codec_dir;		/* PMS's codec folder for this job */
	struct shim_setsend *setsend;	/* a set on its way to the worker */
};

static void
teardown(struct run *r)
{
	size_t i;

	r->phase = PH_DONE;
	cpx_tunnels_free(r->tunnels);
	r->tunnels = NULL;
	shim_setsend_free(r->setsend);
	r->setsend = NULL;
	if (r->sin_open)
		shim_source_close(&r->sin);
	r->sin_open = 0;
	if (r->link != NULL)
		cpx_link_close(r->link);
	r->link = NULL;
	cpx_ssh_close(r->conn);
	r->conn = NULL;
	uv_close((uv_handle_t *)&r->ping, NULL);
	for (i = 0; i < CPX_ARRAY_SIZE(r->sig); i++)
		uv_close((uv_handle_t *)&r->sig[i], NULL);
	shim_sink_close(&r->sout);
	shim_sink_close(&r->serr);
}

/* Our own failure: an exit code and one line for the log. */
static void CPX_PRINTF(4, 5)
fail(struct run *r, int code, int fallback_ok, const char *fmt, ...)
{
	va_list ap;
	char buf[512];

	if (r->phase == PH_DONE)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	r->out->code = code;
	r->out->fallback_ok = fallback_ok;
	r->out->message = cpx_xstrdup(buf);
	teardown(r);
}

static void
finish_exit(struct run *r, const struct cpx_frame *f)
{
	if (f->len < 2) {
		fail(r, SHIM_EXIT_LOST, 0, "worker %s sent a malformed "
		    "EXIT", r->pl->worker.name);
		return;
	}
	r->out->exit_kind = f->payload[0] == CPX_EXIT_SIGNAL ?
	    CPX_EXIT_SIGNAL : CPX_EXIT_CODE;
	r->out->exit_value = f->payload[1];
	cpx_debug("job %s on %s: %s %d after %llu ms", r->pl->job_id,
	    r->pl->worker.name, r->out->exit_kind == CPX_EXIT_SIGNAL ?
	    "signal" : "exit", r->out->exit_value,
	    (unsigned long long)(cpx_now_ms() - r->t0));
	teardown(r);
}

/* An ERROR frame: before STARTED nothing runs, so PMS may run it locally. */
static void
fail_error(struct run *r, const struct cpx_frame *f, const char *who)
{
	char *code = NULL, *msg = NULL;

	if (cpx_error_parse(f->payload, f->len, &code, &msg) != 0) {
		code = cpx_xstrdup(CPX_ERR_PROTO);
		msg = cpx_xstrdup("malformed ERROR");
	}
	if (r->started)
		fail(r, SHIM_EXIT_LOST, 0, "%s %s failed mid-job: %s",
		    who, r->pl->worker.name, msg);
	else
		fail(r, shim_error_exit_code(code), 1, "%s %s: %s "
		    "(%s)", who, r->pl->worker.name, msg, code);
	free(code);
	free(msg);
}

static void
on_out_drained(void *arg)
{
	struct run *r = arg;

	if (!r->out_paused || shim_sink_queued(&r->sout) > 0 ||
	    shim_sink_queued(&r->serr) > 0)
		return;
	r->out_paused = 0;
	r->last_rx = cpx_now_ms();
	if (r->link != NULL)
		cpx_link_pause(r->link, 0);
}

/*
 * PMS reads our output; when it falls behind we stop reading the link,
 * so the agent stops reading the transcoder: the same back-pressure as
 * a local pipe. The silence that follows is not a lost link.
 */
static void
write_out(struct run *r, struct shim_sink *s, const struct cpx_frame *f)
{
	shim_sink_write(s, f->payload, f->len);
	if (shim_sink_queued(s) > OUT_HIGH_WATER && r->link != NULL) {
		r->out_paused = 1;
		cpx_link_pause(r->link, 1);
	}
}

static void
on_tunnel_open(struct run *r, uint32_t id)
{
	struct sockaddr_in sa;

	if (r->tunnels == NULL)
		r->tunnels = cpx_tunnels_new(&r->loop, r->link, MAX_TUNNELS);
	uv_ip4_addr("127.0.0.1", (int)r->cfg->pms_port, &sa);
	cpx_tunnels_connect(r->tunnels, id, (struct sockaddr *)&sa);
}

static void on_link_drain(struct cpx_link *link, void *arg);

/* The worker lacks this job's codec set and asks for PMS's. */
static void
on_set_want(struct run *r, const struct cpx_frame *f)
{
	if (shim_setsend_active(r->setsend) || r->link == NULL)
		return;		/* one set per job */
	shim_setsend_free(r->setsend);
	r->link->on_drain = on_link_drain;
	r->setsend = shim_setsend_start(r->link, r->codec_dir, f);
}

static void
run_frame(struct run *r, const struct cpx_frame *f)
{
	switch (f->type) {
	case CPX_MSG_STARTED:
		r->started = 1;
		cpx_debug("job %s started on %s %llu ms after exec",
		    r->pl->job_id, r->pl->worker.name,
		    (unsigned long long)(cpx_now_ms() - r->t0));
		break;
	case CPX_MSG_STDOUT:
		write_out(r, &r->sout, f);
		break;
	case CPX_MSG_STDERR:
		write_out(r, &r->serr, f);
		break;
	case CPX_MSG_EXIT:
		finish_exit(r, f);
		break;
	case CPX_MSG_ERROR:
		fail_error(r, f, "worker");
		break;
	case CPX_MSG_TUN_OPEN:
		on_tunnel_open(r, f->id);
		break;
	case CPX_MSG_SET_WANT:
		on_set_want(r, f);
		break;
	case CPX_MSG_TUN_DATA:
	case CPX_MSG_TUN_CLOSE:
		if (r->tunnels != NULL)
			cpx_tunnels_frame(r->tunnels, f);
		break;
	default:
		break;
	}
}

static void
on_hello(struct run *r, const struct cpx_frame *f)
{
	char *service = NULL, *cause = NULL;

	if (f->type == CPX_MSG_ERROR) {
		fail_error(r, f, "worker");
	} else if (f->type != CPX_MSG_HELLO) {
		fail(r, SHIM_EXIT_SSH, 1, "worker %s did not say "
		    "HELLO (got %s)", r->pl->worker.name, cpx_msg_name(f->type));
	} else if (cpx_hello_parse(f->payload, f->len, &service, &cause) != 0) {
		fail(r, SHIM_EXIT_REFUSED, 1, "worker %s: %s",
		    r->pl->worker.name, cause);
	} else {
		r->phase = PH_RUN;
	}
	free(service);
	free(cause);
}

static void
on_frame(struct cpx_link *link, const struct cpx_frame *f, void *arg)
{
	struct run *r = arg;

	r->last_rx = cpx_now_ms();
	if (r->phase == PH_RUN) {
		run_frame(r, f);
	} else if (r->phase == PH_HELLO) {
		on_hello(r, f);
	} else if (r->phase == PH_POOL && f->type == CPX_MSG_POOL_READY) {
		r->phase = PH_HELLO;
	} else if (r->phase == PH_POOL && f->type == CPX_MSG_ERROR) {
		fail_error(r, f, "pool, for worker");
	} else if (r->phase == PH_POOL) {
		fail(r, SHIM_EXIT_SSH, 1, "pool sent %s instead of "
		    "POOL_READY", cpx_msg_name(f->type));
	}
}

/*
 * The link ended without EXIT. Before the agent's HELLO no agent had our
 * job, so PMS may still run it locally; after it, it is a lost job.
 */
static void
on_link_close(struct cpx_link *link, int error, void *arg)
{
	struct run *r = arg;

	r->link = NULL;
	if (r->phase == PH_RUN)
		fail(r, SHIM_EXIT_LOST, 0, "link to worker %s lost "
		    "without an exit status (%s)", r->pl->worker.name,
		    error != 0 ? uv_strerror(error) : "closed");
	else
		fail(r, SHIM_EXIT_SSH, 1, "worker %s closed the "
		    "channel before the agent answered", r->pl->worker.name);
}

static void
on_link_drain(struct cpx_link *link, void *arg)
{
	struct run *r = arg;

	if (r->sin_open)
		shim_source_pause(&r->sin, 0);
	shim_setsend_pump(r->setsend);
}

static void
on_stdin(void *arg, const void *p, size_t n)
{
	struct run *r = arg;

	if (n == 0)
		r->sin_open = 0;
	if (r->link == NULL)
		return;
	cpx_link_send(r->link, CPX_MSG_STDIN, 0, p, n);
	if (n > 0 && cpx_link_pending(r->link) > IN_HIGH_WATER) {
		shim_source_pause(&r->sin, 1);
		r->link->on_drain = on_link_drain;
	}
}

static char **
job_env(size_t *n)
{
	extern char **environ;
	char **out;
	size_t i, k = 0;

	for (i = 0; environ[i] != NULL; i++)
		;
	out = cpx_xcalloc(i + 1, sizeof *out);
	for (i = 0; environ[i] != NULL && k < CPX_JOB_MAX_ENV; i++) {
		if (shim_env_forwardable(environ[i]))
			out[k++] = environ[i];
	}
	*n = k;
	return out;
}

static char **
job_argv(struct run *r)
{
	char **v = cpx_xcalloc((size_t)r->job->argc + 1, sizeof *v), *s;
	int i;

	for (i = 0; i < r->job->argc; i++) {
		s = NULL;
		if (r->cfg->callbacks == SHIM_CB_REWRITE)
			s = shim_rewrite_callback(r->job->argv[i],
			    r->cfg->pms_port, r->cfg->pms_host);
		v[i] = s != NULL ? s : cpx_xstrdup(r->job->argv[i]);
	}
	return v;
}

static void
send_inputs(struct run *r)
{
	const struct shim_input *in;
	struct cpx_buf b;
	size_t i, off, n;

	for (i = 0; i < r->in->n; i++) {
		in = &r->in->v[i];
		off = 0;
		do {
			n = in->size - off < INPUT_CHUNK ? in->size - off :
			    INPUT_CHUNK;
			cpx_buf_init(&b);
			cpx_buf_add_u64(&b, off);
			cpx_buf_add(&b, in->data + off, n);
			cpx_link_send_buf(r->link, CPX_MSG_INPUT, (uint32_t)i, &b);
			off += n;
		} while (off < in->size);
	}
}

/*
 * HELLO, JOB, INPUTs and RUN leave together: the agent takes them in
 * order, so nothing waits for a round trip.
 */
static void
send_job(struct run *r)
{
	struct cpx_jobspec js = { 0 };
	struct cpx_input *inputs;
	struct cpx_buf b;
	char *json;
	size_t i;

	inputs = cpx_xcalloc(r->in->n + 1, sizeof *inputs);
	for (i = 0; i < r->in->n; i++) {
		inputs[i].name = r->in->v[i].name;
		inputs[i].size = r->in->v[i].size;
	}
	js.id = r->pl->job_id;
	js.session = r->job->session;
	js.root = r->job->root;
	js.cwd = (char *)r->job->cwd;
	js.argc = (size_t)r->job->argc;
	js.argv = job_argv(r);
	js.env = job_env(&js.envc);
	js.pms_port = (int)r->cfg->pms_port;
	js.tunnel = r->cfg->callbacks == SHIM_CB_TUNNEL;
	js.verbose = r->cfg->verbose;
	js.inputs = inputs;
	js.ninputs = r->in->n;
	js.codecs = shim_codec_set(&r->codec_dir);
	json = cpx_jobspec_encode(&js);
	if (strlen(json) + CPX_FRAME_HDR > CPX_FRAME_MAX) {
		/* ARG_MAX allows more than one frame carries: not for a worker. */
		fail(r, SHIM_EXIT_REFUSED, 1, "the job's argv and "
		    "environment exceed %d bytes once encoded", CPX_FRAME_MAX);
		goto out;
	}
	cpx_buf_init(&b);
	cpx_hello_put(&b, CPX_SERVICE_JOB, "clusterplex-shim");
	cpx_link_send_buf(r->link, CPX_MSG_HELLO, 0, &b);
	cpx_link_send(r->link, CPX_MSG_JOB, 0, json, strlen(json));
	send_inputs(r);
	cpx_link_send(r->link, CPX_MSG_RUN, 0, NULL, 0);
	shim_source_open(&r->sin, &r->loop, STDIN_FILENO, on_stdin, r);
	r->sin_open = 1;
out:
	for (i = 0; i < js.argc; i++)
		free(js.argv[i]);
	free(js.argv);
	free(js.env);
	free(js.codecs);
	free(inputs);
	free(json);
}

static void
on_opened(struct cpx_ssh_conn *c, int status, const char *cause,
    struct cpx_link *link, void *arg)
{
	struct run *r = arg;

	if (status != 0) {
		fail(r, SHIM_EXIT_SSH, 1, "%s", cause);
		return;
	}
	r->link = link;
	r->phase = PH_HELLO;
	send_job(r);
}

static void
on_ready(struct cpx_ssh_conn *c, int status, const char *cause, void *arg)
{
	struct run *r = arg;

	if (status != 0) {
		fail(r, shim_ssh_exit_code(status), 1, "%s", cause);
		return;
	}
	cpx_ssh_open_link(c, SHIM_AGENT_COMMAND, on_frame, on_link_close, r,
	    on_opened, r);
}

static void
connect_direct(struct run *r)
{
	struct cpx_ssh_auth auth = { .key_path = r->cfg->key_path,
	    .known_hosts = r->cfg->known_hosts };
	struct cpx_ssh_opts opts = {
		.connect_timeout_ms = (unsigned)r->cfg->ssh_timeout_ms,
		.keepalive_ms = (unsigned)r->cfg->keepalive_ms,
	};

	r->phase = PH_CONNECT;
	r->conn = cpx_ssh_connect(&r->loop, &r->pl->worker, &auth, &opts,
	    on_ready, NULL, r);
}

static int
connect_pool(struct run *r)
{
	cJSON *obj;
	char *s;
	int fd = shim_pool_connect(r->cfg, r->cfg->pool == SHIM_POOL_ON);

	if (fd < 0)
		return fd;
	r->link = cpx_link_stream_new(&r->loop, fd, fd, on_frame,
	    on_link_close, r);
	if (r->link == NULL) {
		close(fd);
		return -EBADF;
	}
	obj = cJSON_CreateObject();
	cpx_endpoint_to_json(&r->pl->worker, obj);
	cJSON_AddStringToObject(obj, "service", CPX_SERVICE_JOB);
	s = cpx_json_take(obj, 0);
	cpx_link_send(r->link, CPX_MSG_POOL_OPEN, 0, s, strlen(s));
	free(s);
	r->phase = PH_POOL;
	send_job(r);
	return 0;
}

static void
on_ping(uv_timer_t *t)
{
	struct run *r = t->data;
	uint64_t quiet = cpx_now_ms() - r->last_rx;

	if (r->out_paused || quiet <= (uint64_t)r->cfg->link_timeout_ms) {
		if (r->link != NULL && r->phase >= PH_HELLO)
			cpx_link_send(r->link, CPX_MSG_PING, 0, NULL, 0);
		return;
	}
	if (r->phase == PH_RUN)
		fail(r, SHIM_EXIT_LOST, 0, "no answer from worker %s for "
		    "%llu ms", r->pl->worker.name, (unsigned long long)quiet);
	else
		fail(r, SHIM_EXIT_SSH, 1, "worker %s did not answer "
		    "within %llu ms", r->pl->worker.name,
		    (unsigned long long)quiet);
}

/* PMS's own stop signals reach the transcoder; the agent forwards them. */
static void
on_signal(uv_signal_t *h, int sig)
{
	struct run *r = h->data;
	uint8_t b = (uint8_t)sig;

	if (r->link != NULL && r->phase >= PH_POOL) {
		cpx_link_send(r->link, CPX_MSG_SIGNAL, 0, &b, 1);
		return;
	}
	/* Nothing was sent yet: stop as the transcoder would have. */
	r->out->exit_kind = CPX_EXIT_SIGNAL;
	r->out->exit_value = sig;
	teardown(r);
}

static void
start_handles(struct run *r)
{
	size_t i;

	uv_timer_init(&r->loop, &r->ping);
	r->ping.data = r;
	uv_timer_start(&r->ping, on_ping, (uint64_t)r->cfg->keepalive_ms,
	    (uint64_t)r->cfg->keepalive_ms);
	for (i = 0; i < CPX_ARRAY_SIZE(fwd_signals); i++) {
		uv_signal_init(&r->loop, &r->sig[i]);
		r->sig[i].data = r;
		uv_signal_start(&r->sig[i], on_signal, fwd_signals[i]);
	}
	shim_sink_open(&r->sout, &r->loop, STDOUT_FILENO, on_out_drained, r);
	shim_sink_open(&r->serr, &r->loop, STDERR_FILENO, on_out_drained, r);
}

/*
 * Runs the job on the placed worker and returns when everything is
 * closed and flushed. *out says how it ended: the transcoder's status
 * (code == -1) or our own failure.
 */
void
shim_run_remote(const struct shim_config *cfg, const struct shim_job *job,
    const struct shim_placement *pl, const struct shim_inputs *in,
    struct shim_outcome *out)
{
	struct run r = { .cfg = cfg, .job = job, .pl = pl, .in = in, .out = out };
	int error;

	memset(out, 0, sizeof *out);
	out->code = -1;
	r.t0 = r.last_rx = cpx_now_ms();
	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&r.loop);
	start_handles(&r);
	error = cfg->pool == SHIM_POOL_OFF ? -ENOENT : connect_pool(&r);
	if (error != 0 && cfg->pool == SHIM_POOL_ON)
		fail(&r, SHIM_EXIT_SSH, 1, "no pool at %s/pool.sock: %s",
		    cfg->run_dir, strerror(-error));
	else if (error != 0)
		connect_direct(&r);
	uv_run(&r.loop, UV_RUN_DEFAULT);
	free(r.codec_dir);
	if (uv_loop_close(&r.loop) != 0)
		cpx_debug("event loop closed with handles left");
}
