/* ssh.c — SSH connections to workers on libuv: connect, verify, authenticate, keep alive. */

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ssh_private.h"

static void drive(struct cpx_ssh_conn *c);
static void on_poll(uv_poll_t *h, int status, int events);

static const char *const state_names[] = {
	[SSH_RESOLVING] = "name lookup",
	[SSH_CONNECTING] = "TCP connect",
	[SSH_HANDSHAKE] = "SSH handshake",
	[SSH_AUTH] = "authentication",
	[SSH_READY] = "session",
	[SSH_DEAD] = "failure",
};

/* libssh2 error codes to the errno values documented in cpx-ssh.h. */
int
ssh_map_error(int rc)
{
	switch (rc) {
	case LIBSSH2_ERROR_SOCKET_SEND:
	case LIBSSH2_ERROR_SOCKET_RECV:
	case LIBSSH2_ERROR_SOCKET_DISCONNECT:
	case LIBSSH2_ERROR_BAD_SOCKET:
		return -ECONNRESET;
	case LIBSSH2_ERROR_TIMEOUT:
	case LIBSSH2_ERROR_SOCKET_TIMEOUT:
		return -ETIMEDOUT;
	case LIBSSH2_ERROR_AUTHENTICATION_FAILED:
	case LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
		return -EACCES;
	case LIBSSH2_ERROR_FILE:
	case LIBSSH2_ERROR_KEYFILE_AUTH_FAILED:
	case LIBSSH2_ERROR_METHOD_NOT_SUPPORTED:
		return -ENOKEY;
	case LIBSSH2_ERROR_ALLOC:
		return -ENOMEM;
	default:
		return -EPROTO;
	}
}

/* True when an error from a channel call means the whole session is gone. */
int
ssh_fatal_error(int rc)
{
	switch (rc) {
	case LIBSSH2_ERROR_CHANNEL_OUTOFORDER:
	case LIBSSH2_ERROR_CHANNEL_FAILURE:
	case LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED:
	case LIBSSH2_ERROR_CHANNEL_UNKNOWN:
	case LIBSSH2_ERROR_CHANNEL_WINDOW_EXCEEDED:
	case LIBSSH2_ERROR_CHANNEL_PACKET_EXCEEDED:
	case LIBSSH2_ERROR_CHANNEL_CLOSED:
	case LIBSSH2_ERROR_CHANNEL_EOF_SENT:
	case LIBSSH2_ERROR_CHANNEL_WINDOW_FULL:
	case LIBSSH2_ERROR_REQUEST_DENIED:
	case LIBSSH2_ERROR_BAD_USE:
	case LIBSSH2_ERROR_INVAL:
	case LIBSSH2_ERROR_BUFFER_TOO_SMALL:
		return 0;
	default:
		return 1;
	}
}

const char *
ssh_last_error(struct cpx_ssh_conn *c)
{
	char *msg = NULL;

	if (c->session == NULL)
		return "no session";
	libssh2_session_last_error(c->session, &msg, NULL, 0);
	return msg != NULL && *msg != '\0' ? msg : "unknown error";
}

/* Records the first failure; it is reported when the current drive ends. */
void
ssh_fail(struct cpx_ssh_conn *c, int status, const char *fmt, ...)
{
	va_list ap;
	char buf[512];

	if (c->state == SSH_DEAD)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	c->state = SSH_DEAD;
	c->status = status;
	c->cause = cpx_xstrdup(buf);
	ssh_kick(c);
}

static void
on_kick(uv_idle_t *h)
{
	uv_idle_stop(h);
	drive(h->data);
}

/*
 * Work for the next loop iteration (at once, but never from inside the
 * caller's own stack): a caller writing from a callback must not see
 * other callbacks run before its write returns.
 */
void
ssh_kick(struct cpx_ssh_conn *c)
{
	if (c->driving) {
		c->again = 1;
		return;
	}
	if (!uv_is_closing((uv_handle_t *)&c->kick))
		uv_idle_start(&c->kick, on_kick);
}

static void
maybe_free(struct cpx_ssh_conn *c)
{
	if (!c->user_closed || c->handles > 0 || c->gai_active)
		return;
	ssh_wipe_keys(c);
	cpx_endpoint_free(&c->ep);
	free(c->key_path);
	free(c->known_hosts);
	free(c->cause);
	free(c);
}

static void
on_handle_closed(uv_handle_t *h)
{
	struct cpx_ssh_conn *c = h->data;

	if (h != (uv_handle_t *)&c->timer && h != (uv_handle_t *)&c->kick)
		free(h);
	c->handles--;
	maybe_free(c);
}

/*
 * Frees the libssh2 session and the socket. shutdown() first, so that
 * nothing libssh2 still tries to send or read on the way out can block.
 */
static void
release_session(struct cpx_ssh_conn *c, int clean)
{
	int i;

	if (c->session != NULL) {
		if (clean && c->state == SSH_READY)
			libssh2_session_disconnect(c->session, "closing");
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
		for (i = 0; i < 8; i++) {
			if (libssh2_session_free(c->session) !=
			    LIBSSH2_ERROR_EAGAIN)
				break;
		}
		c->session = NULL;
	}
	if (c->poll != NULL) {
		uv_poll_stop(c->poll);
		uv_close((uv_handle_t *)c->poll, on_handle_closed);
		c->poll = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	uv_timer_stop(&c->timer);
}

static void
report_failure(struct cpx_ssh_conn *c)
{
	c->reported = 1;
	c->driving = 1;
	release_session(c, 0);
	ssh_chans_end_all(c, c->status, c->cause);
	if (c->was_ready) {
		cpx_warn("worker %s: %s", c->ep.name, c->cause);
		if (c->dead_cb != NULL && !c->user_closed)
			c->dead_cb(c, c->status, c->cause, c->arg);
	} else if (c->ready_cb != NULL && !c->user_closed) {
		c->ready_cb(c, c->status, c->cause, c->arg);
	}
	c->driving = 0;
}

static void
teardown(struct cpx_ssh_conn *c)
{
	if (!c->reported) {
		c->reported = 1;
		c->driving = 1;
		release_session(c, 1);
		ssh_chans_end_all(c, -ECONNABORTED, "connection closed");
		c->driving = 0;
	}
	uv_timer_stop(&c->timer);
	uv_idle_stop(&c->kick);
	if (!uv_is_closing((uv_handle_t *)&c->timer)) {
		uv_close((uv_handle_t *)&c->timer, on_handle_closed);
		uv_close((uv_handle_t *)&c->kick, on_handle_closed);
	}
	if (c->gai_active)
		uv_cancel((uv_req_t *)&c->gai);
}

static void
arm_poll(struct cpx_ssh_conn *c)
{
	int dirs, want, events = UV_DISCONNECT;

	if (c->poll == NULL || c->state == SSH_CONNECTING)
		return;
	dirs = libssh2_session_block_directions(c->session);
	want = c->state != SSH_READY || ssh_chans_want_read(c);
	if (want && !c->reading)
		c->last_rx = cpx_now_ms();
	c->reading = want;
	/*
	 * An idle session reads nothing: libssh2 has no call that consumes
	 * input without a channel, and an unread readable socket would
	 * spin the loop. TCP keepalives watch an idle session instead.
	 */
	if (want || (dirs & LIBSSH2_SESSION_BLOCK_INBOUND))
		events |= UV_READABLE;
	if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		events |= UV_WRITABLE;
	if (events != c->poll_events) {
		c->poll_events = events;
		uv_poll_start(c->poll, events, on_poll);
	}
}

static void
after_drive(struct cpx_ssh_conn *c)
{
	if (c->state == SSH_DEAD && !c->reported)
		report_failure(c);
	if (c->user_closed)
		teardown(c);
	else if (c->state != SSH_DEAD)
		arm_poll(c);
}

static void
on_keepalive(uv_timer_t *t)
{
	struct cpx_ssh_conn *c = t->data;
	uint64_t now = cpx_now_ms();

	ssh_chans_check_deadlines(c, now);
	if (c->state == SSH_READY && c->reading && c->chans != NULL &&
	    now - c->last_rx > 3 * (uint64_t)c->opts.keepalive_ms) {
		ssh_fail(c, -ETIMEDOUT, "no answer from %s for %llu ms",
		    c->ep.name, (unsigned long long)(now - c->last_rx));
	} else if (c->state == SSH_READY && c->chans != NULL &&
	    c->tx_owner == NULL && !(libssh2_session_block_directions(
	    c->session) & LIBSSH2_SESSION_BLOCK_OUTBOUND)) {
		libssh2_keepalive_send(c->session, NULL);
		/*
		 * libssh2 drops a keepalive it could not finish sending, yet
		 * blocks the session until it is: with a free socket buffer
		 * that cannot happen, and if it does the session is unusable.
		 */
		if (libssh2_session_block_directions(c->session) &
		    LIBSSH2_SESSION_BLOCK_OUTBOUND)
			ssh_fail(c, -ECONNRESET, "cannot send to %s", c->ep.name);
	}
	drive(c);
}

static void
become_ready(struct cpx_ssh_conn *c)
{
	unsigned ka = c->opts.keepalive_ms;

	c->state = SSH_READY;
	c->was_ready = 1;
	c->last_rx = cpx_now_ms();
	/* libssh2 counts whole seconds; our own timer decides when to send. */
	libssh2_keepalive_config(c->session, 1, ka >= 2000 ? ka / 1000 : 1);
	uv_timer_stop(&c->timer);
	uv_timer_start(&c->timer, on_keepalive, ka, ka);
	cpx_debug("connected to %s (%s:%d)", c->ep.name, c->ep.host, c->ep.port);
	if (c->ready_cb != NULL)
		c->ready_cb(c, 0, NULL, c->arg);
}

static void
step_auth(struct cpx_ssh_conn *c)
{
	int rc;

	rc = libssh2_userauth_publickey_frommemory(c->session, c->ep.user,
	    strlen(c->ep.user), c->pubkey, c->pubkey_len, c->privkey,
	    c->privkey_len, NULL);
	if (rc == LIBSSH2_ERROR_EAGAIN)
		return;
	ssh_wipe_keys(c);
	if (rc != 0) {
		ssh_fail(c, ssh_map_error(rc), "%s refused key %s for user %s: %s",
		    c->ep.name, c->key_path, c->ep.user, ssh_last_error(c));
		return;
	}
	become_ready(c);
}

static void
step_handshake(struct cpx_ssh_conn *c)
{
	int rc = libssh2_session_handshake(c->session, c->fd);

	if (rc == LIBSSH2_ERROR_EAGAIN)
		return;
	if (rc != 0) {
		ssh_fail(c, ssh_map_error(rc), "SSH handshake with %s (%s:%d): %s",
		    c->ep.name, c->ep.host, c->ep.port, ssh_last_error(c));
		return;
	}
	if (ssh_check_host_key(c) == 0 && ssh_read_keys(c) == 0)
		c->state = SSH_AUTH;
}

/* Runs everything that can progress; the only place user callbacks start. */
static void
drive(struct cpx_ssh_conn *c)
{
	if (c->driving) {
		c->again = 1;
		return;
	}
	c->driving = 1;
	do {
		c->again = 0;
		if (c->state == SSH_HANDSHAKE)
			step_handshake(c);
		if (c->state == SSH_AUTH)
			step_auth(c);
		if (c->state == SSH_READY && !c->user_closed)
			ssh_chans_drive(c);
	} while (c->again && !c->user_closed && c->state != SSH_DEAD);
	c->driving = 0;
	after_drive(c);
}

static ssize_t
ssh_recv(libssh2_socket_t fd, void *buf, size_t n, int flags, void **abstract)
{
	struct cpx_ssh_conn *c = *abstract;
	ssize_t r = recv(fd, buf, n, flags);
	int one = 1;

	if (r < 0)
		return -errno;
	if (r > 0) {
		c->last_rx = cpx_now_ms();
		/*
		 * Our ACKs go out at once, so no small exchange waits on a
		 * delayed one (up to 40 ms). The kernel clears QUICKACK by
		 * itself, so it is set again every time.
		 */
		setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
	}
	return r;
}

static void
start_session(struct cpx_ssh_conn *c)
{
	char type[64];
	size_t n;

	c->session = libssh2_session_init_ex(NULL, NULL, NULL, c);
	if (c->session == NULL) {
		ssh_fail(c, -ENOMEM, "cannot create an SSH session");
		return;
	}
	libssh2_session_set_blocking(c->session, 0);
	libssh2_session_callback_set(c->session, LIBSSH2_CALLBACK_RECV,
	    (void *)ssh_recv);
	/* Ask for the host key type we pinned, or servers offer another. */
	if (c->ep.host_key != NULL) {
		n = strcspn(c->ep.host_key, " \t");
		if (n > 0 && n < sizeof type) {
			memcpy(type, c->ep.host_key, n);
			type[n] = '\0';
			libssh2_session_method_pref(c->session,
			    LIBSSH2_METHOD_HOSTKEY, type);
		}
	}
	c->state = SSH_HANDSHAKE;
}

static void
on_poll(uv_poll_t *h, int status, int events)
{
	struct cpx_ssh_conn *c = h->data;
	int error = 0;
	socklen_t len = sizeof error;

	if (c->state == SSH_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0)
			error = errno;
		if (error == 0 && status < 0)
			error = ECONNRESET;
		if (error != 0)
			ssh_fail(c, -error, "connect to %s (%s:%d): %s",
			    c->ep.name, c->ep.host, c->ep.port, strerror(error));
		else
			start_session(c);
		c->poll_events = 0;
	} else if (status < 0) {
		ssh_fail(c, -ECONNRESET, "connection to %s lost: %s",
		    c->ep.name, uv_strerror(status));
	} else if (events & UV_DISCONNECT) {
		/*
		 * The peer is gone. Deliver what arrived before its FIN first:
		 * libssh2 reads a closed socket as "no data" and would leave
		 * the readable socket spinning the loop.
		 */
		if (c->reading)
			drive(c);
		if (c->user_closed)
			return;
		ssh_fail(c, -ECONNRESET, "%s closed the connection", c->ep.name);
	}
	drive(c);
}

static void
tune_socket(struct cpx_ssh_conn *c, int fd)
{
	int one = 1, idle = (int)(c->opts.keepalive_ms + 999) / 1000, cnt = 3;
	unsigned timeout = 3 * c->opts.keepalive_ms;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	/* The kernel watches idle sessions; unacknowledged data is bounded too. */
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof idle);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof timeout);
}

static void
start_connect(struct cpx_ssh_conn *c, const struct addrinfo *res)
{
	const struct addrinfo *ai;
	int fd, error = -EHOSTUNREACH;

	for (ai = res; ai != NULL && c->fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			error = -errno;
			continue;
		}
		tune_socket(c, fd);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    errno == EINPROGRESS) {
			c->fd = fd;
			break;
		}
		error = -errno;
		close(fd);
	}
	if (c->fd < 0) {
		ssh_fail(c, error, "connect to %s (%s:%d): %s", c->ep.name,
		    c->ep.host, c->ep.port, strerror(-error));
		return;
	}
	c->state = SSH_CONNECTING;
	c->poll = cpx_xmalloc(sizeof *c->poll);
	uv_poll_init_socket(c->loop, c->poll, c->fd);
	c->poll->data = c;
	c->handles++;
	c->poll_events = UV_WRITABLE;
	uv_poll_start(c->poll, UV_WRITABLE, on_poll);
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct cpx_ssh_conn *c = req->data;

	c->gai_active = 0;
	if (c->user_closed || c->state != SSH_RESOLVING) {
		uv_freeaddrinfo(res);
		maybe_free(c);
		return;
	}
	if (status != 0)
		ssh_fail(c, -EHOSTUNREACH, "cannot resolve %s: %s", c->ep.host,
		    uv_strerror(status));
	else
		start_connect(c, res);
	uv_freeaddrinfo(res);
	drive(c);
}

static void
start_resolve(struct cpx_ssh_conn *c)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV }, *res;
	char port[8];

	snprintf(port, sizeof port, "%d", c->ep.port);
	/* Workers register addresses: no resolver thread for those. */
	if (getaddrinfo(c->ep.host, port, &hints, &res) == 0) {
		start_connect(c, res);
		freeaddrinfo(res);
		return;
	}
	hints.ai_flags = AI_NUMERICSERV;
	c->gai.data = c;
	if (uv_getaddrinfo(c->loop, &c->gai, on_resolved, c->ep.host, port,
	    &hints) != 0) {
		ssh_fail(c, -EHOSTUNREACH, "cannot resolve %s", c->ep.host);
		return;
	}
	c->gai_active = 1;
}

static void
on_deadline(uv_timer_t *t)
{
	struct cpx_ssh_conn *c = t->data;

	ssh_fail(c, -ETIMEDOUT, "%s (%s:%d) did not answer in %u ms (%s)",
	    c->ep.name, c->ep.host, c->ep.port, c->opts.connect_timeout_ms,
	    state_names[c->state]);
	drive(c);
}

struct cpx_ssh_conn *
cpx_ssh_connect(uv_loop_t *loop, const struct cpx_endpoint *ep,
    const struct cpx_ssh_auth *auth, const struct cpx_ssh_opts *opts,
    cpx_ssh_ready_cb ready, cpx_ssh_dead_cb dead, void *arg)
{
	static int initialised;
	struct cpx_ssh_conn *c = cpx_xcalloc(1, sizeof *c);

	if (!initialised && libssh2_init(0) == 0)
		initialised = 1;
	c->loop = loop;
	cpx_endpoint_copy(&c->ep, ep);
	if (c->ep.name == NULL)
		c->ep.name = cpx_xstrdup(c->ep.host);
	c->key_path = cpx_xstrdup(auth->key_path);
	c->known_hosts = auth->known_hosts ? cpx_xstrdup(auth->known_hosts) :
	    NULL;
	c->opts = *opts;
	if (c->opts.keepalive_ms == 0)
		c->opts.keepalive_ms = 5000;
	c->ready_cb = ready;
	c->dead_cb = dead;
	c->arg = arg;
	c->fd = -1;
	uv_timer_init(loop, &c->timer);
	uv_idle_init(loop, &c->kick);
	c->timer.data = c->kick.data = c;
	c->handles = 2;
	uv_timer_start(&c->timer, on_deadline, opts->connect_timeout_ms, 0);
	c->state = SSH_RESOLVING;
	start_resolve(c);
	return c;
}

int
cpx_ssh_is_ready(const struct cpx_ssh_conn *c)
{
	return c->state == SSH_READY && !c->user_closed;
}

size_t
cpx_ssh_channel_count(const struct cpx_ssh_conn *c)
{
	const struct cpx_ssh_chan *ch;
	size_t n = 0;

	for (ch = c->chans; ch != NULL; ch = ch->next) {
		if (!ch->user_closed)
			n++;
	}
	return n;
}

const struct cpx_endpoint *
cpx_ssh_endpoint(const struct cpx_ssh_conn *c)
{
	return &c->ep;
}

void
cpx_ssh_close(struct cpx_ssh_conn *c)
{
	if (c == NULL || c->user_closed)
		return;
	c->user_closed = 1;
	if (!c->driving)
		teardown(c);
}
