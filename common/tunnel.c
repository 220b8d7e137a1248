/* tunnel.c — TCP connections carried as TUN_* frames over a job's link. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cpx-tunnel.h"

struct tun {
	struct cpx_tunnels *t;
	struct tun *next;
	uint32_t id;
	uv_tcp_t tcp;
	uv_connect_t connect;
	uv_shutdown_t shutdown;
	struct cpx_buf early;	/* data for PMS before the connect finished */
	int connected;
	int rd_eof;		/* our socket ended; EOF sent over the link */
	int peer_eof;		/* the far side ended; shut our socket's writes */
	int shut;
	int closing;
};

struct cpx_tunnels {
	uv_loop_t *loop;
	struct cpx_link *link;	/* NULL once freed */
	struct tun *list;
	size_t count;
	unsigned max;
	uint32_t next_id;
};

struct tun_write {
	uv_write_t req;
	struct cpx_buf data;
};

static void
maybe_free(struct cpx_tunnels *t)
{
	if (t->link == NULL && t->list == NULL)
		free(t);
}

static void
on_closed(uv_handle_t *h)
{
	struct tun *tn = h->data, **pp;
	struct cpx_tunnels *t = tn->t;

	for (pp = &t->list; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == tn) {
			*pp = tn->next;
			break;
		}
	}
	cpx_buf_free(&tn->early);
	free(tn);
	maybe_free(t);
}

static void
tun_close(struct tun *tn, int announce)
{
	if (tn->closing)
		return;
	tn->closing = 1;
	tn->t->count--;
	if (announce && tn->t->link != NULL)
		cpx_link_send(tn->t->link, CPX_MSG_TUN_CLOSE, tn->id, NULL, 0);
	uv_close((uv_handle_t *)&tn->tcp, on_closed);
}

static void
maybe_finish(struct tun *tn)
{
	if (tn->rd_eof && tn->shut)
		tun_close(tn, 1);
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static __thread char chunk[64 * 1024];

	*buf = uv_buf_init(chunk, sizeof chunk);
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct tun *tn = s->data;

	if (tn->closing || tn->t->link == NULL)
		return;
	if (n > 0) {
		cpx_link_send(tn->t->link, CPX_MSG_TUN_DATA, tn->id, buf->base,
		    (size_t)n);
	} else if (n == UV_EOF) {
		uv_read_stop(s);
		tn->rd_eof = 1;
		cpx_link_send(tn->t->link, CPX_MSG_TUN_DATA, tn->id, NULL, 0);
		maybe_finish(tn);
	} else if (n < 0) {
		tun_close(tn, 1);
	}
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
	struct tun *tn = req->data;

	if (tn->closing)
		return;
	tn->shut = 1;
	if (status < 0)
		tun_close(tn, 1);
	else
		maybe_finish(tn);
}

static void
shut_writes(struct tun *tn)
{
	tn->shutdown.data = tn;
	if (uv_shutdown(&tn->shutdown, (uv_stream_t *)&tn->tcp,
	    on_shutdown) != 0)
		tun_close(tn, 1);
}

static void
on_written(uv_write_t *req, int status)
{
	struct tun_write *w = (struct tun_write *)req;
	struct tun *tn = req->data;

	cpx_buf_free(&w->data);
	free(w);
	if (status < 0 && status != UV_ECANCELED && !tn->closing)
		tun_close(tn, 1);
}

static void
tun_write(struct tun *tn, const void *p, size_t n)
{
	struct tun_write *w = cpx_xmalloc(sizeof *w);
	uv_buf_t buf;

	cpx_buf_init(&w->data);
	cpx_buf_add(&w->data, p, n);
	w->req.data = tn;
	buf = uv_buf_init((char *)w->data.data, (unsigned)n);
	if (uv_write(&w->req, (uv_stream_t *)&tn->tcp, &buf, 1,
	    on_written) != 0) {
		cpx_buf_free(&w->data);
		free(w);
		tun_close(tn, 1);
	}
}

static struct tun *
tun_new(struct cpx_tunnels *t, uint32_t id)
{
	struct tun *tn = cpx_xcalloc(1, sizeof *tn);

	tn->t = t;
	tn->id = id;
	cpx_buf_init(&tn->early);
	uv_tcp_init(t->loop, &tn->tcp);
	tn->tcp.data = tn;
	tn->next = t->list;
	t->list = tn;
	t->count++;
	return tn;
}

static struct tun *
tun_find(struct cpx_tunnels *t, uint32_t id)
{
	struct tun *tn;

	for (tn = t->list; tn != NULL; tn = tn->next) {
		if (tn->id == id && !tn->closing)
			return tn;
	}
	return NULL;
}

struct cpx_tunnels *
cpx_tunnels_new(uv_loop_t *loop, struct cpx_link *link, unsigned max)
{
	struct cpx_tunnels *t = cpx_xcalloc(1, sizeof *t);

	t->loop = loop;
	t->link = link;
	t->max = max;
	t->next_id = 1;
	return t;
}

int
cpx_tunnels_accept(struct cpx_tunnels *t, uv_stream_t *server)
{
	struct tun *tn = tun_new(t, t->next_id++);
	int error;

	if ((error = uv_accept(server, (uv_stream_t *)&tn->tcp)) != 0 ||
	    t->count > t->max) {
		if (error == 0)
			cpx_warn("refusing a callback connection: %u open",
			    t->max);
		tun_close(tn, 0);
		return error != 0 ? error : -EMFILE;
	}
	uv_tcp_nodelay(&tn->tcp, 1);
	tn->connected = 1;
	cpx_link_send(t->link, CPX_MSG_TUN_OPEN, tn->id, NULL, 0);
	uv_read_start((uv_stream_t *)&tn->tcp, on_alloc, on_read);
	return 0;
}

static void
on_connect(uv_connect_t *req, int status)
{
	struct tun *tn = req->data;

	if (tn->closing)
		return;
	if (status < 0) {
		cpx_warn("callback tunnel %u: cannot reach PMS: %s", tn->id,
		    uv_strerror(status));
		tun_close(tn, 1);
		return;
	}
	uv_tcp_nodelay(&tn->tcp, 1);
	tn->connected = 1;
	if (tn->early.len > 0)
		tun_write(tn, tn->early.data, tn->early.len);
	cpx_buf_free(&tn->early);
	if (tn->peer_eof && !tn->closing)
		shut_writes(tn);
	if (!tn->closing)
		uv_read_start((uv_stream_t *)&tn->tcp, on_alloc, on_read);
}

void
cpx_tunnels_connect(struct cpx_tunnels *t, uint32_t id,
    const struct sockaddr *addr)
{
	struct tun *tn;

	if (tun_find(t, id) != NULL || t->count >= t->max) {
		cpx_link_send(t->link, CPX_MSG_TUN_CLOSE, id, NULL, 0);
		return;
	}
	tn = tun_new(t, id);
	tn->connect.data = tn;
	if (uv_tcp_connect(&tn->connect, &tn->tcp, addr, on_connect) != 0)
		tun_close(tn, 1);
}

void
cpx_tunnels_frame(struct cpx_tunnels *t, const struct cpx_frame *f)
{
	struct tun *tn = tun_find(t, f->id);

	/* Frames for a tunnel that just closed on our side cross the close. */
	if (tn == NULL)
		return;
	if (f->type == CPX_MSG_TUN_CLOSE) {
		tun_close(tn, 0);
	} else if (f->type == CPX_MSG_TUN_DATA && f->len > 0) {
		if (tn->connected)
			tun_write(tn, f->payload, f->len);
		else
			cpx_buf_add(&tn->early, f->payload, f->len);
	} else if (f->type == CPX_MSG_TUN_DATA && !tn->peer_eof) {
		tn->peer_eof = 1;
		if (tn->connected)
			shut_writes(tn);
	}
}

size_t
cpx_tunnels_count(const struct cpx_tunnels *t)
{
	return t->count;
}

void
cpx_tunnels_free(struct cpx_tunnels *t)
{
	struct tun *tn;

	if (t == NULL)
		return;
	t->link = NULL;
	for (tn = t->list; tn != NULL; tn = tn->next)
		tun_close(tn, 0);
	maybe_free(t);
}
