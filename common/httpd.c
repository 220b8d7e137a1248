/* httpd.c — the HTTP/1.1 server's connections on a libuv loop. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cpx-httpd.h"

/*
 * Each connection has one timer whose deadline depends on what we wait
 * for: the next request (idle_ms), the rest of a request that began
 * (request_ms, then 408), the client reading our output (request_ms), or
 * the end of a lingering close. The timer is armed lazily: activity only
 * moves `deadline`, and a timer that fires early re-arms itself.
 */

#define LINGER_MS 1000
#define READ_CHUNK 65536

enum conn_state {
	CONN_OPEN,		/* reading requests */
	CONN_CLOSING,		/* last response queued; shutdown once flushed */
	CONN_LINGER,		/* write side shut; discarding input until EOF */
	CONN_DEAD,		/* handles closing */
};

struct conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	struct cpx_httpd *srv;
	struct conn *prev, *next;
	struct cpx_httpd_parser parser;
	struct cpx_buf out;		/* serialised, not yet handed to libuv */
	struct cpx_buf stash;		/* input not parsed while reading paused */
	size_t queued;			/* bytes inside uv_write requests */
	uint64_t deadline;
	uint64_t armed;			/* when the timer fires, 0 = not armed */
	uint64_t req_start;
	enum conn_state state;
	int reading;
	int shutting;			/* uv_shutdown issued */
	int peer_eof;			/* the client closed its side */
	int continue_sent;
	int handles;			/* open uv handles; freed at 0 */
};

struct wreq {
	uv_write_t req;
	struct conn *c;
	size_t len;
	char data[];
};

struct cpx_httpd {
	uv_loop_t *loop;
	uv_tcp_t listener;
	struct cpx_httpd_limits lim;
	cpx_httpd_handler handler;
	void *arg;
	struct conn *conns;
	struct cpx_httpd_stats st;
	int port;
	int closing;
	int listener_open;
};

/* Read buffer shared by all connections: input is parsed before the callback returns. */
static char read_buf[READ_CHUNK];

static void conn_close(struct conn *c);
static void conn_flush(struct conn *c);
static void conn_feed(struct conn *c, const char *data, size_t len);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

static void
srv_maybe_free(struct cpx_httpd *srv)
{
	if (srv->closing && !srv->listener_open && srv->conns == NULL)
		free(srv);
}

static void
on_conn_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct cpx_httpd *srv = c->srv;

	if (--c->handles > 0)
		return;
	cpx_httpd_parser_free(&c->parser);
	cpx_buf_free(&c->out);
	cpx_buf_free(&c->stash);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	srv->st.open--;
	free(c);
	srv_maybe_free(srv);
}

static void
conn_close(struct conn *c)
{
	if (c->state == CONN_DEAD)
		return;
	c->state = CONN_DEAD;
	uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_timer(uv_timer_t *t);

/* Moves the connection's deadline; the timer only moves when it would fire late. */
static void
set_deadline(struct conn *c, uint64_t ms_from_now)
{
	uint64_t now = uv_now(c->srv->loop);

	c->deadline = now + ms_from_now;
	if (c->armed == 0 || c->armed > c->deadline) {
		uv_timer_start(&c->timer, on_timer, ms_from_now, 0);
		c->armed = c->deadline;
	}
}

/* Chooses the deadline from what the connection waits for now. */
static void
update_deadline(struct conn *c)
{
	const struct cpx_httpd_limits *lim = &c->srv->lim;

	if (c->state == CONN_LINGER)
		return;
	if (c->parser.started && c->req_start == 0)
		c->req_start = uv_now(c->srv->loop);
	if (c->queued > 0 || c->state == CONN_CLOSING)
		set_deadline(c, lim->request_ms);
	else if (c->parser.started)
		set_deadline(c, c->req_start + lim->request_ms >
		    uv_now(c->srv->loop) ? c->req_start + lim->request_ms -
		    uv_now(c->srv->loop) : 0);
	else
		set_deadline(c, lim->idle_ms);
}

/* Queues a final 4xx written by the server itself and closes after it. */
static void
conn_fail(struct conn *c, int status, const char *reason)
{
	struct cpx_httpd_resp resp;

	c->srv->st.bad_requests++;
	cpx_httpd_resp_init(&resp);
	cpx_httpd_resp_error(&resp, status, "%s", reason);
	cpx_httpd_resp_serialize(&resp, 0, 0, 0, &c->out);
	cpx_httpd_resp_free(&resp);
	c->state = CONN_CLOSING;
	conn_flush(c);
}

static void
on_timer(uv_timer_t *t)
{
	struct conn *c = t->data;
	uint64_t now = uv_now(c->srv->loop);

	c->armed = 0;
	if (c->state == CONN_DEAD)
		return;
	if (now < c->deadline) {
		uv_timer_start(&c->timer, on_timer, c->deadline - now, 0);
		c->armed = c->deadline;
		return;
	}
	c->srv->st.timeouts++;
	/* A request that began but never finished is told why it is dropped. */
	if (c->state == CONN_OPEN && c->parser.started && c->queued == 0) {
		conn_fail(c, 408, "request not received in time");
		return;
	}
	conn_close(c);
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
	struct conn *c = req->data;

	free(req);
	if (c->state == CONN_DEAD)
		return;
	if (status != 0 || c->peer_eof) {
		conn_close(c);
		return;
	}
	/*
	 * Reading on until the client closes keeps the kernel from answering
	 * its unread request bytes with a reset that would destroy our reply.
	 */
	c->state = CONN_LINGER;
	set_deadline(c, LINGER_MS);
	if (!c->reading && !c->peer_eof && uv_read_start((uv_stream_t *)&c->tcp,
	    on_alloc, on_read) == 0)
		c->reading = 1;
}

static void
start_shutdown(struct conn *c)
{
	uv_shutdown_t *req;

	if (c->shutting)
		return;
	c->shutting = 1;
	req = cpx_xmalloc(sizeof *req);
	req->data = c;
	if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
		free(req);
		conn_close(c);
	}
}

static void resume_input(struct conn *c);

static void
on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct conn *c = w->c;

	c->queued -= w->len;
	free(w);
	if (c->state == CONN_DEAD)
		return;
	if (status != 0) {
		conn_close(c);
		return;
	}
	if (c->queued == 0 && c->state == CONN_CLOSING) {
		start_shutdown(c);
		return;
	}
	if (c->queued < c->srv->lim.max_output / 2)
		resume_input(c);
	if (c->state == CONN_OPEN)
		update_deadline(c);
}

/* Hands c->out to the socket: directly when it takes it, else through uv_write. */
static void
conn_flush(struct conn *c)
{
	uv_buf_t b;
	struct wreq *w;
	size_t off = 0;
	int n;

	if (c->state == CONN_DEAD || c->state == CONN_LINGER)
		return;
	if (c->out.len > 0 && c->queued == 0) {
		b = uv_buf_init((char *)c->out.data, (unsigned)c->out.len);
		n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
		if (n > 0)
			off = (size_t)n;
		else if (n != UV_EAGAIN && n != UV_ENOSYS) {
			conn_close(c);
			return;
		}
	}
	if (off < c->out.len) {
		w = cpx_xmalloc(sizeof *w + c->out.len - off);
		w->c = c;
		w->len = c->out.len - off;
		memcpy(w->data, c->out.data + off, w->len);
		b = uv_buf_init(w->data, (unsigned)w->len);
		if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1,
		    on_write) != 0) {
			free(w);
			conn_close(c);
			return;
		}
		c->queued += w->len;
	}
	c->out.len = 0;
	if (c->queued == 0 && c->state == CONN_CLOSING)
		start_shutdown(c);
}

static void
handle_request(struct conn *c, struct cpx_httpd_req *req)
{
	struct cpx_httpd *srv = c->srv;
	struct cpx_httpd_resp resp;
	int keep;

	srv->st.requests++;
	cpx_httpd_resp_init(&resp);
	srv->handler(req, &resp, srv->arg);
	keep = req->keep_alive && !resp.close && !srv->closing;
	cpx_httpd_resp_serialize(&resp, req->method == HTTP_HEAD, keep,
	    req->http_minor == 0, &c->out);
	cpx_httpd_resp_free(&resp);
	c->req_start = 0;
	c->continue_sent = 0;
	if (!keep)
		c->state = CONN_CLOSING;
}

static void
pause_input(struct conn *c, const char *data, size_t len)
{
	cpx_buf_add(&c->stash, data, len);
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = 0;
	}
}

/* Parses and answers every whole request in data; keeps the rest in the parser. */
static void
conn_feed(struct conn *c, const char *data, size_t len)
{
	struct cpx_httpd_req *req;
	size_t used;
	int r;

	while (len > 0 && c->state == CONN_OPEN) {
		if (c->out.len + c->queued > c->srv->lim.max_output) {
			/* The client does not read its answers: stop reading it. */
			pause_input(c, data, len);
			break;
		}
		r = cpx_httpd_parse(&c->parser, data, len, &used, &req);
		data += used;
		len -= used;
		if (r == 1)
			handle_request(c, req);
		else if (r < 0) {
			conn_fail(c, c->parser.error_status,
			    c->parser.error_reason);
			return;
		}
	}
	if (c->state == CONN_OPEN && c->parser.expect_continue &&
	    !c->continue_sent) {
		cpx_buf_add(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		c->continue_sent = 1;
	}
	conn_flush(c);
	if (c->state == CONN_OPEN)
		update_deadline(c);
}

static void
resume_input(struct conn *c)
{
	struct cpx_buf pending = c->stash;

	if (c->state != CONN_OPEN || c->reading)
		return;
	cpx_buf_init(&c->stash);
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
		c->reading = 1;
	if (pending.len > 0)
		conn_feed(c, (const char *)pending.data, pending.len);
	cpx_buf_free(&pending);
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	*buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void
on_eof(struct conn *c)
{
	c->peer_eof = 1;
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = 0;
	}
	if (c->state == CONN_CLOSING)
		return;		/* the answer is still on its way out */
	if (c->state != CONN_OPEN) {
		conn_close(c);
		return;
	}
	if (cpx_httpd_parse_eof(&c->parser) != 0) {
		/* A half-closed client may still read why it failed. */
		conn_fail(c, c->parser.error_status, c->parser.error_reason);
		return;
	}
	if (c->queued == 0 && c->out.len == 0)
		conn_close(c);
	else
		c->state = CONN_CLOSING;
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	if (c->state == CONN_DEAD)
		return;
	if (n < 0) {
		if (n == UV_EOF)
			on_eof(c);
		else
			conn_close(c);
		return;
	}
	/* After the last answer, input is only drained and dropped. */
	if (c->state != CONN_OPEN || n == 0)
		return;
	if (c->stash.len > 0) {
		/* Keep order: older bytes first. */
		pause_input(c, buf->base, (size_t)n);
		return;
	}
	conn_feed(c, buf->base, (size_t)n);
}

static void
on_refused_closed(uv_handle_t *h)
{
	free(h);
}

/* Over the connection limit: a short 503, best effort, and close. */
static void
refuse(struct cpx_httpd *srv, uv_tcp_t *tcp)
{
	static const char msg[] = "HTTP/1.1 503 Service Unavailable\r\n"
	    "Content-Type: application/json\r\nContent-Length: 32\r\n"
	    "Connection: close\r\n\r\n{\"error\":\"too many connections\"}";
	uv_buf_t b = uv_buf_init((char *)msg, sizeof msg - 1);

	srv->st.refused++;
	(void)uv_try_write((uv_stream_t *)tcp, &b, 1);
	uv_close((uv_handle_t *)tcp, on_refused_closed);
}

static void
on_connection(uv_stream_t *ls, int status)
{
	struct cpx_httpd *srv = ls->data;
	struct conn *c;

	if (status != 0)
		return;
	c = cpx_xcalloc(1, sizeof *c);
	uv_tcp_init(srv->loop, &c->tcp);
	if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
		uv_close((uv_handle_t *)&c->tcp, on_refused_closed);
		return;
	}
	if (srv->st.open >= srv->lim.max_conns || srv->closing) {
		refuse(srv, &c->tcp);
		return;
	}
	srv->st.accepted++;
	srv->st.open++;
	c->srv = srv;
	c->tcp.data = c;
	c->handles = 2;
	uv_timer_init(srv->loop, &c->timer);
	c->timer.data = c;
	uv_tcp_nodelay(&c->tcp, 1);
	cpx_httpd_parser_init(&c->parser, &srv->lim);
	cpx_buf_init(&c->out);
	cpx_buf_init(&c->stash);
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
		conn_close(c);
		return;
	}
	c->reading = 1;
	set_deadline(c, srv->lim.idle_ms);
}

static int
bind_listener(struct cpx_httpd *srv, const char *host, int port, char **cause)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	int namelen = sizeof ss, error;

	if (uv_ip4_addr(host, port, sin) != 0 &&
	    uv_ip6_addr(host, port, sin6) != 0) {
		cpx_set_cause(cause, "\"%s\" is not an IP address", host);
		return -EINVAL;
	}
	uv_tcp_init(srv->loop, &srv->listener);
	srv->listener.data = srv;
	srv->listener_open = 1;
	error = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0);
	if (error == 0)
		error = uv_listen((uv_stream_t *)&srv->listener, 511,
		    on_connection);
	if (error != 0) {
		cpx_set_cause(cause, "cannot listen on %s port %d: %s", host,
		    port, uv_strerror(error));
		return error;
	}
	uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &namelen);
	srv->port = ntohs(ss.ss_family == AF_INET6 ? sin6->sin6_port :
	    sin->sin_port);
	return 0;
}

/* Starts serving; *out belongs to the caller until cpx_httpd_close(). */
int
cpx_httpd_start(uv_loop_t *loop, const char *host, int port,
    const struct cpx_httpd_limits *limits, cpx_httpd_handler handler,
    void *arg, struct cpx_httpd **out, char **cause)
{
	struct cpx_httpd *srv = cpx_xcalloc(1, sizeof *srv);
	int error;

	srv->loop = loop;
	if (limits != NULL)
		srv->lim = *limits;
	else
		cpx_httpd_limits_default(&srv->lim);
	srv->handler = handler;
	srv->arg = arg;
	error = bind_listener(srv, host, port, cause);
	if (error != 0) {
		srv->closing = 1;
		cpx_httpd_close(srv);
		return error;
	}
	*out = srv;
	return 0;
}

int
cpx_httpd_port(const struct cpx_httpd *srv)
{
	return srv->port;
}

void
cpx_httpd_get_stats(const struct cpx_httpd *srv, struct cpx_httpd_stats *st)
{
	*st = srv->st;
}

static void
on_listener_closed(uv_handle_t *h)
{
	struct cpx_httpd *srv = h->data;

	srv->listener_open = 0;
	srv_maybe_free(srv);
}

void
cpx_httpd_close(struct cpx_httpd *srv)
{
	struct conn *c, *next;

	srv->closing = 1;
	for (c = srv->conns; c != NULL; c = next) {
		next = c->next;
		conn_close(c);
	}
	if (srv->listener_open && !uv_is_closing((uv_handle_t *)&srv->listener))
		uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
	else
		srv_maybe_free(srv);
}
