/* shim_route.c — fuse's answers to ROUTE_ADD, as the shim reads them. */

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "shim.h"

static char dir[64], sock[128];
static const char *answer_code;	/* NULL: ROUTE_OK */
static unsigned answer_delay_ms;
static int lfd = -1;

/* A stand-in for fuse's control socket: one request, one answer. */
static void *
serve_one(void *arg)
{
	struct cpx_buf out;
	char buf[4096];
	int fd = accept(lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	(void)read(fd, buf, sizeof buf);
	usleep(answer_delay_ms * 1000);
	cpx_buf_init(&out);
	if (answer_code == NULL) {
		cpx_frame_put(&out, CPX_MSG_ROUTE_OK, 0, NULL, 0);
	} else {
		struct cpx_buf e;

		cpx_buf_init(&e);
		cpx_error_put(&e, answer_code, "as fuse says it");
		cpx_frame_put(&out, CPX_MSG_ERROR, 0, e.data, e.len);
		cpx_buf_free(&e);
	}
	(void)cpx_write_all(fd, out.data, out.len);
	cpx_buf_free(&out);
	close(fd);
	return NULL;
}

static int
route_with(const char *code)
{
	struct shim_config cfg = { .run_dir = dir, .ssh_timeout_ms = 3000 };
	struct cpx_endpoint ep = { .name = "w1", .host = "10.0.0.1", .port = 22,
		.user = "u", .host_key = "ssh-ed25519 AAAA" };
	pthread_t t;
	char *cause = NULL;
	int r;

	answer_code = code;
	assert_int_equal(pthread_create(&t, NULL, serve_one, NULL), 0);
	r = shim_route(&cfg, CPX_MSG_ROUTE_ADD, "Transcode/Sessions/s", "j1",
	    &ep, &cause);
	pthread_join(t, NULL);
	free(cause);
	return r;
}

/*
 * Regression (tests/faults: sshd-down): fuse could not reach the worker
 * the dispatcher chose, and the shim exited 247 in remote mode instead of
 * asking for another worker. Worker failures must be told apart.
 */
static void
test_route_answers(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct shim_config cfg = { .run_dir = dir };

	strcpy(dir, "/tmp/cpx-shim-route-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(sock, sizeof sock, "%s/fuse.sock", dir);
	assert_int_equal(shim_route(&cfg, CPX_MSG_ROUTE_DEL, "x", NULL, NULL,
	    NULL), 1);	/* no fuse: shared storage */
	strcpy(sa.sun_path, sock);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(route_with(NULL), 0);
	assert_int_equal(route_with(CPX_ERR_CONNECT), -EHOSTUNREACH);
	assert_int_equal(route_with(CPX_ERR_HOSTKEY), -EKEYREJECTED);
	assert_int_equal(route_with(CPX_ERR_AUTH), -EKEYREJECTED);
	assert_int_equal(route_with(CPX_ERR_SPEC), -EPROTO);
	assert_int_equal(route_with(CPX_ERR_PROTO), -EPROTO);
	/*
	 * Regression (tests/load: 100 jobs at once): fuse needed 2-4 s to
	 * connect cold workers and watch the folders, the shim gave up after
	 * 2 s. It waits as long as its own SSH connection may take, and more.
	 */
	answer_delay_ms = 3500;
	assert_int_equal(route_with(NULL), 0);
	answer_delay_ms = 0;
	close(lfd);
	unlink(sock);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_answers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
