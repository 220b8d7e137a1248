/* remote.c — files in routed session folders: attributes, open, read, write. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "cfs.h"

/*
 * Each handler starts one or more calls and returns; the calls' answers
 * (on the loop thread) reply to the kernel. A request thread never waits
 * for a worker, and every call has a deadline.
 */

struct cfs_rop *
cfs_rop_new(struct cfs *fs, fuse_req_t req, char *path, struct cfs_match *m)
{
	struct cfs_rop *op = cpx_xcalloc(1, sizeof *op);

	op->fs = fs;
	op->req = req;
	op->path = path;
	if (m != NULL) {
		op->m = *m;
		memset(m, 0, sizeof *m);
	}
	return op;
}

void
cfs_rop_free(struct cfs_rop *op)
{
	free(op->name);
	free(op->newname);
	free(op->path);
	free(op->path2);
	cfs_match_free(&op->m);
	if (op->listing != NULL) {
		cfs_dir_free(op->listing);
		free(op->listing);
	}
	free(op);
}

void
cfs_rop_call(struct cfs_rop *op, const struct cpx_freq *q, cfs_call_done done)
{
	struct cfs_call *c = cfs_call_new(op->m.worker, done, op);

	cpx_freq_put(&c->req, q);
	cfs_call_submit(op->fs, c);
}

int
cfs_remote_ttl_ms(const struct cpx_attr *a, int watched)
{
	return watched ? (int)(CFS_REMOTE_TIMEOUT * 1000) : 0;
}

void
cfs_remote_fill_stat(const struct cpx_attr *a, fuse_ino_t ino, uid_t uid,
    gid_t gid, struct stat *st)
{
	cpx_attr_to_stat(a, st);
	st->st_ino = ino;
	st->st_uid = uid;
	st->st_gid = gid;
}

/*
 * How long the kernel may trust what we tell it: unwatched, not at all;
 * a segment reported finished, long (any change is reported and the
 * kernel told to forget); anything else, about a second.
 */
static double
kernel_timeout(struct cfs *fs, const struct cfs_match *m, const char *path)
{
	if (!m->watched)
		return 0.0;
	return cfs_cache_stable(fs, path) ? CFS_STABLE_TIMEOUT :
	    CFS_REMOTE_TIMEOUT;
}

void
cfs_remote_reply_attr(struct cfs *fs, fuse_req_t req, fuse_ino_t ino,
    const char *path, const struct cpx_attr *a, const struct cfs_match *m)
{
	struct stat st;

	if (!cfs_remote_shown(a->mode)) {
		fuse_reply_err(req, ENOENT);	/* replaced by a hidden kind */
		return;
	}
	cfs_remote_fill_stat(a, ino, m->uid, m->gid, &st);
	fuse_reply_attr(req, &st, kernel_timeout(fs, m, path));
}

/* Answers a lookup-like request with a remote file's attributes. */
int
cfs_remote_reply_entry(struct cfs_rop *op, const struct cpx_attr *a,
    struct fuse_file_info *fi)
{
	struct cfs *fs = op->fs;
	struct fuse_entry_param e;
	int error;

	if (!cfs_remote_shown(a->mode)) {
		fuse_reply_err(op->req, ENOENT);
		return -ENOENT;
	}
	memset(&e, 0, sizeof e);
	e.ino = cfs_node_learn(fs, op->parent, op->name, 1);
	if (e.ino == 0) {
		fuse_reply_err(op->req, ENOENT);
		return -ENOENT;
	}
	cfs_remote_fill_stat(a, e.ino, op->m.uid, op->m.gid, &e.attr);
	e.attr_timeout = e.entry_timeout = kernel_timeout(fs, &op->m, op->path);
	error = fi != NULL ? fuse_reply_create(op->req, &e, fi) :
	    fuse_reply_entry(op->req, &e);
	if (error != 0)
		cfs_node_forget(fs, e.ino, 1);
	else if (S_ISREG(a->mode) && cfs_cache_should_store(fs, op->path, e.ino))
		cfs_notify_store(fs, op->path);	/* fetched ahead: hand it over */
	return error;
}

/* Not on the worker: PMS's own files in the folder (temp-0.srt) stay visible. */
static void
lookup_local(struct cfs_rop *op, int status)
{
	struct fuse_entry_param e;
	struct stat st;

	if (cfs_local_stat(op->fs, op->path, &st) == 0) {
		cfs_local_reply_entry(op->fs, op->req, op->parent, op->name,
		    op->path);
	} else if (status == -ENOENT) {
		memset(&e, 0, sizeof e);
		e.entry_timeout = op->m.watched ? CFS_REMOTE_NEGATIVE : 0.0;
		fuse_reply_entry(op->req, &e);
	} else {
		fuse_reply_err(op->req, EIO);
	}
}

static void
on_lookup(struct cfs *fs, struct cfs_call *c, int status, struct cpx_reader *r)
{
	struct cfs_rop *op = c->arg;
	struct cpx_attr a;

	if (status == 0) {
		cpx_attr_get(r, &a);
		status = r->err ? -EIO : 0;
	}
	if (status == 0 && !cfs_remote_shown(a.mode))
		status = -ENOENT;	/* hidden: as if not there */
	if (status == 0) {
		cfs_cache_set_attr(fs, op->path, &a,
		    (uint64_t)cfs_remote_ttl_ms(&a, op->m.watched));
		cfs_remote_reply_entry(op, &a, NULL);
	} else {
		lookup_local(op, status);
	}
	cfs_rop_free(op);
}

/* STAT and answer with an entry: after MKDIR, or for a lookup. */
void
cfs_remote_lookup_op(struct cfs_rop *op)
{
	struct cpx_freq q = { .op = CPX_FOP_STAT, .path = op->path };

	cfs_rop_call(op, &q, on_lookup);
}

void
cfs_remote_lookup(struct cfs *fs, fuse_req_t req, fuse_ino_t parent,
    const char *name, char *path, struct cfs_match *m)
{
	struct cfs_rop *op = cfs_rop_new(fs, req, path, m);
	struct cpx_freq q = { .op = CPX_FOP_STAT, .path = path };
	struct cpx_attr a;

	op->parent = parent;
	op->name = cpx_xstrdup(name);
	if (cfs_cache_attr(fs, path, &a)) {
		cfs_remote_reply_entry(op, &a, NULL);
		cfs_rop_free(op);
		return;
	}
	cfs_rop_call(op, &q, on_lookup);
}

static void
on_getattr(struct cfs *fs, struct cfs_call *c, int status,
    struct cpx_reader *r)
{
	struct cfs_rop *op = c->arg;
	struct cpx_attr a;

	if (status == 0) {
		cpx_attr_get(r, &a);
		status = r->err ? -EIO : 0;
	}
	if (status == 0) {
		cfs_cache_set_attr(fs, op->path, &a,
		    (uint64_t)cfs_remote_ttl_ms(&a, op->m.watched));
		cfs_remote_reply_attr(fs, op->req, op->ino, op->path, &a,
		    &op->m);
	} else if (status == -ENOENT) {
		fuse_reply_err(op->req, ENOENT);
	} else {
		fuse_reply_err(op->req, EIO);
	}
	cfs_rop_free(op);
}

void
cfs_remote_getattr(struct cfs *fs, fuse_req_t req, fuse_ino_t ino, char *path,
    struct cfs_match *m)
{
	struct cfs_rop *op = cfs_rop_new(fs, req, path, m);
	struct cpx_freq q = { .op = CPX_FOP_STAT, .path = path };
	struct cpx_attr a;

	op->ino = ino;
	if (cfs_cache_attr(fs, path, &a)) {
		cfs_remote_reply_attr(fs, req, ino, path, &a, &op->m);
		cfs_rop_free(op);
		return;
	}
	cfs_rop_call(op, &q, on_getattr);
}

/* setattr runs as a chain: size, mode, times, then a fresh STAT. */
static void setattr_next(struct cfs_rop *op);

static void
on_setattr_step(struct cfs *fs, struct cfs_call *c, int status,
    struct cpx_reader *r)
{
	struct cfs_rop *op = c->arg;

	if (status != 0) {
		cfs_cache_forget(fs, op->path);
		fuse_reply_err(op->req, status == -EIO ? EIO : -status);
		cfs_rop_free(op);
		return;
	}
	setattr_next(op);
}

static void
setattr_times(struct cfs_rop *op, struct cpx_freq *q)
{
	int set = op->to_set;

	q->op = CPX_FOP_UTIMENS;
	q->atime_ns = q->mtime_ns = UTIME_OMIT;
	if (set & FUSE_SET_ATTR_ATIME_NOW) {
		q->atime_ns = UTIME_NOW;
	} else if (set & FUSE_SET_ATTR_ATIME) {
		q->atime_s = op->attr.st_atim.tv_sec;
		q->atime_ns = (uint32_t)op->attr.st_atim.tv_nsec;
	}
	if (set & FUSE_SET_ATTR_MTIME_NOW) {
		q->mtime_ns = UTIME_NOW;
	} else if (set & FUSE_SET_ATTR_MTIME) {
		q->mtime_s = op->attr.st_mtim.tv_sec;
		q->mtime_ns = (uint32_t)op->attr.st_mtim.tv_nsec;
	}
	op->to_set &= ~(FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
	    FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW);
}

static void
setattr_next(struct cfs_rop *op)
{
	struct cpx_freq q = { .path = op->path };

	cfs_cache_forget(op->fs, op->path);
	if (op->to_set & FUSE_SET_ATTR_SIZE) {
		q.op = CPX_FOP_TRUNCATE;
		q.size = (uint64_t)op->attr.st_size;
		op->to_set &= ~FUSE_SET_ATTR_SIZE;
	} else if (op->to_set & FUSE_SET_ATTR_MODE) {
		q.op = CPX_FOP_CHMOD;
		q.mode = op->attr.st_mode & 07777;
		op->to_set &= ~FUSE_SET_ATTR_MODE;
	} else if (op->to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
	    FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)) {
		setattr_times(op, &q);
	} else {
		q.op = CPX_FOP_STAT;
		cfs_rop_call(op, &q, on_getattr);
		return;
	}
	cfs_rop_call(op, &q, on_setattr_step);
}

void
cfs_remote_setattr(struct cfs *fs, fuse_req_t req, fuse_ino_t ino, char *path,
    struct cfs_match *m, struct stat *st, int to_set)
{
	struct cfs_rop *op = cfs_rop_new(fs, req, path, m);

	if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		/* Remote files show the folder's owner; they cannot change it. */
		fuse_reply_err(req, EPERM);
		cfs_rop_free(op);
		return;
	}
	op->ino = ino;
	op->attr = *st;
	op->to_set = to_set;
	setattr_next(op);
}

static void
on_write(struct cfs *fs, struct cfs_call *c, int status, struct cpx_reader *r)
{
	struct cfs_rop *op = c->arg;
	uint32_t n = 0;

	if (status == 0) {
		n = cpx_rd_u32(r);
		status = r->err ? -EIO : 0;
	}
	if (status != 0 && op->status == 0)
		op->status = status;
	op->total += n;
	if (--op->pending > 0)
		return;
	cfs_cache_forget(fs, op->path);
	if (op->status != 0 && op->total == 0)
		fuse_reply_err(op->req, op->status == -EIO ? EIO : -op->status);
	else
		fuse_reply_write(op->req, op->total);
	cfs_rop_free(op);
}

/* Writes go out in chunks the protocol allows, pipelined; one answer. */
void
cfs_remote_write(struct cfs *fs, fuse_req_t req, struct cfs_file *f,
    const char *buf, size_t size, off_t off)
{
	struct cfs_match m = { .worker = cpx_xstrdup(f->worker) };
	struct cfs_rop *op;
	struct cfs_call *c;
	size_t done = 0, n;
	unsigned chunks = size == 0 ? 1 :
	    (unsigned)((size + CPX_FREAD_MAX - 1) / CPX_FREAD_MAX);

	if (!f->has_rhandle) {
		cfs_match_free(&m);
		fuse_reply_err(req, EBADF);
		return;
	}
	op = cfs_rop_new(fs, req, cpx_xstrdup(f->path), &m);
	f->written = 1;
	op->pending = chunks;	/* counted first: answers may come at once */
	do {
		struct cpx_freq q = { .op = CPX_FOP_WRITE, .handle = f->rhandle };

		n = size - done > CPX_FREAD_MAX ? CPX_FREAD_MAX : size - done;
		q.offset = (uint64_t)off + done;
		q.data = (const uint8_t *)buf + done;
		q.datalen = n;
		c = cfs_call_new(f->worker, on_write, op);
		c->same_epoch = 1;
		c->epoch = f->epoch;
		cpx_freq_put(&c->req, &q);
		done += n;
		cfs_call_submit(fs, c);
	} while (done < size);
}

static void
ignore(struct cfs *fs, struct cfs_call *c, int status, struct cpx_reader *r)
{
}

void
cfs_remote_release(struct cfs *fs, struct cfs_file *f)
{
	struct cpx_freq q = { .op = CPX_FOP_CLOSE };
	struct cfs_call *c;

	if (f->has_rhandle) {
		q.handle = f->rhandle;
		c = cfs_call_new(f->worker, ignore, NULL);
		c->same_epoch = 1;
		c->epoch = f->epoch;
		cpx_freq_put(&c->req, &q);
		cfs_call_submit(fs, c);
	}
	if (f->written)
		cfs_cache_forget(fs, f->path);
	cfs_files_remove(fs, f);
	if (!f->written && f->backing <= 0 && fs->pt_on)
		cfs_backing_free_blocks(fs, f->path, f->ino);
	free(f->path);
	free(f->worker);
	free(f);
}

static void
on_statfs(struct cfs *fs, struct cfs_call *c, int status, struct cpx_reader *r)
{
	struct cfs_rop *op = c->arg;
	struct cpx_statfs s;
	struct statvfs sv;

	if (status == 0) {
		cpx_statfs_get(r, &s);
		status = r->err ? -EIO : 0;
	}
	if (status != 0) {
		cfs_local_statfs(fs, op->req);	/* better than an error */
	} else {
		memset(&sv, 0, sizeof sv);
		sv.f_bsize = sv.f_frsize = (unsigned long)s.bsize;
		sv.f_blocks = s.blocks;
		sv.f_bfree = s.bfree;
		sv.f_bavail = s.bavail;
		sv.f_files = s.files;
		sv.f_ffree = sv.f_favail = s.ffree;
		sv.f_namemax = s.namemax;
		fuse_reply_statfs(op->req, &sv);
	}
	cfs_rop_free(op);
}

void
cfs_remote_statfs(struct cfs *fs, fuse_req_t req, struct cfs_match *m)
{
	struct cfs_rop *op = cfs_rop_new(fs, req, cpx_xstrdup(m->dir), m);
	struct cpx_freq q = { .op = CPX_FOP_STATFS, .path = op->path };

	cfs_rop_call(op, &q, on_statfs);
}
