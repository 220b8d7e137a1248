/* fuse_worker.c — a worker's silence, counted only while the loop listens. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cfs.h"

struct env {
	struct cfs *fs;
	struct cfs_worker w;	/* "w1", ready, on lane 0 */
	uint64_t now;
};

static struct env *
new_env(void)
{
	struct env *e = cpx_xcalloc(1, sizeof *e);
	struct cfs *fs = cpx_xcalloc(1, sizeof *fs);

	fs->set.keepalive_ms = 1000;
	uv_loop_init(&fs->loop);
	uv_async_init(&fs->loop, &fs->wake, NULL);
	cfs_lanes_init(fs, 1);
	uv_update_time(&fs->loop);
	e->now = uv_now(&fs->loop);
	e->w.fs = fs;
	e->w.lane = &fs->lanes[0];
	e->w.name = "w1";
	e->w.state = CFS_W_READY;
	e->w.last_ping = e->now;	/* no PING due: there is no link */
	e->w.busy_at = e->now;
	fs->lanes[0].workers = &e->w;
	e->fs = fs;
	return e;
}

static void
free_env(struct env *e)
{
	struct cfs *fs = e->fs;

	fs->lanes[0].workers = NULL;
	cfs_lanes_free(fs);
	uv_close((uv_handle_t *)&fs->wake, NULL);
	uv_run(&fs->loop, UV_RUN_DEFAULT);
	uv_loop_close(&fs->loop);
	free(fs);
	free(e);
}

/* A tick 5 s after the last one: the 4.9 s the loop was held up are not
 * the worker's silence, so 4 s without a word do not condemn it. */
static void
test_late_tick_credits_silence(void **state)
{
	struct env *e = new_env();
	struct cfs_lane *lane = &e->fs->lanes[0];

	lane->last_tick = e->now - 5000;
	e->w.last_heard = e->now - 4000;
	cfs_workers_tick(lane, 100);
	assert_int_equal(e->w.state, CFS_W_READY);
	assert_true(e->w.last_heard == e->now);
	assert_true(lane->last_tick == e->now);
	free_env(e);
}

/* On time, silence counts as it is. */
static void
test_timely_tick_keeps_silence(void **state)
{
	struct env *e = new_env();
	struct cfs_lane *lane = &e->fs->lanes[0];

	lane->last_tick = e->now - 100;
	e->w.last_heard = e->now - 2000;
	cfs_workers_tick(lane, 100);
	assert_int_equal(e->w.state, CFS_W_READY);
	assert_true(e->w.last_heard == e->now - 2000);
	free_env(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_late_tick_credits_silence),
		cmocka_unit_test(test_timely_tick_keeps_silence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
