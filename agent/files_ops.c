/* files_ops.c — the file-service operations, confined to the worker's root. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "files.h"

/* Leave room below CPX_FRAME_MAX for the frame and the last entry. */
#define READDIR_BUDGET (CPX_FRAME_MAX - 64 * 1024)

int
files_init(struct files_svc *s, struct agent_config *cfg)
{
	size_t i;

	memset(s, 0, sizeof *s);
	s->cfg = cfg;
	s->infd = -1;
	s->spipe[0] = s->spipe[1] = -1;
	for (i = 0; i < FILES_MAX_HANDLES; i++)
		s->fds[i] = -1;
	s->rootfd = open(cfg->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->rootfd < 0) {
		cpx_error("cannot open transcode folder %s: %s", cfg->root,
		    strerror(errno));
		return -errno;
	}
	return 0;
}

void
files_close_all(struct files_svc *s)
{
	size_t i;

	for (i = 0; i < FILES_MAX_HANDLES; i++) {
		if (s->fds[i] >= 0)
			close(s->fds[i]);
		s->fds[i] = -1;
	}
	files_push_close(s);
	files_watch_close(s);
	files_splice_close(s);
	if (s->rootfd >= 0)
		close(s->rootfd);
	s->rootfd = -1;
}

/* Opens a regular file beneath the root; O_NONBLOCK so a FIFO cannot hang us. */
static int
open_regular(struct files_svc *s, const char *path, int flags, unsigned mode,
    struct stat *st)
{
	int fd = cpx_open_beneath(s->rootfd, path,
	    flags | O_NONBLOCK | O_NOCTTY, mode, 0);

	if (fd < 0)
		return fd;
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		int error = S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;

		close(fd);
		return error;
	}
	fcntl(fd, F_SETFL, flags & O_APPEND);
	return fd;
}

/* The parent folder of `path` (O_PATH) and its last component. */
static int
open_parent(struct files_svc *s, const char *path, const char **name)
{
	char *dir;
	int fd;

	if (*path == '\0')
		return -EINVAL;
	dir = cpx_path_split(path, name);
	fd = cpx_open_beneath(s->rootfd, dir, O_PATH | O_DIRECTORY, 0, 0);
	free(dir);
	return fd;
}

/* chmod and utimens act on an already confined O_PATH fd via /proc. */
static int
open_path(struct files_svc *s, const char *path, char proc[32])
{
	int fd = cpx_open_beneath(s->rootfd, path, O_PATH, 0, 0);

	if (fd >= 0)
		snprintf(proc, 32, "/proc/self/fd/%d", fd);
	return fd;
}

static int
op_stat(struct files_svc *s, const struct cpx_freq *q, struct cpx_buf *out)
{
	struct cpx_attr a;
	struct stat st;
	int fd = cpx_open_beneath(s->rootfd, q->path, O_PATH, 0, 0);

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return -errno;
	}
	close(fd);
	cpx_attr_from_stat(&a, &st);
	cpx_attr_put(out, &a);
	return 0;
}

static void
put_entries(DIR *d, uint64_t cookie, struct cpx_buf *out)
{
	size_t countpos = out->len;
	uint32_t count = 0;
	uint64_t index = 0, next = 0;
	struct dirent *de;
	struct cpx_attr a;
	struct stat st;

	cpx_buf_add_u32(out, 0);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (index++ < cookie)
			continue;
		if (out->len > READDIR_BUDGET) {
			next = index - 1;
			break;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;	/* gone meanwhile */
		cpx_attr_from_stat(&a, &st);
		cpx_buf_add_cstr(out, de->d_name);
		cpx_attr_put(out, &a);
		count++;
	}
	cpx_buf_set_u32(out, countpos, count);
	cpx_buf_add_u64(out, next);
}

static int
op_readdir(struct files_svc *s, const struct cpx_freq *q, struct cpx_buf *out)
{
	int fd = cpx_open_beneath(s->rootfd, q->path,
	    O_RDONLY | O_DIRECTORY, 0, 0);
	DIR *d;

	if (fd < 0)
		return fd;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -errno;
	}
	put_entries(d, q->offset, out);
	closedir(d);
	return 0;
}

static int
handle_slot(struct files_svc *s, uint64_t handle)
{
	uint32_t slot = (uint32_t)handle, gen = (uint32_t)(handle >> 32);

	if (slot >= FILES_MAX_HANDLES || s->fds[slot] < 0 ||
	    s->gens[slot] != gen)
		return -EBADF;
	return (int)slot;
}

static int
op_open(struct files_svc *s, const struct cpx_freq *q, struct cpx_buf *out)
{
	struct cpx_attr a;
	struct stat st;
	size_t slot;
	int fd;

	for (slot = 0; slot < FILES_MAX_HANDLES && s->fds[slot] >= 0; slot++)
		;
	if (slot == FILES_MAX_HANDLES)
		return -EMFILE;
	fd = open_regular(s, q->path, cpx_flags_to_open(q->flags),
	    q->mode & 07777, &st);
	if (fd < 0)
		return fd;
	if ((q->flags & CPX_O_ACCMODE) != CPX_O_RDONLY)
		files_mark_written(s, fd);
	s->fds[slot] = fd;
	s->gens[slot]++;
	cpx_buf_add_u64(out, (uint64_t)s->gens[slot] << 32 | slot);
	cpx_attr_from_stat(&a, &st);
	cpx_attr_put(out, &a);
	return 0;
}

/* Appends "u32 len + data" read from fd at off (the data may be spliced). */
static int
put_data(struct files_svc *s, int fd, uint64_t off, size_t size,
    struct cpx_buf *out)
{
	size_t lenpos = out->len;
	ssize_t n;
	int error;

	cpx_buf_add_u32(out, 0);
	if ((error = files_splice_read(s, fd, off, size)) == 0) {
		n = (ssize_t)s->spliced;
	} else if (error != -ENOTSUP) {
		return error;
	} else {
		cpx_buf_reserve(out, size);
		do {
			n = pread(fd, out->data + out->len, size, (off_t)off);
		} while (n < 0 && errno == EINTR);
		if (n < 0)
			return -errno;
		out->len += (size_t)n;
	}
	cpx_buf_set_u32(out, lenpos, (uint32_t)n);
	return 0;
}

static int
op_read(struct files_svc *s, const struct cpx_freq *q, struct cpx_buf *out)
{
	int slot = handle_slot(s, q->handle);

	if (slot < 0)
		return slot;
	return put_data(s, s->fds[slot], q->offset, q->size, out);
}

static int
op_pread(struct files_svc *s, const struct cpx_freq *q, struct cpx_buf *out)
{
	struct cpx_attr a;
	struct stat st;
	int error, fd = open_regular(s, q->path, O_RDONLY, 0, &st);

	if (fd < 0)
		return fd;
	cpx_attr_from_stat(&a, &st);
	cpx_attr_put(out, &a);
	error = put_data(s, fd, q->offset, q->size, out);
	close(fd);
	return error;
}

static int
op_write(struct files_svc *s, const struct cpx_freq *q, struct cpx_buf *out)
{
	int slot = handle_slot(s, q->handle);
	size_t done = 0;
	ssize_t n;

	if (slot < 0)
		return slot;
	while (done < q->datalen) {
		n = pwrite(s->fds[slot], q->data + done, q->datalen - done,
		    (off_t)(q->offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && done == 0)
			return -errno;
		if (n <= 0)
			break;	/* short write (disk full): report what went */
		done += (size_t)n;
	}
	cpx_buf_add_u32(out, (uint32_t)done);
	return 0;
}

static int
op_close(struct files_svc *s, const struct cpx_freq *q)
{
	int slot = handle_slot(s, q->handle);

	if (slot < 0)
		return slot;
	close(s->fds[slot]);
	s->fds[slot] = -1;
	return 0;
}

/* MKDIR, UNLINK, RMDIR: one *at() call on the last component. */
static int
op_name(struct files_svc *s, const struct cpx_freq *q)
{
	const char *name;
	int error = 0, fd = open_parent(s, q->path, &name);

	if (fd < 0)
		return fd;
	if (q->op == CPX_FOP_MKDIR)
		error = mkdirat(fd, name, q->mode & 07777);
	else
		error = unlinkat(fd, name,
		    q->op == CPX_FOP_RMDIR ? AT_REMOVEDIR : 0);
	if (error != 0)
		error = -errno;
	close(fd);
	return error;
}

static int
op_rename(struct files_svc *s, const struct cpx_freq *q)
{
	const char *n1, *n2;
	int error, fd1, fd2;

	if ((fd1 = open_parent(s, q->path, &n1)) < 0)
		return fd1;
	if ((fd2 = open_parent(s, q->path2, &n2)) < 0) {
		close(fd1);
		return fd2;
	}
	error = renameat2(fd1, n1, fd2, n2,
	    (q->flags & CPX_RENAME_NOREPLACE) ? RENAME_NOREPLACE : 0);
	if (error != 0)
		error = -errno;
	close(fd1);
	close(fd2);
	return error;
}

static int
op_truncate(struct files_svc *s, const struct cpx_freq *q)
{
	struct stat st;
	int error = 0, fd = open_regular(s, q->path, O_WRONLY, 0, &st);

	if (fd < 0)
		return fd;
	files_mark_written(s, fd);
	if (ftruncate(fd, (off_t)q->size) != 0)
		error = -errno;
	close(fd);
	return error;
}

static int
op_setattr(struct files_svc *s, const struct cpx_freq *q)
{
	struct timespec ts[2];
	char proc[32];
	int error, fd = open_path(s, q->path, proc);

	if (fd < 0)
		return fd;
	if (q->op == CPX_FOP_CHMOD) {
		error = chmod(proc, q->mode & 07777);
	} else {
		ts[0].tv_sec = q->atime_s;
		ts[0].tv_nsec = q->atime_ns;
		ts[1].tv_sec = q->mtime_s;
		ts[1].tv_nsec = q->mtime_ns;
		error = utimensat(AT_FDCWD, proc, ts, 0);
	}
	if (error != 0)
		error = -errno;
	close(fd);
	return error;
}

static int
op_statfs(struct files_svc *s, const struct cpx_freq *q, struct cpx_buf *out)
{
	struct cpx_statfs sf;
	struct statfs st;
	int fd = cpx_open_beneath(s->rootfd, q->path, O_PATH, 0, 0);

	if (fd < 0)
		return fd;
	if (fstatfs(fd, &st) != 0) {
		close(fd);
		return -errno;
	}
	close(fd);
	sf.bsize = (uint64_t)st.f_bsize;
	sf.blocks = st.f_blocks;
	sf.bfree = st.f_bfree;
	sf.bavail = st.f_bavail;
	sf.files = st.f_files;
	sf.ffree = st.f_ffree;
	sf.namemax = (uint32_t)st.f_namelen;
	cpx_statfs_put(out, &sf);
	return 0;
}

static int
dispatch(struct files_svc *s, const struct cpx_freq *q, struct cpx_buf *out)
{
	switch (q->op) {
	case CPX_FOP_STAT:
		return op_stat(s, q, out);
	case CPX_FOP_READDIR:
		return op_readdir(s, q, out);
	case CPX_FOP_OPEN:
		return op_open(s, q, out);
	case CPX_FOP_READ:
		return op_read(s, q, out);
	case CPX_FOP_PREAD:
		return op_pread(s, q, out);
	case CPX_FOP_WRITE:
		return op_write(s, q, out);
	case CPX_FOP_CLOSE:
		return op_close(s, q);
	case CPX_FOP_MKDIR:
	case CPX_FOP_UNLINK:
	case CPX_FOP_RMDIR:
		return op_name(s, q);
	case CPX_FOP_RENAME:
		return op_rename(s, q);
	case CPX_FOP_TRUNCATE:
		return op_truncate(s, q);
	case CPX_FOP_CHMOD:
	case CPX_FOP_UTIMENS:
		return op_setattr(s, q);
	case CPX_FOP_STATFS:
		return op_statfs(s, q, out);
	case CPX_FOP_WATCH:
		return files_watch_add(s, q->path);
	case CPX_FOP_UNWATCH:
		return files_watch_remove(s, q->path);
	case CPX_FOP_PUSH:
		return files_watch_push(s, q->path, q->flags, q->size);
	case CPX_FOP_RMTREE:
		return files_rmtree(s, q->path);
	}
	return -ENOSYS;
}

/*
 * Appends the answer to one FREQ payload to `reply` (an FREPLY payload,
 * possibly behind a frame header the caller reserved). Whatever the
 * request holds, the answer is a status; a malformed one gets -EPROTO.
 * Results are written straight into `reply`: file contents are copied
 * once, from the file into the buffer that goes out.
 */
void
files_request(struct files_svc *s, const uint8_t *p, size_t n,
    struct cpx_buf *reply)
{
	size_t base = reply->len;
	struct cpx_freq q;
	int status;

	cpx_buf_add_u32(reply, 0);
	status = cpx_freq_parse(p, n, &q);
	if (status == 0)
		status = dispatch(s, &q, reply);
	if (status < 0 && status != -ENOENT) {
		char *shown = q.path != NULL ?
		    cpx_escape(q.path, strlen(q.path), 120) : cpx_xstrdup("");

		cpx_debug("%s \"%s\": %s", cpx_fop_name(q.op), shown,
		    strerror(-status));
		free(shown);
	}
	cpx_freq_free(&q);
	if (status != 0)
		reply->len = base + 4;	/* no partial result after an error */
	cpx_buf_set_u32(reply, base, (uint32_t)status);
}
