/* push.c — file contents workers push while they are written. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"

/*
 * Every lane's agent watches each routed folder with PUSH share k of n
 * (k its lane): the blocks i of a file with i % n == k come over lane k,
 * as the transcoder writes them, so that n connections (and n threads
 * decrypting) carry a segment while it is still being written. Lane 0's
 * agent also sends the events, and its DONE or DROP for a completed file
 * comes right before that file's COMPLETE event: at that event the
 * blocks pushed for the file move to the record of its name
 * (cfs_cache_adopt); the shares of other lanes not DONE yet are awaited
 * (their blocks stay pending without a fetch), and fetched after all if
 * that lane drops the file, loses its connection, or stays silent for
 * PUSH_WAIT_MS. Anything not pushed is fetched as before.
 *
 * With passthrough, the copy thread (notify.c) writes each pushed block into
 * the stream's local copy as it comes (cfs_push_copy): when the file
 * completes, the copy its opens pass through to is mostly written, and
 * backing.c writes only the rest. Every pushed block gets a number (gen)
 * that follows its bytes into the record, so the copy's blocks are
 * known to be the record's, even when a block was pushed again.
 *
 * Thread safety: lane threads, the loop thread and the copy thread,
 * under fs->cache_lock.
 */

#define PUSH_WAIT_MS 1000	/* an awaited share silent this long: fetch */
#define STREAM_IDLE_MS 30000	/* streams nobody completed: forgotten */

static struct pstream *
stream_find(struct cfs *fs, const char *worker, uint64_t dev, uint64_t ino,
    int create)
{
	struct cache *c = C(fs);
	struct pstream *ps;

	for (ps = c->streams; ps != NULL; ps = ps->next)
		if (ps->dev == dev && ps->ino == ino &&
		    strcmp(ps->worker, worker) == 0)
			return ps;
	if (!create)
		return NULL;
	ps = cpx_xcalloc(1, sizeof *ps);
	ps->worker = cpx_xstrdup(worker);
	ps->dev = dev;
	ps->ino = ino;
	ps->copy_fd = -1;
	ps->next = c->streams;
	c->streams = ps;
	c->nstreams++;
	return ps;
}

static void
drop_block(struct cfs *fs, struct pstream *ps, size_t i)
{
	if (i >= ps->nblocks || ps->data[i] == NULL)
		return;
	C(fs)->push_bytes -= ps->len[i];
	free(ps->mem[i]);
	ps->data[i] = NULL;
	ps->mem[i] = NULL;
	ps->len[i] = 0;
}

static void
stream_free(struct cfs *fs, struct pstream *ps)
{
	struct cache *c = C(fs);
	struct pstream **pp;
	size_t i;

	for (pp = &c->streams; *pp != ps; pp = &(*pp)->next)
		;
	*pp = ps->next;
	c->nstreams--;
	for (i = 0; i < ps->nblocks; i++)
		drop_block(fs, ps, i);
	if (ps->copy_fd >= 0)
		cfs_notify_close(fs, ps->copy_fd);
	free(ps->data);
	free(ps->mem);
	free(ps->len);
	free(ps->gen);
	free(ps->copied);
	free(ps->worker);
	free(ps->adopter);
	free(ps);
}

/* Nothing left to hand over and nobody waiting: the stream can go. */
static void
maybe_free(struct cfs *fs, struct pstream *ps)
{
	size_t i;

	if (ps->adopter != NULL)
		return;
	for (i = 0; i < ps->nblocks; i++)
		if (ps->data[i] != NULL)
			return;
	if (ps->done == 0)
		stream_free(fs, ps);
}

/*
 * Room for n more pushed bytes: the pushed data of streams nobody waits
 * for yet goes, stalest first (their files will be fetched instead).
 * 0, or -ENOSPC when even that cannot make room.
 */
static int
make_room(struct cfs *fs, struct pstream *keep, size_t n)
{
	struct cache *c = C(fs);
	struct pstream *ps, *old;
	size_t i;

	while (c->push_bytes + n > c->budget / 2) {
		old = NULL;
		for (ps = c->streams; ps != NULL; ps = ps->next)
			if (ps != keep && ps->adopter == NULL &&
			    (old == NULL || ps->touched < old->touched))
				old = ps;
		if (old == NULL)
			return -ENOSPC;
		for (i = 0; i < old->nblocks; i++)
			drop_block(fs, old, i);
		old->done = 0;
		maybe_free(fs, old);
	}
	return 0;
}

/* *a, an array of *n elements of size each, grown to n new, zeroed. */
static void *
grow_array(void *a, size_t size, size_t n, size_t n_new)
{
	a = cpx_xrealloc(a, n_new * size);
	memset((uint8_t *)a + n * size, 0, (n_new - n) * size);
	return a;
}

static void
grow_stream(struct pstream *ps, size_t i)
{
	size_t n = i + 1 > 2 * ps->nblocks ? i + 1 : 2 * ps->nblocks;

	ps->data = grow_array(ps->data, sizeof *ps->data, ps->nblocks, n);
	ps->mem = grow_array(ps->mem, sizeof *ps->mem, ps->nblocks, n);
	ps->len = grow_array(ps->len, sizeof *ps->len, ps->nblocks, n);
	ps->gen = grow_array(ps->gen, sizeof *ps->gen, ps->nblocks, n);
	ps->copied = grow_array(ps->copied, sizeof *ps->copied, ps->nblocks,
	    n);
	ps->nblocks = n;
}

static void
put_block(struct cfs *fs, struct pstream *ps, const struct cpx_push *m,
    struct cpx_link *link, const struct cpx_frame *f)
{
	size_t i = (size_t)(m->offset / CFS_BLOCK);

	/* Files larger than this are not pushed: nothing to keep for them. */
	if (m->offset >= (uint64_t)fs->set.prefetch_max_mb * 1024 * 1024)
		return;

	if (i >= ps->nblocks)
		grow_stream(ps, i);
	drop_block(fs, ps, i);
	if (make_room(fs, ps, m->len) != 0)
		return;		/* fetched at completion instead */
	ps->data[i] = cfs_keep_bytes(link, f, m->data, m->len, &ps->mem[i]);
	ps->len[i] = (uint32_t)m->len;
	ps->gen[i] = ++C(fs)->pushes;
	C(fs)->push_bytes += m->len;
	if (fs->pt_on && !ps->copy_queued) {
		ps->copy_queued = 1;
		cfs_notify_push_copy(fs, ps->worker, ps->dev, ps->ino);
	}
}

static int
same_version(const struct cpx_attr *a, const struct cpx_attr *b)
{
	return a->size == b->size && a->mtime_s == b->mtime_s &&
	    a->mtime_ns == b->mtime_ns;
}

static int
share_ok(const struct pstream *ps, unsigned share, const struct cpx_attr *a)
{
	return (ps->done & (1u << share)) &&
	    same_version(&ps->version[share], a);
}

/* Hands block i of the stream to the record's block b, or fetches it. */
static void
hand_over(struct cfs *fs, struct pstream *ps, struct rec *r, struct block *b,
    size_t i)
{
	struct cache *c = C(fs);
	uint8_t *data;
	void *mem;
	uint32_t len;

	/* A block must be as long as the file says (a short one means EOF). */
	if (i >= ps->nblocks || ps->data[i] == NULL || (uint64_t)ps->len[i] !=
	    (r->attr.size - i * CFS_BLOCK < CFS_BLOCK ?
	    r->attr.size - i * CFS_BLOCK : CFS_BLOCK)) {
		cfs_cache__fetch_awaited(fs, r, b);
		return;
	}
	data = ps->data[i];
	mem = ps->mem[i];
	len = ps->len[i];
	ps->data[i] = NULL;
	ps->mem[i] = NULL;
	ps->len[i] = 0;
	c->push_bytes -= len;
	b->gen = ps->gen[i];
	cfs_cache__fill(fs, r, b, data, mem, len);
}

/*
 * The awaited share is in (DONE for the adopted version: its blocks fill
 * the record) or will not come (anything else: they are fetched). The
 * stream stays; callers free it with maybe_free() when done with it.
 */
static void
settle(struct cfs *fs, struct pstream *ps, unsigned share)
{
	unsigned n = (unsigned)fs->nlanes;
	int ok = share_ok(ps, share, &ps->adopt_version);
	struct rec *r;
	struct block *b;
	size_t i;

	if (!(ps->awaited & (1u << share)))
		return;
	ps->awaited &= ~(1u << share);
	r = cfs_cache__rec(fs, ps->adopter, 0);
	if (r != NULL && r->has_attr &&
	    same_version(&r->attr, &ps->adopt_version)) {
		for (i = share; i < r->nblocks; i += n) {
			if ((b = r->blocks[i]) == NULL || !b->awaiting)
				continue;
			if (ok)
				hand_over(fs, ps, r, b, i);
			else
				cfs_cache__fetch_awaited(fs, r, b);
		}
	}
	if (ps->awaited == 0) {
		free(ps->adopter);
		ps->adopter = NULL;
	}
}

/* Every awaited share is given up on: fetched instead. */
static void
give_up(struct cfs *fs, struct pstream *ps)
{
	unsigned share;

	for (share = 0; share < CPX_PUSH_SHARES_MAX; share++) {
		if (!(ps->awaited & (1u << share)))
			continue;
		ps->done &= ~(1u << share);
		ps->dropped |= 1u << share;
		settle(fs, ps, share);
	}
}

/* Lane threads: one FPUSH frame f from the lane's agent (link may be NULL). */
void
cfs_push_frame(struct cfs *fs, struct cfs_worker *w, struct cpx_link *link,
    const struct cpx_frame *f)
{
	unsigned share = (unsigned)w->lane->index;
	struct pstream *ps;
	struct cpx_push m;
	size_t i;

	if (cpx_push_parse(f->payload, f->len, &m) != 0) {
		cpx_warn("worker %s: malformed push", w->name);
		return;
	}
	pthread_mutex_lock(&fs->cache_lock);
	ps = stream_find(fs, w->name, m.dev, m.ino, 1);
	ps->touched = cpx_now_ms();
	switch (m.kind) {
	case CPX_PUSH_DATA:
		ps->done &= ~(1u << share);
		ps->dropped &= ~(1u << share);
		put_block(fs, ps, &m, link, f);
		break;
	case CPX_PUSH_DONE:
		cpx_debug("worker %s: lane %u: %llu:%llu done, %llu bytes, "
		    "mtime %lld.%09u", w->name, share,
		    (unsigned long long)m.dev, (unsigned long long)m.ino,
		    (unsigned long long)m.attr.size, (long long)m.attr.mtime_s,
		    m.attr.mtime_ns);
		ps->done |= 1u << share;
		ps->dropped &= ~(1u << share);
		ps->version[share] = m.attr;
		settle(fs, ps, share);
		break;
	case CPX_PUSH_DROP:
		ps->done &= ~(1u << share);
		ps->dropped |= 1u << share;
		for (i = share; i < ps->nblocks; i += (size_t)fs->nlanes)
			drop_block(fs, ps, i);
		settle(fs, ps, share);
		maybe_free(fs, ps);
		break;
	}
	cfs_cache__evict(fs);	/* handed-over blocks count from now on */
	pthread_mutex_unlock(&fs->cache_lock);
}

enum { HANDED, AWAITED, FETCHED };

/* Block i of a completed file, new in record r: handed over from the
 * stream, awaited from its lane, or fetched. */
static int
adopt_block(struct cfs *fs, struct pstream *ps, struct rec *r, size_t i,
    const struct cfs_identity *id)
{
	unsigned share = (unsigned)(i % (size_t)fs->nlanes);
	struct block *b;

	if (ps != NULL && share_ok(ps, share, &r->attr)) {
		b = cfs_cache__block_await(fs, r, i);
		hand_over(fs, ps, r, b, i);
		return HANDED;
	}
	/*
	 * Lane 0 said DONE or DROP right before the event: its share is
	 * final. Another lane's may still be on its way.
	 */
	if (ps != NULL && share != 0 && (id->push_lanes & (1u << share)) &&
	    !share_ok(ps, share, &r->attr) && !(ps->dropped & (1u << share))) {
		cfs_cache__block_await(fs, r, i);
		return AWAITED;
	}
	cfs_cache__block(fs, r, i);
	return FETCHED;
}

/*
 * Loop thread, at a COMPLETE event: the record of `path` gets the file's
 * contents in version a, from what was pushed or fetched, and is pushed
 * into the kernel's page cache once whole. Returns 1 if anything had to
 * be fetched or awaited, 0 if it was whole already (or not wanted).
 */
int
cfs_cache_adopt(struct cfs *fs, const char *worker, const char *path,
    const struct cpx_attr *a, const struct cfs_identity *id)
{
	uint64_t i, n = (a->size + CFS_BLOCK - 1) / CFS_BLOCK;
	struct pstream *ps = NULL;
	unsigned count[3] = { 0, 0, 0 };
	uint32_t awaited = 0;
	struct rec *r;
	int how;

	if (a->size == 0 || !S_ISREG(a->mode) ||
	    a->size > (uint64_t)fs->set.prefetch_max_mb * 1024 * 1024)
		return 0;
	pthread_mutex_lock(&fs->cache_lock);
	r = cfs_cache__rec(fs, path, 1);
	if (r->worker == NULL)
		r->worker = cpx_xstrdup(worker);
	cfs_cache__set_attr(fs, r, a, 60000);
	if (cfs_cache__held(r)) {
		pthread_mutex_unlock(&fs->cache_lock);
		return 0;
	}
	r->want_store = 1;
	if (id->dev != 0 || id->ino != 0)
		ps = stream_find(fs, worker, id->dev, id->ino, 0);
	r->pushed = ps != NULL && share_ok(ps, 0, a);
	r->src_dev = id->dev;
	r->src_ino = id->ino;
	for (i = 0; i < n; i++) {
		if (i < r->nblocks && r->blocks[i] != NULL)
			continue;
		how = adopt_block(fs, ps, r, (size_t)i, id);
		count[how]++;
		if (how == AWAITED)
			awaited |= 1u << (unsigned)(i % (uint64_t)fs->nlanes);
	}
	cpx_debug("%s: %u blocks pushed, %u awaited, %u fetched", path,
	    count[HANDED], count[AWAITED], count[FETCHED]);
	if (ps != NULL && awaited != 0) {
		/* A stream adopts for one name at a time: the newest. */
		give_up(fs, ps);
		ps->adopter = cpx_xstrdup(path);
		ps->adopt_version = *a;
		ps->awaited = awaited;
		ps->touched = cpx_now_ms();
	} else if (ps != NULL) {
		maybe_free(fs, ps);
	}
	cfs_cache__evict(fs);
	pthread_mutex_unlock(&fs->cache_lock);
	return 1;
}

/* Any lane thread: the lane's connection to w is up; its agent pushes too. */
void
cfs_push_lane_up(struct cfs *fs, struct cfs_worker *w)
{
	size_t i, n;
	char **dirs = cfs_routes_watched_on(fs, w->name, &n);

	for (i = 0; i < n; i++) {
		cfs_push_request(fs, w->name, dirs[i], w->lane->index);
		free(dirs[i]);
	}
	free(dirs);
}

/* Any lane thread: the lane's connection to w is gone, and its pushes. */
void
cfs_push_lane_down(struct cfs *fs, struct cfs_worker *w)
{
	unsigned share = (unsigned)w->lane->index;
	struct pstream *ps, *next;

	cfs_routes_push_off(fs, w->name, (int)share);
	pthread_mutex_lock(&fs->cache_lock);
	for (ps = C(fs)->streams; ps != NULL; ps = next) {
		next = ps->next;
		if (strcmp(ps->worker, w->name) != 0)
			continue;
		ps->done &= ~(1u << share);
		ps->dropped |= 1u << share;
		settle(fs, ps, share);
		maybe_free(fs, ps);
	}
	pthread_mutex_unlock(&fs->cache_lock);
}

struct push_arg {
	char *worker;
	char *dir;
	int lane;
};

static void
on_push(struct cfs *fs, struct cfs_call *c, int status, struct cpx_reader *r)
{
	struct push_arg *pa = c->arg;

	if (status == 0)
		cfs_route_set_push(fs, pa->dir, pa->worker, pa->lane, 1);
	else if (status == -ENOENT)	/* deleted meanwhile: nothing to push */
		cpx_debug("worker %s: lane %d: %s is gone, no push", pa->worker,
		    pa->lane, pa->dir);
	else if (status != -EIO)
		cpx_warn("worker %s: lane %d cannot push %s: %s", pa->worker,
		    pa->lane, pa->dir, strerror(-status));
	free(pa->worker);
	free(pa->dir);
	free(pa);
}

/* Any thread: asks lane `lane`'s agent to push its share of dir's files. */
void
cfs_push_request(struct cfs *fs, const char *worker, const char *dir,
    int lane)
{
	struct push_arg *pa;
	struct cfs_call *c;
	struct cpx_freq q = { .op = CPX_FOP_PUSH, .path = dir };

	if (fs->set.prefetch_max_mb == 0)
		return;		/* fetch-ahead is off: so is pushing */
	pa = cpx_xcalloc(1, sizeof *pa);
	pa->worker = cpx_xstrdup(worker);
	pa->dir = cpx_xstrdup(dir);
	pa->lane = lane;
	q.flags = (uint32_t)lane | (uint32_t)fs->nlanes << 16;
	q.size = (uint64_t)fs->set.prefetch_max_mb * 1024 * 1024;
	c = cfs_call_new(worker, on_push, pa);
	cpx_freq_put(&c->req, &q);
	cfs_lane_submit(fs, lane, c);
}

static void
ignore(struct cfs *fs, struct cfs_call *c, int status, struct cpx_reader *r)
{
}

/* The route ended: no lane's agent watches its folder any more. */
void
cfs_push_unwatch(struct cfs *fs, const char *worker, const char *dir)
{
	struct cpx_freq q = { .op = CPX_FOP_UNWATCH, .path = dir };
	struct cfs_call *c;
	int i;

	for (i = 1; i < fs->nlanes; i++) {
		c = cfs_call_new(worker, ignore, NULL);
		cpx_freq_put(&c->req, &q);
		cfs_lane_submit(fs, i, c);
	}
}

/* What is held, when it changed (debug): tests watch it drain. */
static void
report(struct cfs *fs)
{
	struct cache *c = C(fs);

	if (c->nstreams == c->reported_n && c->push_bytes == c->reported_bytes)
		return;
	c->reported_n = c->nstreams;
	c->reported_bytes = c->push_bytes;
	cpx_debug("pushed contents held: %zu files, %zu bytes", c->nstreams,
	    c->push_bytes);
}

/*
 * Why each awaited share of ps is not in (debug): a share that said DONE
 * for another version than the one adopted is a worker-side race.
 */
static void
log_stall(const struct pstream *ps)
{
	const struct cpx_attr *a = &ps->adopt_version;
	unsigned share;

	cpx_debug("worker %s: push of %s stalled (version %llu bytes, mtime "
	    "%lld.%09u), fetching", ps->worker, ps->adopter,
	    (unsigned long long)a->size, (long long)a->mtime_s, a->mtime_ns);
	for (share = 0; share < CPX_PUSH_SHARES_MAX; share++) {
		if (!(ps->awaited & (1u << share)))
			continue;
		cpx_debug("worker %s: share %u of %s: %s, last DONE for %llu "
		    "bytes, mtime %lld.%09u", ps->worker, share, ps->adopter,
		    ps->done & (1u << share) ? "done" : "not done",
		    (unsigned long long)ps->version[share].size,
		    (long long)ps->version[share].mtime_s,
		    ps->version[share].mtime_ns);
	}
}

/* Loop thread, each tick: awaited shares gone silent are fetched. */
void
cfs_push_tick(struct cfs *fs)
{
	uint64_t now = cpx_now_ms();
	struct pstream *ps, *next;

	pthread_mutex_lock(&fs->cache_lock);
	for (ps = C(fs)->streams; ps != NULL; ps = next) {
		next = ps->next;
		if (ps->adopter != NULL && now - ps->touched > PUSH_WAIT_MS) {
			log_stall(ps);
			give_up(fs, ps);
			maybe_free(fs, ps);
		} else if (ps->adopter == NULL &&
		    now - ps->touched > STREAM_IDLE_MS) {
			stream_free(fs, ps);
		}
	}
	report(fs);
	pthread_mutex_unlock(&fs->cache_lock);
}

size_t
cfs_push_bytes(struct cfs *fs)
{
	size_t n;

	pthread_mutex_lock(&fs->cache_lock);
	n = C(fs)->push_bytes;
	pthread_mutex_unlock(&fs->cache_lock);
	return n;
}

void
cfs_push__free_all(struct cfs *fs)
{
	while (C(fs)->streams != NULL)
		stream_free(fs, C(fs)->streams);
}

/* Writes len bytes at off: 0 or -errno. */
static int
write_all(int fd, const uint8_t *p, size_t len, uint64_t off)
{
	ssize_t w;

	while (len > 0) {
		w = pwrite(fd, p, len, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		len -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* Whether the stream has blocks its copy does not hold. */
static int
copy_behind(const struct pstream *ps)
{
	size_t i;

	for (i = 0; i < ps->nblocks; i++)
		if (ps->data[i] != NULL && ps->copied[i] != ps->gen[i])
			return 1;
	return 0;
}

/* Under the lock: the stream's copy, made if need be (the lock is let go
 * meanwhile); NULL if the stream went, or no copy can be made. */
static struct pstream *
copy_of(struct cfs *fs, const char *worker, uint64_t dev, uint64_t ino)
{
	struct pstream *ps = stream_find(fs, worker, dev, ino, 0);
	int fd;

	if (ps == NULL || ps->copy_fd >= 0)
		return ps;
	pthread_mutex_unlock(&fs->cache_lock);
	fd = openat(fs->rootfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	pthread_mutex_lock(&fs->cache_lock);
	if (fd < 0)
		return NULL;	/* made whole at completion, if at all */
	ps = stream_find(fs, worker, dev, ino, 0);
	if (ps == NULL || ps->copy_fd >= 0) {
		cfs_notify_close(fs, fd);
		return NULL;
	}
	ps->copy_fd = fd;
	return ps;
}

/*
 * Copy thread: the blocks pushed of a file since the last call go into
 * its copy. Each is copied out under the lock and written outside it; a
 * block pushed again meanwhile is written again at the next call. Only
 * this thread writes copies or closes them, so a copy's descriptor stays
 * valid here even if its stream goes.
 */
void
cfs_push_copy(struct cfs *fs, const char *worker, uint64_t dev, uint64_t ino)
{
	struct pstream *ps;
	uint8_t *buf;
	uint64_t gen;
	size_t i, len;
	int fd, error;

	pthread_mutex_lock(&fs->cache_lock);
	if ((ps = stream_find(fs, worker, dev, ino, 0)) != NULL)
		ps->copy_queued = 0;
	if (ps == NULL || !copy_behind(ps)) {
		pthread_mutex_unlock(&fs->cache_lock);
		return;
	}
	buf = cpx_xmalloc(CFS_BLOCK);
	for (i = 0; (ps = copy_of(fs, worker, dev, ino)) != NULL &&
	    i < ps->nblocks; i++) {
		if (ps->data[i] == NULL || ps->copied[i] == ps->gen[i])
			continue;
		fd = ps->copy_fd;
		gen = ps->gen[i];
		len = ps->len[i];
		memcpy(buf, ps->data[i], len);
		pthread_mutex_unlock(&fs->cache_lock);
		error = write_all(fd, buf, len, (uint64_t)i * CFS_BLOCK);
		pthread_mutex_lock(&fs->cache_lock);
		ps = stream_find(fs, worker, dev, ino, 0);
		if (error != 0 || ps == NULL || ps->copy_fd != fd)
			break;
		ps->copied[i] = gen;
		if ((uint64_t)i * CFS_BLOCK + len > ps->copy_end)
			ps->copy_end = (uint64_t)i * CFS_BLOCK + len;
	}
	pthread_mutex_unlock(&fs->cache_lock);
	free(buf);
}

/*
 * Under the lock, copy thread: the copy written of the file record r
 * was pushed as, taken from its stream (-1 if none); have[i] says if it
 * holds block i as bs[i] has it, *end where its bytes end. Later pushes
 * start a new copy.
 */
int
cfs_push__take_copy(struct cfs *fs, const struct rec *r, struct block **bs,
    size_t n, uint8_t *have, uint64_t *end)
{
	struct pstream *ps;
	size_t i;
	int fd;

	if (r->worker == NULL || (r->src_dev == 0 && r->src_ino == 0) ||
	    (ps = stream_find(fs, r->worker, r->src_dev, r->src_ino, 0)) ==
	    NULL || ps->copy_fd < 0)
		return -1;
	for (i = 0; i < n; i++)
		have[i] = bs[i]->gen != 0 && i < ps->nblocks &&
		    ps->copied[i] == bs[i]->gen;
	fd = ps->copy_fd;
	*end = ps->copy_end;
	ps->copy_fd = -1;
	ps->copy_end = 0;
	memset(ps->copied, 0, ps->nblocks * sizeof *ps->copied);
	return fd;
}
