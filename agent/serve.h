/* serve.h — clusterplex-agent serve: what the worker tells the dispatcher. */

#ifndef AGENT_SERVE_H
#define AGENT_SERVE_H

#include <stdint.h>
#include <sys/types.h>

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
char *agent_beat_body(double cpu, double load1, const struct agent_job *jobs,
    size_t njobs);
int agent_parse_drain(const char *body, int *drain);

#endif /* AGENT_SERVE_H */
