/* fuse_push.c — pushed contents: handed over, awaited, fetched, bounded. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache.h"

#define NLANES 2

struct env {
	struct cfs *fs;
	struct cfs_worker w[NLANES];	/* lane i's link to worker "w1" */
};

static struct env *
new_env(long cache_mb)
{
	struct env *e = cpx_xcalloc(1, sizeof *e);
	struct cfs *fs = cpx_xcalloc(1, sizeof *fs);
	int i;

	fs->set.cache_mb = cache_mb;
	fs->set.prefetch_max_mb = 32;
	fs->set.readahead_kb = 8192;
	pthread_mutex_init(&fs->notify_lock, NULL);
	pthread_rwlock_init(&fs->route_lock, NULL);
	uv_loop_init(&fs->loop);
	uv_async_init(&fs->loop, &fs->wake, NULL);
	cfs_lanes_init(fs, NLANES);
	fs->lanes[1].wake = &fs->wake;	/* no thread: calls are popped here */
	cfs_cache_init(fs);
	for (i = 0; i < NLANES; i++) {
		e->w[i].fs = fs;
		e->w[i].lane = &fs->lanes[i];
		e->w[i].name = "w1";
	}
	e->fs = fs;
	return e;
}

static void
free_env(struct env *e)
{
	struct cfs *fs = e->fs;

	cfs_cache_free(fs);
	cfs_lanes_free(fs);
	uv_close((uv_handle_t *)&fs->wake, NULL);
	uv_run(&fs->loop, UV_RUN_DEFAULT);
	uv_loop_close(&fs->loop);
	pthread_rwlock_destroy(&fs->route_lock);
	free(fs);
	free(e);
}

/* A fetch some lane was asked for, or NULL. */
static struct cfs_call *
pop(struct cfs *fs)
{
	struct cfs_lane *lane;
	struct cfs_call *c;
	int i;

	for (i = 0; i < NLANES; i++) {
		lane = &fs->lanes[i];
		if ((c = lane->submitted) == NULL)
			continue;
		if ((lane->submitted = c->next) == NULL)
			lane->submitted_tail = NULL;
		return c;
	}
	return NULL;
}

static uint8_t
byte(uint64_t i, int v)
{
	return (uint8_t)(i * 13 + (uint64_t)v * 5 + (i >> 17));
}

static struct cpx_attr
file_attr(uint64_t size, int64_t mtime)
{
	struct cpx_attr a;

	memset(&a, 0, sizeof a);
	a.mode = 0100644;
	a.size = size;
	a.mtime_s = mtime;
	return a;
}

/* Lane `lane`'s agent sends an FPUSH frame with payload b. */
static void
push_frame(struct env *e, int lane, const struct cpx_buf *b)
{
	struct cpx_frame f = {
		.type = CPX_MSG_FPUSH, .payload = b->data, .len = b->len,
	};

	cfs_push_frame(e->fs, &e->w[lane], NULL, &f);
}

/* Lane `lane` pushes block i of file (1, ino) in version v. */
static void
push_data(struct env *e, int lane, uint64_t ino, uint64_t i,
    const struct cpx_attr *a, int v)
{
	uint64_t k, end = (i + 1) * CFS_BLOCK < a->size ? (i + 1) * CFS_BLOCK :
	    a->size;
	struct cpx_buf b;

	cpx_buf_init(&b);
	cpx_push_put_head(&b, CPX_PUSH_DATA, 1, ino);
	cpx_buf_add_u64(&b, i * CFS_BLOCK);
	cpx_buf_add_u32(&b, (uint32_t)(end - i * CFS_BLOCK));
	for (k = i * CFS_BLOCK; k < end; k++)
		cpx_buf_add_u8(&b, byte(k, v));
	push_frame(e, lane, &b);
	cpx_buf_free(&b);
}

static void
push_ctl(struct env *e, int lane, uint8_t kind, uint64_t ino,
    const struct cpx_attr *a)
{
	struct cpx_buf b;

	cpx_buf_init(&b);
	cpx_push_put_head(&b, kind, 1, ino);
	if (kind == CPX_PUSH_DONE)
		cpx_attr_put(&b, a);
	push_frame(e, lane, &b);
	cpx_buf_free(&b);
}

/* Lane `lane` pushes its share of the file, then DONE. */
static void
push_share(struct env *e, int lane, uint64_t ino, const struct cpx_attr *a,
    int v)
{
	uint64_t i, n = (a->size + CFS_BLOCK - 1) / CFS_BLOCK;

	for (i = (uint64_t)lane; i < n; i += NLANES)
		push_data(e, lane, ino, i, a, v);
	push_ctl(e, lane, CPX_PUSH_DONE, ino, a);
}

/* Answers a PREAD as the worker would, from version v. */
static void
answer(struct cfs *fs, struct cfs_call *c, const struct cpx_attr *a, int v)
{
	struct cpx_buf rep;
	struct cpx_reader r;
	struct cpx_freq q;
	uint64_t i, end;

	assert_int_equal(cpx_freq_parse(c->req.data, c->req.len, &q), 0);
	assert_int_equal(q.op, CPX_FOP_PREAD);
	cpx_buf_init(&rep);
	cpx_attr_put(&rep, a);
	end = q.offset + q.size < a->size ? q.offset + q.size : a->size;
	cpx_buf_add_u32(&rep, (uint32_t)(end - q.offset));
	for (i = q.offset; i < end; i++)
		cpx_buf_add_u8(&rep, byte(i, v));
	cpx_reader_init(&r, rep.data, rep.len);
	c->done(fs, c, 0, &r);
	cpx_freq_free(&q);
	cpx_buf_free(&rep);
	cfs_call_free(c);
}

struct check {
	int v;
	uint64_t total;
};

static int
check_block(struct cfs *fs, uint64_t off, const uint8_t *p, size_t n,
    void *arg)
{
	struct check *ck = arg;
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != byte(off + i, ck->v))
			return -EILSEQ;
	ck->total += n;
	return 0;
}

/* The record of path holds version v, whole. */
static void
assert_whole(struct cfs *fs, const char *path, const struct cpx_attr *a,
    int v)
{
	struct check ck = { .v = v };

	assert_int_equal(cfs_cache_complete(fs, path), 1);
	assert_int_equal(cfs_cache_each_block(fs, path, check_block, &ck,
	    NULL), 0);
	assert_int_equal(ck.total, a->size);
}

/* Both shares in before the event: handed over, nothing fetched. */
static void
test_handed_over(void **state)
{
	struct env *e = new_env(16);
	struct cpx_attr a = file_attr(5 * CFS_BLOCK + 77, 10);
	struct cfs_identity id = { 1, 42, 3 };

	push_share(e, 1, 42, &a, 1);
	push_share(e, 0, 42, &a, 1);
	assert_true(cfs_push_bytes(e->fs) >= a.size);
	cfs_cache_adopt(e->fs, "w1", "S/x/seg", &a, &id);
	assert_null(pop(e->fs));
	assert_whole(e->fs, "S/x/seg", &a, 1);
	assert_int_equal(cfs_push_bytes(e->fs), 0);
	assert_int_equal(cfs_cache_bytes(e->fs), a.size);
	free_env(e);
}

/* Lane 1 is late: its blocks wait for its DONE, with no fetch. */
static void
test_awaited(void **state)
{
	struct env *e = new_env(16);
	struct cpx_attr a = file_attr(4 * CFS_BLOCK, 10);
	struct cfs_identity id = { 1, 7, 3 };

	push_data(e, 1, 7, 1, &a, 1);	/* some of lane 1's share came */
	push_share(e, 0, 7, &a, 1);
	cfs_cache_adopt(e->fs, "w1", "S/seg", &a, &id);
	assert_null(pop(e->fs));
	assert_int_equal(cfs_cache_complete(e->fs, "S/seg"), 0);
	push_data(e, 1, 7, 3, &a, 1);
	push_ctl(e, 1, CPX_PUSH_DONE, 7, &a);
	assert_null(pop(e->fs));
	assert_whole(e->fs, "S/seg", &a, 1);
	free_env(e);
}

/*
 * Lane 1 said DONE for an older version and then nothing: once silent
 * for PUSH_WAIT_MS its share is fetched (and why is logged).
 */
static void
test_silent_share_fetched(void **state)
{
	struct env *e = new_env(16);
	struct cpx_attr old = file_attr(2 * CFS_BLOCK, 9);
	struct cpx_attr a = file_attr(2 * CFS_BLOCK, 10);
	struct cfs_identity id = { 1, 8, 3 };
	struct cfs_call *c;

	cpx_log_set_level(CPX_LOG_DEBUG);
	push_share(e, 1, 8, &old, 1);
	push_share(e, 0, 8, &a, 1);
	cfs_cache_adopt(e->fs, "w1", "S/seg", &a, &id);
	assert_null(pop(e->fs));
	cfs_push_tick(e->fs);		/* not silent long enough yet */
	assert_null(pop(e->fs));
	C(e->fs)->streams->touched = 0;
	cfs_push_tick(e->fs);
	assert_non_null(c = pop(e->fs));
	answer(e->fs, c, &a, 1);
	assert_null(pop(e->fs));
	assert_whole(e->fs, "S/seg", &a, 1);
	cpx_log_set_level(CPX_LOG_INFO);
	free_env(e);
}

/* Lane 1 drops the file after the event: its share is fetched. */
static void
test_dropped_after(void **state)
{
	struct env *e = new_env(16);
	struct cpx_attr a = file_attr(4 * CFS_BLOCK + 1, 10);
	struct cfs_identity id = { 1, 9, 3 };
	struct cfs_call *c;
	int fetched = 0;

	push_share(e, 0, 9, &a, 2);
	cfs_cache_adopt(e->fs, "w1", "seg", &a, &id);
	assert_null(pop(e->fs));
	push_ctl(e, 1, CPX_PUSH_DROP, 9, NULL);
	while ((c = pop(e->fs)) != NULL) {
		answer(e->fs, c, &a, 2);
		fetched++;
	}
	assert_int_equal(fetched, 2);	/* blocks 1 and 3 */
	assert_whole(e->fs, "seg", &a, 2);
	free_env(e);
}

/* A lane that does not push (never asked, or gone): fetched at once. */
static void
test_lane_not_pushing(void **state)
{
	struct env *e = new_env(16);
	struct cpx_attr a = file_attr(3 * CFS_BLOCK, 10);
	struct cfs_identity id = { 1, 5, 1 };	/* lane 0 only */
	struct cfs_call *c;
	int fetched = 0;

	push_share(e, 0, 5, &a, 1);
	cfs_cache_adopt(e->fs, "w1", "seg", &a, &id);
	while ((c = pop(e->fs)) != NULL) {
		answer(e->fs, c, &a, 1);
		fetched++;
	}
	assert_int_equal(fetched, 1);
	assert_whole(e->fs, "seg", &a, 1);
	/* Lane 1 lost: an awaited share is fetched too. */
	id.ino = 6;
	id.push_lanes = 3;
	push_share(e, 0, 6, &a, 3);
	cfs_cache_adopt(e->fs, "w1", "seg2", &a, &id);
	assert_null(pop(e->fs));
	cfs_push_lane_down(e->fs, &e->w[1]);
	while ((c = pop(e->fs)) != NULL)
		answer(e->fs, c, &a, 3);
	assert_whole(e->fs, "seg2", &a, 3);
	free_env(e);
}

/* Blocks pushed for another version are never handed over. */
static void
test_stale_never_used(void **state)
{
	struct env *e = new_env(16);
	struct cpx_attr a = file_attr(2 * CFS_BLOCK, 10);
	struct cpx_attr b = file_attr(2 * CFS_BLOCK, 11);
	struct cfs_identity id = { 1, 3, 3 };
	struct cfs_call *c;

	push_share(e, 0, 3, &a, 1);
	push_share(e, 1, 3, &a, 1);
	/* The event says the file is version b: lane 0 never vouched for it. */
	cfs_cache_adopt(e->fs, "w1", "seg", &b, &id);
	c = pop(e->fs);
	assert_non_null(c);	/* block 0: lane 0's share, final, fetched */
	answer(e->fs, c, &b, 2);
	assert_null(pop(e->fs));	/* block 1: lane 1 awaited */
	push_data(e, 1, 3, 1, &b, 2);
	push_ctl(e, 1, CPX_PUSH_DONE, 3, &b);
	assert_whole(e->fs, "seg", &b, 2);
	free_env(e);
}

/* Pushed data nobody adopts stays within half the cache, and DROP frees it. */
static void
test_bounded_and_dropped(void **state)
{
	struct env *e = new_env(16);
	struct cpx_attr a = file_attr(24 * CFS_BLOCK, 10);
	uint64_t ino, i;

	for (ino = 100; ino < 140; ino++)
		for (i = 0; i < 24; i += NLANES)
			push_data(e, 0, ino, i, &a, 1);
	assert_true(cfs_push_bytes(e->fs) <= 8u * 1024 * 1024);
	for (ino = 100; ino < 140; ino++)
		push_ctl(e, 0, CPX_PUSH_DROP, ino, NULL);
	assert_int_equal(cfs_push_bytes(e->fs), 0);
	free_env(e);
}

/*
 * With passthrough, what is pushed goes into the file's copy as it comes;
 * the copy that its record takes holds exactly the blocks it has as the
 * record has them: a block pushed again after it was written is not.
 */
static void
test_copy_as_pushed(void **state)
{
	struct env *e = new_env(16);
	struct cfs *fs = e->fs;
	struct cpx_attr a = file_attr(5 * CFS_BLOCK + 77, 10);
	struct cfs_identity id = { 1, 42, 3 };
	uint8_t have[6], got[CFS_BLOCK];
	struct block **bs;
	uint64_t end = 0, k;
	size_t i, n = 0;
	struct rec *r;
	struct check ck = { .v = 1 };
	int fd;

	fs->pt_on = 1;
	fs->rootfd = open("/tmp", O_RDONLY | O_DIRECTORY);
	assert_true(fs->rootfd >= 0);
	push_share(e, 0, 42, &a, 1);
	push_share(e, 1, 42, &a, 1);
	cfs_push_copy(fs, "w1", 1, 42);		/* the copy thread's turn */
	push_data(e, 0, 42, 2, &a, 1);		/* block 2 again, same bytes */
	push_ctl(e, 0, CPX_PUSH_DONE, 42, &a);
	cfs_cache_adopt(fs, "w1", "seg", &a, &id);
	assert_whole(fs, "seg", &a, 1);

	pthread_mutex_lock(&fs->cache_lock);
	r = cfs_cache__rec(fs, "seg", 0);
	bs = cfs_cache__pin_all(fs, r, &n);
	assert_int_equal(n, 6);
	fd = cfs_push__take_copy(fs, r, bs, n, have, &end);
	assert_true(cfs_push__take_copy(fs, r, bs, n, have, &end) < 0);
					/* taken: not twice */
	pthread_mutex_unlock(&fs->cache_lock);
	cfs_cache__unpin_all(fs, bs, n);
	if (fd < 0) {			/* no O_TMPFILE in /tmp here */
		close(fs->rootfd);
		free_env(e);
		skip();
	}
	for (i = 0; i < n; i++)
		assert_int_equal(have[i], i != 2);
	assert_int_equal(end, a.size);
	for (i = 0; i < n; i++) {
		if (i == 2)
			continue;
		k = i * CFS_BLOCK;
		assert_int_equal(pread(fd, got, CFS_BLOCK, (off_t)k),
		    a.size - k < CFS_BLOCK ? a.size - k : CFS_BLOCK);
		assert_int_equal(check_block(fs, k, got, a.size - k < CFS_BLOCK ?
		    a.size - k : CFS_BLOCK, &ck), 0);
	}
	close(fd);
	close(fs->rootfd);
	free_env(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handed_over),
		cmocka_unit_test(test_awaited),
		cmocka_unit_test(test_dropped_after),
		cmocka_unit_test(test_silent_share_fetched),
		cmocka_unit_test(test_lane_not_pushing),
		cmocka_unit_test(test_stale_never_used),
		cmocka_unit_test(test_bounded_and_dropped),
		cmocka_unit_test(test_copy_as_pushed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
