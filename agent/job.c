/* job.c — the job service: JOB, INPUTs, RUN, then stream until EXIT. */

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "job.h"

static uint64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
job_free(struct job *j)
{
	size_t i;

	for (i = 0; j->input_fd != NULL && i < j->spec.ninputs; i++) {
		if (j->input_fd[i] >= 0)
			close(j->input_fd[i]);
	}
	if (j->cwd_fd >= 0)
		close(j->cwd_fd);
	free(j->input_fd);
	free(j->input_done);
	agent_strv_free(j->argv);
	agent_strv_free(j->envp);
	cpx_jobspec_free(&j->spec);
	cpx_buf_free(&j->early_stdin);
	free(j->worker_cwd);
	free(j->state_path);
	if (j->eae_fd >= 0)
		close(j->eae_fd);
	free(j);
}

void
job_handle_closed(uv_handle_t *h)
{
	struct job *j = h->data;

	if (--j->handles == 0)
		job_free(j);
}

static void
close_handle(struct job *j, uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, job_handle_closed);
}

/*
 * Ends the service: the link flushes what is queued (EXIT, ERROR) and
 * closes; every handle closes, and the job is freed with the last one.
 */
void
job_finish(struct job *j, int status)
{
	if (j->finished)
		return;
	j->finished = 1;
	*j->status = status;
	cpx_tunnels_free(j->tunnels);
	j->tunnels = NULL;
	if (j->link != NULL)
		cpx_link_close(j->link);
	j->link = NULL;
	job_close_io(j);
	if (j->listening)
		close_handle(j, (uv_handle_t *)&j->listener);
	close_handle(j, (uv_handle_t *)&j->link_timer);
	close_handle(j, (uv_handle_t *)&j->drain_timer);
	close_handle(j, (uv_handle_t *)&j->prep_timer);
	close_handle(j, (uv_handle_t *)&j->sigchld);
	job_codecs_free(j);
}

static void
refuse(struct job *j, const char *code, const char *message)
{
	struct cpx_buf b;

	cpx_warn("job %s refused: %s", j->spec.id != NULL ? j->spec.id : "?",
	    message);
	if (j->link != NULL) {
		cpx_buf_init(&b);
		cpx_error_put(&b, code, message);
		cpx_link_send_buf(j->link, CPX_MSG_ERROR, 0, &b);
	}
	if (j->pid > 0 && !j->exited)
		kill(-j->pid, SIGKILL);
	if (j->pid <= 0 || j->exited)
		job_finish(j, 1);
	else
		j->lost = 1;	/* finish once reaped */
}

/* Sends EXIT once the transcoder is reaped and its output is drained. */
void
job_send_exit(struct job *j)
{
	uint8_t p[3] = { CPX_EXIT_CODE, 0, 0 };
	int st = j->wstatus;

	uv_timer_stop(&j->drain_timer);
	if (WIFSIGNALED(st)) {
		p[0] = CPX_EXIT_SIGNAL;
		p[1] = (uint8_t)WTERMSIG(st);
		p[2] = WCOREDUMP(st) ? 1 : 0;
	} else {
		p[1] = (uint8_t)WEXITSTATUS(st);
	}
	cpx_info("job %s: %s %d after %llu ms", j->spec.id,
	    p[0] == CPX_EXIT_SIGNAL ? "killed by signal" : "exit code", p[1],
	    (unsigned long long)(cpx_now_ms() - j->t_job));
	if (j->link != NULL)
		cpx_link_send(j->link, CPX_MSG_EXIT, 0, p, sizeof p);
	job_finish(j, 0);
}

static void
on_drain_timeout(uv_timer_t *t)
{
	struct job *j = t->data;

	/* Something outside the group still holds the pipes: stop waiting. */
	job_close_io(j);
	job_send_exit(j);
}

static void
child_exited(struct job *j, int st)
{
	j->exited = 1;
	j->wstatus = st;
	/* Nothing the transcoder started may outlive it. */
	kill(-j->pid, SIGKILL);
	agent_guard_done(j->guard_fd);
	j->guard_fd = -1;
	agent_state_remove(j->state_path);
	job_close_stdin(j);
	if (j->lost)
		job_finish(j, 1);
	else if (!j->out_open && !j->err_open)
		job_send_exit(j);
	else
		uv_timer_start(&j->drain_timer, on_drain_timeout, 2000, 0);
}

static void
on_sigchld(uv_signal_t *s, int signum)
{
	struct job *j = s->data;
	int st;

	if (j->guard_pid > 0 && waitpid(j->guard_pid, &st, WNOHANG) ==
	    j->guard_pid)
		j->guard_pid = 0;
	if (j->pid > 0 && !j->exited && waitpid(j->pid, &st, WNOHANG) == j->pid)
		child_exited(j, st);
}

/* The shim is gone (EOF, error or silence): the job dies with it, now. */
static void
job_lost(struct job *j, const char *why)
{
	j->lost = 1;
	cpx_tunnels_free(j->tunnels);
	j->tunnels = NULL;
	if (j->pid > 0 && !j->exited) {
		kill(-j->pid, SIGKILL);
		cpx_warn("job %s: %s; killed the transcoder", j->spec.id, why);
	} else {
		job_finish(j, 1);
	}
}

static void
on_link_close(struct cpx_link *link, int error, void *arg)
{
	struct job *j = arg;
	char why[128];

	j->link = NULL;
	snprintf(why, sizeof why, "link to the shim %s",
	    error == 0 ? "closed" : uv_strerror(error));
	job_lost(j, why);
}

static void
on_link_timeout(uv_timer_t *t)
{
	struct job *j = t->data;
	char why[128];

	snprintf(why, sizeof why, "no frame from the shim for %ld ms",
	    j->cfg->link_timeout_ms);
	if (j->link != NULL)
		cpx_link_close(j->link);
	j->link = NULL;
	job_lost(j, why);
}

static int
prepare_paths(struct job *j, char **cause)
{
	size_t i;
	int fd;

	if (agent_job_map_cwd(j->cfg->root, j->spec.root, j->spec.cwd,
	    &j->cwd_fd, &j->worker_cwd, cause) != 0)
		return -EINVAL;
	j->input_fd = cpx_xcalloc(j->spec.ninputs + 1, sizeof *j->input_fd);
	j->input_done = cpx_xcalloc(j->spec.ninputs + 1,
	    sizeof *j->input_done);
	for (i = 0; i < j->spec.ninputs; i++)
		j->input_fd[i] = -1;
	for (i = 0; i < j->spec.ninputs; i++) {
		fd = agent_job_open_input(j->cwd_fd, j->spec.inputs[i].name,
		    cause);
		if (fd < 0)
			return fd;
		j->input_fd[i] = fd;
	}
	return 0;
}

static void
build_argv(struct job *j)
{
	struct job_argv_opts o = {
		.transcoder = j->cfg->transcoder,
		.pms_root = j->spec.root,
		.worker_root = j->cfg->root,
		.path_map = &j->cfg->path_map,
		.pms_port = j->spec.pms_port,
		.callback_port = j->callback_port,
		.verbose = j->spec.verbose,
		.hwaccel = j->cfg->hwaccel,
	};

	j->argv = agent_job_argv(j->spec.argv, j->spec.argc, &o);
	j->envp = agent_job_env(j->spec.env, j->spec.envc, j->worker_cwd,
	    getenv);
}

static void
on_job(struct job *j, const struct cpx_frame *f)
{
	char *cause = NULL, msg[160];
	int running;

	if (j->have_spec) {
		refuse(j, CPX_ERR_PROTO, "a second JOB");
		return;
	}
	j->have_spec = 1;
	if (cpx_jobspec_decode((const char *)f->payload, f->len, &j->spec,
	    &cause) != 0 || !agent_job_id_valid(j->spec.id)) {
		refuse(j, CPX_ERR_SPEC, cause != NULL ? cause :
		    "job id must be 1-128 of [A-Za-z0-9._:-]");
		goto out;
	}
	running = agent_state_running(j->cfg->run_dir);
	if (running >= j->cfg->max_tasks) {
		snprintf(msg, sizeof msg, "worker %s runs %d jobs (at most %ld)",
		    j->cfg->name, running, j->cfg->max_tasks);
		refuse(j, CPX_ERR_BUSY, msg);
		goto out;
	}
	if (access(j->cfg->transcoder, X_OK) != 0) {
		snprintf(msg, sizeof msg, "transcoder %.100s: %s",
		    j->cfg->transcoder, strerror(errno));
		refuse(j, CPX_ERR_EXEC, msg);
		goto out;
	}
	if (prepare_paths(j, &cause) != 0) {
		refuse(j, CPX_ERR_SPEC, cause);
		goto out;
	}
	/* The session folder's file system: it may be its own mount. */
	if (agent_root_space(j->worker_cwd, j->cfg->min_free_mb, msg,
	    sizeof msg) != 0) {
		refuse(j, CPX_ERR_BUSY, msg);
		goto out;
	}
	if (j->spec.tunnel && job_listen(j, &cause) != 0) {
		refuse(j, CPX_ERR_EXEC, cause);
		goto out;
	}
	build_argv(j);
	cpx_info("job %s (session %s): %zu arguments in %s", j->spec.id,
	    j->spec.session, j->spec.argc, j->worker_cwd);
	switch (job_codecs_start(j, &cause)) {
	case 0:
		job_prepared(j, NULL);
		break;
	case 1:
		break;		/* job_prepared() follows the fetch */
	default:
		refuse(j, CPX_ERR_EXEC, cause);
		break;
	}
out:
	free(cause);
}

static void
on_input(struct job *j, const struct cpx_frame *f)
{
	struct cpx_reader r;
	uint64_t off;
	size_t i = f->id, n;
	ssize_t w;

	cpx_reader_init(&r, f->payload, f->len);
	off = cpx_rd_u64(&r);
	n = r.left;
	if (!j->have_spec || j->pid != 0 || i >= j->spec.ninputs || r.err ||
	    j->input_fd[i] < 0 || off > j->spec.inputs[i].size ||
	    n > j->spec.inputs[i].size - off) {
		refuse(j, CPX_ERR_PROTO, "INPUT out of place or out of bounds");
		return;
	}
	while (n > 0) {
		w = pwrite(j->input_fd[i], r.p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			refuse(j, CPX_ERR_EXEC, "cannot write an input file");
			return;
		}
		r.p += w;
		off += (uint64_t)w;
		n -= (size_t)w;
		j->input_done[i] += (uint64_t)w;
	}
}

static void
send_started(struct job *j)
{
	cJSON *obj = cJSON_CreateObject();
	char *s;

	cJSON_AddNumberToObject(obj, "pid", j->pid);
	cJSON_AddNumberToObject(obj, "callback_port", j->callback_port);
	s = cJSON_PrintUnformatted(obj);
	cJSON_Delete(obj);
	if (s != NULL && j->link != NULL)
		cpx_link_send(j->link, CPX_MSG_STARTED, 0, s, strlen(s));
	cJSON_free(s);
}

static int
inputs_complete(struct job *j)
{
	size_t i;

	for (i = 0; i < j->spec.ninputs; i++) {
		if (j->input_done[i] != j->spec.inputs[i].size)
			return 0;
		close(j->input_fd[i]);
		j->input_fd[i] = -1;
	}
	return 1;
}

static void
on_run(struct job *j)
{
	struct job_proc p;
	char *cause = NULL;
	int st;

	if (!j->have_spec || j->pid != 0 || j->argv == NULL || j->run_pending) {
		refuse(j, CPX_ERR_PROTO, "RUN without a valid JOB");
		return;
	}
	if (!j->prepared) {
		j->run_pending = 1;	/* a codec set is on its way */
		return;
	}
	if (!inputs_complete(j)) {
		refuse(j, CPX_ERR_SPEC, "RUN before every input arrived");
		return;
	}
	j->started_ms = wall_ms();
	if (agent_proc_spawn(j->cfg->transcoder, j->argv, j->envp, j->cwd_fd,
	    &p, &cause) != 0) {
		refuse(j, CPX_ERR_EXEC, cause);
		free(cause);
		return;
	}
	j->pid = p.pid;
	j->guard_fd = agent_guard_start(j->pid, &j->guard_pid);
	if (j->guard_fd < 0)
		cpx_warn("job %s: no guard process: %s", j->spec.id,
		    strerror(errno));
	close(j->cwd_fd);
	j->cwd_fd = -1;
	j->state_path = agent_state_write(j->cfg->run_dir, &j->spec, j->pid,
	    j->started_ms, j->worker_cwd);
	job_start_io(j, &p);
	send_started(j);
	cpx_debug("job %s: pid %d started %llu ms after JOB", j->spec.id,
	    (int)j->pid, (unsigned long long)(cpx_now_ms() - j->t_job));
	/* It may have exited before SIGCHLD could be noticed. */
	if (waitpid(j->pid, &st, WNOHANG) == j->pid)
		child_exited(j, st);
}

/*
 * The codec set is settled (error NULL) or cannot be had: the EAE comes
 * next, then a RUN that arrived meanwhile starts the transcoder.
 */
void
job_prepared(struct job *j, const char *error)
{
	char *why = NULL;

	if (j->finished)
		return;
	if (error != NULL) {
		refuse(j, CPX_ERR_EXEC, error);
		return;
	}
	if (job_eae_start(j, &why) != 0) {
		refuse(j, CPX_ERR_EXEC, why);
		free(why);
		return;
	}
	j->prepared = 1;
	if (j->run_pending) {
		j->run_pending = 0;
		on_run(j);
	}
}

static void
on_frame(struct cpx_link *link, const struct cpx_frame *f, void *arg)
{
	struct job *j = arg;

	uv_timer_start(&j->link_timer, on_link_timeout,
	    (uint64_t)j->cfg->link_timeout_ms, 0);
	switch (f->type) {
	case CPX_MSG_JOB:
		j->t_job = cpx_now_ms();
		on_job(j, f);
		break;
	case CPX_MSG_INPUT:
		on_input(j, f);
		break;
	case CPX_MSG_RUN:
		on_run(j);
		break;
	case CPX_MSG_STDIN:
		job_stdin(j, f);
		break;
	case CPX_MSG_SIGNAL:
		job_signal(j, f->len == 1 ? f->payload[0] : -1);
		break;
	case CPX_MSG_PING:
		cpx_link_send(link, CPX_MSG_PONG, f->id, NULL, 0);
		break;
	case CPX_MSG_SET_FILE:
	case CPX_MSG_SET_DATA:
	case CPX_MSG_SET_SUM:
	case CPX_MSG_SET_END:
		job_codecs_frame(j, f);
		break;
	case CPX_MSG_TUN_DATA:
	case CPX_MSG_TUN_CLOSE:
		if (j->tunnels != NULL)
			cpx_tunnels_frame(j->tunnels, f);
		break;
	default:
		cpx_debug("ignoring %s", cpx_msg_name(f->type));
		break;
	}
}

/*
 * Takes the link over after HELLO. The SIGCHLD watcher starts before any
 * fork, so no exit can go unnoticed.
 */
int
agent_job_start(struct agent_config *cfg, struct uv_loop_s *loop,
    struct cpx_link *link, int *status)
{
	struct job *j = cpx_xcalloc(1, sizeof *j);

	j->cfg = cfg;
	j->loop = loop;
	j->link = link;
	j->status = status;
	j->cwd_fd = -1;
	j->guard_fd = -1;
	j->eae_fd = -1;
	j->t_job = cpx_now_ms();
	cpx_buf_init(&j->early_stdin);
	uv_timer_init(loop, &j->link_timer);
	uv_timer_init(loop, &j->drain_timer);
	uv_timer_init(loop, &j->prep_timer);
	uv_signal_init(loop, &j->sigchld);
	j->link_timer.data = j->drain_timer.data = j->sigchld.data = j;
	j->prep_timer.data = j;
	j->handles = 4;
	uv_signal_start(&j->sigchld, on_sigchld, SIGCHLD);
	uv_timer_start(&j->link_timer, on_link_timeout,
	    (uint64_t)cfg->link_timeout_ms, 0);
	link->on_frame = on_frame;
	link->on_close = on_link_close;
	link->arg = j;
	*status = 1;
	return 0;
}
