/* routing.c — routes in action (loop thread): watch, persist, answer the shim. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfs.h"

/*
 * ROUTE_OK promises the shim that the worker now reports every change in
 * the folder, so the first segment cannot slip past us: it is sent when
 * the worker's WATCH succeeded. If that does not happen in time, the
 * answer is an ERROR and the route is withdrawn, so the shim can still
 * run the job locally before anything started.
 */

#define ROUTES_FILE "fuse-routes.json"
#define ROUTES_FILE_MAX (4 * 1024 * 1024)

struct cfs_waiter {
	cfs_route_cb cb;
	void *arg;
	uint64_t deadline;
	struct cfs_waiter *next;
};

static char *
routes_path(struct cfs *fs)
{
	return cpx_xprintf("%s/%s", fs->set.run_dir, ROUTES_FILE);
}

/* Written to a temporary name and renamed: a crash leaves old or new, never half. */
int
cfs_routes_save(struct cfs *fs)
{
	char *json = cfs_routes_encode(fs), *path = routes_path(fs);
	char *tmp = cpx_xprintf("%s.tmp", path);
	int error = 0, fd;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || cpx_write_all(fd, json, strlen(json)) < 0 ||
	    fsync(fd) != 0 || rename(tmp, path) != 0) {
		error = -errno;
		cpx_error("cannot save routes to %s: %s", path, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	free(json);
	free(path);
	free(tmp);
	return error;
}

static void
answer(struct cfs *fs, struct cfs_route *r, int status, const char *code,
    const char *message)
{
	struct cfs_waiter *w = r->waiters, *next;

	r->waiters = NULL;
	for (; w != NULL; w = next) {
		next = w->next;
		w->cb(fs, status, code, message, w->arg);
		free(w);
	}
}

/* Drops every cached view of the folder, ours and the kernel's. */
static void
invalidate(struct cfs *fs, const char *dir)
{
	cfs_cache_forget_under(fs, dir);
	cfs_notify_under(fs, dir);
}

static void
retire(struct cfs *fs, struct cfs_route *r, const char *why)
{
	answer(fs, r, -ECANCELED, CPX_ERR_CONNECT, why);
	cfs_route_free(r);
}

static void
ignore_reply(struct cfs *fs, struct cfs_call *c, int status,
    struct cpx_reader *r)
{
}

/* The worker stops reporting on the folder (if it is up to hear it). */
static void
unwatch(struct cfs *fs, const char *worker, const char *dir)
{
	struct cfs_call *c;
	struct cpx_freq q = { .op = CPX_FOP_UNWATCH, .path = dir };

	if (!cfs_worker_ready(fs, worker))
		return;
	c = cfs_call_new(worker, ignore_reply, NULL);
	cpx_freq_put(&c->req, &q);
	cfs_call_submit(fs, c);
	cfs_push_unwatch(fs, worker, dir);
}

/*
 * The route ends without PMS deleting the folder (withdrawn, removed, or
 * moved to another worker): the folder the worker's WATCH created there
 * would stay for ever. It goes if it is empty, now or once the worker is
 * reachable again. A worker that never got the WATCH (unreachable, or one
 * we do not trust) has no such folder, and is not called again for it.
 */
static void
leave(struct cfs *fs, const struct cfs_route *r, const char *why)
{
	unwatch(fs, r->ep.name, r->dir);
	if (r->watch_sent)
		cfs_pending_add(fs, r->dir, &r->ep, 0, why);
}

static void
withdraw(struct cfs *fs, struct cfs_route *r, int status, const char *code,
    const char *message)
{
	char *dir = cpx_xstrdup(r->dir);

	cpx_warn("route %s withdrawn: %s", dir, message);
	answer(fs, r, status, code, message);
	leave(fs, r, "route withdrawn");
	cfs_route_free(cfs_route_unlink(fs, dir));
	cfs_routes_save(fs);
	invalidate(fs, dir);
	free(dir);
}

/* Every other lane's agent pushes its share of the folder's files too. */
static void
push_other_lanes(struct cfs *fs, struct cfs_route *r)
{
	int i;

	for (i = 1; i < fs->nlanes; i++)
		cfs_push_request(fs, r->ep.name, r->dir, i);
}

static void
on_watch(struct cfs *fs, struct cfs_call *c, int status, struct cpx_reader *rd)
{
	char *dir = c->arg, *msg;
	struct cfs_route *r = cfs_route_find(fs, dir);

	if (r != NULL && strcmp(r->ep.name, c->worker) == 0) {
		if (status == 0) {
			cfs_route_set(fs, r, r->uid, r->gid, 1);
			cpx_info("route %s -> %s (job %s) watched", r->dir,
			    r->ep.name, r->job);
			push_other_lanes(fs, r);
			answer(fs, r, 0, NULL, NULL);
		} else if (status != -EIO && r->waiters != NULL) {
			msg = cpx_xprintf("worker cannot watch the folder: %s",
			    strerror(-status));
			withdraw(fs, r, status, CPX_ERR_SPEC, msg);
			free(msg);
		} else if (status != -EIO) {
			cpx_warn("route %s: worker cannot watch: %s", dir,
			    strerror(-status));
		}
	}
	free(dir);
}

static void
send_watch(struct cfs *fs, struct cfs_route *r)
{
	struct cfs_call *c = cfs_call_new(r->ep.name, on_watch,
	    cpx_xstrdup(r->dir));
	struct cpx_freq q = { .op = CPX_FOP_WATCH, .path = r->dir };

	r->watch_sent = 1;
	cpx_freq_put(&c->req, &q);
	cfs_call_submit(fs, c);
	cfs_push_request(fs, r->ep.name, r->dir, 0);
}

/* The folder's owner: remote files are shown as PMS's own. */
static void
take_owner(struct cfs *fs, struct cfs_route *r)
{
	struct stat st;

	if (cfs_local_stat(fs, r->dir, &st) == 0)
		cfs_route_set(fs, r, st.st_uid, st.st_gid, 0);
	else
		cfs_route_set(fs, r, fs->root_uid, fs->root_gid, 0);
}

static void
activate(struct cfs *fs, struct cfs_route *r)
{
	struct cfs_worker *w = cfs_worker_get(fs, &r->ep);

	take_owner(fs, r);
	invalidate(fs, r->dir);
	if (w->state == CFS_W_READY)
		send_watch(fs, r);
	else
		cfs_worker_kick(fs, w);
}

/* A retry moved the job; on another worker, the first one's folder goes. */
static void
replaced(struct cfs *fs, struct cfs_route *r, struct cfs_route *old)
{
	cpx_info("route %s: job %s replaces job %s", r->dir, r->job, old->job);
	if (strcmp(old->ep.name, r->ep.name) != 0)
		leave(fs, old, "its job moved to another worker");
	retire(fs, old, "replaced by a newer route");
}

/* ROUTE_ADD: cb runs once, with 0 when the worker watches the folder. */
void
cfs_routing_add(struct cfs *fs, struct cfs_route_spec *rs, cfs_route_cb cb,
    void *arg)
{
	struct cfs_route *r, *old;
	struct cfs_waiter *w;

	r = cfs_route_insert(fs, rs, &old);
	if (r == NULL) {
		cb(fs, -EEXIST, CPX_ERR_SPEC,
		    "the folder is inside or around another route", arg);
		return;
	}
	/*
	 * A delete still owed to this worker for the folder must not reach
	 * its new job. One in flight goes out before the WATCH below (one
	 * connection, answered in order), so it cannot hit the new job either.
	 */
	cfs_pending_drop(fs, r->dir, r->ep.name);
	if (old != NULL)
		replaced(fs, r, old);
	w = cpx_xcalloc(1, sizeof *w);
	w->cb = cb;
	w->arg = arg;
	w->deadline = uv_now(&fs->loop) + (uint64_t)fs->set.connect_timeout_ms +
	    (uint64_t)fs->set.op_timeout_ms;
	w->next = r->waiters;
	r->waiters = w;
	cfs_routes_save(fs);
	activate(fs, r);
}

/*
 * ROUTE_DEL: the folder is local again. Nothing of PMS's is deleted; the
 * worker's copy goes only if empty (the job never ran there).
 */
int
cfs_routing_del(struct cfs *fs, const char *dir)
{
	struct cfs_route *r = cfs_route_unlink(fs, dir);

	if (r == NULL)
		return -ENOENT;
	leave(fs, r, "route removed");
	cpx_info("route %s (job %s) removed", r->dir, r->job);
	retire(fs, r, "route removed");
	cfs_routes_save(fs);
	invalidate(fs, dir);
	return 0;
}

/*
 * PMS deleted the routed folder (through the mount): the route ends with
 * it. When the worker could not be reached (owed), its copy is deleted
 * once it can be.
 */
void
cfs_routing_gone(struct cfs *fs, const char *dir, int owed)
{
	struct cfs_route *r = cfs_route_unlink(fs, dir);

	if (r == NULL)
		return;
	cpx_info("route %s (job %s) ended: folder deleted", r->dir, r->job);
	if (owed)
		cfs_pending_add(fs, r->dir, &r->ep, 1,
		    "unreachable when PMS deleted the folder");
	retire(fs, r, "folder deleted");
	cfs_routes_save(fs);
	cfs_cache_forget_under(fs, dir);
}

void
cfs_routing_worker_up(struct cfs *fs, const char *worker)
{
	struct cfs_route *r;

	/* Events may have been missed while disconnected. */
	for (r = fs->routes; r != NULL; r = r->next) {
		if (strcmp(r->ep.name, worker) != 0)
			continue;
		invalidate(fs, r->dir);
		send_watch(fs, r);
	}
}

static const char *
error_code(int status)
{
	if (status == -EKEYREJECTED)
		return CPX_ERR_HOSTKEY;
	if (status == -EACCES)
		return CPX_ERR_AUTH;
	return CPX_ERR_CONNECT;
}

void
cfs_routing_worker_down(struct cfs *fs, const char *worker, int status,
    const char *cause)
{
	struct cfs_route *r, *next;

	for (r = fs->routes; r != NULL; r = next) {
		next = r->next;
		if (strcmp(r->ep.name, worker) != 0)
			continue;
		if (r->watched)
			cfs_route_set(fs, r, r->uid, r->gid, 0);
		if (r->waiters != NULL)
			withdraw(fs, r, status, error_code(status), cause);
	}
}

void
cfs_routing_tick(struct cfs *fs)
{
	uint64_t now = uv_now(&fs->loop);
	struct cfs_route *r, *next;

	for (r = fs->routes; r != NULL; r = next) {
		next = r->next;
		if (r->waiters != NULL && now > r->waiters->deadline)
			withdraw(fs, r, -ETIMEDOUT, CPX_ERR_CONNECT,
			    "the worker's file service did not answer in time");
	}
}

/*
 * A control client went away: its pending answers go nowhere, and a route
 * nobody waits for any more that was never confirmed is withdrawn. The
 * shim gives up after its own deadline and runs the job locally (without
 * a ROUTE_DEL): the folder must not stay routed under that job's feet.
 */
void
cfs_routing_cancel(struct cfs *fs, void *arg)
{
	struct cfs_waiter **pp, *w;
	struct cfs_route *r, *next;
	int dropped;

	for (r = fs->routes; r != NULL; r = next) {
		next = r->next;
		dropped = 0;
		for (pp = &r->waiters; (w = *pp) != NULL;) {
			if (w->arg == arg) {
				*pp = w->next;
				free(w);
				dropped = 1;
			} else {
				pp = &w->next;
			}
		}
		if (dropped && r->waiters == NULL && !r->watched)
			withdraw(fs, r, -ECANCELED, CPX_ERR_CONNECT,
			    "the shim stopped waiting before the worker answered");
	}
}

void
cfs_routing_shutdown(struct cfs *fs)
{
	struct cfs_route *r;

	for (r = fs->routes; r != NULL; r = r->next)
		answer(fs, r, -ECANCELED, CPX_ERR_CONNECT, "fuse is stopping");
}

static void
restore_one(struct cfs *fs, struct cfs_route_spec *rs, int *changed)
{
	struct cfs_route *r, *old;
	struct stat st;

	if (cfs_local_stat(fs, rs->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		/* PMS deleted it while we were down: the worker's copy goes. */
		cpx_info("route %s dropped: the folder is gone", rs->dir);
		cfs_pending_add(fs, rs->dir, &rs->ep, 1,
		    "PMS deleted the folder while fuse was down");
		*changed = 1;
		return;
	}
	if ((r = cfs_route_insert(fs, rs, &old)) == NULL) {
		*changed = 1;
		return;
	}
	cfs_route_free(old);
	cpx_info("route %s -> %s (job %s) restored", r->dir, r->ep.name, r->job);
	activate(fs, r);
}

/* The deletes owed to workers when the last run ended. */
static void
restore_deletes(struct cfs *fs, const char *path, const char *json,
    size_t len, int *changed)
{
	struct cfs_pending *list = NULL;
	char *cause = NULL;

	if (cfs_pending_decode(json, len, &list, &cause) != 0) {
		cpx_warn("ignoring the owed deletes in %s: %s", path, cause);
		*changed = 1;
	}
	cfs_pending_restore(fs, list);
	free(cause);
}

/*
 * Start-up: the routes of jobs that ran before a restart keep working, and
 * deletes owed to workers are still replayed.
 */
void
cfs_routing_restore(struct cfs *fs)
{
	struct cfs_route_spec *specs = NULL;
	char *path = routes_path(fs), *json = NULL, *cause = NULL;
	size_t i, n = 0, len;
	int changed = 0;

	if (cpx_read_file(path, ROUTES_FILE_MAX, &json, &len) != 0)
		goto out;
	if (cfs_routes_decode(json, len, &specs, &n, &cause) != 0) {
		cpx_warn("ignoring %s: %s", path, cause);
		changed = 1;
	}
	restore_deletes(fs, path, json, len, &changed);
	for (i = 0; i < n; i++) {
		restore_one(fs, &specs[i], &changed);
		cfs_route_spec_free(&specs[i]);
	}
	if (changed)
		cfs_routes_save(fs);
out:
	free(specs);
	free(json);
	free(cause);
	free(path);
}
