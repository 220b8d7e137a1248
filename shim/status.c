/* status.c — exit statuses: the transcoder's, passed through, and our own. */

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "shim.h"

/*
 * The dispatcher's job-end outcome (docs/dispatcher.md): ok, failed (a
 * non-zero exit), killed (exit = -signal), or worker-error (the worker
 * could not run the job or was lost; it starts the worker's back-off).
 * A route fuse refused is ours, not the worker's: failed.
 */
const char *
shim_end_outcome(const struct shim_outcome *out, int *value)
{
	if (out->code == -1 && out->exit_kind == CPX_EXIT_SIGNAL) {
		*value = -out->exit_value;
		return "killed";
	}
	if (out->code == -1) {
		*value = out->exit_value;
		return out->exit_value == 0 ? "ok" : "failed";
	}
	*value = out->code;
	return out->code == SHIM_EXIT_ROUTE ? "failed" : "worker-error";
}

/* An SSH failure status (cpx-ssh.h) as the shim's exit code. */
int
shim_ssh_exit_code(int status)
{
	switch (status) {
	case -EKEYREJECTED:
	case -EACCES:
	case -ENOKEY:
		return SHIM_EXIT_AUTH;
	default:
		return SHIM_EXIT_SSH;
	}
}

/* An ERROR frame's code (from the pool or the agent) as an exit code. */
int
shim_error_exit_code(const char *code)
{
	if (strcmp(code, CPX_ERR_HOSTKEY) == 0 || strcmp(code, CPX_ERR_AUTH) == 0)
		return SHIM_EXIT_AUTH;
	if (strcmp(code, CPX_ERR_CONNECT) == 0)
		return SHIM_EXIT_SSH;
	return SHIM_EXIT_REFUSED;
}

const char *
shim_exit_meaning(int code)
{
	switch (code) {
	case SHIM_EXIT_CONFIG:
		return "configuration error";
	case SHIM_EXIT_DISPATCHER:
		return "dispatcher unreachable or failed";
	case SHIM_EXIT_NO_WORKER:
		return "no worker can take the job";
	case SHIM_EXIT_SSH:
		return "SSH connection to the worker failed";
	case SHIM_EXIT_AUTH:
		return "SSH authentication or host key verification failed";
	case SHIM_EXIT_REFUSED:
		return "the worker refused the job";
	case SHIM_EXIT_LOST:
		return "the worker or the link was lost mid-job";
	case SHIM_EXIT_LOCAL:
		return "the local transcoder could not be started";
	case SHIM_EXIT_ROUTE:
		return "the session folder could not be routed to the worker";
	default:
		return "transcoder exit status";
	}
}

/*
 * Ends the process the way the transcoder ended: its exit code, or death
 * by the same signal (without a core file of our own). A signal that does
 * not kill (or is somehow survived) becomes 128 + N.
 */
_Noreturn void
shim_exit_like(int kind, int value)
{
	struct rlimit none = { 0, 0 };
	sigset_t set;

	if (kind != CPX_EXIT_SIGNAL)
		exit(value & 0xff);
	if (value > 0 && value < NSIG && value != SIGSTOP &&
	    value != SIGTSTP && value != SIGTTIN && value != SIGTTOU) {
		setrlimit(RLIMIT_CORE, &none);
		signal(value, SIG_DFL);
		sigemptyset(&set);
		sigaddset(&set, value);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		raise(value);
	}
	_exit(128 + (value & 0x7f));
}
