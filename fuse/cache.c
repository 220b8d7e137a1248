/* cache.c — remote file records and their blocks: fetch, versions, memory bound. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"

void
cfs_cache_init(struct cfs *fs)
{
	struct cache *c = cpx_xcalloc(1, sizeof *c);
	pthread_condattr_t ca;

	pthread_mutex_init(&fs->cache_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);	/* cpx_now_ms() */
	pthread_cond_init(&fs->copy_cond, &ca);
	pthread_condattr_destroy(&ca);
	c->nbuckets = BUCKETS;
	c->buckets = cpx_xcalloc(c->nbuckets, sizeof *c->buckets);
	c->budget = (size_t)fs->set.cache_mb * 1024 * 1024;
	c->lru.lru_next = c->lru.lru_prev = &c->lru;
	c->served.lru_next = c->served.lru_prev = &c->served;
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

struct rec *
cfs_cache__rec(struct cfs *fs, const char *path, int create)
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

/* The block is the most recent of its list. */
void
cfs_cache__touch(struct cache *c, struct block *b)
{
	struct block *head = b->served ? &c->served : &c->lru;

	lru_unlink(b);
	b->lru_next = head->lru_next;
	b->lru_prev = head;
	head->lru_next->lru_prev = b;
	head->lru_next = b;
}

/*
 * The kernel was handed the block up to its end, into its page cache: it
 * serves rereads itself, so our copy is kept for a while only. Bounding
 * these keeps this process's memory small and warm: a large file read
 * once no longer grows it to the whole budget of pages never reused,
 * each new page costing a fault and zeroing on the thread that receives.
 */
void
cfs_cache__served(struct cfs *fs, struct block *b)
{
	if (b->rec == NULL || b->state != B_READY)
		return;
	if (!b->served)
		C(fs)->served_bytes += b->len;
	b->served = 1;
	cfs_cache__touch(C(fs), b);
}

static void
block_free(struct block *b)
{
	free(b->mem);
	free(b->waiters);
	free(b);
}

void
cfs_cache__unpin(struct block *b)
{
	if (--b->pins == 0 && b->rec == NULL && b->state != B_PENDING)
		block_free(b);
}

static void fetch(struct cfs *fs, struct rec *r, struct block *b);

/*
 * Takes the block out of its record; it lives on while pinned. A block
 * awaiting a push is fetched instead: readers may be waiting on it, and
 * the push it awaited is for a version nobody wants now.
 */
static void
detach(struct cfs *fs, struct block *b)
{
	struct rec *r = b->rec;
	int awaited = b->awaiting;

	r->blocks[b->index] = NULL;
	if (b->state == B_READY) {
		C(fs)->bytes -= b->len;
		r->nready--;
	}
	if (b->served)
		C(fs)->served_bytes -= b->len;
	b->served = 0;
	lru_unlink(b);
	b->rec = NULL;
	if (b->pins == 0 && (b->state != B_PENDING ||
	    (awaited && b->nwaiters == 0))) {
		block_free(b);
	} else if (awaited) {
		/* Readers wait on it. Last: a fetch failing at once frees b. */
		b->awaiting = 0;
		fetch(fs, r, b);
	}
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
	r->pushed = 0;
	pthread_cond_broadcast(&fs->copy_cond);	/* opens waiting for a copy */
	cfs_backing__release(fs, r);
}

void
cfs_cache__remove(struct cfs *fs, struct rec *r)
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
void
cfs_cache__set_attr(struct cfs *fs, struct rec *r, const struct cpx_attr *a,
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

int
cfs_cache__complete(const struct rec *r)
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

/* Blocks nobody reads or waits on go (their bytes are elsewhere now). */
void
cfs_cache__drop_idle(struct cfs *fs, struct rec *r)
{
	size_t i;

	for (i = 0; i < r->nblocks; i++)
		if (r->blocks[i] != NULL && r->blocks[i]->state == B_READY &&
		    r->blocks[i]->pins == 0)
			detach(fs, r->blocks[i]);
}

/* Unpinned blocks of a list go, the oldest first, while *count > limit. */
static void
evict_list(struct cfs *fs, struct block *head, const size_t *count,
    size_t limit)
{
	struct block *b = head->lru_prev, *prev;

	for (; *count > limit && b != head; b = prev) {
		prev = b->lru_prev;
		if (b->pins == 0)
			detach(fs, b);
	}
}

/* Served blocks beyond SERVED_KEEP go; over budget, served ones first. */
void
cfs_cache__evict(struct cfs *fs)
{
	struct cache *c = C(fs);

	evict_list(fs, &c->served, &c->served_bytes, SERVED_KEEP);
	evict_list(fs, &c->served, &c->bytes, c->budget);
	evict_list(fs, &c->lru, &c->bytes, c->budget);
}

/* The block at index, new and pending if it was not there (no fetch yet). */
static struct block *
block_get(struct rec *r, uint64_t index, int *created)
{
	struct block *b;

	*created = 0;
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
	*created = 1;
	return b;
}

struct block *
cfs_cache__block(struct cfs *fs, struct rec *r, uint64_t index)
{
	int created;
	struct block *b = block_get(r, index, &created);

	if (created)
		fetch(fs, r, b);
	return b;
}

/* Like cfs_cache__block, but a new block waits for a push to fill it. */
struct block *
cfs_cache__block_await(struct cfs *fs, struct rec *r, uint64_t index)
{
	int created;
	struct block *b = block_get(r, index, &created);

	b->awaiting = created;
	return b;
}

/* The push it awaited will not come: fetch it after all. */
void
cfs_cache__fetch_awaited(struct cfs *fs, struct rec *r, struct block *b)
{
	if (!b->awaiting)
		return;
	b->awaiting = 0;
	fetch(fs, r, b);
}

/* An awaiting block gets its bytes (data, in mem, is taken over). */
void
cfs_cache__fill(struct cfs *fs, struct rec *r, struct block *b,
    uint8_t *data, void *mem, uint32_t len)
{
	b->awaiting = 0;
	b->data = data;
	b->mem = mem;
	b->len = len;
	b->state = B_READY;
	r->nready++;
	C(fs)->bytes += len;
	cfs_cache__touch(C(fs), b);
	cfs_cache__wake(b);
	if (r->want_store && cfs_cache__complete(r)) {
		r->want_store = 0;
		cfs_cache__whole(fs, r);
	}
}

/* A fetch ended; on success, b takes over data (in mem). */
static void
block_arrived(struct cfs *fs, struct block *b, int status,
    const struct cpx_attr *a, uint8_t *data, void *mem, size_t len)
{
	struct rec *r = b->rec;

	if (status == 0) {
		b->data = data;
		b->mem = mem;
		b->len = (uint32_t)len;
	}
	if (r != NULL && status == 0) {
		/* A new version drops the other blocks, not this one. */
		r->blocks[b->index] = NULL;
		cfs_cache__set_attr(fs, r, a, PREAD_TTL_MS);
		r->blocks[b->index] = b;
	}
	if (b->rec != NULL && status == 0) {
		b->state = B_READY;
		r->nready++;
		C(fs)->bytes += len;
		cfs_cache__touch(C(fs), b);
	} else {
		b->state = status == 0 ? B_READY : -1;
		b->error = status;
		if (b->rec != NULL)
			detach(fs, b);	/* failed: the next read tries again */
	}
	cfs_cache__wake(b);
	if (r != NULL && b->rec != NULL && r->want_store && cfs_cache__complete(r)) {
		r->want_store = 0;
		cfs_cache__whole(fs, r);
	}
}

static void
on_fetched(struct cfs *fs, struct cfs_call *c, int status,
    struct cpx_reader *rd)
{
	struct block *b = c->arg;
	uint8_t *data = NULL;
	void *mem = NULL;
	struct cpx_attr a;
	size_t len = 0;

	if (status == 0) {
		cpx_attr_get(rd, &a);
		data = (uint8_t *)cpx_rd_str(rd, &len, CFS_BLOCK);
		if (rd->err)
			status = -EIO;
		else
			data = cfs_keep_bytes(c->link, c->reply, data, len,
			    &mem);
	}
	pthread_mutex_lock(&fs->cache_lock);
	block_arrived(fs, b, status, &a, data, mem, len);
	cfs_cache__unpin(b);
	cfs_cache__evict(fs);
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
	r = cfs_cache__rec(fs, path, 1);
	if (r->worker == NULL)
		r->worker = cpx_xstrdup(worker);
	cfs_cache__set_attr(fs, r, a, EVENT_TTL_MS);
	if (!cfs_cache__held(r)) {
		r->want_store = 1;
		for (i = 0; i < n; i++)
			cfs_cache__block(fs, r, i);
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
	r = cfs_cache__rec(fs, path, 0);
	yes = r != NULL && cfs_cache__complete(r) && r->stored_ino != ino;
	pthread_mutex_unlock(&fs->cache_lock);
	return yes;
}

void
cfs_cache_mark_stored(struct cfs *fs, const char *path, uint64_t ino)
{
	struct rec *r;

	pthread_mutex_lock(&fs->cache_lock);
	if ((r = cfs_cache__rec(fs, path, 0)) != NULL)
		r->stored_ino = ino;
	pthread_mutex_unlock(&fs->cache_lock);
}

int
cfs_cache_complete(struct cfs *fs, const char *path)
{
	struct rec *r;
	int complete;

	pthread_mutex_lock(&fs->cache_lock);
	r = cfs_cache__rec(fs, path, 0);
	complete = r != NULL && cfs_cache__complete(r);
	pthread_mutex_unlock(&fs->cache_lock);
	return complete;
}

/*
 * Calls fn on each block of a complete record, outside the lock; *version
 * (if not NULL) is the version those blocks make up.
 */
int
cfs_cache_each_block(struct cfs *fs, const char *path, cfs_block_fn fn,
    void *arg, struct cpx_attr *version)
{
	struct block **bs;
	struct rec *r;
	size_t i, n = 0;
	int error = 0;

	pthread_mutex_lock(&fs->cache_lock);
	r = cfs_cache__rec(fs, path, 0);
	if ((bs = cfs_cache__pin_all(fs, r, &n)) == NULL) {
		pthread_mutex_unlock(&fs->cache_lock);
		return -EAGAIN;
	}
	if (version != NULL)
		*version = r->attr;
	pthread_mutex_unlock(&fs->cache_lock);
	for (i = 0; i < n && error == 0; i++)
		error = fn(fs, bs[i]->index * CFS_BLOCK, bs[i]->data,
		    bs[i]->len, arg);
	cfs_cache__unpin_all(fs, bs, n);
	return error;
}

/* Fresh attributes of a remote path, if known: 1, else 0. */
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
			cfs_cache__remove(fs, r);
		}
	}
	cfs_push__free_all(fs);
	free(c->retired);
	free(c->buckets);
	free(c);
	fs->cache = NULL;
	pthread_mutex_destroy(&fs->cache_lock);
	pthread_cond_destroy(&fs->copy_cond);
}

