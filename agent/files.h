/* files.h — the agent's file service (`files` HELLO), shared by files*.c. */

#ifndef AGENT_FILES_H
#define AGENT_FILES_H

#include <stdint.h>
#include <sys/stat.h>

#include <uv.h>

#include "agent.h"
#include "cpx-link.h"

/* Bounds per connection, so one client cannot exhaust the worker. */
#define FILES_MAX_HANDLES 256
#define FILES_MAX_WATCHES 1024

/* Stop reading requests while this much reply data waits to be sent. */
#define FILES_PAUSE_BYTES (16u * 1024 * 1024)
#define FILES_RESUME_BYTES (4u * 1024 * 1024)

/*
 * Pushing file contents (files_push.c): at most this many files followed
 * at once, and no file read while this much output waits to be sent, so
 * memory stays bounded whatever the transcoders write: the files on disk
 * are the buffer. Events wait behind the pushes of files completed before
 * them (they are one ordered queue), up to FILES_MAX_TASKS; beyond that
 * inotify is no longer read (the kernel reports an overflow if it must).
 */
#define FILES_MAX_STREAMS 64
#define FILES_WRITTEN_RING 64	/* files the service itself wrote, lately */
#define FILES_PUSH_HIGH (512u * 1024)
#define FILES_MAX_TASKS 4096
#define FILES_PUSH_MAX_BYTES (4096ull * 1024 * 1024)

struct files_watch {
	int wd;
	char *path;		/* relative to the root */
	int events;		/* WATCH: FEVENTs for this folder */
	int push;		/* PUSH: contents of its files */
	unsigned share, shares;
	uint64_t push_max;	/* larger files are not pushed */
};

/* A file whose contents are being pushed, keyed by (dev, ino). */
struct files_stream {
	uint64_t dev, ino;
	int fd;			/* read-only, on the file itself */
	int wd;			/* its folder's watch */
	char *name;		/* its name there now; NULL once moved away */
	unsigned share, shares;	/* our blocks: index % shares == share */
	uint64_t max;		/* larger files are not pushed */
	int big;		/* it grew past max: not followed, fd closed */
	uint64_t *sums;		/* per block: hash of what was sent, 0 = not sent */
	size_t nsums;
	uint64_t next_grow;	/* next block of ours to send while it grows */
	int dirty;		/* written since we last looked */
	int done;		/* DONE sent for `version`, unchanged since */
	struct cpx_attr version;
	uint64_t used;		/* ms: last activity; idle streams end */
};

/* One step of the ordered outgoing work: an event, or a completion. */
enum { TASK_EVENT, TASK_COMPLETE };

struct files_task {
	struct files_task *next;
	int kind;
	uint8_t ev;		/* enum cpx_fevent */
	int deleted;		/* REMOVED: unlinked, not moved away */
	char *dir;		/* the watched folder, relative to the root */
	char *name;		/* in it; NULL for the folder itself */
	struct files_watch w;	/* the watch's settings when it happened
				   (w.path not owned) */
	/* TASK_COMPLETE: the file as first seen, and while its blocks go out */
	int started, regular;
	uint64_t dev, ino;
	struct cpx_attr named;
	struct files_stream *st;
	uint64_t next_block;
	struct cpx_attr before;
	int tries;
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
	/* Tests: FPUSH payloads go here instead of the link. */
	int (*emit_push)(struct files_svc *s, const struct cpx_buf *payload);

	struct files_stream *streams[FILES_MAX_STREAMS];
	struct files_task *tasks, *tasks_tail;
	size_t ntasks;
	int inpoll_stopped;	/* too many tasks: inotify waits */
	int push_blocked;	/* output over FILES_PUSH_HIGH: wait for drain */
	int running;		/* files_tasks_run() is on the stack */
	struct cpx_buf scratch;	/* a frame being built from a block */
	int spipe[2];		/* a read reply's bytes, spliced (-1: none) */
	int spipe_failed;
	size_t spipe_room;	/* the largest read spliced */
	int splice_ok;		/* this request's reply may be spliced */
	size_t spliced;		/* bytes of this reply in spipe */
	struct {
		uint64_t dev, ino;
	} written[FILES_WRITTEN_RING];	/* not pushed: fuse wrote them */
	unsigned written_next;
};

/* files.c */
void files_handle_closed(uv_handle_t *h);
void files_send_event(struct files_svc *s, uint8_t kind, const char *path,
    const struct cpx_attr *a, uint64_t dev, uint64_t ino);
int files_output_full(struct files_svc *s);
void files_send_push(struct files_svc *s, struct cpx_buf *frame);

/* files_ops.c */
int files_init(struct files_svc *s, struct agent_config *cfg);
void files_request(struct files_svc *s, const uint8_t *p, size_t n,
    struct cpx_buf *reply);
void files_close_all(struct files_svc *s);

/* files_splice.c */
int files_splice_read(struct files_svc *s, int fd, uint64_t off, size_t size);
void files_splice_close(struct files_svc *s);

/* files_rmtree.c */
int files_rmtree(struct files_svc *s, const char *path);

/* files_watch.c */
int files_watch_add(struct files_svc *s, const char *path);
int files_watch_push(struct files_svc *s, const char *path, uint32_t flags,
    uint64_t max);
int files_watch_remove(struct files_svc *s, const char *path);
void files_watch_drain(struct files_svc *s);
void files_watch_close(struct files_svc *s);
struct files_watch *files_watch_by_wd(struct files_svc *s, int wd);
int files_watch_dir(struct files_svc *s, struct files_watch *w);

void files_watch_resume(struct files_svc *s);

/* files_task.c */
struct files_task *files_task_add(struct files_svc *s, int kind,
    const struct files_watch *w, uint8_t ev, const char *name);
void files_tasks_run(struct files_svc *s);
void files_tasks_free(struct files_svc *s);

/* files_push.c */
void files_push_modified(struct files_svc *s, struct files_watch *w,
    const char *name);
void files_push_moved_away(struct files_svc *s, int wd, const char *name);
void files_push_deleted(struct files_svc *s, int wd, const char *name);
int files_push_complete(struct files_svc *s, struct files_task *t,
    struct cpx_attr *a);
void files_push_overflow(struct files_svc *s);
int files_push_grow(struct files_svc *s);
void files_push_unwatch(struct files_svc *s, int wd);
void files_push_tick(struct files_svc *s, uint64_t now);
void files_push_close(struct files_svc *s);
uint64_t files_hash(const uint8_t *p, size_t n);
void files_mark_written(struct files_svc *s, int fd);
int files_was_written(struct files_svc *s, uint64_t dev, uint64_t ino);

#endif /* AGENT_FILES_H */
