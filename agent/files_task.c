/* files_task.c — a link's ordered outgoing work: events and completions. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"

/*
 * inotify events become tasks, run in the order they happened. An event
 * task sends its FEVENT; a completion first pushes what the fuse side
 * still lacks of the file (files_push.c) and may have to wait for the
 * link to drain, and everything after it waits too: an event about a
 * name must never overtake an earlier one about the same name, and the
 * fuse side must hold a completed file's contents (or know it will not)
 * when it hears of its completion.
 */

struct files_task *
files_task_add(struct files_svc *s, int kind, const struct files_watch *w,
    uint8_t ev, const char *name)
{
	struct files_task *t = cpx_xcalloc(1, sizeof *t);

	t->kind = kind;
	t->ev = ev;
	t->dir = cpx_xstrdup(w->path);
	t->name = name != NULL ? cpx_xstrdup(name) : NULL;
	t->w = *w;
	t->w.path = t->dir;
	if (s->tasks_tail != NULL)
		s->tasks_tail->next = t;
	else
		s->tasks = t;
	s->tasks_tail = t;
	s->ntasks++;
	return t;
}

static void
task_free(struct files_task *t)
{
	free(t->dir);
	free(t->name);
	free(t);
}

static void
pop(struct files_svc *s)
{
	struct files_task *t = s->tasks;

	if ((s->tasks = t->next) == NULL)
		s->tasks_tail = NULL;
	s->ntasks--;
	task_free(t);
}

static char *
task_path(const struct files_task *t)
{
	return t->name != NULL ? cpx_xprintf("%s/%s", t->dir, t->name) :
	    cpx_xstrdup(t->dir);
}

/* The task's name, looked at now, beneath the root: 0 or -errno. */
static int
stat_name(struct files_svc *s, const struct files_task *t, struct stat *st)
{
	int error = 0, fd = cpx_open_beneath(s->rootfd, t->dir,
	    O_PATH | O_DIRECTORY, 0, 0);

	if (fd < 0)
		return fd;
	if (fstatat(fd, t->name, st, AT_SYMLINK_NOFOLLOW) != 0)
		error = -errno;
	close(fd);
	return error;
}

static void
run_event(struct files_svc *s, struct files_task *t)
{
	struct cpx_attr a;
	struct stat st;
	char *path;

	if (t->ev == CPX_FEV_REMOVED && t->w.push) {
		if (t->deleted)
			files_push_deleted(s, t->w.wd, t->name);
		else
			files_push_moved_away(s, t->w.wd, t->name);
	}
	if (!t->w.events)
		return;
	path = task_path(t);
	/*
	 * A name gone again before we could stat it: its CREATED still
	 * matters (the fuse side forgets a cached "no such file").
	 */
	if (t->ev == CPX_FEV_CREATED && stat_name(s, t, &st) == 0) {
		cpx_attr_from_stat(&a, &st);
		files_send_event(s, t->ev, path, &a, (uint64_t)st.st_dev,
		    (uint64_t)st.st_ino);
	} else {
		files_send_event(s, t->ev, path, NULL, 0, 0);
	}
	free(path);
}

/* -EAGAIN: waiting for the link to drain. */
static int
run_complete(struct files_svc *s, struct files_task *t)
{
	struct cpx_attr a;
	struct stat st;
	char *path;

	if (!t->started) {
		/* Gone already: no COMPLETE without attributes. */
		if (stat_name(s, t, &st) != 0)
			return 0;
		t->started = 1;
		t->dev = (uint64_t)st.st_dev;
		t->ino = (uint64_t)st.st_ino;
		t->regular = S_ISREG(st.st_mode);
		cpx_attr_from_stat(&t->named, &st);
	}
	a = t->named;
	if (t->w.push && t->regular && files_push_complete(s, t, &a) == -EAGAIN)
		return -EAGAIN;
	if (t->w.events) {
		path = task_path(t);
		files_send_event(s, CPX_FEV_COMPLETE, path, &a, t->dev, t->ino);
		free(path);
	}
	return 0;
}

/*
 * Runs tasks in order until one must wait for the link, then pushes the
 * blocks of growing files while the link takes them.
 */
void
files_tasks_run(struct files_svc *s)
{
	struct files_task *t;
	int blocked = 0;

	if (s->running)
		return;
	s->running = 1;
	while (!blocked && (t = s->tasks) != NULL) {
		if (t->kind == TASK_COMPLETE)
			blocked = run_complete(s, t) == -EAGAIN;
		else
			run_event(s, t);
		if (!blocked)
			pop(s);
	}
	if (!blocked)
		blocked = files_push_grow(s) == -EAGAIN;
	s->push_blocked = blocked;
	s->running = 0;
	files_watch_resume(s);
}

void
files_tasks_free(struct files_svc *s)
{
	while (s->tasks != NULL)
		pop(s);
}
