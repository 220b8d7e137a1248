/* route.c — the route table: session folders that live on a worker. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cfs.h"

#define JOB_MAX 256
#define ROUTES_MAX 4096

static char *
dup_string(const cJSON *obj, const char *name, size_t max)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!cJSON_IsString(v) || strlen(v->valuestring) > max)
		return NULL;
	return cpx_xstrdup(v->valuestring);
}

void
cfs_route_spec_free(struct cfs_route_spec *rs)
{
	free(rs->dir);
	free(rs->job);
	cpx_endpoint_free(&rs->ep);
	memset(rs, 0, sizeof *rs);
}

/* A route's folder: a clean relative path; never the transcode root itself. */
static int
valid_dir(const char *dir)
{
	return dir != NULL && cpx_path_clean_relative(dir);
}

static int
spec_from_json(const cJSON *obj, int del, struct cfs_route_spec *rs,
    char **cause)
{
	const cJSON *worker;

	rs->dir = dup_string(obj, "dir", CPX_PATH_MAX);
	if (!valid_dir(rs->dir)) {
		cpx_set_cause(cause, "\"dir\" must be a clean path relative to "
		    "the transcode folder");
		return -EINVAL;
	}
	if (del)
		return 0;
	rs->job = dup_string(obj, "job", JOB_MAX);
	if (rs->job == NULL) {
		cpx_set_cause(cause, "\"job\" must be a string");
		return -EINVAL;
	}
	worker = cJSON_GetObjectItemCaseSensitive(obj, "worker");
	if (!cJSON_IsObject(worker))
		goto bad_worker;
	if (cpx_endpoint_from_json(worker, &rs->ep, cause) != 0)
		return -EINVAL;
	if (*rs->ep.name == '\0') {
		cpx_set_cause(cause, "worker needs a name");
		return -EINVAL;
	}
	return 0;
bad_worker:
	cpx_set_cause(cause, "\"worker\" must be an object");
	return -EINVAL;
}

/*
 * Parses a ROUTE_ADD ({"dir", "job", "worker": {endpoint}}) or, with del,
 * a ROUTE_DEL ({"dir"}) payload from the control socket.
 */
int
cfs_route_spec_parse(const uint8_t *p, size_t n, int del,
    struct cfs_route_spec *rs, char **cause)
{
	cJSON *obj = cJSON_ParseWithLength((const char *)p, n);
	int error;

	memset(rs, 0, sizeof *rs);
	if (!cJSON_IsObject(obj)) {
		cJSON_Delete(obj);
		cpx_set_cause(cause, "route message is not a JSON object");
		return -EINVAL;
	}
	error = spec_from_json(obj, del, rs, cause);
	cJSON_Delete(obj);
	if (error != 0)
		cfs_route_spec_free(rs);
	return error;
}

/*
 * The persisted table: {"routes": [ROUTE_ADD bodies], "deletes": [...]}
 * (the deletes owed to workers: pending.c).
 */
int
cfs_routes_decode(const char *json, size_t len, struct cfs_route_spec **specs,
    size_t *n, char **cause)
{
	cJSON *obj = cJSON_ParseWithLength(json, len), *item;
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, "routes");
	int error = 0;

	*specs = NULL;
	*n = 0;
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > ROUTES_MAX) {
		cpx_set_cause(cause, "no \"routes\" array");
		error = -EINVAL;
		goto out;
	}
	cJSON_ArrayForEach(item, arr) {
		struct cfs_route_spec rs;

		memset(&rs, 0, sizeof rs);
		if (!cJSON_IsObject(item) ||
		    spec_from_json(item, 0, &rs, cause) != 0) {
			cfs_route_spec_free(&rs);
			error = -EINVAL;
			break;
		}
		*specs = cpx_xrealloc(*specs, (*n + 1) * sizeof **specs);
		(*specs)[(*n)++] = rs;
	}
out:
	cJSON_Delete(obj);
	return error;
}

char *
cfs_routes_encode(struct cfs *fs)
{
	cJSON *obj = cJSON_CreateObject(), *arr = cJSON_CreateArray(), *r, *w;
	struct cfs_route *rt;

	pthread_rwlock_rdlock(&fs->route_lock);
	for (rt = fs->routes; rt != NULL; rt = rt->next) {
		r = cJSON_CreateObject();
		w = cJSON_CreateObject();
		cJSON_AddStringToObject(r, "dir", rt->dir);
		cJSON_AddStringToObject(r, "job", rt->job);
		cpx_endpoint_to_json(&rt->ep, w);
		cJSON_AddItemToObject(r, "worker", w);
		cJSON_AddItemToArray(arr, r);
	}
	pthread_rwlock_unlock(&fs->route_lock);
	cJSON_AddItemToObject(obj, "routes", arr);
	cfs_pending_to_json(fs, obj);
	return cpx_json_take(obj, 1);
}

/* Is `path` the folder `dir` or below it? */
static int
path_in(const char *path, const char *dir, int *exact)
{
	size_t n = strlen(dir);

	if (strncmp(path, dir, n) != 0 || (path[n] != '\0' && path[n] != '/'))
		return 0;
	*exact = path[n] == '\0';
	return 1;
}

/*
 * Finds the route `path` falls under. Returns 1 and fills m (free with
 * cfs_match_free) or 0 when the path is local. Routes never nest (see
 * cfs_route_insert), so at most one matches.
 */
int
cfs_route_match(struct cfs *fs, const char *path, struct cfs_match *m)
{
	struct cfs_route *r;
	int exact = 0, found = 0;

	memset(m, 0, sizeof *m);
	pthread_rwlock_rdlock(&fs->route_lock);
	for (r = fs->routes; r != NULL; r = r->next) {
		if (path_in(path, r->dir, &exact)) {
			m->dir = cpx_xstrdup(r->dir);
			m->worker = cpx_xstrdup(r->ep.name);
			m->is_dir = exact;
			m->watched = r->watched;
			m->push_lanes = r->push_lanes;
			m->uid = r->uid;
			m->gid = r->gid;
			found = 1;
			break;
		}
	}
	pthread_rwlock_unlock(&fs->route_lock);
	return found;
}

void
cfs_match_free(struct cfs_match *m)
{
	free(m->dir);
	free(m->worker);
	memset(m, 0, sizeof *m);
}

void
cfs_route_free(struct cfs_route *r)
{
	if (r == NULL)
		return;
	free(r->dir);
	free(r->job);
	cpx_endpoint_free(&r->ep);
	free(r);
}

/* Caller holds the write lock. */
static struct cfs_route **
slot_of(struct cfs *fs, const char *dir)
{
	struct cfs_route **pp;

	for (pp = &fs->routes; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->dir, dir) == 0)
			return pp;
	return NULL;
}

/*
 * Adds a route. The same folder routed again (a retry on another worker)
 * replaces the old route, returned in *replaced for the caller to retire.
 * A folder inside or around another route is refused (NULL): one path
 * must never belong to two workers.
 */
struct cfs_route *
cfs_route_insert(struct cfs *fs, const struct cfs_route_spec *rs,
    struct cfs_route **replaced)
{
	struct cfs_route *r, **pp, *it;
	int exact;

	*replaced = NULL;
	pthread_rwlock_wrlock(&fs->route_lock);
	for (it = fs->routes; it != NULL; it = it->next) {
		if ((path_in(rs->dir, it->dir, &exact) ||
		    path_in(it->dir, rs->dir, &exact)) && !exact) {
			pthread_rwlock_unlock(&fs->route_lock);
			return NULL;
		}
	}
	r = cpx_xcalloc(1, sizeof *r);
	r->dir = cpx_xstrdup(rs->dir);
	r->job = cpx_xstrdup(rs->job);
	cpx_endpoint_copy(&r->ep, &rs->ep);
	r->uid = fs->root_uid;
	r->gid = fs->root_gid;
	if ((pp = slot_of(fs, rs->dir)) != NULL) {
		*replaced = *pp;
		r->next = (*pp)->next;
		*pp = r;
	} else {
		r->next = fs->routes;
		fs->routes = r;
	}
	pthread_rwlock_unlock(&fs->route_lock);
	return r;
}

struct cfs_route *
cfs_route_find(struct cfs *fs, const char *dir)
{
	struct cfs_route **pp;

	pthread_rwlock_rdlock(&fs->route_lock);
	pp = slot_of(fs, dir);
	pthread_rwlock_unlock(&fs->route_lock);
	return pp != NULL ? *pp : NULL;
}

/* Takes the route out of the table; the caller frees it. */
struct cfs_route *
cfs_route_unlink(struct cfs *fs, const char *dir)
{
	struct cfs_route **pp, *r = NULL;

	pthread_rwlock_wrlock(&fs->route_lock);
	if ((pp = slot_of(fs, dir)) != NULL) {
		r = *pp;
		*pp = r->next;
		r->next = NULL;
	}
	pthread_rwlock_unlock(&fs->route_lock);
	return r;
}

void
cfs_routes_free(struct cfs *fs)
{
	struct cfs_route *r, *next;

	for (r = fs->routes; r != NULL; r = next) {
		next = r->next;
		cfs_route_free(r);
	}
	fs->routes = NULL;
}

/* How many routes point at this worker (it stays connected while any do). */
int
cfs_routes_on_worker(struct cfs *fs, const char *worker)
{
	struct cfs_route *r;
	int n = 0;

	pthread_rwlock_rdlock(&fs->route_lock);
	for (r = fs->routes; r != NULL; r = r->next)
		n += strcmp(r->ep.name, worker) == 0;
	pthread_rwlock_unlock(&fs->route_lock);
	return n;
}

/* Fields that request threads read are changed under the write lock. */
void
cfs_route_set(struct cfs *fs, struct cfs_route *r, uid_t uid, gid_t gid,
    int watched)
{
	pthread_rwlock_wrlock(&fs->route_lock);
	r->uid = uid;
	r->gid = gid;
	r->watched = watched;
	pthread_rwlock_unlock(&fs->route_lock);
}

/* Any thread: lane `lane` of the worker pushes for the route dir (or not). */
void
cfs_route_set_push(struct cfs *fs, const char *dir, const char *worker,
    int lane, int on)
{
	struct cfs_route *r;

	pthread_rwlock_wrlock(&fs->route_lock);
	for (r = fs->routes; r != NULL; r = r->next) {
		if (strcmp(r->dir, dir) != 0 || strcmp(r->ep.name, worker) != 0)
			continue;
		if (on)
			r->push_lanes |= 1u << lane;
		else
			r->push_lanes &= ~(1u << lane);
	}
	pthread_rwlock_unlock(&fs->route_lock);
}

/* Any thread: the lane's connection to the worker is gone. */
void
cfs_routes_push_off(struct cfs *fs, const char *worker, int lane)
{
	struct cfs_route *r;

	pthread_rwlock_wrlock(&fs->route_lock);
	for (r = fs->routes; r != NULL; r = r->next)
		if (strcmp(r->ep.name, worker) == 0)
			r->push_lanes &= ~(1u << lane);
	pthread_rwlock_unlock(&fs->route_lock);
}

/*
 * Any thread: the folders the worker watches for us (copies; caller frees
 * all). A route not watched yet is left out: a PUSH creates the folder on
 * the worker as a WATCH does, and a route withdrawn before its WATCH went
 * out owes that worker nothing, so it must not get one either.
 */
char **
cfs_routes_watched_on(struct cfs *fs, const char *worker, size_t *n)
{
	struct cfs_route *r;
	char **dirs = NULL;

	*n = 0;
	pthread_rwlock_rdlock(&fs->route_lock);
	for (r = fs->routes; r != NULL; r = r->next) {
		if (strcmp(r->ep.name, worker) != 0 || !r->watched)
			continue;
		dirs = cpx_xrealloc(dirs, (*n + 1) * sizeof *dirs);
		dirs[(*n)++] = cpx_xstrdup(r->dir);
	}
	pthread_rwlock_unlock(&fs->route_lock);
	return dirs;
}

/* The endpoint the routes give for a worker (a copy), or -ENOENT. */
int
cfs_routes_endpoint(struct cfs *fs, const char *worker,
    struct cpx_endpoint *ep)
{
	struct cfs_route *r;
	int error = -ENOENT;

	pthread_rwlock_rdlock(&fs->route_lock);
	for (r = fs->routes; r != NULL; r = r->next) {
		if (strcmp(r->ep.name, worker) == 0) {
			cpx_endpoint_copy(ep, &r->ep);
			error = 0;
			break;
		}
	}
	pthread_rwlock_unlock(&fs->route_lock);
	return error;
}
