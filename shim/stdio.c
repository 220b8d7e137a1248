/* stdio.c — the shim's stdin, stdout and stderr on the event loop. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim.h"

struct sink_write {
	uv_write_t req;
	struct cpx_buf data;
};

static void
on_sink_written(uv_write_t *req, int status)
{
	struct sink_write *w = (struct sink_write *)req;
	struct shim_sink *s = req->data;

	cpx_buf_free(&w->data);
	free(w);
	if (s->h.stream.write_queue_size > 0)
		return;
	if (s->closing)
		uv_close((uv_handle_t *)&s->h.stream, NULL);
	else if (s->open && s->drained != NULL)
		s->drained(s->arg);
}

/*
 * Pipes (what PMS gives its transcoder) are written asynchronously, so a
 * slow reader never stalls the loop; anything else gets blocking writes.
 */
void
shim_sink_open(struct shim_sink *s, uv_loop_t *loop, int fd,
    void (*drained)(void *), void *arg)
{
	memset(s, 0, sizeof *s);
	s->fd = fd;
	s->drained = drained;
	s->arg = arg;
	s->open = 1;
	if (uv_guess_handle(fd) != UV_NAMED_PIPE)
		return;
	uv_pipe_init(loop, &s->h.pipe, 0);
	if (uv_pipe_open(&s->h.pipe, fd) != 0) {
		uv_close((uv_handle_t *)&s->h.pipe, NULL);
		return;
	}
	s->h.stream.data = s;
	s->is_stream = 1;
}

void
shim_sink_write(struct shim_sink *s, const void *p, size_t n)
{
	struct sink_write *w;
	uv_buf_t buf;

	if (!s->open || n == 0)
		return;
	if (!s->is_stream) {
		(void)cpx_write_all(s->fd, p, n);
		return;
	}
	w = cpx_xmalloc(sizeof *w);
	cpx_buf_init(&w->data);
	cpx_buf_add(&w->data, p, n);
	w->req.data = s;
	buf = uv_buf_init((char *)w->data.data, (unsigned)n);
	if (uv_write(&w->req, &s->h.stream, &buf, 1, on_sink_written) != 0) {
		cpx_buf_free(&w->data);
		free(w);
	}
}

size_t
shim_sink_queued(const struct shim_sink *s)
{
	return s->is_stream && s->open ? s->h.stream.write_queue_size : 0;
}

/* Queued output is still written before the handle goes. */
void
shim_sink_close(struct shim_sink *s)
{
	if (!s->open)
		return;
	s->open = 0;
	if (!s->is_stream)
		return;
	if (s->h.stream.write_queue_size > 0)
		s->closing = 1;
	else
		uv_close((uv_handle_t *)&s->h.stream, NULL);
}

static void
on_src_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static __thread char chunk[64 * 1024];

	*buf = uv_buf_init(chunk, sizeof chunk);
}

static void
src_end(struct shim_source *s)
{
	void (*cb)(void *, const void *, size_t) = s->data;

	shim_source_close(s);
	cb(s->arg, NULL, 0);
}

static void
on_src_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct shim_source *s = st->data;

	if (n > 0)
		s->data(s->arg, buf->base, (size_t)n);
	else if (n < 0)
		src_end(s);
}

static void
on_src_idle(uv_idle_t *h)
{
	struct shim_source *s = h->data;
	char chunk[64 * 1024];
	ssize_t n = read(s->fd, chunk, sizeof chunk);

	if (n > 0)
		s->data(s->arg, chunk, (size_t)n);
	else if (n == 0 || errno != EINTR)
		src_end(s);
}

/*
 * stdin: pipes, sockets and terminals are read on the loop; files and
 * devices (/dev/null) with plain reads, one chunk per loop iteration.
 * A closed descriptor reads as an immediate EOF.
 */
void
shim_source_open(struct shim_source *s, uv_loop_t *loop, int fd,
    void (*data)(void *, const void *, size_t), void *arg)
{
	uv_handle_type t = uv_guess_handle(fd);
	int error = -1;

	memset(s, 0, sizeof *s);
	s->fd = fd;
	s->data = data;
	s->arg = arg;
	s->open = 1;
	if (t == UV_NAMED_PIPE) {
		uv_pipe_init(loop, &s->h.pipe, 0);
		error = uv_pipe_open(&s->h.pipe, fd);
	} else if (t == UV_TTY) {
		error = uv_tty_init(loop, &s->h.tty, fd, 1);
	}
	if (error == 0) {
		s->is_stream = 1;
		s->h.stream.data = s;
	} else if (t == UV_NAMED_PIPE) {
		uv_close((uv_handle_t *)&s->h.pipe, NULL);
	}
	uv_idle_init(loop, &s->idle);
	s->idle.data = s;
	shim_source_pause(s, 0);
}

void
shim_source_pause(struct shim_source *s, int paused)
{
	if (!s->open)
		return;
	s->paused = paused;
	if (s->is_stream && paused)
		uv_read_stop(&s->h.stream);
	else if (s->is_stream)
		uv_read_start(&s->h.stream, on_src_alloc, on_src_read);
	else if (paused)
		uv_idle_stop(&s->idle);
	else
		uv_idle_start(&s->idle, on_src_idle);
}

void
shim_source_close(struct shim_source *s)
{
	if (!s->open)
		return;
	s->open = 0;
	if (s->is_stream)
		uv_close((uv_handle_t *)&s->h.stream, NULL);
	uv_close((uv_handle_t *)&s->idle, NULL);
}
