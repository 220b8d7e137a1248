/* fuse_node.c — the inode table: paths, lookups, forgets, renames, removals. */

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

	cfs_nodes_init(fs);
	return fs;
}

static void
free_fs(struct cfs *fs)
{
	cfs_nodes_free(fs);
	free(fs);
}

static void
assert_path(struct cfs *fs, fuse_ino_t ino, const char *want)
{
	char *p = cfs_node_path(fs, ino, NULL);

	if (want == NULL) {
		assert_null(p);
		return;
	}
	assert_non_null(p);
	assert_string_equal(p, want);
	free(p);
}

static void
test_paths(void **state)
{
	struct cfs *fs = new_fs();
	fuse_ino_t a, b, c;
	int remote = -1;
	char *p;

	assert_path(fs, FUSE_ROOT_ID, "");
	a = cfs_node_learn(fs, FUSE_ROOT_ID, "Transcode", 0);
	b = cfs_node_learn(fs, a, "Sessions", 0);
	c = cfs_node_learn(fs, b, "chunk-1.m4s", 1);
	assert_true(a > FUSE_ROOT_ID && b > a && c > b);
	assert_path(fs, c, "Transcode/Sessions/chunk-1.m4s");
	p = cfs_node_path(fs, c, &remote);
	assert_int_equal(remote, 1);
	free(p);
	/* The same name again is the same node. */
	assert_int_equal(cfs_node_learn(fs, b, "chunk-1.m4s", 1), c);
	assert_int_equal(cfs_node_find(fs, b, "chunk-1.m4s"), c);
	assert_int_equal(cfs_node_find_path(fs, "Transcode/Sessions/chunk-1.m4s"),
	    c);
	assert_int_equal(cfs_node_find_path(fs, "Transcode/Nope"), 0);
	p = cfs_child_path("", "x");
	assert_string_equal(p, "x");
	free(p);
	free_fs(fs);
}

static void
test_forget_frees_chain(void **state)
{
	struct cfs *fs = new_fs();
	fuse_ino_t a = cfs_node_learn(fs, FUSE_ROOT_ID, "a", 0);
	fuse_ino_t b = cfs_node_learn(fs, a, "b", 0);

	cfs_node_forget(fs, a, 1);	/* b still holds a */
	assert_path(fs, b, "a/b");
	assert_int_equal(fs->nnodes, 3);
	cfs_node_forget(fs, b, 1);	/* now both go */
	assert_path(fs, b, NULL);
	assert_path(fs, a, NULL);
	assert_int_equal(fs->nnodes, 1);
	/* Numbers are never reused. */
	assert_true(cfs_node_learn(fs, FUSE_ROOT_ID, "a", 0) > b);
	free_fs(fs);
}

static void
test_hold_keeps_node(void **state)
{
	struct cfs *fs = new_fs();
	fuse_ino_t f = cfs_node_learn(fs, FUSE_ROOT_ID, "f", 0);

	cfs_node_hold(fs, f, 1);
	cfs_node_forget(fs, f, 1);
	assert_path(fs, f, "f");	/* open file */
	cfs_node_hold(fs, f, 0);
	assert_path(fs, f, NULL);
	free_fs(fs);
}

static void
test_rename_moves_subtree(void **state)
{
	struct cfs *fs = new_fs();
	fuse_ino_t d1 = cfs_node_learn(fs, FUSE_ROOT_ID, "d1", 0);
	fuse_ino_t d2 = cfs_node_learn(fs, FUSE_ROOT_ID, "d2", 0);
	fuse_ino_t sub = cfs_node_learn(fs, d1, "sub", 0);
	fuse_ino_t f = cfs_node_learn(fs, sub, "f", 0);
	fuse_ino_t victim = cfs_node_learn(fs, d2, "new", 0);

	cfs_node_moved(fs, d1, "sub", d2, "new");
	assert_path(fs, f, "d2/new/f");
	assert_path(fs, sub, "d2/new");
	assert_path(fs, victim, NULL);	/* replaced by the rename */
	assert_int_equal(cfs_node_find(fs, d1, "sub"), 0);
	assert_int_equal(cfs_node_find(fs, d2, "new"), sub);
	/* d1 lost its child reference but keeps its lookup. */
	assert_path(fs, d1, "d1");
	free_fs(fs);
}

static void
test_removed(void **state)
{
	struct cfs *fs = new_fs();
	fuse_ino_t d = cfs_node_learn(fs, FUSE_ROOT_ID, "d", 0);
	fuse_ino_t f = cfs_node_learn(fs, d, "f", 0);
	fuse_ino_t again;

	cfs_node_removed(fs, d, "f");
	assert_path(fs, f, NULL);
	assert_int_equal(cfs_node_find(fs, d, "f"), 0);
	again = cfs_node_learn(fs, d, "f", 1);
	assert_true(again != f);	/* a new file of the same name */
	cfs_node_forget(fs, f, 1);	/* the old one goes quietly */
	assert_path(fs, again, "d/f");
	free_fs(fs);
}

static void
visit(struct cfs *fs, fuse_ino_t parent, const char *name, fuse_ino_t ino,
    void *arg)
{
	int *n = arg;

	(*n)++;
	assert_true(strcmp(name, "x") == 0 || strcmp(name, "y") == 0 ||
	    strcmp(name, "z") == 0);
}

static void
test_walk_under(void **state)
{
	struct cfs *fs = new_fs();
	fuse_ino_t s = cfs_node_learn(fs, FUSE_ROOT_ID, "s", 0);
	fuse_ino_t x = cfs_node_learn(fs, s, "x", 1);
	int n = 0;

	cfs_node_learn(fs, s, "y", 1);
	cfs_node_learn(fs, x, "z", 1);
	cfs_node_learn(fs, FUSE_ROOT_ID, "other", 0);
	cfs_node_walk_under(fs, "s", visit, &n);
	assert_int_equal(n, 3);
	n = 0;
	cfs_node_walk_under(fs, "missing", visit, &n);
	assert_int_equal(n, 0);
	free_fs(fs);
}

/* Many nodes: the tables grow and every one is still found. */
static void
test_many(void **state)
{
	struct cfs *fs = new_fs();
	fuse_ino_t d = cfs_node_learn(fs, FUSE_ROOT_ID, "d", 0), *inos;
	char name[32];
	int i, n = 10000;

	inos = cpx_xcalloc((size_t)n, sizeof *inos);
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof name, "chunk-%05d", i);
		inos[i] = cfs_node_learn(fs, d, name, 1);
	}
	for (i = 0; i < n; i += 997) {
		snprintf(name, sizeof name, "d/chunk-%05d", i);
		assert_int_equal(cfs_node_find_path(fs, name), inos[i]);
		assert_path(fs, inos[i], name);
	}
	for (i = 0; i < n; i++)
		cfs_node_forget(fs, inos[i], 1);
	assert_int_equal(fs->nnodes, 2);
	free(inos);
	free_fs(fs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_forget_frees_chain),
		cmocka_unit_test(test_hold_keeps_node),
		cmocka_unit_test(test_rename_moves_subtree),
		cmocka_unit_test(test_removed),
		cmocka_unit_test(test_walk_under),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
