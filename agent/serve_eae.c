/* serve_eae.c — agent serve's EasyAudioEncoder supervisor: one per worker and EAE_ROOT. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cpx-link.h"
#include "cpx-ssh.h"
#include "serve.h"

/*
 * EAE converts audio for the transcoder through a watch folder
 * (EAE_ROOT): it must run, on the transcoder's machine, while jobs use
 * it, and outlive any one job. `agent serve` is the worker's long-lived
 * process, so it keeps them: `agent exec` of an EAE job connects to
 * $CLUSTERPLEX_RUN_DIR/agent.sock and asks for the job's EAE_ROOT (PMS's
 * value, the key); the supervisor starts one EAE per worker and key, in
 * a folder of this worker's own (CLUSTERPLEX_EAE_DIR/<digest of the key>),
 * never on a shared volume, so EAE's own PID file there can never stop
 * another worker's. The connection is the job's lease. An EAE that dies
 * while leased is started again (after 0.25 s, doubling to 5 s while it
 * keeps dying); one without leases stops after CLUSTERPLEX_EAE_IDLE_MS.
 * State is in memory only: a restarted `serve` starts afresh, and the
 * EAEs of the previous one died with it (PR_SET_PDEATHSIG).
 */

#define EAE_STOP_GRACE_MS 2000
#define EAE_BACKOFF_MAX_MS 5000

struct eae_inst {
	struct eae_sup *sup;
	char *root;		/* PMS's EAE_ROOT */
	char *dir;		/* the folder it watches here */
	char *binary;
	pid_t pid;		/* 0: not running */
	int leases;
	int stopping;		/* idle: SIGTERM sent, or removal due */
	unsigned restarts;	/* in a row, for the back-off */
	unsigned total_restarts;
	uint64_t started_ms;
	uv_timer_t timer;	/* idle stop, kill after grace, restart */
	struct eae_inst *next;
};

struct eae_client {
	struct eae_sup *sup;
	struct cpx_link *link;
	struct eae_inst *inst;
	struct eae_client *next;
};

struct eae_sup {
	struct agent_config *cfg;
	uv_loop_t *loop;
	int fd;
	uv_poll_t poll;
	uv_signal_t sigchld;
	char *path;
	struct eae_inst *list;
	struct eae_client *clients;
};

static void inst_spawn(struct eae_inst *e);

static void
on_inst_closed(uv_handle_t *h)
{
	struct eae_inst *e = h->data;

	free(e->root);
	free(e->dir);
	free(e->binary);
	free(e);
}

static void
inst_remove(struct eae_inst *e)
{
	struct eae_inst **pp;

	for (pp = &e->sup->list; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	}
	uv_close((uv_handle_t *)&e->timer, on_inst_closed);
}

static void
on_kill_timer(uv_timer_t *t)
{
	struct eae_inst *e = t->data;

	if (e->pid > 0)
		kill(-e->pid, SIGKILL);
}

/* No lease for CLUSTERPLEX_EAE_IDLE_MS: TERM, then KILL after a grace. */
static void
on_idle_timer(uv_timer_t *t)
{
	struct eae_inst *e = t->data;

	e->stopping = 1;
	if (e->pid <= 0) {
		inst_remove(e);
		return;
	}
	cpx_info("EasyAudioEncoder pid %d for %s idle: stopping it",
	    (int)e->pid, e->root);
	kill(-e->pid, SIGTERM);
	uv_timer_start(&e->timer, on_kill_timer, EAE_STOP_GRACE_MS, 0);
}

static void
on_restart_timer(uv_timer_t *t)
{
	inst_spawn(t->data);
}

/* A child of ours ended: restart a leased EAE, forget an idle one. */
static void
inst_exited(struct eae_inst *e, int st)
{
	unsigned delay;

	cpx_warn("EasyAudioEncoder pid %d for %s %s %d", (int)e->pid, e->root,
	    WIFSIGNALED(st) ? "killed by signal" : "exited with",
	    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	e->pid = 0;
	if (e->stopping || e->leases == 0) {
		uv_timer_stop(&e->timer);
		inst_remove(e);
		return;
	}
	if (cpx_now_ms() - e->started_ms > 10000)
		e->restarts = 0;
	delay = e->restarts == 0 ? 0 : 250u << (e->restarts - 1);
	if (delay > EAE_BACKOFF_MAX_MS)
		delay = EAE_BACKOFF_MAX_MS;
	e->restarts++;
	e->total_restarts++;
	uv_timer_start(&e->timer, on_restart_timer, delay, 0);
}

static void
on_sigchld(uv_signal_t *s, int signum)
{
	struct eae_sup *sup = s->data;
	struct eae_inst *e, *next;
	int st;

	for (e = sup->list; e != NULL; e = next) {
		next = e->next;
		if (e->pid > 0 && waitpid(e->pid, &st, WNOHANG) == e->pid)
			inst_exited(e, st);
	}
}

static _Noreturn void
eae_child(const struct eae_inst *e, int report, char *const envp[])
{
	char *argv[] = { e->binary, NULL };
	sigset_t none;
	int fd, err, sig;

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || dup2(fd, 0) < 0 || chdir(e->dir) != 0)
		goto fail;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	execve(e->binary, argv, envp);
fail:
	err = errno;
	(void)!write(report, &err, sizeof err);
	_exit(127);
}

/* EAE runs in its own folder, with a small environment of its own. */
static void
inst_spawn(struct eae_inst *e)
{
	char *root = cpx_xprintf("EAE_ROOT=%s", e->dir);
	char *home = cpx_xprintf("HOME=%s", getenv("HOME") ? getenv("HOME") :
	    "/");
	char *envp[] = { root, home, "PATH=/usr/local/bin:/usr/bin:/bin", NULL };
	int rep[2], err = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(rep, O_CLOEXEC) != 0 || (pid = fork()) < 0) {
		cpx_error("cannot start EasyAudioEncoder: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		eae_child(e, rep[1], envp);
	setpgid(pid, pid);
	close(rep[1]);
	do
		n = read(rep[0], &err, sizeof err);
	while (n < 0 && errno == EINTR);
	close(rep[0]);
	e->pid = pid;
	e->started_ms = cpx_now_ms();
	if (n == (ssize_t)sizeof err)
		cpx_error("cannot run %s: %s", e->binary, strerror(err));
	else
		cpx_info("EasyAudioEncoder pid %d started for %s in %s",
		    (int)pid, e->root, e->dir);
out:
	free(root);
	free(home);
}

static struct eae_inst *
inst_find(struct eae_sup *sup, const char *root)
{
	struct eae_inst *e;

	for (e = sup->list; e != NULL; e = e->next) {
		if (strcmp(e->root, root) == 0 && !e->stopping)
			return e;
	}
	return NULL;
}

static struct eae_inst *
inst_new(struct eae_sup *sup, const char *root, const char *binary)
{
	struct eae_inst *e = cpx_xcalloc(1, sizeof *e);
	uint8_t d[32];
	char hex[65];

	cpx_sha256(root, strlen(root), d);
	cpx_sha256_hex(d, hex);
	e->sup = sup;
	e->root = cpx_xstrdup(root);
	e->dir = cpx_xprintf("%s/%.16s", sup->cfg->eae_dir, hex);
	e->binary = cpx_xstrdup(binary);
	uv_timer_init(sup->loop, &e->timer);
	e->timer.data = e;
	e->next = sup->list;
	sup->list = e;
	return e;
}

/* Under `dir` (resolved), on a component boundary. */
static int
resolved_under(const char *real, const char *dir)
{
	char buf[PATH_MAX];

	return dir != NULL && realpath(dir, buf) != NULL &&
	    cpx_path_under(real, buf, NULL);
}

/*
 * Only an EasyAudioEncoder this worker's configuration names: its
 * CLUSTERPLEX_EAE_PATH, or one in its codec cache or codec folders.
 */
static int
binary_allowed(const struct agent_config *cfg, const char *binary)
{
	char real[PATH_MAX], want[PATH_MAX], *dirs, *d, *save = NULL;
	int ok = 0;

	if (realpath(binary, real) == NULL)
		return 0;
	if (cfg->eae_path != NULL)
		return realpath(cfg->eae_path, want) != NULL &&
		    strcmp(real, want) == 0;
	if (resolved_under(real, cfg->codec_cache))
		return 1;
	dirs = cpx_xstrdup(cfg->codec_dirs != NULL ? cfg->codec_dirs : "");
	for (d = strtok_r(dirs, ":", &save); d != NULL && !ok;
	    d = strtok_r(NULL, ":", &save))
		ok = resolved_under(real, d);
	free(dirs);
	return ok;
}

static void
send_error(struct cpx_link *link, const char *message)
{
	struct cpx_buf b;

	cpx_warn("EAE request refused: %s", message);
	cpx_buf_init(&b);
	cpx_error_put(&b, CPX_ERR_EXEC, message);
	cpx_link_send_buf(link, CPX_MSG_ERROR, 0, &b);
}

static void
send_ready(struct eae_client *cl, int started)
{
	cJSON *obj = cJSON_CreateObject();
	char *s;

	cJSON_AddStringToObject(obj, "dir", cl->inst->dir);
	cJSON_AddNumberToObject(obj, "pid", cl->inst->pid);
	cJSON_AddBoolToObject(obj, "started", started);
	s = cpx_json_take(obj, 0);
	cpx_link_send(cl->link, CPX_MSG_EAE_READY, 0, s, strlen(s));
	free(s);
}

/* {"root", "binary", "job"}: a lease on the EAE for root, started if need be. */
static void
acquire(struct eae_client *cl, const struct cpx_frame *f)
{
	cJSON *obj = cJSON_ParseWithLength((const char *)f->payload, f->len);
	const cJSON *root = cJSON_GetObjectItemCaseSensitive(obj, "root");
	const cJSON *bin = cJSON_GetObjectItemCaseSensitive(obj, "binary");
	struct eae_inst *e;
	int started = 0, error;

	if (cl->inst != NULL || !cJSON_IsString(root) || !cJSON_IsString(bin) ||
	    *root->valuestring == '\0' || strlen(root->valuestring) > 4096) {
		send_error(cl->link, "malformed EAE request");
		goto out;
	}
	if (!binary_allowed(cl->sup->cfg, bin->valuestring)) {
		send_error(cl->link, "that EasyAudioEncoder is not one this "
		    "worker's configuration names");
		goto out;
	}
	if ((e = inst_find(cl->sup, root->valuestring)) == NULL)
		e = inst_new(cl->sup, root->valuestring, bin->valuestring);
	if (e->pid == 0 && !uv_is_active((uv_handle_t *)&e->timer)) {
		if ((error = cpx_mkdir_p(e->dir, 0700)) != 0) {
			send_error(cl->link, strerror(-error));
			goto out;
		}
		inst_spawn(e);
		started = 1;
	}
	uv_timer_stop(&e->timer);	/* no idle stop while leased */
	if (e->pid == 0) {
		/* A restart is pending after a crash: start it now. */
		inst_spawn(e);
		started = 1;
	}
	e->leases++;
	cl->inst = e;
	send_ready(cl, started);
out:
	cJSON_Delete(obj);
}

static void
drop_client(struct eae_client *cl)
{
	struct eae_client **pp;
	struct eae_inst *e = cl->inst;

	if (e != NULL && --e->leases == 0 && !e->stopping)
		uv_timer_start(&e->timer, on_idle_timer,
		    (uint64_t)cl->sup->cfg->eae_idle_ms, 0);
	for (pp = &cl->sup->clients; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == cl) {
			*pp = cl->next;
			break;
		}
	}
	free(cl);
}

static void
on_client_frame(struct cpx_link *link, const struct cpx_frame *f, void *arg)
{
	struct eae_client *cl = arg;

	if (f->type == CPX_MSG_EAE_ACQUIRE)
		acquire(cl, f);
	else if (f->type == CPX_MSG_PING)
		cpx_link_send(link, CPX_MSG_PONG, f->id, NULL, 0);
	else
		send_error(link, "unexpected message");
}

/* The job ended (or its agent died): its lease ends with the connection. */
static void
on_client_close(struct cpx_link *link, int error, void *arg)
{
	drop_client(arg);
}

static void
on_accept(uv_poll_t *p, int status, int events)
{
	struct eae_sup *sup = p->data;
	struct eae_client *cl;
	int fd;

	while ((fd = accept4(sup->fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		cl = cpx_xcalloc(1, sizeof *cl);
		cl->sup = sup;
		cl->link = cpx_link_stream_new(sup->loop, fd, fd,
		    on_client_frame, on_client_close, cl);
		if (cl->link == NULL) {
			close(fd);
			free(cl);
			continue;
		}
		cl->next = sup->clients;
		sup->clients = cl;
	}
}

static int
listen_socket(struct eae_sup *sup, char **cause)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(sup->path) >= sizeof sa.sun_path) {
		cpx_set_cause(cause, "%s is too long for a socket", sup->path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, sup->path);
	unlink(sup->path);	/* left by an earlier serve */
	sup->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sup->fd < 0 || bind(sup->fd, (struct sockaddr *)&sa,
	    sizeof sa) != 0 || chmod(sup->path, 0600) != 0 ||
	    listen(sup->fd, 64) != 0) {
		cpx_set_cause(cause, "%s: %s", sup->path, strerror(errno));
		return -errno;
	}
	return 0;
}

/*
 * Starts the supervisor on agent.sock. Its failure is not fatal for
 * serve: EAE jobs are then refused (and run on the PMS host in `both`).
 */
struct eae_sup *
agent_eae_start(struct agent_config *cfg, uv_loop_t *loop)
{
	struct eae_sup *sup = cpx_xcalloc(1, sizeof *sup);
	char *cause = NULL;

	sup->cfg = cfg;
	sup->loop = loop;
	sup->fd = -1;
	sup->path = cpx_xprintf("%s/agent.sock", cfg->run_dir);
	if (cpx_mkdir_p(cfg->run_dir, 0755) != 0 ||
	    listen_socket(sup, &cause) != 0) {
		cpx_warn("no EasyAudioEncoder supervisor: %s; EAE jobs will be "
		    "refused here", cause ? cause : strerror(errno));
		free(cause);
		if (sup->fd >= 0)
			close(sup->fd);
		free(sup->path);
		free(sup);
		return NULL;
	}
	uv_poll_init(loop, &sup->poll, sup->fd);
	sup->poll.data = sup;
	uv_poll_start(&sup->poll, UV_READABLE, on_accept);
	uv_signal_init(loop, &sup->sigchld);
	sup->sigchld.data = sup;
	uv_signal_start(&sup->sigchld, on_sigchld, SIGCHLD);
	return sup;
}

static void
on_sup_closed(uv_handle_t *h)
{
	struct eae_sup *sup = h->data;

	if (h == (uv_handle_t *)&sup->sigchld) {
		free(sup->path);
		free(sup);
	}
}

/* serve is stopping: every EAE gets SIGTERM; handles close. */
void
agent_eae_stop(struct eae_sup *sup)
{
	struct eae_inst *e;
	struct eae_client *cl, *next;

	if (sup == NULL)
		return;
	while ((e = sup->list) != NULL) {
		if (e->pid > 0) {
			kill(-e->pid, SIGTERM);
			cpx_info("stopped EasyAudioEncoder pid %d for %s",
			    (int)e->pid, e->root);
		}
		inst_remove(e);
	}
	for (cl = sup->clients; cl != NULL; cl = next) {
		next = cl->next;
		cl->inst = NULL;
		cpx_link_close(cl->link);
	}
	uv_poll_stop(&sup->poll);
	close(sup->fd);
	unlink(sup->path);
	uv_close((uv_handle_t *)&sup->poll, NULL);
	uv_close((uv_handle_t *)&sup->sigchld, on_sup_closed);
}

/* For /health: [{"root","dir","pid","leases","restarts"}]. */
struct cJSON *
agent_eae_json(const struct eae_sup *sup)
{
	cJSON *arr = cJSON_CreateArray(), *o;
	const struct eae_inst *e;

	for (e = sup != NULL ? sup->list : NULL; e != NULL; e = e->next) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "root", e->root);
		cJSON_AddStringToObject(o, "dir", e->dir);
		cJSON_AddNumberToObject(o, "pid", e->pid);
		cJSON_AddNumberToObject(o, "leases", e->leases);
		cJSON_AddNumberToObject(o, "restarts", e->total_restarts);
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}
