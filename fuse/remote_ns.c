/* remote_ns.c — names in routed folders: mkdir, unlink, rmdir, rename. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cfs.h"

/*
 * A routed folder shows the worker's files and the ones PMS put there
 * itself, so removing a name removes it on both sides: PMS's delete of a
 * session must leave nothing behind on the worker.
 */

static int
kernel_error(int status)
{
	return status == -EIO ? EIO : -status;
}

static void
on_mkdir(struct cfs *fs, struct cfs_call *c, int status, struct cpx_reader *r)
{
	struct cfs_rop *op = c->arg;

	if (status != 0) {
		fuse_reply_err(op->req, kernel_error(status));
		cfs_rop_free(op);
		return;
	}
	cfs_cache_forget(fs, op->path);
	cfs_remote_lookup_op(op);
}

void
cfs_remote_mkdir(struct cfs *fs, fuse_req_t req, fuse_ino_t parent,
    const char *name, char *path, struct cfs_match *m, mode_t mode)
{
	struct cfs_rop *op = cfs_rop_new(fs, req, path, m);
	struct cpx_freq q = { .op = CPX_FOP_MKDIR, .path = path };

	op->parent = parent;
	op->name = cpx_xstrdup(name);
	q.mode = mode & 07777;
	cfs_rop_call(op, &q, on_mkdir);
}

/*
 * PMS removed every name it sees, and the worker says the folder is not
 * empty: what is left may be only names fuse hides (a FIFO, a device
 * node, a symlink). Those must not keep PMS from deleting its session, so
 * the folder then goes whole (RMTREE). Anything PMS can see left there
 * keeps the ENOTEMPTY.
 */
static int
only_hidden(struct cpx_reader *r)
{
	uint32_t i, count = cpx_rd_u32(r);
	struct cpx_attr a;
	uint64_t next;
	char *name;
	int shown = 0;

	for (i = 0; i < count && !r->err && !shown; i++) {
		name = cpx_rd_cstr(r, 255);
		cpx_attr_get(r, &a);
		shown = cfs_remote_shown(a.mode);
		free(name);
	}
	if (shown || r->err)
		return 0;
	next = cpx_rd_u64(r);
	/* More than one page of leftovers is not a session's debris. */
	return !r->err && next == 0;
}

static void
on_hidden_removed(struct cfs *fs, struct cfs_call *c, int status,
    struct cpx_reader *r)
{
	struct cfs_rop *op = c->arg;

	op->then(fs, c, status == 0 ? 0 : -ENOTEMPTY, NULL);
}

static void
on_leftovers(struct cfs *fs, struct cfs_call *c, int status,
    struct cpx_reader *r)
{
	struct cfs_rop *op = c->arg;
	struct cpx_freq q = { .op = CPX_FOP_RMTREE, .path = op->path };

	if (status == 0 && only_hidden(r)) {
		cfs_rop_call(op, &q, on_hidden_removed);
		return;
	}
	op->then(fs, c, -ENOTEMPTY, NULL);
}

/* 1 when the ENOTEMPTY is looked into first: `then` gets the answer. */
static int
check_hidden(struct cfs_rop *op, int status, cfs_call_done then)
{
	struct cpx_freq q = { .op = CPX_FOP_READDIR, .path = op->path };

	if (status != -ENOTEMPTY || op->hidden_checked)
		return 0;
	op->hidden_checked = 1;
	op->then = then;
	cfs_rop_call(op, &q, on_leftovers);
	return 1;
}

/* Combines the worker's answer with the local one. */
static int
merge(int remote, int local)
{
	if (remote != 0 && remote != -ENOENT && remote != -EIO)
		return remote;		/* ENOTEMPTY, EACCES, ... */
	if (local != 0 && local != -ENOENT)
		return local;
	if (remote == 0 || local == 0)
		return 0;
	return remote == -EIO ? -EIO : -ENOENT;
}

static void
on_remove(struct cfs *fs, struct cfs_call *c, int status, struct cpx_reader *r)
{
	struct cfs_rop *op = c->arg;
	int local, error;

	if (op->dir && check_hidden(op, status, on_remove))
		return;
	local = cfs_local_remove(fs, op->path, op->dir);
	error = merge(status, local);

	if (error == 0) {
		cfs_node_removed(fs, op->parent, op->name);
		if (op->dir)
			cfs_cache_forget_under(fs, op->path);
		else
			cfs_cache_forget(fs, op->path);
	}
	fuse_reply_err(op->req, -error);
	cfs_rop_free(op);
}

void
cfs_remote_remove(struct cfs *fs, fuse_req_t req, fuse_ino_t parent,
    const char *name, char *path, struct cfs_match *m, int dir)
{
	struct cfs_rop *op = cfs_rop_new(fs, req, path, m);
	struct cpx_freq q = { .path = path };

	op->parent = parent;
	op->name = cpx_xstrdup(name);
	op->dir = dir;
	q.op = dir ? CPX_FOP_RMDIR : CPX_FOP_UNLINK;
	cfs_rop_call(op, &q, on_remove);
}

/*
 * PMS deletes the session folder when the session ends: the worker's
 * copy goes too, and so does the route. A worker that cannot be reached
 * does not keep PMS from deleting its own folder: the worker's copy is
 * then deleted once it is reachable again (pending.c).
 */
static void
on_rmdir_route(struct cfs *fs, struct cfs_call *c, int status,
    struct cpx_reader *r)
{
	struct cfs_rop *op = c->arg;
	int local;

	if (check_hidden(op, status, on_rmdir_route))
		return;
	if (status != 0 && status != -ENOENT && status != -EIO) {
		fuse_reply_err(op->req, -status);
		cfs_rop_free(op);
		return;
	}
	local = cfs_local_remove(fs, op->path, 1);
	if (local == 0 || (local == -ENOENT && status == 0)) {
		cfs_node_removed(fs, op->parent, op->name);
		cfs_routing_gone(fs, op->path, status == -EIO);
		local = 0;
	}
	fuse_reply_err(op->req, -local);
	cfs_rop_free(op);
}

void
cfs_remote_rmdir_route(struct cfs *fs, fuse_req_t req, fuse_ino_t parent,
    const char *name, char *path, struct cfs_match *m)
{
	struct cfs_rop *op = cfs_rop_new(fs, req, path, m);
	struct cpx_freq q = { .op = CPX_FOP_RMDIR, .path = path };

	op->parent = parent;
	op->name = cpx_xstrdup(name);
	cfs_rop_call(op, &q, on_rmdir_route);
}

static void
on_rename(struct cfs *fs, struct cfs_call *c, int status, struct cpx_reader *r)
{
	struct cfs_rop *op = c->arg;

	if (status == 0) {
		cfs_node_moved(fs, op->parent, op->name, op->newparent,
		    op->newname);
		cfs_cache_forget_under(fs, op->path);
		cfs_cache_forget_under(fs, op->path2);
	}
	fuse_reply_err(op->req, kernel_error(status));
	cfs_rop_free(op);
}

void
cfs_remote_rename(struct cfs *fs, fuse_req_t req, fuse_ino_t parent,
    const char *name, fuse_ino_t newparent, const char *newname, char *from,
    char *to, struct cfs_match *m, unsigned flags)
{
	struct cfs_rop *op = cfs_rop_new(fs, req, from, m);
	struct cpx_freq q = { .op = CPX_FOP_RENAME, .path = from, .path2 = to };

	op->path2 = to;
	op->parent = parent;
	op->name = cpx_xstrdup(name);
	op->newparent = newparent;
	op->newname = cpx_xstrdup(newname);
	if (flags & ~(unsigned)RENAME_NOREPLACE) {
		fuse_reply_err(req, EINVAL);	/* no RENAME_EXCHANGE remotely */
		cfs_rop_free(op);
		return;
	}
	q.flags = (flags & RENAME_NOREPLACE) ? CPX_RENAME_NOREPLACE : 0;
	cfs_rop_call(op, &q, on_rename);
}
