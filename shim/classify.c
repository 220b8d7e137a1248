/* classify.c — which jobs may run on a worker, and what they are called. */

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "shim.h"

#define SESSIONS "Transcode/Sessions/"

void
shim_job_free(struct shim_job *job)
{
	free(job->root);
	free(job->session_dir);
	free(job->session);
	job->root = job->session_dir = job->session = NULL;
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

/* EasyAudioEncoder jobs name *_eae codecs or pass -eae_prefix. */
static int
is_eae(int argc, char **argv)
{
	int i;

	for (i = 0; i < argc; i++) {
		if (ends_with(argv[i], "_eae") ||
		    strncmp(argv[i], "-eae_prefix", 11) == 0)
			return 1;
	}
	return 0;
}

/* Preview and chapter thumbnails: image outputs. */
static int
is_thumbnail(int argc, char **argv)
{
	static const char *const exts[] = { ".jpg", ".jpeg", ".png", ".bif" };
	size_t k;
	int i;

	for (i = 0; i < argc; i++) {
		if (i > 0 && strcmp(argv[i - 1], "-f") == 0 &&
		    (strcmp(argv[i], "image2") == 0 ||
		    strcmp(argv[i], "mjpeg") == 0))
			return 1;
		for (k = 0; k < CPX_ARRAY_SIZE(exts); k++) {
			if (argv[i][0] != '-' && ends_with(argv[i], exts[k]))
				return 1;
		}
	}
	return 0;
}

/*
 * PMS's transcode folder and the session folder below it. The cwd must
 * be exactly <root>/Transcode/Sessions/<name>; with
 * CLUSTERPLEX_TRANSCODE_DIR set, <root> must be that folder.
 */
static int
find_session(const struct shim_config *cfg, const char *cwd,
    struct shim_job *job)
{
	const char *at = NULL, *p, *name;
	size_t rlen;

	/* getcwd() gives canonical paths; anything else is not understood. */
	if (cwd[0] != '/' || !cpx_path_clean_relative(cwd + 1))
		return 0;
	if (cfg->transcode_dir != NULL) {
		if (!cpx_path_under(cwd, cfg->transcode_dir, &p) ||
		    strncmp(p, SESSIONS, strlen(SESSIONS)) != 0)
			return 0;
		at = p - 1;
	} else {
		for (p = strstr(cwd, "/" SESSIONS); p != NULL;
		    p = strstr(p + 1, "/" SESSIONS))
			at = p;
		if (at == NULL)
			return 0;
	}
	name = at + 1 + strlen(SESSIONS);
	if (strchr(name, '/') != NULL || !cpx_path_clean_relative(name))
		return 0;
	rlen = (size_t)(at - cwd);
	job->root = rlen > 0 ? cpx_xstrndup(cwd, rlen) : cpx_xstrdup("/");
	job->session_dir = cpx_xstrdup(at + 1);
	return 1;
}

static const char *
strip_file(const char *arg)
{
	return strncmp(arg, "file:", 5) == 0 ? arg + 5 : arg;
}

/*
 * Absolute paths in argv: inputs (-i) anywhere but another part of the
 * transcode folder are fine (workers see the media at the same paths);
 * anything else absolute is an output, and must lie in the session folder
 * for fuse to show it. Returns the reason to stay local, or NULL.
 */
static const char *
check_paths(const char *cwd, const char *root, int argc, char **argv)
{
	const char *a;
	int i, input;

	for (i = 0; i < argc; i++) {
		a = strip_file(argv[i]);
		if (a[0] != '/' || strcmp(a, "/dev/null") == 0)
			continue;
		input = i > 0 && strcmp(argv[i - 1], "-i") == 0;
		if (cpx_path_under(a, cwd, NULL))
			continue;
		if (!input)
			return "it writes outside its session folder";
		if (cpx_path_under(a, root, NULL))
			return "it reads another part of the transcode folder";
	}
	return NULL;
}

/* PMS's session id, from a callback URL ".../transcode/session/<id>/...". */
static char *
find_session_id(int argc, char **argv, const char *session_dir)
{
	const char *p, *key = "/transcode/session/";
	size_t n;
	int i;

	for (i = 0; i < argc; i++) {
		p = strstr(argv[i], key);
		if (p == NULL)
			continue;
		p += strlen(key);
		n = strcspn(p, "/?&");
		if (n > 0 && n <= 128)
			return cpx_xstrndup(p, n);
	}
	p = strrchr(session_dir, '/');
	return cpx_xstrdup(p != NULL ? p + 1 : session_dir);
}

/*
 * Fills *job; job->local says why the job must stay on this host (NULL:
 * it may run on a worker). Never fails: what is not understood stays
 * local, so no job is ever lost to a guess.
 */
int
shim_classify(const struct shim_config *cfg, const char *cwd, int argc,
    char **argv, struct shim_job *job)
{
	memset(job, 0, sizeof *job);
	job->cwd = cwd;
	job->argc = argc;
	job->argv = argv;
	if (strstr(cwd, "PlexCreditsDetection") != NULL &&
	    (cfg->local_jobs & SHIM_LOCAL_CREDITS))
		job->local = "credits detection runs locally";
	else if ((cfg->local_jobs & SHIM_LOCAL_EAE) && is_eae(argc, argv))
		job->local = "EAE jobs run locally (TRANSCODE_EAE_LOCALLY)";
	else if ((cfg->local_jobs & SHIM_LOCAL_THUMBNAILS) &&
	    is_thumbnail(argc, argv))
		job->local = "thumbnail jobs run locally";
	if (!find_session(cfg, cwd, job)) {
		if (job->local == NULL)
			job->local = "its working directory is not a session "
			    "folder";
		return 0;
	}
	job->session = find_session_id(argc, argv, job->session_dir);
	if (job->local == NULL)
		job->local = check_paths(cwd, job->root, argc, argv);
	return 0;
}

/*
 * CLUSTERPLEX_CALLBACKS=rewrite (ClusterPlex's way): callback URLs go to
 * PMS_IP/PMS_SERVICE instead of loopback. Returns a new string or NULL.
 */
char *
shim_rewrite_callback(const char *arg, long pms_port, const char *host)
{
	static const char *const hosts[] = { "127.0.0.1", "localhost", "[::1]" };
	int v6 = strchr(host, ':') != NULL;
	char prefix[64];
	size_t i, n;

	for (i = 0; i < CPX_ARRAY_SIZE(hosts); i++) {
		n = (size_t)snprintf(prefix, sizeof prefix, "http://%s:%ld/",
		    hosts[i], pms_port);
		if (strncasecmp(arg, prefix, n) == 0)
			return cpx_xprintf("http://%s%s%s:%ld/%s", v6 ? "[" : "",
			    host, v6 ? "]" : "", pms_port, arg + n);
	}
	return NULL;
}

/* Never sent to a worker (the agent enforces the same list). */
int
shim_env_forwardable(const char *entry)
{
	static const char *const names[] = { "CLUSTERPLEX_TOKEN", "PATH",
	    "HOME", "USER", "LOGNAME", "SHELL", "PWD" };
	const char *eq = strchr(entry, '=');
	size_t i, n;

	if (eq == NULL || eq == entry)
		return 0;
	n = (size_t)(eq - entry);
	for (i = 0; i < CPX_ARRAY_SIZE(names); i++) {
		if (strlen(names[i]) == n && strncmp(entry, names[i], n) == 0)
			return 0;
	}
	return strncmp(entry, "SSH_", 4) != 0 && strncmp(entry, "LD_", 3) != 0;
}
