/* lane.c — the bulk-read lanes: a thread, a loop and connections of their own. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfs.h"

#define LANE_TICK_MS 100

void
cfs_lane_enqueue(struct cfs_lane *lane, struct cfs_call *c)
{
	c->next = NULL;
	pthread_mutex_lock(&lane->call_lock);
	if (lane->closed) {
		/* Its loop is going away: nobody would ever answer this. */
		pthread_mutex_unlock(&lane->call_lock);
		cfs_call_finish(lane->fs, c, -EIO, NULL);
		return;
	}
	if (lane->submitted_tail != NULL)
		lane->submitted_tail->next = c;
	else
		lane->submitted = c;
	lane->submitted_tail = c;
	/* Under the lock: the handle cannot be closed meanwhile. */
	uv_async_send(lane->wake);
	pthread_mutex_unlock(&lane->call_lock);
}

/* The lane's thread, before it closes its handles: no more calls. */
void
cfs_lane_close_queue(struct cfs_lane *lane)
{
	pthread_mutex_lock(&lane->call_lock);
	lane->closed = 1;
	pthread_mutex_unlock(&lane->call_lock);
}

/*
 * Any thread: hands the call to a lane. Bulk reads go round the lanes;
 * everything else (ordered, or stateful on the worker) goes to lane 0.
 */
void
cfs_call_submit(struct cfs *fs, struct cfs_call *c)
{
	unsigned n = 0;

	if (c->bulk && fs->nlanes > 1)
		n = __atomic_fetch_add(&fs->next_lane, 1, __ATOMIC_RELAXED) %
		    (unsigned)fs->nlanes;
	cfs_lane_enqueue(&fs->lanes[n], c);
}

/* Any thread: a call for lane `lane`'s own connection, never another's. */
void
cfs_lane_submit(struct cfs *fs, int lane, struct cfs_call *c)
{
	c->pinned = 1;
	cfs_lane_enqueue(&fs->lanes[lane], c);
}

/* A warm-up: lane `index` connects to the worker, ahead of any read. */
void
cfs_lanes_warm(struct cfs *fs, const char *worker)
{
	struct cfs_call *c;
	int i;

	for (i = 1; i < fs->nlanes; i++) {
		c = cfs_call_new(worker, NULL, NULL);
		c->warm = 1;
		cfs_lane_enqueue(&fs->lanes[i], c);
	}
}

/*
 * A lane other than 0 never fails a read itself: while its connection is
 * not up, or after it was lost, the read goes to lane 0 (once), which
 * answers for the worker's state as a whole.
 */
void
cfs_lane_hand_back(struct cfs *fs, struct cfs_call *c)
{
	if (c->retried || c->pinned) {
		cfs_call_finish(fs, c, -EIO, NULL);
		return;
	}
	c->retried = 1;
	c->next = c->prev = NULL;
	cfs_lane_enqueue(&fs->lanes[0], c);
}

/*
 * A bulk lane learns a worker's endpoint from the route table, every time:
 * a worker that moved (new address, new key) is followed, as on lane 0.
 */
static struct cfs_worker *
lane_worker(struct cfs_lane *lane, const char *name)
{
	struct cfs_worker *w = NULL;
	struct cpx_endpoint ep;

	if (cfs_routes_endpoint(lane->fs, name, &ep) == 0) {
		w = cfs_worker_get_in(lane, &ep);
		cpx_endpoint_free(&ep);
	}
	return w;
}

static void
drain_bulk(struct cfs_lane *lane, struct cfs_call *c)
{
	struct cfs *fs = lane->fs;
	struct cfs_worker *w = lane_worker(lane, c->worker);
	uint64_t now = uv_now(lane->loop);

	if (w != NULL && (w->state == CFS_W_IDLE ||
	    (w->state == CFS_W_BACKOFF && now >= w->retry_at)))
		cfs_worker_kick(fs, w);
	if (c->warm)
		cfs_call_finish(fs, c, 0, NULL);
	else if (c->pinned && w != NULL)
		cfs_worker_dispatch(fs, w, c);
	else if (w == NULL || w->state != CFS_W_READY)
		cfs_lane_hand_back(fs, c);
	else
		cfs_worker_dispatch(fs, w, c);
}

/* A lane's thread: takes the calls other threads submitted. */
void
cfs_workers_drain(struct cfs_lane *lane)
{
	struct cfs *fs = lane->fs;
	struct cfs_call *c, *next;
	struct cfs_worker *w;

	pthread_mutex_lock(&lane->call_lock);
	c = lane->submitted;
	lane->submitted = lane->submitted_tail = NULL;
	pthread_mutex_unlock(&lane->call_lock);
	for (; c != NULL; c = next) {
		next = c->next;
		c->next = NULL;
		if (c->deadline == 0)	/* a read handed over keeps its own */
			c->deadline = uv_now(lane->loop) +
			    (uint64_t)fs->set.op_timeout_ms;
		if (lane->stopping || c->warm || lane->index == 0) {
			w = lane->stopping || c->warm ? NULL :
			    cfs_worker_find_in(lane, c->worker);
			if (w == NULL)
				cfs_call_finish(fs, c, c->warm ? 0 : -EIO, NULL);
			else
				cfs_worker_dispatch(fs, w, c);
		} else {
			drain_bulk(lane, c);
		}
	}
}


/* Lane 0 runs on the daemon's loop thread; its handles are fs->loop/wake. */
void
cfs_lanes_init(struct cfs *fs, int n)
{
	int i;

	fs->nlanes = n < 1 ? 1 : n;
	fs->lanes = cpx_xcalloc((size_t)fs->nlanes, sizeof *fs->lanes);
	for (i = 0; i < fs->nlanes; i++) {
		fs->lanes[i].fs = fs;
		fs->lanes[i].index = i;
		pthread_mutex_init(&fs->lanes[i].call_lock, NULL);
	}
	fs->lanes[0].loop = &fs->loop;
	fs->lanes[0].wake = &fs->wake;
}

static void
lane_close(struct cfs_lane *lane)
{
	lane->stopping = 1;
	cfs_lane_close_queue(lane);
	cfs_workers_drain(lane);
	cfs_workers_free(lane);
	uv_close((uv_handle_t *)&lane->own_tick, NULL);
	uv_close((uv_handle_t *)&lane->own_wake, NULL);
}

static void
on_wake(uv_async_t *a)
{
	struct cfs_lane *lane = a->data;

	if (lane->stopping)
		return;
	if (lane->fs->stop_loop) {
		lane_close(lane);
		return;
	}
	cfs_workers_drain(lane);
}

static void
on_tick(uv_timer_t *t)
{
	cfs_workers_tick(t->data, LANE_TICK_MS);
}

static void *
lane_main(void *arg)
{
	struct cfs_lane *lane = arg;

	uv_run(lane->loop, UV_RUN_DEFAULT);
	return NULL;
}

void
cfs_lanes_start(struct cfs *fs)
{
	struct cfs_lane *lane;
	char name[16];		/* a thread's name: 15 bytes at most */
	int i;

	for (i = 1; i < fs->nlanes; i++) {
		lane = &fs->lanes[i];
		lane->loop = &lane->own_loop;
		lane->wake = &lane->own_wake;
		uv_loop_init(lane->loop);
		uv_async_init(lane->loop, lane->wake, on_wake);
		lane->own_wake.data = lane;
		uv_timer_init(lane->loop, &lane->own_tick);
		lane->own_tick.data = lane;
		uv_timer_start(&lane->own_tick, on_tick, LANE_TICK_MS,
		    LANE_TICK_MS);
		if (pthread_create(&lane->thread, NULL, lane_main, lane) != 0)
			cpx_fatal("cannot start lane %d", i);
		snprintf(name, sizeof name, "cpx-fuse-lane%u", (unsigned)i % 100);
		pthread_setname_np(lane->thread, name);
	}
}

/* After the FUSE loop ended (fs->stop_loop set): each lane closes itself. */
void
cfs_lanes_stop(struct cfs *fs)
{
	int i;

	for (i = 1; i < fs->nlanes; i++) {
		if (fs->lanes[i].loop == NULL)
			continue;
		uv_async_send(fs->lanes[i].wake);
		pthread_join(fs->lanes[i].thread, NULL);
		uv_run(fs->lanes[i].loop, UV_RUN_DEFAULT);
		uv_loop_close(fs->lanes[i].loop);
		fs->lanes[i].loop = NULL;
	}
}

void
cfs_lanes_free(struct cfs *fs)
{
	int i;

	for (i = 0; i < fs->nlanes; i++)
		pthread_mutex_destroy(&fs->lanes[i].call_lock);
	free(fs->lanes);
	fs->lanes = NULL;
	fs->nlanes = 0;
}
