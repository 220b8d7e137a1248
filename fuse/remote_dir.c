/* remote_dir.c — folder listings: remote, local, and both merged. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cfs.h"

/* A listing larger than this is refused rather than held in memory. */
#define LISTING_MAX 200000

void
cfs_dir_add(struct cfs_dir *d, const char *name, uint32_t mode, uint64_t ino)
{
	if (d->n == d->cap) {
		d->cap = d->cap == 0 ? 16 : 2 * d->cap;
		d->ents = cpx_xrealloc(d->ents, d->cap * sizeof *d->ents);
	}
	d->ents[d->n].name = cpx_xstrdup(name);
	d->ents[d->n].mode = mode & S_IFMT;
	d->ents[d->n].ino = ino;
	d->n++;
}

int
cfs_dir_has(const struct cfs_dir *d, const char *name)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (strcmp(d->ents[i].name, name) == 0)
			return 1;
	return 0;
}

void
cfs_dir_free(struct cfs_dir *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		free(d->ents[i].name);
	free(d->ents);
	d->ents = NULL;
	d->n = d->cap = 0;
}

/* Inode numbers in a listing only need to be stable and non-zero. */
static uint64_t
name_ino(fuse_ino_t dir, const char *name)
{
	uint64_t h = 1469598103934665603ull ^ dir;

	while (*name != '\0') {
		h ^= (unsigned char)*name++;
		h *= 1099511628211ull;
	}
	return h | 1;
}

static void
finish(struct cfs_rop *op, int status)
{
	struct cfs_dir *d = op->listing;
	int local = -ENOENT;

	/* The routed folder itself also lists what PMS put there. */
	if (op->m.is_dir)
		local = cfs_dir_read_local(op->fs, op->path, d);
	if (status != 0 && local != 0) {
		fuse_reply_err(op->req, status == -ENOENT ? ENOENT : EIO);
		return;
	}
	op->listing = NULL;
	op->fi.fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(op->req, &op->fi) != 0) {
		cfs_dir_free(d);
		free(d);
	}
}

/* Adds a page of entries; their attributes serve the lookups that follow. */
static int
take_page(struct cfs_rop *op, struct cpx_reader *r, uint64_t *next)
{
	uint32_t i, count = cpx_rd_u32(r);
	struct cpx_attr a;
	char *name, *path;

	for (i = 0; i < count && !r->err; i++) {
		name = cpx_rd_cstr(r, 255);
		cpx_attr_get(r, &a);
		if (name == NULL || r->err || !cpx_path_clean_relative(name) ||
		    strchr(name, '/') != NULL) {
			free(name);
			return -EIO;
		}
		if (!cfs_remote_shown(a.mode)) {
			free(name);	/* hidden: a FIFO, a device, a symlink */
			continue;
		}
		if (op->listing->n >= LISTING_MAX) {
			free(name);
			return -EFBIG;
		}
		cfs_dir_add(op->listing, name, a.mode, name_ino(op->ino, name));
		path = cfs_child_path(op->path, name);
		cfs_cache_set_attr(op->fs, path, &a,
		    (uint64_t)cfs_remote_ttl_ms(&a, op->m.watched));
		free(path);
		free(name);
	}
	*next = cpx_rd_u64(r);
	return r->err ? -EIO : 0;
}

static void
on_page(struct cfs *fs, struct cfs_call *c, int status, struct cpx_reader *r)
{
	struct cfs_rop *op = c->arg;
	uint64_t next = 0;
	struct cpx_freq q = { .op = CPX_FOP_READDIR, .path = op->path };

	if (status == 0)
		status = take_page(op, r, &next);
	if (status == 0 && next != 0) {
		q.offset = next;
		cfs_rop_call(op, &q, on_page);
		return;
	}
	finish(op, status);
	cfs_rop_free(op);
}

void
cfs_remote_opendir(struct cfs *fs, fuse_req_t req, fuse_ino_t ino, char *path,
    struct cfs_match *m, struct fuse_file_info *fi)
{
	struct cfs_rop *op = cfs_rop_new(fs, req, path, m);
	struct cpx_freq q = { .op = CPX_FOP_READDIR, .path = path };

	op->ino = ino;
	op->fi = *fi;
	op->listing = cpx_xcalloc(1, sizeof *op->listing);
	cfs_rop_call(op, &q, on_page);
}
