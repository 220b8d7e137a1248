/* shim_httpc.c — the dispatcher client: answers, garbage, and deadlines. */

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cpx-http.h"

struct server {
	int fd;
	int port;
	const char *reply;	/* sent after the request; NULL: stay silent */
	size_t big;		/* then this many filler bytes */
	char request[4096];
	pthread_t thread;
};

static void *
serve(void *arg)
{
	struct server *s = arg;
	int c = accept(s->fd, NULL, NULL);
	size_t n = 0;
	ssize_t r;
	char fill[4096];

	if (c < 0)
		return NULL;
	while (n < sizeof s->request - 1 && strstr(s->request, "\r\n\r\n{") ==
	    NULL && strstr(s->request, "\r\n\r\n") == NULL) {
		r = read(c, s->request + n, sizeof s->request - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		s->request[n] = '\0';
	}
	if (s->reply == NULL) {
		sleep(2);
	} else {
		/* The client hangs up once it has seen enough (an oversized
		   answer): no SIGPIPE for the rest of the filler. */
		(void)!send(c, s->reply, strlen(s->reply), MSG_NOSIGNAL);
		memset(fill, 'x', sizeof fill);
		for (n = 0; n < s->big; n += sizeof fill)
			if (send(c, fill, sizeof fill, MSG_NOSIGNAL) < 0)
				break;
	}
	close(c);
	return NULL;
}

static void
start(struct server *s, const char *reply, size_t big)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sa;

	memset(s, 0, sizeof *s);
	s->reply = reply;
	s->big = big;
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(s->fd, 4), 0);
	getsockname(s->fd, (struct sockaddr *)&sa, &len);
	s->port = ntohs(sa.sin_port);
	pthread_create(&s->thread, NULL, serve, s);
}

static void
stop(struct server *s)
{
	pthread_join(s->thread, NULL);
	close(s->fd);
}

static int
request(struct server *s, const char *token, unsigned timeout,
    struct cpx_http_response *resp, char **cause)
{
	char url[64];

	snprintf(url, sizeof url, "http://127.0.0.1:%d/base/", s->port);
	return cpx_http_request(url, "POST", "/api/v1/placements", token,
	    "{\"job\":\"j\"}", timeout, resp, cause);
}

static void
test_ok(void **state)
{
	struct server s;
	struct cpx_http_response resp;
	char *cause = NULL;

	start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"job\":\"j\"}",
	    0);
	assert_int_equal(request(&s, "sekret", 1000, &resp, &cause), 0);
	stop(&s);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.body, "{\"job\":\"j\"}");
	assert_non_null(strstr(s.request, "POST /base/api/v1/placements "
	    "HTTP/1.1\r\n"));
	assert_non_null(strstr(s.request, "Authorization: Bearer sekret\r\n"));
	assert_non_null(strstr(s.request, "Content-Length: 11\r\n"));
	cpx_http_response_free(&resp);
}

static void
test_chunked_and_eof_bodies(void **state)
{
	struct server s;
	struct cpx_http_response resp;
	char *cause = NULL;

	start(&s, "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: "
	    "chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 0);
	assert_int_equal(request(&s, NULL, 1000, &resp, &cause), 0);
	stop(&s);
	assert_null(strstr(s.request, "Authorization"));
	assert_int_equal(resp.status, 503);
	assert_string_equal(resp.body, "abcde");
	cpx_http_response_free(&resp);

	start(&s, "HTTP/1.0 200 OK\r\n\r\nuntil-close", 0);
	assert_int_equal(request(&s, NULL, 1000, &resp, &cause), 0);
	stop(&s);
	assert_string_equal(resp.body, "until-close");
	cpx_http_response_free(&resp);
}

/* A dispatcher that accepts and never answers costs the deadline, no more. */
static void
test_silent_server_times_out(void **state)
{
	struct server s;
	struct cpx_http_response resp;
	char *cause = NULL;
	uint64_t t0 = cpx_now_ms(), took;

	start(&s, NULL, 0);
	assert_int_equal(request(&s, NULL, 200, &resp, &cause), -ETIMEDOUT);
	took = cpx_now_ms() - t0;
	assert_true(took >= 190 && took < 400);
	assert_non_null(strstr(cause, "timed out"));
	free(cause);
	stop(&s);
}

static void
test_garbage_and_oversize(void **state)
{
	struct server s;
	struct cpx_http_response resp;
	char *cause = NULL;

	start(&s, "SSH-2.0-OpenSSH_9.2\r\n", 0);
	assert_int_equal(request(&s, NULL, 1000, &resp, &cause), -EPROTO);
	stop(&s);
	free(cause);
	cause = NULL;
	start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 6000000\r\n\r\n",
	    6000000);
	assert_int_equal(request(&s, NULL, 3000, &resp, &cause), -EFBIG);
	stop(&s);
	free(cause);
	cause = NULL;
	start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 0);
	assert_int_equal(request(&s, NULL, 1000, &resp, &cause), -EPROTO);
	stop(&s);
	free(cause);
}

static void
test_refused_and_bad_url(void **state)
{
	struct server s;
	struct cpx_http_response resp;
	char *cause = NULL, url[64];
	int port;

	/* Serve one empty connection; then nothing listens there any more. */
	start(&s, "", 0);
	port = s.port;
	snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
	{
		int c = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = { .sin_family = AF_INET,
		    .sin_port = htons((uint16_t)port),
		    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

		connect(c, (struct sockaddr *)&sa, sizeof sa);
		close(c);
	}
	stop(&s);
	assert_int_equal(cpx_http_request(url, "GET", "/health", NULL, NULL,
	    500, &resp, &cause), -ECONNREFUSED);
	free(cause);
	cause = NULL;
	assert_int_equal(cpx_http_request("ftp://x", "GET", "/", NULL, NULL,
	    500, &resp, &cause), -EINVAL);
	free(cause);
	cause = NULL;
	/* A name that cannot resolve fails within the deadline too. */
	assert_int_not_equal(cpx_http_request("http://no-such-host.invalid:1",
	    "GET", "/", NULL, NULL, 500, &resp, &cause), 0);
	free(cause);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok),
		cmocka_unit_test(test_chunked_and_eof_bodies),
		cmocka_unit_test(test_silent_server_times_out),
		cmocka_unit_test(test_garbage_and_oversize),
		cmocka_unit_test(test_refused_and_bad_url),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
