/* local_file.c — open local files: zero-copy reads and writes through splice. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfs.h"

/* What of the caller's open flags reaches the file underneath. */
#define PASS_FLAGS (O_ACCMODE | O_APPEND | O_TRUNC | O_SYNC | O_DSYNC | \
    O_NOATIME)

static struct cfs_file *
new_file(struct cfs *fs, int fd, fuse_ino_t ino)
{
	struct cfs_file *f = cpx_xcalloc(1, sizeof *f);

	f->fd = fd;
	f->ino = ino;
	cfs_files_add(fs, f);
	return f;
}

static void
add_locked(struct cfs *fs, struct cfs_file *f)
{
	f->prev = NULL;
	f->next = fs->files;
	if (fs->files != NULL)
		fs->files->prev = f;
	fs->files = f;
}

/* Open files are listed: after an aborted connection no release comes. */
void
cfs_files_add(struct cfs *fs, struct cfs_file *f)
{
	pthread_mutex_lock(&fs->files_lock);
	add_locked(fs, f);
	pthread_mutex_unlock(&fs->files_lock);
}

void
cfs_files_remove(struct cfs *fs, struct cfs_file *f)
{
	pthread_mutex_lock(&fs->files_lock);
	if (f->prev != NULL)
		f->prev->next = f->next;
	else
		fs->files = f->next;
	if (f->next != NULL)
		f->next->prev = f->prev;
	pthread_mutex_unlock(&fs->files_lock);
}

/*
 * Whether a remote file open on node ino is pinned to another version
 * than v: the kernel's pages of that node must then be left alone.
 */
int
cfs_files_pinned_other(struct cfs *fs, fuse_ino_t ino,
    const struct cpx_attr *v)
{
	struct cfs_file *f;
	int other = 0;

	pthread_mutex_lock(&fs->files_lock);
	for (f = fs->files; f != NULL && !other; f = f->next)
		other = f->remote && f->ino == ino && f->pinned &&
		    !cfs_same_version(&f->pin, v);
	pthread_mutex_unlock(&fs->files_lock);
	return other;
}

/*
 * Lists a remote file being opened read-only, deciding how the kernel
 * reads it atomically with the other opens of its node: the kernel fails
 * an open with EIO when the node's files would mix passthrough with
 * anything else, or two backing files. Passed through (f->backing set)
 * when `backing` can serve it and nothing is open through the page
 * cache; passed through to what the node's files use already, when
 * that is this version. -ESTALE when the node is passed through to
 * another version of the file (not listed then).
 */
/* Whether a remote file of node ino is open with reads that come to us. */
int
cfs_files_read_through_us(struct cfs *fs, fuse_ino_t ino)
{
	struct cfs_file *f;
	int yes = 0;

	pthread_mutex_lock(&fs->files_lock);
	for (f = fs->files; f != NULL && !yes; f = f->next)
		yes = f->remote && f->ino == ino && f->backing <= 0;
	pthread_mutex_unlock(&fs->files_lock);
	return yes;
}

int
cfs_files_add_remote(struct cfs *fs, struct cfs_file *f, int backing)
{
	struct cfs_file *o, *pt = NULL;
	int cached = 0, error = 0;

	pthread_mutex_lock(&fs->files_lock);
	for (o = fs->files; o != NULL; o = o->next) {
		if (!o->remote || o->ino != f->ino)
			continue;
		if (o->backing > 0)
			pt = o;
		else if (!o->direct)
			cached++;
	}
	if (pt != NULL) {
		if (f->pinned && cfs_same_version(&pt->pin, &f->pin) &&
		    pt->backing == backing)
			f->backing = backing;
		else
			error = -ESTALE;
	} else if (backing > 0 && cached == 0) {
		f->backing = backing;
	}
	if (error == 0)
		add_locked(fs, f);
	pthread_mutex_unlock(&fs->files_lock);
	return error;
}

/*
 * Lists a remote file being opened for writing, unless files of its node
 * are read passed through to a local copy: the kernel would fail this
 * open (EIO), and the copy could not follow the writes. -ETXTBSY then.
 */
int
cfs_files_add_writer(struct cfs *fs, struct cfs_file *f)
{
	struct cfs_file *o;
	int error = 0;

	pthread_mutex_lock(&fs->files_lock);
	for (o = fs->files; o != NULL && error == 0; o = o->next)
		if (o->remote && o->ino == f->ino && o->backing > 0)
			error = -ETXTBSY;
	if (error == 0)
		add_locked(fs, f);
	pthread_mutex_unlock(&fs->files_lock);
	return error;
}

void
cfs_files_free(struct cfs *fs)
{
	struct cfs_file *f, *next;

	for (f = fs->files; f != NULL; f = next) {
		next = f->next;
		if (f->fd >= 0)
			close(f->fd);
		free(f->path);
		free(f->worker);
		free(f);
	}
	fs->files = NULL;
}

void
cfs_local_open(struct cfs *fs, fuse_req_t req, fuse_ino_t ino,
    const char *path, struct fuse_file_info *fi)
{
	int fd = cpx_open_beneath(fs->rootfd, path,
	    (fi->flags & PASS_FLAGS) | O_NOCTTY, 0, 1);

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	/* Only we change these files, and the kernel sees every change. */
	fi->keep_cache = 1;
	fi->fh = (uint64_t)(uintptr_t)new_file(fs, fd, ino);
	cfs_node_hold(fs, ino, 1);
	if (fuse_reply_open(req, fi) != 0)
		cfs_local_release(fs, (struct cfs_file *)(uintptr_t)fi->fh);
}

void
cfs_local_create(struct cfs *fs, fuse_req_t req, fuse_ino_t parent,
    const char *name, const char *path, mode_t mode,
    struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	const char *base;
	int pfd, fd;

	memset(&e, 0, sizeof e);
	if ((pfd = cfs_local_parent(fs, path, &base)) < 0) {
		fuse_reply_err(req, -pfd);
		return;
	}
	fd = cpx_open_beneath(pfd, base, (fi->flags & (PASS_FLAGS | O_EXCL)) |
	    O_CREAT | O_NOCTTY, mode & 07777, 1);
	if (fd < 0) {
		close(pfd);
		fuse_reply_err(req, -fd);
		return;
	}
	cfs_local_own(fs, req, pfd, base);
	close(pfd);
	if (fstat(fd, &e.attr) != 0 ||
	    (e.ino = cfs_node_learn(fs, parent, name, 0)) == 0) {
		close(fd);
		fuse_reply_err(req, EIO);
		return;
	}
	e.attr.st_ino = e.ino;
	e.attr_timeout = e.entry_timeout = CFS_LOCAL_TIMEOUT;
	fi->fh = (uint64_t)(uintptr_t)new_file(fs, fd, e.ino);
	cfs_node_hold(fs, e.ino, 1);
	if (fuse_reply_create(req, &e, fi) != 0) {
		cfs_local_release(fs, (struct cfs_file *)(uintptr_t)fi->fh);
		cfs_node_forget(fs, e.ino, 1);
	}
}

/* The kernel moves the bytes from the file to the request (splice). */
void
cfs_local_read(struct cfs *fs, fuse_req_t req, struct cfs_file *f,
    size_t size, off_t off)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

	bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv.buf[0].fd = f->fd;
	bv.buf[0].pos = off;
	fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
}

void
cfs_local_write(struct cfs *fs, fuse_req_t req, struct cfs_file *f,
    struct fuse_bufvec *in, off_t off)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	ssize_t n;

	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = f->fd;
	out.buf[0].pos = off;
	n = fuse_buf_copy(&out, in, 0);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

void
cfs_local_fsync(struct cfs *fs, fuse_req_t req, struct cfs_file *f,
    int datasync)
{
	int error = datasync ? fdatasync(f->fd) : fsync(f->fd);

	fuse_reply_err(req, error == 0 ? 0 : errno);
}

void
cfs_local_release(struct cfs *fs, struct cfs_file *f)
{
	cfs_files_remove(fs, f);
	close(f->fd);
	cfs_node_hold(fs, f->ino, 0);
	free(f);
}

/* opendir: a snapshot that readdir serves by index. */
void
cfs_local_opendir(struct cfs *fs, fuse_req_t req, const char *path,
    struct fuse_file_info *fi)
{
	struct cfs_dir *d = cpx_xcalloc(1, sizeof *d);
	int error = cfs_dir_read_local(fs, path, d);

	if (error != 0) {
		cfs_dir_free(d);
		free(d);
		fuse_reply_err(req, -error);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(req, fi) != 0) {
		cfs_dir_free(d);
		free(d);
	}
}
