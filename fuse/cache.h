/* cache.h — the cache's insides, shared by cache.c, cache_read.c and cache_attr.c. */

#ifndef CFS_CACHE_H
#define CFS_CACHE_H

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
	uint8_t *data;		/* in mem, which is freed with the block */
	void *mem;
	uint32_t len;
	int state;
	int error;		/* why the fetch failed */
	unsigned pins;		/* fetch in flight, readers, stores */
	int awaiting;		/* pending, but no fetch: a push will fill it */
	int served;		/* read to its end into the kernel's page cache:
				   on the served list, not the LRU */
	uint64_t gen;		/* the push its bytes came in (push.c), 0:
				   fetched */
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
	int pushed;		/* lane 0's agent pushed this version: the
				   worker wrote it (not us), so it may be
				   passed through (backing.c) */
	int backing;		/* passthrough backing file id, 0: none */
	int backing_busy;	/* being made */
	int copy_coming;	/* asked for now: opens wait for it */
	uint64_t src_dev, src_ino;	/* the worker's file it was pushed as */
	struct cpx_attr backing_version;
	uint64_t backing_bytes, backing_used;
	struct rec *hnext;
};

struct reader {
	struct cfs *fs;
	fuse_req_t req;
	uint64_t off;
	size_t size;
	int pinned;		/* the file's version at open: serve that only */
	struct cpx_attr pin;
	int cached;		/* the kernel keeps what it is sent (no direct I/O) */
	unsigned missing;
	int error;
	struct block **blocks;
	size_t nb;
};

/*
 * What a worker pushed of one file (push.c), until the file's COMPLETE
 * event hands the blocks over to the record of its final name. Blocks
 * of share s come from lane s; `done` says which shares vouched (DONE)
 * that their blocks make up version[s] of the file.
 */
struct pstream {
	char *worker;
	uint64_t dev, ino;
	uint8_t **data;		/* per block: as last pushed, or NULL */
	void **mem;		/* per block: what data lies in, to free */
	uint32_t *len;
	uint64_t *gen;		/* per block: the push it came in */
	uint64_t *copied;	/* per block: the push copy_fd holds, 0: none */
	size_t nblocks;
	int copy_fd;		/* the copy being written as pushes come, or -1 */
	uint64_t copy_end;	/* the end of what it holds */
	int copy_queued;	/* the copy thread will write what is new */
	uint32_t done;		/* shares whose DONE still holds */
	uint32_t dropped;	/* shares that said DROP since */
	struct cpx_attr version[CPX_PUSH_SHARES_MAX];
	char *adopter;		/* the path waiting for shares, or NULL */
	struct cpx_attr adopt_version;
	uint32_t awaited;	/* shares the adopter waits for */
	uint64_t touched;	/* ms: last frame or adoption */
	struct pstream *next;
};

struct cache {
	struct rec **buckets;
	size_t nbuckets, nrecs;
	size_t bytes, budget;
	struct block lru;	/* sentinel: lru.lru_next is the most recent */
	struct block served;	/* sentinel: blocks the kernel was handed */
	size_t served_bytes;	/* at most SERVED_KEEP after each eviction */
	struct pstream *streams;
	size_t nstreams;
	size_t push_bytes;	/* in streams; at most budget / 2 */
	uint64_t pushes;	/* blocks pushed so far: their gen */
	size_t reported_n, reported_bytes;	/* last logged */
	size_t nbacking;
	uint64_t backing_bytes;
	struct retired {
		int id;
		uint64_t at;
	} *retired;		/* backing files closed soon (backing.c) */
	size_t nretired;
};

#define BUCKETS 4096
#define SERVED_KEEP (4u << 20)	/* few: their memory is reused warm */
#define PREAD_TTL_MS 1000
#define EVENT_TTL_MS 60000	/* the watch reports any later change */
#define NEAR (4u << 20)	/* reads this close to the last count as sequential */
#define COPY_WAIT_MS 20	/* an open waits this long at most for a copy */

#define C(fs) ((struct cache *)(fs)->cache)

/* cache.c */
struct rec *cfs_cache__rec(struct cfs *fs, const char *path, int create);
struct block *cfs_cache__block(struct cfs *fs, struct rec *r, uint64_t index);
struct block *cfs_cache__block_await(struct cfs *fs, struct rec *r,
    uint64_t index);
void cfs_cache__fetch_awaited(struct cfs *fs, struct rec *r, struct block *b);
void cfs_cache__fill(struct cfs *fs, struct rec *r, struct block *b,
    uint8_t *data, void *mem, uint32_t len);
int cfs_cache__complete(const struct rec *r);
int cfs_cache__held(const struct rec *r);
void cfs_cache__drop_idle(struct cfs *fs, struct rec *r);
void cfs_cache__served(struct cfs *fs, struct block *b);
void cfs_cache__evict(struct cfs *fs);
void cfs_cache__unpin(struct block *b);
void cfs_cache__touch(struct cache *c, struct block *b);
void cfs_cache__set_attr(struct cfs *fs, struct rec *r,
    const struct cpx_attr *a, uint64_t ttl_ms);
void cfs_cache__remove(struct cfs *fs, struct rec *r);

/* cache_read.c */
void cfs_cache__wake(struct block *b);

/* push.c */
void cfs_push__free_all(struct cfs *fs);
int cfs_push__take_copy(struct cfs *fs, const struct rec *r,
    struct block **bs, size_t n, uint8_t *have, uint64_t *end);

/* backing.c */
void cfs_backing__release(struct cfs *fs, struct rec *r);
void cfs_cache__whole(struct cfs *fs, struct rec *r);
struct block **cfs_cache__pin_all(struct cfs *fs, struct rec *r, size_t *n);
void cfs_cache__unpin_all(struct cfs *fs, struct block **bs, size_t n);

#endif /* CFS_CACHE_H */
