/* exec.c — `agent exec`: the sshd forced command; HELLO picks the service. */

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "agent.h"
#include "cpx-link.h"

/* A client that does not say HELLO in time is not a client of ours. */
#define HELLO_TIMEOUT_MS 10000

struct exec_ctx {
	struct agent_config *cfg;
	uv_loop_t *loop;
	uv_timer_t hello_timer;
	int status;
	int started;
};

static void
refuse(struct exec_ctx *ctx, struct cpx_link *link, const char *code,
    const char *message)
{
	struct cpx_buf b;

	cpx_warn("refusing client: %s", message);
	cpx_buf_init(&b);
	cpx_error_put(&b, code, message);
	cpx_link_send_buf(link, CPX_MSG_ERROR, 0, &b);
	cpx_link_close(link);
	ctx->status = 1;
}

static void
start_service(struct exec_ctx *ctx, struct cpx_link *link,
    const char *service)
{
	struct cpx_buf b;
	int error;

	cpx_buf_init(&b);
	cpx_hello_put(&b, NULL, ctx->cfg->name);
	cpx_link_send_buf(link, CPX_MSG_HELLO, 0, &b);
	if (strcmp(service, CPX_SERVICE_JOB) == 0)
		error = agent_job_start(ctx->cfg, ctx->loop, link, &ctx->status);
	else if (strcmp(service, CPX_SERVICE_PROBE) == 0)
		error = agent_probe_start(ctx->cfg, ctx->loop, link,
		    &ctx->status);
	else
		error = agent_files_start(ctx->cfg, ctx->loop, link,
		    &ctx->status);
	if (error != 0)
		refuse(ctx, link, CPX_ERR_PROTO, "service failed to start");
}

static void
on_hello(struct cpx_link *link, const struct cpx_frame *f, void *arg)
{
	struct exec_ctx *ctx = arg;
	char *service = NULL, *cause = NULL;

	uv_timer_stop(&ctx->hello_timer);
	if (f->type != CPX_MSG_HELLO) {
		refuse(ctx, link, CPX_ERR_PROTO, "expected HELLO");
	} else if (cpx_hello_parse(f->payload, f->len, &service, &cause) != 0) {
		refuse(ctx, link, CPX_ERR_VERSION, cause);
	} else if (service == NULL || (strcmp(service, CPX_SERVICE_JOB) != 0 &&
	    strcmp(service, CPX_SERVICE_FILES) != 0 &&
	    strcmp(service, CPX_SERVICE_PROBE) != 0)) {
		refuse(ctx, link, CPX_ERR_PROTO, "unknown service");
	} else {
		ctx->started = 1;
		start_service(ctx, link, service);
	}
	free(service);
	free(cause);
}

static void
on_lost_before_hello(struct cpx_link *link, int error, void *arg)
{
	struct exec_ctx *ctx = arg;

	uv_timer_stop(&ctx->hello_timer);
	ctx->status = 1;
}

static void
on_hello_timeout(uv_timer_t *t)
{
	struct cpx_link *link = t->data;
	struct exec_ctx *ctx = link->arg;

	refuse(ctx, link, CPX_ERR_PROTO, "no HELLO in time");
}

/*
 * sshd runs this for every channel, whatever command the client asked
 * for: SSH_ORIGINAL_COMMAND is ignored (only logged, escaped), so nothing
 * a client sends can choose what runs here besides the two services.
 */
int
agent_exec_main(struct agent_config *cfg)
{
	struct exec_ctx ctx = { .cfg = cfg, .status = 1 };
	const char *orig = getenv("SSH_ORIGINAL_COMMAND");
	struct cpx_link *link;
	uv_loop_t loop;

	signal(SIGPIPE, SIG_IGN);
	if (orig != NULL) {
		char *shown = cpx_escape(orig, strlen(orig), 80);

		cpx_debug("ignoring requested command \"%s\"", shown);
		free(shown);
	}
	uv_loop_init(&loop);
	ctx.loop = &loop;
	link = cpx_link_stream_new(&loop, STDIN_FILENO, STDOUT_FILENO,
	    on_hello, on_lost_before_hello, &ctx);
	if (link == NULL) {
		cpx_error("standard input/output are not pipes or sockets");
		uv_loop_close(&loop);
		return 1;
	}
	uv_timer_init(&loop, &ctx.hello_timer);
	ctx.hello_timer.data = link;
	uv_timer_start(&ctx.hello_timer, on_hello_timeout, HELLO_TIMEOUT_MS, 0);
	uv_unref((uv_handle_t *)&ctx.hello_timer);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&ctx.hello_timer, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return ctx.status;
}
