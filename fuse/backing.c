/* backing.c — complete remote files as local copies, read by passthrough. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cache.h"

/*
 * With FUSE passthrough (kio.c) a complete segment is written once into
 * an unnamed file (O_TMPFILE) in the folder underneath the mount, in
 * 256 KiB writes so the filesystem holds it in folios that large (FUSE's
 * own page cache has 4 KiB pages only), and registered
 * with the kernel as a backing file: opens of the segment then read it
 * directly, at the speed of a local file. A backing file belongs to one
 * version of a record: a new version, or the record's end, closes it
 * (files open through it keep it until they close). They are bounded to
 * 4 x CLUSTERPLEX_FUSE_CACHE_MB, the least recently opened closed first:
 * page cache the kernel may write back and reclaim, and disk space.
 */

#define BACKING_BUDGET(c) ((c)->budget * 4)
#define RETIRE_MS 2000
#define WRITE_BLOCKS 2		/* 256 KiB per write: folios of that size */

/*
 * Under the lock: the record's backing file is retired. Its id stays
 * registered a while: an open may have chosen it just before, and the
 * kernel fails an open whose backing id is gone (EIO).
 */
void
cfs_backing__release(struct cfs *fs, struct rec *r)
{
	struct cache *c = C(fs);

	if (r->backing <= 0)
		return;
	c->retired = cpx_xrealloc(c->retired,
	    (c->nretired + 1) * sizeof *c->retired);
	c->retired[c->nretired].id = r->backing;
	c->retired[c->nretired++].at = cpx_now_ms();
	c->backing_bytes -= r->backing_bytes;
	c->nbacking--;
	r->backing = 0;
	r->backing_bytes = 0;
}

/* Under the lock: the least recently opened go until within budget. */
static void
evict(struct cfs *fs)
{
	struct cache *c = C(fs);
	struct rec *r, *old;
	size_t i;

	while (c->backing_bytes > BACKING_BUDGET(c) && c->nbacking > 1) {
		old = NULL;
		for (i = 0; i < c->nbuckets; i++)
			for (r = c->buckets[i]; r != NULL; r = r->hnext)
				if (r->backing > 0 && (old == NULL ||
				    r->backing_used < old->backing_used))
					old = r;
		if (old == NULL)
			return;
		cfs_backing__release(fs, old);
	}
}

/* The backing file of path in version v (now in use), or 0. */
int
cfs_cache_backing(struct cfs *fs, const char *path, const struct cpx_attr *v)
{
	struct rec *r;
	int id = 0;

	pthread_mutex_lock(&fs->cache_lock);
	r = cfs_cache__rec(fs, path, 0);
	if (r != NULL && r->backing > 0 &&
	    cfs_same_version(&r->backing_version, v)) {
		id = r->backing;
		r->backing_used = cpx_now_ms();
	}
	pthread_mutex_unlock(&fs->cache_lock);
	return id;
}

static int
has_copy(const struct rec *r)
{
	return r->backing > 0 && cfs_same_version(&r->backing_version,
	    &r->attr);
}

/* Whether r's contents are here: whole in memory, or in its local copy. */
int
cfs_cache__held(const struct rec *r)
{
	return has_copy(r) || cfs_cache__complete(r);
}

/*
 * Under the lock, when r has become whole here: the local copy of a
 * finished file a worker pushed is made at once, and its opens wait for
 * it (cfs_backing_await) rather than read through us meanwhile; anything
 * else is made local for the kernel a little later (notify.c).
 */
void
cfs_cache__whole(struct cfs *fs, struct rec *r)
{
	pthread_cond_broadcast(&fs->copy_cond);	/* opens waiting for it */
	if (fs->pt_on && r->stable && r->pushed && !r->backing_busy &&
	    !has_copy(r)) {
		r->copy_coming = 1;
		cfs_notify_copy(fs, r->path);
	} else {
		cfs_notify_store(fs, r->path);
	}
}

/*
 * Whether an open of r should wait for its copy: being made, or to be
 * made once the rest of a finished file's pushed blocks are here.
 */
static int
copy_pending(const struct rec *r)
{
	return r->copy_coming || (r->want_store && r->stable && r->pushed);
}

/*
 * Request thread, before a read-only open of path in version v: if its
 * copy is on its way, waits for it (at most COPY_WAIT_MS), so the open
 * passes through to it. Finishing the copy takes a fraction of reading
 * 2 MiB through us, which would also compete with it for the CPU.
 */
void
cfs_backing_await(struct cfs *fs, const char *path, const struct cpx_attr *v)
{
	uint64_t until = cpx_now_ms() + COPY_WAIT_MS;
	struct timespec ts = { (time_t)(until / 1000),
	    (long)(until % 1000) * 1000000L };
	struct rec *r;

	pthread_mutex_lock(&fs->cache_lock);
	while ((r = cfs_cache__rec(fs, path, 0)) != NULL && copy_pending(r) &&
	    cfs_same_version(&r->attr, v) &&
	    pthread_cond_timedwait(&fs->copy_cond, &fs->cache_lock, &ts) == 0)
		;
	pthread_mutex_unlock(&fs->cache_lock);
}

/* Whether path is complete, finished, and has no backing file yet. */
int
cfs_cache_wants_backing(struct cfs *fs, const char *path)
{
	struct rec *r;
	int yes;

	pthread_mutex_lock(&fs->cache_lock);
	r = cfs_cache__rec(fs, path, 0);
	yes = r != NULL && r->stable && r->pushed && !r->backing_busy &&
	    !has_copy(r) && cfs_cache__complete(r);
	pthread_mutex_unlock(&fs->cache_lock);
	return yes;
}

/*
 * Pins every block of a complete record (NULL if it is not): the caller
 * uses them outside the lock, then unpins them with unpin_all().
 */
struct block **
cfs_cache__pin_all(struct cfs *fs, struct rec *r, size_t *n)
{
	struct block **bs;
	size_t i;

	if (r == NULL || !cfs_cache__complete(r))
		return NULL;
	*n = (size_t)((r->attr.size + CFS_BLOCK - 1) / CFS_BLOCK);
	bs = cpx_xcalloc(*n, sizeof *bs);
	for (i = 0; i < *n; i++) {
		bs[i] = r->blocks[i];
		bs[i]->pins++;
	}
	return bs;
}

void
cfs_cache__unpin_all(struct cfs *fs, struct block **bs, size_t n)
{
	size_t i;

	pthread_mutex_lock(&fs->cache_lock);
	for (i = 0; i < n; i++)
		cfs_cache__unpin(bs[i]);
	pthread_mutex_unlock(&fs->cache_lock);
	free(bs);
}

/* The n blocks bs at offset off, in one write: 0 or -errno. */
static int
write_run(int fd, struct block **bs, size_t n, off_t off)
{
	struct iovec iov[WRITE_BLOCKS];
	size_t i, first = 0;
	ssize_t w;
	int error = 0;

	for (i = 0; i < n; i++) {
		iov[i].iov_base = bs[i]->data;
		iov[i].iov_len = bs[i]->len;
	}
	while (first < n && error == 0) {
		w = pwritev(fd, iov + first, (int)(n - first), off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			error = w < 0 ? -errno : -EIO;
			break;
		}
		off += w;
		while (first < n && (size_t)w >= iov[first].iov_len)
			w -= (ssize_t)iov[first++].iov_len;
		if (first < n) {
			iov[first].iov_base =
			    (uint8_t *)iov[first].iov_base + w;
			iov[first].iov_len -= (size_t)w;
		}
	}
	return error;
}

/*
 * The blocks the copy does not have yet (have: NULL, none), WRITE_BLOCKS
 * at a time: 0 or -errno. Each write returns to user space, where this
 * thread can be preempted: one 2 MiB write copies into one 2 MiB folio
 * without a preemption point (CONFIG_PREEMPT_NONE), and when the memory
 * behind that folio is new to the machine (a VM whose free memory went
 * back to its host) the copy takes 3-7 ms, during which a FUSE thread
 * woken on that CPU waits (traced with sched_switch).
 */
static int
write_blocks(int fd, struct block **bs, size_t n, const uint8_t *have)
{
	size_t i = 0, end;
	int error = 0;

	while (i < n && error == 0) {
		if (have != NULL && have[i]) {
			i++;
			continue;
		}
		for (end = i + 1; end < n && end - i < WRITE_BLOCKS &&
		    (have == NULL || !have[end]); end++)
			;
		error = write_run(fd, bs + i, end - i, (off_t)(i * CFS_BLOCK));
		i = end;
	}
	return error;
}

/*
 * A local file holding the n blocks of a file of size bytes, registered:
 * its id or -errno. fd: the copy written as the file was pushed (have[i]:
 * it holds block i; its bytes end at end), or -1 for a new one.
 */
static int
make_file(struct cfs *fs, struct block **bs, size_t n, uint64_t size,
    int fd, const uint8_t *have, uint64_t end)
{
	int id;

	if (fd < 0) {
		fd = openat(fs->rootfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC,
		    0600);
		if (fd < 0)
			return -errno;
		have = NULL;
	}
	id = write_blocks(fd, bs, n, have);
	if (id == 0 && end > size && ftruncate(fd, (off_t)size) != 0)
		id = -errno;	/* a longer version was pushed before */
	if (id == 0)
		id = cfs_kio_backing_open(fs, fd);
	close(fd);		/* the kernel holds its own reference */
	return id;
}

/* Under the lock: the new backing file goes to r, if still that version. */
static void
attach(struct cfs *fs, struct rec *r, int id, const struct cpx_attr *v)
{
	struct cache *c = C(fs);

	if (r == NULL || !cfs_same_version(&r->attr, v)) {
		cfs_kio_backing_close(fs, id);
		return;
	}
	cfs_backing__release(fs, r);
	r->backing = id;
	r->backing_version = *v;
	r->backing_bytes = v->size;
	r->backing_used = cpx_now_ms();
	c->backing_bytes += v->size;
	c->nbacking++;
	evict(fs);
}

/* Under the lock: opens waiting for r's copy go on, with it or without. */
static void
copy_settled(struct cfs *fs, struct rec *r)
{
	if (r != NULL)
		r->copy_coming = 0;
	pthread_cond_broadcast(&fs->copy_cond);
}

/*
 * Copy thread: the backing file of a complete, finished record. 0 when
 * made (or not wanted now), or -errno (-EOPNOTSUPP, -EPERM: passthrough
 * cannot work here).
 */
int
cfs_backing_make(struct cfs *fs, const char *path)
{
	struct cpx_attr v;
	struct block **bs;
	struct rec *r;
	uint64_t end = 0;
	uint8_t *have;
	size_t n = 0;
	int id, fd;

	pthread_mutex_lock(&fs->cache_lock);
	r = cfs_cache__rec(fs, path, 0);
	if (r == NULL || !r->stable || !r->pushed || r->backing_busy ||
	    has_copy(r) || (bs = cfs_cache__pin_all(fs, r, &n)) == NULL) {
		copy_settled(fs, r);
		pthread_mutex_unlock(&fs->cache_lock);
		return 0;
	}
	r->backing_busy = 1;
	v = r->attr;
	have = cpx_xcalloc(n > 0 ? n : 1, 1);
	fd = cfs_push__take_copy(fs, r, bs, n, have, &end);
	pthread_mutex_unlock(&fs->cache_lock);
	id = make_file(fs, bs, n, v.size, fd, have, end);
	free(have);
	pthread_mutex_lock(&fs->cache_lock);
	if ((r = cfs_cache__rec(fs, path, 0)) != NULL)
		r->backing_busy = 0;
	if (id > 0)
		attach(fs, r, id, &v);
	copy_settled(fs, r);
	pthread_mutex_unlock(&fs->cache_lock);
	cfs_cache__unpin_all(fs, bs, n);
	if (id > 0)
		cfs_backing_free_blocks(fs, path, cfs_node_find_path(fs, path));
	return id > 0 ? 0 : id;
}

/*
 * A record with a local copy keeps no second copy in memory once no open
 * file of it (node ino, 0: none known) reads through us: opens from now
 * on pass through. Its freed blocks serve the next segments from memory
 * this process has touched already; fresh pages would cost a page fault
 * and a zeroed page each, on the lane threads that receive pushes (a
 * third of their CPU, measured with perf, while the cache still grew).
 */
void
cfs_backing_free_blocks(struct cfs *fs, const char *path, fuse_ino_t ino)
{
	struct rec *r;

	if (ino != 0 && cfs_files_read_through_us(fs, ino))
		return;
	pthread_mutex_lock(&fs->cache_lock);
	r = cfs_cache__rec(fs, path, 0);
	if (r != NULL && has_copy(r))
		cfs_cache__drop_idle(fs, r);
	pthread_mutex_unlock(&fs->cache_lock);
}

/* Retired backing files are closed once no open can be choosing them. */
void
cfs_backing_tick(struct cfs *fs, int all)
{
	struct cache *c = C(fs);
	uint64_t now = cpx_now_ms();
	size_t i, kept = 0;

	pthread_mutex_lock(&fs->cache_lock);
	for (i = 0; i < c->nretired; i++) {
		if (all || now - c->retired[i].at >= RETIRE_MS)
			cfs_kio_backing_close(fs, c->retired[i].id);
		else
			c->retired[kept++] = c->retired[i];
	}
	c->nretired = kept;
	pthread_mutex_unlock(&fs->cache_lock);
}
