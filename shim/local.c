/* local.c — running the real transcoder in place of the shim. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

static sigset_t saved_mask;
static struct sigaction saved_actions[NSIG];

/* What PMS gave us, so the real transcoder gets exactly the same. */
void
shim_save_process(void)
{
	int sig;

	sigprocmask(SIG_SETMASK, NULL, &saved_mask);
	for (sig = 1; sig < NSIG; sig++)
		sigaction(sig, NULL, &saved_actions[sig]);
}

/*
 * Undoes what running a remote attempt changed: signal dispositions and
 * mask, and O_NONBLOCK that libuv set on the standard descriptors (the
 * flag lives in the open file, which the transcoder inherits).
 */
void
shim_restore_process(void)
{
	int fd, fl, sig;

	for (fd = 0; fd <= 2; fd++) {
		fl = fcntl(fd, F_GETFL);
		if (fl >= 0 && (fl & O_NONBLOCK))
			fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	}
	for (sig = 1; sig < NSIG; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &saved_actions[sig], NULL);
	}
	sigprocmask(SIG_SETMASK, &saved_mask, NULL);
}

/*
 * execve()s the real transcoder with PMS's argv and environment: the
 * process PMS started simply becomes it, so its pid, exit status and
 * signals are the real ones. Returns only by exiting with 246.
 */
_Noreturn void
shim_exec_local(const struct shim_config *cfg, char **argv)
{
	extern char **environ;

	shim_restore_process();
	execve(cfg->local_transcoder, argv, environ);
	cpx_error("cannot run the local transcoder %s: %s (exit %d: %s)",
	    cfg->local_transcoder, strerror(errno), SHIM_EXIT_LOCAL,
	    shim_exit_meaning(SHIM_EXIT_LOCAL));
	exit(SHIM_EXIT_LOCAL);
}
