/* job_io.c — the transcoder's pipes, stdin, signals and callback listener. */

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "job.h"

#define OUT_HIGH_WATER (1024 * 1024)
#define JOB_MAX_TUNNELS 64

struct in_write {
	uv_write_t req;
	struct cpx_buf data;
};

static void
on_callback_conn(uv_stream_t *server, int status)
{
	struct job *j = server->data;

	if (status == 0 && j->tunnels != NULL)
		cpx_tunnels_accept(j->tunnels, server);
}

/* The per-job loopback listener the callback URLs are rewritten to. */
int
job_listen(struct job *j, char **cause)
{
	struct sockaddr_in sa;
	int len = sizeof sa, error;

	uv_tcp_init(j->loop, &j->listener);
	j->listener.data = j;
	j->handles++;
	j->listening = 1;
	uv_ip4_addr("127.0.0.1", 0, &sa);
	if ((error = uv_tcp_bind(&j->listener, (struct sockaddr *)&sa, 0)) ||
	    (error = uv_listen((uv_stream_t *)&j->listener, 64,
	    on_callback_conn)) ||
	    (error = uv_tcp_getsockname(&j->listener, (struct sockaddr *)&sa,
	    &len))) {
		cpx_set_cause(cause, "callback listener: %s", uv_strerror(error));
		return error;
	}
	j->callback_port = ntohs(sa.sin_port);
	j->tunnels = cpx_tunnels_new(j->loop, j->link, JOB_MAX_TUNNELS);
	return 0;
}

static void
on_out_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static __thread char chunk[64 * 1024];

	*buf = uv_buf_init(chunk, sizeof chunk);
}

static void
set_out_reading(struct job *j, int on);

static void
on_link_drain(struct cpx_link *link, void *arg)
{
	struct job *j = arg;

	link->on_drain = NULL;
	set_out_reading(j, 1);
}

static void on_out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/*
 * Output waits while the link is congested, so a shim (and PMS behind
 * it) that reads slowly blocks the transcoder, as a pipe would.
 */
static void
set_out_reading(struct job *j, int on)
{
	j->out_paused = !on;
	if (j->out_open)
		on ? uv_read_start((uv_stream_t *)&j->out, on_out_alloc,
		    on_out_read) : uv_read_stop((uv_stream_t *)&j->out);
	if (j->err_open)
		on ? uv_read_start((uv_stream_t *)&j->err, on_out_alloc,
		    on_out_read) : uv_read_stop((uv_stream_t *)&j->err);
}

static void
on_out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct job *j = s->data;
	int is_out = s == (uv_stream_t *)&j->out;

	if (n > 0 && j->link != NULL) {
		cpx_link_send(j->link, is_out ? CPX_MSG_STDOUT : CPX_MSG_STDERR,
		    0, buf->base, (size_t)n);
		if (cpx_link_pending(j->link) > OUT_HIGH_WATER) {
			set_out_reading(j, 0);
			j->link->on_drain = on_link_drain;
		}
		return;
	}
	if (n >= 0)
		return;
	if (is_out)
		j->out_open = 0;
	else
		j->err_open = 0;
	uv_close((uv_handle_t *)s, job_handle_closed);
	if (j->exited && !j->lost && !j->out_open && !j->err_open &&
	    !j->finished)
		job_send_exit(j);
}

static void
open_pipe(struct job *j, uv_pipe_t *p, int fd)
{
	uv_pipe_init(j->loop, p, 0);
	p->data = j;
	j->handles++;
	uv_pipe_open(p, fd);
}

static void
on_in_written(uv_write_t *req, int status)
{
	struct in_write *w = (struct in_write *)req;

	cpx_buf_free(&w->data);
	free(w);
}

static void
write_stdin(struct job *j, const void *p, size_t n)
{
	struct in_write *w;
	uv_buf_t buf;

	if (!j->in_open)
		return;
	w = cpx_xmalloc(sizeof *w);
	cpx_buf_init(&w->data);
	cpx_buf_add(&w->data, p, n);
	buf = uv_buf_init((char *)w->data.data, (unsigned)n);
	/* A transcoder that closed its stdin just loses the bytes. */
	if (uv_write(&w->req, (uv_stream_t *)&j->in, &buf, 1,
	    on_in_written) != 0) {
		cpx_buf_free(&w->data);
		free(w);
	}
}

static void
on_in_shutdown(uv_shutdown_t *req, int status)
{
	uv_handle_t *h = (uv_handle_t *)req->handle;

	free(req);
	if (!uv_is_closing(h))
		uv_close(h, job_handle_closed);
}

/* EOF for the transcoder once what is queued has been written. */
void
job_close_stdin(struct job *j)
{
	uv_shutdown_t *req;

	if (!j->in_open)
		return;
	j->in_open = 0;
	req = cpx_xmalloc(sizeof *req);
	if (uv_shutdown(req, (uv_stream_t *)&j->in, on_in_shutdown) != 0) {
		free(req);
		uv_close((uv_handle_t *)&j->in, job_handle_closed);
	}
}

int
job_start_io(struct job *j, const struct job_proc *p)
{
	int i;

	open_pipe(j, &j->in, p->in_fd);
	open_pipe(j, &j->out, p->out_fd);
	open_pipe(j, &j->err, p->err_fd);
	j->in_open = j->out_open = j->err_open = 1;
	set_out_reading(j, 1);
	if (j->early_stdin.len > 0)
		write_stdin(j, j->early_stdin.data, j->early_stdin.len);
	cpx_buf_free(&j->early_stdin);
	if (j->early_stdin_eof)
		job_close_stdin(j);
	for (i = 0; i < j->nearly_sigs; i++)
		job_signal(j, j->early_sigs[i]);
	return 0;
}

void
job_stdin(struct job *j, const struct cpx_frame *f)
{
	if (j->pid == 0) {
		if (f->len == 0)
			j->early_stdin_eof = 1;
		else if (j->early_stdin.len + f->len <= CPX_FRAME_MAX)
			cpx_buf_add(&j->early_stdin, f->payload, f->len);
		return;
	}
	if (f->len == 0)
		job_close_stdin(j);
	else
		write_stdin(j, f->payload, f->len);
}

/* PMS signals its transcoder, not a group: so do we. */
void
job_signal(struct job *j, int sig)
{
	if (!agent_signal_allowed(sig)) {
		cpx_warn("ignoring signal %d: not forwarded", sig);
		return;
	}
	if (j->pid == 0) {
		if (j->nearly_sigs < (int)CPX_ARRAY_SIZE(j->early_sigs))
			j->early_sigs[j->nearly_sigs++] = sig;
		return;
	}
	if (!j->exited)
		kill(j->pid, sig);
}

void
job_close_io(struct job *j)
{
	if (j->in_open) {
		j->in_open = 0;
		uv_close((uv_handle_t *)&j->in, job_handle_closed);
	}
	if (j->out_open) {
		j->out_open = 0;
		uv_close((uv_handle_t *)&j->out, job_handle_closed);
	}
	if (j->err_open) {
		j->err_open = 0;
		uv_close((uv_handle_t *)&j->err, job_handle_closed);
	}
}
