/* route.c — telling clusterplex-fuse which worker holds a session folder. */

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cJSON.h>

#include "shim.h"

/*
 * fuse answers ROUTE_ADD once the worker watches the folder: on a cold
 * worker that includes fuse's own SSH connection, which our SSH timeout
 * bounds for us too; the rest is slack for one round trip on a busy host.
 */
#define ROUTE_SLACK_MS 2000

static int
route_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static char *
route_body(int type, const char *dir, const char *job_id,
    const struct cpx_endpoint *worker)
{
	cJSON *obj = cJSON_CreateObject(), *w;

	cJSON_AddStringToObject(obj, "dir", dir);
	if (type == CPX_MSG_ROUTE_ADD) {
		cJSON_AddStringToObject(obj, "job", job_id);
		w = cJSON_AddObjectToObject(obj, "worker");
		cpx_endpoint_to_json(worker, w);
	}
	return cpx_json_take(obj, 0);
}

/*
 * fuse's ERROR code as an errno: -EHOSTUNREACH and -EKEYREJECTED mean the
 * worker could not be reached or trusted (its failure, not fuse's).
 */
static int
route_errno(const char *code)
{
	if (code == NULL)
		return -EPROTO;
	if (strcmp(code, CPX_ERR_CONNECT) == 0)
		return -EHOSTUNREACH;
	if (strcmp(code, CPX_ERR_HOSTKEY) == 0 || strcmp(code, CPX_ERR_AUTH) == 0)
		return -EKEYREJECTED;
	return -EPROTO;
}

/* Reads one answer frame before the deadline; its type or -errno. */
static int
read_answer(int fd, uint64_t deadline, char **message)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct cpx_buf in;
	struct cpx_frame f;
	char chunk[4096], *code = NULL;
	size_t used;
	ssize_t n;
	int error = -ETIMEDOUT, ms;

	cpx_buf_init(&in);
	while ((ms = (int)(deadline - cpx_now_ms())) > 0 && in.len < 65536) {
		if (poll(&p, 1, ms) <= 0)
			continue;
		n = read(fd, chunk, sizeof chunk);
		if (n <= 0) {
			error = n == 0 ? -ECONNRESET : -errno;
			break;
		}
		cpx_buf_add(&in, chunk, (size_t)n);
		error = cpx_frame_next(in.data, in.len, &f, &used);
		if (error == -EAGAIN)
			continue;
		if (error == 0 && f.type == CPX_MSG_ERROR) {
			error = cpx_error_parse(f.payload, f.len, &code,
			    message) == 0 ? route_errno(code) : -EPROTO;
			free(code);
			break;
		}
		error = error == 0 ? f.type : error;
		break;
	}
	cpx_buf_free(&in);
	return error;
}

/*
 * Sends ROUTE_ADD or ROUTE_DEL to $CLUSTERPLEX_RUN_DIR/fuse.sock and
 * waits for ROUTE_OK. Returns 0, 1 when there is no fuse socket (shared
 * storage is assumed), or a negative errno with *cause: -EHOSTUNREACH or
 * -EKEYREJECTED when fuse could not reach or trust the worker,
 * -ETIMEDOUT when it did not answer in time.
 */
int
shim_route(const struct shim_config *cfg, int type, const char *dir,
    const char *job_id, const struct cpx_endpoint *worker, char **cause)
{
	char *path = cpx_xprintf("%s/fuse.sock", cfg->run_dir), *body, *msg = NULL;
	struct cpx_buf out;
	int fd, answer, error = 0;

	fd = route_connect(path);
	if (fd == -ENOENT) {
		free(path);
		return 1;
	}
	cpx_buf_init(&out);
	body = route_body(type, dir, job_id, worker);
	if (fd < 0) {
		error = fd;
		cpx_set_cause(cause, "%s: %s", path, strerror(-error));
		goto out;
	}
	cpx_frame_put(&out, (uint8_t)type, 0, body, strlen(body));
	if (cpx_write_all(fd, out.data, out.len) < 0) {
		error = -errno;
		cpx_set_cause(cause, "%s: %s", path, strerror(errno));
		goto out;
	}
	answer = read_answer(fd, cpx_now_ms() + (uint64_t)cfg->ssh_timeout_ms +
	    ROUTE_SLACK_MS, &msg);
	if (answer != CPX_MSG_ROUTE_OK) {
		error = answer < 0 ? answer : -EPROTO;
		cpx_set_cause(cause, "fuse refused the route for %s: %s", dir,
		    msg != NULL ? msg : answer < 0 ? strerror(-answer) :
		    cpx_msg_name(answer));
	}
out:
	if (fd >= 0)
		close(fd);
	cpx_buf_free(&out);
	free(body);
	free(path);
	free(msg);
	return error;
}
