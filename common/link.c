/* link.c — frames over a byte transport; the libuv stream transport. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "cpx-link.h"

void
cpx_link_init(struct cpx_link *link, const struct cpx_link_ops *ops,
    void *backend, cpx_link_frame_cb on_frame, cpx_link_close_cb on_close,
    void *arg)
{
	memset(link, 0, sizeof *link);
	link->ops = ops;
	link->backend = backend;
	link->on_frame = on_frame;
	link->on_close = on_close;
	link->arg = arg;
	cpx_buf_init(&link->in);
}

void
cpx_link_send(struct cpx_link *link, uint8_t type, uint32_t id,
    const void *payload, size_t len)
{
	struct cpx_buf out;

	if (link->closed)
		return;
	cpx_buf_init(&out);
	cpx_frame_put(&out, type, id, payload, len);
	link->ops->write(link, &out);
}

/*
 * Sends whole frames already encoded in `frames` (cpx_frame_begin/end) and
 * takes the buffer over: no copy of a large payload on its way out.
 */
void
cpx_link_send_frames(struct cpx_link *link, struct cpx_buf *frames)
{
	if (link->closed || frames->len == 0) {
		cpx_buf_free(frames);
		return;
	}
	link->ops->write(link, frames);
	cpx_buf_init(frames);
}

/* Moves len bytes out of a pipe to the end of b; 0, or -EIO. */
static int
take_from_pipe(struct cpx_buf *b, int pipe_fd, size_t len)
{
	ssize_t n;

	cpx_buf_reserve(b, len);
	while (len > 0) {
		n = read(pipe_fd, b->data + b->len, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;	/* the bytes were there: cannot be */
		b->len += (size_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* Whether the transport takes spliced bytes (cpx_link_send_spliced). */
int
cpx_link_can_splice(struct cpx_link *link)
{
	return link != NULL && !link->closed && link->ops->splice != NULL;
}

/*
 * Sends frames in `head` whose last len bytes wait in pipe_fd (a pipe of
 * the caller's, holding exactly them): moved into the transport without a
 * copy where it can, else copied after head. The pipe is empty after.
 */
void
cpx_link_send_spliced(struct cpx_link *link, struct cpx_buf *head,
    int pipe_fd, size_t len)
{
	if (cpx_link_can_splice(link) &&
	    link->ops->splice(link, head, pipe_fd, len) == 0) {
		cpx_buf_free(head);
		return;
	}
	if (take_from_pipe(head, pipe_fd, len) != 0) {
		cpx_buf_free(head);
		cpx_link_lost(link, -EIO);
		return;
	}
	cpx_link_send_frames(link, head);
}

/* Sends a frame whose payload is `payload`, then empties it. */
void
cpx_link_send_buf(struct cpx_link *link, uint8_t type, uint32_t id,
    struct cpx_buf *payload)
{
	cpx_link_send(link, type, id, payload->data, payload->len);
	cpx_buf_free(payload);
}

/* Bytes written but not yet accepted by the transport. */
size_t
cpx_link_pending(struct cpx_link *link)
{
	return link->closed ? 0 : link->ops->pending(link);
}

void
cpx_link_pause(struct cpx_link *link, int paused)
{
	if (!link->closed)
		link->ops->pause(link, paused);
}

/*
 * Closes the link from our side: queued frames are still flushed, no
 * callback runs any more, and the link is freed by its backend. Safe to
 * call from inside a frame callback.
 */
void
cpx_link_close(struct cpx_link *link)
{
	if (link->closed)
		return;
	link->closed = 1;
	link->on_frame = NULL;
	link->on_close = NULL;
	link->on_drain = NULL;
	if (link->delivering)
		link->free_pending = 1;
	else
		link->ops->close(link);
}

/* The transport ended (error 0: clean EOF). Runs on_close once, then closes. */
void
cpx_link_lost(struct cpx_link *link, int error)
{
	cpx_link_close_cb cb = link->on_close;
	void *arg = link->arg;

	if (link->closed)
		return;
	link->on_close = NULL;
	link->delivering++;
	if (cb != NULL)
		cb(link, error, arg);
	link->delivering--;
	if (!link->closed) {
		/* A backend may free the link right here: touch it no more. */
		cpx_link_close(link);
		return;
	}
	if (link->free_pending && link->delivering == 0) {
		link->free_pending = 0;
		link->ops->close(link);
	}
}

/* Backends call this when their write queue has emptied. */
void
cpx_link_drained(struct cpx_link *link)
{
	if (!link->closed && link->on_drain != NULL)
		link->on_drain(link, link->arg);
}

/* Delivers every whole frame in the input buffer. */
static void
deliver(struct cpx_link *link)
{
	struct cpx_frame f;
	size_t used, off = 0;
	int error = 0;

	link->delivering++;
	while (!link->closed) {
		error = cpx_frame_next(link->in.data + off, link->in.len - off,
		    &f, &used);
		if (error != 0)
			break;
		off += used;
		if (link->on_frame != NULL)
			link->on_frame(link, &f, link->arg);
		if (link->in.data == NULL) {
			off = 0;	/* taken with the frame, its last bytes */
			break;
		}
	}
	link->delivering--;
	cpx_buf_consume(&link->in, off);
	if (link->free_pending && link->delivering == 0) {
		link->free_pending = 0;
		link->ops->close(link);
		return;
	}
	if (error != 0 && error != -EAGAIN && !link->closed) {
		cpx_warn("dropping link: %s frame",
		    error == -EMSGSIZE ? "oversized" : "malformed");
		cpx_link_lost(link, error);
	}
}

/*
 * From a frame callback: takes over the input buffer when frame f is its
 * last bytes and most of it (uvlink reads a large frame into a buffer
 * that ends with it). Returns the buffer, for free() once f's bytes are
 * no longer needed: pointers into f stay valid. NULL when f shares its
 * buffer with more than a little else; the buffer stays the link's, and
 * what the caller keeps it copies.
 */
void *
cpx_link_take_frame(struct cpx_link *link, const struct cpx_frame *f)
{
	struct cpx_buf *in = &link->in;
	size_t before;
	void *mem;

	if (!link->delivering || in->data == NULL ||
	    f->len + CPX_FRAME_HDR > in->len ||
	    f->payload + f->len != in->data + in->len)
		return NULL;
	before = in->len - f->len - CPX_FRAME_HDR;
	if (before > f->len / 8)
		return NULL;
	mem = in->data;
	link->taken = in->len;
	cpx_buf_init(in);
	return mem;
}

/* Backends call this with what they read. */
void
cpx_link_input(struct cpx_link *link, const void *data, size_t len)
{
	if (link->closed)
		return;
	cpx_buf_add(&link->in, data, len);
	deliver(link);
}

/* The libuv stream transport: one stream to read, one to write (may be one). */

struct uvlink {
	struct cpx_link link;
	uv_stream_t *in;
	uv_stream_t *out;
	int owned;		/* handles allocated here, from file descriptors */
	int handles_open;
	uv_shutdown_t shutdown;
};

#define UVLINK_READ (256 * 1024)	/* room offered to each read */
#define UVLINK_OWN_FRAME (64 * 1024)	/* frames read into their own buffer */

struct uvwrite {
	uv_write_t req;
	struct cpx_buf data;
};

static void
uvlink_handle_closed(uv_handle_t *h)
{
	struct uvlink *ul = h->data;

	if (ul->owned)
		free(h);
	if (--ul->handles_open == 0) {
		cpx_buf_free(&ul->link.in);
		free(ul);
	}
}

static void
uvlink_close_handles(struct uvlink *ul)
{
	ul->handles_open = (ul->in != ul->out) ? 2 : 1;
	uv_close((uv_handle_t *)ul->in, uvlink_handle_closed);
	if (ul->in != ul->out)
		uv_close((uv_handle_t *)ul->out, uvlink_handle_closed);
}

static void
uvlink_on_shutdown(uv_shutdown_t *req, int status)
{
	uvlink_close_handles(req->data);
}

static void
uvlink_close(struct cpx_link *link)
{
	struct uvlink *ul = link->backend;

	uv_read_stop(ul->in);
	ul->shutdown.data = ul;
	/* Flush what is queued (an EXIT, an ERROR) before closing. */
	if (uv_is_writable(ul->out) &&
	    uv_shutdown(&ul->shutdown, ul->out, uvlink_on_shutdown) == 0)
		return;
	uvlink_close_handles(ul);
}

static void
uvlink_on_write(uv_write_t *req, int status)
{
	struct uvwrite *w = (struct uvwrite *)req;
	struct uvlink *ul = req->data;

	cpx_buf_free(&w->data);
	free(w);
	if (status < 0 && status != UV_ECANCELED)
		cpx_link_lost(&ul->link, status);
	else if (status == 0 && ul->out->write_queue_size == 0)
		cpx_link_drained(&ul->link);
}

static void
uvlink_write(struct cpx_link *link, struct cpx_buf *data)
{
	struct uvlink *ul = link->backend;
	struct uvwrite *w = cpx_xmalloc(sizeof *w);
	uv_buf_t buf;
	int error;

	w->data = *data;
	cpx_buf_init(data);
	w->req.data = ul;
	buf = uv_buf_init((char *)w->data.data, (unsigned)w->data.len);
	error = uv_write(&w->req, ul->out, &buf, 1, uvlink_on_write);
	if (error != 0) {
		cpx_buf_free(&w->data);
		free(w);
		cpx_link_lost(link, error);
	}
}

/*
 * After a write or splice of n into fd: whether to try again, waiting
 * until fd takes bytes (until `deadline`, ms) if it was full. An empty
 * pipe_fd says EAGAIN too: that is no reason to wait.
 */
static int
may_retry(int fd, int pipe_fd, ssize_t n, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	uint64_t now = uv_hrtime() / 1000000;
	int queued = 0;

	if (n < 0 && errno == EINTR)
		return 1;
	if (n >= 0 || errno != EAGAIN || now >= deadline ||
	    ioctl(pipe_fd, FIONREAD, &queued) != 0 || queued == 0)
		return 0;
	do {
		n = poll(&p, 1, (int)(deadline - now));
	} while (n < 0 && errno == EINTR);
	return n > 0;
}

/*
 * Only with nothing queued (the bytes must go out in order): head written
 * and the pipe spliced straight into the stream's descriptor, waiting for
 * the reader while it takes them (up to SPLICE_WAIT_MS: waiting costs
 * nothing, where queueing would copy the bytes out of the pipe). After
 * that, the rest (head's and the pipe's) is queued as a copy. -1: nothing
 * was written, the caller queues it all.
 */
#define SPLICE_WAIT_MS 200

static int
uvlink_splice(struct cpx_link *link, struct cpx_buf *head, int pipe_fd,
    size_t len)
{
	struct uvlink *ul = link->backend;
	uint64_t deadline = uv_hrtime() / 1000000 + SPLICE_WAIT_MS;
	uv_os_fd_t fd;
	size_t done = 0;
	ssize_t n;

	if (ul->out->write_queue_size > 0 ||
	    uv_fileno((uv_handle_t *)ul->out, &fd) != 0)
		return -1;
	while (done < head->len || len > 0) {
		if (done < head->len)
			n = write(fd, head->data + done, head->len - done);
		else
			n = splice(pipe_fd, NULL, fd, NULL, len,
			    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0 && done < head->len)
			done += (size_t)n;
		else if (n > 0)
			len -= (size_t)n;
		else if (!may_retry(fd, pipe_fd, n, deadline))
			break;
	}
	if (done == 0)
		return -1;
	if (done == head->len && len == 0)
		return 0;
	cpx_buf_consume(head, done);
	if (take_from_pipe(head, pipe_fd, len) != 0)
		cpx_link_lost(link, -EIO);
	else
		uvlink_write(link, head);
	return 0;
}

static size_t
uvlink_pending(struct cpx_link *link)
{
	struct uvlink *ul = link->backend;

	return ul->out->write_queue_size;
}

/*
 * Where the large frame the input buffer starts with ends (its first
 * bytes are always a frame's: deliver() moved them there); 0 if it does
 * not start with one.
 */
static size_t
large_frame_end(const struct cpx_buf *in)
{
	struct cpx_reader r;
	size_t end;

	if (in->len < CPX_FRAME_HDR)
		return 0;
	cpx_reader_init(&r, in->data, in->len);
	end = CPX_FRAME_HDR + (size_t)cpx_rd_u32(&r);
	return end >= UVLINK_OWN_FRAME && end <= CPX_FRAME_HDR +
	    CPX_FRAME_MAX ? end : 0;
}

/*
 * Reads land in the link's input buffer itself: no copy on the way. The
 * rest of a large frame is read into a buffer that ends with it, so its
 * receiver can keep the frame without copying it (cpx_link_take_frame).
 */
static void
uvlink_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct cpx_link *link = &((struct uvlink *)h->data)->link;
	struct cpx_buf *in = &link->in;
	size_t end = large_frame_end(in);

	if (in->data == NULL && link->taken > 0)
		cpx_buf_reserve(in, link->taken);	/* the next one alike */
	else if (end <= in->len)
		cpx_buf_reserve(in, UVLINK_READ);
	else if (in->cap != end + 1) {
		in->data = cpx_xrealloc(in->data, end + 1);
		in->cap = end + 1;	/* and the '\0' */
	}
	*buf = uv_buf_init((char *)in->data + in->len,
	    (unsigned)(in->cap - in->len - 1));	/* room for the '\0' */
}

static void
uvlink_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct uvlink *ul = s->data;
	struct cpx_buf *in = &ul->link.in;

	if (n > 0 && !ul->link.closed) {
		in->len += (size_t)n;
		in->data[in->len] = '\0';
		deliver(&ul->link);
	} else if (n == UV_EOF)
		cpx_link_lost(&ul->link, 0);
	else if (n < 0)
		cpx_link_lost(&ul->link, (int)n);
}

static void
uvlink_pause(struct cpx_link *link, int paused)
{
	struct uvlink *ul = link->backend;

	if (paused)
		uv_read_stop(ul->in);
	else
		uv_read_start(ul->in, uvlink_alloc, uvlink_on_read);
}

static const struct cpx_link_ops uvlink_ops = {
	.write = uvlink_write,
	.pending = uvlink_pending,
	.pause = uvlink_pause,
	.close = uvlink_close,
	.splice = uvlink_splice,
};

/* A link over already initialised libuv streams; the link closes them. */
struct cpx_link *
cpx_link_uv_new(uv_stream_t *in, uv_stream_t *out,
    cpx_link_frame_cb on_frame, cpx_link_close_cb on_close, void *arg)
{
	struct uvlink *ul = cpx_xcalloc(1, sizeof *ul);

	cpx_link_init(&ul->link, &uvlink_ops, ul, on_frame, on_close, arg);
	ul->in = in;
	ul->out = out;
	in->data = out->data = ul;
	uv_read_start(in, uvlink_alloc, uvlink_on_read);
	return &ul->link;
}

static uv_stream_t *
open_fd_stream(uv_loop_t *loop, int fd)
{
	uv_pipe_t *p = cpx_xmalloc(sizeof *p);

	uv_pipe_init(loop, p, 0);
	if (uv_pipe_open(p, fd) != 0) {
		free(p);
		return NULL;
	}
	return (uv_stream_t *)p;
}

/*
 * A link over file descriptors (pipes or sockets), e.g. stdin/stdout of
 * an sshd forced command. in_fd may equal out_fd. NULL when unusable.
 */
struct cpx_link *
cpx_link_stream_new(uv_loop_t *loop, int in_fd, int out_fd,
    cpx_link_frame_cb on_frame, cpx_link_close_cb on_close, void *arg)
{
	uv_stream_t *in = open_fd_stream(loop, in_fd), *out;
	struct cpx_link *link;

	if (in == NULL)
		return NULL;
	out = in_fd == out_fd ? in : open_fd_stream(loop, out_fd);
	if (out == NULL) {
		uv_close((uv_handle_t *)in, (uv_close_cb)free);
		return NULL;
	}
	link = cpx_link_uv_new(in, out, on_frame, on_close, arg);
	((struct uvlink *)link->backend)->owned = 1;
	return link;
}
