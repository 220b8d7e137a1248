/* agent_job_argv.c — the worker's argv and environment for a job. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "job.h"

static struct job_argv_opts base = {
	.transcoder = "/usr/lib/plexmediaserver/Plex Transcoder",
	.pms_root = "/transcode",
	.worker_root = "/transcode",
	.pms_port = 32400,
};

static size_t
count(char **v)
{
	size_t n = 0;

	while (v[n] != NULL)
		n++;
	return n;
}

static void
test_plain_copy(void **state)
{
	char *in[] = { "-i", "/m/a b.mkv", "", "$x;`y`\n", "\xff\xfe" };
	char **out = agent_job_argv(in, 5, &base);
	size_t i;

	assert_int_equal(count(out), 6);
	assert_string_equal(out[0], base.transcoder);
	for (i = 0; i < 5; i++)
		assert_string_equal(out[i + 1], in[i]);
	agent_strv_free(out);
}

static void
test_transcode_root_and_path_map(void **state)
{
	struct job_argv_opts o = base;
	struct agent_path_map map;
	char *cause = NULL;
	char *in[] = { "-i", "/transcode/Transcode/Sessions/s/temp-0.srt",
	    "/transcode", "/transcodeX/a", "-i", "/media/tv/x.mkv", "-i",
	    "/mediax/y", "-i", "file:/data/z", "/media/not-an-input.mkv",
	    "-i", "/data/aac_lc/aac_lc.mkv" };
	char **out;

	assert_int_equal(agent_path_map_parse("/media=/mnt/nas/media, "
	    "/data=/srv/data", &map, &cause), 0);
	o.worker_root = "/srv/plex-transcode/";
	o.path_map = &map;
	out = agent_job_argv(in, 13, &o);
	assert_string_equal(out[2],
	    "/srv/plex-transcode/Transcode/Sessions/s/temp-0.srt");
	assert_string_equal(out[3], "/srv/plex-transcode");
	assert_string_equal(out[4], "/transcodeX/a");	/* not a path prefix */
	assert_string_equal(out[6], "/mnt/nas/media/tv/x.mkv");
	assert_string_equal(out[8], "/mediax/y");
	assert_string_equal(out[10], "file:/srv/data/z");
	/* Only inputs are mapped; codec names inside paths stay as they are. */
	assert_string_equal(out[11], "/media/not-an-input.mkv");
	assert_string_equal(out[13], "/srv/data/aac_lc/aac_lc.mkv");
	agent_strv_free(out);
	agent_path_map_free(&map);
}

static void
test_callback_urls(void **state)
{
	struct job_argv_opts o = base;
	char *in[] = { "-progressurl",
	    "http://127.0.0.1:32400/video/:/transcode/session/a/b/progress",
	    "http://localhost:32400/x", "http://[::1]:32400/y",
	    "http://127.0.0.1:32401/z", "http://10.0.0.1:32400/w",
	    "see http://127.0.0.1:32400/" };
	char **out;

	o.callback_port = 41234;
	out = agent_job_argv(in, 7, &o);
	assert_string_equal(out[2],
	    "http://127.0.0.1:41234/video/:/transcode/session/a/b/progress");
	assert_string_equal(out[3], "http://127.0.0.1:41234/x");
	assert_string_equal(out[4], "http://127.0.0.1:41234/y");
	assert_string_equal(out[5], in[4]);
	assert_string_equal(out[6], in[5]);
	assert_string_equal(out[7], in[6]);
	agent_strv_free(out);
}

static void
test_verbose_and_hwaccel(void **state)
{
	struct job_argv_opts o = base;
	char *in[] = { "-loglevel", "quiet", "-loglevel_plex", "error", "-i",
	    "a" };
	char *has[] = { "-hwaccel", "cuda", "-i", "a" };
	char **out;

	o.verbose = 1;
	o.hwaccel = "vaapi";
	out = agent_job_argv(in, 6, &o);
	assert_int_equal(count(out), 9);
	assert_string_equal(out[1], "-hwaccel");
	assert_string_equal(out[2], "vaapi");
	assert_string_equal(out[4], "verbose");
	assert_string_equal(out[6], "verbose");
	agent_strv_free(out);
	/* PMS's own choice wins. */
	out = agent_job_argv(has, 4, &o);
	assert_int_equal(count(out), 5);
	assert_string_equal(out[2], "cuda");
	agent_strv_free(out);
}

static char *
fake_own(const char *name)
{
	if (strcmp(name, "FFMPEG_EXTERNAL_LIBS") == 0)
		return "/worker/codecs";
	if (strcmp(name, "HOME") == 0)
		return "/home/w";
	return NULL;
}

static const char *
lookup(char **env, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; env[i] != NULL; i++) {
		if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
			return env[i] + n + 1;
	}
	return NULL;
}

static void
test_env_policy(void **state)
{
	char *in[] = { "X_PLEX_TOKEN=tok", "FFMPEG_EXTERNAL_LIBS=/pms/codecs",
	    "LIBVA_DRIVERS_PATH=/pms/cache/va", "EAE_ROOT=/tmp/pms-x",
	    "CLUSTERPLEX_TOKEN=secret", "LD_PRELOAD=/evil.so", "PATH=/pms/bin",
	    "HOME=/pms", "SSH_CONNECTION=x", "PWD=/pms/cwd", "LANG=C.UTF-8",
	    "PLEX_MEDIA_SERVER_INFO_MODEL=x86_64", "garbage", "=x" };
	char **env = agent_job_env(in, 14, "/w/Transcode/Sessions/s", fake_own);

	assert_string_equal(lookup(env, "X_PLEX_TOKEN"), "tok");
	assert_string_equal(lookup(env, "LANG"), "C.UTF-8");
	assert_string_equal(lookup(env, "FFMPEG_EXTERNAL_LIBS"),
	    "/worker/codecs");
	assert_string_equal(lookup(env, "HOME"), "/home/w");
	assert_string_equal(lookup(env, "PWD"), "/w/Transcode/Sessions/s");
	assert_non_null(lookup(env, "PATH"));
	assert_string_not_equal(lookup(env, "PATH"), "/pms/bin");
	assert_null(lookup(env, "LIBVA_DRIVERS_PATH"));
	assert_null(lookup(env, "EAE_ROOT"));
	assert_null(lookup(env, "PLEX_MEDIA_SERVER_INFO_MODEL"));
	assert_null(lookup(env, "CLUSTERPLEX_TOKEN"));
	assert_null(lookup(env, "LD_PRELOAD"));
	assert_null(lookup(env, "SSH_CONNECTION"));
	assert_int_equal(count(env), 6);
	agent_strv_free(env);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_copy),
		cmocka_unit_test(test_transcode_root_and_path_map),
		cmocka_unit_test(test_callback_urls),
		cmocka_unit_test(test_verbose_and_hwaccel),
		cmocka_unit_test(test_env_policy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
