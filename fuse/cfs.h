/* cfs.h — clusterplex-fuse internals ("cfs": the ClusterPlex filesystem). */

#ifndef CFS_H
#define CFS_H

/*
 * The prefix is cfs_ rather than fuse_: libfuse owns the fuse_ namespace
 * (fuse_session_*, fuse_reply_*, struct fuse_ctx, ...) and a clash would
 * be silent at best.
 */

#define FUSE_USE_VERSION 312

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <fuse_lowlevel.h>
#include <uv.h>

#include "cpx-link.h"
#include "cpx-protocol.h"

/* Kernel cache lifetimes, seconds; docs/fuse.md explains each choice. */
#define CFS_LOCAL_TIMEOUT 1.0	/* attr/entry of local paths */
#define CFS_REMOTE_TIMEOUT 1.0	/* attr/entry of remote paths */
#define CFS_REMOTE_NEGATIVE 1.0	/* missing names in watched folders */
#define CFS_STABLE_TIMEOUT 60.0	/* attr/entry of finished remote segments */
#define CFS_BDI_READAHEAD_KB 2048 /* the kernel's read-ahead on the mount */

/*
 * One PREAD, one cache block. Small enough that a segment's first bytes
 * arrive before its last ones are sent, and that a segment's blocks
 * spread over the connections (bench/fuse.sh: 128 KiB beat 512 KiB on
 * both latency and throughput); large next to the per-request cost.
 */
#define CFS_BLOCK CPX_PUSH_BLOCK

/* config.c */

struct cfs_settings {
	char *mountpoint;	/* CLUSTERPLEX_TRANSCODE_DIR, or the argument */
	char *run_dir;		/* CLUSTERPLEX_RUN_DIR */
	char *ssh_key;		/* CLUSTERPLEX_SSH_KEY */
	char *known_hosts;	/* CLUSTERPLEX_KNOWN_HOSTS (optional) */
	long op_timeout_ms;	/* CLUSTERPLEX_FUSE_TIMEOUT_MS */
	long connect_timeout_ms; /* CLUSTERPLEX_CONNECT_TIMEOUT_MS */
	long keepalive_ms;	/* CLUSTERPLEX_KEEPALIVE_MS */
	long cache_mb;		/* CLUSTERPLEX_FUSE_CACHE_MB */
	long prefetch_max_mb;	/* CLUSTERPLEX_FUSE_PREFETCH_MAX_MB */
	long readahead_kb;	/* CLUSTERPLEX_FUSE_READAHEAD_KB */
	long threads;		/* CLUSTERPLEX_FUSE_THREADS */
	long shutdown_ms;	/* CLUSTERPLEX_FUSE_SHUTDOWN_MS */
	long connections;	/* CLUSTERPLEX_FUSE_CONNECTIONS (per worker) */
	long passthrough;	/* CLUSTERPLEX_FUSE_PASSTHROUGH (0/1) */
	int openssh;		/* CLUSTERPLEX_FUSE_SSH: /usr/bin/ssh (1) or libssh2 */
	int debug;		/* --debug: libfuse traces every request */
};

int cfs_settings_load(struct cfs_settings *set, char **cause);
int cfs_settings_mountpoint(struct cfs_settings *set, const char *arg,
    char **cause);
void cfs_settings_free(struct cfs_settings *set);

/* node.c: the inode table. A node is a name in a parent, like a dentry. */

struct cfs_node {
	uint64_t ino;
	struct cfs_node *parent;
	char *name;
	uint64_t nlookup;	/* the kernel's references */
	unsigned refs;		/* children and open files */
	int remote;		/* lives on a worker, not underneath the mount */
	int unlinked;
	int has_kver;		/* remote file: the kernel may cache pages of */
	struct cpx_attr kver;	/* this version only (see remote.c) */
	struct cfs_node *next_ino, *next_name;
};

/*
 * What PMS may see of a worker's folder: regular files and folders. A
 * FIFO would block PMS's open for ever (its writer is on another host), a
 * device node or socket means nothing here, and a symlink is followed by
 * the worker's STAT (beneath its root) or not shown at all. Others are
 * hidden: left out of listings, ENOENT on lookup.
 */
static inline int
cfs_remote_shown(uint32_t mode)
{
	return S_ISREG(mode) || S_ISDIR(mode);
}

/* Two attributes describe the same contents (a file's version). */
static inline int
cfs_same_version(const struct cpx_attr *a, const struct cpx_attr *b)
{
	return a->size == b->size && a->mtime_s == b->mtime_s &&
	    a->mtime_ns == b->mtime_ns;
}

struct cfs;

void cfs_nodes_init(struct cfs *fs);
void cfs_nodes_free(struct cfs *fs);
char *cfs_node_path(struct cfs *fs, fuse_ino_t ino, int *remote);
char *cfs_child_path(const char *dir, const char *name);
fuse_ino_t cfs_node_learn(struct cfs *fs, fuse_ino_t parent,
    const char *name, int remote);
void cfs_node_forget(struct cfs *fs, fuse_ino_t ino, uint64_t n);
void cfs_node_hold(struct cfs *fs, fuse_ino_t ino, int hold);
fuse_ino_t cfs_node_find(struct cfs *fs, fuse_ino_t parent, const char *name);
fuse_ino_t cfs_node_find_path(struct cfs *fs, const char *path);
void cfs_node_moved(struct cfs *fs, fuse_ino_t parent, const char *name,
    fuse_ino_t newparent, const char *newname);
void cfs_node_removed(struct cfs *fs, fuse_ino_t parent, const char *name);
typedef void (*cfs_node_visit)(struct cfs *fs, fuse_ino_t parent,
    const char *name, fuse_ino_t ino, void *arg);
void cfs_node_walk_under(struct cfs *fs, const char *dir, cfs_node_visit fn,
    void *arg);
int cfs_node_kernel_version(struct cfs *fs, fuse_ino_t ino,
    const struct cpx_attr *cur);
void cfs_node_stored_version(struct cfs *fs, fuse_ino_t ino,
    const struct cpx_attr *v);

/* route.c: which session folders live on which worker. */

struct cfs_route {
	char *dir;		/* relative to the transcode root */
	char *job;
	struct cpx_endpoint ep;
	uid_t uid;		/* owner of the local folder: remote files */
	gid_t gid;		/* are shown as theirs (PUID/PGID setups) */
	int watched;		/* loop thread: the worker reports changes */
	int watch_sent;		/* loop thread: a WATCH went out, which may
				   have created the folder on the worker */
	uint32_t push_lanes;	/* lanes whose agent pushes its share of the
				   folder's files (PUSH acknowledged on the
				   connection up now); under route_lock */
	struct cfs_waiter *waiters; /* loop thread: ROUTE_ADDs awaiting WATCH */
	struct cfs_route *next;
};

struct cfs_match {
	char *dir;		/* the route's folder */
	char *worker;		/* its worker's name */
	int is_dir;		/* the path is the routed folder itself */
	int watched;
	uint32_t push_lanes;
	uid_t uid;
	gid_t gid;
};

struct cfs_route_spec {
	char *dir;
	char *job;
	struct cpx_endpoint ep;
};

int cfs_route_spec_parse(const uint8_t *p, size_t n, int del,
    struct cfs_route_spec *rs, char **cause);
void cfs_route_spec_free(struct cfs_route_spec *rs);
int cfs_routes_decode(const char *json, size_t len,
    struct cfs_route_spec **specs, size_t *n, char **cause);
char *cfs_routes_encode(struct cfs *fs);
int cfs_route_match(struct cfs *fs, const char *path, struct cfs_match *m);
void cfs_match_free(struct cfs_match *m);
struct cfs_route *cfs_route_insert(struct cfs *fs,
    const struct cfs_route_spec *rs, struct cfs_route **replaced);
struct cfs_route *cfs_route_find(struct cfs *fs, const char *dir);
struct cfs_route *cfs_route_unlink(struct cfs *fs, const char *dir);
void cfs_route_free(struct cfs_route *r);
int cfs_routes_on_worker(struct cfs *fs, const char *worker);
int cfs_routes_endpoint(struct cfs *fs, const char *worker,
    struct cpx_endpoint *ep);
void cfs_route_set(struct cfs *fs, struct cfs_route *r, uid_t uid, gid_t gid,
    int watched);
void cfs_route_set_push(struct cfs *fs, const char *dir, const char *worker,
    int lane, int on);
void cfs_routes_push_off(struct cfs *fs, const char *worker, int lane);
char **cfs_routes_watched_on(struct cfs *fs, const char *worker, size_t *n);
void cfs_routes_free(struct cfs *fs);

/* routing.c (loop thread): routes in action — watch, persist, answer. */

typedef void (*cfs_route_cb)(struct cfs *fs, int status, const char *code,
    const char *message, void *arg);

void cfs_routing_restore(struct cfs *fs);
void cfs_routing_add(struct cfs *fs, struct cfs_route_spec *rs,
    cfs_route_cb cb, void *arg);
int cfs_routing_del(struct cfs *fs, const char *dir);
void cfs_routing_gone(struct cfs *fs, const char *dir, int owed);
void cfs_routing_worker_up(struct cfs *fs, const char *worker);
void cfs_routing_worker_down(struct cfs *fs, const char *worker,
    int status, const char *cause);
void cfs_routing_tick(struct cfs *fs);
void cfs_routing_cancel(struct cfs *fs, void *arg);
void cfs_routing_shutdown(struct cfs *fs);
int cfs_routes_save(struct cfs *fs);

/* pending.c (loop thread): deletes owed to workers that were unreachable. */

struct cfs_pending {
	uint64_t id;
	char *dir;
	struct cpx_endpoint ep;	/* the worker, as its route gave it */
	int tree;		/* PMS deleted it: all of it goes; else only
				   the folder, if empty (its job moved) */
	int64_t since;		/* Unix seconds: owed since */
	unsigned tries;		/* replays the worker answered with an error */
	int inflight;
	uint64_t next_at;	/* ms, loop clock: no replay before */
	struct cfs_pending *next;
};

struct cJSON;

void cfs_pending_add(struct cfs *fs, const char *dir,
    const struct cpx_endpoint *ep, int tree, const char *why);
int cfs_pending_drop(struct cfs *fs, const char *dir, const char *worker);
struct cfs_pending *cfs_pending_find(struct cfs *fs, const char *dir,
    const char *worker);
int cfs_pending_on_worker(struct cfs *fs, const char *worker);
void cfs_pending_tick(struct cfs *fs);
void cfs_pending_to_json(struct cfs *fs, struct cJSON *obj);
int cfs_pending_decode(const char *json, size_t len,
    struct cfs_pending **list, char **cause);
void cfs_pending_restore(struct cfs *fs, struct cfs_pending *list);
void cfs_pending_free_list(struct cfs_pending *list);
void cfs_pending_free(struct cfs *fs);

/* worker.c (loop thread, except cfs_call_*): connections to workers. */

struct cfs_worker;
struct cfs_call;

typedef void (*cfs_call_done)(struct cfs *fs, struct cfs_call *c, int status,
    struct cpx_reader *r);

struct cfs_call {
	struct cfs_call *next, *prev;
	char *worker;
	int bulk;		/* a PREAD of file bytes: any connection will do */
	int retried;		/* resent once after its connection was lost */
	int warm;		/* no request: just connect this lane to worker */
	int pinned;		/* for this lane's agent only (PUSH share) */
	uint32_t id;
	uint64_t deadline;	/* ms, uv loop clock */
	uint64_t epoch;		/* connection it went out on, or must go on */
	int same_epoch;		/* carries a handle of connection `epoch` */
	struct cpx_buf req;	/* FREQ payload */
	cfs_call_done done;
	void *arg;
	fuse_req_t freq;	/* the FUSE request it answers, if any */
	struct cpx_link *link;	/* while done runs: the reply's link, */
	const struct cpx_frame *reply;	/* and frame (cfs_keep_bytes) */
};

struct cfs_transport {
	const char *name;
	/* Starts a link to w; ends in cfs_worker_linked() or cfs_worker_failed(). */
	void (*connect)(struct cfs *fs, struct cfs_worker *w);
	/* Drops the connection; the link is already closed. */
	void (*disconnect)(struct cfs *fs, struct cfs_worker *w);
	/* Frees what the transport keeps for w (at exit). */
	void (*release)(struct cfs *fs, struct cfs_worker *w);
};

enum cfs_worker_state {
	CFS_W_IDLE,		/* not connected; connects on demand */
	CFS_W_CONNECTING,	/* the transport is at work */
	CFS_W_HELLO,		/* linked, waiting for the agent's HELLO */
	CFS_W_READY,
	CFS_W_BACKOFF,		/* failed; requests fail at once until retry_at */
};

/*
 * A lane is a thread with its own libuv loop and its own connection to
 * each worker: libssh2 decrypts in the thread that owns the session, and
 * one thread could not decrypt fast enough for one file read cold. Lane 0
 * is the loop thread (routes, control socket, events, every non-read
 * call); the others only carry bulk reads (PREAD), spread over all lanes.
 */
struct cfs_lane {
	struct cfs *fs;
	int index;
	uv_loop_t *loop;	/* lane 0: &fs->loop */
	uv_async_t *wake;	/* lane 0: &fs->wake */
	pthread_mutex_t call_lock;
	struct cfs_call *submitted, *submitted_tail;
	struct cfs_worker *workers;
	uint64_t last_tick;	/* uv_now() at the last cfs_workers_tick */
	int stopping;
	int closed;		/* under call_lock: no more calls taken */
	uv_loop_t own_loop;	/* lanes 1..: */
	uv_async_t own_wake;
	uv_timer_t own_tick;
	pthread_t thread;
};

struct cfs_worker {
	struct cfs *fs;
	struct cfs_lane *lane;
	char *name;
	struct cpx_endpoint ep;
	int state;
	struct cpx_link *link;
	void *conn;		/* the transport's */
	uint64_t epoch;		/* bumped on every new connection */
	uint32_t next_id;
	struct cfs_call *sent;	/* oldest first: replies come in order */
	struct cfs_call *sent_tail;
	struct cfs_call *queued;
	uint64_t last_heard, last_ping, retry_at, backoff_ms, busy_at;
	uint64_t connect_started;
	char *last_error;
	int last_status;
	struct cfs_worker *next;
};

struct cfs_call *cfs_call_new(const char *worker, cfs_call_done done,
    void *arg);
void cfs_call_submit(struct cfs *fs, struct cfs_call *c);
void cfs_call_free(struct cfs_call *c);
struct cfs_worker *cfs_worker_get(struct cfs *fs,
    const struct cpx_endpoint *ep);
struct cfs_worker *cfs_worker_find(struct cfs *fs, const char *name);
void cfs_worker_kick(struct cfs *fs, struct cfs_worker *w);
void cfs_worker_linked(struct cfs *fs, struct cfs_worker *w,
    struct cpx_link *link);
void cfs_worker_failed(struct cfs *fs, struct cfs_worker *w, int status,
    const char *cause);
void cfs_link_frame(struct cpx_link *link, const struct cpx_frame *f,
    void *arg);
void cfs_link_close(struct cpx_link *link, int error, void *arg);
void cfs_workers_drain(struct cfs_lane *lane);
void cfs_call_finish(struct cfs *fs, struct cfs_call *c, int status,
    struct cpx_reader *r);
uint8_t *cfs_keep_bytes(struct cpx_link *link, const struct cpx_frame *f,
    const uint8_t *data, size_t len, void **mem);
void cfs_worker_dispatch(struct cfs *fs, struct cfs_worker *w,
    struct cfs_call *c);
struct cfs_worker *cfs_worker_find_in(struct cfs_lane *lane,
    const char *name);
struct cfs_worker *cfs_worker_get_in(struct cfs_lane *lane,
    const struct cpx_endpoint *ep);
void cfs_workers_tick(struct cfs_lane *lane, uint64_t period_ms);
void cfs_workers_free(struct cfs_lane *lane);
int cfs_worker_ready(struct cfs *fs, const char *name);

/* lane.c: the bulk-read lanes' threads. */

void cfs_lanes_init(struct cfs *fs, int n);
void cfs_lanes_start(struct cfs *fs);
void cfs_lanes_stop(struct cfs *fs);
void cfs_lanes_free(struct cfs *fs);
void cfs_lanes_warm(struct cfs *fs, const char *worker);
void cfs_lane_enqueue(struct cfs_lane *lane, struct cfs_call *c);
void cfs_lane_hand_back(struct cfs *fs, struct cfs_call *c);
void cfs_lane_close_queue(struct cfs_lane *lane);
void cfs_lane_submit(struct cfs *fs, int lane, struct cfs_call *c);

/* cache.c: remote attributes and file blocks, with read-ahead. */

struct cfs_file {
	int remote;
	int fd;			/* local */
	char *path;		/* remote: relative path */
	char *worker;
	uint64_t rhandle;	/* remote write handle, when opened for writing */
	uint64_t epoch;
	int has_rhandle;
	int written;
	fuse_ino_t ino;
	uint64_t next_off;	/* read-ahead: where a sequential read goes next */
	unsigned ra_blocks;
	int pinned;		/* remote, opened complete: reads of `pin` only */
	struct cpx_attr pin;
	int backing;		/* opened passed through to this backing file */
	int direct;		/* opened with direct I/O */
	struct cfs_file *prev, *next;	/* fs->files: freed at exit if the
					   kernel never released them */
};

void cfs_files_add(struct cfs *fs, struct cfs_file *f);
void cfs_files_remove(struct cfs *fs, struct cfs_file *f);
void cfs_files_free(struct cfs *fs);
int cfs_files_pinned_other(struct cfs *fs, fuse_ino_t ino,
    const struct cpx_attr *v);
int cfs_files_add_remote(struct cfs *fs, struct cfs_file *f, int backing);
int cfs_files_read_through_us(struct cfs *fs, fuse_ino_t ino);
int cfs_files_add_writer(struct cfs *fs, struct cfs_file *f);
void cfs_cache_init(struct cfs *fs);
void cfs_cache_free(struct cfs *fs);
int cfs_cache_attr(struct cfs *fs, const char *path, struct cpx_attr *a);
int cfs_cache_last_attr(struct cfs *fs, const char *path,
    struct cpx_attr *a);
void cfs_cache_set_attr(struct cfs *fs, const char *path,
    const struct cpx_attr *a, uint64_t ttl_ms);
void cfs_cache_forget(struct cfs *fs, const char *path);
void cfs_cache_set_stable(struct cfs *fs, const char *path, int stable);
int cfs_cache_stable(struct cfs *fs, const char *path);
void cfs_cache_forget_under(struct cfs *fs, const char *dir);
void cfs_cache_read(struct cfs *fs, fuse_req_t req, struct cfs_file *f,
    uint64_t off, size_t size);
int cfs_cache_prefetch(struct cfs *fs, const char *worker, const char *path,
    const struct cpx_attr *a);
struct cfs_identity {
	uint64_t dev, ino;	/* the worker's key of its pushed contents */
	uint32_t push_lanes;	/* lanes expected to push their share */
};
int cfs_cache_adopt(struct cfs *fs, const char *worker, const char *path,
    const struct cpx_attr *a, const struct cfs_identity *id);
int cfs_cache_complete(struct cfs *fs, const char *path);
int cfs_cache_should_store(struct cfs *fs, const char *path, uint64_t ino);
void cfs_cache_mark_stored(struct cfs *fs, const char *path, uint64_t ino);
typedef int (*cfs_block_fn)(struct cfs *fs, uint64_t off, const uint8_t *p,
    size_t n, void *arg);
int cfs_cache_each_block(struct cfs *fs, const char *path, cfs_block_fn fn,
    void *arg, struct cpx_attr *version);
void cfs_cache_sweep(struct cfs *fs);
size_t cfs_cache_bytes(struct cfs *fs);

/* notify.c: a thread for kernel notifications, which may block. */

void cfs_notify_start(struct cfs *fs);
void cfs_notify_stop(struct cfs *fs);
void cfs_notify_entry(struct cfs *fs, fuse_ino_t parent, const char *name);
void cfs_notify_expire(struct cfs *fs, fuse_ino_t parent, const char *name);
void cfs_notify_inode(struct cfs *fs, fuse_ino_t ino);
void cfs_notify_store(struct cfs *fs, const char *path);
void cfs_notify_copy(struct cfs *fs, const char *path);
void cfs_notify_push_copy(struct cfs *fs, const char *worker, uint64_t dev,
    uint64_t ino);
void cfs_notify_close(struct cfs *fs, int fd);
void cfs_notify_under(struct cfs *fs, const char *dir);

/* push.c: contents pushed by workers (lane threads), and PUSH requests. */

void cfs_push_copy(struct cfs *fs, const char *worker, uint64_t dev,
    uint64_t ino);
void cfs_push_frame(struct cfs *fs, struct cfs_worker *w,
    struct cpx_link *link, const struct cpx_frame *f);
void cfs_push_lane_up(struct cfs *fs, struct cfs_worker *w);
void cfs_push_lane_down(struct cfs *fs, struct cfs_worker *w);
void cfs_push_request(struct cfs *fs, const char *worker, const char *dir,
    int lane);
void cfs_push_unwatch(struct cfs *fs, const char *worker, const char *dir);
void cfs_push_tick(struct cfs *fs);
size_t cfs_push_bytes(struct cfs *fs);

/* kio.c, backing.c: FUSE passthrough to local copies of complete files. */

int cfs_kio_attach(struct cfs *fs);
int cfs_kio_reply_open(struct cfs *fs, fuse_req_t req,
    struct fuse_file_info *fi, int id);
int cfs_kio_backing_open(struct cfs *fs, int fd);
void cfs_kio_backing_close(struct cfs *fs, int id);
int cfs_cache_backing(struct cfs *fs, const char *path,
    const struct cpx_attr *v);
int cfs_cache_wants_backing(struct cfs *fs, const char *path);
int cfs_backing_make(struct cfs *fs, const char *path);
void cfs_backing_await(struct cfs *fs, const char *path,
    const struct cpx_attr *v);
void cfs_backing_free_blocks(struct cfs *fs, const char *path, fuse_ino_t ino);
void cfs_backing_tick(struct cfs *fs, int all);

/* events.c (loop thread): FEVENTs from workers. */

void cfs_event(struct cfs *fs, struct cfs_worker *w, const uint8_t *p,
    size_t n);

/* local.c, local_file.c: paths underneath the mount, through its descriptor. */

int cfs_local_parent(struct cfs *fs, const char *path, const char **name);
int cfs_local_stat(struct cfs *fs, const char *path, struct stat *st);
void cfs_local_own(struct cfs *fs, fuse_req_t req, int dirfd,
    const char *name);
void cfs_local_reply_entry(struct cfs *fs, fuse_req_t req, fuse_ino_t parent,
    const char *name, const char *path);
void cfs_local_getattr(struct cfs *fs, fuse_req_t req, fuse_ino_t ino,
    const char *path, struct cfs_file *f);
void cfs_local_setattr(struct cfs *fs, fuse_req_t req, fuse_ino_t ino,
    const char *path, struct stat *attr, int to_set, struct cfs_file *f);
void cfs_local_readlink(struct cfs *fs, fuse_req_t req, const char *path);
void cfs_local_make(struct cfs *fs, fuse_req_t req, fuse_ino_t parent,
    const char *path, mode_t mode, dev_t rdev, const char *target);
int cfs_local_remove(struct cfs *fs, const char *path, int dir);
int cfs_local_rename(struct cfs *fs, const char *from, const char *to,
    unsigned flags);
int cfs_local_link(struct cfs *fs, const char *from, const char *to);
void cfs_local_statfs(struct cfs *fs, fuse_req_t req);
void cfs_local_open(struct cfs *fs, fuse_req_t req, fuse_ino_t ino,
    const char *path, struct fuse_file_info *fi);
void cfs_local_create(struct cfs *fs, fuse_req_t req, fuse_ino_t parent,
    const char *name, const char *path, mode_t mode,
    struct fuse_file_info *fi);
void cfs_local_read(struct cfs *fs, fuse_req_t req, struct cfs_file *f,
    size_t size, off_t off);
void cfs_local_write(struct cfs *fs, fuse_req_t req, struct cfs_file *f,
    struct fuse_bufvec *in, off_t off);
void cfs_local_fsync(struct cfs *fs, fuse_req_t req, struct cfs_file *f,
    int datasync);
void cfs_local_release(struct cfs *fs, struct cfs_file *f);
void cfs_local_opendir(struct cfs *fs, fuse_req_t req, const char *path,
    struct fuse_file_info *fi);

/* remote.c, remote_ns.c, remote_dir.c: paths in routed session folders. */

struct cfs_rop {		/* one request in flight to a worker */
	struct cfs *fs;
	fuse_req_t req;
	fuse_ino_t parent, ino, newparent;
	char *name, *newname;
	char *path, *path2;
	struct cfs_match m;
	struct fuse_file_info fi;
	struct stat attr;
	int to_set;
	int status;
	unsigned pending;
	size_t total;
	unsigned flags;
	int dir;
	mode_t mode;
	struct cfs_dir *listing;
	struct cfs_file *file;	/* a writer's open, listed ahead of its reply */
	int hidden_checked;	/* rmdir: ENOTEMPTY looked into (remote_ns.c) */
	cfs_call_done then;	/* rmdir: where its answer goes */
};

struct cfs_rop *cfs_rop_new(struct cfs *fs, fuse_req_t req, char *path,
    struct cfs_match *m);
void cfs_rop_free(struct cfs_rop *op);
void cfs_rop_call(struct cfs_rop *op, const struct cpx_freq *q,
    cfs_call_done done);
int cfs_remote_reply_entry(struct cfs_rop *op, const struct cpx_attr *a,
    struct fuse_file_info *fi);
void cfs_remote_lookup_op(struct cfs_rop *op);

void cfs_remote_lookup(struct cfs *fs, fuse_req_t req, fuse_ino_t parent,
    const char *name, char *path, struct cfs_match *m);
void cfs_remote_getattr(struct cfs *fs, fuse_req_t req, fuse_ino_t ino,
    char *path, struct cfs_match *m);
void cfs_remote_setattr(struct cfs *fs, fuse_req_t req, fuse_ino_t ino,
    char *path, struct cfs_match *m, struct stat *st, int to_set);
void cfs_remote_open(struct cfs *fs, fuse_req_t req, fuse_ino_t ino,
    char *path, struct cfs_match *m, struct fuse_file_info *fi);
void cfs_remote_create(struct cfs *fs, fuse_req_t req, fuse_ino_t parent,
    const char *name, char *path, struct cfs_match *m, mode_t mode,
    struct fuse_file_info *fi);
void cfs_remote_write(struct cfs *fs, fuse_req_t req, struct cfs_file *f,
    const char *buf, size_t size, off_t off);
void cfs_remote_release(struct cfs *fs, struct cfs_file *f);
void cfs_remote_mkdir(struct cfs *fs, fuse_req_t req, fuse_ino_t parent,
    const char *name, char *path, struct cfs_match *m, mode_t mode);
void cfs_remote_remove(struct cfs *fs, fuse_req_t req, fuse_ino_t parent,
    const char *name, char *path, struct cfs_match *m, int dir);
void cfs_remote_rename(struct cfs *fs, fuse_req_t req, fuse_ino_t parent,
    const char *name, fuse_ino_t newparent, const char *newname, char *from,
    char *to, struct cfs_match *m, unsigned flags);
void cfs_remote_statfs(struct cfs *fs, fuse_req_t req, struct cfs_match *m);
void cfs_remote_rmdir_route(struct cfs *fs, fuse_req_t req,
    fuse_ino_t parent, const char *name, char *path, struct cfs_match *m);
void cfs_remote_reply_attr(struct cfs *fs, fuse_req_t req, fuse_ino_t ino,
    const char *path, const struct cpx_attr *a, const struct cfs_match *m);
void cfs_remote_fill_stat(const struct cpx_attr *a, fuse_ino_t ino,
    uid_t uid, gid_t gid, struct stat *st);
int cfs_remote_ttl_ms(const struct cpx_attr *a, int watched);

/* Directory listings, served to readdir from a snapshot. */
struct cfs_dirent {
	char *name;
	uint32_t mode;
	uint64_t ino;
};

struct cfs_dir {
	struct cfs_dirent *ents;
	size_t n, cap;
};

void cfs_dir_add(struct cfs_dir *d, const char *name, uint32_t mode,
    uint64_t ino);
int cfs_dir_has(const struct cfs_dir *d, const char *name);
void cfs_dir_free(struct cfs_dir *d);
int cfs_dir_read_local(struct cfs *fs, const char *path, struct cfs_dir *d);
void cfs_remote_opendir(struct cfs *fs, fuse_req_t req, fuse_ino_t ino,
    char *path, struct cfs_match *m, struct fuse_file_info *fi);

/* ctl.c (loop thread): the control socket. */

int cfs_ctl_start(struct cfs *fs, char **cause);
void cfs_ctl_stop(struct cfs *fs);

/* daemon.c: the whole process. */

struct cfs_notice;

struct cfs {
	struct cfs_settings set;
	const struct cfs_transport *transport;
	void *transport_arg;
	int rootfd;		/* the folder underneath the mount */
	uid_t root_uid;		/* its owner: who may send routes */
	gid_t root_gid;
	struct fuse_session *se;

	pthread_mutex_t node_lock;
	struct cfs_node **by_ino, **by_name;
	size_t nbuckets, nnodes;
	uint64_t next_ino;

	pthread_rwlock_t route_lock;
	struct cfs_route *routes;
	struct cfs_pending *pending;	/* loop thread: deletes owed */

	pthread_mutex_t cache_lock;
	pthread_cond_t copy_cond;	/* a local copy was made, or not */
	void *cache;

	pthread_mutex_t files_lock;
	struct cfs_file *files;

	uv_loop_t loop;
	pthread_t loop_thread;
	uv_async_t wake;
	uv_timer_t tick;
	uv_signal_t sigterm, sigint, sighup;
	void *ctl;		/* ctl.c's state */
	struct cfs_lane *lanes;	/* lanes[0] is this loop thread */
	int nlanes;		/* CLUSTERPLEX_FUSE_CONNECTIONS */
	unsigned next_lane;
	int stop_loop;		/* main thread: the FUSE loop has ended */
	int unmounting;		/* a signal asked us to go */
	uint64_t abort_at;	/* then: abort the connection at this time */
	unsigned tick_count;
	unsigned dev_minor;	/* the mount's fuse connection, for abort */
	int init_done;		/* the kernel's INIT is answered */
	int expire_only;	/* the kernel can expire a dentry, not drop it */
	int readahead_set;
	uint64_t init_unique;	/* kio.c: the kernel's INIT request */
	int pt_offered;		/* it offered passthrough */
	int pt_on;		/* we took it: complete files are passed through */

	pthread_t notify_thread;
	pthread_t copy_thread;	/* local copies, off the notify thread */
	pthread_mutex_t notify_lock;
	pthread_cond_t notify_cond;
	struct cfs_notice *notices, *notices_tail;
	struct cfs_notice *copies, *copies_tail;	/* for the copy thread */
	struct cfs_notice *stores, *stores_tail;	/* N_STORE, made later */
	int notify_stop;
	int notify_running;
};

int cfs_run(struct cfs_settings *set, const struct cfs_transport *transport,
    void *transport_arg);
void cfs_shutdown(struct cfs *fs, const char *why);
extern const struct fuse_lowlevel_ops cfs_ops;
extern const struct cfs_transport cfs_ssh_transport;

/* What each transport asks the worker's sshd to run (its forced command
   replaces it anyway): the agent, whose file service fuse speaks to. */
#define CFS_AGENT_COMMAND "clusterplex-agent exec"

/* openssh_args.c: OpenSSH's client as the transport — what it is given. */

#define CFS_OSSH_PROGRAM "/usr/bin/ssh"
#define CFS_OSSH_ALIAS "clusterplex-worker"	/* the pinned key's name */

int cfs_ossh_check_settings(const struct cfs_settings *set, char **cause);
char **cfs_ossh_argv(const struct cfs_settings *set,
    const struct cpx_endpoint *ep, const char *known_hosts, int pinned,
    char **cause);
void cfs_ossh_argv_free(char **argv);
char *cfs_ossh_known_hosts_path(const char *run_dir, const char *worker,
    int lane);
int cfs_ossh_write_known_hosts(const char *path, const char *host_key,
    char **cause);
int cfs_ossh_listed(const char *known_hosts, const struct cpx_endpoint *ep,
    char **cause);
int cfs_ossh_classify(const char *line);

/* transport_openssh.c */

extern const struct cfs_transport cfs_openssh_transport;

#endif /* CFS_H */
