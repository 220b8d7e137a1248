/* httpc.c — a blocking HTTP/1.1 client: one request, one deadline for all of it. */

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <llhttp.h>

#include "cpx-http.h"

#define HTTP_BODY_MAX (4 * 1024 * 1024)

struct http_rx {
	struct cpx_buf body;
	int complete;
	int too_big;
};

static int
remaining_ms(uint64_t deadline)
{
	uint64_t now = cpx_now_ms();

	return now >= deadline ? 0 : (int)(deadline - now);
}

/* Resolves a numeric address at once; names go through getaddrinfo_a. */
static int
resolve_name(const char *host, const char *port, uint64_t deadline,
    struct addrinfo **res)
{
	struct {
		struct gaicb cb;
		struct addrinfo hints;
		char name[256];
		char service[8];
	} *q;
	struct gaicb *list[1];
	struct timespec ts;
	int ms, rc;

	if (strlen(host) >= sizeof q->name)
		return -EINVAL;
	q = cpx_xcalloc(1, sizeof *q);
	strcpy(q->name, host);
	strcpy(q->service, port);
	q->hints.ai_socktype = SOCK_STREAM;
	q->hints.ai_flags = AI_NUMERICSERV;
	q->cb.ar_name = q->name;
	q->cb.ar_service = q->service;
	q->cb.ar_request = &q->hints;
	list[0] = &q->cb;
	if (getaddrinfo_a(GAI_NOWAIT, list, 1, NULL) != 0) {
		free(q);
		return -EAGAIN;
	}
	do {
		ms = remaining_ms(deadline);
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (long)(ms % 1000) * 1000000;
		rc = gai_suspend((const struct gaicb *const *)list, 1, &ts);
	} while (rc == EAI_INTR || (rc == 0 && gai_error(&q->cb) == EAI_INPROGRESS));
	rc = gai_error(&q->cb);
	if (rc == EAI_INPROGRESS) {
		/*
		 * A lookup that cannot be cancelled still writes into q later:
		 * leave it allocated rather than let a resolver thread write
		 * into freed memory. It only happens when DNS hangs.
		 */
		if (gai_cancel(&q->cb) == EAI_CANCELED)
			free(q);
		return -ETIMEDOUT;
	}
	*res = q->cb.ar_result;
	free(q);
	return rc == 0 ? 0 : -EHOSTUNREACH;
}

static int
resolve(const char *host, int port, uint64_t deadline, struct addrinfo **res)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	char service[8];

	snprintf(service, sizeof service, "%d", port);
	if (getaddrinfo(host, service, &hints, res) == 0)
		return 0;
	return resolve_name(host, service, deadline, res);
}

static int
wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int rc;

	for (;;) {
		rc = poll(&p, 1, remaining_ms(deadline));
		if (rc > 0)
			return 0;
		if (rc == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int
connect_one(const struct addrinfo *ai, uint64_t deadline, int *fdp)
{
	int fd, one = 1, error = 0;
	socklen_t len = sizeof error;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -errno;
	/* Small request/response exchanges: never wait for Nagle. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		if (errno != EINPROGRESS) {
			error = -errno;
			goto out;
		}
		if ((error = wait_fd(fd, POLLOUT, deadline)) != 0)
			goto out;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0)
			error = errno;
		error = -error;
	}
out:
	if (error != 0)
		close(fd);
	else
		*fdp = fd;
	return error;
}

static int
connect_any(const char *host, int port, uint64_t deadline, int *fdp)
{
	struct addrinfo *res = NULL, *ai;
	int error;

	if ((error = resolve(host, port, deadline, &res)) != 0)
		return error;
	error = -EHOSTUNREACH;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		error = connect_one(ai, deadline, fdp);
		if (error == 0 || error == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	return error;
}

static int
send_all(int fd, const uint8_t *p, size_t n, uint64_t deadline)
{
	size_t done = 0;
	ssize_t w;
	int error;

	while (done < n) {
		w = send(fd, p + done, n - done, MSG_NOSIGNAL);
		if (w > 0) {
			done += (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if ((error = wait_fd(fd, POLLOUT, deadline)) != 0)
			return error;
	}
	return 0;
}

static void
build_request(struct cpx_buf *b, const char *method, const char *host,
    int port, const char *path, const char *token, const char *body)
{
	int v6 = strchr(host, ':') != NULL;

	cpx_buf_printf(b, "%s %s HTTP/1.1\r\nHost: %s%s%s:%d\r\n", method,
	    *path != '\0' ? path : "/", v6 ? "[" : "", host, v6 ? "]" : "",
	    port);
	cpx_buf_printf(b, "User-Agent: clusterplex/%s\r\n"
	    "Accept: application/json\r\nConnection: close\r\n", CPX_VERSION);
	if (token != NULL)
		cpx_buf_printf(b, "Authorization: Bearer %s\r\n", token);
	if (body != NULL)
		cpx_buf_printf(b, "Content-Type: application/json\r\n"
		    "Content-Length: %zu\r\n", strlen(body));
	cpx_buf_printf(b, "\r\n%s", body != NULL ? body : "");
}

static int
on_body(llhttp_t *p, const char *at, size_t n)
{
	struct http_rx *rx = p->data;

	if (rx->body.len + n > HTTP_BODY_MAX) {
		rx->too_big = 1;
		return -1;
	}
	cpx_buf_add(&rx->body, at, n);
	return 0;
}

static int
on_complete(llhttp_t *p)
{
	struct http_rx *rx = p->data;

	rx->complete = 1;
	return HPE_PAUSED;
}

/* Feeds bytes to the parser; 1 when the response is complete. */
static int
feed(llhttp_t *p, struct http_rx *rx, const char *data, size_t n)
{
	llhttp_errno_t e = n > 0 ? llhttp_execute(p, data, n) : llhttp_finish(p);

	if (rx->complete)
		return 1;
	if (rx->too_big)
		return -EFBIG;
	if (e != HPE_OK)
		return -EPROTO;
	return n > 0 ? 0 : -EPROTO;
}

static int
read_response(int fd, uint64_t deadline, struct cpx_http_response *resp)
{
	llhttp_settings_t settings;
	struct http_rx rx = { .complete = 0 };
	char chunk[16384];
	llhttp_t parser;
	ssize_t r;
	int error;

	llhttp_settings_init(&settings);
	settings.on_body = on_body;
	settings.on_message_complete = on_complete;
	llhttp_init(&parser, HTTP_RESPONSE, &settings);
	parser.data = &rx;
	cpx_buf_init(&rx.body);
	for (;;) {
		r = recv(fd, chunk, sizeof chunk, 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
			if ((error = wait_fd(fd, POLLIN, deadline)) != 0)
				break;
			continue;
		}
		if (r < 0) {
			error = -errno;
			break;
		}
		if ((error = feed(&parser, &rx, chunk, (size_t)r)) != 0)
			break;
	}
	/* llhttp takes a status of fewer than three digits; HTTP does not. */
	if (error == 1 && (parser.status_code < 100 || parser.status_code > 999))
		error = -EPROTO;
	if (error == 1) {
		resp->status = parser.status_code;
		resp->body_len = rx.body.len;
		resp->body = cpx_buf_cstr(&rx.body);
		return 0;
	}
	cpx_buf_free(&rx.body);
	return error;
}

static const char *
http_strerror(int error)
{
	switch (error) {
	case -ETIMEDOUT:
		return "timed out";
	case -EPROTO:
		return "not an HTTP response";
	case -EFBIG:
		return "response body too large";
	default:
		return strerror(-error);
	}
}

/*
 * Sends one request and reads the whole response before `timeout_ms`
 * passes. *resp is filled on success; caller frees it.
 */
int
cpx_http_request(const char *base_url, const char *method, const char *path,
    const char *token, const char *json_body, unsigned timeout_ms,
    struct cpx_http_response *resp, char **cause)
{
	uint64_t deadline = cpx_now_ms() + timeout_ms;
	char *host = NULL, *base = NULL, *full = NULL;
	struct cpx_buf req;
	int port, fd = -1, error;

	memset(resp, 0, sizeof *resp);
	cpx_buf_init(&req);
	if ((error = cpx_parse_url(base_url, &host, &port, &base, cause)) != 0)
		return error;
	full = cpx_xprintf("%s%s", base, path);
	if ((error = connect_any(host, port, deadline, &fd)) != 0)
		goto fail;
	build_request(&req, method, host, port, full, token, json_body);
	if ((error = send_all(fd, req.data, req.len, deadline)) != 0)
		goto fail;
	if ((error = read_response(fd, deadline, resp)) != 0)
		goto fail;
	goto out;
fail:
	cpx_set_cause(cause, "%s %s%s: %s", method, base_url, path,
	    http_strerror(error));
out:
	if (fd >= 0)
		close(fd);
	cpx_buf_free(&req);
	free(host);
	free(base);
	free(full);
	return error;
}

void
cpx_http_response_free(struct cpx_http_response *resp)
{
	free(resp->body);
	memset(resp, 0, sizeof *resp);
}
