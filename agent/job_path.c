/* job_path.c — the job's folder, resolved strictly beneath our transcode folder. */

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "job.h"

/*
 * Job ids name the state file and appear in the dispatcher's URLs: its
 * alphabet (A-Z a-z 0-9 . _ - :), 1-128 long, no leading '.' or '-'.
 */
int
agent_job_id_valid(const char *id)
{
	size_t i, n = strlen(id);

	if (n == 0 || n > 128 || id[0] == '.' || id[0] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		char c = id[i];

		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
		    !(c >= '0' && c <= '9') && c != '-' && c != '_' && c != '.' &&
		    c != ':')
			return 0;
	}
	return 1;
}

/*
 * openat2 with RESOLVE_BENEATH: "..", absolute symlinks and symlinks
 * that lead out of the root all fail with EXDEV; /proc magic links fail
 * too. Symlinks that stay inside are fine.
 */
static int
open_beneath(int rootfd, const char *rel)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof how);

	return fd < 0 ? -errno : (int)fd;
}

/* Creates the missing components of `rel`, each one beneath the root. */
static int
create_beneath(int rootfd, const char *rel)
{
	char *prefix = cpx_xstrdup(rel), *slash;
	int parent = -1, fd = -1;
	size_t end = 0;

	for (;;) {
		slash = strchr(prefix + end, '/');
		end = slash != NULL ? (size_t)(slash - prefix) : strlen(rel);
		prefix[end] = '\0';
		fd = open_beneath(rootfd, prefix);
		if (fd == -ENOENT) {
			const char *name = strrchr(prefix, '/');

			name = name != NULL ? name + 1 : prefix;
			if (mkdirat(parent >= 0 ? parent : rootfd, name, 0755) != 0 &&
			    errno != EEXIST) {
				fd = -errno;
				break;
			}
			fd = open_beneath(rootfd, prefix);
		}
		if (fd < 0 || rel[end] == '\0')
			break;
		prefix[end] = '/';
		end++;
		if (parent >= 0)
			close(parent);
		parent = fd;
		fd = -1;
	}
	if (parent >= 0)
		close(parent);
	free(prefix);
	return fd;
}

/*
 * Maps PMS's cwd (below PMS's transcode folder `pms_root`) to the same
 * relative place below `worker_root`, creating what is missing. *dirfd is
 * an O_PATH descriptor of it, *worker_cwd its path (caller frees both).
 */
int
agent_job_map_cwd(const char *worker_root, const char *pms_root,
    const char *cwd, int *dirfd, char **worker_cwd, char **cause)
{
	const char *rel = NULL;
	size_t n = strlen(worker_root);
	int rootfd, fd;

	if (!cpx_path_under(cwd, pms_root, &rel) ||
	    !cpx_path_clean_relative(rel)) {
		cpx_set_cause(cause, "working directory is not a clean path "
		    "below the transcode folder %s", pms_root);
		return -EINVAL;
	}
	rootfd = open(worker_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		cpx_set_cause(cause, "transcode folder %s: %s", worker_root,
		    strerror(errno));
		return -errno;
	}
	fd = open_beneath(rootfd, rel);
	if (fd == -ENOENT)
		fd = create_beneath(rootfd, rel);
	close(rootfd);
	if (fd < 0) {
		cpx_set_cause(cause, "working directory %s%s: %s", rel,
		    fd == -EXDEV ? " leads outside the transcode folder" : "",
		    strerror(-fd));
		return fd;
	}
	while (n > 1 && worker_root[n - 1] == '/')
		n--;
	*dirfd = fd;
	*worker_cwd = cpx_xprintf("%.*s/%s", (int)n, worker_root, rel);
	return 0;
}

/* An input file PMS put into the session folder: a plain name, never a link. */
int
agent_job_open_input(int dirfd, const char *name, char **cause)
{
	int fd;

	if (strchr(name, '/') != NULL || !cpx_path_clean_relative(name)) {
		cpx_set_cause(cause, "input name is not a plain file name");
		return -EINVAL;
	}
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0644);
	if (fd < 0) {
		cpx_set_cause(cause, "input %s: %s", name, strerror(errno));
		return -errno;
	}
	return fd;
}
