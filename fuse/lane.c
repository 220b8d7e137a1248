/* lane.c — the bulk-read lanes: a thread, a loop and connections of their own. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cfs.h"

#define LANE_TICK_MS 100

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
	cfs_workers_tick(t->data);
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
