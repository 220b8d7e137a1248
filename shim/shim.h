/* shim.h — clusterplex-shim: "Plex Transcoder" on the PMS host, and its pool. */

#ifndef SHIM_H
#define SHIM_H

#include <stdint.h>

#include "cpx.h"
#include "cpx-protocol.h"

/* Exit codes of the shim's own failures (docs/ARCHITECTURE.md). */
#define SHIM_EXIT_CONFIG 78
#define SHIM_EXIT_DISPATCHER 240
#define SHIM_EXIT_NO_WORKER 241
#define SHIM_EXIT_SSH 242
#define SHIM_EXIT_AUTH 243
#define SHIM_EXIT_REFUSED 244
#define SHIM_EXIT_LOST 245
#define SHIM_EXIT_LOCAL 246
#define SHIM_EXIT_ROUTE 247

enum shim_mode { SHIM_MODE_LOCAL, SHIM_MODE_REMOTE, SHIM_MODE_BOTH };
enum shim_pool_use { SHIM_POOL_AUTO, SHIM_POOL_ON, SHIM_POOL_OFF };
enum shim_callbacks { SHIM_CB_TUNNEL, SHIM_CB_REWRITE };

/* Kinds of jobs CLUSTERPLEX_LOCAL_JOBS can keep on the PMS host. */
#define SHIM_LOCAL_CREDITS 0x1
#define SHIM_LOCAL_THUMBNAILS 0x2
#define SHIM_LOCAL_EAE 0x4

#define SHIM_AGENT_COMMAND "clusterplex-agent exec"

struct shim_config {
	char *orchestrator_url;	/* ORCHESTRATOR_URL */
	int mode;		/* TRANSCODE_OPERATING_MODE */
	int verbose;		/* TRANSCODER_VERBOSE */
	long pms_port;		/* PMS_PORT */
	char *pms_host;		/* PMS_IP, else PMS_SERVICE (rewrite mode) */
	char *token;		/* CLUSTERPLEX_TOKEN (never logged) */
	char *key_path;		/* CLUSTERPLEX_SSH_KEY */
	char *known_hosts;	/* CLUSTERPLEX_KNOWN_HOSTS */
	char *run_dir;		/* CLUSTERPLEX_RUN_DIR */
	int pool;		/* CLUSTERPLEX_POOL */
	char *local_transcoder;	/* CLUSTERPLEX_LOCAL_TRANSCODER */
	char *transcode_dir;	/* CLUSTERPLEX_TRANSCODE_DIR (optional) */
	long dispatch_timeout_ms; /* CLUSTERPLEX_DISPATCH_TIMEOUT_MS */
	long ssh_timeout_ms;	/* CLUSTERPLEX_SSH_TIMEOUT_MS */
	long keepalive_ms;	/* CLUSTERPLEX_KEEPALIVE_MS */
	long link_timeout_ms;	/* CLUSTERPLEX_LINK_TIMEOUT_MS */
	int callbacks;		/* CLUSTERPLEX_CALLBACKS */
	unsigned local_jobs;	/* CLUSTERPLEX_LOCAL_JOBS + TRANSCODE_EAE_LOCALLY */
	long pool_idle_ms;	/* CLUSTERPLEX_POOL_IDLE_MS */
	long pool_channels;	/* CLUSTERPLEX_POOL_CHANNELS */
};

extern const char shim_marker[];	/* main.c */

/* config.c */
int shim_config_load(struct shim_config *cfg, const char *self_dir,
    char **cause);
void shim_config_free(struct shim_config *cfg);
int shim_parse_local_jobs(const char *s, unsigned *out);

/*
 * A job as PMS started it, and what classification found out. The
 * session folder is `root`/`session_dir`.
 */
struct shim_job {
	const char *cwd;
	int argc;		/* without argv[0] */
	char **argv;
	char *root;		/* PMS's transcode folder */
	char *session_dir;	/* "Transcode/Sessions/<name>", relative */
	char *session;		/* PMS's session id */
	const char *local;	/* why it must run locally, or NULL */
};

/* classify.c */
int shim_classify(const struct shim_config *cfg, const char *cwd, int argc,
    char **argv, struct shim_job *job);
void shim_job_free(struct shim_job *job);
char *shim_rewrite_callback(const char *arg, long pms_port, const char *host);
int shim_env_forwardable(const char *entry);

/* How a remote run ended (remote.c fills it). */
struct shim_outcome {
	int exit_kind;		/* CPX_EXIT_CODE or CPX_EXIT_SIGNAL */
	int exit_value;
	int code;		/* our own exit code when not the transcoder's */
	int fallback_ok;	/* nothing can have started: may run locally */
	char *message;		/* why we failed (code != -1); caller frees */
};

/* status.c */
const char *shim_end_outcome(const struct shim_outcome *out, int *value);
int shim_ssh_exit_code(int status);
int shim_error_exit_code(const char *code);
_Noreturn void shim_exit_like(int kind, int value);
const char *shim_exit_meaning(int code);

/* local.c */
_Noreturn void shim_exec_local(const struct shim_config *cfg, char **argv);
void shim_restore_process(void);
void shim_save_process(void);


/* dispatch.c */
struct shim_placement {
	char *job_id;
	struct cpx_endpoint worker;
};

int shim_place(const struct shim_config *cfg, const struct shim_job *job,
    const char *exclude, struct shim_placement *pl, char **cause);
void shim_placement_free(struct shim_placement *pl);
void shim_report_end(const struct shim_config *cfg, const char *job_id,
    const struct shim_outcome *out, uint64_t duration_ms);
char *shim_new_job_id(void);

/* route.c */
int shim_route(const struct shim_config *cfg, int type, const char *dir,
    const char *job_id, const struct cpx_endpoint *worker, char **cause);

/* inputs.c */
struct shim_input {
	char *name;
	uint8_t *data;
	size_t size;
};

struct shim_inputs {
	struct shim_input *v;
	size_t n;
};

int shim_inputs_read(const char *dir, struct shim_inputs *in, char **cause);
void shim_inputs_free(struct shim_inputs *in);

/* stdio.c: the shim's own stdin, stdout and stderr on the loop. */
#include <uv.h>

struct shim_sink {
	int fd;
	union {
		uv_pipe_t pipe;
		uv_stream_t stream;
	} h;
	int is_stream;		/* else: blocking writes (files, ttys) */
	int open;
	int closing;		/* close once the queue is written */
	void (*drained)(void *arg);
	void *arg;
};

struct shim_source {
	int fd;
	union {
		uv_pipe_t pipe;
		uv_tty_t tty;
		uv_stream_t stream;
	} h;
	uv_idle_t idle;		/* regular files and devices: plain reads */
	int is_stream;
	int open;
	int paused;
	void (*data)(void *arg, const void *p, size_t n);	/* n 0: EOF */
	void *arg;
};

void shim_sink_open(struct shim_sink *s, uv_loop_t *loop, int fd,
    void (*drained)(void *), void *arg);
void shim_sink_write(struct shim_sink *s, const void *p, size_t n);
size_t shim_sink_queued(const struct shim_sink *s);
void shim_sink_close(struct shim_sink *s);
void shim_source_open(struct shim_source *s, uv_loop_t *loop, int fd,
    void (*data)(void *, const void *, size_t), void *arg);
void shim_source_pause(struct shim_source *s, int paused);
void shim_source_close(struct shim_source *s);

/* remote.c */

void shim_run_remote(const struct shim_config *cfg,
    const struct shim_job *job, const struct shim_placement *pl,
    const struct shim_inputs *in, struct shim_outcome *out);

/* codecs.c: PMS's codec set, sent to a worker that asks for it. */
struct shim_setsend;
struct cpx_link;

char *shim_codec_set(char **dir);
struct shim_setsend *shim_setsend_start(struct cpx_link *link,
    const char *dir, const struct cpx_frame *f);
void shim_setsend_pump(struct shim_setsend *s);
int shim_setsend_active(const struct shim_setsend *s);
void shim_setsend_free(struct shim_setsend *s);

/* pool.c */
int shim_pool_main(const struct shim_config *cfg, int argc, char **argv);

/* poolmsg.c */
int shim_pool_parse_open(const uint8_t *p, size_t n, struct cpx_endpoint *ep,
    char **key, char **cause);
const char *shim_pool_error_code(int status);

/* poolspawn.c */
int shim_pool_connect(const struct shim_config *cfg, int spawn_wait);

#endif /* SHIM_H */
