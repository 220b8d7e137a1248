/* cache_read.c — FUSE reads of remote files: from blocks, waiting, reading ahead. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "cache.h"

static void
reply_reader(struct reader *rd)
{
	/* One entry per block the read spans: a short reply would mean EOF. */
	struct iovec *iov = cpx_xcalloc(rd->nb, sizeof *iov);
	uint64_t end = rd->off + rd->size;
	size_t i, n = 0;

	for (i = 0; i < rd->nb; i++) {
		struct block *b = rd->blocks[i];
		uint64_t bstart = b->index * CFS_BLOCK;
		uint64_t from = rd->off > bstart ? rd->off - bstart : 0;
		uint64_t to = end - bstart < b->len ? end - bstart : b->len;

		if (from >= to)
			break;
		iov[n].iov_base = b->data + from;
		iov[n++].iov_len = (size_t)(to - from);
		if (b->len < CFS_BLOCK)
			break;	/* end of file */
	}
	fuse_reply_iov(rd->req, iov, (int)n);
	free(iov);
}

/* A pinned read gets bytes of its version only: a block of another is stale. */
static int
mixes_versions(const struct reader *rd)
{
	size_t i;

	if (!rd->pinned)
		return 0;
	for (i = 0; i < rd->nb; i++)
		if (rd->blocks[i]->rec == NULL ||
		    !cfs_same_version(&rd->blocks[i]->rec->attr, &rd->pin))
			return 1;
	return 0;
}

static void
reader_done(struct reader *rd)
{
	size_t i;

	if (rd->error == 0 && mixes_versions(rd))
		rd->error = -ENOENT;	/* replaced since the open: ESTALE */

	/*
	 * A file the worker no longer has as it was (deleted, renamed or
	 * replaced by a folder there while open) is stale, as on NFS;
	 * anything else is an I/O error.
	 */
	if (rd->error != 0)
		fuse_reply_err(rd->req, rd->error == -ENOENT ||
		    rd->error == -ENOTDIR || rd->error == -EISDIR ||
		    rd->error == -EINVAL ? ESTALE : EIO);
	else
		reply_reader(rd);
	for (i = 0; i < rd->nb; i++) {
		if (rd->error == 0 && rd->cached &&
		    rd->off + rd->size >= rd->blocks[i]->index * CFS_BLOCK +
		    rd->blocks[i]->len)
			cfs_cache__served(rd->fs, rd->blocks[i]);
		cfs_cache__unpin(rd->blocks[i]);
	}
	free(rd->blocks);
	free(rd);
}

void
cfs_cache__wake(struct block *b)
{
	struct reader **w = b->waiters;
	size_t i, n = b->nwaiters;

	b->waiters = NULL;
	b->nwaiters = 0;
	for (i = 0; i < n; i++) {
		if (b->state != B_READY)
			w[i]->error = b->error != 0 ? b->error : -EIO;
		if (--w[i]->missing == 0)
			reader_done(w[i]);
	}
	free(w);
}

static void
read_ahead(struct cfs *fs, struct rec *r, struct cfs_file *f, uint64_t off,
    size_t size)
{
	unsigned max = (unsigned)(fs->set.readahead_kb * 1024 / CFS_BLOCK);
	uint64_t i, last = (off + size - 1) / CFS_BLOCK;

	if (off + NEAR >= f->next_off && off <= f->next_off + NEAR)
		f->ra_blocks = f->ra_blocks == 0 ? 2 : f->ra_blocks * 2;
	else
		f->ra_blocks = 0;
	if (f->ra_blocks > max)
		f->ra_blocks = max;
	f->next_off = off + size;
	if (f->ra_blocks == 0 || !r->has_attr)
		return;
	for (i = last + 1; i <= last + f->ra_blocks &&
	    i * CFS_BLOCK < r->attr.size; i++)
		cfs_cache__block(fs, r, i);
}

/* Answers a FUSE read of a remote file, now or when its blocks arrive. */
void
cfs_cache_read(struct cfs *fs, fuse_req_t req, struct cfs_file *f,
    uint64_t off, size_t size)
{
	struct reader *rd;
	struct block *b;
	struct rec *r;
	uint64_t i, first = off / CFS_BLOCK, last;
	char *path;

	if (size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	last = (off + size - 1) / CFS_BLOCK;
	rd = cpx_xcalloc(1, sizeof *rd);
	rd->fs = fs;
	rd->req = req;
	rd->cached = !f->direct;
	rd->off = off;
	rd->size = size;
	rd->pinned = f->pinned;
	rd->pin = f->pin;
	rd->blocks = cpx_xcalloc((size_t)(last - first + 1), sizeof *rd->blocks);
	/*
	 * Renames through the mount move open files along: read the node's
	 * name of now (or, once it is removed, the name it was opened by).
	 */
	path = cfs_node_path(fs, f->ino, NULL);
	pthread_mutex_lock(&fs->cache_lock);
	r = cfs_cache__rec(fs, path != NULL ? path : f->path, 1);
	free(path);
	if (r->worker == NULL)
		r->worker = cpx_xstrdup(f->worker);
	rd->missing = 1;	/* held until every block is counted */
	for (i = first; i <= last; i++) {
		b = cfs_cache__block(fs, r, i);
		b->pins++;
		rd->blocks[rd->nb++] = b;
		if (b->state == B_READY) {
			cfs_cache__touch(C(fs), b);
			continue;
		}
		b->waiters = cpx_xrealloc(b->waiters,
		    (b->nwaiters + 1) * sizeof *b->waiters);
		b->waiters[b->nwaiters++] = rd;
		rd->missing++;
	}
	read_ahead(fs, r, f, off, size);
	if (--rd->missing == 0)
		reader_done(rd);
	cfs_cache__evict(fs);
	pthread_mutex_unlock(&fs->cache_lock);
}
