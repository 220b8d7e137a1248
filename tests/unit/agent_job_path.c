/* agent_job_path.c — cwd confinement, inputs, spawning and the state file. */

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "job.h"

static char root[256], outside[256];

static int
setup(void **state)
{
	char *cmd;

	snprintf(root, sizeof root, "/tmp/cpx-exec-unit.%ld/worker",
	    (long)getpid());
	snprintf(outside, sizeof outside, "/tmp/cpx-exec-unit.%ld/outside",
	    (long)getpid());
	cmd = cpx_xprintf("mkdir -p %s/Transcode/Sessions %s", root, outside);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

static int
teardown(void **state)
{
	char *cmd = cpx_xprintf("rm -rf /tmp/cpx-exec-unit.%ld", (long)getpid());

	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

static int
map(const char *cwd, char **wcwd)
{
	char *cause = NULL;
	int fd = -1, error;

	*wcwd = NULL;
	error = agent_job_map_cwd(root, "/pms/transcode", cwd, &fd, wcwd,
	    &cause);
	free(cause);
	if (fd >= 0)
		close(fd);
	return error;
}

static void
test_maps_and_creates(void **state)
{
	char *w, *want;
	struct stat st;

	assert_int_equal(map("/pms/transcode/Transcode/Sessions/new-1", &w), 0);
	want = cpx_xprintf("%s/Transcode/Sessions/new-1", root);
	assert_string_equal(w, want);
	assert_int_equal(stat(want, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	free(w);
	free(want);
	/* Several missing levels. */
	assert_int_equal(map("/pms/transcode/a/b/c", &w), 0);
	free(w);
}

static void
test_refuses_escapes(void **state)
{
	char *w, *link;

	assert_int_not_equal(map("/pms/transcode/../etc", &w), 0);
	assert_int_not_equal(map("/pms/transcode/a/../../x", &w), 0);
	assert_int_not_equal(map("/pms/transcode", &w), 0);
	assert_int_not_equal(map("/elsewhere/Transcode/Sessions/x", &w), 0);
	assert_int_not_equal(map("/pms/transcode/./x", &w), 0);
	/* A symlink pointing out of the root, as a component or the end. */
	link = cpx_xprintf("%s/Transcode/Sessions/escape", root);
	assert_int_equal(symlink(outside, link), 0);
	assert_int_equal(map("/pms/transcode/Transcode/Sessions/escape", &w),
	    -EXDEV);
	assert_int_equal(map("/pms/transcode/Transcode/Sessions/escape/sub",
	    &w), -EXDEV);
	free(link);
	/* An absolute symlink, even to a place inside, is an escape too. */
	link = cpx_xprintf("%s/abs", root);
	assert_int_equal(symlink(root, link), 0);
	assert_int_equal(map("/pms/transcode/abs/Transcode", &w), -EXDEV);
	free(link);
	/* A relative one that stays inside is fine. */
	link = cpx_xprintf("%s/rel", root);
	assert_int_equal(symlink("Transcode/Sessions", link), 0);
	assert_int_equal(map("/pms/transcode/rel/s2", &w), 0);
	free(w);
	free(link);
	/* Nothing was created outside. */
	link = cpx_xprintf("%s/sub", outside);
	assert_int_equal(access(link, F_OK), -1);
	free(link);
}

static void
test_inputs(void **state)
{
	char *w, *cause = NULL, *link, *target;
	int dirfd, fd;

	assert_int_equal(agent_job_map_cwd(root, "/pms/transcode",
	    "/pms/transcode/Transcode/Sessions/in", &dirfd, &w, &cause), 0);
	fd = agent_job_open_input(dirfd, "temp-0.srt", &cause);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "1\n", 2), 2);
	close(fd);
	assert_int_equal(agent_job_open_input(dirfd, "../x", &cause), -EINVAL);
	free(cause);
	cause = NULL;
	assert_int_equal(agent_job_open_input(dirfd, "..", &cause), -EINVAL);
	free(cause);
	cause = NULL;
	/* A planted symlink is not followed out. */
	link = cpx_xprintf("%s/trap.srt", w);
	target = cpx_xprintf("%s/victim", outside);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(agent_job_open_input(dirfd, "trap.srt", &cause),
	    -ELOOP);
	assert_int_equal(access(target, F_OK), -1);
	free(cause);
	free(link);
	free(target);
	close(dirfd);
	free(w);
}

static void
test_job_ids(void **state)
{
	assert_true(agent_job_id_valid("0123abcdef"));
	assert_true(agent_job_id_valid("job_1.2-3"));
	assert_true(agent_job_id_valid("w1:42"));
	assert_false(agent_job_id_valid("-rf"));
	assert_false(agent_job_id_valid(""));
	assert_false(agent_job_id_valid(".hidden"));
	assert_false(agent_job_id_valid("a/b"));
	assert_false(agent_job_id_valid("a b"));
}

static void
test_spawn(void **state)
{
	char *argv[] = { "/bin/sh", "-c", "pwd; echo $A; exit 3", NULL };
	char *envp[] = { "A=from-env", NULL };
	struct job_proc p;
	char *cause = NULL, buf[512];
	int dirfd, st;
	size_t len;
	ssize_t n;

	dirfd = open(root, O_PATH | O_DIRECTORY);
	assert_int_equal(agent_proc_spawn("/bin/sh", argv, envp, dirfd, &p,
	    &cause), 0);
	close(p.in_fd);
	len = 0;
	while ((n = read(p.out_fd, buf + len, sizeof buf - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	assert_non_null(strstr(buf, root));
	assert_non_null(strstr(buf, "from-env"));
	assert_int_equal(waitpid(p.pid, &st, 0), p.pid);
	assert_int_equal(WEXITSTATUS(st), 3);
	close(p.out_fd);
	close(p.err_fd);
	assert_int_equal(agent_proc_spawn("/nonexistent/transcoder", argv, envp,
	    dirfd, &p, &cause), -ENOENT);
	assert_non_null(strstr(cause, "/nonexistent/transcoder"));
	free(cause);
	close(dirfd);
}

static void
test_spawn_group(void **state)
{
	char *argv[] = { "/bin/sleep", "5", NULL };
	char *envp[] = { NULL };
	struct job_proc p;
	char *cause = NULL;
	int dirfd = open(root, O_PATH | O_DIRECTORY), st;

	assert_int_equal(agent_proc_spawn("/bin/sleep", argv, envp, dirfd, &p,
	    &cause), 0);
	assert_int_equal(getpgid(p.pid), p.pid);
	assert_int_equal(kill(-p.pid, SIGKILL), 0);
	assert_int_equal(waitpid(p.pid, &st, 0), p.pid);
	assert_true(WIFSIGNALED(st));
	close(p.in_fd);
	close(p.out_fd);
	close(p.err_fd);
	close(dirfd);
	assert_true(agent_signal_allowed(SIGTERM));
	assert_true(agent_signal_allowed(SIGKILL));
	assert_false(agent_signal_allowed(SIGSTOP));
	assert_false(agent_signal_allowed(SIGSEGV));
	assert_false(agent_signal_allowed(0));
	assert_false(agent_signal_allowed(200));
}

static void
test_state_file(void **state)
{
	struct cpx_jobspec js = { .id = "job-7", .session = "sess" };
	char *run = cpx_xprintf("%s/../run", root), *path, *text = NULL;
	char *stale;
	FILE *f;

	path = agent_state_write(run, &js, 4242, 1700000000123ULL, "/w/x");
	assert_non_null(path);
	assert_int_equal(cpx_read_file(path, 4096, &text, NULL), 0);
	assert_non_null(strstr(text, "\"id\":\"job-7\""));
	assert_non_null(strstr(text, "\"pid\":4242"));
	assert_non_null(strstr(text, "\"pgid\":4242"));
	/* Unix seconds, like the dispatcher's registration body. */
	assert_non_null(strstr(text, "\"started\":1700000000.12"));
	free(text);
	/* Our own pid wrote it: it counts as running. */
	assert_int_equal(agent_state_running(run), 1);
	/* A file from a dead agent is swept. */
	stale = cpx_xprintf("%s/jobs/old.json", run);
	f = fopen(stale, "w");
	fprintf(f, "{\"id\":\"old\",\"agent_pid\":999999999}\n");
	fclose(f);
	assert_int_equal(agent_state_running(run), 1);
	assert_int_equal(access(stale, F_OK), -1);
	agent_state_remove(path);
	assert_int_equal(agent_state_running(run), 0);
	free(stale);
	free(path);
	free(run);
}

/*
 * Regression (tests/faults: disk-full): a worker whose transcode folder is
 * full took every job and ffmpeg wrote empty segments with exit 0. The
 * job service now refuses (busy) below CLUSTERPLEX_MIN_FREE_MB free.
 */
static void
test_free_space(void **state)
{
	char msg[160];

	assert_int_equal(agent_root_space(root, 0, msg, sizeof msg), 0);
	assert_int_equal(agent_root_space(root, 1, msg, sizeof msg), 0);
	/* No disk has 2^40 MiB free. */
	assert_int_equal(agent_root_space(root, 1L << 40, msg, sizeof msg),
	    -ENOSPC);
	assert_non_null(strstr(msg, "MiB free"));
	assert_int_equal(agent_root_space("/nonexistent-cpx", 1, msg,
	    sizeof msg), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_maps_and_creates, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refuses_escapes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_inputs, setup, teardown),
		cmocka_unit_test(test_job_ids),
		cmocka_unit_test_setup_teardown(test_spawn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spawn_group, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_state_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_space, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
