/* main.c — clusterplex-dispatcher: the worker registry and placement service. */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "disp.h"

#define SWEEP_MS 500

static const char usage[] =
    "usage: clusterplex-dispatcher\n"
    "\n"
    "Keeps the registry of workers (clusterplex-agent serve) and answers\n"
    "placement requests from the shim, on LISTENING_PORT (default 3500).\n"
    "GET / is a status page, /health a probe, /metrics Prometheus text.\n"
    "\n"
    "Environment: CLUSTERPLEX_TOKEN (required unless\n"
    "CLUSTERPLEX_TRUSTED_NETWORK=true), WORKER_SELECTION_STRATEGY\n"
    "(RR, LOAD_CPU, LOAD_TASKS, LOAD_RANK); see docs/dispatcher.md.\n";

struct daemon {
	struct disp d;
	struct disp_config cfg;
	struct cpx_httpd *srv;
	uv_timer_t sweep;
	uv_signal_t sigint, sigterm;
};

static void
on_sweep(uv_timer_t *t)
{
	struct daemon *dm = t->data;

	disp_sweep(&dm->d, cpx_now_ms());
}

static void
on_signal(uv_signal_t *s, int signum)
{
	struct daemon *dm = s->data;

	cpx_info("signal %d: stopping", signum);
	dm->d.httpd = NULL;
	cpx_httpd_close(dm->srv);
	uv_close((uv_handle_t *)&dm->sweep, NULL);
	uv_close((uv_handle_t *)&dm->sigint, NULL);
	uv_close((uv_handle_t *)&dm->sigterm, NULL);
}

static void
start_handles(struct daemon *dm, uv_loop_t *loop)
{
	uv_timer_init(loop, &dm->sweep);
	dm->sweep.data = dm;
	uv_timer_start(&dm->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
	uv_signal_init(loop, &dm->sigint);
	uv_signal_init(loop, &dm->sigterm);
	dm->sigint.data = dm->sigterm.data = dm;
	uv_signal_start(&dm->sigint, on_signal, SIGINT);
	uv_signal_start(&dm->sigterm, on_signal, SIGTERM);
}

static int
serve(struct daemon *dm)
{
	uv_loop_t *loop = uv_default_loop();
	struct cpx_httpd_limits lim;
	char *cause = NULL;

	cpx_httpd_limits_default(&lim);
	lim.max_conns = (size_t)dm->cfg.max_conns;
	lim.idle_ms = (unsigned)dm->cfg.idle_ms;
	lim.request_ms = (unsigned)dm->cfg.request_ms;
	disp_init(&dm->d, &dm->cfg);
	if (cpx_httpd_start(loop, dm->cfg.listen_host, (int)dm->cfg.port, &lim,
	    disp_api_handle, &dm->d, &dm->srv, &cause) != 0) {
		cpx_error("%s", cause);
		free(cause);
		disp_free(&dm->d);
		return 1;
	}
	dm->d.httpd = dm->srv;
	start_handles(dm, loop);
	cpx_info("listening on %s port %d, strategy %s, %s",
	    dm->cfg.listen_host, cpx_httpd_port(dm->srv),
	    disp_strategy_names[dm->cfg.strategy],
	    dm->cfg.token ? "token required" : "NO TOKEN (trusted network)");
	uv_run(loop, UV_RUN_DEFAULT);
	disp_free(&dm->d);
	uv_loop_close(loop);
	return 0;
}

int
main(int argc, char **argv)
{
	static struct daemon dm;
	char *cause = NULL;
	int status;

	cpx_log_init("clusterplex-dispatcher");
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("clusterplex-dispatcher %s\n", CPX_VERSION);
		return 0;
	}
	if (argc != 1) {
		fputs(usage, stderr);
		return 2;
	}
	if (disp_config_load(&dm.cfg, &cause) != 0) {
		cpx_error("configuration: %s", cause);
		free(cause);
		disp_config_free(&dm.cfg);
		return 78;
	}
	if (dm.cfg.token == NULL)
		cpx_warn("CLUSTERPLEX_TOKEN is not set: anyone who reaches port "
		    "%ld can register workers and take jobs "
		    "(CLUSTERPLEX_TRUSTED_NETWORK=true)", dm.cfg.port);
	signal(SIGPIPE, SIG_IGN);
	status = serve(&dm);
	disp_config_free(&dm.cfg);
	return status;
}
