/* codec_cache.c — the worker's codec sets: its own folders and a cache, locked per set. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "agent.h"
#include "cpx-protocol.h"

/*
 * Layout of CLUSTERPLEX_CODEC_CACHE (the worker's own disk, never shared):
 *
 *   <set>/                      a complete set, renamed into place whole
 *   <set>/.clusterplex-set.json its manifest (files, sizes, SHA-256, origin)
 *   .<set>.lock                 flock()ed by the one job fetching <set>
 *   .tmp-<set>-<pid>/           a fetch in progress
 *
 * A set folder exists only once complete: a fetch writes into its .tmp
 * folder, checks every file's SHA-256, writes the manifest and renames.
 * Jobs that need a missing set take the set's lock; the first one
 * fetches, the others wait and then find it. A fetcher that dies (its
 * shim was killed) drops the lock with its descriptor; the next job
 * removes the leftover .tmp folder (nobody else can be writing it while
 * the lock is held) and fetches again.
 */

#define MANIFEST ".clusterplex-set.json"
#define SETS_MAX 64		/* what a registration reports (and a dispatcher takes) */

static int
is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A set in one of the worker's own folders (CLUSTERPLEX_CODEC_DIRS, ':'-separated). */
static char *
find_own(const char *dirs, const char *name)
{
	const char *p = dirs, *end;
	char *path;

	while (p != NULL && *p != '\0') {
		end = strchr(p, ':');
		if (end == NULL)
			end = p + strlen(p);
		if (end > p) {
			path = cpx_xprintf("%.*s/%s", (int)(end - p), p, name);
			if (is_dir(path))
				return path;
			free(path);
		}
		p = *end != '\0' ? end + 1 : end;
	}
	return NULL;
}

/*
 * Where this worker has set `name`: an operator's folder first (trusted
 * as it is), then the cache (complete sets only). 0 with *dir (caller
 * frees), or -ENOENT.
 */
int
agent_codecs_find(const struct agent_config *cfg, const char *name, char **dir)
{
	char *path, *man;

	*dir = NULL;
	if (!cpx_set_name_valid(name))
		return -EINVAL;
	if ((path = find_own(cfg->codec_dirs, name)) != NULL) {
		*dir = path;
		return 0;
	}
	path = cpx_xprintf("%s/%s", cfg->codec_cache, name);
	man = cpx_xprintf("%s/%s", path, MANIFEST);
	if (access(man, R_OK) == 0) {
		free(man);
		*dir = path;
		return 0;
	}
	free(man);
	free(path);
	return -ENOENT;
}

/*
 * Takes set `name`'s lock without blocking: 0 with *fd, -EWOULDBLOCK
 * while another job holds it, another negative errno when the cache
 * cannot be used (with a cause).
 */
int
agent_codecs_lock(const struct agent_config *cfg, const char *name, int *fd,
    char **cause)
{
	char *path;
	int error = 0;

	*fd = -1;
	if ((error = cpx_mkdir_p(cfg->codec_cache, 0755)) != 0) {
		cpx_set_cause(cause, "codec cache %s: %s", cfg->codec_cache,
		    strerror(-error));
		return error;
	}
	path = cpx_xprintf("%s/.%s.lock", cfg->codec_cache, name);
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (*fd < 0) {
		error = -errno;
		cpx_set_cause(cause, "%s: %s", path, strerror(errno));
	} else if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
		error = errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
		if (error != -EWOULDBLOCK)
			cpx_set_cause(cause, "lock %s: %s", path, strerror(errno));
		close(*fd);
		*fd = -1;
	}
	free(path);
	return error;
}

void
agent_codecs_unlock(int fd)
{
	if (fd >= 0)
		close(fd);	/* releases the flock */
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	if (remove(path) != 0)
		cpx_debug("cannot remove %s: %s", path, strerror(errno));
	return 0;
}

/* Removes a folder tree without following symlinks. */
void
agent_codecs_remove(const char *dir)
{
	if (dir != NULL)
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Leftovers of fetches of `name` that died; we hold its lock. */
static void
remove_stale(const struct agent_config *cfg, const char *name)
{
	char *prefix = cpx_xprintf(".tmp-%s-", name), *path;
	struct dirent *de;
	DIR *d = opendir(cfg->codec_cache);

	while (d != NULL && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		path = cpx_xprintf("%s/%s", cfg->codec_cache, de->d_name);
		cpx_info("removing %s, left by a fetch that did not finish",
		    path);
		agent_codecs_remove(path);
		free(path);
	}
	if (d != NULL)
		closedir(d);
	free(prefix);
}

/* A fresh folder to fetch `name` into (we hold its lock): *tmp and *fd. */
int
agent_codecs_tmp(const struct agent_config *cfg, const char *name,
    char **tmp, int *fd, char **cause)
{
	remove_stale(cfg, name);
	*tmp = cpx_xprintf("%s/.tmp-%s-%ld", cfg->codec_cache, name,
	    (long)getpid());
	*fd = -1;
	if (mkdir(*tmp, 0755) != 0 || (*fd = open(*tmp, O_PATH | O_DIRECTORY |
	    O_CLOEXEC)) < 0) {
		cpx_set_cause(cause, "%s: %s", *tmp, strerror(errno));
		free(*tmp);
		*tmp = NULL;
		return -errno;
	}
	return 0;
}

/* Writes the manifest into `tmp` and renames it into place as `name`. */
int
agent_codecs_commit(const struct agent_config *cfg, const char *name,
    const char *tmp, const char *manifest, char **cause)
{
	char *mpath = cpx_xprintf("%s/%s", tmp, MANIFEST);
	char *final = cpx_xprintf("%s/%s", cfg->codec_cache, name);
	int fd, error = 0;

	fd = open(mpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || cpx_write_all(fd, manifest, strlen(manifest)) < 0 ||
	    fsync(fd) != 0) {
		error = -errno;
		cpx_set_cause(cause, "%s: %s", mpath, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	if (error == 0 && rename(tmp, final) != 0) {
		error = -errno;
		cpx_set_cause(cause, "rename to %s: %s", final, strerror(errno));
	}
	free(mpath);
	free(final);
	return error;
}

/* Sets a job would find in the cache and the worker's own folders; caller frees. */
char **
agent_codecs_list(const struct agent_config *cfg, size_t *n)
{
	char **v = NULL, *all = cpx_xprintf("%s:%s", cfg->codec_cache != NULL ?
	    cfg->codec_cache : "", cfg->codec_dirs != NULL ? cfg->codec_dirs : ""),
	    *dir, *save = NULL;
	char *probe;
	struct dirent *de;
	DIR *d;

	*n = 0;
	for (dir = strtok_r(all, ":", &save); dir != NULL;
	    dir = strtok_r(NULL, ":", &save)) {
		if ((d = opendir(dir)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL && *n < SETS_MAX) {
			/* Listed when a job would use it (complete, in the cache). */
			if (!cpx_set_name_valid(de->d_name) ||
			    agent_codecs_find(cfg, de->d_name, &probe) != 0)
				continue;
			free(probe);
			v = cpx_xrealloc(v, (*n + 2) * sizeof *v);
			v[(*n)++] = cpx_xstrdup(de->d_name);
			v[*n] = NULL;
		}
		closedir(d);
	}
	free(all);
	return v;
}

/*
 * The first of CLUSTERPLEX_CODEC_SOURCES that can give a missing set, or
 * 0: pms when PMS's set is for this CPU (`same`); url when the set names
 * a CPU (the URL needs {arch}). Both need PMS's set offered (`offered`):
 * pms for its files, url for their names.
 */
unsigned
agent_codec_source(const struct agent_config *cfg, int offered, int same,
    int has_cpu)
{
	size_t i;

	for (i = 0; offered && i < cfg->ncodec_order; i++) {
		if (cfg->codec_order[i] == AGENT_SRC_PMS && same)
			return AGENT_SRC_PMS;
		if (cfg->codec_order[i] == AGENT_SRC_URL && has_cpu)
			return AGENT_SRC_URL;
	}
	return 0;
}

/* The CPU in this worker's set names; a configuration built by hand may lack it. */
const char *
agent_codec_cpu(const struct agent_config *cfg)
{
	return cfg->codec_cpu != NULL ? cfg->codec_cpu : cpx_codec_cpu();
}

static int
listed_before(char **v, size_t i)
{
	size_t k;

	for (k = 0; k < i; k++) {
		if (strcmp(v[k], v[i]) == 0)
			return 1;
	}
	return 0;
}

/*
 * What placement needs to know of this worker's codecs (registration and
 * heartbeat): {"cpu", "sources": ["pms", "url"], "sets": [...]}, the
 * sets being those it holds in its folders and cache.
 */
cJSON *
agent_codecs_json(const struct agent_config *cfg)
{
	cJSON *o = cJSON_CreateObject(), *src = cJSON_CreateArray();
	cJSON *sets = cJSON_CreateArray();
	char **v;
	size_t i, n;

	cJSON_AddStringToObject(o, "cpu", agent_codec_cpu(cfg));
	for (i = 0; i < cfg->ncodec_order; i++)
		cJSON_AddItemToArray(src, cJSON_CreateString(
		    cfg->codec_order[i] == AGENT_SRC_PMS ? "pms" : "url"));
	cJSON_AddItemToObject(o, "sources", src);
	v = agent_codecs_list(cfg, &n);
	for (i = 0; i < n; i++) {
		/* A set in two folders is reported once. */
		if (!listed_before(v, i))
			cJSON_AddItemToArray(sets, cJSON_CreateString(v[i]));
	}
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
	cJSON_AddItemToObject(o, "sets", sets);
	return o;
}
