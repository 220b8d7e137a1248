/* remote_open.c — opening remote files: handles, versions, passthrough. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "cfs.h"

/* pin: the version its reads are limited to, or NULL. */
static struct cfs_file *
remote_file(struct cfs_rop *op, fuse_ino_t ino, const struct cpx_attr *pin)
{
	struct cfs_file *f = cpx_xcalloc(1, sizeof *f);

	f->remote = 1;
	f->fd = -1;
	f->path = cpx_xstrdup(op->path);
	f->worker = cpx_xstrdup(op->m.worker);
	f->ino = ino;
	if (pin != NULL) {
		f->pin = *pin;
		f->pinned = 1;
	}
	return f;
}

static void
on_open(struct cfs *fs, struct cfs_call *c, int status, struct cpx_reader *r)
{
	struct cfs_rop *op = c->arg;
	struct cfs_file *f;
	struct cpx_attr a;
	uint64_t h = 0;

	if (status == 0) {
		h = cpx_rd_u64(r);
		cpx_attr_get(r, &a);
		status = r->err ? -EIO : 0;
	}
	if (status != 0) {
		fuse_reply_err(op->req, status == -EIO ? EIO : -status);
		if (op->file != NULL)
			cfs_remote_release(fs, op->file);
		cfs_rop_free(op);
		return;
	}
	if ((f = op->file) == NULL) {	/* create: a new name */
		f = remote_file(op, 0, NULL);
		cfs_files_add(fs, f);
	}
	f->rhandle = h;
	f->epoch = c->epoch;
	f->has_rhandle = 1;
	cfs_cache_forget(fs, op->path);
	op->fi.fh = (uint64_t)(uintptr_t)f;
	op->fi.keep_cache = 0;
	if (op->name != NULL) {		/* create */
		if (cfs_remote_reply_entry(op, &a, &op->fi) != 0)
			cfs_remote_release(fs, f);
		else
			f->ino = cfs_node_find(fs, op->parent, op->name);
	} else if (fuse_reply_open(op->req, &op->fi) != 0) {
		cfs_remote_release(fs, f);
	}
	cfs_rop_free(op);
}

/* A passed-through open: reads go to the backing file, never to us. */
static void
reply_passed_through(struct cfs_rop *op, struct cfs_file *f)
{
	cpx_debug("%s: passed through (backing %d)", op->path, f->backing);
	op->fi.fh = (uint64_t)(uintptr_t)f;
	if (cfs_kio_reply_open(op->fs, op->req, &op->fi, f->backing) != 0)
		cfs_remote_release(op->fs, f);
}

/*
 * A read-only open, once the file's version (cur) is known. A finished
 * file with a local copy is passed through to it. Otherwise the kernel
 * keeps the pages it cached only if they are of that version: pages of
 * another one (the name was replaced, or the file rewritten) would mix
 * with what reads fetch now. A finished file is pinned to its version:
 * its reads never mix versions either (ESTALE if the file is replaced
 * while open, as on NFS).
 */
static void
reply_open_ro(struct cfs_rop *op, const struct cpx_attr *cur)
{
	struct cfs *fs = op->fs;
	struct fuse_file_info *fi = &op->fi;
	int stable = cur != NULL && cfs_cache_stable(fs, op->path);
	int backing = 0, keep, error;
	struct cfs_file *f;

	if (stable && fs->pt_on)
		backing = cfs_cache_backing(fs, op->path, cur);
	f = remote_file(op, op->ino, stable ? cur : NULL);
	if ((error = cfs_files_add_remote(fs, f, backing)) != 0) {
		/* Passed through to another version: cannot be mixed. */
		fuse_reply_err(op->req, -error);
		free(f->path);
		free(f->worker);
		free(f);
		return;
	}
	if (f->backing > 0) {
		reply_passed_through(op, f);
		return;
	}
	if (cur != NULL && cfs_files_pinned_other(fs, op->ino, cur)) {
		/*
		 * Someone still reads the previous version through the
		 * page cache: this open reads past it (direct I/O), and
		 * leaves it alone.
		 */
		fi->direct_io = 1;
		f->direct = 1;
		keep = 1;
	} else {
		keep = cur != NULL && cfs_node_kernel_version(fs, op->ino, cur);
	}
	/* The watch tells us of any change: only then may the kernel keep. */
	fi->keep_cache = op->m.watched && keep;
	fi->fh = (uint64_t)(uintptr_t)f;
	/*
	 * Pages of another version mean the size the kernel holds may be
	 * another one's too (the event's own invalidation is queued):
	 * reads must ask for it first. Attributes only: no lock is taken.
	 */
	if (!fi->keep_cache && fs->se != NULL)
		fuse_lowlevel_notify_inval_inode(fs->se, op->ino, -1, 0);
	if (fuse_reply_open(op->req, fi) != 0)
		cfs_remote_release(fs, f);
	else if (fs->pt_on ? stable && cfs_cache_wants_backing(fs, op->path) :
	    cfs_cache_should_store(fs, op->path, op->ino))
		cfs_notify_store(fs, op->path);	/* local for the next open */
}

static void
on_open_stat(struct cfs *fs, struct cfs_call *c, int status,
    struct cpx_reader *r)
{
	struct cfs_rop *op = c->arg;
	struct cpx_attr a;

	if (status == 0) {
		cpx_attr_get(r, &a);
		status = r->err ? -EIO : 0;
	}
	if (status == 0 && !S_ISREG(a.mode))
		status = S_ISDIR(a.mode) ? -EISDIR : -ENOENT;
	if (status == 0) {
		cfs_cache_set_attr(fs, op->path, &a,
		    (uint64_t)cfs_remote_ttl_ms(&a, op->m.watched));
		reply_open_ro(op, &a);
	} else {
		fuse_reply_err(op->req, status == -EIO ? EIO : -status);
	}
	cfs_rop_free(op);
}

/*
 * Read-only opens cost nothing remote when the file's version is known:
 * reads are path-based (PREAD), so they need no handle and survive a
 * reconnect. Otherwise one STAT tells the version. Writers get a handle.
 */
void
cfs_remote_open(struct cfs *fs, fuse_req_t req, fuse_ino_t ino, char *path,
    struct cfs_match *m, struct fuse_file_info *fi)
{
	struct cfs_rop *op = cfs_rop_new(fs, req, path, m);
	struct cpx_freq q = { .op = CPX_FOP_OPEN, .path = path };
	struct cpx_attr cur;

	op->ino = ino;
	op->fi = *fi;
	if ((fi->flags & O_ACCMODE) == O_RDONLY && !(fi->flags & O_TRUNC)) {
		if (!op->m.watched || cfs_cache_last_attr(fs, path, &cur)) {
			if (op->m.watched && fs->pt_on)
				cfs_backing_await(fs, path, &cur);
			reply_open_ro(op, op->m.watched ? &cur : NULL);
			cfs_rop_free(op);
			return;
		}
		q.op = CPX_FOP_STAT;
		cfs_rop_call(op, &q, on_open_stat);
		return;
	}
	/* Listed now: no passed-through open may slip in before its reply. */
	op->file = remote_file(op, ino, NULL);
	if (cfs_files_add_writer(fs, op->file) != 0) {
		fuse_reply_err(req, ETXTBSY);
		free(op->file->path);
		free(op->file->worker);
		free(op->file);
		cfs_rop_free(op);
		return;
	}
	q.flags = cpx_flags_from_open(fi->flags) & ~(CPX_O_CREAT | CPX_O_EXCL);
	cfs_rop_call(op, &q, on_open);
}

void
cfs_remote_create(struct cfs *fs, fuse_req_t req, fuse_ino_t parent,
    const char *name, char *path, struct cfs_match *m, mode_t mode,
    struct fuse_file_info *fi)
{
	struct cfs_rop *op = cfs_rop_new(fs, req, path, m);
	struct cpx_freq q = { .op = CPX_FOP_OPEN, .path = path };

	op->parent = parent;
	op->name = cpx_xstrdup(name);
	op->fi = *fi;
	q.flags = cpx_flags_from_open(fi->flags) | CPX_O_CREAT;
	if ((q.flags & CPX_O_ACCMODE) == CPX_O_RDONLY)
		q.flags |= CPX_O_RDWR;	/* a handle we can write through */
	q.mode = mode & 07777;
	cfs_rop_call(op, &q, on_open);
}

