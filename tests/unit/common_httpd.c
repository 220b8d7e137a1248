/* common_httpd.c — the request parser's limits and the server over real sockets. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cmocka.h>
#include <uv.h>

#include "cpx-httpd.h"

static struct cpx_httpd_limits lim;

/* Feeds `text` in pieces of `step` bytes; returns the parse result of the last piece. */
static int
feed(struct cpx_httpd_parser *p, const char *text, size_t step,
    struct cpx_httpd_req **req, size_t *left)
{
	size_t len = strlen(text), off = 0, used, n;
	int r = 0;

	while (off < len) {
		n = len - off < step ? len - off : step;
		r = cpx_httpd_parse(p, text + off, n, &used, req);
		if (r != 0) {
			off += used;
			break;
		}
		off += n;
	}
	*left = len - off;
	return r;
}

static void
test_parse_split(void **state)
{
	static const char text[] = "POST /api/v1/placements?x=1&limit=5 HTTP/1.1\r\n"
	    "Host: a\r\nAuthorization: Bearer tok\r\nX-Empty:\r\n"
	    "Content-Length: 11\r\n\r\n{\"job\":\"a\"}";
	struct cpx_httpd_parser p;
	struct cpx_httpd_req *req;
	size_t step, left;
	char v[16];

	cpx_httpd_limits_default(&lim);
	for (step = 1; step <= sizeof text; step += 7) {
		cpx_httpd_parser_init(&p, &lim);
		assert_int_equal(feed(&p, text, step, &req, &left), 1);
		assert_int_equal(left, 0);
		assert_string_equal(req->method_name, "POST");
		assert_string_equal(req->path, "/api/v1/placements");
		assert_string_equal(req->query, "x=1&limit=5");
		assert_string_equal(req->target,
		    "/api/v1/placements?x=1&limit=5");
		assert_string_equal(cpx_httpd_header(req, "authorization"),
		    "Bearer tok");
		assert_string_equal(cpx_httpd_header(req, "x-empty"), "");
		assert_null(cpx_httpd_header(req, "cookie"));
		assert_int_equal(req->body_len, 11);
		assert_string_equal(req->body, "{\"job\":\"a\"}");
		assert_int_equal(cpx_httpd_query(req, "limit", v, sizeof v), 0);
		assert_string_equal(v, "5");
		assert_int_equal(cpx_httpd_query(req, "lim", v, sizeof v),
		    -ENOENT);
		assert_true(req->keep_alive);
		cpx_httpd_parser_free(&p);
	}
}

static void
test_parse_pipelined(void **state)
{
	static const char text[] = "GET /a HTTP/1.1\r\n\r\n"
	    "GET /b HTTP/1.1\r\nConnection: close\r\n\r\n";
	struct cpx_httpd_parser p;
	struct cpx_httpd_req *req;
	size_t used, len = strlen(text);

	cpx_httpd_limits_default(&lim);
	cpx_httpd_parser_init(&p, &lim);
	assert_int_equal(cpx_httpd_parse(&p, text, len, &used, &req), 1);
	assert_string_equal(req->path, "/a");
	assert_true(used < len);
	assert_int_equal(cpx_httpd_parse(&p, text + used, len - used, &used,
	    &req), 1);
	assert_string_equal(req->path, "/b");
	assert_false(req->keep_alive);
	assert_int_equal(cpx_httpd_parse_eof(&p), 0);
	cpx_httpd_parser_free(&p);
}

static int
parse_status(const char *text)
{
	struct cpx_httpd_parser p;
	struct cpx_httpd_req *req;
	size_t used;
	int r, status;

	cpx_httpd_parser_init(&p, &lim);
	r = cpx_httpd_parse(&p, text, strlen(text), &used, &req);
	if (r == 0 && cpx_httpd_parse_eof(&p) == 0)
		status = 0;
	else
		status = r == 1 ? 200 : p.error_status;
	cpx_httpd_parser_free(&p);
	return status;
}

static void
test_parse_limits(void **state)
{
	char *big;

	cpx_httpd_limits_default(&lim);
	lim.max_body = 100;
	lim.max_header_bytes = 512;
	lim.max_url = 64;
	lim.max_headers = 4;
	assert_int_equal(parse_status("GET / HTTP/1.1\r\n\r\n"), 200);
	assert_int_equal(parse_status("POST / HTTP/1.1\r\n"
	    "Content-Length: 101\r\n\r\n"), 413);
	assert_int_equal(parse_status("POST / HTTP/1.1\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n65\r\n"
	    "0123456789012345678901234567890123456789012345678901234567890"
	    "1234567890123456789012345678901234567890\r\n0\r\n\r\n"), 413);
	assert_int_equal(parse_status("GET /0123456789012345678901234567890"
	    "12345678901234567890123456789012345 HTTP/1.1\r\n\r\n"), 414);
	assert_int_equal(parse_status("GET / HTTP/1.1\r\na: 1\r\nb: 2\r\n"
	    "c: 3\r\nd: 4\r\ne: 5\r\n\r\n"), 431);
	big = cpx_xmalloc(700);
	memset(big, 'x', 699);
	big[699] = '\0';
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	assert_int_equal(parse_status(big), 431);
	free(big);
	assert_int_equal(parse_status("BLAH / HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(parse_status("GET / HTTP/1.1\r\nContent-Length: 1\r\n"
	    "Content-Length: 2\r\n\r\n"), 400);
	assert_int_equal(parse_status("GET / HTTP/1.1\r\nExpect: bogus\r\n\r\n"),
	    417);
	/* Truncated: headers never end, or the body is short. */
	assert_int_equal(parse_status("GET / HTTP/1.1\r\nHost: a"), 400);
	assert_int_equal(parse_status("POST / HTTP/1.1\r\nContent-Length: 9"
	    "\r\n\r\nabc"), 400);
}

/* The server, driven by blocking client sockets from a thread. */

struct server_ctx {
	uv_loop_t loop;
	struct cpx_httpd *srv;
	uv_async_t stop;
	int port;
	int calls;
};

static void
handler(const struct cpx_httpd_req *req, struct cpx_httpd_resp *resp,
    void *arg)
{
	struct server_ctx *ctx = arg;

	ctx->calls++;
	if (strcmp(req->path, "/echo") == 0) {
		resp->content_type = "text/plain";
		cpx_buf_add(&resp->body, req->body, req->body_len);
		return;
	}
	cpx_httpd_resp_error(resp, 404, "no route for %s", req->path);
}

static void
on_stop(uv_async_t *a)
{
	struct server_ctx *ctx = a->data;

	cpx_httpd_close(ctx->srv);
	uv_close((uv_handle_t *)&ctx->stop, NULL);
}

static void
server_thread(void *arg)
{
	uv_run(&((struct server_ctx *)arg)->loop, UV_RUN_DEFAULT);
}

static int
client_connect(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

/* Reads until the peer closes or `want` is seen; returns what arrived. */
static char *
client_read(int fd, const char *want)
{
	static char buf[65536];
	size_t len = 0;
	ssize_t n;

	while (len < sizeof buf - 1) {
		n = read(fd, buf + len, sizeof buf - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (want != NULL && strstr(buf, want) != NULL)
			break;
	}
	buf[len] = '\0';
	return buf;
}

static void
test_server(void **state)
{
	struct server_ctx ctx = { 0 };
	uv_thread_t th;
	char *cause = NULL, *got;
	int fd, fd2;

	cpx_httpd_limits_default(&lim);
	lim.request_ms = 300;
	lim.max_body = 1000;
	uv_loop_init(&ctx.loop);
	assert_int_equal(cpx_httpd_start(&ctx.loop, "127.0.0.1", 0, &lim,
	    handler, &ctx, &ctx.srv, &cause), 0);
	ctx.port = cpx_httpd_port(ctx.srv);
	uv_async_init(&ctx.loop, &ctx.stop, on_stop);
	ctx.stop.data = &ctx;
	uv_thread_create(&th, server_thread, &ctx);

	/* Keep-alive and pipelining: two answers in order on one connection. */
	fd = client_connect(ctx.port);
	dprintf(fd, "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
	    "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\ndef");
	got = client_read(fd, "def");
	assert_non_null(strstr(got, "abc"));
	assert_true(strstr(got, "abc") < strstr(got, "def"));

	/* A slow client is cut off with 408, while another is served. */
	fd2 = client_connect(ctx.port);
	dprintf(fd2, "GET /echo HTTP/1.1\r\nHost:");
	dprintf(fd, "GET /nothing HTTP/1.1\r\n\r\n");
	assert_non_null(strstr(client_read(fd, "no route"), "404 Not Found"));
	assert_non_null(strstr(client_read(fd2, NULL), "408 Request Timeout"));
	close(fd2);

	/* Expect: 100-continue gets its interim answer, then the real one. */
	dprintf(fd, "POST /echo HTTP/1.1\r\nContent-Length: 2\r\n"
	    "Expect: 100-continue\r\n\r\n");
	assert_non_null(strstr(client_read(fd, "\r\n\r\n"), "100 Continue"));
	dprintf(fd, "hi");
	assert_non_null(strstr(client_read(fd, "hi"), "200 OK"));

	/* Oversized body: 413 and the connection closes. */
	dprintf(fd, "POST /echo HTTP/1.1\r\nContent-Length: 5000\r\n\r\n");
	got = client_read(fd, NULL);
	assert_non_null(strstr(got, "413"));
	assert_non_null(strstr(got, "Connection: close"));
	close(fd);

	uv_async_send(&ctx.stop);
	uv_thread_join(&th);
	assert_int_equal(uv_loop_close(&ctx.loop), 0);
	assert_true(ctx.calls >= 4);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_split),
		cmocka_unit_test(test_parse_pipelined),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_server),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
