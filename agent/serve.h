/* serve.h — clusterplex-agent serve: what the worker tells the dispatcher. */

#ifndef AGENT_SERVE_H
#define AGENT_SERVE_H

#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "agent.h"

/* serve_info.c: facts about this machine, gathered without blocking for long. */

struct agent_cpu_sample {
	uint64_t busy;
	uint64_t total;
};

int agent_cpu_read(const char *proc_stat_text, struct agent_cpu_sample *s);
int agent_cpu_sample(struct agent_cpu_sample *s);
double agent_cpu_percent(const struct agent_cpu_sample *prev,
    const struct agent_cpu_sample *cur);
double agent_load1(void);
double agent_cpu_bench(long cpus, unsigned ms);
char *agent_transcoder_version(const char *path, unsigned timeout_ms);
int agent_host_key(const char *path, char **key, char **cause);
int agent_local_address(const char *url, char **addr, char **cause);

/* A job the job service runs now, from $CLUSTERPLEX_RUN_DIR/jobs/<id>.json. */
struct agent_job {
	char *id;
	char *session;		/* may be NULL */
	pid_t pid;
	double started;		/* Unix seconds */
};

#define AGENT_JOBS_MAX 1024

int agent_job_parse(const char *text, size_t len, struct agent_job *job);
int agent_jobs_scan(const char *run_dir, struct agent_job **jobs,
    size_t *njobs);
void agent_jobs_free(struct agent_job *jobs, size_t njobs);

/* serve_msg.c: request bodies for the dispatcher (docs/dispatcher.md). */

struct agent_facts {
	char *ssh_host;
	int ssh_port;
	char *host_key;
	long cpus;
	double bench;
	char *transcoder_version;	/* may be NULL */
};

void agent_facts_free(struct agent_facts *f);
int agent_ssh_endpoint(const struct agent_config *cfg, const char *local_addr,
    char **host, int *port, char **cause);
char *agent_reg_body(const struct agent_config *cfg,
    const struct agent_facts *f, double cpu, int drain,
    const struct agent_job *jobs, size_t njobs);
char *agent_beat_body(const struct agent_config *cfg, double cpu,
    double load1, const struct agent_job *jobs, size_t njobs);
int agent_parse_drain(const char *body, int *drain);
char *agent_parse_error(const char *body);

/*
 * serve_state.c: what the agent does after each exchange with the
 * dispatcher, decided without any I/O so that it can be tested alone.
 */

/* What an answer (or its absence) means to the agent. */
enum agent_outcome {
	AGENT_NONE,		/* nothing tried yet */
	AGENT_OK,		/* 2xx */
	AGENT_UNKNOWN,		/* 404 to a heartbeat: the dispatcher forgot us */
	AGENT_DOWN,		/* no answer in time, refused, 5xx, not HTTP */
	AGENT_AUTH,		/* 401/403: missing or wrong CLUSTERPLEX_TOKEN */
	AGENT_CONFLICT,		/* 409: a live worker has our name */
	AGENT_REJECTED,		/* any other answer: our request is wrong */
};

enum agent_call_kind {
	AGENT_CALL_REGISTER,
	AGENT_CALL_BEAT,
	AGENT_CALL_LEAVE,
};

/* Registration retries: 0.5, 1, 2, 4 s, then every 5 s at most. */
#define AGENT_BACKOFF_BASE_MS 500
#define AGENT_BACKOFF_MAX_MS 5000
#define AGENT_BACKOFF_STEPS 5	/* failures in a row that reach the maximum */

struct agent_sm {
	int registered;		/* the dispatcher accepted us and has not said otherwise */
	enum agent_outcome last;	/* of the last exchange; logs say its changes */
	unsigned failures;	/* registrations failed in a row */
	uint64_t last_ok_ms;	/* last accepted registration or heartbeat; 0 never */
	int drain;		/* as the dispatcher last said */
};

/* What to do next: beat on the regular period, or register after delay_ms. */
struct agent_next {
	int reg;
	unsigned delay_ms;
	int changed;		/* the outcome differs from the previous one */
};

enum agent_outcome agent_classify(enum agent_call_kind kind, int error,
    int status);
const char *agent_outcome_name(enum agent_outcome o);
unsigned agent_backoff_ms(unsigned failures, double rnd);
void agent_sm_done(struct agent_sm *sm, enum agent_call_kind kind,
    enum agent_outcome o, uint64_t now_ms, double rnd, struct agent_next *next);
unsigned agent_http_timeout_ms(long heartbeat_ms);
double agent_cpu_estimate(double load1, long cpus);

/*
 * serve.c, serve_call.c: the daemon. All of it lives on the loop thread
 * except the call in flight (at most one), which runs on libuv's thread
 * pool: it alone touches the fields marked "call", and the loop thread
 * reads its results only in the completion callback.
 */
struct agent_call;
struct eae_sup;
struct cJSON;

/* serve_eae.c */
struct eae_sup *agent_eae_start(struct agent_config *cfg, uv_loop_t *loop);
void agent_eae_stop(struct eae_sup *sup);
struct cJSON *agent_eae_json(const struct eae_sup *sup);

struct agent_serve {
	struct agent_config *cfg;
	uv_loop_t *loop;
	struct cpx_httpd *httpd;
	uv_timer_t timer;	/* heartbeat period, or the next registration */
	uv_timer_t stop_timer;	/* bounds the clean leave */
	uv_signal_t sigint, sigterm;
	struct agent_call *inflight;
	struct eae_sup *eae;	/* EasyAudioEncoder supervisor, or NULL */
	struct agent_sm sm;
	unsigned timeout_ms;	/* every HTTP request */
	uint64_t started_ms;
	size_t njobs;		/* running jobs, as the last call counted them */
	int scan_error;		/* last error reading the job state files */
	int stopping;

	/* call: the machine's facts and the previous CPU sample. */
	struct agent_facts facts;
	int facts_ready;
	struct agent_cpu_sample prev;
	int have_prev;
};

struct agent_call {
	uv_work_t work;
	struct agent_serve *sv;
	enum agent_call_kind kind;
	int drain;		/* in: repeated in a registration */
	void (*done)(struct agent_call *);

	/* out */
	int error;		/* 0 or the HTTP client's negative errno */
	int status;		/* HTTP status when error is 0 */
	char *body;		/* the answer's body, or NULL */
	char *cause;		/* why error is not 0 */
	size_t njobs;
	int scan_error;		/* reading the job state files failed */
	char *endpoint;		/* registration: the advertised "host:port" */
};

#define AGENT_BENCH_MS 200
#define AGENT_VERSION_MS 2000
#define AGENT_LEAVE_MS 2000

void agent_call_start(struct agent_serve *sv, enum agent_call_kind kind,
    void (*done)(struct agent_call *));
void agent_call_free(struct agent_call *call);

#endif /* AGENT_SERVE_H */
