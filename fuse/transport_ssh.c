/* transport_ssh.c — a worker's file service over SSH (common/ssh.c). */

#include <errno.h>
#include <stdlib.h>

#include "cfs.h"
#include "cpx-ssh.h"

/*
 * One SSH connection per worker, one channel on it running the worker's
 * forced command (the agent), HELLO "files". The connection stays open
 * while routes point at the worker (worker.c closes idle ones), so a new
 * session's first request costs a round trip, not a handshake.
 */

struct sshw {
	struct cfs *fs;
	struct cfs_worker *w;
	struct cpx_ssh_conn *conn;	/* the current one; callbacks of older
					   connections are ignored */
};

static void
on_opened(struct cpx_ssh_conn *c, int status, const char *cause,
    struct cpx_link *link, void *arg)
{
	struct sshw *s = arg;

	if (c != s->conn) {
		if (link != NULL)
			cpx_link_close(link);
		return;
	}
	if (status != 0)
		cfs_worker_failed(s->fs, s->w, status, cause);
	else
		cfs_worker_linked(s->fs, s->w, link);
}

static void
on_ready(struct cpx_ssh_conn *c, int status, const char *cause, void *arg)
{
	struct sshw *s = arg;

	if (c != s->conn)
		return;
	if (status != 0) {
		cfs_worker_failed(s->fs, s->w, status, cause);
		return;
	}
	cpx_ssh_open_link(c, CFS_AGENT_COMMAND, cfs_link_frame, cfs_link_close,
	    s->w, on_opened, s);
}

static void
on_dead(struct cpx_ssh_conn *c, int status, const char *cause, void *arg)
{
	struct sshw *s = arg;

	if (c == s->conn)
		cfs_worker_failed(s->fs, s->w, status, cause);
}

static void
ssh_connect(struct cfs *fs, struct cfs_worker *w)
{
	struct cpx_ssh_auth auth = {
		.key_path = fs->set.ssh_key,
		.known_hosts = fs->set.known_hosts,
	};
	struct cpx_ssh_opts opts = {
		.connect_timeout_ms = (unsigned)fs->set.connect_timeout_ms,
		.keepalive_ms = (unsigned)fs->set.keepalive_ms,
	};
	struct sshw *s = w->conn;

	if (s == NULL) {
		s = cpx_xcalloc(1, sizeof *s);
		s->fs = fs;
		s->w = w;
		w->conn = s;
	}
	s->conn = cpx_ssh_connect(w->lane->loop, &w->ep, &auth, &opts, on_ready,
	    on_dead, s);
}

static void
ssh_disconnect(struct cfs *fs, struct cfs_worker *w)
{
	struct sshw *s = w->conn;
	struct cpx_ssh_conn *c;

	if (s == NULL || (c = s->conn) == NULL)
		return;
	s->conn = NULL;
	cpx_ssh_close(c);
}

static void
ssh_release(struct cfs *fs, struct cfs_worker *w)
{
	ssh_disconnect(fs, w);
	free(w->conn);
	w->conn = NULL;
}

const struct cfs_transport cfs_ssh_transport = {
	.name = "ssh",
	.connect = ssh_connect,
	.disconnect = ssh_disconnect,
	.release = ssh_release,
};
