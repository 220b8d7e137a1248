/* local.c — local paths, served from the folder underneath the mount. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cfs.h"

/*
 * The mount hides the folder it covers, so everything here goes through
 * fs->rootfd, opened before mounting, with *at() calls. Every path is
 * resolved beneath it with no symlink at all: the kernel follows symlinks
 * itself (they are served by readlink), so a symlink in the middle of a
 * path we are given can only come from a race, never from a caller.
 */

int
cfs_local_parent(struct cfs *fs, const char *path, const char **name)
{
	char *dir;
	int fd;

	if (*path == '\0')
		return -EINVAL;
	dir = cpx_path_split(path, name);
	fd = cpx_open_beneath(fs->rootfd, dir, O_PATH | O_DIRECTORY, 0, 1);
	free(dir);
	return fd;
}

int
cfs_local_stat(struct cfs *fs, const char *path, struct stat *st)
{
	const char *name;
	int error = 0, fd;

	if (*path == '\0')
		return fstat(fs->rootfd, st) == 0 ? 0 : -errno;
	if ((fd = cfs_local_parent(fs, path, &name)) < 0)
		return fd;
	if (fstatat(fd, name, st, AT_SYMLINK_NOFOLLOW) != 0)
		error = -errno;
	close(fd);
	return error;
}

/* New objects belong to the caller, and to a setgid folder's group. */
void
cfs_local_own(struct cfs *fs, fuse_req_t req, int dirfd, const char *name)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct stat dir;
	gid_t gid = ctx->gid;

	if (geteuid() != 0)
		return;
	if (fstat(dirfd, &dir) == 0 && (dir.st_mode & S_ISGID))
		gid = dir.st_gid;
	if (fchownat(dirfd, name, ctx->uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
		cpx_warn("cannot give %s to %u:%u: %s", name,
		    (unsigned)ctx->uid, (unsigned)gid, strerror(errno));
}

/* Answers a lookup-like request (lookup, mkdir, mknod, symlink, link). */
void
cfs_local_reply_entry(struct cfs *fs, fuse_req_t req, fuse_ino_t parent,
    const char *name, const char *path)
{
	struct fuse_entry_param e;
	int error;

	memset(&e, 0, sizeof e);
	if ((error = cfs_local_stat(fs, path, &e.attr)) != 0) {
		if (error == -ENOENT) {
			/* Not cached: a route may bring the name any moment. */
			fuse_reply_entry(req, &e);
		} else {
			fuse_reply_err(req, -error);
		}
		return;
	}
	e.ino = cfs_node_learn(fs, parent, name, 0);
	if (e.ino == 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	e.attr.st_ino = e.ino;
	e.attr_timeout = e.entry_timeout = CFS_LOCAL_TIMEOUT;
	if (fuse_reply_entry(req, &e) != 0)
		cfs_node_forget(fs, e.ino, 1);
}

void
cfs_local_getattr(struct cfs *fs, fuse_req_t req, fuse_ino_t ino,
    const char *path, struct cfs_file *f)
{
	struct stat st;
	int error;

	if (f != NULL && !f->remote)
		error = fstat(f->fd, &st) == 0 ? 0 : -errno;
	else
		error = cfs_local_stat(fs, path, &st);
	if (error != 0) {
		fuse_reply_err(req, -error);
		return;
	}
	st.st_ino = ino;
	fuse_reply_attr(req, &st, CFS_LOCAL_TIMEOUT);
}

static int
set_mode(int pfd, const char *name, int fd, mode_t mode)
{
	char proc[32];
	int tfd, error = 0;

	if (fd >= 0)
		return fchmod(fd, mode) == 0 ? 0 : -errno;
	tfd = cpx_open_beneath(pfd, name, O_PATH | O_NOFOLLOW, 0, 1);
	if (tfd < 0)
		return tfd;
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", tfd);
	if (chmod(proc, mode) != 0)
		error = -errno;
	close(tfd);
	return error;
}

static int
set_size(int pfd, const char *name, int fd, off_t size)
{
	int tfd, error = 0;

	if (fd >= 0)
		return ftruncate(fd, size) == 0 ? 0 : -errno;
	tfd = cpx_open_beneath(pfd, name, O_WRONLY | O_NONBLOCK, 0, 1);
	if (tfd < 0)
		return tfd;
	if (ftruncate(tfd, size) != 0)
		error = -errno;
	close(tfd);
	return error;
}

static int
set_times(int pfd, const char *name, int fd, const struct stat *attr,
    int to_set)
{
	struct timespec ts[2];

	ts[0].tv_sec = ts[1].tv_sec = 0;
	ts[0].tv_nsec = ts[1].tv_nsec = UTIME_OMIT;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		ts[0] = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		ts[1] = attr->st_mtim;
	if (fd >= 0)
		return futimens(fd, ts) == 0 ? 0 : -errno;
	return utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int
apply(int pfd, const char *name, int fd, struct stat *attr, int to_set)
{
	uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
	gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
	int error = 0;

	if (to_set & FUSE_SET_ATTR_MODE)
		error = set_mode(pfd, name, fd, attr->st_mode & 07777);
	if (error == 0 && (uid != (uid_t)-1 || gid != (gid_t)-1) &&
	    fchownat(pfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
		error = -errno;
	if (error == 0 && (to_set & FUSE_SET_ATTR_SIZE))
		error = set_size(pfd, name, fd, attr->st_size);
	if (error == 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
	    FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)))
		error = set_times(pfd, name, fd, attr, to_set);
	return error;
}

/* The kernel checked the caller's rights already (default_permissions). */
void
cfs_local_setattr(struct cfs *fs, fuse_req_t req, fuse_ino_t ino,
    const char *path, struct stat *attr, int to_set, struct cfs_file *f)
{
	int fd = (f != NULL && !f->remote) ? f->fd : -1;
	const char *name = ".";
	int pfd, error;

	if (*path != '\0')
		pfd = cfs_local_parent(fs, path, &name);
	else if ((pfd = fcntl(fs->rootfd, F_DUPFD_CLOEXEC, 0)) < 0)
		pfd = -errno;
	if (pfd < 0) {
		fuse_reply_err(req, -pfd);
		return;
	}
	error = apply(pfd, name, fd, attr, to_set);
	close(pfd);
	if (error != 0)
		fuse_reply_err(req, -error);
	else
		cfs_local_getattr(fs, req, ino, path, f);
}

void
cfs_local_readlink(struct cfs *fs, fuse_req_t req, const char *path)
{
	char buf[CPX_PATH_MAX + 1];
	const char *name;
	ssize_t n;
	int fd = cfs_local_parent(fs, path, &name);

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	n = readlinkat(fd, name, buf, sizeof buf - 1);
	close(fd);
	if (n < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

/* MKDIR, MKNOD, SYMLINK: make it, give it to the caller, answer the entry. */
void
cfs_local_make(struct cfs *fs, fuse_req_t req, fuse_ino_t parent,
    const char *path, mode_t mode, dev_t rdev, const char *target)
{
	const char *name;
	int error = 0, fd = cfs_local_parent(fs, path, &name);

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	if (target != NULL)
		error = symlinkat(target, fd, name);
	else if (S_ISDIR(mode))
		error = mkdirat(fd, name, mode & 07777);
	else if (S_ISREG(mode) || S_ISFIFO(mode) || S_ISSOCK(mode))
		error = mknodat(fd, name, mode, rdev);
	else
		error = -1, errno = EPERM;	/* no device nodes in here */
	if (error != 0) {
		error = errno;
		close(fd);
		fuse_reply_err(req, error);
		return;
	}
	cfs_local_own(fs, req, fd, name);
	close(fd);
	cfs_local_reply_entry(fs, req, parent, name, path);
}

int
cfs_local_remove(struct cfs *fs, const char *path, int dir)
{
	const char *name;
	int error = 0, fd = cfs_local_parent(fs, path, &name);

	if (fd < 0)
		return fd;
	if (unlinkat(fd, name, dir ? AT_REMOVEDIR : 0) != 0)
		error = -errno;
	close(fd);
	return error;
}

int
cfs_local_rename(struct cfs *fs, const char *from, const char *to,
    unsigned flags)
{
	const char *n1, *n2;
	int error = 0, fd1, fd2;

	if ((fd1 = cfs_local_parent(fs, from, &n1)) < 0)
		return fd1;
	if ((fd2 = cfs_local_parent(fs, to, &n2)) < 0) {
		close(fd1);
		return fd2;
	}
	if (renameat2(fd1, n1, fd2, n2, flags) != 0)
		error = -errno;
	close(fd1);
	close(fd2);
	return error;
}

int
cfs_local_link(struct cfs *fs, const char *from, const char *to)
{
	const char *n1, *n2;
	int error = 0, fd1, fd2;

	if ((fd1 = cfs_local_parent(fs, from, &n1)) < 0)
		return fd1;
	if ((fd2 = cfs_local_parent(fs, to, &n2)) < 0) {
		close(fd1);
		return fd2;
	}
	if (linkat(fd1, n1, fd2, n2, 0) != 0)
		error = -errno;
	close(fd1);
	close(fd2);
	return error;
}

void
cfs_local_statfs(struct cfs *fs, fuse_req_t req)
{
	struct statvfs sv;

	if (fstatvfs(fs->rootfd, &sv) != 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

/* The entries of a local folder, "." and ".." first. */
int
cfs_dir_read_local(struct cfs *fs, const char *path, struct cfs_dir *d)
{
	int fd = cpx_open_beneath(fs->rootfd, path, O_RDONLY | O_DIRECTORY, 0,
	    1);
	struct dirent *de;
	DIR *dir;

	if (fd < 0)
		return fd;
	if ((dir = fdopendir(fd)) == NULL) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (!cfs_dir_has(d, de->d_name))
			cfs_dir_add(d, de->d_name,
			    (uint32_t)DTTOIF(de->d_type), de->d_ino);
	}
	closedir(dir);
	return 0;
}
