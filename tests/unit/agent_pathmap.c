/* agent_pathmap.c — CLUSTERPLEX_PATH_MAP: parsing and prefix boundaries. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent.h"

static char *
map1(const char *spec, const char *path)
{
	struct agent_path_map m;
	char *cause = NULL, *out;

	assert_int_equal(agent_path_map_parse(spec, &m, &cause), 0);
	out = agent_path_map_apply(&m, path);
	agent_path_map_free(&m);
	return out;
}

static void
expect(const char *spec, const char *path, const char *want)
{
	char *got = map1(spec, path);

	if (want == NULL) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void
test_boundaries(void **state)
{
	expect("/data=/mnt/media", "/data", "/mnt/media");
	expect("/data=/mnt/media", "/data/", "/mnt/media/");
	expect("/data=/mnt/media", "/data/a b/c.mkv", "/mnt/media/a b/c.mkv");
	expect("/data=/mnt/media", "/database/x.mkv", NULL);
	expect("/data=/mnt/media", "/dat", NULL);
	expect("/data=/mnt/media", "data/x", NULL);
	expect("/data=/mnt/media", "/mnt/data/x", NULL);
	/* A trailing slash in the map changes nothing. */
	expect("/data/=/mnt/media/", "/data/x", "/mnt/media/x");
	expect("/data/=/mnt/media/", "/datax", NULL);
}

static void
test_longest_prefix_wins(void **state)
{
	const char *spec = "/data=/a,/data/tv=/b, /data/tv/kids=/c";

	expect(spec, "/data/movies/m.mkv", "/a/movies/m.mkv");
	expect(spec, "/data/tv/show.mkv", "/b/show.mkv");
	expect(spec, "/data/tv/kids/k.mkv", "/c/k.mkv");
	expect(spec, "/data/tvx/k.mkv", "/a/tvx/k.mkv");
	/* Order does not matter. */
	expect("/data/tv=/b,/data=/a", "/data/tv/x", "/b/x");
}

static void
test_root_and_escapes(void **state)
{
	expect("/=/host", "/data/x", "/host/data/x");
	expect("/mnt/host=/", "/mnt/host/data/x", "/data/x");
	expect("/mnt/host=/", "/mnt/host", "/");
	expect("/a\\,b=/c\\=d", "/a,b/x", "/c=d/x");
	expect("/with\\ space\\ =/w", "/with space /x", "/w/x");
	expect("", "/data/x", NULL);
	expect(" , ,", "/data/x", NULL);
	expect("/a=/b\n/c=/d", "/c/1", "/d/1");
}

static void
refused(const char *spec, const char *why)
{
	struct agent_path_map m;
	char *cause = NULL;

	assert_int_equal(agent_path_map_parse(spec, &m, &cause), -EINVAL);
	assert_non_null(cause);
	assert_non_null(strstr(cause, why));
	assert_int_equal(m.n, 0);
	free(cause);
}

static void
test_refused(void **state)
{
	refused("/data", "not from=to");
	refused("data=/mnt", "not an absolute path");
	refused("/data=mnt", "not an absolute path");
	refused("/data/../etc=/mnt", "component");
	refused("/data=/mnt/./x", "component");
	refused("/da//ta=/mnt", "component");
	refused("/data=/a,/data/=/b", "mapped twice");
	refused("/a=/b,oops", "not from=to");
}

static void
test_null_map(void **state)
{
	struct agent_path_map m;
	char *cause = NULL;

	assert_int_equal(agent_path_map_parse(NULL, &m, &cause), 0);
	assert_null(agent_path_map_apply(&m, "/x"));
	assert_null(agent_path_map_apply(NULL, "/x"));
	agent_path_map_free(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boundaries),
		cmocka_unit_test(test_longest_prefix_wins),
		cmocka_unit_test(test_root_and_escapes),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_null_map),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
