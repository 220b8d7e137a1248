/* files_watch.c — inotify on routed session folders, as ordered tasks. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"

/*
 * A segment is finished when the transcoder closes it after writing (HLS
 * writes in place) or renames it into place (DASH writes *.tmp first).
 * IN_MODIFY (every write(2)) is asked for only in folders whose contents
 * are pushed (PUSH): it is what makes a growing file's blocks go out
 * while the transcoder still writes it. It never becomes an FEVENT.
 */
#define WATCH_MASK (IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | \
    IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)

static struct files_watch *
find_path(struct files_svc *s, const char *path)
{
	size_t i;

	for (i = 0; i < s->nwatches; i++)
		if (strcmp(s->watches[i].path, path) == 0)
			return &s->watches[i];
	return NULL;
}

struct files_watch *
files_watch_by_wd(struct files_svc *s, int wd)
{
	size_t i;

	for (i = 0; i < s->nwatches; i++)
		if (s->watches[i].wd == wd)
			return &s->watches[i];
	return NULL;
}

static void
drop(struct files_svc *s, struct files_watch *w)
{
	files_push_unwatch(s, w->wd);
	free(w->path);
	*w = s->watches[--s->nwatches];
}

/*
 * Opens the folder `path` beneath the root, creating it and its missing
 * parents first: the fuse side watches a session folder before the job
 * that will create it has started. Each step resolves beneath the folder
 * opened before it, so a symlink cannot lead the walk outside.
 */
static int
open_or_create_dir(struct files_svc *s, const char *path)
{
	char *copy = cpx_xstrdup(path), *comp, *save = NULL;
	int fd = cpx_open_beneath(s->rootfd, "", O_PATH | O_DIRECTORY, 0, 0);
	int next;

	for (comp = strtok_r(copy, "/", &save); comp != NULL && fd >= 0;
	    comp = strtok_r(NULL, "/", &save)) {
		if (mkdirat(fd, comp, 0755) != 0 && errno != EEXIST) {
			next = -errno;
		} else {
			next = cpx_open_beneath(fd, comp,
			    O_PATH | O_DIRECTORY, 0, 0);
		}
		close(fd);
		fd = next;
	}
	free(copy);
	return fd;
}

/* The watched folder, resolved beneath the root again (O_PATH). */
int
files_watch_dir(struct files_svc *s, struct files_watch *w)
{
	return cpx_open_beneath(s->rootfd, w->path, O_PATH | O_DIRECTORY, 0, 0);
}

static void
on_readable(uv_poll_t *p, int status, int events)
{
	files_watch_drain(p->data);
}

static int
start_inotify(struct files_svc *s)
{
	s->infd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->infd < 0)
		return -errno;
	if (s->loop == NULL)
		return 0;
	uv_poll_init(s->loop, &s->inpoll, s->infd);
	s->inpoll.data = s;
	s->nhandles_open++;
	uv_poll_start(&s->inpoll, UV_READABLE, on_readable);
	return 0;
}

/*
 * The watch on `path` (with `create`, the folder is made if need be), with
 * `mask` added to what it already reports. NULL and *error when impossible.
 */
static struct files_watch *
watch_get(struct files_svc *s, const char *path, uint32_t mask, int create,
    int *error)
{
	struct files_watch *w = find_path(s, path);
	char proc[32];
	int fd, wd;

	*error = 0;
	if (*path == '\0') {
		*error = -EINVAL;
		return NULL;
	}
	if (w == NULL && s->nwatches == FILES_MAX_WATCHES) {
		*error = -ENOSPC;
		return NULL;
	}
	if (s->infd < 0 && (*error = start_inotify(s)) != 0)
		return NULL;
	fd = create ? open_or_create_dir(s, path) :
	    cpx_open_beneath(s->rootfd, path, O_PATH | O_DIRECTORY, 0, 0);
	if (fd < 0) {
		*error = fd;
		return NULL;
	}
	/*
	 * No descriptor is kept: one held open would keep the folder's
	 * dentry alive, and its removal would then never be reported.
	 */
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	wd = inotify_add_watch(s->infd, proc, WATCH_MASK | mask | IN_MASK_ADD);
	*error = wd < 0 ? -errno : 0;
	close(fd);
	if (wd < 0)
		return NULL;
	if (w != NULL)
		return w;
	if ((w = files_watch_by_wd(s, wd)) != NULL)
		return w;	/* another path names this folder already */
	s->watches = cpx_xrealloc(s->watches,
	    (s->nwatches + 1) * sizeof *s->watches);
	w = &s->watches[s->nwatches++];
	memset(w, 0, sizeof *w);
	w->wd = wd;
	w->path = cpx_xstrdup(path);
	return w;
}

/* WATCH: FEVENTs for the folder. */
int
files_watch_add(struct files_svc *s, const char *path)
{
	struct files_watch *w;
	int error;

	if ((w = watch_get(s, path, 0, 1, &error)) != NULL)
		w->events = 1;
	return error;
}

/*
 * PUSH: share `flags & 0xffff` of `flags >> 16` of its files' contents.
 * Only WATCH creates the folder: a PUSH from another connection can
 * arrive after PMS deleted it (through connection 0, which carries the
 * delete), and must not bring it back (-ENOENT then).
 */
int
files_watch_push(struct files_svc *s, const char *path, uint32_t flags,
    uint64_t max)
{
	struct files_watch *w;
	int error;

	if ((w = watch_get(s, path, IN_MODIFY, 0, &error)) == NULL)
		return error;
	w->push = 1;
	w->share = flags & 0xffff;
	w->shares = flags >> 16;
	w->push_max = max < FILES_PUSH_MAX_BYTES ? max : FILES_PUSH_MAX_BYTES;
	return 0;
}

int
files_watch_remove(struct files_svc *s, const char *path)
{
	struct files_watch *w = find_path(s, path);

	if (w == NULL)
		return -ENOENT;
	/* The IN_IGNORED that follows finds no watch and is dropped. */
	inotify_rm_watch(s->infd, w->wd);
	drop(s, w);
	return 0;
}

static void
name_event(struct files_svc *s, struct files_watch *w,
    const struct inotify_event *ev)
{
	struct files_task *t;

	if (ev->mask & IN_MODIFY) {
		if (w->push)
			files_push_modified(s, w, ev->name);
		if (!(ev->mask & ~(uint32_t)IN_MODIFY))
			return;
	}
	if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
		t = files_task_add(s, TASK_EVENT, w, CPX_FEV_REMOVED, ev->name);
		t->deleted = (ev->mask & IN_DELETE) != 0;
	} else if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
		files_task_add(s, TASK_COMPLETE, w, CPX_FEV_COMPLETE, ev->name);
	} else if (ev->mask & IN_CREATE) {
		files_task_add(s, TASK_EVENT, w, CPX_FEV_CREATED, ev->name);
	}
}

static void
one_event(struct files_svc *s, const struct inotify_event *ev)
{
	struct files_watch *w;
	size_t i;

	if (ev->mask & IN_Q_OVERFLOW) {
		for (i = 0; i < s->nwatches; i++)
			files_task_add(s, TASK_EVENT, &s->watches[i],
			    CPX_FEV_OVERFLOW, NULL);
		files_push_overflow(s);
		return;
	}
	if ((w = files_watch_by_wd(s, ev->wd)) == NULL)
		return;
	if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
		files_task_add(s, TASK_EVENT, w, CPX_FEV_DIR_GONE, NULL);
		if (!(ev->mask & IN_IGNORED))
			inotify_rm_watch(s->infd, w->wd);
		drop(s, w);
		return;
	}
	if (ev->len > 0 && ev->name[0] != '\0')
		name_event(s, w, ev);
}

/*
 * Reads every queued inotify event into tasks, then runs them. With too
 * many tasks waiting (pushes held back by a slow link), stops reading:
 * the kernel queues meanwhile and reports an overflow if it must.
 */
void
files_watch_drain(struct files_svc *s)
{
	char buf[64 * 1024]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t n;
	char *p;

	if (s->infd < 0)
		return;
	while (s->ntasks < FILES_MAX_TASKS) {
		n = read(s->infd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (p = buf; p < buf + n; p += sizeof *ev + ev->len) {
			ev = (const struct inotify_event *)p;
			one_event(s, ev);
		}
	}
	if (s->ntasks >= FILES_MAX_TASKS && s->loop != NULL &&
	    !s->inpoll_stopped) {
		uv_poll_stop(&s->inpoll);
		s->inpoll_stopped = 1;
	}
	files_tasks_run(s);
}

/* Tasks went out: read inotify again if it was held back. */
void
files_watch_resume(struct files_svc *s)
{
	if (!s->inpoll_stopped || s->ntasks >= FILES_MAX_TASKS / 2 ||
	    s->infd < 0)
		return;
	s->inpoll_stopped = 0;
	uv_poll_start(&s->inpoll, UV_READABLE, on_readable);
}

void
files_watch_close(struct files_svc *s)
{
	while (s->nwatches > 0)
		drop(s, &s->watches[0]);
	free(s->watches);
	s->watches = NULL;
	if (s->infd < 0)
		return;
	if (s->loop != NULL)
		uv_close((uv_handle_t *)&s->inpoll, files_handle_closed);
	close(s->infd);
	s->infd = -1;
}
