/* files.h — the agent's file service (`files` HELLO), shared by files*.c. */

#ifndef AGENT_FILES_H
#define AGENT_FILES_H

#include <stdint.h>

#include <uv.h>

#include "agent.h"
#include "cpx-link.h"

/* Bounds per connection, so one client cannot exhaust the worker. */
#define FILES_MAX_HANDLES 256
#define FILES_MAX_WATCHES 1024

/* Stop reading requests while this much reply data waits to be sent. */
#define FILES_PAUSE_BYTES (16u * 1024 * 1024)
#define FILES_RESUME_BYTES (4u * 1024 * 1024)

struct files_watch {
	int wd;
	char *path;		/* relative to the root */
};

struct files_svc {
	struct agent_config *cfg;
	uv_loop_t *loop;
	struct cpx_link *link;	/* NULL when driven directly (fuzzing) */
	int *status;
	int rootfd;		/* O_PATH of cfg->root; every path resolves beneath */

	int fds[FILES_MAX_HANDLES];	/* -1 when free */
	uint32_t gens[FILES_MAX_HANDLES];

	int infd;		/* inotify, -1 until the first WATCH */
	uv_poll_t inpoll;
	struct files_watch *watches;
	size_t nwatches;

	uv_timer_t timer;	/* idle bound and flow control */
	uint64_t last_heard;
	int paused;
	int nhandles_open;	/* libuv handles still closing */
	int (*emit)(struct files_svc *s, const struct cpx_buf *payload);
};

/* files.c */
void files_handle_closed(uv_handle_t *h);
void files_send_event(struct files_svc *s, uint8_t kind, const char *path,
    const struct cpx_attr *a);

/* files_ops.c */
int files_init(struct files_svc *s, struct agent_config *cfg);
void files_request(struct files_svc *s, const uint8_t *p, size_t n,
    struct cpx_buf *reply);
void files_close_all(struct files_svc *s);

/* files_watch.c */
int files_watch_add(struct files_svc *s, const char *path);
int files_watch_remove(struct files_svc *s, const char *path);
void files_watch_drain(struct files_svc *s);
void files_watch_close(struct files_svc *s);

#endif /* AGENT_FILES_H */
