/* kio.c — our own side of /dev/fuse: FUSE passthrough with libfuse 3.14. */

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cfs.h"

/*
 * Linux 6.9 and later can serve reads of a FUSE file straight from a
 * "backing" file the daemon registered (FUSE passthrough): the reads
 * never reach the daemon and use the backing file's page cache, whose
 * large folios make them as fast as reads of a local file (FUSE's own
 * page cache is 4 KiB pages only, up to at least 6.18).
 *
 * libfuse 3.14 predates passthrough: it cannot ask for it in its INIT
 * reply, nor answer an OPEN with a backing id. But it lets the daemon
 * do the reads and writes of /dev/fuse itself (fuse_session_custom_io),
 * so we see the kernel's INIT request (did it offer passthrough?), add
 * the flag and the stack depth to libfuse's INIT reply, and add the
 * backing id to the OPEN replies we want passed through. Those layouts
 * are the kernel's ABI (include/uapi/linux/fuse.h), stable by design.
 */

#define OP_INIT 26
#define IN_HEADER 40		/* struct fuse_in_header */
#define OUT_HEADER 16		/* struct fuse_out_header */
#define INIT_EXT (1u << 30)	/* flags: flags2 is valid */
#define INIT2_PASSTHROUGH (1u << 5)	/* flags2: FUSE_PASSTHROUGH (bit 37) */
#define INIT_OUT_FLAGS 12	/* offsets in struct fuse_init_out */
#define INIT_OUT_FLAGS2 32
#define INIT_OUT_STACK 36
#define STACK_DEPTH 2		/* a backing file may be on overlayfs */
#define OPEN_OUT 16		/* struct fuse_open_out: fh, flags, id */
#define FOPEN_PASSTHROUGH_ (1u << 7)
#define FOPEN_KEEP_CACHE_ (1u << 1)

struct backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};

#define IOC_BACKING_OPEN _IOW(229, 1, struct backing_map)
#define IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

/* The OPEN reply this thread is sending, to be passed through. */
static __thread uint64_t pending_fh;
static __thread int32_t pending_backing;

static uint32_t
get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof v);
}

/* Notes whether the kernel's INIT request offers passthrough. */
static void
see_request(struct cfs *fs, const uint8_t *p, size_t n)
{
	uint64_t unique;

	if (n < IN_HEADER + 20 || get32(p + 4) != OP_INIT)
		return;
	memcpy(&unique, p + 8, sizeof unique);
	fs->init_unique = unique;
	fs->pt_offered = (get32(p + IN_HEADER + 12) & INIT_EXT) &&
	    (get32(p + IN_HEADER + 16) & INIT2_PASSTHROUGH);
}

static ssize_t
kio_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n = read(fd, buf, len);

	if (n > 0)
		see_request(userdata, buf, (size_t)n);
	return n;
}

/* libfuse's INIT reply, with passthrough asked for (if offered and wanted). */
static void
patch_init(struct cfs *fs, struct iovec *iov, int count)
{
	uint8_t *o;

	if (!fs->pt_offered || !fs->set.passthrough || count < 2 ||
	    iov[1].iov_len < INIT_OUT_STACK + 4)
		return;
	o = iov[1].iov_base;
	put32(o + INIT_OUT_FLAGS, get32(o + INIT_OUT_FLAGS) | INIT_EXT);
	put32(o + INIT_OUT_FLAGS2, get32(o + INIT_OUT_FLAGS2) |
	    INIT2_PASSTHROUGH);
	put32(o + INIT_OUT_STACK, STACK_DEPTH);
	fs->pt_on = 1;
}

/* The OPEN reply this thread sends for pending_fh: passed through. */
static void
patch_open(struct iovec *iov, int count)
{
	uint8_t *o;
	uint64_t fh;

	if (count != 2 || iov[1].iov_len != OPEN_OUT)
		return;
	o = iov[1].iov_base;
	memcpy(&fh, o, sizeof fh);
	if (fh != pending_fh)
		return;
	/* Only these flags may come with it; keep_cache may not. */
	put32(o + 8, (get32(o + 8) & ~FOPEN_KEEP_CACHE_) | FOPEN_PASSTHROUGH_);
	put32(o + 12, (uint32_t)pending_backing);
}

static ssize_t
kio_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct cfs *fs = userdata;
	uint64_t unique;

	if (count >= 1 && iov[0].iov_len >= OUT_HEADER) {
		memcpy(&unique, (uint8_t *)iov[0].iov_base + 8, sizeof unique);
		if (unique != 0 && unique == fs->init_unique &&
		    get32((uint8_t *)iov[0].iov_base + 4) == 0)
			patch_init(fs, iov, count);
		else if (pending_fh != 0)
			patch_open(iov, count);
	}
	return writev(fd, iov, count);
}

/* Splice stays available for local files' reads and writes. */
static ssize_t
kio_splice(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
    unsigned int flags, void *userdata)
{
	return splice(fdin, offin, fdout, offout, len, flags);
}

static const struct fuse_custom_io kio = {
	.read = kio_read,
	.writev = kio_writev,
	.splice_receive = kio_splice,
	.splice_send = kio_splice,
};

/* After mounting: from now on the session reads and writes through us. */
int
cfs_kio_attach(struct cfs *fs)
{
	return fuse_session_custom_io(fs->se, &kio, fuse_session_fd(fs->se));
}

/* Answers an open with the file passed through to backing file `id`. */
int
cfs_kio_reply_open(struct cfs *fs, fuse_req_t req, struct fuse_file_info *fi,
    int id)
{
	int error;

	fi->keep_cache = 0;
	fi->direct_io = 0;
	pending_fh = fi->fh;
	pending_backing = id;
	error = fuse_reply_open(req, fi);
	pending_fh = 0;
	return error;
}

/* Registers fd as a backing file: its id (> 0), or -errno. */
int
cfs_kio_backing_open(struct cfs *fs, int fd)
{
	struct backing_map m = { .fd = fd };
	int id;

	if (!fs->pt_on || fs->se == NULL)
		return -EOPNOTSUPP;
	id = ioctl(fuse_session_fd(fs->se), IOC_BACKING_OPEN, &m);
	return id > 0 ? id : -errno;
}

/* Unregisters it; files open through it keep it until they close. */
void
cfs_kio_backing_close(struct cfs *fs, int id)
{
	uint32_t v = (uint32_t)id;

	if (id > 0 && fs->se != NULL)
		ioctl(fuse_session_fd(fs->se), IOC_BACKING_CLOSE, &v);
}
