/* fuse_pending.c — deletes owed to workers: bookkeeping and persistence. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cfs.h"

static struct cfs *
new_fs(void)
{
	struct cfs *fs = cpx_xcalloc(1, sizeof *fs);

	pthread_rwlock_init(&fs->route_lock, NULL);
	return fs;
}

static void
free_fs(struct cfs *fs)
{
	cfs_pending_free(fs);
	cfs_routes_free(fs);
	pthread_rwlock_destroy(&fs->route_lock);
	free(fs);
}

static struct cpx_endpoint
endpoint(const char *name)
{
	struct cpx_endpoint ep = { .name = (char *)name,
		.host = (char *)"10.0.0.11", .port = 2222,
		.user = (char *)"cpx", .host_key = (char *)"ssh-ed25519 AAAAC3" };

	return ep;
}

/* One owed delete per folder and worker; a new route there drops it. */
static void
test_bookkeeping(void **state)
{
	struct cfs *fs = new_fs();
	struct cpx_endpoint w1 = endpoint("w1"), w2 = endpoint("w2");
	struct cfs_pending *p;

	cfs_pending_add(fs, "T/S/a", &w1, 0, "test");
	cfs_pending_add(fs, "T/S/a", &w2, 1, "test");
	cfs_pending_add(fs, "T/S/b", &w1, 1, "test");
	assert_int_equal(cfs_pending_on_worker(fs, "w1"), 2);
	assert_int_equal(cfs_pending_on_worker(fs, "w2"), 1);
	assert_int_equal(cfs_pending_on_worker(fs, "w3"), 0);
	/* Owed again: a delete by PMS outranks "only if empty". */
	p = cfs_pending_find(fs, "T/S/a", "w1");
	assert_non_null(p);
	assert_false(p->tree);
	p->tries = 3;
	cfs_pending_add(fs, "T/S/a", &w1, 1, "test");
	assert_ptr_equal(cfs_pending_find(fs, "T/S/a", "w1"), p);
	assert_true(p->tree);
	assert_int_equal(p->tries, 0);
	cfs_pending_add(fs, "T/S/a", &w1, 0, "test");
	assert_true(p->tree);
	assert_int_equal(cfs_pending_on_worker(fs, "w1"), 2);
	/* Routed to w1 again: only w1's delete of that folder goes. */
	assert_int_equal(cfs_pending_drop(fs, "T/S/a", "w1"), 1);
	assert_int_equal(cfs_pending_drop(fs, "T/S/a", "w1"), 0);
	assert_null(cfs_pending_find(fs, "T/S/a", "w1"));
	assert_non_null(cfs_pending_find(fs, "T/S/a", "w2"));
	assert_non_null(cfs_pending_find(fs, "T/S/b", "w1"));
	free_fs(fs);
}

/* Saved with the routes and read back, the owed deletes are the same. */
static void
test_persist_roundtrip(void **state)
{
	struct cfs *fs = new_fs(), *back = new_fs();
	struct cpx_endpoint w1 = endpoint("w1"), w2 = endpoint("w2");
	struct cfs_pending *list = NULL, *p;
	char *json, *cause = NULL;

	cfs_pending_add(fs, "T/S/a", &w1, 1, "test");
	cfs_pending_add(fs, "T/S/b\\\"q", &w2, 0, "test");
	fs->pending->tries = 4;
	fs->pending->since = 1700000000;
	json = cfs_routes_encode(fs);
	assert_int_equal(cfs_pending_decode(json, strlen(json), &list, &cause),
	    0);
	assert_null(cause);
	cfs_pending_restore(back, list);
	free(json);
	p = cfs_pending_find(back, "T/S/a", "w1");
	assert_non_null(p);
	assert_true(p->tree);
	assert_int_equal(p->tries, 4);
	assert_int_equal(p->since, 1700000000);
	assert_string_equal(p->ep.host, "10.0.0.11");
	assert_int_equal(p->ep.port, 2222);
	assert_string_equal(p->ep.host_key, "ssh-ed25519 AAAAC3");
	assert_int_equal(p->inflight, 0);
	p = cfs_pending_find(back, "T/S/b\\\"q", "w2");
	assert_non_null(p);
	assert_false(p->tree);
	assert_ptr_equal(back->pending->next, p);	/* order kept */
	assert_null(p->next);
	/* Restoring the same again adds nothing twice. */
	json = cfs_routes_encode(fs);
	assert_int_equal(cfs_pending_decode(json, strlen(json), &list, &cause),
	    0);
	cfs_pending_restore(back, list);
	assert_int_equal(cfs_pending_on_worker(back, "w1"), 1);
	assert_int_equal(cfs_pending_on_worker(back, "w2"), 1);
	free(json);
	free_fs(fs);
	free_fs(back);
}

/* Files of older versions have none; malformed ones are refused whole. */
static void
test_decode(void **state)
{
	static const char *const bad[] = {
		"", "[]", "{\"deletes\":{}}", "{\"deletes\":[1]}",
		"{\"deletes\":[{\"dir\":\"..\",\"worker\":{\"name\":\"w\","
		    "\"host\":\"h\",\"port\":22,\"user\":\"u\",\"host_key\":"
		    "\"k\"},\"empty_only\":false,\"since\":1,\"tries\":0}]}",
		"{\"deletes\":[{\"dir\":\"a\",\"worker\":{\"name\":\"\","
		    "\"host\":\"h\",\"port\":22,\"user\":\"u\",\"host_key\":"
		    "\"k\"},\"empty_only\":false,\"since\":1,\"tries\":0}]}",
		"{\"deletes\":[{\"dir\":\"a\",\"worker\":{\"name\":\"w\"},"
		    "\"empty_only\":false,\"since\":1,\"tries\":0}]}",
		"{\"deletes\":[{\"dir\":\"a\",\"worker\":{\"name\":\"w\","
		    "\"host\":\"h\",\"port\":22,\"user\":\"u\",\"host_key\":"
		    "\"k\"},\"empty_only\":false,\"since\":1,\"tries\":99}]}",
		"{\"deletes\":[{\"dir\":\"a\",\"worker\":{\"name\":\"w\","
		    "\"host\":\"h\",\"port\":22,\"user\":\"u\",\"host_key\":"
		    "\"k\"},\"empty_only\":1,\"since\":1,\"tries\":0}]}",
		"{\"deletes\":[{\"dir\":\"a\",\"worker\":{\"name\":\"w\","
		    "\"host\":\"h\",\"port\":22,\"user\":\"u\",\"host_key\":"
		    "\"k\"},\"empty_only\":true,\"since\":-5,\"tries\":0}]}",
	};
	const char *old = "{\"routes\":[]}";
	struct cfs_pending *list;
	char *cause = NULL;
	size_t i;

	assert_int_equal(cfs_pending_decode(old, strlen(old), &list, &cause),
	    0);
	assert_null(list);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		list = (struct cfs_pending *)1;
		assert_int_equal(cfs_pending_decode(bad[i], strlen(bad[i]),
		    &list, &cause), -EINVAL);
		assert_null(list);
		assert_non_null(cause);	/* every refusal says why */
		free(cause);
		cause = NULL;
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bookkeeping),
		cmocka_unit_test(test_persist_roundtrip),
		cmocka_unit_test(test_decode),
	};

	cpx_log_set_level(CPX_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
