/*
 * fuzz_fuse_push.c — what a worker pushes (FPUSH), and the COMPLETE events
 * that hand it over, from hostile bytes.
 *
 * The input is a script: each step is one byte of opcode, then its
 * arguments. Pushes from any lane, adoptions of any version, lanes lost,
 * ticks. Whatever the worker sends: no crash, no leak, pushed data within
 * half the cache, and a record whole only with blocks of its own size.
 */

#include <stdlib.h>
#include <string.h>

#include "cfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NLANES 3

static struct cfs *
new_fs(void)
{
	struct cfs *fs = cpx_xcalloc(1, sizeof *fs);

	fs->set.cache_mb = 16;
	fs->set.prefetch_max_mb = 4;
	fs->set.readahead_kb = 1024;
	pthread_mutex_init(&fs->notify_lock, NULL);
	pthread_rwlock_init(&fs->route_lock, NULL);
	uv_loop_init(&fs->loop);
	uv_async_init(&fs->loop, &fs->wake, NULL);
	cfs_lanes_init(fs, NLANES);
	fs->lanes[1].wake = fs->lanes[2].wake = &fs->wake;
	cfs_cache_init(fs);
	return fs;
}

/* Fetches the cache started: answered with an error, or dropped. */
static void
drain_calls(struct cfs *fs, int fail)
{
	struct cfs_lane *lane;
	struct cfs_call *c;
	int i;

	for (i = 0; i < NLANES; i++) {
		lane = &fs->lanes[i];
		while ((c = lane->submitted) != NULL) {
			if ((lane->submitted = c->next) == NULL)
				lane->submitted_tail = NULL;
			cfs_call_finish(fs, c, fail ? -EIO : -ENOENT, NULL);
		}
	}
}

static void
free_fs(struct cfs *fs)
{
	drain_calls(fs, 1);
	cfs_cache_free(fs);
	cfs_lanes_free(fs);
	uv_close((uv_handle_t *)&fs->wake, NULL);
	uv_run(&fs->loop, UV_RUN_DEFAULT);
	uv_loop_close(&fs->loop);
	pthread_rwlock_destroy(&fs->route_lock);
	free(fs);
}

static uint8_t
take(const uint8_t **p, size_t *n)
{
	uint8_t v = 0;

	if (*n > 0) {
		v = **p;
		(*p)++;
		(*n)--;
	}
	return v;
}

static struct cpx_attr
attr_of(uint8_t sz, uint8_t mt)
{
	struct cpx_attr a;

	memset(&a, 0, sizeof a);
	a.mode = 0100644;
	a.size = (uint64_t)sz * 37 * 1024 + mt;
	a.mtime_s = mt;
	return a;
}

struct tally {
	uint64_t total;
	int short_seen;
};

static int
count(struct cfs *fs, uint64_t off, const uint8_t *p, size_t n, void *arg)
{
	struct tally *t = arg;

	/* Blocks are whole but for the last, and in order. */
	if (off != t->total || t->short_seen)
		abort();
	t->short_seen = n != CFS_BLOCK;
	t->total += n;
	return 0;
}

/* A record whole is exactly as long as its file. */
static void
check_whole(struct cfs *fs, const char *path)
{
	struct tally t = { 0, 0 };
	struct cpx_attr v;

	if (!cfs_cache_complete(fs, path))
		return;
	if (cfs_cache_each_block(fs, path, count, &t, &v) != 0 ||
	    t.total != v.size)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = { "S/a", "S/b", "S/a.tmp" };
	struct cfs *fs = new_fs();
	struct cfs_worker w[NLANES];
	struct cfs_identity id;
	struct cpx_attr a;
	struct cpx_frame f = { .type = CPX_MSG_FPUSH };
	uint8_t op, len;
	int i;

	memset(w, 0, sizeof w);
	for (i = 0; i < NLANES; i++) {
		w[i].fs = fs;
		w[i].lane = &fs->lanes[i];
		w[i].name = "w1";
	}
	while (size > 0) {
		op = take(&data, &size);
		switch (op % 5) {
		case 0:		/* an FPUSH payload from lane op/5 % NLANES */
			len = take(&data, &size);
			if (len > size)
				len = (uint8_t)size;
			f.payload = data;
			f.len = len;
			cfs_push_frame(fs, &w[(op / 5) % NLANES], NULL, &f);
			data += len;
			size -= len;
			break;
		case 1:		/* a COMPLETE event */
			a = attr_of(take(&data, &size), take(&data, &size));
			id.dev = take(&data, &size) % 3;
			id.ino = take(&data, &size) % 4;
			id.push_lanes = take(&data, &size) & 7;
			cfs_cache_adopt(fs, "w1", paths[op / 5 % 3], &a, &id);
			break;
		case 2:		/* a lane's connection lost */
			cfs_push_lane_down(fs, &w[(op / 5) % NLANES]);
			break;
		case 3:		/* fetches answered (failing) */
			drain_calls(fs, op & 8);
			break;
		default:
			cfs_push_tick(fs);
			break;
		}
		if (cfs_push_bytes(fs) > 8u * 1024 * 1024)
			abort();
		for (i = 0; i < 3; i++)
			check_whole(fs, paths[i]);
	}
	free_fs(fs);
	return 0;
}
