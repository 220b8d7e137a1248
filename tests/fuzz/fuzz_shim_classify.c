/* fuzz_shim_classify.c — job classification and argv rewriting on hostile argv. */

#include <stdlib.h>
#include <string.h>

#include "shim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The first NUL-separated string is the cwd, the rest are argv. */
static int
split(const uint8_t *data, size_t size, char *buf, char **argv, int max)
{
	int n = 0;
	size_t i, start = 0;

	memcpy(buf, data, size);
	buf[size] = '\0';
	for (i = 0; i <= size && n < max; i++) {
		if (i == size || buf[i] == '\0') {
			argv[n++] = buf + start;
			start = i + 1;
		}
	}
	return n;
}

static void
check(const struct shim_config *cfg, const char *cwd, int argc, char **argv)
{
	struct shim_job job;
	char *joined;

	shim_classify(cfg, cwd, argc, argv, &job);
	if (job.session_dir != NULL) {
		/* What runs remotely is exactly <root>/<session_dir>. */
		if (strncmp(job.session_dir, "Transcode/Sessions/", 19) != 0 ||
		    job.root == NULL || job.session == NULL)
			abort();
		joined = cpx_xprintf("%s%s%s", job.root,
		    strcmp(job.root, "/") == 0 ? "" : "/", job.session_dir);
		if (strcmp(joined, cwd) != 0)
			abort();
		free(joined);
	} else if (job.local == NULL) {
		abort();	/* no session folder, yet not local */
	}
	shim_job_free(&job);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shim_config cfg = { .local_jobs = SHIM_LOCAL_CREDITS |
	    SHIM_LOCAL_THUMBNAILS | SHIM_LOCAL_EAE, .pms_port = 32400 };
	char *buf, *argv[64], *s;
	int argc, i;

	if (size > 16384)
		return 0;
	buf = cpx_xmalloc(size + 1);
	argc = split(data, size, buf, argv, 64);
	check(&cfg, argv[0], argc - 1, argv + 1);
	cfg.local_jobs = 0;
	cfg.transcode_dir = "/transcode";
	check(&cfg, argv[0], argc - 1, argv + 1);
	for (i = 0; i < argc; i++) {
		s = shim_rewrite_callback(argv[i], 32400, "10.0.0.1");
		if (s != NULL && strncmp(s, "http://10.0.0.1:32400/", 22) != 0)
			abort();
		free(s);
		shim_env_forwardable(argv[i]);
	}
	free(buf);
	return 0;
}
