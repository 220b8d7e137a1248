/* transport_openssh.c — a worker's file service through OpenSSH's client. */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cfs.h"

/*
 * CLUSTERPLEX_FUSE_SSH=openssh: each connection is an `ssh` process
 * (openssh_args.c builds its command line) whose stdin and stdout are the
 * link. libssh2 1.10 decrypts 16 bytes per EVP_Cipher call; OpenSSH's
 * client costs about half the CPU per MB, which is what a cold read
 * through the mount is bound by (docs/fuse.md).
 *
 * ssh runs in a process group of its own, dies with the thread that
 * started it (PR_SET_PDEATHSIG: a lane's thread lives as long as fuse),
 * is killed with its group when the worker lets go of the connection,
 * and is reaped through a pidfd on the lane's loop. What it says on
 * stderr goes to the log, one line each, and names the failure: a host
 * key refused is -EKEYREJECTED, as with libssh2 (ROUTE_ADD's "host-key").
 */

#define ERR_LINE_MAX 512
#define LINK_PIPE_SIZE (1 << 20)	/* the agent's output, in flight */

struct osshw;

struct ossh_proc {
	struct osshw *owner;	/* NULL once the worker let go of it */
	char *who;		/* "worker w1: lane 1", for the log */
	pid_t pid;
	int reaped;
	int pidfd, errfd;
	int handles;		/* poll handles not closed yet */
	uv_poll_t exit_poll, err_poll;
	int status;		/* the first failure ssh's stderr named */
	char *cause;
	char line[ERR_LINE_MAX];
	size_t llen;
};

struct osshw {
	struct cfs *fs;
	struct cfs_worker *w;
	struct ossh_proc *proc;	/* the current connection's */
	char *known_hosts;	/* our file with the pinned key */
	uv_timer_t fail_timer;	/* a failure before ssh ran, reported */
	int fail_status;	/* from the loop, never from connect() */
	char *fail_cause;
};

static void
proc_free_if_done(struct ossh_proc *p)
{
	if (p->owner != NULL || p->handles > 0)
		return;
	free(p->who);
	free(p->cause);
	free(p);
}

static void
on_handle_closed(uv_handle_t *h)
{
	struct ossh_proc *p = h->data;

	if (h == (uv_handle_t *)&p->exit_poll) {
		if (p->pidfd >= 0)
			close(p->pidfd);
	} else {
		close(p->errfd);
	}
	p->handles--;
	proc_free_if_done(p);
}

static void
err_line(struct ossh_proc *p)
{
	int status;

	if (p->llen == 0)
		return;
	p->line[p->llen] = '\0';
	p->llen = 0;
	/*
	 * Only a connection not yet ready can fail for a reason ssh names;
	 * later lines may be the agent's own (its stderr comes through).
	 */
	status = cfs_ossh_classify(p->line);
	if (status != 0 && p->status == 0 && p->owner != NULL &&
	    p->owner->w->state != CFS_W_READY) {
		p->status = status;
		p->cause = cpx_xprintf("ssh: %s", p->line);
	}
	if (status != 0)
		cpx_warn("%s: ssh: %s", p->who, p->line);
	else	/* the agent's own lines, as the libssh2 transport logs them */
		cpx_info("%s: ssh: %s", p->who, p->line);
}

/*
 * Reads what ssh wrote on stderr so far. Also called when the link ends:
 * ssh writes why before it exits, so the reason is in the pipe by then.
 */
static void
drain_err(struct ossh_proc *p)
{
	char buf[1024];
	ssize_t n, i;

	while (uv_is_active((uv_handle_t *)&p->err_poll)) {
		n = read(p->errfd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		for (i = 0; i < n; i++) {
			if (buf[i] == '\n' || buf[i] == '\r')
				err_line(p);
			else if (p->llen < sizeof p->line - 1)
				p->line[p->llen++] = (unsigned char)buf[i] < ' ' ?
				    '?' : buf[i];
		}
		if (n <= 0) {
			err_line(p);
			uv_poll_stop(&p->err_poll);
			uv_close((uv_handle_t *)&p->err_poll, on_handle_closed);
		}
	}
}

static void
on_err(uv_poll_t *h, int status, int events)
{
	drain_err(h->data);
}

static void
on_exit_poll(uv_poll_t *h, int status, int events)
{
	struct ossh_proc *p = h->data;
	int ws;

	switch (waitpid(p->pid, &ws, WNOHANG)) {
	case 0:
		return;
	case -1:
		if (errno == EINTR)
			return;
		ws = 0;		/* reaped by someone else (ECHILD) */
		break;
	}
	p->reaped = 1;
	if (WIFSIGNALED(ws))
		cpx_debug("%s: ssh (pid %d) ended by signal %d", p->who,
		    (int)p->pid, WTERMSIG(ws));
	else
		cpx_debug("%s: ssh (pid %d) exited %d", p->who, (int)p->pid,
		    WEXITSTATUS(ws));
	uv_poll_stop(&p->exit_poll);
	uv_close((uv_handle_t *)&p->exit_poll, on_handle_closed);
}

/* The forked child: only async-signal-safe calls until execve. */
static void __attribute__((noreturn))
child(const int fds[3], pid_t parent, char **argv, char **envp)
{
	struct sigaction sa;
	sigset_t none;
	int i;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (i = 1; i < NSIG; i++)
		(void)sigaction(i, &sa, NULL);	/* SIGPIPE was ignored */
	(void)setpgid(0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(127);
	for (i = 0; i < 3; i++) {
		if (fds[i] == i)
			(void)fcntl(i, F_SETFD, 0);
		else if (dup2(fds[i], i) != i)
			_exit(127);
	}
	(void)syscall(SYS_close_range, 3U, ~0U, 0U);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	execve(argv[0], argv, envp);
	_exit(127);
}

/* fork, with every signal blocked so that no handler of ours runs in the child. */
static pid_t
fork_ssh(const int fds[3], char **argv)
{
	static char *envp[] = {
		(char *)"PATH=/usr/bin:/bin",
		(char *)"GLIBC_TUNABLES=glibc.malloc.mmap_threshold=16777216:"
		    "glibc.malloc.trim_threshold=268435456",
		NULL
	};
	sigset_t all, old;
	pid_t parent = getpid(), pid;
	int saved;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0)
		child(fds, parent, argv, envp);
	saved = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return pid;
}

/* Watches ssh's exit (pidfd) and stderr on the connection's loop. */
static struct ossh_proc *
watch_proc(struct osshw *s, pid_t pid, int pidfd, int errfd)
{
	struct ossh_proc *p = cpx_xcalloc(1, sizeof *p);
	uv_loop_t *loop = s->w->lane->loop;

	p->pid = pid;
	p->pidfd = pidfd;
	p->errfd = errfd;
	if (uv_poll_init(loop, &p->exit_poll, pidfd) != 0) {
		free(p);
		return NULL;
	}
	p->exit_poll.data = p;
	p->handles = 1;
	if (uv_poll_init(loop, &p->err_poll, errfd) != 0) {
		p->pidfd = -1;	/* the caller closes both */
		uv_close((uv_handle_t *)&p->exit_poll, on_handle_closed);
		return NULL;
	}
	p->err_poll.data = p;
	p->handles = 2;
	p->owner = s;
	p->who = cpx_xprintf("worker %s: lane %d", s->w->name,
	    s->w->lane->index);
	uv_poll_start(&p->exit_poll, UV_READABLE, on_exit_poll);
	uv_poll_start(&p->err_poll, UV_READABLE, on_err);
	return p;
}

static void on_link_close(struct cpx_link *link, int error, void *arg);

/* Starts ssh; its stdin and stdout become the worker's link. */
static int
spawn(struct osshw *s, char **argv, char **cause)
{
	struct cfs_worker *w = s->w;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	int fds[3], pidfd, error;
	struct cpx_link *link;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
	    pipe2(err, O_CLOEXEC) != 0) {
		error = -errno;
		cpx_set_cause(cause, "pipe: %s", strerror(errno));
		goto fail;
	}
	(void)fcntl(out[0], F_SETPIPE_SZ, LINK_PIPE_SIZE);
	fds[0] = in[0];
	fds[1] = out[1];
	fds[2] = err[1];
	if ((pid = fork_ssh(fds, argv)) < 0) {
		error = -errno;
		cpx_set_cause(cause, "fork: %s", strerror(errno));
		goto fail;
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	in[0] = out[1] = err[1] = -1;
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		error = -errno;
		cpx_set_cause(cause, "pidfd_open: %s", strerror(errno));
		kill(pid, SIGKILL);
		(void)waitpid(pid, NULL, 0);
		goto fail;
	}
	cpx_set_nonblock(err[0]);
	if ((s->proc = watch_proc(s, pid, pidfd, err[0])) == NULL) {
		error = -EIO;
		cpx_set_cause(cause, "cannot watch ssh (pid %d)", (int)pid);
		kill(pid, SIGKILL);
		(void)waitpid(pid, NULL, 0);
		close(pidfd);
		goto fail;
	}
	cpx_debug("worker %s: lane %d: ssh started (pid %d)", w->name,
	    w->lane->index, (int)pid);
	link = cpx_link_stream_new(w->lane->loop, out[0], in[1],
	    cfs_link_frame, on_link_close, w);
	if (link == NULL) {
		close(out[0]);
		close(in[1]);
		cpx_set_cause(cause, "cannot watch ssh's pipes");
		return -EIO;
	}
	cfs_worker_linked(s->fs, w, link);
	return 0;
fail:
	cpx_close_pair(in);
	cpx_close_pair(out);
	cpx_close_pair(err);
	return error;
}

/*
 * The link ended: ssh exited or closed its output. If its stderr named a
 * reason (host key, auth, connect), that is the worker's failure, as the
 * libssh2 transport would have reported it.
 */
static void
on_link_close(struct cpx_link *link, int error, void *arg)
{
	struct cfs_worker *w = arg;
	struct osshw *s = w->conn;
	struct ossh_proc *p = s != NULL ? s->proc : NULL;

	if (w->link != link)
		return;
	if (p != NULL)
		drain_err(p);
	if (p == NULL || p->status == 0) {
		cfs_link_close(link, error, arg);
		return;
	}
	w->link = NULL;
	cfs_worker_failed(w->fs, w, p->status, p->cause);
}

static void
on_fail_timer(uv_timer_t *t)
{
	struct osshw *s = t->data;
	char *cause = s->fail_cause;

	s->fail_cause = NULL;
	cfs_worker_failed(s->fs, s->w, s->fail_status, cause);
	free(cause);
}

/*
 * The known_hosts file ssh checks the server against: ours with the
 * pinned key (which CLUSTERPLEX_KNOWN_HOSTS, if set, must list too), or
 * CLUSTERPLEX_KNOWN_HOSTS alone. Neither: refused, never trusted on
 * first use.
 */
static int
host_keys(struct osshw *s, const char **file, int *pinned, char **cause)
{
	const struct cpx_endpoint *ep = &s->w->ep;
	const char *kh = s->fs->set.known_hosts;
	int error;

	*pinned = ep->host_key != NULL && *ep->host_key != '\0';
	if (!*pinned && kh == NULL) {
		cpx_set_cause(cause, "no pinned host key for %s and no "
		    "known_hosts file: refusing an unverified server", ep->name);
		return -EKEYREJECTED;
	}
	if (!*pinned) {
		*file = kh;
		return 0;
	}
	if (kh != NULL && (error = cfs_ossh_listed(kh, ep, cause)) != 0)
		return error;
	*file = s->known_hosts;
	return cfs_ossh_write_known_hosts(s->known_hosts, ep->host_key, cause);
}

static void
ossh_connect(struct cfs *fs, struct cfs_worker *w)
{
	struct osshw *s = w->conn;
	const char *file = NULL;
	char *cause = NULL, **argv = NULL;
	int pinned, error;

	if (s == NULL) {
		s = cpx_xcalloc(1, sizeof *s);
		s->fs = fs;
		s->w = w;
		s->known_hosts = cfs_ossh_known_hosts_path(fs->set.run_dir,
		    w->name, w->lane->index);
		uv_timer_init(w->lane->loop, &s->fail_timer);
		s->fail_timer.data = s;
		w->conn = s;
	}
	error = host_keys(s, &file, &pinned, &cause);
	if (error == 0 && (argv = cfs_ossh_argv(&fs->set, &w->ep, file,
	    pinned, &cause)) == NULL)
		error = -EINVAL;
	if (error == 0)
		error = spawn(s, argv, &cause);
	cfs_ossh_argv_free(argv);
	if (error == 0)
		return;
	/* Like libssh2's, failures arrive from the loop, not from here. */
	free(s->fail_cause);
	s->fail_cause = cause;
	s->fail_status = error;
	uv_timer_start(&s->fail_timer, on_fail_timer, 0, 0);
}

/* The link is closed already: ssh goes, with anything it started. */
static void
ossh_disconnect(struct cfs *fs, struct cfs_worker *w)
{
	struct osshw *s = w->conn;
	struct ossh_proc *p;

	if (s == NULL)
		return;
	uv_timer_stop(&s->fail_timer);
	if ((p = s->proc) == NULL)
		return;
	s->proc = NULL;
	p->owner = NULL;
	if (!p->reaped) {
		kill(-p->pid, SIGKILL);
		kill(p->pid, SIGKILL);	/* before its setpgid, if need be */
	}
	proc_free_if_done(p);
}

static void
free_osshw(uv_handle_t *h)
{
	struct osshw *s = h->data;

	free(s->fail_cause);
	free(s->known_hosts);
	free(s);
}

static void
ossh_release(struct cfs *fs, struct cfs_worker *w)
{
	struct osshw *s = w->conn;

	if (s == NULL)
		return;
	ossh_disconnect(fs, w);
	(void)unlink(s->known_hosts);
	w->conn = NULL;
	uv_close((uv_handle_t *)&s->fail_timer, free_osshw);
}

const struct cfs_transport cfs_openssh_transport = {
	.name = "openssh",
	.connect = ossh_connect,
	.disconnect = ossh_disconnect,
	.release = ossh_release,
};
