/* cache.c — remote attributes and file blocks in memory, with read-ahead. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "cfs.h"

/*
 * One record per remote path: its attributes as last seen, and the blocks
 * of its contents fetched so far (CFS_BLOCK bytes each, one PREAD each).
 * Blocks belong to one version of the file (size and mtime); when a reply
 * or an event shows another version, the old blocks are dropped. A FUSE
 * read that needs a block still in flight waits on it instead of fetching
 * it twice. Ready blocks sit on an LRU list bounded by CLUSTERPLEX_FUSE_CACHE_MB.
 * Everything here is under fs->cache_lock.
 */

enum { B_PENDING, B_READY };

struct reader;

struct block {
	struct rec *rec;	/* NULL once dropped; freed when unpinned */
	uint64_t index;
	uint8_t *data;
	uint32_t len;
	int state;
	int error;		/* why the fetch failed */
	unsigned pins;		/* fetch in flight, readers, stores */
	struct reader **waiters;
	size_t nwaiters;
	struct block *lru_prev, *lru_next;
};

struct rec {
	char *path;
	char *worker;
	struct cpx_attr attr;
	int has_attr;
	uint64_t attr_expires;	/* cpx_now_ms() */
	struct block **blocks;
	size_t nblocks;
	size_t nready;
	int want_store;		/* fetched ahead: push into the kernel when whole */
	int stable;		/* reported finished, unchanged since */
	uint64_t stored_ino;	/* the inode whose page cache holds it all */
	struct rec *hnext;
};

struct reader {
	fuse_req_t req;
	uint64_t off;
	size_t size;
	unsigned missing;
	int error;
	struct block **blocks;
	size_t nb;
};

struct cache {
	struct rec **buckets;
	size_t nbuckets, nrecs;
	size_t bytes, budget;
	struct block lru;	/* sentinel: lru.lru_next is the most recent */
};

#define BUCKETS 4096
#define PREAD_TTL_MS 1000
#define EVENT_TTL_MS 60000	/* the watch reports any later change */
#define NEAR (2u * CFS_BLOCK)	/* reads this close to the last count as sequential */

#define C(fs) ((struct cache *)(fs)->cache)

void
cfs_cache_init(struct cfs *fs)
{
	struct cache *c = cpx_xcalloc(1, sizeof *c);

	pthread_mutex_init(&fs->cache_lock, NULL);
	c->nbuckets = BUCKETS;
	c->buckets = cpx_xcalloc(c->nbuckets, sizeof *c->buckets);
	c->budget = (size_t)fs->set.cache_mb * 1024 * 1024;
	c->lru.lru_next = c->lru.lru_prev = &c->lru;
	fs->cache = c;
}

static size_t
hash(const char *s, size_t nb)
{
	uint64_t h = 1469598103934665603ull;

	while (*s != '\0') {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ull;
	}
	return (size_t)(h % nb);
}

static struct rec *
rec_get(struct cfs *fs, const char *path, int create)
{
	struct cache *c = C(fs);
	size_t b = hash(path, c->nbuckets);
	struct rec *r;

	for (r = c->buckets[b]; r != NULL; r = r->hnext)
		if (strcmp(r->path, path) == 0)
			return r;
	if (!create)
		return NULL;
	r = cpx_xcalloc(1, sizeof *r);
	r->path = cpx_xstrdup(path);
	r->hnext = c->buckets[b];
	c->buckets[b] = r;
	c->nrecs++;
	return r;
}

static void
lru_unlink(struct block *b)
{
	if (b->lru_next == NULL)
		return;
	b->lru_prev->lru_next = b->lru_next;
	b->lru_next->lru_prev = b->lru_prev;
	b->lru_next = b->lru_prev = NULL;
}

static void
lru_touch(struct cache *c, struct block *b)
{
	lru_unlink(b);
	b->lru_next = c->lru.lru_next;
	b->lru_prev = &c->lru;
	c->lru.lru_next->lru_prev = b;
	c->lru.lru_next = b;
}

static void
block_free(struct block *b)
{
	free(b->data);
	free(b->waiters);
	free(b);
}

static void
unpin(struct block *b)
{
	if (--b->pins == 0 && b->rec == NULL && b->state != B_PENDING)
		block_free(b);
}

/* Takes the block out of its record; it lives on while pinned. */
static void
detach(struct cfs *fs, struct block *b)
{
	struct rec *r = b->rec;

	r->blocks[b->index] = NULL;
	if (b->state == B_READY) {
		C(fs)->bytes -= b->len;
		r->nready--;
	}
	lru_unlink(b);
	b->rec = NULL;
	if (b->pins == 0 && b->state != B_PENDING)
		block_free(b);
}

static void
drop_blocks(struct cfs *fs, struct rec *r)
{
	size_t i;

	for (i = 0; i < r->nblocks; i++)
		if (r->blocks[i] != NULL)
			detach(fs, r->blocks[i]);
	r->want_store = 0;
	r->stored_ino = 0;
}

static void
rec_remove(struct cfs *fs, struct rec *r)
{
	struct cache *c = C(fs);
	struct rec **pp = &c->buckets[hash(r->path, c->nbuckets)];

	while (*pp != r)
		pp = &(*pp)->hnext;
	*pp = r->hnext;
	drop_blocks(fs, r);
	c->nrecs--;
	free(r->blocks);
	free(r->path);
	free(r->worker);
	free(r);
}

static int
same_version(const struct cpx_attr *a, const struct cpx_attr *b)
{
	return a->size == b->size && a->mtime_s == b->mtime_s &&
	    a->mtime_ns == b->mtime_ns;
}

/* New attributes; the blocks go if they belong to another version. */
static void
rec_set_attr(struct cfs *fs, struct rec *r, const struct cpx_attr *a,
    uint64_t ttl_ms)
{
	uint64_t expires = cpx_now_ms() + ttl_ms;

	if (r->has_attr && !same_version(&r->attr, a)) {
		drop_blocks(fs, r);
		r->stable = 0;
	} else if (r->has_attr && r->attr_expires > expires && ttl_ms > 0)
		expires = r->attr_expires;	/* the watch vouches for longer */
	r->attr = *a;
	r->has_attr = 1;
	r->attr_expires = expires;
}

static size_t
blocks_for(uint64_t size)
{
	return (size_t)((size + CFS_BLOCK - 1) / CFS_BLOCK);
}

static int
rec_complete(const struct rec *r)
{
	size_t i, n;

	if (!r->has_attr || r->attr.size == 0 || r->nready == 0)
		return 0;
	n = blocks_for(r->attr.size);
	if (n > r->nblocks)
		return 0;
	for (i = 0; i < n; i++)
		if (r->blocks[i] == NULL || r->blocks[i]->state != B_READY)
			return 0;
	return 1;
}

static void
evict(struct cfs *fs)
{
	struct cache *c = C(fs);
	struct block *b = c->lru.lru_prev, *prev;

	for (; c->bytes > c->budget && b != &c->lru; b = prev) {
		prev = b->lru_prev;
		if (b->pins == 0)
			detach(fs, b);
	}
}

static void
reply_reader(struct reader *rd)
{
	struct iovec iov[8];
	uint64_t end = rd->off + rd->size;
	size_t i, n = 0;

	for (i = 0; i < rd->nb && n < CPX_ARRAY_SIZE(iov); i++) {
		struct block *b = rd->blocks[i];
		uint64_t bstart = b->index * CFS_BLOCK;
		uint64_t from = rd->off > bstart ? rd->off - bstart : 0;
		uint64_t to = end - bstart < b->len ? end - bstart : b->len;

		if (from >= to)
			break;
		iov[n].iov_base = b->data + from;
		iov[n++].iov_len = (size_t)(to - from);
		if (b->len < CFS_BLOCK)
			break;	/* end of file */
	}
	fuse_reply_iov(rd->req, iov, (int)n);
}

static void
reader_done(struct reader *rd)
{
	size_t i;

	/*
	 * A file the worker no longer has as it was (deleted, renamed or
	 * replaced by a folder there while open) is stale, as on NFS;
	 * anything else is an I/O error.
	 */
	if (rd->error != 0)
		fuse_reply_err(rd->req, rd->error == -ENOENT ||
		    rd->error == -ENOTDIR || rd->error == -EISDIR ||
		    rd->error == -EINVAL ? ESTALE : EIO);
	else
		reply_reader(rd);
	for (i = 0; i < rd->nb; i++)
		unpin(rd->blocks[i]);
	free(rd->blocks);
	free(rd);
}

static void fetch(struct cfs *fs, struct rec *r, struct block *b);

static struct block *
block_get(struct cfs *fs, struct rec *r, uint64_t index)
{
	struct block *b;

	if (index >= r->nblocks) {
		size_t n = (size_t)index + 1 > 2 * r->nblocks ?
		    (size_t)index + 1 : 2 * r->nblocks;

		r->blocks = cpx_xrealloc(r->blocks, n * sizeof *r->blocks);
		memset(r->blocks + r->nblocks, 0,
		    (n - r->nblocks) * sizeof *r->blocks);
		r->nblocks = n;
	}
	if ((b = r->blocks[index]) != NULL)
		return b;
	b = cpx_xcalloc(1, sizeof *b);
	b->rec = r;
	b->index = index;
	b->state = B_PENDING;
	r->blocks[index] = b;
	fetch(fs, r, b);
	return b;
}

static void
wake(struct block *b)
{
	struct reader **w = b->waiters;
	size_t i, n = b->nwaiters;

	b->waiters = NULL;
	b->nwaiters = 0;
	for (i = 0; i < n; i++) {
		if (b->state != B_READY)
			w[i]->error = b->error != 0 ? b->error : -EIO;
		if (--w[i]->missing == 0)
			reader_done(w[i]);
	}
	free(w);
}

static void
block_arrived(struct cfs *fs, struct block *b, int status,
    const struct cpx_attr *a, const uint8_t *data, size_t len)
{
	struct rec *r = b->rec;

	if (status == 0) {
		b->data = cpx_xmalloc(len > 0 ? len : 1);
		memcpy(b->data, data, len);
		b->len = (uint32_t)len;
	}
	if (r != NULL && status == 0) {
		/* A new version drops the other blocks, not this one. */
		r->blocks[b->index] = NULL;
		rec_set_attr(fs, r, a, PREAD_TTL_MS);
		r->blocks[b->index] = b;
	}
	if (b->rec != NULL && status == 0) {
		b->state = B_READY;
		r->nready++;
		C(fs)->bytes += len;
		lru_touch(C(fs), b);
	} else {
		b->state = status == 0 ? B_READY : -1;
		b->error = status;
		if (b->rec != NULL)
			detach(fs, b);	/* failed: the next read tries again */
	}
	wake(b);
	if (r != NULL && b->rec != NULL && r->want_store && rec_complete(r)) {
		r->want_store = 0;
		cfs_notify_store(fs, r->path);
	}
}

static void
on_fetched(struct cfs *fs, struct cfs_call *c, int status,
    struct cpx_reader *rd)
{
	struct block *b = c->arg;
	const uint8_t *data = NULL;
	struct cpx_attr a;
	size_t len = 0;

	if (status == 0) {
		cpx_attr_get(rd, &a);
		data = cpx_rd_str(rd, &len, CFS_BLOCK);
		if (rd->err)
			status = -EIO;
	}
	pthread_mutex_lock(&fs->cache_lock);
	block_arrived(fs, b, status, &a, data, len);
	unpin(b);
	evict(fs);
	pthread_mutex_unlock(&fs->cache_lock);
}

static void
fetch(struct cfs *fs, struct rec *r, struct block *b)
{
	struct cfs_call *c = cfs_call_new(r->worker, on_fetched, b);
	struct cpx_freq q = {
		.op = CPX_FOP_PREAD, .path = r->path,
		.offset = b->index * CFS_BLOCK, .size = CFS_BLOCK,
	};

	b->pins++;
	c->bulk = 1;
	cpx_freq_put(&c->req, &q);
	cfs_call_submit(fs, c);
}

static void
read_ahead(struct cfs *fs, struct rec *r, struct cfs_file *f, uint64_t off,
    size_t size)
{
	unsigned max = (unsigned)(fs->set.readahead_kb * 1024 / CFS_BLOCK);
	uint64_t i, last = (off + size - 1) / CFS_BLOCK;

	if (off + NEAR >= f->next_off && off <= f->next_off + NEAR)
		f->ra_blocks = f->ra_blocks == 0 ? 2 : f->ra_blocks * 2;
	else
		f->ra_blocks = 0;
	if (f->ra_blocks > max)
		f->ra_blocks = max;
	f->next_off = off + size;
	if (f->ra_blocks == 0 || !r->has_attr)
		return;
	for (i = last + 1; i <= last + f->ra_blocks &&
	    i * CFS_BLOCK < r->attr.size; i++)
		block_get(fs, r, i);
}

/* Answers a FUSE read of a remote file, now or when its blocks arrive. */
void
cfs_cache_read(struct cfs *fs, fuse_req_t req, struct cfs_file *f,
    uint64_t off, size_t size)
{
	struct reader *rd;
	struct block *b;
	struct rec *r;
	uint64_t i, first = off / CFS_BLOCK, last;
	char *path;

	if (size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	last = (off + size - 1) / CFS_BLOCK;
	rd = cpx_xcalloc(1, sizeof *rd);
	rd->req = req;
	rd->off = off;
	rd->size = size;
	rd->blocks = cpx_xcalloc((size_t)(last - first + 1), sizeof *rd->blocks);
	/*
	 * Renames through the mount move open files along: read the node's
	 * name of now (or, once it is removed, the name it was opened by).
	 */
	path = cfs_node_path(fs, f->ino, NULL);
	pthread_mutex_lock(&fs->cache_lock);
	r = rec_get(fs, path != NULL ? path : f->path, 1);
	free(path);
	if (r->worker == NULL)
		r->worker = cpx_xstrdup(f->worker);
	rd->missing = 1;	/* held until every block is counted */
	for (i = first; i <= last; i++) {
		b = block_get(fs, r, i);
		b->pins++;
		rd->blocks[rd->nb++] = b;
		if (b->state == B_READY) {
			lru_touch(C(fs), b);
			continue;
		}
		b->waiters = cpx_xrealloc(b->waiters,
		    (b->nwaiters + 1) * sizeof *b->waiters);
		b->waiters[b->nwaiters++] = rd;
		rd->missing++;
	}
	read_ahead(fs, r, f, off, size);
	if (--rd->missing == 0)
		reader_done(rd);
	pthread_mutex_unlock(&fs->cache_lock);
}

/*
 * Fetches a finished file whole, ahead of PMS's read, and pushes it into
 * the kernel's page cache when it is complete. Returns 1 if it started.
 */
int
cfs_cache_prefetch(struct cfs *fs, const char *worker, const char *path,
    const struct cpx_attr *a)
{
	uint64_t i, n = blocks_for(a->size);
	struct rec *r;
	int started = 0;

	if (a->size == 0 || !S_ISREG(a->mode) ||
	    a->size > (uint64_t)fs->set.prefetch_max_mb * 1024 * 1024)
		return 0;
	pthread_mutex_lock(&fs->cache_lock);
	r = rec_get(fs, path, 1);
	if (r->worker == NULL)
		r->worker = cpx_xstrdup(worker);
	rec_set_attr(fs, r, a, EVENT_TTL_MS);
	if (!rec_complete(r)) {
		r->want_store = 1;
		for (i = 0; i < n; i++)
			block_get(fs, r, i);
		started = 1;
	}
	pthread_mutex_unlock(&fs->cache_lock);
	return started;
}

/*
 * Whether the kernel should be handed the file's bytes for inode ino: it
 * is whole here and was not pushed to that inode already (every open
 * would copy it again otherwise). ino 0 marks it as not pushed anywhere.
 */
int
cfs_cache_should_store(struct cfs *fs, const char *path, uint64_t ino)
{
	struct rec *r;
	int yes;

	pthread_mutex_lock(&fs->cache_lock);
	r = rec_get(fs, path, 0);
	yes = r != NULL && rec_complete(r) && r->stored_ino != ino;
	pthread_mutex_unlock(&fs->cache_lock);
	return yes;
}

void
cfs_cache_mark_stored(struct cfs *fs, const char *path, uint64_t ino)
{
	struct rec *r;

	pthread_mutex_lock(&fs->cache_lock);
	if ((r = rec_get(fs, path, 0)) != NULL)
		r->stored_ino = ino;
	pthread_mutex_unlock(&fs->cache_lock);
}

int
cfs_cache_complete(struct cfs *fs, const char *path)
{
	struct rec *r;
	int complete;

	pthread_mutex_lock(&fs->cache_lock);
	r = rec_get(fs, path, 0);
	complete = r != NULL && rec_complete(r);
	pthread_mutex_unlock(&fs->cache_lock);
	return complete;
}

/* Calls fn on each block of a complete record, outside the lock. */
int
cfs_cache_each_block(struct cfs *fs, const char *path, cfs_block_fn fn,
    void *arg)
{
	struct block **bs = NULL;
	struct rec *r;
	size_t i, n = 0;
	int error = 0;

	pthread_mutex_lock(&fs->cache_lock);
	r = rec_get(fs, path, 0);
	if (r == NULL || !rec_complete(r)) {
		pthread_mutex_unlock(&fs->cache_lock);
		return -EAGAIN;
	}
	n = blocks_for(r->attr.size);
	bs = cpx_xcalloc(n, sizeof *bs);
	for (i = 0; i < n; i++) {
		bs[i] = r->blocks[i];
		bs[i]->pins++;
	}
	pthread_mutex_unlock(&fs->cache_lock);
	for (i = 0; i < n && error == 0; i++)
		error = fn(fs, bs[i]->index * CFS_BLOCK, bs[i]->data,
		    bs[i]->len, arg);
	pthread_mutex_lock(&fs->cache_lock);
	for (i = 0; i < n; i++)
		unpin(bs[i]);
	pthread_mutex_unlock(&fs->cache_lock);
	free(bs);
	return error;
}

/* Fresh attributes of a remote path, if known: 1, else 0. */
int
cfs_cache_attr(struct cfs *fs, const char *path, struct cpx_attr *a)
{
	struct rec *r;
	int fresh;

	pthread_mutex_lock(&fs->cache_lock);
	r = rec_get(fs, path, 0);
	fresh = r != NULL && r->has_attr && cpx_now_ms() < r->attr_expires;
	if (fresh)
		*a = r->attr;
	pthread_mutex_unlock(&fs->cache_lock);
	return fresh;
}

void
cfs_cache_set_attr(struct cfs *fs, const char *path, const struct cpx_attr *a,
    uint64_t ttl_ms)
{
	pthread_mutex_lock(&fs->cache_lock);
	rec_set_attr(fs, rec_get(fs, path, 1), a, ttl_ms);
	pthread_mutex_unlock(&fs->cache_lock);
}

/*
 * A finished segment does not change again: the kernel may cache its
 * attributes for long (an event would invalidate them anyway).
 */
void
cfs_cache_set_stable(struct cfs *fs, const char *path, int stable)
{
	struct rec *r;

	pthread_mutex_lock(&fs->cache_lock);
	if ((r = rec_get(fs, path, 0)) != NULL)
		r->stable = stable;
	pthread_mutex_unlock(&fs->cache_lock);
}

int
cfs_cache_stable(struct cfs *fs, const char *path)
{
	struct rec *r;
	int stable;

	pthread_mutex_lock(&fs->cache_lock);
	r = rec_get(fs, path, 0);
	stable = r != NULL && r->stable;
	pthread_mutex_unlock(&fs->cache_lock);
	return stable;
}

void
cfs_cache_forget(struct cfs *fs, const char *path)
{
	struct rec *r;

	pthread_mutex_lock(&fs->cache_lock);
	if ((r = rec_get(fs, path, 0)) != NULL)
		rec_remove(fs, r);
	pthread_mutex_unlock(&fs->cache_lock);
}

static int
under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Drops what is known below dir (or, with dir NULL, stale empty records). */
static void
sweep(struct cfs *fs, const char *dir)
{
	struct cache *c = C(fs);
	uint64_t now = cpx_now_ms();
	struct rec *r, *next;
	size_t i;

	pthread_mutex_lock(&fs->cache_lock);
	for (i = 0; i < c->nbuckets; i++) {
		for (r = c->buckets[i]; r != NULL; r = next) {
			next = r->hnext;
			if (dir != NULL ? under(r->path, dir) :
			    (r->nready == 0 && now >= r->attr_expires &&
			    !r->want_store))
				rec_remove(fs, r);
		}
	}
	pthread_mutex_unlock(&fs->cache_lock);
}

void
cfs_cache_forget_under(struct cfs *fs, const char *dir)
{
	sweep(fs, dir);
}

void
cfs_cache_sweep(struct cfs *fs)
{
	sweep(fs, NULL);
}

size_t
cfs_cache_bytes(struct cfs *fs)
{
	size_t n;

	pthread_mutex_lock(&fs->cache_lock);
	n = C(fs)->bytes;
	pthread_mutex_unlock(&fs->cache_lock);
	return n;
}

void
cfs_cache_free(struct cfs *fs)
{
	struct cache *c = C(fs);
	struct rec *r, *next;
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nbuckets; i++) {
		for (r = c->buckets[i]; r != NULL; r = next) {
			next = r->hnext;
			rec_remove(fs, r);
		}
	}
	free(c->buckets);
	free(c);
	fs->cache = NULL;
	pthread_mutex_destroy(&fs->cache_lock);
}
