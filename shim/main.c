/* main.c — clusterplex-shim: runs as "Plex Transcoder"; `pool` keeps SSH warm. */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "doctor.h"

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

/*
 * Asks for a worker. `prev` is how the previous worker failed (code -1:
 * none): when no other worker is free, that failure is what is reported.
 */
static void
place(const struct shim_config *cfg, const struct shim_job *job,
    char **argv, const char *exclude, const struct shim_outcome *prev,
    struct shim_placement *pl)
{
	char *cause = NULL, msg[512];
	int error = shim_place(cfg, job, exclude, pl, &cause);

	if (error == 0)
		return;
	if (prev->code != -1 && error == -ENOSPC)
		snprintf(msg, sizeof msg, "%s (no other worker is free)",
		    prev->message);
	else
		snprintf(msg, sizeof msg, "dispatcher %s: %s",
		    cfg->orchestrator_url, cause);
	free(cause);
	if (cfg->mode == SHIM_MODE_BOTH)
		fall_back(cfg, argv, msg);
	if (prev->code != -1 && error == -ENOSPC)
		fail(prev->code, msg);
	fail(error == -ENOSPC ? SHIM_EXIT_NO_WORKER : SHIM_EXIT_DISPATCHER, msg);
}

/*
 * fuse must know the session folder's worker before anything runs there.
 * Returns 0, or -1 when fuse could not reach or trust the worker: that is
 * the worker failing before it has the job (*out says how), and another
 * worker may take it.
 */
static int
add_route(const struct shim_config *cfg, const struct shim_job *job,
    char **argv, const struct shim_placement *pl, struct shim_outcome *wout)
{
	struct shim_outcome out = { .code = SHIM_EXIT_ROUTE };
	char *cause = NULL, msg[512];
	int error;

	error = shim_route(cfg, CPX_MSG_ROUTE_ADD, job->session_dir,
	    pl->job_id, &pl->worker, &cause);
	if (error >= 0)
		return 0;
	snprintf(msg, sizeof msg, "%s", cause);
	free(cause);
	if (error == -EHOSTUNREACH || error == -EKEYREJECTED ||
	    error == -ETIMEDOUT) {
		wout->code = error == -EKEYREJECTED ? SHIM_EXIT_AUTH :
		    SHIM_EXIT_SSH;
		wout->fallback_ok = 1;
		wout->message = cpx_xstrdup(msg);
		return -1;
	}
	shim_report_end(cfg, pl->job_id, &out, 0);
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

/*
 * One placement and its run. Returns only when the worker failed before
 * any agent had the job, so another worker (or PMS's host) may run it;
 * *out says how, `exclude` names that worker (caller frees both).
 */
static void
attempt(const struct shim_config *cfg, const struct shim_job *job,
    char **argv, const struct shim_inputs *in, char **exclude,
    struct shim_outcome *out)
{
	struct shim_placement pl;
	struct shim_outcome prev = *out;
	uint64_t t0 = cpx_now_ms();

	place(cfg, job, argv, *exclude, &prev, &pl);
	if (add_route(cfg, job, argv, &pl, out) == 0)
		shim_run_remote(cfg, job, &pl, in, out);
	/* libuv left O_NONBLOCK on the files we share with PMS. */
	shim_restore_process();
	shim_report_end(cfg, pl.job_id, out, cpx_now_ms() - t0);
	if (out->code == -1)
		shim_exit_like(out->exit_kind, out->exit_value);
	if (!out->fallback_ok)
		fail(out->code, out->message);
	del_route(cfg, job);
	if (out->code == SHIM_EXIT_ROUTE) {
		/* Not the worker's fault: another one would fare no better. */
		if (cfg->mode == SHIM_MODE_BOTH)
			fall_back(cfg, argv, out->message);
		fail(out->code, out->message);
	}
	cpx_warn("worker %s could not run the job: %s", pl.worker.name,
	    out->message);
	free(prev.message);
	free(*exclude);
	*exclude = cpx_xstrdup(pl.worker.name);
	shim_placement_free(&pl);
}

/*
 * A worker that fails before it has the job (unreachable, refuses our
 * key, refuses the job) gets one replacement from the dispatcher, which
 * excludes it; then `both` runs the job here, `remote` reports the last
 * worker's failure.
 */
static _Noreturn void
run_remote(const struct shim_config *cfg, const struct shim_job *job,
    char **argv)
{
	struct shim_outcome out = { .code = -1 };
	struct shim_inputs in;
	char *cause = NULL, *exclude = NULL;

	if (shim_inputs_read(job->cwd, &in, &cause) != 0) {
		cpx_warn("cannot send the session folder's files: %s", cause);
		fall_back(cfg, argv, "its input files cannot be sent");
	}
	attempt(cfg, job, argv, &in, &exclude, &out);
	attempt(cfg, job, argv, &in, &exclude, &out);
	if (cfg->mode == SHIM_MODE_BOTH)
		fall_back(cfg, argv, out.message);
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
	if (argc >= 2 && strcmp(argv[1], "doctor") == 0) {
		int status = shim_doctor_main(&cfg, argc, argv);

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
	shim_note_inputs(&cfg, &job);
	run_remote(&cfg, &job, argv);
}
