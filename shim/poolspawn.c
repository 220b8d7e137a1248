/* poolspawn.c — reaching the pool, and starting it on demand. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim.h"

#define POOL_WAIT_MS 2000

static int
unix_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, e;

	if (strlen(path) >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
		return fd;
	e = -errno;
	close(fd);
	return e;
}

/* In the daemon child: a clean process, detached from PMS's session. */
static _Noreturn void
become_pool(const char *self, const char *log)
{
	sigset_t none;
	int fd, sig;

	setsid();
	if (fork() != 0)
		_exit(0);
	fd = open("/dev/null", O_RDWR);
	dup2(fd, 0);
	dup2(fd, 1);
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd >= 0)
		dup2(fd, 2);
	close_range(3, ~0U, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	execl(self, "clusterplex-shim", "pool", "--spawned", (char *)NULL);
	_exit(127);
}

/*
 * Starts `clusterplex-shim pool` as a daemon (ControlMaster style): it
 * outlives this shim, so the next job finds a warm session. Two shims
 * racing start two pools; the loser sees the lock and exits quietly.
 */
static void
spawn_pool(const struct shim_config *cfg)
{
	char self[PATH_MAX], *log;
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	pid_t pid;

	if (n <= 0)
		return;
	self[n] = '\0';
	cpx_mkdir_p(cfg->run_dir, 0755);
	log = cpx_xprintf("%s/pool.log", cfg->run_dir);
	pid = fork();
	if (pid == 0)
		become_pool(self, log);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	free(log);
	cpx_info("started the connection pool (%s/pool.sock)", cfg->run_dir);
}

/*
 * A connected socket to the pool, or -errno. When there is none, one is
 * started for later jobs; with `wait`, this job waits for it too.
 */
int
shim_pool_connect(const struct shim_config *cfg, int wait)
{
	char *path = cpx_xprintf("%s/pool.sock", cfg->run_dir);
	uint64_t deadline;
	int fd = unix_connect(path);

	if (fd >= 0 || (fd != -ENOENT && fd != -ECONNREFUSED))
		goto out;
	spawn_pool(cfg);
	if (!wait)
		goto out;
	for (deadline = cpx_now_ms() + POOL_WAIT_MS; cpx_now_ms() < deadline;) {
		usleep(2000);
		if ((fd = unix_connect(path)) >= 0)
			break;
	}
out:
	free(path);
	return fd;
}
