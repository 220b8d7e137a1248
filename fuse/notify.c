/* notify.c — kernel cache notifications, from a thread of their own. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfs.h"

/*
 * fuse_lowlevel_notify_inval_entry() takes the parent folder's lock in
 * the kernel, which a lookup in that folder holds while it waits for our
 * answer. Called from the loop thread (which delivers that answer) or a
 * request thread, it could wait for itself. This thread does nothing but
 * notify, so it may wait: the answer it waits for comes from elsewhere.
 *
 * A complete file is made local for the kernel (N_STORE) STORE_DELAY_MS
 * after it is asked for, in a queue of its own, so other notices never
 * wait behind it: PMS's first read of a segment often comes the moment
 * the segment completes, is served from our cache then, and a copy
 * written at that moment would only compete with it for the CPU (2 MiB
 * DASH segments, p50 over 40: 6.2-7.3 ms with the copy made at once,
 * 5.2-6.1 ms with it made 30 ms later). The exception is the passthrough
 * copy of a file a worker pushed (cfs_notify_copy): opens wait for that
 * one (backing.c), so it is made at once, in line with the other notices.
 */

enum notice_kind { N_ENTRY, N_EXPIRE, N_INODE, N_STORE, N_UNDER };

struct cfs_notice {
	enum notice_kind kind;
	fuse_ino_t parent, ino;
	char *name;		/* N_ENTRY */
	char *path;		/* N_STORE, N_UNDER */
	uint64_t due;		/* N_STORE: not before (cpx_now_ms) */
	struct cfs_notice *next;
};

#define STORE_TRIES 5
#define STORE_DELAY_MS 30

static void
free_notice(struct cfs_notice *n)
{
	free(n->name);
	free(n->path);
	free(n);
}

/* Appends n to the queue of stores (`later`) or of everything else. */
static void
enqueue(struct cfs *fs, struct cfs_notice *n, int later)
{
	struct cfs_notice **head = later ? &fs->stores : &fs->notices;
	struct cfs_notice **tail = later ? &fs->stores_tail : &fs->notices_tail;

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
	pthread_cond_signal(&fs->notify_cond);
	pthread_mutex_unlock(&fs->notify_lock);
}

static void
push(struct cfs *fs, struct cfs_notice *n)
{
	enqueue(fs, n, 0);
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
	enqueue(fs, n, 1);
}

/*
 * Makes the local copy of the complete, pushed file `path` now, in the
 * order of the other notices: opens of it wait for it (backing.c).
 */
void
cfs_notify_copy(struct cfs *fs, const char *path)
{
	struct cfs_notice *n = notice(N_STORE);

	n->path = cpx_xstrdup(path);
	push(fs, n);
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
	case N_UNDER:
		cfs_node_walk_under(fs, n->path, inval_entry, NULL);
		if ((ino = cfs_node_find_path(fs, n->path)) != 0)
			fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
		break;
	}
}

/*
 * Under notify_lock: the next notice to handle, or NULL. Stores come
 * once due (all at once when stopping: they are dropped then).
 */
static struct cfs_notice *
next_notice(struct cfs *fs)
{
	struct cfs_notice *n;

	if ((n = fs->notices) != NULL) {
		if ((fs->notices = n->next) == NULL)
			fs->notices_tail = NULL;
	} else if ((n = fs->stores) != NULL &&
	    (fs->notify_stop || cpx_now_ms() >= n->due)) {
		if ((fs->stores = n->next) == NULL)
			fs->stores_tail = NULL;
	} else {
		n = NULL;
	}
	return n;
}

/* Under notify_lock: sleeps until a notice comes or the first store is due. */
static void
wait_notice(struct cfs *fs)
{
	struct timespec until;

	if (fs->stores == NULL) {
		pthread_cond_wait(&fs->notify_cond, &fs->notify_lock);
		return;
	}
	until.tv_sec = (time_t)(fs->stores->due / 1000);
	until.tv_nsec = (long)(fs->stores->due % 1000) * 1000000L;
	(void)pthread_cond_timedwait(&fs->notify_cond, &fs->notify_lock,
	    &until);
}

static void *
notify_main(void *arg)
{
	struct cfs *fs = arg;
	struct cfs_notice *n;

	pthread_mutex_lock(&fs->notify_lock);
	for (;;) {
		if ((n = next_notice(fs)) == NULL) {
			if (fs->notify_stop)
				break;
			wait_notice(fs);
			continue;
		}
		pthread_mutex_unlock(&fs->notify_lock);
		if (!fs->notify_stop)
			handle(fs, n);
		free_notice(n);
		pthread_mutex_lock(&fs->notify_lock);
	}
	pthread_mutex_unlock(&fs->notify_lock);
	return NULL;
}

void
cfs_notify_start(struct cfs *fs)
{
	/* The lock and condition were set up with the rest of struct cfs. */
	fs->notify_running = 1;
	if (pthread_create(&fs->notify_thread, NULL, notify_main, fs) != 0)
		cpx_fatal("cannot start the notification thread");
	pthread_setname_np(fs->notify_thread, "cpx-fuse-notify");
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
	pthread_cond_signal(&fs->notify_cond);
	pthread_mutex_unlock(&fs->notify_lock);
	pthread_join(fs->notify_thread, NULL);
}
