/* fuse_cache.c — fetch-ahead, versions, failures and the memory bound. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache.h"

static struct cfs *
new_fs(void)
{
	struct cfs *fs = cpx_xcalloc(1, sizeof *fs);

	fs->set.cache_mb = 16;
	fs->set.prefetch_max_mb = 32;
	fs->set.readahead_kb = 8192;
	pthread_mutex_init(&fs->notify_lock, NULL);
	uv_loop_init(&fs->loop);
	uv_async_init(&fs->loop, &fs->wake, NULL);
	cfs_lanes_init(fs, 1);
	cfs_cache_init(fs);
	return fs;
}

static void
free_fs(struct cfs *fs)
{
	cfs_cache_free(fs);
	cfs_lanes_free(fs);
	uv_close((uv_handle_t *)&fs->wake, NULL);
	uv_run(&fs->loop, UV_RUN_DEFAULT);
	uv_loop_close(&fs->loop);
	free(fs);
}

static struct cfs_call *
pop(struct cfs *fs)
{
	struct cfs_lane *lane = &fs->lanes[0];
	struct cfs_call *c = lane->submitted;

	if (c != NULL && (lane->submitted = c->next) == NULL)
		lane->submitted_tail = NULL;
	return c;
}

/* Byte i of a test file of version v. */
static uint8_t
byte(uint64_t i, int v)
{
	return (uint8_t)(i * 7 + (uint64_t)v * 13);
}

/* Answers a PREAD call as a worker would, from a file of size/version. */
static void
answer(struct cfs *fs, struct cfs_call *c, const struct cpx_attr *a, int v,
    int status)
{
	struct cpx_buf rep;
	struct cpx_reader r;
	struct cpx_freq q;
	uint64_t i, end;

	assert_int_equal(cpx_freq_parse(c->req.data, c->req.len, &q), 0);
	assert_int_equal(q.op, CPX_FOP_PREAD);
	assert_int_equal(q.offset % CFS_BLOCK, 0);
	assert_int_equal(q.size, CFS_BLOCK);
	cpx_buf_init(&rep);
	cpx_attr_put(&rep, a);
	end = q.offset + q.size < a->size ? q.offset + q.size : a->size;
	cpx_buf_add_u32(&rep, (uint32_t)(end - q.offset));
	for (i = q.offset; i < end; i++)
		cpx_buf_add_u8(&rep, byte(i, v));
	cpx_reader_init(&r, rep.data, rep.len);
	c->done(fs, c, status, status == 0 ? &r : NULL);
	cpx_freq_free(&q);
	cpx_buf_free(&rep);
	cfs_call_free(c);
}

static int
check_block(struct cfs *fs, uint64_t off, const uint8_t *p, size_t n,
    void *arg)
{
	uint64_t *total = arg;
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != byte(off + i, 1))
			return -EILSEQ;
	*total += n;
	return 0;
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

static void
test_prefetch_complete(void **state)
{
	struct cfs *fs = new_fs();
	struct cpx_attr a = file_attr(CFS_BLOCK * 2 + 1000, 100);
	struct cfs_call *c;
	uint64_t total = 0;
	int n = 0;

	assert_int_equal(cfs_cache_prefetch(fs, "w1", "S/x/seg", &a), 1);
	assert_int_equal(cfs_cache_complete(fs, "S/x/seg"), 0);
	/* Every block is asked for at once: the link pipelines them. */
	while ((c = pop(fs)) != NULL) {
		assert_string_equal(c->worker, "w1");
		answer(fs, c, &a, 1, 0);
		n++;
	}
	assert_int_equal(n, 3);
	assert_int_equal(cfs_cache_complete(fs, "S/x/seg"), 1);
	assert_int_equal(cfs_cache_each_block(fs, "S/x/seg", check_block,
	    &total, NULL), 0);
	assert_int_equal(total, a.size);
	assert_int_equal(cfs_cache_bytes(fs), a.size);
	/* Whole already: nothing to fetch again. */
	assert_int_equal(cfs_cache_prefetch(fs, "w1", "S/x/seg", &a), 0);
	assert_null(pop(fs));
	free_fs(fs);
}

static void
test_new_version_drops(void **state)
{
	struct cfs *fs = new_fs();
	struct cpx_attr a = file_attr(1000, 100), b = file_attr(1000, 101);
	struct cfs_call *c;

	cfs_cache_prefetch(fs, "w1", "f", &a);
	while ((c = pop(fs)) != NULL)
		answer(fs, c, &a, 1, 0);
	assert_int_equal(cfs_cache_complete(fs, "f"), 1);
	cfs_cache_set_attr(fs, "f", &b, 1000);	/* rewritten on the worker */
	assert_int_equal(cfs_cache_complete(fs, "f"), 0);
	assert_int_equal(cfs_cache_bytes(fs), 0);
	free_fs(fs);
}

static void
test_failure_retries(void **state)
{
	struct cfs *fs = new_fs();
	struct cpx_attr a = file_attr(CFS_BLOCK + 10, 100);
	struct cfs_call *c;

	cfs_cache_prefetch(fs, "w1", "f", &a);
	answer(fs, pop(fs), &a, 1, 0);
	answer(fs, pop(fs), &a, 1, -EIO);
	assert_null(pop(fs));
	assert_int_equal(cfs_cache_complete(fs, "f"), 0);
	/* The failed block is forgotten, so a new attempt asks again. */
	assert_int_equal(cfs_cache_prefetch(fs, "w1", "f", &a), 1);
	c = pop(fs);
	assert_non_null(c);
	assert_null(pop(fs));	/* only the missing one */
	answer(fs, c, &a, 1, 0);
	assert_int_equal(cfs_cache_complete(fs, "f"), 1);
	free_fs(fs);
}

static void
test_memory_bound(void **state)
{
	struct cfs *fs = new_fs();
	struct cpx_attr a = file_attr(8u * 1024 * 1024, 100);
	struct cfs_call *c;
	char name[16];
	int i;

	for (i = 0; i < 4; i++) {
		snprintf(name, sizeof name, "seg%d", i);
		cfs_cache_prefetch(fs, "w1", name, &a);
		while ((c = pop(fs)) != NULL)
			answer(fs, c, &a, 1, 0);
	}
	assert_true(cfs_cache_bytes(fs) <= 16u * 1024 * 1024);
	assert_int_equal(cfs_cache_complete(fs, "seg3"), 1);	/* newest kept */
	assert_int_equal(cfs_cache_complete(fs, "seg0"), 0);	/* oldest went */
	a.size = 64u * 1024 * 1024;	/* above CLUSTERPLEX_FUSE_PREFETCH_MAX_MB */
	assert_int_equal(cfs_cache_prefetch(fs, "w1", "huge", &a), 0);
	assert_null(pop(fs));
	free_fs(fs);
}

/* A whole file of `size` bytes fetched for path, in version a. */
static struct rec *
fetched(struct cfs *fs, const char *path, const struct cpx_attr *a)
{
	struct cfs_call *c;

	cfs_cache_prefetch(fs, "w1", path, a);
	while ((c = pop(fs)) != NULL)
		answer(fs, c, a, 1, 0);
	assert_int_equal(cfs_cache_complete(fs, path), 1);
	return cfs_cache__rec(fs, path, 0);
}

/* Blocks the kernel was handed are kept up to SERVED_KEEP, and go first. */
static void
test_served_bounded(void **state)
{
	struct cfs *fs = new_fs();
	struct cpx_attr a = file_attr(SERVED_KEEP / 2, 100);
	uint64_t n = a.size / CFS_BLOCK, i;
	struct rec *r;
	char name[16];
	int k;

	fs->set.cache_mb = 64;
	C(fs)->budget = 64u << 20;
	/* Read to the end, one file after the other, like a large file. */
	for (k = 0; k < 8; k++) {
		snprintf(name, sizeof name, "big%d", k);
		r = fetched(fs, name, &a);
		pthread_mutex_lock(&fs->cache_lock);
		for (i = 0; i < n; i++)
			cfs_cache__served(fs, r->blocks[i]);
		cfs_cache__evict(fs);
		pthread_mutex_unlock(&fs->cache_lock);
	}
	assert_true(C(fs)->served_bytes <= SERVED_KEEP);
	assert_true(cfs_cache_bytes(fs) <= SERVED_KEEP);
	assert_int_equal(cfs_cache_complete(fs, "big7"), 1);	/* newest kept */
	assert_int_equal(cfs_cache_complete(fs, "big0"), 0);
	/* Over the budget, served blocks go before ones nobody read yet. */
	C(fs)->budget = a.size;
	fetched(fs, "unread", &a);
	assert_int_equal(cfs_cache_complete(fs, "unread"), 1);
	assert_int_equal(cfs_cache_complete(fs, "big7"), 0);
	assert_true(cfs_cache_bytes(fs) <= a.size);
	free_fs(fs);
}

/* With a local copy, the blocks go and the file counts as held. */
static void
test_copy_frees_blocks(void **state)
{
	struct cfs *fs = new_fs();
	struct cpx_attr a = file_attr(CFS_BLOCK * 3, 100);
	struct rec *r = fetched(fs, "seg", &a);

	cfs_backing_free_blocks(fs, "seg", 0);	/* no copy yet: kept */
	assert_int_equal(cfs_cache_bytes(fs), a.size);
	r->backing = 7;			/* as attach() leaves it */
	r->backing_version = a;
	cfs_backing_free_blocks(fs, "seg", 0);
	assert_int_equal(cfs_cache_bytes(fs), 0);
	/* Its COMPLETE again, or a prefetch: nothing fetched twice. */
	assert_int_equal(cfs_cache_prefetch(fs, "w1", "seg", &a), 0);
	assert_null(pop(fs));
	r->backing = 0;
	free_fs(fs);
}

/* cfs_backing_await() on path in version a waited its whole bound. */
static int
waited(struct cfs *fs, const char *path, const struct cpx_attr *a)
{
	uint64_t t0 = cpx_now_ms();

	cfs_backing_await(fs, path, a);
	return cpx_now_ms() - t0 >= COPY_WAIT_MS - 1;
}

/*
 * An open of a pushed, finished file waits (at most COPY_WAIT_MS) for the
 * rest of its blocks and for its copy, asked for the moment it is whole;
 * made or failed, the waiting ends. Without passthrough nothing waits.
 */
static void
test_open_waits_for_copy(void **state)
{
	struct cfs *fs = new_fs();
	struct cpx_attr a = file_attr(CFS_BLOCK * 2, 100);
	struct rec *r = fetched(fs, "seg", &a);

	fs->rootfd = -1;	/* no folder underneath: the copy fails */
	r->stable = 1;
	r->pushed = 1;
	pthread_mutex_lock(&fs->cache_lock);
	cfs_cache__whole(fs, r);
	assert_int_equal(r->copy_coming, 0);	/* passthrough is off */
	pthread_mutex_unlock(&fs->cache_lock);
	fs->pt_on = 1;
	r->want_store = 1;		/* blocks still on their way */
	assert_true(waited(fs, "seg", &a));
	r->want_store = 0;
	pthread_mutex_lock(&fs->cache_lock);
	cfs_cache__whole(fs, r);
	pthread_mutex_unlock(&fs->cache_lock);
	assert_int_equal(r->copy_coming, 1);
	assert_true(waited(fs, "seg", &a));
	assert_true(cfs_backing_make(fs, "seg") < 0);
	assert_int_equal(r->copy_coming, 0);
	assert_int_equal(r->backing, 0);
	free_fs(fs);
}

static void
test_attr_ttl(void **state)
{
	struct cfs *fs = new_fs();
	struct cpx_attr a = file_attr(5, 1), got;

	assert_int_equal(cfs_cache_attr(fs, "x", &got), 0);
	cfs_cache_set_attr(fs, "x", &a, 60000);
	assert_int_equal(cfs_cache_attr(fs, "x", &got), 1);
	assert_int_equal(got.size, 5);
	cfs_cache_set_attr(fs, "d/y", &a, 0);	/* still being written */
	assert_int_equal(cfs_cache_attr(fs, "d/y", &got), 0);
	cfs_cache_forget(fs, "x");
	assert_int_equal(cfs_cache_attr(fs, "x", &got), 0);
	cfs_cache_set_attr(fs, "d/z", &a, 60000);
	cfs_cache_forget_under(fs, "d");
	assert_int_equal(cfs_cache_attr(fs, "d/z", &got), 0);
	free_fs(fs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefetch_complete),
		cmocka_unit_test(test_new_version_drops),
		cmocka_unit_test(test_failure_retries),
		cmocka_unit_test(test_memory_bound),
		cmocka_unit_test(test_served_bounded),
		cmocka_unit_test(test_copy_frees_blocks),
		cmocka_unit_test(test_open_waits_for_copy),
		cmocka_unit_test(test_attr_ttl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
