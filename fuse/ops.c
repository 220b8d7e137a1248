/* ops.c — the FUSE operations: each path goes local or to its worker. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "cfs.h"

/*
 * A path is local (served from the folder underneath), a routed folder
 * (local attributes, listing merged with the worker's), or inside a
 * routed folder (the worker's, with PMS's own files as fallback).
 */
enum place { P_LOCAL, P_ROUTE_DIR, P_REMOTE };

#define FS(req) ((struct cfs *)fuse_req_userdata(req))
#define FILE_OF(fi) ((struct cfs_file *)(uintptr_t)(fi)->fh)

static enum place
place_of(struct cfs *fs, const char *path, struct cfs_match *m)
{
	if (!cfs_route_match(fs, path, m))
		return P_LOCAL;
	return m->is_dir ? P_ROUTE_DIR : P_REMOTE;
}

/* The child's path, or NULL after answering the request with an error. */
static char *
child(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	char *dir, *path;

	if (strlen(name) > 255) {
		fuse_reply_err(req, ENAMETOOLONG);
		return NULL;
	}
	if ((dir = cfs_node_path(FS(req), parent, NULL)) == NULL) {
		fuse_reply_err(req, ENOENT);
		return NULL;
	}
	path = cfs_child_path(dir, name);
	free(dir);
	return path;
}

/* A node's path and whether it is remote (and still routed). */
static char *
node(fuse_req_t req, fuse_ino_t ino, struct cfs_match *m, int *remote)
{
	char *path = cfs_node_path(FS(req), ino, remote);

	memset(m, 0, sizeof *m);
	if (path == NULL) {
		fuse_reply_err(req, ENOENT);
		return NULL;
	}
	if (place_of(FS(req), path, m) != P_REMOTE || !*remote)
		*remote = 0;
	return path;
}

static void
op_init(void *userdata, struct fuse_conn_info *conn)
{
	/* docs/fuse.md: "Kernel settings" gives the reasons. */
	conn->want |= FUSE_CAP_ASYNC_READ | FUSE_CAP_PARALLEL_DIROPS |
	    FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_ATOMIC_O_TRUNC;
	conn->want |= conn->capable & (FUSE_CAP_SPLICE_WRITE |
	    FUSE_CAP_SPLICE_MOVE | FUSE_CAP_SPLICE_READ);
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_EXPIRE_ONLY) {
		conn->want |= FUSE_CAP_EXPIRE_ONLY;
		((struct cfs *)userdata)->expire_only = 1;
	}
	conn->max_write = 1024 * 1024;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	conn->time_gran = 1;
	((struct cfs *)userdata)->init_done = 1;
}

static void
op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct cfs_match m;
	char *path = child(req, parent, name);

	if (path == NULL)
		return;
	if (place_of(FS(req), path, &m) == P_REMOTE) {
		cfs_remote_lookup(FS(req), req, parent, name, path, &m);
		return;
	}
	cfs_local_reply_entry(FS(req), req, parent, name, path);
	cfs_match_free(&m);
	free(path);
}

static void
op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	cfs_node_forget(FS(req), ino, nlookup);
	fuse_reply_none(req);
}

static void
op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *fd)
{
	size_t i;

	for (i = 0; i < count; i++)
		cfs_node_forget(FS(req), fd[i].ino, fd[i].nlookup);
	fuse_reply_none(req);
}

static void
op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cfs_match m;
	int remote;
	char *path = node(req, ino, &m, &remote);

	if (path == NULL)
		return;
	if (remote) {
		cfs_remote_getattr(FS(req), req, ino, path, &m);
		return;
	}
	cfs_local_getattr(FS(req), req, ino, path, fi ? FILE_OF(fi) : NULL);
	cfs_match_free(&m);
	free(path);
}

static void
op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
    struct fuse_file_info *fi)
{
	struct cfs_match m;
	int remote;
	char *path = node(req, ino, &m, &remote);

	if (path == NULL)
		return;
	if (remote) {
		cfs_remote_setattr(FS(req), req, ino, path, &m, attr, to_set);
		return;
	}
	cfs_local_setattr(FS(req), req, ino, path, attr, to_set,
	    fi ? FILE_OF(fi) : NULL);
	cfs_match_free(&m);
	free(path);
}

static void
op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct cfs_match m;
	int remote;
	char *path = node(req, ino, &m, &remote);

	if (path == NULL)
		return;
	if (remote)
		fuse_reply_err(req, EINVAL);	/* workers serve no symlinks */
	else
		cfs_local_readlink(FS(req), req, path);
	cfs_match_free(&m);
	free(path);
}

/* mknod, mkdir, symlink. */
static void
make(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    dev_t rdev, const char *target)
{
	struct cfs_match m;
	char *path = child(req, parent, name);

	if (path == NULL)
		return;
	if (place_of(FS(req), path, &m) != P_REMOTE) {
		cfs_local_make(FS(req), req, parent, path, mode, rdev, target);
	} else if (S_ISDIR(mode) && target == NULL) {
		cfs_remote_mkdir(FS(req), req, parent, name, path, &m, mode);
		return;
	} else {
		fuse_reply_err(req, EPERM);
	}
	cfs_match_free(&m);
	free(path);
}

static void
op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    dev_t rdev)
{
	make(req, parent, name, mode, rdev, NULL);
}

static void
op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL);
}

static void
op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
    const char *name)
{
	make(req, parent, name, S_IFLNK | 0777, 0, target);
}

static void
remove_name(fuse_req_t req, fuse_ino_t parent, const char *name, int dir)
{
	struct cfs_match m;
	char *path = child(req, parent, name);
	enum place p;
	int error;

	if (path == NULL)
		return;
	p = place_of(FS(req), path, &m);
	if (p == P_REMOTE) {
		cfs_remote_remove(FS(req), req, parent, name, path, &m, dir);
		return;
	}
	if (p == P_ROUTE_DIR && dir) {
		cfs_remote_rmdir_route(FS(req), req, parent, name, path, &m);
		return;
	}
	if ((error = cfs_local_remove(FS(req), path, dir)) == 0)
		cfs_node_removed(FS(req), parent, name);
	fuse_reply_err(req, -error);
	cfs_match_free(&m);
	free(path);
}

static void
op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, 0);
}

static void
op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, 1);
}

static int
source_is_remote(struct cfs *fs, fuse_ino_t parent, const char *name)
{
	fuse_ino_t ino = cfs_node_find(fs, parent, name);
	int remote = 1;
	char *path;

	if (ino != 0 && (path = cfs_node_path(fs, ino, &remote)) != NULL)
		free(path);
	return remote;
}

static void
op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
    fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct cfs *fs = FS(req);
	struct cfs_match m1, m2;
	char *from = NULL, *to = NULL;
	enum place p1, p2;
	int error = 0;

	memset(&m1, 0, sizeof m1);
	memset(&m2, 0, sizeof m2);
	if ((from = child(req, parent, name)) == NULL ||
	    (to = child(req, newparent, newname)) == NULL)
		goto out;
	p1 = place_of(fs, from, &m1);
	p2 = place_of(fs, to, &m2);
	if (p1 == P_ROUTE_DIR || p2 == P_ROUTE_DIR) {
		error = EBUSY;		/* a routed folder stays where it is */
	} else if (p1 != p2 || (p1 == P_REMOTE && strcmp(m1.dir, m2.dir) != 0)) {
		error = EXDEV;
	} else if (p1 == P_REMOTE && source_is_remote(fs, parent, name)) {
		cfs_remote_rename(fs, req, parent, name, newparent, newname,
		    from, to, &m1, flags);
		from = to = NULL;
		goto out;
	} else if ((error = -cfs_local_rename(fs, from, to, flags)) == 0) {
		cfs_node_moved(fs, parent, name, newparent, newname);
	}
	fuse_reply_err(req, error);
out:
	cfs_match_free(&m1);
	cfs_match_free(&m2);
	free(from);
	free(to);
}

static void
op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
    const char *newname)
{
	struct cfs_match m, m2;
	char *to = NULL, *from;
	int remote, error;

	memset(&m2, 0, sizeof m2);
	if ((from = node(req, ino, &m, &remote)) == NULL)
		return;
	if ((to = child(req, newparent, newname)) == NULL)
		goto out;
	if (remote || place_of(FS(req), to, &m2) == P_REMOTE)
		fuse_reply_err(req, EPERM);
	else if ((error = cfs_local_link(FS(req), from, to)) != 0)
		fuse_reply_err(req, -error);
	else
		cfs_local_reply_entry(FS(req), req, newparent, newname, to);
out:
	cfs_match_free(&m);
	cfs_match_free(&m2);
	free(from);
	free(to);
}

static void
op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cfs_match m;
	int remote;
	char *path = node(req, ino, &m, &remote);

	if (path == NULL)
		return;
	if (remote) {
		cfs_remote_open(FS(req), req, ino, path, &m, fi);
		return;
	}
	cfs_local_open(FS(req), req, ino, path, fi);
	cfs_match_free(&m);
	free(path);
}

static void
op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    struct fuse_file_info *fi)
{
	struct cfs_match m;
	char *path = child(req, parent, name);

	if (path == NULL)
		return;
	if (place_of(FS(req), path, &m) == P_REMOTE) {
		cfs_remote_create(FS(req), req, parent, name, path, &m, mode, fi);
		return;
	}
	cfs_local_create(FS(req), req, parent, name, path, mode, fi);
	cfs_match_free(&m);
	free(path);
}

static void
op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct cfs_file *f = FILE_OF(fi);

	if (f->remote)
		cfs_cache_read(FS(req), req, f, (uint64_t)off, size);
	else
		cfs_local_read(FS(req), req, f, size, off);
}

static void
op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in,
    off_t off, struct fuse_file_info *fi)
{
	struct cfs_file *f = FILE_OF(fi);
	size_t size = fuse_buf_size(in);
	struct fuse_bufvec mem = FUSE_BUFVEC_INIT(size);
	ssize_t n;

	if (!f->remote) {
		cfs_local_write(FS(req), req, f, in, off);
		return;
	}
	if (in->count == 1 && !(in->buf[0].flags & FUSE_BUF_IS_FD)) {
		cfs_remote_write(FS(req), req, f, in->buf[0].mem, size, off);
		return;
	}
	mem.buf[0].mem = cpx_xmalloc(size > 0 ? size : 1);
	n = fuse_buf_copy(&mem, in, 0);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		cfs_remote_write(FS(req), req, f, mem.buf[0].mem, (size_t)n,
		    off);
	free(mem.buf[0].mem);
}

static void
op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cfs_file *f = FILE_OF(fi);

	if (f->remote)
		cfs_remote_release(FS(req), f);
	else
		cfs_local_release(FS(req), f);
	fuse_reply_err(req, 0);
}

static void
op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
    struct fuse_file_info *fi)
{
	struct cfs_file *f = FILE_OF(fi);

	/* A remote write is on the worker when it is answered. */
	if (f->remote)
		fuse_reply_err(req, 0);
	else
		cfs_local_fsync(FS(req), req, f, datasync);
}

static void
op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cfs_match m;
	int remote;
	char *path = node(req, ino, &m, &remote);

	if (path == NULL)
		return;
	if (remote || m.is_dir) {
		cfs_remote_opendir(FS(req), req, ino, path, &m, fi);
		return;
	}
	cfs_local_opendir(FS(req), req, path, fi);
	cfs_match_free(&m);
	free(path);
}

static void
op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct cfs_dir *d = (struct cfs_dir *)(uintptr_t)fi->fh;
	char *buf = cpx_xmalloc(size);
	size_t i, pos = 0, len;
	struct stat st;

	memset(&st, 0, sizeof st);
	for (i = (size_t)off; i < d->n + 2; i++) {
		const char *name = i == 0 ? "." : i == 1 ? ".." : d->ents[i - 2].name;

		st.st_ino = i < 2 ? ino : d->ents[i - 2].ino;
		st.st_mode = i < 2 ? S_IFDIR : d->ents[i - 2].mode;
		len = fuse_add_direntry(req, buf + pos, size - pos, name, &st,
		    (off_t)i + 1);
		if (len > size - pos)
			break;
		pos += len;
	}
	fuse_reply_buf(req, buf, pos);
	free(buf);
}

static void
op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cfs_dir *d = (struct cfs_dir *)(uintptr_t)fi->fh;

	cfs_dir_free(d);
	free(d);
	fuse_reply_err(req, 0);
}

static void
op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
    struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void
op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct cfs_match m;
	int remote;
	char *path = node(req, ino, &m, &remote);

	if (path == NULL)
		return;
	if (m.dir != NULL)
		cfs_remote_statfs(FS(req), req, &m);
	else
		cfs_local_statfs(FS(req), req);
	cfs_match_free(&m);
	free(path);
}

const struct fuse_lowlevel_ops cfs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write_buf = op_write_buf,
	/* No flush: the kernel stops sending FLUSH, one round trip less per close. */
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
};
