/* events.c — what a worker reports about its routed folders (loop thread). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cfs.h"

/*
 * A finished segment becomes visible at once (the kernel forgets any
 * "no such file" it cached) and is fetched whole ahead of PMS, then
 * pushed into the kernel's page cache, so PMS's read never waits on the
 * network. Temporary names (*.tmp, renamed into place when done) are not
 * fetched: their final name will be.
 */

#define EVENT_TTL_MS 60000

static int
is_temporary(const char *path)
{
	size_t n = strlen(path);

	return n > 4 && strcmp(path + n - 4, ".tmp") == 0;
}

/*
 * The kernel must ask again about the name: a cached "no such file" may
 * be wrong now. A name that went away is dropped at once; one that (still
 * or newly) exists only expires, so that the kernel keeps the inode and
 * its page cache when it turns out to be the same file. The cached pages
 * go only when the file's contents changed.
 */
static void
forget_name(struct cfs *fs, const char *path, int gone, int changed)
{
	const char *name;
	char *dir = cpx_path_split(path, &name);
	fuse_ino_t parent = cfs_node_find_path(fs, dir), ino;

	if (parent != 0) {
		if (gone)
			cfs_notify_entry(fs, parent, name);
		else
			cfs_notify_expire(fs, parent, name);
		if (changed && (ino = cfs_node_find(fs, parent, name)) != 0)
			cfs_notify_inode(fs, ino);
	}
	free(dir);
}

static int
same_version(const struct cpx_attr *a, const struct cpx_attr *b)
{
	return a->size == b->size && a->mtime_s == b->mtime_s &&
	    a->mtime_ns == b->mtime_ns && a->mode == b->mode;
}

static void
complete(struct cfs *fs, struct cfs_worker *w, const char *path,
    const struct cpx_attr *a, const struct cfs_identity *id)
{
	struct cpx_attr old;
	int changed = !cfs_cache_last_attr(fs, path, &old) ||
	    !same_version(&old, a);

	cfs_cache_set_attr(fs, path, a, EVENT_TTL_MS);
	forget_name(fs, path, 0, changed);
	if (is_temporary(path))
		return;
	cfs_cache_set_stable(fs, path, 1);
	if (changed)
		cfs_cache_mark_stored(fs, path, 0);	/* the kernel forgot it */
	/*
	 * Its contents: pushed already, on their way, or fetched now. Already
	 * whole (the same version again): the kernel needs it back.
	 */
	if (!cfs_cache_adopt(fs, w->name, path, a, id) &&
	    cfs_cache_complete(fs, path))
		cfs_notify_store(fs, path);
}

/* The worker dropped the watch with the folder: no more news from it. */
static void
unwatched(struct cfs *fs, const char *dir)
{
	struct cfs_route *r = cfs_route_find(fs, dir);

	if (r != NULL)
		cfs_route_set(fs, r, r->uid, r->gid, 0);
}

void
cfs_event(struct cfs *fs, struct cfs_worker *w, const uint8_t *p, size_t n)
{
	struct cpx_fevent_msg ev;
	struct cfs_identity id;
	struct cfs_match m;
	struct cpx_attr a;
	char *path = NULL;
	uint8_t kind;

	if (cpx_fevent_parse_msg(p, n, &ev) != 0) {
		cpx_warn("worker %s: malformed event", w->name);
		return;
	}
	kind = ev.kind;
	path = ev.path;
	a = ev.attr;
	/* Only a route of this very worker may be changed by its events. */
	if (!cfs_route_match(fs, path, &m) || strcmp(m.worker, w->name) != 0)
		goto out;
	/* A name that now is a kind PMS may not see is gone, for PMS. */
	if ((kind == CPX_FEV_CREATED || kind == CPX_FEV_COMPLETE) &&
	    !cfs_remote_shown(a.mode))
		kind = CPX_FEV_REMOVED;
	switch (kind) {
	case CPX_FEV_CREATED:
		cfs_cache_set_attr(fs, path, &a, 0);	/* still being written */
		forget_name(fs, path, 0, 1);
		break;
	case CPX_FEV_COMPLETE:
		id.dev = ev.dev;
		id.ino = ev.ino;
		id.push_lanes = m.push_lanes;
		complete(fs, w, path, &a, &id);
		break;
	case CPX_FEV_REMOVED:
		cfs_cache_forget(fs, path);
		forget_name(fs, path, 1, 0);
		break;
	case CPX_FEV_DIR_GONE:
	case CPX_FEV_OVERFLOW:
		cpx_debug("worker %s: %s %s", w->name,
		    kind == CPX_FEV_DIR_GONE ? "folder gone" : "events lost",
		    path);
		cfs_cache_forget_under(fs, path);
		cfs_notify_under(fs, path);
		if (kind == CPX_FEV_DIR_GONE && m.is_dir)
			unwatched(fs, path);
		break;
	}
out:
	cfs_match_free(&m);
	free(path);
}
