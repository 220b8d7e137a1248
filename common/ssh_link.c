/* ssh_link.c — an SSH channel as a cpx_link backend: frames over libssh2. */

#include <errno.h>
#include <stdlib.h>

#include "cpx-ssh.h"

struct sshlink {
	struct cpx_link link;
	struct cpx_ssh_conn *conn;
	struct cpx_ssh_chan *ch;	/* NULL once the channel has ended */
	cpx_ssh_open_cb opened;
	void *opened_arg;
};

static void
sshlink_write(struct cpx_link *link, struct cpx_buf *data)
{
	struct sshlink *sl = link->backend;

	if (sl->ch != NULL)
		cpx_ssh_chan_write(sl->ch, data->data, data->len);
	cpx_buf_free(data);
}

static size_t
sshlink_pending(struct cpx_link *link)
{
	struct sshlink *sl = link->backend;

	return sl->ch != NULL ? cpx_ssh_chan_pending(sl->ch) : 0;
}

static void
sshlink_pause(struct cpx_link *link, int paused)
{
	struct sshlink *sl = link->backend;

	if (sl->ch != NULL)
		cpx_ssh_chan_pause(sl->ch, paused);
}

/* Queued frames still go out, then EOF: the agent stops at once. */
static void
sshlink_close(struct cpx_link *link)
{
	struct sshlink *sl = link->backend;

	cpx_ssh_chan_close(sl->ch, 1);
	cpx_buf_free(&sl->link.in);
	free(sl);
}

static const struct cpx_link_ops sshlink_ops = {
	.write = sshlink_write,
	.pending = sshlink_pending,
	.pause = sshlink_pause,
	.close = sshlink_close,
};

static void
on_opened(struct cpx_ssh_chan *ch, int status, const char *cause, void *arg)
{
	struct sshlink *sl = arg;

	if (status != 0) {
		sl->opened(sl->conn, status, cause, NULL, sl->opened_arg);
		cpx_buf_free(&sl->link.in);
		free(sl);
		return;
	}
	sl->opened(sl->conn, 0, NULL, &sl->link, sl->opened_arg);
}

static void
on_data(struct cpx_ssh_chan *ch, const void *p, size_t n, void *arg)
{
	struct sshlink *sl = arg;

	cpx_link_input(&sl->link, p, n);
}

static void
on_end(struct cpx_ssh_chan *ch, int error, void *arg)
{
	struct sshlink *sl = arg;

	sl->ch = NULL;
	cpx_link_lost(&sl->link, error);
}

static void
on_drain(struct cpx_ssh_chan *ch, void *arg)
{
	struct sshlink *sl = arg;

	cpx_link_drained(&sl->link);
}

static const struct cpx_ssh_chan_cbs sshlink_cbs = {
	.opened = on_opened,
	.data = on_data,
	.end = on_end,
	.drain = on_drain,
};

void
cpx_ssh_open_link(struct cpx_ssh_conn *c, const char *command,
    cpx_link_frame_cb on_frame, cpx_link_close_cb on_close, void *link_arg,
    cpx_ssh_open_cb opened, void *arg)
{
	struct sshlink *sl = cpx_xcalloc(1, sizeof *sl);

	cpx_link_init(&sl->link, &sshlink_ops, sl, on_frame, on_close,
	    link_arg);
	sl->conn = c;
	sl->opened = opened;
	sl->opened_arg = arg;
	sl->ch = cpx_ssh_chan_open(c, command, &sshlink_cbs, sl);
	if (sl->ch == NULL) {
		/* The connection is already gone: say so at once. */
		cpx_warn("%s: no channel on a closed connection",
		    cpx_ssh_endpoint(c)->name);
		opened(c, -ECONNABORTED, "connection closed", NULL, arg);
		cpx_buf_free(&sl->link.in);
		free(sl);
	}
}
