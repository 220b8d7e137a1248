/* files.c — the file service on one link: requests in, replies and events out. */

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"

/*
 * The fuse side pings every second or so; silence for longer than the
 * link timeout means the PMS host or the path to it is gone, and holding
 * handles and watches open for a dead peer helps nobody.
 */
#define FLOW_CHECK_MS 5

void
files_send_event(struct files_svc *s, uint8_t kind, const char *path,
    const struct cpx_attr *a, uint64_t dev, uint64_t ino)
{
	struct cpx_buf b;

	cpx_buf_init(&b);
	cpx_fevent_put_file(&b, kind, path, a, dev, ino);
	if (s->emit != NULL)
		s->emit(s, &b);
	else if (s->link != NULL)
		cpx_link_send(s->link, CPX_MSG_FEVENT, 0, b.data, b.len);
	cpx_buf_free(&b);
}

/* Pushed contents wait while this much output is not yet written. */
int
files_output_full(struct files_svc *s)
{
	return s->link != NULL && cpx_link_pending(s->link) > FILES_PUSH_HIGH;
}

/* Sends one encoded FPUSH frame; `frame` is emptied (or taken over). */
void
files_send_push(struct files_svc *s, struct cpx_buf *frame)
{
	struct cpx_buf payload;

	if (s->emit_push != NULL && frame->len >= CPX_FRAME_HDR) {
		payload.data = frame->data + CPX_FRAME_HDR;
		payload.len = payload.cap = frame->len - CPX_FRAME_HDR;
		s->emit_push(s, &payload);
		frame->len = 0;
	} else if (s->link != NULL) {
		cpx_link_send_frames(s->link, frame);
	} else {
		frame->len = 0;
	}
}

/* The link took what was queued: held-back pushes go on. */
static void
on_drain(struct cpx_link *link, void *arg)
{
	struct files_svc *s = arg;

	if (s->push_blocked)
		files_tasks_run(s);
}

/* The service is freed when the last of its libuv handles has closed. */
void
files_handle_closed(uv_handle_t *h)
{
	struct files_svc *s = h->data;

	if (--s->nhandles_open == 0)
		free(s);
}

/* The link is gone: release every handle and watch, then let the loop end. */
static void
shut_down(struct files_svc *s)
{
	files_close_all(s);
	uv_timer_stop(&s->timer);
	uv_close((uv_handle_t *)&s->timer, files_handle_closed);
}

static void on_timer(uv_timer_t *t);

/* Idle checks are rare; while paused, the drain is watched closely. */
static void
arm_timer(struct files_svc *s)
{
	uint64_t idle = (uint64_t)s->cfg->link_timeout_ms / 4;

	uv_timer_start(&s->timer, on_timer, s->paused ? FLOW_CHECK_MS : idle,
	    s->paused ? FLOW_CHECK_MS : idle);
}

/*
 * A client that asks faster than its replies drain (many large READs)
 * would grow our write queue without bound: stop reading until it drains.
 */
static void
flow_control(struct files_svc *s)
{
	size_t pending = cpx_link_pending(s->link);

	if (!s->paused && pending > FILES_PAUSE_BYTES) {
		s->paused = 1;
		cpx_link_pause(s->link, 1);
		arm_timer(s);
	} else if (s->paused && pending < FILES_RESUME_BYTES) {
		s->paused = 0;
		s->last_heard = uv_now(s->loop);
		cpx_link_pause(s->link, 0);
		arm_timer(s);
	}
}

static void
on_timer(uv_timer_t *t)
{
	struct files_svc *s = t->data;

	if (s->link == NULL)
		return;
	flow_control(s);
	files_push_tick(s, uv_now(s->loop));
	if (s->push_blocked && !files_output_full(s))
		files_tasks_run(s);
	if (!s->paused &&
	    uv_now(s->loop) - s->last_heard > (uint64_t)s->cfg->link_timeout_ms) {
		cpx_warn("file service: nothing heard for %ld ms, closing",
		    s->cfg->link_timeout_ms);
		cpx_link_close(s->link);
		s->link = NULL;
		*s->status = 1;
		shut_down(s);
	}
}

static void
protocol_error(struct files_svc *s, const char *message)
{
	struct cpx_buf b;

	cpx_warn("file service: %s", message);
	cpx_buf_init(&b);
	cpx_error_put(&b, CPX_ERR_PROTO, message);
	cpx_link_send_buf(s->link, CPX_MSG_ERROR, 0, &b);
	cpx_link_close(s->link);
	s->link = NULL;
	*s->status = 1;
	shut_down(s);
}

static void
on_frame(struct cpx_link *link, const struct cpx_frame *f, void *arg)
{
	struct files_svc *s = arg;
	struct cpx_buf reply;
	size_t start;

	s->last_heard = uv_now(s->loop);
	switch (f->type) {
	case CPX_MSG_FREQ:
		cpx_buf_init(&reply);
		start = cpx_frame_begin(&reply);
		s->splice_ok = cpx_link_can_splice(link);
		files_request(s, f->payload, f->len, &reply);
		s->splice_ok = 0;
		cpx_frame_end_after(&reply, start, CPX_MSG_FREPLY, f->id,
		    s->spliced);
		if (s->spliced > 0)
			cpx_link_send_spliced(link, &reply, s->spipe[0],
			    s->spliced);
		else
			cpx_link_send_frames(link, &reply);
		s->spliced = 0;
		if (!s->paused && cpx_link_pending(link) > FILES_PAUSE_BYTES)
			flow_control(s);
		break;
	case CPX_MSG_PING:
		cpx_link_send(link, CPX_MSG_PONG, f->id, NULL, 0);
		break;
	case CPX_MSG_PONG:
		break;
	default:
		protocol_error(s, "unexpected message on the file service");
		break;
	}
}

static void
on_close(struct cpx_link *link, int error, void *arg)
{
	struct files_svc *s = arg;

	if (error != 0)
		cpx_info("file service: link lost: %s", strerror(-error));
	*s->status = error == 0 ? 0 : 1;
	s->link = NULL;
	shut_down(s);
}

/*
 * Takes the link over after HELLO. Requests are answered in order, inline:
 * they are short syscalls on the worker's own disk, and ordering keeps
 * WRITE, CLOSE and RENAME of one file in the sequence the client sent.
 */
int
agent_files_start(struct agent_config *cfg, struct uv_loop_s *loop,
    struct cpx_link *link, int *status)
{
	struct files_svc *s = cpx_xmalloc(sizeof *s);

	if (files_init(s, cfg) != 0) {
		free(s);
		return -1;
	}
	s->loop = loop;
	s->link = link;
	s->status = status;
	*status = 0;
	s->last_heard = uv_now(loop);
	uv_timer_init(loop, &s->timer);
	s->timer.data = s;
	s->nhandles_open = 1;
	arm_timer(s);
	link->on_frame = on_frame;
	link->on_close = on_close;
	link->on_drain = on_drain;
	link->arg = s;
	/*
	 * Replies are large (512 KiB reads): a 64 KiB pipe to sshd would make
	 * every one a dozen wake-ups of both. Best effort: it may be a socket.
	 */
	fcntl(STDOUT_FILENO, F_SETPIPE_SZ, 1024 * 1024);
	/*
	 * Reply buffers of file contents come and go by the hundred per
	 * second: from fresh mmap()s (glibc's default above 128 KiB) each
	 * would cost a page fault and a zeroed page per 4 KiB, more than the
	 * read itself. Keep them in the heap.
	 */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 128 * 1024 * 1024);
	cpx_info("file service for %s", cfg->root);
	return 0;
}
