/* pending.c (loop thread) — deletes owed to workers that could not be reached. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "cfs.h"

/*
 * PMS deletes a session folder when the session ends, and must never wait
 * for a worker to do so: when the worker cannot be reached, the local
 * folder goes at once and the delete is owed to the worker. So is the
 * folder a worker's WATCH created for a job that then moved to another
 * worker (removed only if it is still empty). Owed deletes are kept with
 * the routes (fuse-routes.json), so a restart keeps them, and replayed as
 * soon as the worker's connection is up: fuse keeps reconnecting to a
 * worker it owes a delete, as it does to a routed one. A replay the
 * worker answers with an error is tried again later, a bounded number of
 * times (never when retrying cannot help); a worker gone for good is
 * given up after a week.
 */

#define PENDING_MAX 4096
#define PENDING_TRIES 10
#define PENDING_RETRY_MIN_MS 1000
#define PENDING_RETRY_MAX_MS 60000
#define PENDING_MAX_AGE_S (7 * 24 * 3600)

static uint64_t next_id;

static struct cfs_pending *
pending_new(const char *dir, const struct cpx_endpoint *ep, int tree,
    int64_t since, unsigned tries)
{
	struct cfs_pending *p = cpx_xcalloc(1, sizeof *p);

	p->id = ++next_id;
	p->dir = cpx_xstrdup(dir);
	cpx_endpoint_copy(&p->ep, ep);
	p->tree = tree;
	p->since = since;
	p->tries = tries;
	return p;
}

static void
pending_free(struct cfs_pending *p)
{
	free(p->dir);
	cpx_endpoint_free(&p->ep);
	free(p);
}

void
cfs_pending_free_list(struct cfs_pending *p)
{
	struct cfs_pending *next;

	for (; p != NULL; p = next) {
		next = p->next;
		pending_free(p);
	}
}

struct cfs_pending *
cfs_pending_find(struct cfs *fs, const char *dir, const char *worker)
{
	struct cfs_pending *p;

	for (p = fs->pending; p != NULL; p = p->next)
		if (strcmp(p->dir, dir) == 0 && strcmp(p->ep.name, worker) == 0)
			return p;
	return NULL;
}

static void
unlink_pending(struct cfs *fs, struct cfs_pending *p)
{
	struct cfs_pending **pp;

	for (pp = &fs->pending; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			pending_free(p);
			return;
		}
	}
}

static size_t
count(struct cfs *fs)
{
	struct cfs_pending *p;
	size_t n = 0;

	for (p = fs->pending; p != NULL; p = p->next)
		n++;
	return n;
}

/* Appends p; past PENDING_MAX the oldest is forgotten (logged). */
static void
append(struct cfs *fs, struct cfs_pending *p)
{
	struct cfs_pending **pp;

	if (count(fs) >= PENDING_MAX) {
		cpx_warn("worker %s: too many deletes owed, forgetting %s",
		    fs->pending->ep.name, fs->pending->dir);
		unlink_pending(fs, fs->pending);
	}
	for (pp = &fs->pending; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = p;
}

/*
 * Owes the worker the delete of dir: everything in it (tree), or the
 * folder only if it is empty; `why` is for the log. The caller saves the
 * routes.
 */
void
cfs_pending_add(struct cfs *fs, const char *dir, const struct cpx_endpoint *ep,
    int tree, const char *why)
{
	struct cfs_pending *p = cfs_pending_find(fs, dir, ep->name);

	if (p != NULL) {
		p->tree |= tree;
		p->tries = 0;
		p->next_at = 0;
		cpx_endpoint_free(&p->ep);
		cpx_endpoint_copy(&p->ep, ep);
	} else {
		append(fs, pending_new(dir, ep, tree, (int64_t)time(NULL), 0));
	}
	if (tree)
		cpx_warn("worker %s: delete of %s owed (%s)", ep->name, dir, why);
	else
		cpx_info("worker %s: %s goes there if empty (%s)", ep->name,
		    dir, why);
}

/* The folder is routed to that worker again: its new job owns it. */
int
cfs_pending_drop(struct cfs *fs, const char *dir, const char *worker)
{
	struct cfs_pending *p = cfs_pending_find(fs, dir, worker);

	if (p == NULL)
		return 0;
	cpx_info("worker %s: delete of %s dropped: routed there again",
	    worker, dir);
	unlink_pending(fs, p);
	return 1;
}

int
cfs_pending_on_worker(struct cfs *fs, const char *worker)
{
	struct cfs_pending *p;
	int n = 0;

	for (p = fs->pending; p != NULL; p = p->next)
		n += strcmp(p->ep.name, worker) == 0;
	return n;
}

static struct cfs_pending *
find_id(struct cfs *fs, uint64_t id)
{
	struct cfs_pending *p;

	for (p = fs->pending; p != NULL; p = p->next)
		if (p->id == id)
			return p;
	return NULL;
}

static void
finish(struct cfs *fs, struct cfs_pending *p)
{
	unlink_pending(fs, p);
	cfs_routes_save(fs);
}

/*
 * Errors that no retry can mend: an agent without RMTREE, a path that is
 * not (or no longer) a folder of ours, or leads out of the worker's root.
 */
static int
permanent(int status)
{
	switch (-status) {
	case EPROTO:
	case ENOSYS:
	case EINVAL:
	case ENOTDIR:
	case EXDEV:
	case ELOOP:
	case ENAMETOOLONG:
		return 1;
	}
	return 0;
}

static void
failed(struct cfs *fs, struct cfs_pending *p, int status)
{
	uint64_t delay = PENDING_RETRY_MIN_MS;
	unsigned i;

	if (permanent(status) || ++p->tries >= PENDING_TRIES) {
		cpx_warn("worker %s: giving up deleting %s: %s (%u attempts)",
		    p->ep.name, p->dir, strerror(-status), p->tries);
		finish(fs, p);
		return;
	}
	for (i = 1; i < p->tries && delay < PENDING_RETRY_MAX_MS; i++)
		delay *= 2;
	if (delay > PENDING_RETRY_MAX_MS)
		delay = PENDING_RETRY_MAX_MS;
	p->next_at = uv_now(&fs->loop) + delay;
	cpx_warn("worker %s: deleting %s failed: %s (attempt %u of %d)",
	    p->ep.name, p->dir, strerror(-status), p->tries, PENDING_TRIES);
	cfs_routes_save(fs);
}

static void
on_replayed(struct cfs *fs, struct cfs_call *c, int status,
    struct cpx_reader *r)
{
	struct cfs_pending *p = find_id(fs, (uint64_t)(uintptr_t)c->arg);
	long owed;

	if (p == NULL)
		return;		/* dropped meanwhile: routed there again */
	p->inflight = 0;
	if (fs->lanes[0].stopping)
		return;		/* still owed at the next start */
	owed = (long)((int64_t)time(NULL) - p->since);
	if (status == 0 || status == -ENOENT) {
		cpx_info("worker %s: %s %s (owed for %ld s)", p->ep.name,
		    p->tree ? "deleted" : "removed the empty folder", p->dir,
		    owed);
		finish(fs, p);
	} else if (!p->tree && (status == -ENOTEMPTY || status == -EEXIST)) {
		cpx_warn("worker %s: %s is not empty, left as it is",
		    p->ep.name, p->dir);
		finish(fs, p);
	} else {
		failed(fs, p, status);
	}
}

static void
send_delete(struct cfs *fs, struct cfs_pending *p)
{
	struct cpx_freq q = { .op = p->tree ? CPX_FOP_RMTREE : CPX_FOP_RMDIR,
		.path = p->dir };
	struct cfs_call *c = cfs_call_new(p->ep.name, on_replayed,
	    (void *)(uintptr_t)p->id);

	cpx_freq_put(&c->req, &q);
	p->inflight = 1;
	cfs_call_submit(fs, c);
}

/* Sends the delete when the worker is up, else has it connect. */
static void
replay(struct cfs *fs, struct cfs_pending *p, uint64_t now)
{
	struct cfs_worker *w = cfs_worker_find(fs, p->ep.name);

	if (w == NULL)
		w = cfs_worker_get(fs, &p->ep);
	switch (w->state) {
	case CFS_W_READY:
		send_delete(fs, p);
		break;
	case CFS_W_IDLE:
		cfs_worker_kick(fs, w);
		break;
	case CFS_W_BACKOFF:
		if (now >= w->retry_at)
			cfs_worker_kick(fs, w);
		break;
	}
}

void
cfs_pending_tick(struct cfs *fs)
{
	uint64_t now = uv_now(&fs->loop);
	int64_t wall = (int64_t)time(NULL);
	struct cfs_pending *p, *next;

	for (p = fs->pending; p != NULL; p = next) {
		next = p->next;
		if (p->inflight || now < p->next_at)
			continue;
		if (wall - p->since > PENDING_MAX_AGE_S) {
			cpx_warn("worker %s: giving up deleting %s: unreachable "
			    "for a week", p->ep.name, p->dir);
			finish(fs, p);
			continue;
		}
		replay(fs, p, now);
	}
}

/* {"dir", "worker": {endpoint}, "empty_only", "since", "tries"} each. */
void
cfs_pending_to_json(struct cfs *fs, struct cJSON *obj)
{
	cJSON *arr = cJSON_CreateArray(), *d, *w;
	struct cfs_pending *p;

	for (p = fs->pending; p != NULL; p = p->next) {
		d = cJSON_CreateObject();
		w = cJSON_CreateObject();
		cJSON_AddStringToObject(d, "dir", p->dir);
		cpx_endpoint_to_json(&p->ep, w);
		cJSON_AddItemToObject(d, "worker", w);
		cJSON_AddBoolToObject(d, "empty_only", !p->tree);
		cJSON_AddNumberToObject(d, "since", (double)p->since);
		cJSON_AddNumberToObject(d, "tries", p->tries);
		cJSON_AddItemToArray(arr, d);
	}
	cJSON_AddItemToObject(obj, "deletes", arr);
}

static int
number(const cJSON *obj, const char *name, double max, double *v)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!cJSON_IsNumber(n) || !(n->valuedouble >= 0) ||
	    n->valuedouble > max)
		return -EINVAL;
	*v = n->valuedouble;
	return 0;
}

static struct cfs_pending *
from_json(const cJSON *item, char **cause)
{
	const cJSON *dir = cJSON_GetObjectItemCaseSensitive(item, "dir");
	const cJSON *w = cJSON_GetObjectItemCaseSensitive(item, "worker");
	const cJSON *empty = cJSON_GetObjectItemCaseSensitive(item,
	    "empty_only");
	struct cfs_pending *p = NULL;
	struct cpx_endpoint ep;
	double since, tries;

	memset(&ep, 0, sizeof ep);
	if (!cJSON_IsString(dir) || strlen(dir->valuestring) > CPX_PATH_MAX ||
	    !cpx_path_clean_relative(dir->valuestring) || !cJSON_IsObject(w) ||
	    !cJSON_IsBool(empty) || number(item, "since", 1e12, &since) != 0 ||
	    number(item, "tries", PENDING_TRIES, &tries) != 0) {
		cpx_set_cause(cause, "malformed owed delete");
		return NULL;
	}
	if (cpx_endpoint_from_json(w, &ep, cause) == 0 && *ep.name != '\0')
		p = pending_new(dir->valuestring, &ep, !cJSON_IsTrue(empty),
		    (int64_t)since, (unsigned)tries);
	else if (cause != NULL && *cause == NULL)
		cpx_set_cause(cause, "owed delete without a worker name");
	cpx_endpoint_free(&ep);
	return p;
}

/*
 * The "deletes" of a persisted table (none in older files). Returns 0 and
 * the list (free with cfs_pending_free_list), or -EINVAL and no list.
 */
int
cfs_pending_decode(const char *json, size_t len, struct cfs_pending **list,
    char **cause)
{
	cJSON *obj = cJSON_ParseWithLength(json, len), *item;
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, "deletes");
	struct cfs_pending *p, **tail = list;
	int error = 0;

	*list = NULL;
	if (!cJSON_IsObject(obj) || (arr != NULL && (!cJSON_IsArray(arr) ||
	    cJSON_GetArraySize(arr) > PENDING_MAX))) {
		cpx_set_cause(cause, "no valid \"deletes\" array");
		error = -EINVAL;
		goto out;
	}
	cJSON_ArrayForEach(item, arr) {
		if ((p = from_json(item, cause)) == NULL) {
			cfs_pending_free_list(*list);
			*list = NULL;
			error = -EINVAL;
			break;
		}
		*tail = p;
		tail = &p->next;
	}
out:
	cJSON_Delete(obj);
	return error;
}

/* Start-up: the owed deletes of the last run (taken over from list). */
void
cfs_pending_restore(struct cfs *fs, struct cfs_pending *list)
{
	struct cfs_pending *p, *next;

	for (p = list; p != NULL; p = next) {
		next = p->next;
		p->next = NULL;
		if (cfs_pending_find(fs, p->dir, p->ep.name) != NULL) {
			pending_free(p);
			continue;
		}
		cpx_info("worker %s: delete of %s still owed", p->ep.name,
		    p->dir);
		append(fs, p);
	}
}

void
cfs_pending_free(struct cfs *fs)
{
	cfs_pending_free_list(fs->pending);
	fs->pending = NULL;
}
