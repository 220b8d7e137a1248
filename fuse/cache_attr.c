/* cache_attr.c — remote attributes as last seen, and forgetting them. */

#include <stdlib.h>
#include <string.h>

#include "cache.h"

int
cfs_cache_attr(struct cfs *fs, const char *path, struct cpx_attr *a)
{
	struct rec *r;
	int fresh;

	pthread_mutex_lock(&fs->cache_lock);
	r = cfs_cache__rec(fs, path, 0);
	fresh = r != NULL && r->has_attr && cpx_now_ms() < r->attr_expires;
	if (fresh)
		*a = r->attr;
	pthread_mutex_unlock(&fs->cache_lock);
	return fresh;
}

/* The attributes last seen, fresh or not: 1, or 0 when none. */
int
cfs_cache_last_attr(struct cfs *fs, const char *path, struct cpx_attr *a)
{
	struct rec *r;
	int have;

	pthread_mutex_lock(&fs->cache_lock);
	r = cfs_cache__rec(fs, path, 0);
	have = r != NULL && r->has_attr;
	if (have)
		*a = r->attr;
	pthread_mutex_unlock(&fs->cache_lock);
	return have;
}

/* Only what PMS may see is cached: a hidden kind is forgotten instead. */
void
cfs_cache_set_attr(struct cfs *fs, const char *path, const struct cpx_attr *a,
    uint64_t ttl_ms)
{
	if (!cfs_remote_shown(a->mode)) {
		cfs_cache_forget(fs, path);
		return;
	}
	pthread_mutex_lock(&fs->cache_lock);
	cfs_cache__set_attr(fs, cfs_cache__rec(fs, path, 1), a, ttl_ms);
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
	if ((r = cfs_cache__rec(fs, path, 0)) != NULL)
		r->stable = stable;
	pthread_mutex_unlock(&fs->cache_lock);
}

int
cfs_cache_stable(struct cfs *fs, const char *path)
{
	struct rec *r;
	int stable;

	pthread_mutex_lock(&fs->cache_lock);
	r = cfs_cache__rec(fs, path, 0);
	stable = r != NULL && r->stable;
	pthread_mutex_unlock(&fs->cache_lock);
	return stable;
}

void
cfs_cache_forget(struct cfs *fs, const char *path)
{
	struct rec *r;

	pthread_mutex_lock(&fs->cache_lock);
	if ((r = cfs_cache__rec(fs, path, 0)) != NULL)
		cfs_cache__remove(fs, r);
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
			    !r->want_store && r->backing <= 0))
				cfs_cache__remove(fs, r);
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

