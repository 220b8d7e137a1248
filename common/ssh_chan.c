/* ssh_chan.c — exec channels on a session: open, move bytes both ways, close. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ssh_private.h"

#define CHAN_WINDOW (4 * 1024 * 1024)
#define READ_CHUNK (64 * 1024)
#define STDERR_LINE_MAX 4096

static void
chan_free(struct cpx_ssh_chan *ch)
{
	struct cpx_ssh_conn *c = ch->conn;
	struct cpx_ssh_chan **pp;

	for (pp = &c->chans; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == ch) {
			*pp = ch->next;
			break;
		}
	}
	if (c->tx_owner == ch)
		c->tx_owner = NULL;
	cpx_buf_free(&ch->out);
	cpx_buf_free(&ch->errline);
	free(ch->command);
	free(ch);
}

/*
 * After a sending call: when it left a packet half sent, this channel
 * owns the session's output until the same call is repeated. Returns 1
 * when the caller must stop for now.
 */
static int
note_send(struct cpx_ssh_chan *ch, enum chan_op op, ssize_t rc)
{
	struct cpx_ssh_conn *c = ch->conn;
	int blocked = rc == LIBSSH2_ERROR_EAGAIN &&
	    (libssh2_session_block_directions(c->session) &
	    LIBSSH2_SESSION_BLOCK_OUTBOUND);

	if (blocked) {
		c->tx_owner = ch;
		ch->blocked_op = op;
	} else if (c->tx_owner == ch) {
		c->tx_owner = NULL;
		ch->blocked_op = OP_NONE;
	}
	return blocked;
}

/* The channel is over for its user; it still closes on the wire. */
static void
chan_end(struct cpx_ssh_chan *ch, int error)
{
	int notify = !ch->user_closed;

	ch->user_closed = 1;
	ch->flush = 0;
	ch->state = CH_CLOSING;
	ch->deadline = cpx_now_ms() + ch->conn->opts.connect_timeout_ms;
	if (notify)
		ch->cbs.end(ch, error, ch->arg);
}

/* A libssh2 error on this channel: fatal ones take the session down. */
static void
chan_error(struct cpx_ssh_chan *ch, int rc, const char *what)
{
	struct cpx_ssh_conn *c = ch->conn;

	if (ssh_fatal_error(rc)) {
		ssh_fail(c, ssh_map_error(rc), "%s: %s on the channel: %s",
		    c->ep.name, what, ssh_last_error(c));
		return;
	}
	cpx_warn("%s: %s on a channel: %s", c->ep.name, what, ssh_last_error(c));
	if (ch->state == CH_OPEN) {
		chan_end(ch, -EPROTO);
	} else {
		/* Closing: what could not be sent is dropped. */
		ch->flush = 0;
		ch->out.len = ch->out_off = 0;
	}
}

/* Opening failed: report once, then let the wire side finish. */
static void
chan_open_failed(struct cpx_ssh_chan *ch, int rc, const char *what)
{
	struct cpx_ssh_conn *c = ch->conn;
	int status = rc == LIBSSH2_ERROR_CHANNEL_FAILURE ? -EBUSY : -EPROTO;
	char *cause;

	if (ssh_fatal_error(rc)) {
		chan_error(ch, rc, what);
		return;
	}
	cause = cpx_xprintf("%s: %s: %s", c->ep.name, what, ssh_last_error(c));
	ch->state = ch->ch != NULL ? CH_CLOSING : CH_DONE;
	ch->deadline = cpx_now_ms() + c->opts.connect_timeout_ms;
	if (!ch->user_closed) {
		ch->user_closed = 1;
		ch->cbs.opened(ch, status, cause, ch->arg);
	}
	free(cause);
}

static void
step_open(struct cpx_ssh_chan *ch)
{
	LIBSSH2_SESSION *s = ch->conn->session;
	int rc;

	ch->ch = libssh2_channel_open_ex(s, "session", 7, CHAN_WINDOW,
	    LIBSSH2_CHANNEL_PACKET_DEFAULT, NULL, 0);
	rc = ch->ch != NULL ? 0 : libssh2_session_last_errno(s);
	if (note_send(ch, OP_STATE, rc))
		return;
	if (ch->ch != NULL) {
		ch->state = CH_EXEC;
		return;
	}
	if (rc != LIBSSH2_ERROR_EAGAIN)
		chan_open_failed(ch, rc, "opening a channel");
}

static void
step_exec(struct cpx_ssh_chan *ch)
{
	int rc = libssh2_channel_process_startup(ch->ch, "exec", 4,
	    ch->command, (unsigned)strlen(ch->command));

	if (note_send(ch, OP_STATE, rc) || rc == LIBSSH2_ERROR_EAGAIN)
		return;
	if (rc != 0) {
		chan_open_failed(ch, rc, "starting the agent");
		return;
	}
	ch->state = CH_OPEN;
	ch->deadline = 0;
	if (ch->user_closed) {
		/* Cancelled while opening: close it now that it exists. */
		ch->state = CH_CLOSING;
		ch->deadline = cpx_now_ms() + ch->conn->opts.connect_timeout_ms;
		return;
	}
	ch->cbs.opened(ch, 0, NULL, ch->arg);
}

/* Returns 1 when the session's output is blocked. */
static int
flush_out(struct cpx_ssh_chan *ch)
{
	ssize_t n;

	while (ch->out.len > ch->out_off) {
		n = libssh2_channel_write(ch->ch,
		    (const char *)ch->out.data + ch->out_off,
		    ch->out.len - ch->out_off);
		if (note_send(ch, OP_WRITE, n))
			return 1;
		if (n == LIBSSH2_ERROR_EAGAIN || n == LIBSSH2_ERROR_BAD_USE)
			return 0;	/* BAD_USE: libssh2's own reply half sent */
		if (n < 0) {
			chan_error(ch, (int)n, "writing");
			return 1;
		}
		ch->out_off += (size_t)n;
	}
	ch->out.len = ch->out_off = 0;
	if (ch->want_drain && !ch->user_closed) {
		ch->want_drain = 0;
		if (ch->cbs.drain != NULL)
			ch->cbs.drain(ch, ch->arg);
	}
	return 0;
}

static void
log_stderr(struct cpx_ssh_chan *ch, const char *p, size_t n)
{
	const char *nl;
	size_t k;

	while (n > 0) {
		nl = memchr(p, '\n', n);
		k = nl != NULL ? (size_t)(nl - p) : n;
		cpx_buf_add(&ch->errline, p, k);
		if (nl != NULL || ch->errline.len >= STDERR_LINE_MAX) {
			cpx_info("%s: %s", ch->conn->ep.name,
			    cpx_buf_cstr(&ch->errline));
			ch->errline.len = 0;
		}
		k += nl != NULL;
		p += k;
		n -= k;
	}
}

/* Reads stdout (op OP_READ) or stderr until EAGAIN; 1 when blocked or over. */
static int
read_stream(struct cpx_ssh_chan *ch, enum chan_op op)
{
	static __thread char buf[READ_CHUNK];
	struct cpx_ssh_conn *c = ch->conn;
	ssize_t n;

	for (;;) {
		n = op == OP_READ ? libssh2_channel_read(ch->ch, buf, sizeof buf) :
		    libssh2_channel_read_stderr(ch->ch, buf, sizeof buf);
		if (note_send(ch, op, n))
			return 1;
		if (n == LIBSSH2_ERROR_EAGAIN || n == LIBSSH2_ERROR_BAD_USE ||
		    n == 0)
			return 0;
		if (n < 0) {
			chan_error(ch, (int)n, "reading");
			return 1;
		}
		if (op == OP_READ_ERR) {
			log_stderr(ch, buf, (size_t)n);
			continue;
		}
		ch->cbs.data(ch, buf, (size_t)n, ch->arg);
		if (ch->user_closed || ch->paused || c->user_closed ||
		    c->state == SSH_DEAD)
			return 1;
	}
}

static void
step_io(struct cpx_ssh_chan *ch)
{
	/* A half-sent window adjustment must be finished by its own call. */
	if (ch->blocked_op == OP_READ_ERR && read_stream(ch, OP_READ_ERR))
		return;
	if (ch->blocked_op == OP_READ && read_stream(ch, OP_READ))
		return;
	if (flush_out(ch) || ch->state != CH_OPEN)
		return;
	if (read_stream(ch, OP_READ_ERR) || ch->state != CH_OPEN)
		return;
	if (!ch->paused && read_stream(ch, OP_READ))
		return;
	/* libssh2_channel_eof() is 0 while data for us is still queued. */
	if (ch->state == CH_OPEN && libssh2_channel_eof(ch->ch))
		chan_end(ch, 0);
}

/* EOF first: that alone makes the agent stop its transcoder. */
static void
step_close(struct cpx_ssh_chan *ch)
{
	int rc;

	if (ch->flush && flush_out(ch))
		return;
	if (ch->flush && ch->out.len > 0)
		return;
	if (!ch->eof_sent) {
		rc = libssh2_channel_send_eof(ch->ch);
		if (note_send(ch, OP_STATE, rc) || rc == LIBSSH2_ERROR_EAGAIN)
			return;
		ch->eof_sent = 1;
	}
	rc = libssh2_channel_close(ch->ch);
	if (note_send(ch, OP_STATE, rc) || rc == LIBSSH2_ERROR_EAGAIN)
		return;
	rc = libssh2_channel_free(ch->ch);
	if (note_send(ch, OP_STATE, rc) || rc == LIBSSH2_ERROR_EAGAIN)
		return;
	ch->ch = NULL;
	ch->state = CH_DONE;
}

static void
chan_drive(struct cpx_ssh_chan *ch)
{
	if (ch->state == CH_OPENING)
		step_open(ch);
	if (ch->state == CH_EXEC)
		step_exec(ch);
	if (ch->state == CH_OPEN)
		step_io(ch);
	if (ch->state == CH_CLOSING)
		step_close(ch);
}

static int
conn_usable(const struct cpx_ssh_conn *c)
{
	return c->state == SSH_READY && !c->user_closed;
}

/* One pass over every channel, the owner of a half-sent packet first. */
void
ssh_chans_drive(struct cpx_ssh_conn *c)
{
	struct cpx_ssh_chan *ch, *next;

	if (c->tx_owner != NULL) {
		chan_drive(c->tx_owner);
		if (c->tx_owner != NULL || !conn_usable(c))
			return;
	}
	for (ch = c->chans; ch != NULL && conn_usable(c); ch = next) {
		next = ch->next;
		chan_drive(ch);
		if (ch->state == CH_DONE)
			chan_free(ch);
		if (c->tx_owner != NULL)
			return;
	}
}

int
ssh_chans_want_read(struct cpx_ssh_conn *c)
{
	const struct cpx_ssh_chan *ch;

	for (ch = c->chans; ch != NULL; ch = ch->next) {
		if (ch->state != CH_OPEN || !ch->paused)
			return 1;
	}
	return 0;
}

/* The session is gone: every channel ends, and all of them are freed. */
void
ssh_chans_end_all(struct cpx_ssh_conn *c, int status, const char *cause)
{
	struct cpx_ssh_chan *ch;

	while ((ch = c->chans) != NULL) {
		c->chans = ch->next;
		ch->next = NULL;
		ch->ch = NULL;	/* freed with the session */
		if (!ch->user_closed) {
			ch->user_closed = 1;
			if (ch->state == CH_OPEN)
				ch->cbs.end(ch, status, ch->arg);
			else if (ch->state < CH_OPEN)
				ch->cbs.opened(ch, status, cause, ch->arg);
		}
		c->tx_owner = NULL;
		cpx_buf_free(&ch->out);
		cpx_buf_free(&ch->errline);
		free(ch->command);
		free(ch);
	}
}

/*
 * A channel that cannot open in time means a stuck session. Closing has
 * no bound: sshd answers a close only once the agent has exited, and the
 * EOF that makes it exit has already gone out.
 */
void
ssh_chans_check_deadlines(struct cpx_ssh_conn *c, uint64_t now)
{
	struct cpx_ssh_chan *ch;

	for (ch = c->chans; ch != NULL; ch = ch->next) {
		if (ch->state < CH_OPEN && now > ch->deadline) {
			ssh_fail(c, -ETIMEDOUT, "%s: a channel did not open in "
			    "%u ms", c->ep.name, c->opts.connect_timeout_ms);
			return;
		}
	}
}

struct cpx_ssh_chan *
cpx_ssh_chan_open(struct cpx_ssh_conn *c, const char *command,
    const struct cpx_ssh_chan_cbs *cbs, void *arg)
{
	struct cpx_ssh_chan *ch;

	if (!conn_usable(c))
		return NULL;
	ch = cpx_xcalloc(1, sizeof *ch);
	ch->conn = c;
	ch->command = cpx_xstrdup(command);
	ch->cbs = *cbs;
	ch->arg = arg;
	ch->state = CH_OPENING;
	ch->deadline = cpx_now_ms() + c->opts.connect_timeout_ms;
	cpx_buf_init(&ch->out);
	cpx_buf_init(&ch->errline);
	ch->next = c->chans;
	c->chans = ch;
	ssh_kick(c);
	return ch;
}

/*
 * Queues bytes and tries to send them at once, so a frame leaves in this
 * loop iteration; whatever does not fit waits for the socket.
 */
void
cpx_ssh_chan_write(struct cpx_ssh_chan *ch, const void *p, size_t n)
{
	struct cpx_ssh_conn *c = ch->conn;
	ssize_t w = 0;

	if (ch->user_closed || n == 0)
		return;
	if (ch->state == CH_OPEN && ch->out.len == 0 && c->tx_owner == NULL &&
	    !c->driving && conn_usable(c)) {
		w = libssh2_channel_write(ch->ch, p, n);
		if (note_send(ch, OP_WRITE, w) || w < 0)
			w = 0;
	}
	if ((size_t)w < n) {
		cpx_buf_add(&ch->out, (const char *)p + w, n - (size_t)w);
		ch->want_drain = 1;
	}
	ssh_kick(c);
}

size_t
cpx_ssh_chan_pending(const struct cpx_ssh_chan *ch)
{
	return ch->out.len - ch->out_off;
}

void
cpx_ssh_chan_pause(struct cpx_ssh_chan *ch, int paused)
{
	if (ch->paused == paused)
		return;
	ch->paused = paused;
	/* Data may already wait inside libssh2, with nothing on the socket. */
	ssh_kick(ch->conn);
}

void
cpx_ssh_chan_close(struct cpx_ssh_chan *ch, int flush)
{
	if (ch == NULL || ch->user_closed)
		return;
	ch->user_closed = 1;
	ch->flush = flush;
	if (ch->state == CH_OPEN) {
		ch->state = CH_CLOSING;
		ch->deadline = cpx_now_ms() + ch->conn->opts.connect_timeout_ms;
	}
	ssh_kick(ch->conn);
}
