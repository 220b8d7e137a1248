/*
 * fuse_pipe.c — clusterplex-fuse for tests without sshd: each worker is a
 * real `clusterplex-agent exec` spawned locally on a socket pair.
 *
 * Built by tests/integration/fuse.mk from fuse/'s objects (all but
 * main.o); only the transport differs from the product binary. Test-only:
 *
 *   CFS_TEST_AGENT        path of clusterplex-agent
 *   CFS_TEST_WORKERS      folder with <worker>.env (the agent's env file);
 *                         the transport writes <worker>.<lane>.pid there
 *                         (one agent per connection), and refuses to
 *                         connect while <worker>.down exists.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cfs.h"

struct spawned {
	uv_process_t proc;
	struct cfs_worker *w;
};

static const char *agent_path, *workers_dir;

static void
on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
	uv_close((uv_handle_t *)p, (uv_close_cb)free);
}

static void
write_pid(const char *name, int lane, int pid)
{
	char *path = cpx_xprintf("%s/%s.%d.pid", workers_dir, name, lane);
	FILE *f = fopen(path, "w");

	if (f != NULL) {
		fprintf(f, "%d\n", pid);
		fclose(f);
	}
	free(path);
}

static int
spawn(struct cfs *fs, struct cfs_worker *w, int fd)
{
	char *env = cpx_xprintf("%s/%s.env", workers_dir, w->name);
	char *args[] = { (char *)agent_path, "exec", "--env-file", env, NULL };
	struct spawned *s = cpx_xcalloc(1, sizeof *s);
	uv_stdio_container_t io[3];
	uv_process_options_t o;
	int error;

	memset(&o, 0, sizeof o);
	io[0].flags = io[1].flags = UV_INHERIT_FD;
	io[0].data.fd = io[1].data.fd = fd;
	io[2].flags = UV_INHERIT_FD;
	io[2].data.fd = 2;
	o.file = agent_path;
	o.args = args;
	o.stdio = io;
	o.stdio_count = 3;
	o.exit_cb = on_exit_cb;
	s->w = w;
	error = uv_spawn(w->lane->loop, &s->proc, &o);
	if (error == 0)
		write_pid(w->name, w->lane->index, s->proc.pid);
	else
		free(s);
	free(env);
	return error;
}

static void
pipe_connect(struct cfs *fs, struct cfs_worker *w)
{
	char *down = cpx_xprintf("%s/%s.down", workers_dir, w->name);
	struct cpx_link *link;
	int sv[2], error;

	if (access(down, F_OK) == 0) {
		free(down);
		cfs_worker_failed(fs, w, -EHOSTUNREACH, "worker is down (test)");
		return;
	}
	free(down);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		cfs_worker_failed(fs, w, -errno, strerror(errno));
		return;
	}
	error = spawn(fs, w, sv[1]);
	close(sv[1]);
	if (error != 0) {
		close(sv[0]);
		cfs_worker_failed(fs, w, -ECONNREFUSED, uv_strerror(error));
		return;
	}
	link = cpx_link_stream_new(w->lane->loop, sv[0], sv[0], cfs_link_frame,
	    cfs_link_close, w);
	cfs_worker_linked(fs, w, link);
}

/* The agent sees EOF when the link closes and exits by itself. */
static void
pipe_disconnect(struct cfs *fs, struct cfs_worker *w)
{
}

static const struct cfs_transport pipe_transport = {
	.name = "test pipe",
	.connect = pipe_connect,
	.disconnect = pipe_disconnect,
};

int
main(int argc, char **argv)
{
	struct cfs_settings set;
	char *cause = NULL;

	cpx_log_init("clusterplex-fuse-pipe");
	agent_path = getenv("CFS_TEST_AGENT");
	workers_dir = getenv("CFS_TEST_WORKERS");
	if (agent_path == NULL || workers_dir == NULL || argc > 2) {
		fprintf(stderr, "usage: CFS_TEST_AGENT=... CFS_TEST_WORKERS=... "
		    "%s [MOUNTPOINT]\n", argv[0]);
		return 2;
	}
	if (cfs_settings_load(&set, &cause) != 0 ||
	    cfs_settings_mountpoint(&set, argc == 2 ? argv[1] : NULL,
	    &cause) != 0) {
		cpx_error("configuration: %s", cause);
		free(cause);
		return 78;
	}
	set.debug = getenv("CFS_TEST_DEBUG") != NULL;
	return cfs_run(&set, &pipe_transport, NULL);
}
