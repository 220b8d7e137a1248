/* disp.h — clusterplex-dispatcher: registry, jobs, placement, API. */

#ifndef DISP_H
#define DISP_H

#include <stddef.h>
#include <stdint.h>

#include "cpx.h"
#include "cpx-httpd.h"
#include "cpx-protocol.h"

struct cJSON;

/*
 * Time: every function of the core takes `now`, a monotonic clock in
 * milliseconds (cpx_now_ms in the daemon, anything in the tests), so the
 * rules on expiry, back-off and affinity are tested without sleeping.
 * Wall-clock times (Unix seconds) are kept only for display.
 */

enum disp_strategy {
	DISP_RR,
	DISP_LOAD_CPU,
	DISP_LOAD_TASKS,
	DISP_LOAD_RANK,
};

extern const char *const disp_strategy_names[];	/* NULL-terminated */

/* config.c */

struct disp_config {
	char *token;		/* CLUSTERPLEX_TOKEN; NULL only on a trusted network */
	int trusted_network;	/* CLUSTERPLEX_TRUSTED_NETWORK */
	char *listen_host;	/* CLUSTERPLEX_LISTEN_ADDRESS, default 0.0.0.0 */
	long port;		/* LISTENING_PORT, default 3500 */
	int strategy;		/* WORKER_SELECTION_STRATEGY, default LOAD_RANK */
	long misses;		/* CLUSTERPLEX_HEARTBEAT_MISSES, default 3 */
	long backoff_ms;	/* CLUSTERPLEX_WORKER_BACKOFF_MS, default 30000 */
	long affinity_ms;	/* CLUSTERPLEX_SESSION_AFFINITY_MS, default 600000 */
	long start_grace_ms;	/* CLUSTERPLEX_JOB_START_GRACE_MS, default 15000 */
	long history;		/* CLUSTERPLEX_JOB_HISTORY, default 200 */
	long max_workers;	/* CLUSTERPLEX_MAX_WORKERS, default 4096 */
	long max_jobs;		/* CLUSTERPLEX_MAX_JOBS, default 100000 */
	long max_conns;		/* CLUSTERPLEX_HTTP_MAX_CONNECTIONS, default 1024 */
	long idle_ms;		/* CLUSTERPLEX_HTTP_IDLE_MS, default 60000 */
	long request_ms;	/* CLUSTERPLEX_HTTP_REQUEST_MS, default 10000 */
};

void disp_config_defaults(struct disp_config *cfg);
int disp_config_load(struct disp_config *cfg, char **cause);
void disp_config_free(struct disp_config *cfg);

/* map.c: string-keyed hash map over nodes embedded in the values. */

struct disp_hnode {
	struct disp_hnode *next;
	const char *key;
	uint32_t hash;
};

struct disp_map {
	struct disp_hnode **b;
	size_t nb;
	size_t count;
};

#define disp_container(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

void disp_map_init(struct disp_map *m);
void disp_map_free(struct disp_map *m);
struct disp_hnode *disp_map_get(const struct disp_map *m, const char *key);
void disp_map_put(struct disp_map *m, struct disp_hnode *n, const char *key);
void disp_map_del(struct disp_map *m, struct disp_hnode *n);

/* msg.c: request bodies, validated. Parsers return 0 or -EINVAL + cause. */

#define DISP_NAME_MAX 64
#define DISP_JOB_ID_MAX 128
#define DISP_SESSION_MAX 256
#define DISP_CAPS_MAX 32
#define DISP_LABELS_MAX 32
#define DISP_REPORT_JOBS_MAX 1024

/* A worker's codecs (codecs.c): its CPU, its sources, the sets it holds. */
#define DISP_SRC_PMS 0x1
#define DISP_SRC_URL 0x2

struct disp_codecs {
	int known;		/* reported; else the worker is not filtered */
	char *cpu;
	unsigned sources;	/* DISP_SRC_* */
	char **sets;
	size_t nsets;
};

struct disp_job_report {
	char *id;
	char *session;		/* may be NULL */
	double started;		/* Unix seconds; 0 when unknown */
};

struct disp_reg {
	struct cpx_endpoint ep;	/* ep.name is the worker's name */
	long cpus;
	double bench;
	char *version;		/* clusterplex-agent version, may be NULL */
	char *transcoder;	/* transcoder version, may be NULL */
	char **caps;		/* lower-case, NULL-terminated */
	size_t ncaps;
	struct cJSON *labels;	/* object of strings, owned */
	long max_tasks;
	long interval_ms;
	int drain;
	double cpu;
	struct disp_job_report *jobs;
	size_t njobs;
	struct disp_codecs codecs;
};

struct disp_beat {
	double cpu;		/* percent of the whole machine, 0-100 */
	double load1;
	struct disp_job_report *jobs;
	size_t njobs;
	struct disp_codecs codecs;	/* known: the sets held now */
};

struct disp_place_req {
	char *job;		/* NULL: the dispatcher makes an id */
	char *session;		/* may be NULL */
	char **caps;
	size_t ncaps;
	char **exclude;		/* worker names not to use */
	size_t nexclude;
	int codecs;		/* the job names its codec set: */
	struct cpx_codec_set set;
};

enum disp_outcome {
	DISP_OK,		/* transcoder exited 0 */
	DISP_FAILED,		/* transcoder exited non-zero */
	DISP_KILLED,		/* stopped by a signal (PMS's stop) */
	DISP_WORKER_ERROR,	/* the worker could not run it, or was lost */
	DISP_ENDED,		/* the worker stopped reporting it; no end came */
	DISP_NEVER_STARTED,	/* placed, never reported by the worker */
	DISP_LOST,		/* its worker left or expired while it ran */
	DISP_OUTCOME_MAX_
};

extern const char *const disp_outcome_names[];	/* NULL-terminated */

struct disp_end {
	int outcome;
	int has_exit;
	long exit_code;
	long duration_ms;	/* -1 when not given */
};

int disp_valid_name(const char *s, size_t max);
int disp_msg_register(const char *body, size_t len, struct disp_reg *reg,
    char **cause);
void disp_reg_free(struct disp_reg *reg);
int disp_msg_heartbeat(const char *body, size_t len, struct disp_beat *beat,
    char **cause);
void disp_beat_free(struct disp_beat *beat);
int disp_msg_place(const char *body, size_t len, struct disp_place_req *pr,
    char **cause);
void disp_place_req_free(struct disp_place_req *pr);
int disp_msg_end(const char *body, size_t len, struct disp_end *end,
    char **cause);
int disp_msg_drain(const char *body, size_t len, int *drain, char **cause);

/* codecs.c */
int disp_msg_codecs(const struct cJSON *root, struct disp_codecs *out,
    char **cause);
int disp_msg_place_codecs(const struct cJSON *root, struct disp_place_req *pr,
    char **cause);
void disp_codecs_free(struct disp_codecs *c);
void disp_codecs_move(struct disp_codecs *to, struct disp_codecs *from);
int disp_codecs_can_run(const struct disp_codecs *w,
    const struct cpx_codec_set *s);
void disp_render_codecs(const struct disp_codecs *c, struct cJSON *obj);

/* The registry and jobs (registry.c, jobs.c). */

struct disp_job;

struct disp_worker {
	/*
	 * What a placement reads of every worker comes first, in one cache
	 * line: a pass over 1,000 workers is bound by memory, not arithmetic.
	 */
	uint64_t expires_ms;
	uint64_t backoff_until;
	uint64_t last_pick;	/* placement sequence; 0 = never */
	double cpu;
	double bench;
	double per_task;	/* 100 / max_tasks: CPU share of one job */
	uint32_t ntasks;	/* running or starting */
	uint32_t nunseen;	/* placed, not yet reported by the worker */
	int32_t max_tasks;
	uint8_t draining;
	uint8_t ncaps;
	struct disp_hnode node;
	struct cpx_endpoint ep;
	char *version;
	char *transcoder;
	char **caps;
	struct cJSON *labels;
	long cpus;
	long interval_ms;
	double load1;
	uint64_t registered_ms;
	double registered_wall;
	uint64_t last_seen_ms;
	int failures;		/* consecutive jobs ended with worker-error */
	size_t index;		/* in disp->order */
	struct disp_job *jobs;	/* running, most recent first */
	uint32_t gen;
	uint64_t placements;
	uint64_t worker_errors;
	struct disp_codecs codecs;
};

struct disp_session {
	struct disp_hnode node;
	char *id;
	char *worker;
	size_t running;
	uint64_t last_ms;
	struct disp_session *prev, *next;
};

struct disp_job {
	struct disp_hnode node;
	char *id;
	char *session;
	char *worker;		/* name, kept after the worker left */
	struct disp_worker *w;	/* while running */
	struct disp_job *prev, *next;	/* worker's list, or the history */
	uint64_t placed_ms;
	double started_wall;
	uint64_t ended_ms;
	double ended_wall;
	int running;
	int seen;
	int affinity;
	uint32_t gen;
	int outcome;
	int has_exit;
	long exit_code;
	long duration_ms;
};

#define DISP_LATENCY_BUCKETS 11

/* Why a placement found no worker (place.c). */
enum disp_place_fail {
	DISP_PF_NO_WORKERS,
	DISP_PF_NO_CAPS,
	DISP_PF_DRAINING,
	DISP_PF_BACKOFF,
	DISP_PF_BUSY,
	DISP_PF_EXCLUDED,
	DISP_PF_NO_CODECS,	/* none can run the job's codec set */
	DISP_PF_MAX_
};

struct disp {
	const struct disp_config *cfg;
	struct disp_map workers;
	struct disp_worker **order;	/* registration order */
	size_t nworkers;
	size_t order_cap;
	struct disp_map jobs;		/* running and history */
	size_t nrunning;
	struct disp_job *hist_head, *hist_tail;	/* newest first */
	size_t nhist;
	struct disp_map sessions;
	struct disp_session *sess_list;
	uint64_t pick_seq;
	uint64_t job_seq;
	char instance[17];
	double started_wall;
	/* Metrics. */
	uint64_t outcomes[DISP_OUTCOME_MAX_];
	uint64_t place_fail[DISP_PF_MAX_];
	uint64_t lat_buckets[DISP_LATENCY_BUCKETS];
	uint64_t lat_count;
	double lat_sum;
	uint64_t departed;
	struct cpx_httpd *httpd;	/* for connection figures, may be NULL */
};

void disp_init(struct disp *d, const struct disp_config *cfg);
void disp_free(struct disp *d);
double disp_wall_now(void);

/* registry.c */

struct disp_worker *disp_worker_find(struct disp *d, const char *name);
int disp_register(struct disp *d, struct disp_reg *reg, uint64_t now,
    struct disp_worker **out, char **cause);
int disp_heartbeat(struct disp *d, const char *name, struct disp_beat *beat,
    uint64_t now, struct disp_worker **out);
int disp_leave(struct disp *d, const char *name, uint64_t now);
int disp_drain(struct disp *d, const char *name, int drain);
void disp_sweep(struct disp *d, uint64_t now);
int disp_worker_alive(const struct disp_worker *w, uint64_t now);

/* jobs.c */

struct disp_job *disp_job_find(struct disp *d, const char *id);
struct disp_job *disp_job_add(struct disp *d, struct disp_worker *w,
    const char *id, const char *session, double started_wall, uint64_t now);
void disp_job_finish(struct disp *d, struct disp_job *j, int outcome,
    uint64_t now);
int disp_job_end(struct disp *d, const char *id, const struct disp_end *end,
    uint64_t now);
void disp_jobs_reconcile(struct disp *d, struct disp_worker *w,
    const struct disp_job_report *jobs, size_t njobs, uint64_t now);
void disp_worker_drop_jobs(struct disp *d, struct disp_worker *w,
    uint64_t now);
struct disp_session *disp_session_find(struct disp *d, const char *id);
void disp_sessions_prune(struct disp *d, uint64_t now);

/* place.c */


extern const char *const disp_place_fail_names[];

struct disp_placement {
	struct disp_worker *w;
	struct disp_job *job;
	int affinity;
	int fail;		/* enum disp_place_fail when w == NULL */
	char reason[256];
};

int disp_place(struct disp *d, const struct disp_place_req *pr, uint64_t now,
    struct disp_placement *out);
double disp_projected_cpu(const struct disp_worker *w);

/* render.c: JSON views. */

void disp_render_health(struct disp *d, struct cpx_buf *out);
void disp_render_workers(struct disp *d, uint64_t now, struct cpx_buf *out);
void disp_render_jobs(struct disp *d, uint64_t now, long limit,
    struct cpx_buf *out);
void disp_render_worker(struct disp_worker *w, uint64_t now,
    struct cJSON *obj);

/* metrics.c */

void disp_observe_latency(struct disp *d, uint64_t us);
void disp_render_metrics(struct disp *d, uint64_t now, struct cpx_buf *out);

/* status.c */

extern const char disp_status_page[];

/* api.c */

void disp_api_handle(const struct cpx_httpd_req *req,
    struct cpx_httpd_resp *resp, void *arg);

#endif /* DISP_H */
