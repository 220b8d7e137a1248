/* inputs.c — the files PMS put into a session folder before the job started. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim.h"

#define INPUTS_TOTAL_MAX (256L * 1024 * 1024)

void
shim_inputs_free(struct shim_inputs *in)
{
	size_t i;

	for (i = 0; i < in->n; i++) {
		free(in->v[i].name);
		free(in->v[i].data);
	}
	free(in->v);
	memset(in, 0, sizeof *in);
}

static int
read_one(int dirfd, const char *name, struct shim_input *out)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	size_t done = 0;
	ssize_t n;
	int error = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if (st.st_size > CPX_JOB_MAX_INPUT_SIZE) {
		close(fd);
		return -EFBIG;
	}
	out->data = cpx_xmalloc((size_t)st.st_size + 1);
	while (done < (size_t)st.st_size) {
		n = read(fd, out->data + done, (size_t)st.st_size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			error = n < 0 ? -errno : -EIO;
			break;
		}
		done += (size_t)n;
	}
	close(fd);
	out->size = done;
	out->name = cpx_xstrdup(name);
	return error;
}

/*
 * Reads every regular file in `dir` into memory. This happens before the
 * fuse route is added: after it, the folder shows the worker's side.
 */
int
shim_inputs_read(const char *dir, struct shim_inputs *in, char **cause)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t total = 0;
	int error = 0;

	memset(in, 0, sizeof *in);
	if (d == NULL)
		return 0;	/* nothing to send; the agent creates the folder */
	while ((e = readdir(d)) != NULL) {
		if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN)
			continue;
		if (in->n == CPX_JOB_MAX_INPUTS) {
			cpx_set_cause(cause, "more than %d files in %s",
			    CPX_JOB_MAX_INPUTS, dir);
			error = -E2BIG;
			break;
		}
		in->v = cpx_xrealloc(in->v, (in->n + 1) * sizeof *in->v);
		memset(&in->v[in->n], 0, sizeof in->v[in->n]);
		error = read_one(dirfd(d), e->d_name, &in->v[in->n]);
		if (error == -EINVAL) {		/* not a regular file after all */
			error = 0;
			continue;
		}
		in->n++;
		total += in->v[in->n - 1].size;
		if (error != 0 || total > INPUTS_TOTAL_MAX) {
			cpx_set_cause(cause, "input %s in %s: %s", e->d_name, dir,
			    error != 0 ? strerror(-error) : "inputs too large");
			error = error != 0 ? error : -EFBIG;
			break;
		}
	}
	closedir(d);
	return error;
}
