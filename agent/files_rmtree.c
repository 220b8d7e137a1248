/* files_rmtree.c — RMTREE: a folder and everything below it, confined. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"

/*
 * fuse asks for this when PMS deleted a session folder while this worker
 * could not be reached: whatever the transcoder left there must go. The
 * folder's parent is resolved beneath the root; below it every step is an
 * *at() call on a descriptor opened with O_NOFOLLOW, so a symlink is
 * removed, never entered, and nothing outside the folder can be touched.
 * A session folder is flat: a tree deeper than RMTREE_DEPTH is refused
 * rather than walked, and a folder that keeps getting new names (a writer
 * still at work) is given up after a few passes.
 */

#define RMTREE_DEPTH 16
#define RMTREE_PASSES 4

static int rm_dir(int dirfd, const char *name, int depth);

/* Removes every name in the folder open on fd; closes fd. */
static int
rm_contents(int fd, int depth)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	int error = 0;

	if (d == NULL) {
		error = -errno;
		close(fd);
		return error;
	}
	while (error == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0 || errno == ENOENT)
			continue;
		error = errno == EISDIR ? rm_dir(dirfd(d), de->d_name, depth + 1) :
		    -errno;
	}
	closedir(d);
	return error;
}

/* Removes the folder `name` in dirfd with what it holds. */
static int
rm_dir(int dirfd, const char *name, int depth)
{
	int error, fd, pass;

	if (depth > RMTREE_DEPTH)
		return -ELOOP;
	for (pass = 0; pass < RMTREE_PASSES; pass++) {
		fd = openat(dirfd, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return errno == ENOENT ? 0 : -errno;
		if ((error = rm_contents(fd, depth)) != 0)
			return error;
		if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
			return 0;
		if (errno != ENOTEMPTY)
			return -errno;
	}
	return -ENOTEMPTY;
}

/*
 * RMTREE path: 0 when nothing is left of it (also when it was not there),
 * else the first error (EACCES, ELOOP for a tree too deep, ENOTEMPTY for
 * one that kept filling up). Not the root: it has no parent to leave.
 */
int
files_rmtree(struct files_svc *s, const char *path)
{
	const char *name;
	char *dir;
	int error, fd;

	if (*path == '\0')
		return -EINVAL;
	dir = cpx_path_split(path, &name);
	fd = cpx_open_beneath(s->rootfd, dir, O_PATH | O_DIRECTORY, 0, 0);
	free(dir);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	if (unlinkat(fd, name, 0) == 0 || errno == ENOENT)
		error = 0;	/* a file, or nothing: gone either way */
	else if (errno == EISDIR)
		error = rm_dir(fd, name, 0);
	else
		error = -errno;
	close(fd);
	return error;
}
