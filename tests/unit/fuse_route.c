/* fuse_route.c — route messages, the persisted table, matching and nesting. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cfs.h"

#define WORKER "{\"name\":\"w1\",\"host\":\"10.0.0.11\",\"port\":22," \
    "\"user\":\"cpx\",\"host_key\":\"ssh-ed25519 AAAAC3Nza\"}"

static int
parse(const char *json, int del, struct cfs_route_spec *rs)
{
	char *cause = NULL;
	int error = cfs_route_spec_parse((const uint8_t *)json, strlen(json),
	    del, rs, &cause);

	if (error != 0)
		assert_non_null(cause);	/* every refusal says why */
	free(cause);
	return error;
}

static void
test_add_valid(void **state)
{
	struct cfs_route_spec rs;

	assert_int_equal(parse("{\"dir\":\"Transcode/Sessions/plex-transcode-a\","
	    "\"job\":\"j1\",\"worker\":" WORKER "}", 0, &rs), 0);
	assert_string_equal(rs.dir, "Transcode/Sessions/plex-transcode-a");
	assert_string_equal(rs.job, "j1");
	assert_string_equal(rs.ep.name, "w1");
	assert_string_equal(rs.ep.host, "10.0.0.11");
	assert_int_equal(rs.ep.port, 22);
	cfs_route_spec_free(&rs);
	assert_int_equal(parse("{\"dir\":\"x\"}", 1, &rs), 0);
	cfs_route_spec_free(&rs);
}

static void
test_refused(void **state)
{
	static const char *const bad[] = {
		"", "[]", "{}", "null", "{\"dir\":5}",
		"{\"dir\":\"\",\"job\":\"j\",\"worker\":" WORKER "}",
		"{\"dir\":\"/abs\",\"job\":\"j\",\"worker\":" WORKER "}",
		"{\"dir\":\"a/../b\",\"job\":\"j\",\"worker\":" WORKER "}",
		"{\"dir\":\"a//b\",\"job\":\"j\",\"worker\":" WORKER "}",
		"{\"dir\":\"./a\",\"job\":\"j\",\"worker\":" WORKER "}",
		"{\"dir\":\"a\",\"worker\":" WORKER "}",
		"{\"dir\":\"a\",\"job\":\"j\"}",
		"{\"dir\":\"a\",\"job\":\"j\",\"worker\":[]}",
		"{\"dir\":\"a\",\"job\":\"j\",\"worker\":{\"name\":\"w\"}}",
		"{\"dir\":\"a\",\"job\":\"j\",\"worker\":{\"name\":\"\",\"host\":"
		    "\"h\",\"port\":22,\"user\":\"u\",\"host_key\":\"k\"}}",
		"{\"dir\":\"a\",\"job\":\"j\",\"worker\":{\"name\":\"w\",\"host\":"
		    "\"h\",\"port\":0,\"user\":\"u\",\"host_key\":\"k\"}}",
	};
	struct cfs_route_spec rs;
	size_t i;

	for (i = 0; i < CPX_ARRAY_SIZE(bad); i++) {
		assert_int_not_equal(parse(bad[i], 0, &rs), 0);
		assert_null(rs.dir);
	}
	assert_int_not_equal(parse("{\"dir\":\"../x\"}", 1, &rs), 0);
}

static struct cfs *
new_fs(void)
{
	struct cfs *fs = cpx_xcalloc(1, sizeof *fs);

	pthread_rwlock_init(&fs->route_lock, NULL);
	fs->root_uid = 1000;
	fs->root_gid = 1001;
	return fs;
}

static struct cfs_route *
add(struct cfs *fs, const char *dir, const char *job, const char *worker,
    struct cfs_route **replaced)
{
	struct cfs_route_spec rs;
	char *json = cpx_xprintf("{\"dir\":\"%s\",\"job\":\"%s\",\"worker\":"
	    "{\"name\":\"%s\",\"host\":\"h\",\"port\":22,\"user\":\"u\","
	    "\"host_key\":\"k\"}}", dir, job, worker);
	struct cfs_route *r;

	assert_int_equal(parse(json, 0, &rs), 0);
	r = cfs_route_insert(fs, &rs, replaced);
	cfs_route_spec_free(&rs);
	free(json);
	return r;
}

static void
test_match(void **state)
{
	struct cfs *fs = new_fs();
	struct cfs_route *old;
	struct cfs_match m;

	assert_non_null(add(fs, "T/S/a", "j1", "w1", &old));
	assert_null(old);
	assert_non_null(add(fs, "T/S/b", "j2", "w2", &old));
	assert_int_equal(cfs_route_match(fs, "T/S/a", &m), 1);
	assert_true(m.is_dir);
	assert_string_equal(m.worker, "w1");
	assert_int_equal(m.uid, 1000);
	cfs_match_free(&m);
	assert_int_equal(cfs_route_match(fs, "T/S/b/chunk-1", &m), 1);
	assert_false(m.is_dir);
	assert_string_equal(m.worker, "w2");
	assert_string_equal(m.dir, "T/S/b");
	cfs_match_free(&m);
	/* Prefixes of names are not folders. */
	assert_int_equal(cfs_route_match(fs, "T/S/ab", &m), 0);
	assert_int_equal(cfs_route_match(fs, "T/S", &m), 0);
	assert_int_equal(cfs_route_match(fs, "", &m), 0);
	assert_int_equal(cfs_routes_on_worker(fs, "w1"), 1);
	cfs_routes_free(fs);
	free(fs);
}

/* A lane that comes up pushes only for folders the worker watches already. */
static void
test_watched_on(void **state)
{
	struct cfs *fs = new_fs();
	struct cfs_route *a, *old;
	char **dirs;
	size_t n;

	a = add(fs, "T/S/a", "j1", "w1", &old);
	assert_non_null(add(fs, "T/S/b", "j2", "w1", &old));
	assert_non_null(add(fs, "T/S/c", "j3", "w2", &old));
	dirs = cfs_routes_watched_on(fs, "w1", &n);
	assert_int_equal(n, 0);
	free(dirs);
	cfs_route_set(fs, a, 0, 0, 1);
	dirs = cfs_routes_watched_on(fs, "w1", &n);
	assert_int_equal(n, 1);
	assert_string_equal(dirs[0], "T/S/a");
	free(dirs[0]);
	free(dirs);
	cfs_routes_free(fs);
	free(fs);
}

static void
test_nesting_and_replace(void **state)
{
	struct cfs *fs = new_fs();
	struct cfs_route *r, *old;

	assert_non_null(add(fs, "T/S/a", "j1", "w1", &old));
	assert_null(add(fs, "T/S/a/inner", "j2", "w1", &old));
	assert_null(add(fs, "T/S", "j3", "w1", &old));
	r = add(fs, "T/S/a", "j4", "w2", &old);	/* a retry elsewhere */
	assert_non_null(r);
	assert_non_null(old);
	assert_string_equal(old->job, "j1");
	cfs_route_free(old);
	assert_ptr_equal(cfs_route_find(fs, "T/S/a"), r);
	assert_int_equal(cfs_routes_on_worker(fs, "w1"), 0);
	r = cfs_route_unlink(fs, "T/S/a");
	assert_non_null(r);
	cfs_route_free(r);
	assert_null(cfs_route_unlink(fs, "T/S/a"));
	cfs_routes_free(fs);
	free(fs);
}

static void
test_persist_roundtrip(void **state)
{
	struct cfs *fs = new_fs();
	struct cfs_route_spec *specs;
	struct cfs_route *old;
	char *json, *cause = NULL;
	size_t n;

	add(fs, "T/S/a", "j1", "w1", &old);
	add(fs, "T/S/b\\\"q", "j2", "w2", &old);
	json = cfs_routes_encode(fs);
	assert_int_equal(cfs_routes_decode(json, strlen(json), &specs, &n,
	    &cause), 0);
	assert_int_equal(n, 2);
	assert_true((strcmp(specs[0].dir, "T/S/b\"q") == 0 &&
	    strcmp(specs[1].dir, "T/S/a") == 0) ||
	    (strcmp(specs[1].dir, "T/S/b\"q") == 0 &&
	    strcmp(specs[0].dir, "T/S/a") == 0));
	cfs_route_spec_free(&specs[0]);
	cfs_route_spec_free(&specs[1]);
	free(specs);
	free(json);
	json = "{\"routes\":[{\"dir\":\"..\"}]}";
	assert_int_not_equal(cfs_routes_decode(json, strlen(json), &specs, &n,
	    &cause), 0);
	free(cause);
	cfs_routes_free(fs);
	free(fs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_valid),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_watched_on),
		cmocka_unit_test(test_nesting_and_replace),
		cmocka_unit_test(test_persist_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
