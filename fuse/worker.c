/* worker.c — one warm, pipelined file-service link per worker, with deadlines. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cfs.h"

/*
 * Every remote operation is a call: a FREQ sent on the worker's link and
 * answered by one FREPLY with the same id. Calls are pipelined (any number
 * in flight) and answered in order, so the oldest pending call is nearly
 * always the one a reply is for. Each call has a deadline; a link that
 * falls silent is declared lost after three keepalive periods, and a
 * worker that could not be reached fails new calls at once until its
 * retry time, so no PMS thread ever waits on a dead worker for long.
 */

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define IDLE_CLOSE_MS (5 * 60 * 1000)

struct cfs_call *
cfs_call_new(const char *worker, cfs_call_done done, void *arg)
{
	struct cfs_call *c = cpx_xcalloc(1, sizeof *c);

	c->worker = cpx_xstrdup(worker);
	c->done = done;
	c->arg = arg;
	cpx_buf_init(&c->req);
	return c;
}

void
cfs_call_free(struct cfs_call *c)
{
	free(c->worker);
	cpx_buf_free(&c->req);
	free(c);
}

void
cfs_call_finish(struct cfs *fs, struct cfs_call *c, int status, struct cpx_reader *r)
{
	if (c->done != NULL)
		c->done(fs, c, status, r);
	cfs_call_free(c);
}

/*
 * Lane threads, from a frame callback: keeps the len bytes at data, which
 * lie in frame f of link (NULL: no link). They stay where they are when
 * the link lets the frame's buffer go, else they are copied; *mem gets
 * what to free() when they are dropped.
 */
uint8_t *
cfs_keep_bytes(struct cpx_link *link, const struct cpx_frame *f,
    const uint8_t *data, size_t len, void **mem)
{
	if (link != NULL && (*mem = cpx_link_take_frame(link, f)) != NULL)
		return (uint8_t *)data;
	*mem = cpx_xmalloc(len > 0 ? len : 1);
	memcpy(*mem, data, len);
	return *mem;
}

static void
list_remove(struct cfs_worker *w, struct cfs_call *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->sent = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		w->sent_tail = c->prev;
	c->next = c->prev = NULL;
}

static void
send_call(struct cfs *fs, struct cfs_worker *w, struct cfs_call *c)
{
	if (++w->next_id == 0)
		w->next_id = 1;
	c->id = w->next_id;
	c->epoch = w->epoch;
	c->prev = w->sent_tail;
	c->next = NULL;
	if (w->sent_tail != NULL)
		w->sent_tail->next = c;
	else
		w->sent = c;
	w->sent_tail = c;
	cpx_link_send(w->link, CPX_MSG_FREQ, c->id, c->req.data, c->req.len);
	if (w->lane->index == 0)
		cpx_buf_free(&c->req);	/* others keep it, to resend on lane 0 */
}

static void
queue_call(struct cfs_worker *w, struct cfs_call *c)
{
	struct cfs_call **pp = &w->queued;

	while (*pp != NULL)
		pp = &(*pp)->next;
	c->next = NULL;
	*pp = c;
}

void
cfs_worker_dispatch(struct cfs *fs, struct cfs_worker *w, struct cfs_call *c)
{
	uint64_t now = uv_now(w->lane->loop);

	w->busy_at = now;
	if (c->same_epoch && (w->state != CFS_W_READY || w->epoch != c->epoch)) {
		/* A handle of a connection that has since been replaced. */
		cfs_call_finish(fs, c, -EIO, NULL);
		return;
	}
	switch (w->state) {
	case CFS_W_READY:
		send_call(fs, w, c);
		return;
	case CFS_W_BACKOFF:
		if (now < w->retry_at) {
			cfs_call_finish(fs, c, -EIO, NULL);
			return;
		}
		/* FALLTHROUGH */
	case CFS_W_IDLE:
		cfs_worker_kick(fs, w);
		/* FALLTHROUGH */
	default:
		queue_call(w, c);
		return;
	}
}

struct cfs_worker *
cfs_worker_find_in(struct cfs_lane *lane, const char *name)
{
	struct cfs_worker *w;

	for (w = lane->workers; w != NULL; w = w->next)
		if (strcmp(w->name, name) == 0)
			return w;
	return NULL;
}

/* Lane 0's worker of that name (routes, events). */
struct cfs_worker *
cfs_worker_find(struct cfs *fs, const char *name)
{
	return cfs_worker_find_in(&fs->lanes[0], name);
}

int
cfs_worker_ready(struct cfs *fs, const char *name)
{
	struct cfs_worker *w = cfs_worker_find(fs, name);

	return w != NULL && w->state == CFS_W_READY;
}

static int
same_endpoint(const struct cpx_endpoint *a, const struct cpx_endpoint *b)
{
	return strcmp(a->host, b->host) == 0 && a->port == b->port &&
	    strcmp(a->user, b->user) == 0 &&
	    strcmp(a->host_key, b->host_key) == 0;
}

static void fail_all(struct cfs *fs, struct cfs_worker *w);

static void
drop_link(struct cfs *fs, struct cfs_worker *w)
{
	if (w->link != NULL) {
		cpx_link_close(w->link);
		w->link = NULL;
	}
	if (w->state != CFS_W_IDLE && w->state != CFS_W_BACKOFF)
		fs->transport->disconnect(fs, w);
}

/* The worker of a route; its endpoint follows the newest route's. */
struct cfs_worker *
cfs_worker_get(struct cfs *fs, const struct cpx_endpoint *ep)
{
	return cfs_worker_get_in(&fs->lanes[0], ep);
}

struct cfs_worker *
cfs_worker_get_in(struct cfs_lane *lane, const struct cpx_endpoint *ep)
{
	struct cfs *fs = lane->fs;
	struct cfs_worker *w = cfs_worker_find_in(lane, ep->name);

	if (w != NULL && !same_endpoint(&w->ep, ep)) {
		cpx_info("worker %s: endpoint changed, reconnecting", w->name);
		drop_link(fs, w);
		w->state = CFS_W_IDLE;
		fail_all(fs, w);
		if (fs->transport->release != NULL)
			fs->transport->release(fs, w);
		cpx_endpoint_free(&w->ep);
		cpx_endpoint_copy(&w->ep, ep);
	}
	if (w == NULL) {
		w = cpx_xcalloc(1, sizeof *w);
		w->fs = fs;
		w->lane = lane;
		w->name = cpx_xstrdup(ep->name);
		cpx_endpoint_copy(&w->ep, ep);
		w->state = CFS_W_IDLE;
		w->backoff_ms = BACKOFF_MIN_MS;
		w->next = lane->workers;
		lane->workers = w;
	}
	w->busy_at = uv_now(lane->loop);
	return w;
}

void
cfs_worker_kick(struct cfs *fs, struct cfs_worker *w)
{
	if (w->state != CFS_W_IDLE && w->state != CFS_W_BACKOFF)
		return;
	cpx_debug("worker %s: lane %d connecting to %s:%d", w->name,
	    w->lane->index, w->ep.host, w->ep.port);
	w->state = CFS_W_CONNECTING;
	w->connect_started = uv_now(w->lane->loop);
	fs->transport->connect(fs, w);
}

void
cfs_worker_linked(struct cfs *fs, struct cfs_worker *w, struct cpx_link *link)
{
	struct cpx_buf b;

	w->link = link;
	w->state = CFS_W_HELLO;
	cpx_buf_init(&b);
	cpx_hello_put(&b, CPX_SERVICE_FILES, "clusterplex-fuse");
	cpx_link_send_buf(link, CPX_MSG_HELLO, 0, &b);
}

static void
fail_list(struct cfs *fs, struct cfs_call *c)
{
	struct cfs_call *next;

	for (; c != NULL; c = next) {
		next = c->next;
		c->next = c->prev = NULL;
		cfs_call_finish(fs, c, -EIO, NULL);
	}
}

static void
fail_all(struct cfs *fs, struct cfs_worker *w)
{
	struct cfs_call *sent = w->sent, *queued = w->queued, *c, *next;

	w->sent = w->sent_tail = w->queued = NULL;
	if (w->lane->index == 0 || w->lane->stopping) {
		fail_list(fs, sent);
		fail_list(fs, queued);
		return;
	}
	for (c = sent; c != NULL; c = next) {
		next = c->next;
		cfs_lane_hand_back(fs, c);
	}
	for (c = queued; c != NULL; c = next) {
		next = c->next;
		cfs_lane_hand_back(fs, c);
	}
}

/* Connecting failed, or a live link was lost: back off and fail what waits. */
void
cfs_worker_failed(struct cfs *fs, struct cfs_worker *w, int status,
    const char *cause)
{
	int was_ready = w->state == CFS_W_READY;

	if (w->state == CFS_W_IDLE || w->state == CFS_W_BACKOFF)
		return;
	if (was_ready)
		cpx_warn("worker %s: lane %d: link lost: %s", w->name,
		    w->lane->index, cause);
	else
		cpx_warn("worker %s: lane %d: cannot connect: %s", w->name,
		    w->lane->index, cause);
	drop_link(fs, w);
	w->state = CFS_W_BACKOFF;
	w->retry_at = uv_now(w->lane->loop) + w->backoff_ms;
	w->backoff_ms = w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
	    w->backoff_ms * 2;
	w->last_status = status;
	free(w->last_error);
	w->last_error = cpx_xstrdup(cause);
	fail_all(fs, w);
	cfs_push_lane_down(fs, w);
	if (w->lane->index == 0)
		cfs_routing_worker_down(fs, w->name, status, cause);
}

static void
became_ready(struct cfs *fs, struct cfs_worker *w)
{
	struct cfs_call *c = w->queued, *next;

	w->state = CFS_W_READY;
	w->epoch++;
	w->backoff_ms = BACKOFF_MIN_MS;
	w->last_ping = uv_now(w->lane->loop);
	cpx_info("worker %s: lane %d: file service ready (%s:%d)", w->name,
	    w->lane->index, w->ep.host, w->ep.port);
	w->queued = NULL;
	for (; c != NULL; c = next) {
		next = c->next;
		c->next = NULL;
		cfs_worker_dispatch(fs, w, c);
	}
	if (w->lane->index != 0) {
		cfs_push_lane_up(fs, w);
		return;
	}
	cfs_routing_worker_up(fs, w->name);
	cfs_lanes_warm(fs, w->name);
}

static void
on_hello(struct cfs *fs, struct cfs_worker *w, const struct cpx_frame *f)
{
	char *service = NULL, *cause = NULL, *code = NULL, *msg = NULL;

	if (f->type == CPX_MSG_ERROR) {
		cpx_error_parse(f->payload, f->len, &code, &msg);
		cause = cpx_xprintf("agent refused: %s (%s)",
		    msg ? msg : "?", code ? code : "?");
		cfs_worker_failed(fs, w, -ECONNREFUSED, cause);
	} else if (f->type != CPX_MSG_HELLO) {
		cfs_worker_failed(fs, w, -EPROTO, "agent did not say HELLO");
	} else if (cpx_hello_parse(f->payload, f->len, &service, &cause) != 0) {
		cfs_worker_failed(fs, w, -EPROTO, cause);
	} else {
		became_ready(fs, w);
	}
	free(service);
	free(cause);
	free(code);
	free(msg);
}

static void
on_reply(struct cfs *fs, struct cfs_worker *w, struct cpx_link *link,
    const struct cpx_frame *f)
{
	struct cpx_reader r;
	struct cfs_call *c;
	int32_t status;

	for (c = w->sent; c != NULL && c->id != f->id; c = c->next)
		;
	if (c == NULL)
		return;		/* its deadline passed: already answered */
	list_remove(w, c);
	c->link = link;
	c->reply = f;
	cpx_reader_init(&r, f->payload, f->len);
	status = (int32_t)cpx_rd_u32(&r);
	if (r.err || status > 0 || status < -4095)
		status = -EIO;
	cfs_call_finish(fs, c, status, status == 0 ? &r : NULL);
}

void
cfs_link_frame(struct cpx_link *link, const struct cpx_frame *f, void *arg)
{
	struct cfs_worker *w = arg;
	struct cfs *fs = w->fs;

	w->last_heard = uv_now(w->lane->loop);
	if (w->state == CFS_W_HELLO) {
		on_hello(fs, w, f);
		return;
	}
	switch (f->type) {
	case CPX_MSG_FREPLY:
		on_reply(fs, w, link, f);
		break;
	case CPX_MSG_FEVENT:
		if (w->lane->index == 0)
			cfs_event(fs, w, f->payload, f->len);
		break;
	case CPX_MSG_FPUSH:
		cfs_push_frame(fs, w, link, f);
		break;
	case CPX_MSG_PING:
		cpx_link_send(link, CPX_MSG_PONG, f->id, NULL, 0);
		break;
	case CPX_MSG_PONG:
		break;
	default:
		cfs_worker_failed(fs, w, -EPROTO, "unexpected message");
		break;
	}
}

void
cfs_link_close(struct cpx_link *link, int error, void *arg)
{
	struct cfs_worker *w = arg;
	char *cause;

	if (w->link != link)
		return;
	w->link = NULL;
	cause = error == 0 ? cpx_xstrdup("the agent closed the link") :
	    cpx_xprintf("%s", strerror(-error));
	cfs_worker_failed(w->fs, w, error == 0 ? -ECONNRESET : error, cause);
	free(cause);
}

static void
expire_calls(struct cfs *fs, struct cfs_worker *w, uint64_t now)
{
	struct cfs_call *c, **pp;

	while ((c = w->sent) != NULL && c->deadline <= now) {
		list_remove(w, c);
		cpx_warn("worker %s: %s timed out", w->name, "request");
		cfs_call_finish(fs, c, -EIO, NULL);
	}
	for (pp = &w->queued; (c = *pp) != NULL;) {
		if (c->deadline <= now) {
			*pp = c->next;
			cfs_call_finish(fs, c, -EIO, NULL);
		} else {
			pp = &c->next;
		}
	}
}

static void
tick_one(struct cfs *fs, struct cfs_worker *w, uint64_t now)
{
	uint64_t ka = (uint64_t)fs->set.keepalive_ms;

	expire_calls(fs, w, now);
	switch (w->state) {
	case CFS_W_READY:
		if (now - w->last_heard > 3 * ka) {
			cfs_worker_failed(fs, w, -ETIMEDOUT,
			    "no answer to keepalives");
		} else if (now - w->last_ping >= ka) {
			cpx_link_send(w->link, CPX_MSG_PING, 0, NULL, 0);
			w->last_ping = now;
		} else if (w->sent == NULL && w->queued == NULL &&
		    now - w->busy_at > IDLE_CLOSE_MS &&
		    cfs_routes_on_worker(fs, w->name) == 0) {
			cpx_debug("worker %s: idle, closing", w->name);
			drop_link(fs, w);
			w->state = CFS_W_IDLE;
		}
		break;
	case CFS_W_CONNECTING:
	case CFS_W_HELLO:
		if (now - w->connect_started >
		    (uint64_t)fs->set.connect_timeout_ms)
			cfs_worker_failed(fs, w, -ETIMEDOUT,
			    "connect deadline passed");
		break;
	case CFS_W_BACKOFF:
		/*
		 * Routed workers reconnect by themselves, to watch again, and
		 * every lane, to push its share again.
		 */
		if (now >= w->retry_at && cfs_routes_on_worker(fs, w->name) > 0)
			cfs_worker_kick(fs, w);
		break;
	}
}

/*
 * Lanes' ticks, every TICK_MS or so. A tick that comes late means the
 * loop was busy or blocked, and what the workers sent meanwhile may still
 * wait in the pipes: that time does not count as their silence.
 */
void
cfs_workers_tick(struct cfs_lane *lane, uint64_t period_ms)
{
	uint64_t now = uv_now(lane->loop), late = 0;
	struct cfs_worker *w;

	if (lane->last_tick != 0 && now - lane->last_tick > 2 * period_ms) {
		late = now - lane->last_tick - period_ms;
		cpx_warn("lane %d: its loop was held up %llu ms", lane->index,
		    (unsigned long long)late);
	}
	lane->last_tick = now;
	for (w = lane->workers; w != NULL; w = w->next) {
		w->last_heard = w->last_heard + late < now ?
		    w->last_heard + late : now;
		tick_one(lane->fs, w, now);
	}
}

void
cfs_workers_free(struct cfs_lane *lane)
{
	struct cfs *fs = lane->fs;
	struct cfs_worker *w, *next;

	for (w = lane->workers; w != NULL; w = next) {
		next = w->next;
		drop_link(fs, w);
		w->state = CFS_W_IDLE;
		fail_all(fs, w);
		if (fs->transport->release != NULL)
			fs->transport->release(fs, w);
		cpx_endpoint_free(&w->ep);
		free(w->last_error);
		free(w->name);
		free(w);
	}
	lane->workers = NULL;
}

