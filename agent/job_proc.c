/* job_proc.c — fork + execve of the transcoder, in its own process group. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "job.h"

/* What a shim may forward: what PMS and ffmpeg users actually send. */
int
agent_signal_allowed(int sig)
{
	switch (sig) {
	case SIGHUP:
	case SIGINT:
	case SIGQUIT:
	case SIGKILL:
	case SIGUSR1:
	case SIGUSR2:
	case SIGTERM:
		return 1;
	default:
		return 0;
	}
}

/*
 * In the child, between fork and execve: only async-signal-safe calls.
 * The transcoder leads its own process group (so one kill reaches all
 * it starts) and dies with us (PR_SET_PDEATHSIG), even if we are killed.
 */
static _Noreturn void
child(const char *path, char *const argv[], char *const envp[], int cwd_fd,
    int in, int out, int err, int report, pid_t parent)
{
	sigset_t none;
	int e, sig;

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 ||
	    fchdir(cwd_fd) < 0)
		goto fail;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	execve(path, argv, envp);
fail:
	e = errno;
	(void)!write(report, &e, sizeof e);
	_exit(127);
}

static _Noreturn void
guard(int rfd, pid_t pgid)
{
	ssize_t n;
	char c;
	int fd = open("/dev/null", O_RDWR);

	/* Hold nothing of the agent's: sshd waits for its pipes to close. */
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (rfd > 3)
		close_range(3, (unsigned)rfd - 1, 0);
	close_range((unsigned)rfd + 1, ~0U, 0);
	do
		n = read(rfd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		kill(-pgid, SIGKILL);
	_exit(0);
}

/*
 * PR_SET_PDEATHSIG reaches the transcoder alone when the agent is killed
 * outright; what the transcoder started would live on. A guard process
 * waits on a pipe only the agent writes to: EOF without the agent's
 * "done" byte means the agent died, and the guard kills the whole group.
 * Returns the pipe's write end (the agent writes "done" once it has
 * reaped the transcoder), or -1.
 */
int
agent_guard_start(pid_t pgid, pid_t *guard_pid)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	pid = fork();
	if (pid == 0)
		guard(p[0], pgid);
	close(p[0]);
	if (pid < 0) {
		close(p[1]);
		return -1;
	}
	*guard_pid = pid;
	return p[1];
}

void
agent_guard_done(int fd)
{
	if (fd >= 0) {
		(void)!write(fd, "d", 1);
		close(fd);
	}
}

/* Reads the child's exec report: 0 when execve succeeded. */
static int
exec_result(int fd)
{
	ssize_t n;
	int e;

	do
		n = read(fd, &e, sizeof e);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof e ? -e : 0;
}

/*
 * Starts `path` with argv/envp in cwd_fd. On success *p holds the pid and
 * our ends of its stdin/stdout/stderr pipes (caller closes them).
 */
int
agent_proc_spawn(const char *path, char *const argv[], char *const envp[],
    int cwd_fd, struct job_proc *p, char **cause)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	int rep[2] = { -1, -1 }, error = 0;
	pid_t parent = getpid(), pid;

	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
	    pipe2(err, O_CLOEXEC) != 0 || pipe2(rep, O_CLOEXEC) != 0) {
		error = -errno;
		cpx_set_cause(cause, "pipe: %s", strerror(errno));
		goto fail;
	}
	pid = fork();
	if (pid == 0)
		child(path, argv, envp, cwd_fd, in[0], out[1], err[1], rep[1],
		    parent);
	if (pid < 0) {
		error = -errno;
		cpx_set_cause(cause, "fork: %s", strerror(errno));
		goto fail;
	}
	setpgid(pid, pid);
	close(rep[1]);
	rep[1] = -1;
	if ((error = exec_result(rep[0])) != 0) {
		waitpid(pid, NULL, 0);
		cpx_set_cause(cause, "cannot run %s: %s", path, strerror(-error));
		goto fail;
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	close(rep[0]);
	p->pid = pid;
	p->in_fd = in[1];
	p->out_fd = out[0];
	p->err_fd = err[0];
	return 0;
fail:
	cpx_close_pair(in);
	cpx_close_pair(out);
	cpx_close_pair(err);
	cpx_close_pair(rep);
	return error;
}
