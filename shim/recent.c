/* recent.c — the media paths of recent remote jobs, samples for `doctor`. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "doctor.h"

/*
 * $CLUSTERPLEX_RUN_DIR/recent-media: the last RECENT_MAX distinct input
 * paths of remote jobs, one per line, newest last. `doctor` checks that
 * every worker can read a few of them (through its path map). Written
 * only when a job brings a path not listed yet, whole (rename), 0600:
 * paths of someone's media are nobody else's business.
 */

#define RECENT_MAX 16
#define RECENT_FILE_MAX (64 * 1024)

static char *
recent_path(const struct shim_config *cfg)
{
	return cpx_xprintf("%s/recent-media", cfg->run_dir);
}

static char **
read_list(const char *path, size_t *n)
{
	char *text = NULL, *line, *save = NULL, **v = NULL;
	size_t len;

	*n = 0;
	if (cpx_read_file(path, RECENT_FILE_MAX, &text, &len) != 0)
		return NULL;
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (line[0] != '/')
			continue;
		v = cpx_xrealloc(v, (*n + 1) * sizeof *v);
		v[(*n)++] = cpx_xstrdup(line);
	}
	free(text);
	return v;
}

static void
free_list(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int
listed(char **v, size_t n, const char *p)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(v[i], p) == 0)
			return 1;
	}
	return 0;
}

static void
write_list(const char *path, char **v, size_t n)
{
	char *tmp = cpx_xprintf("%s.%ld", path, (long)getpid());
	size_t i = n > RECENT_MAX ? n - RECENT_MAX : 0;
	FILE *f;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd >= 0 && (f = fdopen(fd, "w")) != NULL) {
		for (; i < n; i++)
			fprintf(f, "%s\n", v[i]);
		if (fclose(f) == 0 && rename(tmp, path) == 0)
			tmp[0] = '\0';
	} else if (fd >= 0) {
		close(fd);
	}
	if (tmp[0] != '\0')
		unlink(tmp);
	free(tmp);
}

/* Notes the media inputs (-i outside the transcode folder) of a remote job. */
void
shim_note_inputs(const struct shim_config *cfg, const struct shim_job *job)
{
	char *path = recent_path(cfg), **v;
	const char *a;
	size_t n;
	int i, changed = 0;

	v = read_list(path, &n);
	for (i = 1; i < job->argc; i++) {
		a = job->argv[i];
		if (strncmp(a, "file:", 5) == 0)
			a += 5;
		if (strcmp(job->argv[i - 1], "-i") != 0 || a[0] != '/' ||
		    strchr(a, '\n') != NULL || cpx_path_under(a, job->root, NULL) ||
		    listed(v, n, a))
			continue;
		v = cpx_xrealloc(v, (n + 1) * sizeof *v);
		v[n++] = cpx_xstrdup(a);
		changed = 1;
	}
	if (changed)
		write_list(path, v, n);
	free_list(v, n);
	free(path);
}

/* The three newest samples (caller frees each and the vector). */
char **
shim_recent_inputs(const struct shim_config *cfg, size_t *n)
{
	char *path = recent_path(cfg), **v = read_list(path, n), **out;
	size_t k = *n < 3 ? *n : 3, i;

	out = cpx_xcalloc(k + 1, sizeof *out);
	for (i = 0; i < k; i++)
		out[i] = v[*n - 1 - i];
	for (i = 0; i + k < *n; i++)
		free(v[i]);
	free(v);
	free(path);
	*n = k;
	return out;
}
