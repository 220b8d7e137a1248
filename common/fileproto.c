/* fileproto.c — file-service requests, attributes and events on the wire. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "cpx-protocol.h"

static const char *const fop_names[] = {
	[CPX_FOP_STAT] = "stat",
	[CPX_FOP_READDIR] = "readdir",
	[CPX_FOP_OPEN] = "open",
	[CPX_FOP_READ] = "read",
	[CPX_FOP_WRITE] = "write",
	[CPX_FOP_CLOSE] = "close",
	[CPX_FOP_MKDIR] = "mkdir",
	[CPX_FOP_UNLINK] = "unlink",
	[CPX_FOP_RMDIR] = "rmdir",
	[CPX_FOP_RENAME] = "rename",
	[CPX_FOP_TRUNCATE] = "truncate",
	[CPX_FOP_CHMOD] = "chmod",
	[CPX_FOP_UTIMENS] = "utimens",
	[CPX_FOP_STATFS] = "statfs",
	[CPX_FOP_WATCH] = "watch",
	[CPX_FOP_UNWATCH] = "unwatch",
	[CPX_FOP_PREAD] = "pread",
	[CPX_FOP_PUSH] = "push",
	[CPX_FOP_RMTREE] = "rmtree",
};

const char *
cpx_fop_name(int op)
{
	if (op <= 0 || op >= CPX_FOP_MAX_)
		return "unknown";
	return fop_names[op];
}

void
cpx_attr_put(struct cpx_buf *b, const struct cpx_attr *a)
{
	cpx_buf_add_u32(b, a->mode);
	cpx_buf_add_u32(b, a->nlink);
	cpx_buf_add_u32(b, a->uid);
	cpx_buf_add_u32(b, a->gid);
	cpx_buf_add_u64(b, a->size);
	cpx_buf_add_u64(b, a->blocks);
	cpx_buf_add_u64(b, (uint64_t)a->atime_s);
	cpx_buf_add_u32(b, a->atime_ns);
	cpx_buf_add_u64(b, (uint64_t)a->mtime_s);
	cpx_buf_add_u32(b, a->mtime_ns);
	cpx_buf_add_u64(b, (uint64_t)a->ctime_s);
	cpx_buf_add_u32(b, a->ctime_ns);
}

void
cpx_attr_get(struct cpx_reader *r, struct cpx_attr *a)
{
	a->mode = cpx_rd_u32(r);
	a->nlink = cpx_rd_u32(r);
	a->uid = cpx_rd_u32(r);
	a->gid = cpx_rd_u32(r);
	a->size = cpx_rd_u64(r);
	a->blocks = cpx_rd_u64(r);
	a->atime_s = (int64_t)cpx_rd_u64(r);
	a->atime_ns = cpx_rd_u32(r);
	a->mtime_s = (int64_t)cpx_rd_u64(r);
	a->mtime_ns = cpx_rd_u32(r);
	a->ctime_s = (int64_t)cpx_rd_u64(r);
	a->ctime_ns = cpx_rd_u32(r);
	if (a->atime_ns >= 1000000000 || a->mtime_ns >= 1000000000 ||
	    a->ctime_ns >= 1000000000)
		r->err = 1;
}

/* Which arguments an op carries, so encoder and parser cannot disagree. */
enum {
	ARG_PATH = 1 << 0,
	ARG_PATH2 = 1 << 1,
	ARG_HANDLE = 1 << 2,
	ARG_OFFSET = 1 << 3,
	ARG_SIZE32 = 1 << 4,
	ARG_SIZE64 = 1 << 5,
	ARG_FLAGS = 1 << 6,
	ARG_MODE = 1 << 7,
	ARG_DATA = 1 << 8,
	ARG_TIMES = 1 << 9,
};

static const unsigned fop_args[CPX_FOP_MAX_] = {
	[CPX_FOP_STAT] = ARG_PATH,
	[CPX_FOP_READDIR] = ARG_PATH | ARG_OFFSET,
	[CPX_FOP_OPEN] = ARG_PATH | ARG_FLAGS | ARG_MODE,
	[CPX_FOP_READ] = ARG_HANDLE | ARG_OFFSET | ARG_SIZE32,
	[CPX_FOP_WRITE] = ARG_HANDLE | ARG_OFFSET | ARG_DATA,
	[CPX_FOP_CLOSE] = ARG_HANDLE,
	[CPX_FOP_MKDIR] = ARG_PATH | ARG_MODE,
	[CPX_FOP_UNLINK] = ARG_PATH,
	[CPX_FOP_RMDIR] = ARG_PATH,
	[CPX_FOP_RENAME] = ARG_PATH | ARG_PATH2 | ARG_FLAGS,
	[CPX_FOP_TRUNCATE] = ARG_PATH | ARG_SIZE64,
	[CPX_FOP_CHMOD] = ARG_PATH | ARG_MODE,
	[CPX_FOP_UTIMENS] = ARG_PATH | ARG_TIMES,
	[CPX_FOP_STATFS] = ARG_PATH,
	[CPX_FOP_WATCH] = ARG_PATH,
	[CPX_FOP_UNWATCH] = ARG_PATH,
	[CPX_FOP_PREAD] = ARG_PATH | ARG_OFFSET | ARG_SIZE32,
	[CPX_FOP_PUSH] = ARG_PATH | ARG_SIZE64 | ARG_FLAGS,
	[CPX_FOP_RMTREE] = ARG_PATH,
};

void
cpx_freq_put(struct cpx_buf *b, const struct cpx_freq *q)
{
	unsigned args = fop_args[q->op];

	cpx_buf_add_u8(b, q->op);
	if (args & ARG_PATH)
		cpx_buf_add_cstr(b, q->path);
	if (args & ARG_PATH2)
		cpx_buf_add_cstr(b, q->path2);
	if (args & ARG_HANDLE)
		cpx_buf_add_u64(b, q->handle);
	if (args & ARG_OFFSET)
		cpx_buf_add_u64(b, q->offset);
	if (args & ARG_SIZE32)
		cpx_buf_add_u32(b, (uint32_t)q->size);
	if (args & ARG_SIZE64)
		cpx_buf_add_u64(b, q->size);
	if (args & ARG_FLAGS)
		cpx_buf_add_u32(b, q->flags);
	if (args & ARG_MODE)
		cpx_buf_add_u32(b, q->mode);
	if (args & ARG_DATA)
		cpx_buf_add_str(b, q->data, q->datalen);
	if (args & ARG_TIMES) {
		cpx_buf_add_u64(b, (uint64_t)q->atime_s);
		cpx_buf_add_u32(b, q->atime_ns);
		cpx_buf_add_u64(b, (uint64_t)q->mtime_s);
		cpx_buf_add_u32(b, q->mtime_ns);
	}
}

/* A path argument: clean and relative, or "" meaning the root itself. */
static const char *
read_path(struct cpx_reader *r, char **slot)
{
	*slot = cpx_rd_cstr(r, CPX_PATH_MAX);
	if (*slot == NULL)
		return NULL;
	if (**slot != '\0' && !cpx_path_clean_relative(*slot)) {
		r->err = 1;
		return NULL;
	}
	return *slot;
}

static void
read_times(struct cpx_reader *r, struct cpx_freq *q)
{
	q->atime_s = (int64_t)cpx_rd_u64(r);
	q->atime_ns = cpx_rd_u32(r);
	q->mtime_s = (int64_t)cpx_rd_u64(r);
	q->mtime_ns = cpx_rd_u32(r);
}

/* PUSH flags: share k of n, 0 <= k < n <= CPX_PUSH_SHARES_MAX. */
static int
push_shares_valid(uint32_t flags)
{
	uint32_t share = flags & 0xffff, shares = flags >> 16;

	return shares >= 1 && shares <= CPX_PUSH_SHARES_MAX && share < shares;
}

/*
 * Parses an untrusted request. Paths are checked to be clean relative
 * paths (or "" for the root); sizes are bounded. Returns 0 or -EPROTO;
 * either way free with cpx_freq_free.
 */
int
cpx_freq_parse(const uint8_t *p, size_t n, struct cpx_freq *q)
{
	struct cpx_reader r;
	char *path2 = NULL;
	unsigned args;

	memset(q, 0, sizeof *q);
	cpx_reader_init(&r, p, n);
	q->op = cpx_rd_u8(&r);
	if (r.err || q->op == 0 || q->op >= CPX_FOP_MAX_)
		return -EPROTO;
	args = fop_args[q->op];
	if (args & ARG_PATH)
		q->path = read_path(&r, &q->buf_);
	if (args & ARG_PATH2) {
		q->path2 = read_path(&r, &path2);
		if (path2 != NULL) {
			/* Keep one owned buffer: "path\0path2\0". */
			size_t l1 = strlen(q->buf_), l2 = strlen(path2);

			q->buf_ = cpx_xrealloc(q->buf_, l1 + l2 + 2);
			memcpy(q->buf_ + l1 + 1, path2, l2 + 1);
			q->path = q->buf_;
			q->path2 = q->buf_ + l1 + 1;
			free(path2);
		}
	}
	if (args & ARG_HANDLE)
		q->handle = cpx_rd_u64(&r);
	if (args & ARG_OFFSET)
		q->offset = cpx_rd_u64(&r);
	if (args & ARG_SIZE32)
		q->size = cpx_rd_u32(&r);
	if (args & ARG_SIZE64)
		q->size = cpx_rd_u64(&r);
	if (args & ARG_FLAGS)
		q->flags = cpx_rd_u32(&r);
	if (args & ARG_MODE)
		q->mode = cpx_rd_u32(&r);
	if (args & ARG_DATA)
		q->data = cpx_rd_str(&r, &q->datalen, CPX_FREAD_MAX);
	if (args & ARG_TIMES)
		read_times(&r, q);
	if (r.err || r.left != 0 || q->size > (uint64_t)INT64_MAX ||
	    q->offset > (uint64_t)INT64_MAX ||
	    ((q->op == CPX_FOP_READ || q->op == CPX_FOP_PREAD) &&
	    q->size > CPX_FREAD_MAX) ||
	    (q->op == CPX_FOP_OPEN && (q->flags & ~(uint32_t)CPX_O_ALL_)) ||
	    (q->op == CPX_FOP_PUSH && !push_shares_valid(q->flags)) ||
	    (q->op == CPX_FOP_RENAME && (q->flags & ~(uint32_t)CPX_RENAME_NOREPLACE)))
		return -EPROTO;
	return 0;
}

void
cpx_freq_free(struct cpx_freq *q)
{
	free(q->buf_);
	q->buf_ = NULL;
	q->path = q->path2 = NULL;
}

void
cpx_fevent_put(struct cpx_buf *b, uint8_t kind, const char *path,
    const struct cpx_attr *a)
{
	static const struct cpx_attr none;

	cpx_buf_add_u8(b, kind);
	cpx_buf_add_cstr(b, path);
	cpx_attr_put(b, a != NULL ? a : &none);
}

/* An event with the file's identity, the key of its pushed contents. */
void
cpx_fevent_put_file(struct cpx_buf *b, uint8_t kind, const char *path,
    const struct cpx_attr *a, uint64_t dev, uint64_t ino)
{
	cpx_fevent_put(b, kind, path, a);
	cpx_buf_add_u64(b, dev);
	cpx_buf_add_u64(b, ino);
}

/* m->path is new; caller frees. The identity is optional on the wire. */
int
cpx_fevent_parse_msg(const uint8_t *p, size_t n, struct cpx_fevent_msg *m)
{
	struct cpx_reader r;

	memset(m, 0, sizeof *m);
	cpx_reader_init(&r, p, n);
	m->kind = cpx_rd_u8(&r);
	m->path = cpx_rd_cstr(&r, CPX_PATH_MAX);
	cpx_attr_get(&r, &m->attr);
	if (!r.err && r.left > 0) {
		m->dev = cpx_rd_u64(&r);
		m->ino = cpx_rd_u64(&r);
	}
	if (r.err || r.left != 0 || m->kind < CPX_FEV_CREATED ||
	    m->kind > CPX_FEV_OVERFLOW || !cpx_path_clean_relative(m->path)) {
		free(m->path);
		m->path = NULL;
		return -EPROTO;
	}
	return 0;
}

/* *path is new; caller frees. */
int
cpx_fevent_parse(const uint8_t *p, size_t n, uint8_t *kind, char **path,
    struct cpx_attr *a)
{
	struct cpx_fevent_msg m;
	int error = cpx_fevent_parse_msg(p, n, &m);

	*kind = m.kind;
	*path = m.path;
	*a = m.attr;
	return error;
}

/* The start of an FPUSH payload; DATA and DONE append their part. */
void
cpx_push_put_head(struct cpx_buf *b, uint8_t kind, uint64_t dev,
    uint64_t ino)
{
	cpx_buf_add_u8(b, kind);
	cpx_buf_add_u64(b, dev);
	cpx_buf_add_u64(b, ino);
}

/* Parses an untrusted FPUSH payload: 0 or -EPROTO. m->data points into p. */
int
cpx_push_parse(const uint8_t *p, size_t n, struct cpx_push *m)
{
	struct cpx_reader r;

	memset(m, 0, sizeof *m);
	cpx_reader_init(&r, p, n);
	m->kind = cpx_rd_u8(&r);
	m->dev = cpx_rd_u64(&r);
	m->ino = cpx_rd_u64(&r);
	switch (m->kind) {
	case CPX_PUSH_DATA:
		m->offset = cpx_rd_u64(&r);
		m->data = cpx_rd_str(&r, &m->len, CPX_PUSH_BLOCK);
		if (m->offset % CPX_PUSH_BLOCK != 0 ||
		    m->offset > (uint64_t)INT64_MAX)
			r.err = 1;
		break;
	case CPX_PUSH_DONE:
		cpx_attr_get(&r, &m->attr);
		break;
	case CPX_PUSH_DROP:
		break;
	default:
		r.err = 1;
		break;
	}
	return r.err || r.left != 0 ? -EPROTO : 0;
}

void
cpx_attr_from_stat(struct cpx_attr *a, const struct stat *st)
{
	memset(a, 0, sizeof *a);
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->atime_s = st->st_atim.tv_sec;
	a->atime_ns = (uint32_t)st->st_atim.tv_nsec;
	a->mtime_s = st->st_mtim.tv_sec;
	a->mtime_ns = (uint32_t)st->st_mtim.tv_nsec;
	a->ctime_s = st->st_ctim.tv_sec;
	a->ctime_ns = (uint32_t)st->st_ctim.tv_nsec;
}

void
cpx_attr_to_stat(const struct cpx_attr *a, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_blksize = 4096;
	st->st_atim.tv_sec = a->atime_s;
	st->st_atim.tv_nsec = a->atime_ns;
	st->st_mtim.tv_sec = a->mtime_s;
	st->st_mtim.tv_nsec = a->mtime_ns;
	st->st_ctim.tv_sec = a->ctime_s;
	st->st_ctim.tv_nsec = a->ctime_ns;
}

void
cpx_statfs_put(struct cpx_buf *b, const struct cpx_statfs *s)
{
	cpx_buf_add_u64(b, s->bsize);
	cpx_buf_add_u64(b, s->blocks);
	cpx_buf_add_u64(b, s->bfree);
	cpx_buf_add_u64(b, s->bavail);
	cpx_buf_add_u64(b, s->files);
	cpx_buf_add_u64(b, s->ffree);
	cpx_buf_add_u32(b, s->namemax);
}

void
cpx_statfs_get(struct cpx_reader *r, struct cpx_statfs *s)
{
	s->bsize = cpx_rd_u64(r);
	s->blocks = cpx_rd_u64(r);
	s->bfree = cpx_rd_u64(r);
	s->bavail = cpx_rd_u64(r);
	s->files = cpx_rd_u64(r);
	s->ffree = cpx_rd_u64(r);
	s->namemax = cpx_rd_u32(r);
}

/* Wire flags to this host's open(2) flags (access mode and creation only). */
int
cpx_flags_to_open(uint32_t f)
{
	int o;

	switch (f & CPX_O_ACCMODE) {
	case CPX_O_WRONLY:
		o = O_WRONLY;
		break;
	case CPX_O_RDWR:
		o = O_RDWR;
		break;
	default:
		o = O_RDONLY;
		break;
	}
	if (f & CPX_O_CREAT)
		o |= O_CREAT;
	if (f & CPX_O_EXCL)
		o |= O_EXCL;
	if (f & CPX_O_TRUNC)
		o |= O_TRUNC;
	if (f & CPX_O_APPEND)
		o |= O_APPEND;
	return o;
}

uint32_t
cpx_flags_from_open(int o)
{
	uint32_t f;

	switch (o & O_ACCMODE) {
	case O_WRONLY:
		f = CPX_O_WRONLY;
		break;
	case O_RDWR:
		f = CPX_O_RDWR;
		break;
	default:
		f = CPX_O_RDONLY;
		break;
	}
	if (o & O_CREAT)
		f |= CPX_O_CREAT;
	if (o & O_EXCL)
		f |= CPX_O_EXCL;
	if (o & O_TRUNC)
		f |= CPX_O_TRUNC;
	if (o & O_APPEND)
		f |= CPX_O_APPEND;
	return f;
}

int
cpx_open_beneath(int dirfd, const char *path, int flags, unsigned mode,
    int nosymlinks)
{
	struct open_how how;
	long fd;

	memset(&how, 0, sizeof how);
	how.flags = (uint64_t)(flags | O_CLOEXEC);
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
		how.mode = mode & 07777;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	if (nosymlinks)
		how.resolve |= RESOLVE_NO_SYMLINKS;
	/* glibc 2.36 has no openat2() wrapper. */
	do {
		fd = syscall(SYS_openat2, dirfd, *path != '\0' ? path : ".",
		    &how, sizeof how);
	} while (fd < 0 && errno == EAGAIN);
	return fd < 0 ? -errno : (int)fd;
}

char *
cpx_path_split(const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL) {
		*name = path;
		return cpx_xstrdup("");
	}
	*name = slash + 1;
	return cpx_xstrndup(path, (size_t)(slash - path));
}
