/* files_watch.c — inotify on routed session folders, reported as FEVENTs. */

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
 * IN_MODIFY is left out on purpose: it fires for every write(2) and would
 * flood the link with nothing the fuse side can act on.
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

static struct files_watch *
find_wd(struct files_svc *s, int wd)
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

int
files_watch_add(struct files_svc *s, const char *path)
{
	char proc[32];
	int fd, wd, error;

	if (*path == '\0')
		return -EINVAL;
	if (find_path(s, path) != NULL)
		return 0;
	if (s->nwatches == FILES_MAX_WATCHES)
		return -ENOSPC;
	if (s->infd < 0 && (error = start_inotify(s)) != 0)
		return error;
	if ((fd = open_or_create_dir(s, path)) < 0)
		return fd;
	/*
	 * No descriptor is kept: one held open would keep the folder's
	 * dentry alive, and its removal would then never be reported.
	 */
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	wd = inotify_add_watch(s->infd, proc, WATCH_MASK);
	error = wd < 0 ? -errno : 0;
	close(fd);
	if (wd < 0 || find_wd(s, wd) != NULL)
		return error;	/* another path watches this folder already */
	s->watches = cpx_xrealloc(s->watches,
	    (s->nwatches + 1) * sizeof *s->watches);
	s->watches[s->nwatches].wd = wd;
	s->watches[s->nwatches].path = cpx_xstrdup(path);
	s->nwatches++;
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
	char *path = cpx_xprintf("%s/%s", w->path, ev->name);
	struct cpx_attr a;
	struct stat st;
	uint8_t kind;
	int fd, found = 0;

	if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
		kind = CPX_FEV_REMOVED;
	else if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))
		kind = CPX_FEV_COMPLETE;
	else
		kind = CPX_FEV_CREATED;
	/*
	 * A name gone again before we could stat it: its CREATED still
	 * matters (the fuse side forgets a cached "no such file"), a COMPLETE
	 * without attributes does not (its REMOVED follows).
	 */
	if (kind != CPX_FEV_REMOVED && (fd = cpx_open_beneath(s->rootfd,
	    w->path, O_PATH | O_DIRECTORY, 0, 0)) >= 0) {
		found = fstatat(fd, ev->name, &st, AT_SYMLINK_NOFOLLOW) == 0;
		close(fd);
	}
	if (found) {
		cpx_attr_from_stat(&a, &st);
		files_send_event(s, kind, path, &a);
	} else if (kind != CPX_FEV_COMPLETE) {
		files_send_event(s, kind, path, NULL);
	}
	free(path);
}

static void
one_event(struct files_svc *s, const struct inotify_event *ev)
{
	struct files_watch *w;
	size_t i;

	if (ev->mask & IN_Q_OVERFLOW) {
		for (i = 0; i < s->nwatches; i++)
			files_send_event(s, CPX_FEV_OVERFLOW,
			    s->watches[i].path, NULL);
		return;
	}
	if ((w = find_wd(s, ev->wd)) == NULL)
		return;
	if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
		files_send_event(s, CPX_FEV_DIR_GONE, w->path, NULL);
		if (!(ev->mask & IN_IGNORED))
			inotify_rm_watch(s->infd, w->wd);
		drop(s, w);
		return;
	}
	if (ev->len > 0 && ev->name[0] != '\0')
		name_event(s, w, ev);
}

/* Reads and reports every queued inotify event. */
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
	for (;;) {
		n = read(s->infd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		for (p = buf; p < buf + n; p += sizeof *ev + ev->len) {
			ev = (const struct inotify_event *)p;
			one_event(s, ev);
		}
	}
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
