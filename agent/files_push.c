/* files_push.c — the contents of files being written, pushed as they grow. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"

/*
 * In a PUSH folder, a file being written is a stream, keyed by (dev, ino)
 * so that renaming its *.tmp into place keeps what went out already. Its
 * blocks of our share go out as soon as they are whole; when the file is
 * complete, every block of our share is read again and sent if it is not
 * what was sent (the transcoder may have rewritten it: a hash of each sent
 * block tells), the tail too, then DONE with the version they make up.
 * The file on disk is the only buffer: nothing is read while the link
 * holds FILES_PUSH_HIGH bytes, so a slow PMS host costs no memory here.
 */

#define B CPX_PUSH_BLOCK
#define STREAM_IDLE_MS 30000
#define COMPLETE_TRIES 3

static uint64_t
nblocks(uint64_t size)
{
	return (size + B - 1) / B;
}

static int
same_version(const struct cpx_attr *x, const struct cpx_attr *y)
{
	return x->size == y->size && x->mtime_s == y->mtime_s &&
	    x->mtime_ns == y->mtime_ns;
}

static struct files_stream *
find_ino(struct files_svc *s, uint64_t dev, uint64_t ino)
{
	size_t i;

	for (i = 0; i < FILES_MAX_STREAMS; i++)
		if (s->streams[i] != NULL && s->streams[i]->dev == dev &&
		    s->streams[i]->ino == ino)
			return s->streams[i];
	return NULL;
}

static struct files_stream *
find_name(struct files_svc *s, int wd, const char *name)
{
	struct files_stream *st;
	size_t i;

	for (i = 0; i < FILES_MAX_STREAMS; i++) {
		st = s->streams[i];
		if (st != NULL && st->wd == wd && st->name != NULL &&
		    strcmp(st->name, name) == 0)
			return st;
	}
	return NULL;
}

/* st now has `name` in folder wd; a stream that had it before lost it. */
static void
claim_name(struct files_svc *s, struct files_stream *st, int wd,
    const char *name)
{
	struct files_stream *old = find_name(s, wd, name);

	if (old != NULL && old != st) {
		free(old->name);
		old->name = NULL;
	}
	if (st->name == NULL || strcmp(st->name, name) != 0) {
		free(st->name);
		st->name = cpx_xstrdup(name);
	}
	st->wd = wd;
}

static void
send_control(struct files_svc *s, uint8_t kind, uint64_t dev, uint64_t ino,
    const struct cpx_attr *a)
{
	struct cpx_buf b;
	size_t start;

	cpx_buf_init(&b);
	start = cpx_frame_begin(&b);
	cpx_push_put_head(&b, kind, dev, ino);
	if (kind == CPX_PUSH_DONE)
		cpx_attr_put(&b, a);
	cpx_frame_end(&b, start, CPX_MSG_FPUSH, 0);
	files_send_push(s, &b);
	cpx_buf_free(&b);
}

static void
stream_free(struct files_svc *s, struct files_stream *st)
{
	size_t i;

	for (i = 0; i < FILES_MAX_STREAMS; i++)
		if (s->streams[i] == st)
			s->streams[i] = NULL;
	/* A completion under way starts again from its name. */
	if (s->tasks != NULL && s->tasks->st == st) {
		s->tasks->st = NULL;
		s->tasks->started = 0;
	}
	if (st->fd >= 0)
		close(st->fd);
	free(st->name);
	free(st->sums);
	free(st);
}

/* Ends a stream; the fuse side forgets what it got, unless it was DONE. */
static void
stream_drop(struct files_svc *s, struct files_stream *st)
{
	if (!st->done)
		send_control(s, CPX_PUSH_DROP, st->dev, st->ino, NULL);
	stream_free(s, st);
}

/* The file is gone: whatever the fuse side holds of it goes too. */
static void
stream_gone(struct files_svc *s, struct files_stream *st)
{
	st->done = 0;
	stream_drop(s, st);
}

/* Too large to push: kept, without its descriptor, not to be reopened. */
static void
stream_too_big(struct files_svc *s, struct files_stream *st)
{
	send_control(s, CPX_PUSH_DROP, st->dev, st->ino, NULL);
	if (st->fd >= 0)
		close(st->fd);
	st->fd = -1;
	st->big = 1;
	st->done = 0;
	st->dirty = 0;
}

/* A free slot, taking the one of the stream done longest ago if need be. */
static struct files_stream **
free_slot(struct files_svc *s)
{
	struct files_stream **best = NULL, *st;
	size_t i;

	for (i = 0; i < FILES_MAX_STREAMS; i++) {
		st = s->streams[i];
		if (st == NULL)
			return &s->streams[i];
		if ((st->done || st->big) && (s->tasks == NULL ||
		    s->tasks->st != st) && (best == NULL || st->used <
		    (*best)->used))
			best = &s->streams[i];
	}
	if (best != NULL)
		stream_free(s, *best);
	return best;
}

static uint64_t
now_ms(struct files_svc *s)
{
	return s->loop != NULL ? uv_now(s->loop) : cpx_now_ms();
}

/* Starts following `dir/name` of watch w: NULL when it cannot be. */
static struct files_stream *
stream_open(struct files_svc *s, const struct files_watch *w,
    const char *dir, const char *name)
{
	struct files_stream **slot, *st;
	char *path = cpx_xprintf("%s/%s", dir, name);
	struct stat sb;
	int fd;

	fd = cpx_open_beneath(s->rootfd, path, O_RDONLY | O_NONBLOCK |
	    O_NOCTTY, 0, 0);
	free(path);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    (slot = free_slot(s)) == NULL) {
		close(fd);
		return NULL;
	}
	st = cpx_xcalloc(1, sizeof *st);
	st->dev = (uint64_t)sb.st_dev;
	st->ino = (uint64_t)sb.st_ino;
	st->fd = fd;
	st->share = w->share;
	st->shares = w->shares;
	st->max = w->push_max;
	st->next_grow = w->share;
	st->used = now_ms(s);
	*slot = st;
	claim_name(s, st, w->wd, name);
	return st;
}

/*
 * Reads block i and sends it, unless it is what went out last time.
 * 0, -EAGAIN when the link is full (nothing was read), or -errno.
 */
static int
push_block(struct files_svc *s, struct files_stream *st, uint64_t i)
{
	struct cpx_buf *b = &s->scratch;
	size_t start, at;
	uint64_t h;
	ssize_t n;

	if (files_output_full(s))
		return -EAGAIN;
	if (i >= st->nsums) {
		size_t want = (size_t)i + 1 > 2 * st->nsums ? (size_t)i + 1 :
		    2 * st->nsums;

		st->sums = cpx_xrealloc(st->sums, want * sizeof *st->sums);
		memset(st->sums + st->nsums, 0,
		    (want - st->nsums) * sizeof *st->sums);
		st->nsums = want;
	}
	b->len = 0;
	start = cpx_frame_begin(b);
	cpx_push_put_head(b, CPX_PUSH_DATA, st->dev, st->ino);
	cpx_buf_add_u64(b, i * B);
	at = b->len;
	cpx_buf_add_u32(b, 0);
	cpx_buf_reserve(b, B);
	do {
		n = pread(st->fd, b->data + b->len, B, (off_t)(i * B));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	h = files_hash(b->data + b->len, (size_t)n);
	if (st->sums[i] == h)
		return 0;
	cpx_buf_set_u32(b, at, (uint32_t)n);
	b->len += (size_t)n;
	cpx_frame_end(b, start, CPX_MSG_FPUSH, 0);
	st->sums[i] = h;
	files_send_push(s, b);
	return 0;
}

/* IN_MODIFY: the file grows (or changes); its new whole blocks go out. */
void
files_push_modified(struct files_svc *s, struct files_watch *w,
    const char *name)
{
	struct files_stream *st = find_name(s, w->wd, name);
	struct stat sb;
	int fd;

	if (st == NULL) {
		if ((fd = files_watch_dir(s, w)) < 0)
			return;
		if (fstatat(fd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(sb.st_mode)) {
			close(fd);
			return;
		}
		close(fd);
		if (files_was_written(s, (uint64_t)sb.st_dev,
		    (uint64_t)sb.st_ino))
			return;
		st = find_ino(s, (uint64_t)sb.st_dev, (uint64_t)sb.st_ino);
		if (st == NULL &&
		    (st = stream_open(s, w, w->path, name)) == NULL)
			return;
		claim_name(s, st, w->wd, name);
	}
	st->dirty = 1;
	st->used = now_ms(s);
}

/* One stream's new whole blocks: 0, or -EAGAIN when the link is full. */
static int
grow_one(struct files_svc *s, struct files_stream *st)
{
	struct cpx_attr now;
	struct stat sb;
	uint64_t i;
	int error = 0;

	if (fstat(st->fd, &sb) != 0 || sb.st_nlink == 0) {
		stream_gone(s, st);
		return 0;
	}
	if ((uint64_t)sb.st_size > st->max) {
		stream_too_big(s, st);
		return 0;
	}
	cpx_attr_from_stat(&now, &sb);
	if (st->done && same_version(&st->version, &now)) {
		st->dirty = 0;	/* an event from before it completed */
		return 0;
	}
	st->done = 0;
	for (i = st->next_grow; (i + 1) * B <= (uint64_t)sb.st_size;
	    i += st->shares) {
		if ((error = push_block(s, st, i)) != 0)
			break;
	}
	st->next_grow = i;
	if (error == -EAGAIN)
		return error;
	if (error != 0)
		stream_drop(s, st);
	else
		st->dirty = 0;
	return 0;
}

int
files_push_grow(struct files_svc *s)
{
	struct files_stream *st;
	size_t i;

	for (i = 0; i < FILES_MAX_STREAMS; i++) {
		st = s->streams[i];
		if (st != NULL && st->dirty && st->fd >= 0 &&
		    grow_one(s, st) == -EAGAIN)
			return -EAGAIN;
	}
	return 0;
}

/* The stream for a completed file, followed until now or new. */
static struct files_stream *
complete_stream(struct files_svc *s, struct files_task *t)
{
	struct files_stream *st = find_ino(s, t->dev, t->ino);

	if (st == NULL) {
		st = stream_open(s, &t->w, t->dir, t->name);
		if (st != NULL && (st->dev != t->dev || st->ino != t->ino)) {
			stream_free(s, st);	/* replaced meanwhile */
			st = NULL;
		}
	}
	if (st != NULL)
		claim_name(s, st, t->w.wd, t->name);
	return st;
}

/* The stream's blocks for the version t->before: 0, -EAGAIN, or -errno. */
static int
complete_blocks(struct files_svc *s, struct files_task *t)
{
	struct files_stream *st = t->st;
	uint64_t i, n = nblocks(t->before.size);
	int error;

	for (i = t->next_block; i < n; i += st->shares) {
		if ((error = push_block(s, st, i)) != 0) {
			t->next_block = i;
			return error;
		}
	}
	t->next_block = i;
	return 0;
}

/* Everything of the file is out: DONE, with the version it makes up. */
static void
complete_done(struct files_svc *s, struct files_task *t, struct cpx_attr *a)
{
	struct files_stream *st = t->st;
	uint64_t j, n = nblocks(t->before.size);

	for (j = n; j < st->nsums; j++)
		st->sums[j] = 0;	/* past the end: sent if it grows */
	st->next_grow = t->next_block;
	st->version = t->before;
	st->done = 1;
	st->dirty = 0;
	st->used = now_ms(s);
	send_control(s, CPX_PUSH_DONE, st->dev, st->ino, &st->version);
	t->st = NULL;
	*a = st->version;
}

/* Starts a completion: 1 when it is over already (*a set), else 0. */
static int
complete_start(struct files_svc *s, struct files_task *t, struct cpx_attr *a)
{
	struct files_stream *st;
	struct stat sb;

	if (files_was_written(s, t->dev, t->ino)) {
		if ((st = find_ino(s, t->dev, t->ino)) != NULL)
			stream_free(s, st);
		send_control(s, CPX_PUSH_DROP, t->dev, t->ino, NULL);
		return 1;
	}
	if ((st = complete_stream(s, t)) == NULL) {
		/* Not followed: the fuse side must not wait for it. */
		send_control(s, CPX_PUSH_DROP, t->dev, t->ino, NULL);
		return 1;
	}
	if (st->big || t->named.size > st->max) {
		if (!st->big)
			stream_too_big(s, st);
		else
			send_control(s, CPX_PUSH_DROP, st->dev, st->ino, NULL);
		return 1;
	}
	if (fstat(st->fd, &sb) != 0) {
		stream_drop(s, st);
		return 1;
	}
	cpx_attr_from_stat(&t->before, &sb);
	if (st->done && same_version(&st->version, &t->before)) {
		/* Closed, then renamed into place: nothing changed since. */
		send_control(s, CPX_PUSH_DONE, st->dev, st->ino, &st->version);
		*a = st->version;
		return 1;
	}
	st->done = 0;
	t->st = st;
	t->next_block = st->share;
	t->tries = 0;
	return 0;
}

/*
 * A completed file of a PUSH folder (task t): whatever the fuse side
 * lacks of our share goes out, then DONE, or DROP when that is not
 * possible. -EAGAIN: the link is full, call again once it drains. On
 * return 0, *a is the version the fuse side was told about.
 */
int
files_push_complete(struct files_svc *s, struct files_task *t,
    struct cpx_attr *a)
{
	struct cpx_attr after;
	struct stat sb;
	int error;

	if (t->st == NULL && complete_start(s, t, a))
		return 0;
	for (;;) {
		error = complete_blocks(s, t);
		if (error == -EAGAIN)
			return error;
		if (error != 0 || fstat(t->st->fd, &sb) != 0) {
			stream_drop(s, t->st);
			return 0;
		}
		cpx_attr_from_stat(&after, &sb);
		if (same_version(&after, &t->before))
			break;
		/* Written while we read it: read it again, a few times. */
		if (++t->tries > COMPLETE_TRIES) {
			stream_drop(s, t->st);
			return 0;
		}
		t->before = after;
		t->next_block = t->st->share;
	}
	complete_done(s, t, a);
	return 0;
}

/* The name went away (rename to elsewhere); the file may come back. */
void
files_push_moved_away(struct files_svc *s, int wd, const char *name)
{
	struct files_stream *st = find_name(s, wd, name);

	if (st != NULL) {
		free(st->name);
		st->name = NULL;
	}
}

void
files_push_deleted(struct files_svc *s, int wd, const char *name)
{
	struct files_stream *st = find_name(s, wd, name);
	struct stat sb;

	if (st == NULL)
		return;
	if (st->fd >= 0 && fstat(st->fd, &sb) == 0 && sb.st_nlink > 0) {
		free(st->name);		/* another name still has it */
		st->name = NULL;
		return;
	}
	stream_gone(s, st);
}

/* The folder is no longer watched: its streams end. */
void
files_push_unwatch(struct files_svc *s, int wd)
{
	size_t i;

	for (i = 0; i < FILES_MAX_STREAMS; i++)
		if (s->streams[i] != NULL && s->streams[i]->wd == wd)
			stream_drop(s, s->streams[i]);
}

/* Events were lost: look at every stream again. */
void
files_push_overflow(struct files_svc *s)
{
	size_t i;

	for (i = 0; i < FILES_MAX_STREAMS; i++)
		if (s->streams[i] != NULL)
			s->streams[i]->dirty = 1;
}

/* Streams nobody wrote to for a while end (a file moved out, a dead writer). */
void
files_push_tick(struct files_svc *s, uint64_t now)
{
	struct files_stream *st;
	size_t i;

	for (i = 0; i < FILES_MAX_STREAMS; i++) {
		st = s->streams[i];
		if (st != NULL && now - st->used > STREAM_IDLE_MS &&
		    (s->tasks == NULL || s->tasks->st != st))
			stream_drop(s, st);
	}
}

/* The link is gone: nothing is sent any more. */
void
files_push_close(struct files_svc *s)
{
	size_t i;

	files_tasks_free(s);
	for (i = 0; i < FILES_MAX_STREAMS; i++)
		if (s->streams[i] != NULL)
			stream_free(s, s->streams[i]);
	cpx_buf_free(&s->scratch);
}
