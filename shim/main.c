/* main.c — clusterplex-shim: runs as "Plex Transcoder"; `pool` keeps SSH warm. */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

/* scripts/install-shim.sh recognises the shim by this string. */
const char shim_marker[] = "CLUSTERPLEX-SHIM-MARKER " CPX_VERSION;

/* The folder the shim was installed in, for the default real transcoder. */
static char *
self_dir(void)
{
	char buf[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);

	if (n <= 0)
		return cpx_xstrdup("/usr/lib/plexmediaserver");
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (slash != NULL && slash != buf)
		*slash = '\0';
	return cpx_xstrdup(buf);
}

/* Before the transcoder started anywhere, `both` runs the job here. */
static _Noreturn void
fall_back(const struct shim_config *cfg, char **argv, const char *why)
{
	cpx_warn("running the job locally: %s", why);
	shim_exec_local(cfg, argv);
}

static _Noreturn void
fail(int code, const char *what)
{
	cpx_error("%s (exit %d: %s)", what, code, shim_exit_meaning(code));
	exit(code);
}

static int
place(const struct shim_config *cfg, const struct shim_job *job,
    char **argv, struct shim_placement *pl)
{
	char *cause = NULL, msg[512];
	int error = shim_place(cfg, job, pl, &cause);

	if (error == 0)
		return 0;
	snprintf(msg, sizeof msg, "dispatcher %s: %s", cfg->orchestrator_url,
	    cause);
	free(cause);
	if (cfg->mode == SHIM_MODE_BOTH)
		fall_back(cfg, argv, msg);
	fail(error == -ENOSPC ? SHIM_EXIT_NO_WORKER : SHIM_EXIT_DISPATCHER, msg);
}

/* fuse must know the session folder's worker before anything runs there. */
static void
add_route(const struct shim_config *cfg, const struct shim_job *job,
    char **argv, const struct shim_placement *pl)
{
	char *cause = NULL, msg[512];

	if (shim_route(cfg, CPX_MSG_ROUTE_ADD, job->session_dir, pl->job_id,
	    &pl->worker, &cause) >= 0)
		return;
	snprintf(msg, sizeof msg, "%s", cause);
	free(cause);
	shim_report_end(cfg, pl->job_id, "failed", SHIM_EXIT_ROUTE, 0);
	if (cfg->mode == SHIM_MODE_BOTH)
		fall_back(cfg, argv, msg);
	fail(SHIM_EXIT_ROUTE, msg);
}

static void
del_route(const struct shim_config *cfg, const struct shim_job *job)
{
	char *cause = NULL;

	if (shim_route(cfg, CPX_MSG_ROUTE_DEL, job->session_dir, NULL, NULL,
	    &cause) < 0)
		cpx_warn("%s", cause);
	free(cause);
}

static _Noreturn void
run_remote(const struct shim_config *cfg, const struct shim_job *job,
    char **argv)
{
	struct shim_placement pl;
	struct shim_inputs in;
	struct shim_outcome out;
	uint64_t t0 = cpx_now_ms();
	char *cause = NULL;

	if (shim_inputs_read(job->cwd, &in, &cause) != 0) {
		cpx_warn("cannot send the session folder's files: %s", cause);
		fall_back(cfg, argv, "its input files cannot be sent");
	}
	place(cfg, job, argv, &pl);
	add_route(cfg, job, argv, &pl);
	shim_run_remote(cfg, job, &pl, &in, &out);
	/* libuv left O_NONBLOCK on the files we share with PMS. */
	shim_restore_process();
	shim_inputs_free(&in);
	shim_report_end(cfg, pl.job_id, out.code == -1 ? out.outcome :
	    out.fallback_ok && cfg->mode == SHIM_MODE_BOTH ? "fallback" :
	    out.outcome, out.code == -1 ? out.exit_value : out.code,
	    cpx_now_ms() - t0);
	if (out.code == -1)
		shim_exit_like(out.exit_kind, out.exit_value);
	if (out.fallback_ok && cfg->mode == SHIM_MODE_BOTH) {
		del_route(cfg, job);
		fall_back(cfg, argv, out.message);
	}
	fail(out.code, out.message);
}

int
main(int argc, char **argv)
{
	struct shim_config cfg;
	struct shim_job job;
	char *cause = NULL, *dir = self_dir(), cwd[PATH_MAX];

	shim_save_process();
	cpx_log_init("clusterplex-shim");
	if (shim_config_load(&cfg, dir, &cause) != 0) {
		cpx_error("configuration: %s (exit %d)", cause, SHIM_EXIT_CONFIG);
		free(cause);
		free(dir);
		shim_config_free(&cfg);
		return SHIM_EXIT_CONFIG;
	}
	free(dir);
	if (argc >= 2 && strcmp(argv[1], "pool") == 0) {
		int status = shim_pool_main(&cfg, argc, argv);

		shim_config_free(&cfg);
		return status;
	}
	if (argc == 2 && strcmp(argv[1], "--clusterplex-version") == 0) {
		printf("%s\n", shim_marker + 24);
		return 0;
	}
	if (cfg.mode == SHIM_MODE_LOCAL)
		shim_exec_local(&cfg, argv);
	if (getcwd(cwd, sizeof cwd) == NULL)
		fall_back(&cfg, argv, "its working directory is unknown");
	shim_classify(&cfg, cwd, argc - 1, argv + 1, &job);
	if (job.local != NULL) {
		cpx_info("running the job locally: %s", job.local);
		shim_exec_local(&cfg, argv);
	}
	run_remote(&cfg, &job, argv);
}
