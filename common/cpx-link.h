/* cpx-link.h — a framed message link over a libuv stream or an SSH channel. */

#ifndef CPX_LINK_H
#define CPX_LINK_H

#include <uv.h>

#include "cpx-protocol.h"

struct cpx_link;

typedef void (*cpx_link_frame_cb)(struct cpx_link *link,
    const struct cpx_frame *f, void *arg);
/* error is 0 for a clean EOF from the peer, else a negative errno. */
typedef void (*cpx_link_close_cb)(struct cpx_link *link, int error,
    void *arg);

/*
 * Optional (set link->on_drain after creating the link): everything
 * written has been handed to the transport. For flow control: a producer
 * that paused because cpx_link_pending() grew resumes here.
 */
typedef void (*cpx_link_drain_cb)(struct cpx_link *link, void *arg);

/*
 * A backend moves bytes; the link turns them into frames. Backends call
 * cpx_link_input() with what they read and cpx_link_lost() when the
 * transport ends; the link calls the backend to write and to close.
 */
struct cpx_link_ops {
	void (*write)(struct cpx_link *link, struct cpx_buf *data);
	size_t (*pending)(struct cpx_link *link);
	void (*pause)(struct cpx_link *link, int paused);
	void (*close)(struct cpx_link *link);
	/* Optional: writes head, then len bytes moved out of pipe_fd. */
	int (*splice)(struct cpx_link *link, struct cpx_buf *head,
	    int pipe_fd, size_t len);
};

struct cpx_link {
	const struct cpx_link_ops *ops;
	void *backend;
	struct cpx_buf in;
	cpx_link_frame_cb on_frame;
	cpx_link_close_cb on_close;
	cpx_link_drain_cb on_drain;
	void *arg;
	int closed;
	int delivering;
	int free_pending;
	size_t taken;		/* bytes of the last buffer taken, 0: none */
};

/* link.c */

void cpx_link_init(struct cpx_link *link, const struct cpx_link_ops *ops,
    void *backend, cpx_link_frame_cb on_frame, cpx_link_close_cb on_close,
    void *arg);
void cpx_link_send(struct cpx_link *link, uint8_t type, uint32_t id,
    const void *payload, size_t len);
void cpx_link_send_buf(struct cpx_link *link, uint8_t type, uint32_t id,
    struct cpx_buf *payload);
void cpx_link_send_frames(struct cpx_link *link, struct cpx_buf *frames);
void cpx_link_send_spliced(struct cpx_link *link, struct cpx_buf *head,
    int pipe_fd, size_t len);
int cpx_link_can_splice(struct cpx_link *link);
size_t cpx_link_pending(struct cpx_link *link);
void cpx_link_pause(struct cpx_link *link, int paused);
void cpx_link_close(struct cpx_link *link);
void cpx_link_input(struct cpx_link *link, const void *data, size_t len);
void *cpx_link_take_frame(struct cpx_link *link, const struct cpx_frame *f);
void cpx_link_lost(struct cpx_link *link, int error);
void cpx_link_drained(struct cpx_link *link);

struct cpx_link *cpx_link_stream_new(uv_loop_t *loop, int in_fd, int out_fd,
    cpx_link_frame_cb on_frame, cpx_link_close_cb on_close, void *arg);
struct cpx_link *cpx_link_uv_new(uv_stream_t *in, uv_stream_t *out,
    cpx_link_frame_cb on_frame, cpx_link_close_cb on_close, void *arg);

#endif /* CPX_LINK_H */
