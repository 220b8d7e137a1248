/* shim_status.c — exit statuses: passed through, re-raised, and our own. */

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "shim.h"

/* Runs shim_exit_like(kind, value) in a child; returns its wait status. */
static int
exit_like(int kind, int value)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		/* Even a blocked or ignored signal must still end the child. */
		sigset_t set;

		sigfillset(&set);
		sigprocmask(SIG_BLOCK, &set, NULL);
		if (value > 0 && value < NSIG)
			signal(value, SIG_IGN);
		shim_exit_like(kind, value);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

static void
test_codes_pass_through(void **state)
{
	int code, st;

	for (code = 0; code < 256; code += 17) {
		st = exit_like(CPX_EXIT_CODE, code);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), code);
	}
	st = exit_like(CPX_EXIT_CODE, 255);
	assert_int_equal(WEXITSTATUS(st), 255);
}

static void
test_signals_re_raised(void **state)
{
	static const int sigs[] = { SIGKILL, SIGTERM, SIGINT, SIGSEGV, SIGABRT,
	    SIGHUP, SIGPIPE, SIGUSR1 };
	size_t i;
	int st;

	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		st = exit_like(CPX_EXIT_SIGNAL, sigs[i]);
		assert_true(WIFSIGNALED(st));
		assert_int_equal(WTERMSIG(st), sigs[i]);
		/* The transcoder's core is on the worker, not ours to dump. */
		assert_false(WCOREDUMP(st));
	}
	/* A stop signal cannot end a process: 128 + N. */
	st = exit_like(CPX_EXIT_SIGNAL, SIGTSTP);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 128 + SIGTSTP);
	/* SIGCHLD is ignored by default: 128 + N as well. */
	st = exit_like(CPX_EXIT_SIGNAL, SIGCHLD);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 128 + SIGCHLD);
}

static void
test_own_codes(void **state)
{
	assert_int_equal(shim_ssh_exit_code(-EKEYREJECTED), SHIM_EXIT_AUTH);
	assert_int_equal(shim_ssh_exit_code(-EACCES), SHIM_EXIT_AUTH);
	assert_int_equal(shim_ssh_exit_code(-ENOKEY), SHIM_EXIT_AUTH);
	assert_int_equal(shim_ssh_exit_code(-ECONNREFUSED), SHIM_EXIT_SSH);
	assert_int_equal(shim_ssh_exit_code(-ETIMEDOUT), SHIM_EXIT_SSH);
	assert_int_equal(shim_ssh_exit_code(-EPROTO), SHIM_EXIT_SSH);
	assert_int_equal(shim_error_exit_code(CPX_ERR_HOSTKEY), SHIM_EXIT_AUTH);
	assert_int_equal(shim_error_exit_code(CPX_ERR_AUTH), SHIM_EXIT_AUTH);
	assert_int_equal(shim_error_exit_code(CPX_ERR_CONNECT), SHIM_EXIT_SSH);
	assert_int_equal(shim_error_exit_code(CPX_ERR_BUSY), SHIM_EXIT_REFUSED);
	assert_int_equal(shim_error_exit_code(CPX_ERR_SPEC), SHIM_EXIT_REFUSED);
	assert_int_equal(shim_error_exit_code(CPX_ERR_EXEC), SHIM_EXIT_REFUSED);
	assert_int_equal(shim_error_exit_code("unheard-of"), SHIM_EXIT_REFUSED);
	/* The pool's codes round-trip to the same exit codes. */
	assert_int_equal(shim_error_exit_code(shim_pool_error_code(
	    -EKEYREJECTED)), SHIM_EXIT_AUTH);
	assert_int_equal(shim_error_exit_code(shim_pool_error_code(-EACCES)),
	    SHIM_EXIT_AUTH);
	assert_int_equal(shim_error_exit_code(shim_pool_error_code(
	    -ECONNREFUSED)), SHIM_EXIT_SSH);
	/* Every own code has its own meaning. */
	assert_string_not_equal(shim_exit_meaning(SHIM_EXIT_SSH),
	    shim_exit_meaning(SHIM_EXIT_LOST));
	assert_string_equal(shim_exit_meaning(0), "transcoder exit status");
}

static void
test_pool_open(void **state)
{
	const char *ok = "{\"name\":\"w1\",\"host\":\"10.0.0.2\",\"port\":22,"
	    "\"user\":\"plex\",\"host_key\":\"ssh-ed25519 AAAA\","
	    "\"service\":\"job\"}";
	const char *nokey = "{\"name\":\"w1\",\"host\":\"10.0.0.2\",\"port\":22,"
	    "\"user\":\"plex\",\"host_key\":\"\"}";
	struct cpx_endpoint ep;
	char *key = NULL, *cause = NULL;

	assert_int_equal(shim_pool_parse_open((const uint8_t *)ok, strlen(ok),
	    &ep, &key, &cause), 0);
	assert_string_equal(key, "plex@10.0.0.2:22 ssh-ed25519 AAAA");
	assert_int_equal(ep.port, 22);
	cpx_endpoint_free(&ep);
	free(key);
	assert_int_not_equal(shim_pool_parse_open((const uint8_t *)nokey,
	    strlen(nokey), &ep, &key, &cause), 0);
	assert_non_null(strstr(cause, "host key"));
	free(cause);
	cause = NULL;
	assert_int_not_equal(shim_pool_parse_open((const uint8_t *)"[1]", 3,
	    &ep, &key, &cause), 0);
	free(cause);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codes_pass_through),
		cmocka_unit_test(test_signals_re_raised),
		cmocka_unit_test(test_own_codes),
		cmocka_unit_test(test_pool_open),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
