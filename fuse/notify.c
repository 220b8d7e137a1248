/* notify.c — kernel cache notifications and local copies, from threads of their own. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfs.h"

/*
 * fuse_lowlevel_notify_inval_entry() takes the parent folder's lock in
 * the kernel, which a lookup in that folder holds while it waits for our
 * answer. Called from the loop thread (which delivers that answer) or a
 * request thread, it could wait for itself. This thread does nothing but
 * notify, so it may wait: the answer it waits for comes from elsewhere.
 *
 * Local copies are written by a second thread (the copy thread), so that
 * no notice waits behind a copy, nor a copy behind a notice. Only that
 * thread writes copies, registers them and closes unregistered ones
 * (push.c, backing.c rely on it). It writes what workers push into
 * copies as it comes (N_PUSH_COPY), makes a pushed file's copy the moment
 * the file is whole (cfs_notify_copy: opens wait for it), and makes any
 * other complete file local for the kernel (N_STORE) STORE_DELAY_MS after
 * it is asked for: PMS's first read of such a file often comes the moment
 * it completes, is served from our cache then, and a copy written at that
 * moment would only compete with it for the CPU (2 MiB DASH segments, p50
 * over 40: 6.2-7.3 ms with the copy made at once, 5.2-6.1 ms with it made
 * 30 ms later).
 */

enum notice_kind {
	N_ENTRY, N_EXPIRE, N_INODE, N_STORE, N_UNDER, N_PUSH_COPY, N_CLOSE
};

struct cfs_notice {
	enum notice_kind kind;
	fuse_ino_t parent, ino;
	char *name;		/* N_ENTRY */
	char *path;		/* N_STORE, N_UNDER; N_PUSH_COPY: the worker */
	uint64_t dev, file;	/* N_PUSH_COPY: the worker's file */
	int fd;			/* N_CLOSE */
	uint64_t due;		/* N_STORE: not before (cpx_now_ms) */
	struct cfs_notice *next;
};

#define STORE_TRIES 5
#define STORE_DELAY_MS 30

static void
free_notice(struct cfs_notice *n)
{
	if (n->kind == N_CLOSE && n->fd >= 0)
		close(n->fd);
	free(n->name);
	free(n->path);
	free(n);
}

enum queue { Q_NOTICES, Q_COPIES, Q_STORES };

/* Appends n to a queue: the notify thread's, or the copy thread's two. */
static void
enqueue(struct cfs *fs, struct cfs_notice *n, enum queue q)
{
	struct cfs_notice **head = q == Q_STORES ? &fs->stores :
	    q == Q_COPIES ? &fs->copies : &fs->notices;
	struct cfs_notice **tail = q == Q_STORES ? &fs->stores_tail :
	    q == Q_COPIES ? &fs->copies_tail : &fs->notices_tail;

	pthread_mutex_lock(&fs->notify_lock);
	if (!fs->notify_running) {
		pthread_mutex_unlock(&fs->notify_lock);
		free_notice(n);
		return;
	}
	if (*tail != NULL)
		(*tail)->next = n;
	else
		*head = n;
	*tail = n;
	pthread_cond_broadcast(&fs->notify_cond);
	pthread_mutex_unlock(&fs->notify_lock);
}

static void
push(struct cfs *fs, struct cfs_notice *n)
{
	enqueue(fs, n, Q_NOTICES);
}

static struct cfs_notice *
notice(enum notice_kind kind)
{
	struct cfs_notice *n = cpx_xcalloc(1, sizeof *n);

	n->kind = kind;
	return n;
}

void
cfs_notify_entry(struct cfs *fs, fuse_ino_t parent, const char *name)
{
	struct cfs_notice *n = notice(N_ENTRY);

	n->parent = parent;
	n->name = cpx_xstrdup(name);
	push(fs, n);
}

/*
 * Makes the kernel ask again about a name at its next use, without
 * dropping the dentry: the inode (and the page cache it holds) stays
 * when the name still means the same file. Kernels without
 * FUSE_CAP_EXPIRE_ONLY get a plain invalidation.
 */
void
cfs_notify_expire(struct cfs *fs, fuse_ino_t parent, const char *name)
{
	struct cfs_notice *n = notice(fs->expire_only ? N_EXPIRE : N_ENTRY);

	n->parent = parent;
	n->name = cpx_xstrdup(name);
	push(fs, n);
}

void
cfs_notify_inode(struct cfs *fs, fuse_ino_t ino)
{
	struct cfs_notice *n = notice(N_INODE);

	n->ino = ino;
	push(fs, n);
}

/*
 * Makes the cached contents of `path` local for the kernel (a passthrough
 * copy, or its page cache), STORE_DELAY_MS from now.
 */
void
cfs_notify_store(struct cfs *fs, const char *path)
{
	struct cfs_notice *n = notice(N_STORE);

	n->path = cpx_xstrdup(path);
	n->due = cpx_now_ms() + STORE_DELAY_MS;
	enqueue(fs, n, Q_STORES);
}

/*
 * Makes the local copy of the complete, pushed file `path` now, after the
 * copy work asked for before it: opens of it wait for it (backing.c).
 */
void
cfs_notify_copy(struct cfs *fs, const char *path)
{
	struct cfs_notice *n = notice(N_STORE);

	n->path = cpx_xstrdup(path);
	enqueue(fs, n, Q_COPIES);
}

/* Writes what a worker pushed of its file dev:ino into the file's copy. */
void
cfs_notify_push_copy(struct cfs *fs, const char *worker, uint64_t dev,
    uint64_t ino)
{
	struct cfs_notice *n = notice(N_PUSH_COPY);

	n->path = cpx_xstrdup(worker);
	n->dev = dev;
	n->file = ino;
	enqueue(fs, n, Q_COPIES);
}

/*
 * Closes a copy nobody registered: its last close frees an unnamed file,
 * which may wait on the filesystem's journal, so never on a lane thread.
 */
void
cfs_notify_close(struct cfs *fs, int fd)
{
	struct cfs_notice *n = notice(N_CLOSE);

	n->fd = fd;
	enqueue(fs, n, Q_COPIES);
}

/* Forgets every name the kernel cached below the folder `dir`. */
void
cfs_notify_under(struct cfs *fs, const char *dir)
{
	struct cfs_notice *n = notice(N_UNDER);

	n->path = cpx_xstrdup(dir);
	push(fs, n);
}

static void
inval_entry(struct cfs *fs, fuse_ino_t parent, const char *name,
    fuse_ino_t ino, void *arg)
{
	fuse_lowlevel_notify_inval_entry(fs->se, parent, name, strlen(name));
}

static int
store_block(struct cfs *fs, uint64_t off, const uint8_t *p, size_t n,
    void *arg)
{
	fuse_ino_t ino = *(fuse_ino_t *)arg;
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(n);
	struct timespec ms = { 0, 1000000 };
	int error, tries = 0;

	bv.buf[0].mem = (void *)p;
	/*
	 * Right after a lookup answer the kernel may not have the inode yet
	 * (-ENOENT), so try again briefly. No splice: the bytes are in
	 * memory already, and libfuse's splice path prints every -ENOENT.
	 */
	while ((error = fuse_lowlevel_notify_store(fs->se, ino, (off_t)off, &bv,
	    FUSE_BUF_NO_SPLICE)) == -ENOENT && ++tries < STORE_TRIES)
		nanosleep(&ms, NULL);
	return error;
}

static void
store(struct cfs *fs, const char *path)
{
	fuse_ino_t ino = cfs_node_find_path(fs, path);
	struct cpx_attr version;
	int error;

	if (ino == 0 || !cfs_cache_should_store(fs, path, ino))
		return;		/* unknown to the kernel (reads come to us), or done */
	/*
	 * A reader still pinned to another version of the file reads the
	 * kernel's pages: new ones would mix with the old under its feet.
	 * Later opens drop the old pages and read from us.
	 */
	if (cfs_cache_last_attr(fs, path, &version) &&
	    cfs_files_pinned_other(fs, ino, &version))
		return;
	error = cfs_cache_each_block(fs, path, store_block, &ino, &version);
	if (error == 0) {
		cfs_cache_mark_stored(fs, path, ino);
		cfs_node_stored_version(fs, ino, &version);
	}
	else if (error != -EAGAIN)
		cpx_debug("store %s: %s", path, strerror(-error));
}

/*
 * A complete file for the kernel: a backing file reads pass through to
 * when the kernel allows it, else pushed into its page cache.
 */
static void
make_local(struct cfs *fs, const char *path)
{
	int error;

	if (fs->pt_on) {
		if ((error = cfs_backing_make(fs, path)) == 0)
			return;
		if (error == -EPERM || error == -EOPNOTSUPP ||
		    error == -EINVAL || error == -EISDIR || error == -ENOTTY) {
			cpx_warn("passthrough unavailable (%s): pushing pages "
			    "into the kernel instead", strerror(-error));
			fs->pt_on = 0;
		} else {
			cpx_debug("no backing file for %s: %s", path,
			    strerror(-error));
		}
	}
	store(fs, path);
}

static void
handle(struct cfs *fs, struct cfs_notice *n)
{
	fuse_ino_t ino;

	switch (n->kind) {
	case N_ENTRY:
		inval_entry(fs, n->parent, n->name, 0, NULL);
		break;
	case N_EXPIRE:
		fuse_lowlevel_notify_expire_entry(fs->se, n->parent, n->name,
		    strlen(n->name), FUSE_LL_EXPIRE_ONLY);
		break;
	case N_INODE:
		fuse_lowlevel_notify_inval_inode(fs->se, n->ino, 0, 0);
		break;
	case N_STORE:
		make_local(fs, n->path);
		break;
	case N_PUSH_COPY:
		cfs_push_copy(fs, n->path, n->dev, n->file);
		break;
	case N_CLOSE:
		close(n->fd);
		n->fd = -1;
		break;
	case N_UNDER:
		cfs_node_walk_under(fs, n->path, inval_entry, NULL);
		if ((ino = cfs_node_find_path(fs, n->path)) != 0)
			fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
		break;
	}
}

static struct cfs_notice *
dequeue(struct cfs_notice **head, struct cfs_notice **tail)
{
	struct cfs_notice *n = *head;

	if ((*head = n->next) == NULL)
		*tail = NULL;
	return n;
}

/*
 * Under notify_lock: the next notice for the notify thread (copies: 0)
 * or the copy thread, or NULL. Stores come once due (all at once when
 * stopping: they are dropped then).
 */
static struct cfs_notice *
next_notice(struct cfs *fs, int copies)
{
	if (!copies)
		return fs->notices != NULL ?
		    dequeue(&fs->notices, &fs->notices_tail) : NULL;
	if (fs->copies != NULL)
		return dequeue(&fs->copies, &fs->copies_tail);
	if (fs->stores != NULL &&
	    (fs->notify_stop || cpx_now_ms() >= fs->stores->due))
		return dequeue(&fs->stores, &fs->stores_tail);
	return NULL;
}

/* Under notify_lock: sleeps until a notice comes, or a store is due. */
static void
wait_notice(struct cfs *fs, int copies)
{
	struct timespec until;

	if (!copies || fs->stores == NULL) {
		pthread_cond_wait(&fs->notify_cond, &fs->notify_lock);
		return;
	}
	until.tv_sec = (time_t)(fs->stores->due / 1000);
	until.tv_nsec = (long)(fs->stores->due % 1000) * 1000000L;
	(void)pthread_cond_timedwait(&fs->notify_cond, &fs->notify_lock,
	    &until);
}

/* The notify thread's loop (copies: 0), or the copy thread's. */
static void
serve(struct cfs *fs, int copies)
{
	struct cfs_notice *n;

	pthread_mutex_lock(&fs->notify_lock);
	for (;;) {
		if ((n = next_notice(fs, copies)) == NULL) {
			if (fs->notify_stop)
				break;
			wait_notice(fs, copies);
			continue;
		}
		pthread_mutex_unlock(&fs->notify_lock);
		if (!fs->notify_stop)
			handle(fs, n);
		free_notice(n);
		pthread_mutex_lock(&fs->notify_lock);
	}
	pthread_mutex_unlock(&fs->notify_lock);
}

static void *
notify_main(void *arg)
{
	serve(arg, 0);
	return NULL;
}

static void *
copy_main(void *arg)
{
	serve(arg, 1);
	return NULL;
}

void
cfs_notify_start(struct cfs *fs)
{
	/* The lock and condition were set up with the rest of struct cfs. */
	fs->notify_running = 1;
	if (pthread_create(&fs->notify_thread, NULL, notify_main, fs) != 0 ||
	    pthread_create(&fs->copy_thread, NULL, copy_main, fs) != 0)
		cpx_fatal("cannot start the notification threads");
	pthread_setname_np(fs->notify_thread, "cpx-fuse-notify");
	pthread_setname_np(fs->copy_thread, "cpx-fuse-copy");
}

/* Pending notices are dropped: the kernel is going away. */
void
cfs_notify_stop(struct cfs *fs)
{
	pthread_mutex_lock(&fs->notify_lock);
	if (!fs->notify_running) {
		pthread_mutex_unlock(&fs->notify_lock);
		return;
	}
	fs->notify_stop = 1;
	fs->notify_running = 0;
	pthread_cond_broadcast(&fs->notify_cond);
	pthread_mutex_unlock(&fs->notify_lock);
	pthread_join(fs->notify_thread, NULL);
	pthread_join(fs->copy_thread, NULL);
}
