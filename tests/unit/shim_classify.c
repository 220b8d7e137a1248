/* shim_classify.c — which jobs may leave the PMS host, callback rewrite, env. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shim.h"

#define SESS "/transcode/Transcode/Sessions/plex-transcode-abc-123"

static struct shim_config cfg;

static int
setup(void **state)
{
	memset(&cfg, 0, sizeof cfg);
	cfg.local_jobs = SHIM_LOCAL_CREDITS | SHIM_LOCAL_THUMBNAILS;
	return 0;
}

static const char *
classify(const char *cwd, char **argv, struct shim_job *job)
{
	int argc = 0;

	while (argv[argc] != NULL)
		argc++;
	assert_int_equal(shim_classify(&cfg, cwd, argc, argv, job), 0);
	return job->local;
}

/* The DASH fixture from shared/plex/jobs: relative outputs, URL callbacks. */
static void
test_dash_runs_remotely(void **state)
{
	char *argv[] = { "-codec:0", "h264", "-i",
	    "/data/media/anime/Another/Season 1/ep.mkv", "-map", "0:0", "-f",
	    "dash", "-init_seg_name", "init-stream$RepresentationID$.m4s",
	    "-manifest_name", "http://127.0.0.1:32400/video/:/transcode/"
	    "session/whrtmao0/d5b670a4/manifest", "dash", "-progressurl",
	    "http://127.0.0.1:32400/video/:/transcode/session/whrtmao0/"
	    "d5b670a4/progress", NULL };
	struct shim_job job;

	assert_null(classify(SESS, argv, &job));
	assert_string_equal(job.root, "/transcode");
	assert_string_equal(job.session_dir,
	    "Transcode/Sessions/plex-transcode-abc-123");
	assert_string_equal(job.session, "whrtmao0");
	shim_job_free(&job);
}

/* An SRT that PMS extracted into the session folder is an input. */
static void
test_input_in_session_folder(void **state)
{
	char *argv[] = { "-i", "/data/path/to/file", "-i", SESS "/temp-0.srt",
	    "-f", "ssegment", "media-%05d.ts", NULL };
	struct shim_job job;

	assert_null(classify(SESS, argv, &job));
	assert_string_equal(job.session, "plex-transcode-abc-123");
	shim_job_free(&job);
}

static void
test_detection_stays_local(void **state)
{
	char *argv[] = { "-i", "/media/S01E01.mkv", "-f", "flac", "-t", "30",
	    "/transcode/Transcode/Detection/some-uuid", NULL };
	struct shim_job job;

	/* Not a session folder at all. */
	assert_non_null(classify("/transcode/Transcode/Detection", argv, &job));
	shim_job_free(&job);
	/* And from a session folder it writes outside of it. */
	assert_non_null(strstr(classify(SESS, argv, &job), "outside"));
	shim_job_free(&job);
}

static void
test_optimize_writes_library(void **state)
{
	char *argv[] = { "-i", "/media/movie.mkv", "-f", "mp4",
	    "file:/media/Plex Versions/Optimized/.inProgress/movie.mp4", NULL };
	struct shim_job job;

	assert_non_null(classify(SESS, argv, &job));
	shim_job_free(&job);
}

static void
test_other_transcode_input(void **state)
{
	char *argv[] = { "-i", "/transcode/Transcode/Sessions/other/x.srt",
	    "out.ts", NULL };
	struct shim_job job;

	assert_non_null(strstr(classify(SESS, argv, &job), "another part"));
	shim_job_free(&job);
}

static void
test_dev_null_output(void **state)
{
	char *argv[] = { "-i", "/media/a.mkv", "-f", "null", "/dev/null", NULL };
	struct shim_job job;

	assert_null(classify(SESS, argv, &job));
	shim_job_free(&job);
}

static void
test_credits(void **state)
{
	char *argv[] = { "-i", "/media/a.mkv", "out.flac", NULL };
	struct shim_job job;
	char cwd[] = "/transcode/Transcode/Sessions/PlexCreditsDetection-1";

	assert_non_null(strstr(classify(cwd, argv, &job), "credits"));
	shim_job_free(&job);
	cfg.local_jobs = 0;
	/* Not kept local by kind, but still a session folder: remote. */
	assert_null(classify(cwd, argv, &job));
	shim_job_free(&job);
}

static void
test_thumbnails_and_eae(void **state)
{
	char *thumbs[] = { "-i", "/media/a.mkv", "-f", "image2", "img-%06d.jpg",
	    NULL };
	char *eae[] = { "-codec:1", "eac3_eae", "-i", "/media/a.mkv",
	    "-eae_prefix:1", "x", "out.ts", NULL };
	struct shim_job job;

	assert_non_null(strstr(classify(SESS, thumbs, &job), "thumbnail"));
	shim_job_free(&job);
	assert_null(classify(SESS, eae, &job));
	shim_job_free(&job);
	cfg.local_jobs = SHIM_LOCAL_EAE;
	assert_non_null(strstr(classify(SESS, eae, &job), "EAE"));
	shim_job_free(&job);
	assert_null(classify(SESS, thumbs, &job));
	shim_job_free(&job);
}

static void
test_session_folder_shapes(void **state)
{
	char *argv[] = { "out.ts", NULL };
	struct shim_job job;

	assert_non_null(classify("/transcode/Transcode/Sessions", argv, &job));
	shim_job_free(&job);
	assert_non_null(classify(SESS "/sub", argv, &job));
	shim_job_free(&job);
	assert_non_null(classify("/transcode/Transcode/Sessions/..", argv,
	    &job));
	shim_job_free(&job);
	/* Only canonical paths (what getcwd gives) are understood. */
	assert_non_null(classify("//Transcode/Sessions/x", argv, &job));
	shim_job_free(&job);
	assert_non_null(classify("/t/Transcode//Sessions/x", argv, &job));
	shim_job_free(&job);
	/* The last "/Transcode/Sessions/" wins when names repeat. */
	assert_null(classify("/a/Transcode/Sessions/x/Transcode/Sessions/y",
	    argv, &job));
	assert_string_equal(job.root, "/a/Transcode/Sessions/x");
	shim_job_free(&job);
	/* With CLUSTERPLEX_TRANSCODE_DIR the root is fixed. */
	cfg.transcode_dir = "/transcode";
	assert_null(classify(SESS, argv, &job));
	shim_job_free(&job);
	assert_non_null(classify("/elsewhere/Transcode/Sessions/s", argv, &job));
	shim_job_free(&job);
	cfg.transcode_dir = NULL;
}

static void
test_rewrite_callback(void **state)
{
	char *s;

	s = shim_rewrite_callback("http://127.0.0.1:32400/video/:/x?a=1", 32400,
	    "10.0.0.5");
	assert_string_equal(s, "http://10.0.0.5:32400/video/:/x?a=1");
	free(s);
	s = shim_rewrite_callback("http://LOCALHOST:32400/p", 32400, "plex");
	assert_string_equal(s, "http://plex:32400/p");
	free(s);
	s = shim_rewrite_callback("http://[::1]:32400/p", 32400, "fd00::5");
	assert_string_equal(s, "http://[fd00::5]:32400/p");
	free(s);
	assert_null(shim_rewrite_callback("http://127.0.0.1:32401/p", 32400,
	    "h"));
	assert_null(shim_rewrite_callback("http://127.0.0.1:324000/p", 32400,
	    "h"));
	assert_null(shim_rewrite_callback("x http://127.0.0.1:32400/", 32400,
	    "h"));
}

static void
test_env_policy(void **state)
{
	assert_true(shim_env_forwardable("X_PLEX_TOKEN=abc"));
	assert_true(shim_env_forwardable("FFMPEG_EXTERNAL_LIBS=/x"));
	assert_true(shim_env_forwardable("PATHX=1"));
	assert_true(shim_env_forwardable("EMPTY="));
	assert_false(shim_env_forwardable("CLUSTERPLEX_TOKEN=s"));
	assert_false(shim_env_forwardable("PATH=/bin"));
	assert_false(shim_env_forwardable("HOME=/root"));
	assert_false(shim_env_forwardable("SSH_AUTH_SOCK=/x"));
	assert_false(shim_env_forwardable("LD_PRELOAD=/evil.so"));
	assert_false(shim_env_forwardable("PWD=/x"));
	assert_false(shim_env_forwardable("NOEQUALS"));
	assert_false(shim_env_forwardable("=value"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_dash_runs_remotely, setup),
		cmocka_unit_test_setup(test_input_in_session_folder, setup),
		cmocka_unit_test_setup(test_detection_stays_local, setup),
		cmocka_unit_test_setup(test_optimize_writes_library, setup),
		cmocka_unit_test_setup(test_other_transcode_input, setup),
		cmocka_unit_test_setup(test_dev_null_output, setup),
		cmocka_unit_test_setup(test_credits, setup),
		cmocka_unit_test_setup(test_thumbnails_and_eae, setup),
		cmocka_unit_test_setup(test_session_folder_shapes, setup),
		cmocka_unit_test_setup(test_rewrite_callback, setup),
		cmocka_unit_test_setup(test_env_policy, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
