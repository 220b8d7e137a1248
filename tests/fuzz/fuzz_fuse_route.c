/*
 * fuzz_fuse_route.c — route control messages (ROUTE_ADD, ROUTE_DEL) and
 * the persisted route table (routes and owed deletes), from hostile bytes.
 *
 * What parses must be safe to route: a clean relative folder and a full
 * worker endpoint. A parsed route, saved and read back, is the same route;
 * so are the owed deletes, and never the transcode root.
 */

#include <stdlib.h>
#include <string.h>

#include "cfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_spec(const struct cfs_route_spec *rs, int del)
{
	if (rs->dir == NULL || !cpx_path_clean_relative(rs->dir))
		abort();
	if (del)
		return;
	if (rs->job == NULL || rs->ep.name == NULL || *rs->ep.name == '\0' ||
	    rs->ep.host == NULL || *rs->ep.host == '\0' || rs->ep.port < 1 ||
	    rs->ep.port > 65535 || rs->ep.user == NULL ||
	    rs->ep.host_key == NULL)
		abort();
}

/* Saved and loaded again, the table holds the same route. */
static void
roundtrip(const struct cfs_route_spec *rs)
{
	struct cfs fs;
	struct cfs_route *r, *old;
	struct cfs_route_spec *back = NULL;
	char *json, *cause = NULL;
	size_t n = 0, i;

	memset(&fs, 0, sizeof fs);
	pthread_rwlock_init(&fs.route_lock, NULL);
	r = cfs_route_insert(&fs, rs, &old);
	if (r == NULL || old != NULL)
		abort();
	json = cfs_routes_encode(&fs);
	if (cfs_routes_decode(json, strlen(json), &back, &n, &cause) != 0 ||
	    n != 1 || strcmp(back[0].dir, rs->dir) != 0 ||
	    strcmp(back[0].job, rs->job) != 0 ||
	    strcmp(back[0].ep.name, rs->ep.name) != 0 ||
	    strcmp(back[0].ep.host_key, rs->ep.host_key) != 0 ||
	    back[0].ep.port != rs->ep.port)
		abort();
	for (i = 0; i < n; i++)
		cfs_route_spec_free(&back[i]);
	free(back);
	free(json);
	free(cause);
	cfs_routes_free(&fs);
	pthread_rwlock_destroy(&fs.route_lock);
}

/* Owed deletes: clean folders, named workers; saved and loaded, the same. */
static void
check_deletes(struct cfs_pending *list)
{
	struct cfs fs;
	struct cfs_pending *p, *back = NULL, *q;
	char *json, *cause = NULL;

	for (p = list; p != NULL; p = p->next)
		if (!cpx_path_clean_relative(p->dir) || *p->dir == '\0' ||
		    p->ep.name == NULL || *p->ep.name == '\0')
			abort();
	memset(&fs, 0, sizeof fs);
	pthread_rwlock_init(&fs.route_lock, NULL);
	cfs_pending_restore(&fs, list);
	json = cfs_routes_encode(&fs);
	if (cfs_pending_decode(json, strlen(json), &back, &cause) != 0)
		abort();
	for (p = fs.pending, q = back; p != NULL || q != NULL;
	    p = p->next, q = q->next)
		if (p == NULL || q == NULL || strcmp(p->dir, q->dir) != 0 ||
		    strcmp(p->ep.name, q->ep.name) != 0 || p->tree != q->tree ||
		    p->tries != q->tries || p->since != q->since)
			abort();
	cfs_pending_free_list(back);
	free(json);
	free(cause);
	cfs_pending_free(&fs);
	pthread_rwlock_destroy(&fs.route_lock);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfs_pending *list = NULL;
	struct cfs_route_spec rs, *specs = NULL;
	char *cause = NULL;
	size_t n = 0, i;
	int del;

	cpx_log_set_level(CPX_LOG_ERROR);
	for (del = 0; del <= 1; del++) {
		if (cfs_route_spec_parse(data, size, del, &rs, &cause) == 0) {
			check_spec(&rs, del);
			if (!del)
				roundtrip(&rs);
			cfs_route_spec_free(&rs);
		} else if (cause == NULL || rs.dir != NULL) {
			abort();	/* refused: with a reason, nothing kept */
		}
		free(cause);
		cause = NULL;
	}
	if (cfs_routes_decode((const char *)data, size, &specs, &n, &cause) == 0)
		for (i = 0; i < n; i++)
			check_spec(&specs[i], 0);
	for (i = 0; i < n; i++)
		cfs_route_spec_free(&specs[i]);
	free(specs);
	free(cause);
	cause = NULL;
	if (cfs_pending_decode((const char *)data, size, &list, &cause) == 0)
		check_deletes(list);
	else if (cause == NULL || list != NULL)
		abort();
	free(cause);
	return 0;
}
