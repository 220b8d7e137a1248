/* job_state.c — one state file per running job, for `agent serve` to report. */

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cJSON.h>

#include "job.h"

#define STATE_MAX 4096

/*
 * <run_dir>/jobs/<id>.json, written whole (temporary file + rename) so a
 * reader never sees half of it:
 *   {"id", "session", "pid", "pgid", "agent_pid", "started" (Unix time in
 *    seconds, with milliseconds), "cwd"}
 * Returns the path (caller frees) or NULL when it cannot be written.
 */
char *
agent_state_write(const char *run_dir, const struct cpx_jobspec *js,
    pid_t pid, uint64_t started_ms, const char *cwd)
{
	char *dir = cpx_xprintf("%s/jobs", run_dir), *path, *tmp, *text;
	cJSON *obj = cJSON_CreateObject();
	FILE *f;
	int ok;

	path = cpx_xprintf("%s/%s.json", dir, js->id);
	tmp = cpx_xprintf("%s/.%s.tmp", dir, js->id);
	cJSON_AddStringToObject(obj, "id", js->id);
	cJSON_AddStringToObject(obj, "session", js->session);
	cJSON_AddNumberToObject(obj, "pid", pid);
	cJSON_AddNumberToObject(obj, "pgid", pid);
	cJSON_AddNumberToObject(obj, "agent_pid", getpid());
	cJSON_AddNumberToObject(obj, "started", (double)started_ms / 1000.0);
	cJSON_AddStringToObject(obj, "cwd", cwd);
	text = cJSON_PrintUnformatted(obj);
	cJSON_Delete(obj);
	ok = text != NULL && cpx_mkdir_p(dir, 0755) == 0 &&
	    (f = fopen(tmp, "we")) != NULL;
	if (ok) {
		ok = fprintf(f, "%s\n", text) > 0;
		ok = (fclose(f) == 0) && ok && rename(tmp, path) == 0;
		if (!ok)
			unlink(tmp);
	}
	if (!ok) {
		cpx_warn("cannot write job state %s: %s", path, strerror(errno));
		free(path);
		path = NULL;
	}
	cJSON_free(text);
	free(tmp);
	free(dir);
	return path;
}

void
agent_state_remove(const char *path)
{
	if (path != NULL && unlink(path) != 0 && errno != ENOENT)
		cpx_warn("cannot remove job state %s: %s", path,
		    strerror(errno));
}

/* True while the agent that wrote a state file is alive. */
static int
state_live(const char *path)
{
	cJSON *obj, *agent;
	char *text = NULL;
	int live = 0;

	if (cpx_read_file(path, STATE_MAX, &text, NULL) != 0)
		return 0;
	obj = cJSON_Parse(text);
	agent = cJSON_GetObjectItemCaseSensitive(obj, "agent_pid");
	if (cJSON_IsNumber(agent) && agent->valuedouble > 1)
		live = kill((pid_t)agent->valuedouble, 0) == 0 || errno == EPERM;
	cJSON_Delete(obj);
	free(text);
	return live;
}

/*
 * Counts running jobs; removes files left by agents that died without
 * cleaning up (SIGKILL, a crash), so they never count again.
 */
int
agent_state_running(const char *run_dir)
{
	char *dir = cpx_xprintf("%s/jobs", run_dir), *path;
	struct dirent *e;
	DIR *d = opendir(dir);
	int n = 0;
	size_t len;

	if (d == NULL) {
		free(dir);
		return 0;
	}
	while ((e = readdir(d)) != NULL) {
		len = strlen(e->d_name);
		if (e->d_name[0] == '.' || len < 6 ||
		    strcmp(e->d_name + len - 5, ".json") != 0)
			continue;
		path = cpx_xprintf("%s/%s", dir, e->d_name);
		if (state_live(path))
			n++;
		else
			agent_state_remove(path);
		free(path);
	}
	closedir(d);
	free(dir);
	return n;
}

/*
 * -ENOSPC (with a sentence in msg) when the file system of `dir` (a job's
 * folder) has less than min_free_mb MiB or no inode free: ffmpeg writes
 * empty segments and exits 0 on a full disk, so a full worker must refuse
 * jobs rather than take them all. 0 otherwise, also when `dir` cannot be
 * examined (the cwd check reports that better).
 */
int
agent_root_space(const char *dir, long min_free_mb, char *msg, size_t len)
{
	struct statvfs sv;
	uint64_t mb;

	if (min_free_mb <= 0 || statvfs(dir, &sv) != 0)
		return 0;
	mb = (uint64_t)sv.f_bavail * sv.f_frsize >> 20;
	if (mb >= (uint64_t)min_free_mb && (sv.f_files == 0 || sv.f_favail > 0))
		return 0;
	snprintf(msg, len, "%.80s is full: %llu MiB free "
	    "(CLUSTERPLEX_MIN_FREE_MB=%ld), %llu inodes free", dir,
	    (unsigned long long)mb, min_free_mb,
	    (unsigned long long)sv.f_favail);
	return -ENOSPC;
}
