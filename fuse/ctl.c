/* ctl.c — $CLUSTERPLEX_RUN_DIR/fuse.sock: shims add and remove routes. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cfs.h"

/*
 * Who may route: root, this daemon's user, and the owner of the transcode
 * folder (PMS's user, whose shims ask). A route decides where PMS's reads
 * go, so nobody else may add one; the peer's credentials come from the
 * kernel (SO_PEERCRED), not from anything it says.
 */

#define CTL_SOCK "fuse.sock"

struct ctl_client;

struct ctl_req {
	struct ctl_client *client;
	uint32_t id;
	struct ctl_req *next;
};

struct ctl_client {
	struct cfs *fs;
	struct cpx_link *link;
	struct ctl_req *reqs;	/* ROUTE_ADDs not answered yet */
	struct ctl_client *next;
};

struct ctl {
	uv_poll_t poll;
	int fd;
	struct ctl_client *clients;
};

#define CTL(fs) ((struct ctl *)(fs)->ctl)

static void
send_error(struct cpx_link *link, uint32_t id, const char *code,
    const char *message)
{
	struct cpx_buf b;

	cpx_buf_init(&b);
	cpx_error_put(&b, code, message);
	cpx_link_send_buf(link, CPX_MSG_ERROR, id, &b);
}

static void
unlist(struct ctl_client *cl, struct ctl_req *rq)
{
	struct ctl_req **pp;

	for (pp = &cl->reqs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == rq) {
			*pp = rq->next;
			return;
		}
	}
}

static void
on_routed(struct cfs *fs, int status, const char *code, const char *message,
    void *arg)
{
	struct ctl_req *rq = arg;
	struct ctl_client *cl = rq->client;

	unlist(cl, rq);
	if (status == 0)
		cpx_link_send(cl->link, CPX_MSG_ROUTE_OK, rq->id, NULL, 0);
	else
		send_error(cl->link, rq->id, code, message);
	free(rq);
}

static void
route_add(struct ctl_client *cl, const struct cpx_frame *f)
{
	struct cfs_route_spec rs;
	struct ctl_req *rq;
	char *cause = NULL;

	if (cfs_route_spec_parse(f->payload, f->len, 0, &rs, &cause) != 0) {
		send_error(cl->link, f->id, CPX_ERR_SPEC, cause);
		free(cause);
		return;
	}
	rq = cpx_xcalloc(1, sizeof *rq);
	rq->client = cl;
	rq->id = f->id;
	rq->next = cl->reqs;
	cl->reqs = rq;
	cpx_info("route %s -> %s (%s:%d) for job %s", rs.dir, rs.ep.name,
	    rs.ep.host, rs.ep.port, rs.job);
	cfs_routing_add(cl->fs, &rs, on_routed, rq);
	cfs_route_spec_free(&rs);
}

static void
route_del(struct ctl_client *cl, const struct cpx_frame *f)
{
	struct cfs_route_spec rs;
	char *cause = NULL;

	if (cfs_route_spec_parse(f->payload, f->len, 1, &rs, &cause) != 0) {
		send_error(cl->link, f->id, CPX_ERR_SPEC, cause);
		free(cause);
		return;
	}
	cfs_routing_del(cl->fs, rs.dir);	/* absent already: fine too */
	cpx_link_send(cl->link, CPX_MSG_ROUTE_OK, f->id, NULL, 0);
	cfs_route_spec_free(&rs);
}

/* Forgets the client; its link is closed or closing. */
static void
drop_client(struct ctl_client *cl)
{
	struct ctl_client **pp;
	struct ctl_req *rq, *next;

	for (rq = cl->reqs; rq != NULL; rq = next) {
		next = rq->next;
		cfs_routing_cancel(cl->fs, rq);
		free(rq);
	}
	for (pp = &CTL(cl->fs)->clients; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == cl) {
			*pp = cl->next;
			break;
		}
	}
	free(cl);
}

static void
on_frame(struct cpx_link *link, const struct cpx_frame *f, void *arg)
{
	struct ctl_client *cl = arg;
	struct cpx_buf b;

	switch (f->type) {
	case CPX_MSG_ROUTE_ADD:
		route_add(cl, f);
		break;
	case CPX_MSG_ROUTE_DEL:
		route_del(cl, f);
		break;
	case CPX_MSG_PING:
		cpx_link_send(link, CPX_MSG_PONG, f->id, NULL, 0);
		break;
	case CPX_MSG_HELLO:
		cpx_buf_init(&b);
		cpx_hello_put(&b, NULL, "clusterplex-fuse");
		cpx_link_send_buf(link, CPX_MSG_HELLO, f->id, &b);
		break;
	default:
		send_error(link, f->id, CPX_ERR_PROTO, "unexpected message");
		cpx_link_close(link);
		drop_client(cl);
		break;
	}
}

static void
on_close(struct cpx_link *link, int error, void *arg)
{
	drop_client(arg);
}

static int
allowed(struct cfs *fs, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof cred;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return 0;
	if (cred.uid == 0 || cred.uid == geteuid() || cred.uid == fs->root_uid)
		return 1;
	cpx_warn("control socket: refusing pid %d (uid %u)", (int)cred.pid,
	    (unsigned)cred.uid);
	return 0;
}

static void
on_accept(uv_poll_t *p, int status, int events)
{
	struct cfs *fs = p->data;
	struct ctl_client *cl;
	int fd;

	while ((fd = accept4(CTL(fs)->fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		if (!allowed(fs, fd)) {
			close(fd);
			continue;
		}
		cl = cpx_xcalloc(1, sizeof *cl);
		cl->fs = fs;
		cl->link = cpx_link_stream_new(&fs->loop, fd, fd, on_frame,
		    on_close, cl);
		if (cl->link == NULL) {
			close(fd);
			free(cl);
			continue;
		}
		cl->next = CTL(fs)->clients;
		CTL(fs)->clients = cl;
	}
}

int
cfs_ctl_start(struct cfs *fs, char **cause)
{
	char *path = cpx_xprintf("%s/%s", fs->set.run_dir, CTL_SOCK);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ctl *ctl = cpx_xcalloc(1, sizeof *ctl);
	int error = 0;

	ctl->fd = -1;
	fs->ctl = ctl;
	if (strlen(path) >= sizeof sa.sun_path) {
		cpx_set_cause(cause, "socket path %s is too long", path);
		error = -ENAMETOOLONG;
		goto out;
	}
	strcpy(sa.sun_path, path);
	unlink(path);		/* left by an earlier run */
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0 || bind(ctl->fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    listen(ctl->fd, 64) != 0) {
		error = -errno;
		cpx_set_cause(cause, "cannot listen on %s: %s", path,
		    strerror(errno));
		goto out;
	}
	/* PMS's user runs the shims: the socket is theirs to use. */
	if (chown(path, fs->root_uid, fs->root_gid) != 0 ||
	    chmod(path, 0660) != 0)
		cpx_warn("cannot hand %s to uid %u: %s", path,
		    (unsigned)fs->root_uid, strerror(errno));
	uv_poll_init(&fs->loop, &ctl->poll, ctl->fd);
	ctl->poll.data = fs;
	uv_poll_start(&ctl->poll, UV_READABLE, on_accept);
out:
	if (error != 0) {
		if (ctl->fd >= 0)
			close(ctl->fd);
		free(ctl);
		fs->ctl = NULL;
	}
	free(path);
	return error;
}

static void
on_poll_closed(uv_handle_t *h)
{
	struct ctl *ctl = h->data;

	close(ctl->fd);
	free(ctl);
}

/* Stops listening and hangs up on every client (their answers go nowhere). */
void
cfs_ctl_stop(struct cfs *fs)
{
	struct ctl *ctl = CTL(fs);
	char *path;

	if (ctl == NULL)
		return;
	while (ctl->clients != NULL) {
		cpx_link_close(ctl->clients->link);
		drop_client(ctl->clients);
	}
	fs->ctl = NULL;
	ctl->poll.data = ctl;
	uv_close((uv_handle_t *)&ctl->poll, on_poll_closed);
	path = cpx_xprintf("%s/%s", fs->set.run_dir, CTL_SOCK);
	unlink(path);
	free(path);
}
