/* job_argv.c — argv and environment of the worker's transcoder. */

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "job.h"

void
agent_strv_free(char **v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

static size_t
root_len(const char *root)
{
	size_t n = strlen(root);

	while (n > 1 && root[n - 1] == '/')
		n--;
	return n;
}

/* `arg` with prefix `from` (a whole path prefix) replaced by `to`; or NULL. */
static char *
swap_prefix(const char *arg, const char *from, size_t flen, const char *to,
    size_t tlen)
{
	if (flen == 0 || strncmp(arg, from, flen) != 0 ||
	    (arg[flen] != '\0' && arg[flen] != '/'))
		return NULL;
	return cpx_xprintf("%.*s%s", (int)tlen, to, arg + flen);
}

/*
 * An input (the value of -i, possibly "file:"-prefixed) through
 * CLUSTERPLEX_PATH_MAP. Only inputs: everything else a remote job names
 * lies in its session folder (the shim keeps other jobs local), and a
 * blanket replace is how a user's file once got renamed.
 */
static char *
map_input(const char *arg, const struct agent_path_map *map)
{
	const char *p = strncmp(arg, "file:", 5) == 0 ? arg + 5 : arg;
	char *mapped, *out;

	if (map == NULL || p[0] != '/' || (mapped = agent_path_map_apply(map,
	    p)) == NULL)
		return NULL;
	if (p == arg)
		return mapped;
	out = cpx_xprintf("file:%s", mapped);
	free(mapped);
	return out;
}

/*
 * Callback URLs aimed at PMS's loopback go to the job's own listener,
 * which tunnels them back to PMS's loopback.
 */
static char *
map_callback(const char *arg, int pms_port, int port)
{
	static const char *const hosts[] = { "127.0.0.1", "localhost", "[::1]" };
	char prefix[64];
	size_t i, n;

	for (i = 0; i < CPX_ARRAY_SIZE(hosts); i++) {
		n = (size_t)snprintf(prefix, sizeof prefix, "http://%s:%d/",
		    hosts[i], pms_port);
		if (strncasecmp(arg, prefix, n) == 0)
			return cpx_xprintf("http://127.0.0.1:%d/%s", port,
			    arg + n);
	}
	return NULL;
}

static char *
map_arg(const char *arg, const char *prev, const struct job_argv_opts *o)
{
	size_t pl = root_len(o->pms_root), wl = root_len(o->worker_root);
	char *out = NULL;

	if (o->verbose && prev != NULL && (strcmp(prev, "-loglevel") == 0 ||
	    strcmp(prev, "-loglevel_plex") == 0))
		return cpx_xstrdup("verbose");
	if (pl != wl || strncmp(o->pms_root, o->worker_root, pl) != 0)
		out = swap_prefix(arg, o->pms_root, pl, o->worker_root, wl);
	if (out == NULL && prev != NULL && strcmp(prev, "-i") == 0)
		out = map_input(arg, o->path_map);
	if (out == NULL && o->callback_port != 0)
		out = map_callback(arg, o->pms_port, o->callback_port);
	return out != NULL ? out : cpx_xstrdup(arg);
}

static int
has_arg(char *const *argv, size_t argc, const char *want)
{
	size_t i;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], want) == 0)
			return 1;
	}
	return 0;
}

/*
 * The worker's argv: argv[0] is our transcoder, FFMPEG_HWACCEL adds
 * "-hwaccel X" in front (unless PMS already chose one), and each element
 * is mapped (transcode root, path map, callback URL, log level). Returns
 * a NULL-terminated vector; free with agent_strv_free.
 */
char **
agent_job_argv(char *const *argv, size_t argc, const struct job_argv_opts *o)
{
	int hw = o->hwaccel != NULL && !has_arg(argv, argc, "-hwaccel");
	char **out = cpx_xcalloc(argc + 4, sizeof *out);
	size_t i, n = 0;

	out[n++] = cpx_xstrdup(o->transcoder);
	if (hw) {
		out[n++] = cpx_xstrdup("-hwaccel");
		out[n++] = cpx_xstrdup(o->hwaccel);
	}
	for (i = 0; i < argc; i++)
		out[n++] = map_arg(argv[i], i > 0 ? argv[i - 1] : NULL, o);
	out[n] = NULL;
	return out;
}

static int
name_is(const char *entry, const char *name)
{
	size_t n = strlen(name);

	return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

/* Never sent to a worker, never taken from PMS. */
int
agent_env_forwardable(const char *entry)
{
	static const char *const names[] = { "CLUSTERPLEX_TOKEN", "PATH",
	    "HOME", "USER", "LOGNAME", "SHELL", "PWD" };
	static const char *const prefixes[] = { "SSH_", "LD_" };
	const char *eq = strchr(entry, '=');
	size_t i;

	if (eq == NULL || eq == entry)
		return 0;
	for (i = 0; i < CPX_ARRAY_SIZE(names); i++) {
		if (name_is(entry, names[i]))
			return 0;
	}
	for (i = 0; i < CPX_ARRAY_SIZE(prefixes); i++) {
		if (strncmp(entry, prefixes[i], strlen(prefixes[i])) == 0)
			return 0;
	}
	return 1;
}

/* PMS's values would point into PMS's own install or config. */
static const char *const worker_own[] = { "FFMPEG_EXTERNAL_LIBS",
    "LIBVA_DRIVERS_PATH", "PLEX_MEDIA_SERVER_INFO_MODEL", "EAE_ROOT",
    "TMPDIR", "XDG_CACHE_HOME", "XDG_DATA_HOME", "PATH", "HOME", "USER",
    "LOGNAME", "SHELL" };

static int
is_worker_own(const char *entry)
{
	size_t i;

	for (i = 0; i < CPX_ARRAY_SIZE(worker_own); i++) {
		if (name_is(entry, worker_own[i]))
			return 1;
	}
	return 0;
}

/*
 * The transcoder's environment: what PMS set, minus what is never
 * forwarded and minus what the worker replaces with its own value (taken
 * from `own`, normally getenv; dropped when the worker has none), plus
 * PWD. PATH falls back to a standard one. Free with agent_strv_free.
 */
char **
agent_job_env(char *const *env, size_t envc, const char *pwd,
    char *(*own)(const char *name))
{
	char **out = cpx_xcalloc(envc + CPX_ARRAY_SIZE(worker_own) + 2,
	    sizeof *out);
	const char *v;
	size_t i, n = 0;

	for (i = 0; i < envc; i++) {
		if (agent_env_forwardable(env[i]) && !is_worker_own(env[i]))
			out[n++] = cpx_xstrdup(env[i]);
	}
	for (i = 0; i < CPX_ARRAY_SIZE(worker_own); i++) {
		v = own(worker_own[i]);
		if (v == NULL && strcmp(worker_own[i], "PATH") == 0)
			v = "/usr/local/bin:/usr/bin:/bin";
		if (v != NULL)
			out[n++] = cpx_xprintf("%s=%s", worker_own[i], v);
	}
	out[n++] = cpx_xprintf("PWD=%s", pwd);
	out[n] = NULL;
	return out;
}
