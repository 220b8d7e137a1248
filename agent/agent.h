/* agent.h — clusterplex-agent: configuration shared by its subcommands. */

#ifndef AGENT_H
#define AGENT_H

#include "cpx.h"

/* CLUSTERPLEX_PATH_MAP (pathmap.c). */
struct agent_path_map_entry {
	char *from;		/* canonical absolute path, no trailing '/' */
	size_t flen;
	char *to;
};

struct agent_path_map {
	struct agent_path_map_entry *v;
	size_t n;
};

int agent_path_map_parse(const char *spec, struct agent_path_map *m,
    char **cause);
void agent_path_map_free(struct agent_path_map *m);
char *agent_path_map_apply(const struct agent_path_map *m, const char *path);

/* Where a missing codec set may come from (CLUSTERPLEX_CODEC_SOURCES). */
#define AGENT_SRC_PMS 0x1	/* PMS's own set, over the job's link */
#define AGENT_SRC_URL 0x2	/* Plex's files at CLUSTERPLEX_CODEC_URL */
#define AGENT_SRC_MAX 2

/*
 * Everything the agent reads from its environment, validated once at
 * start-up. `serve` runs with the container's or unit's environment;
 * `exec` runs as an sshd forced command whose environment is nearly
 * empty, so it loads the same variables from an env file first
 * (`clusterplex-agent exec --env-file PATH`, default
 * /etc/clusterplex/agent.env when it exists).
 */
struct agent_config {
	/* Both subcommands. */
	char *name;		/* CLUSTERPLEX_WORKER_NAME, default: hostname */
	char *root;		/* CLUSTERPLEX_TRANSCODE_DIR, default /transcode */
	char *transcoder;	/* TRANSCODER_PATH + TRANSCODER_NAME */
	char *run_dir;		/* CLUSTERPLEX_RUN_DIR, default /run/clusterplex */
	char *hwaccel;		/* FFMPEG_HWACCEL; NULL when unset or "false" */
	struct agent_path_map path_map;	/* CLUSTERPLEX_PATH_MAP */
	long link_timeout_ms;	/* CLUSTERPLEX_LINK_TIMEOUT_MS, default 10000 */
	long max_tasks;		/* CLUSTERPLEX_MAX_TASKS, default: CPU count */
	long min_free_mb;	/* CLUSTERPLEX_MIN_FREE_MB, default 100 */

	/* Codec sets and EasyAudioEncoder (docs/workers.md). */
	char *codec_cache;	/* CLUSTERPLEX_CODEC_CACHE */
	char *codec_dirs;	/* CLUSTERPLEX_CODEC_DIRS, ':'-separated, may be NULL */
	unsigned codec_sources;	/* CLUSTERPLEX_CODEC_SOURCES: AGENT_SRC_* bits */
	unsigned codec_order[AGENT_SRC_MAX];	/* the same, in the order given */
	size_t ncodec_order;
	char *codec_url;	/* CLUSTERPLEX_CODEC_URL, a checked template */
	char *codec_cpu;	/* CLUSTERPLEX_CODEC_CPU, else the machine's */
	long codec_max_mb;	/* CLUSTERPLEX_CODEC_MAX_MB: bound of one download */
	char *curl;		/* curl's path, when the url source is on */
	long codec_timeout_ms;	/* CLUSTERPLEX_CODEC_TIMEOUT_MS */
	char *eae_path;		/* CLUSTERPLEX_EAE_PATH, may be NULL */
	char *eae_dir;		/* CLUSTERPLEX_EAE_DIR */
	long eae_idle_ms;	/* CLUSTERPLEX_EAE_IDLE_MS */

	/* serve only. */
	char *orchestrator_url;	/* ORCHESTRATOR_URL */
	char *token;		/* CLUSTERPLEX_TOKEN (never logged) */
	long listen_port;	/* LISTENING_PORT, default 3501 */
	long heartbeat_ms;	/* STAT_CPU_INTERVAL, default 2000 */
	char *ssh_address;	/* CLUSTERPLEX_SSH_ADDRESS host[:port] advertised */
	char *ssh_user;		/* CLUSTERPLEX_SSH_USER, default: this user */
	char *host_key_file;	/* CLUSTERPLEX_HOST_KEY_FILE */
	char *caps;		/* CLUSTERPLEX_CAPS, e.g. "vaapi,qsv" */
	char *labels;		/* CLUSTERPLEX_LABELS, e.g. "zone=a,gpu=intel" */
};

/* config.c */

int agent_parse_sources(const char *s, unsigned *bits, unsigned *order,
    size_t *n);

int agent_config_load(struct agent_config *cfg, int serve, char **cause);
void agent_config_free(struct agent_config *cfg);
int agent_env_file_parse(const char *text, size_t len,
    int (*set)(const char *name, const char *value, void *arg), void *arg,
    char **cause);
int agent_env_file_load(const char *path, char **cause);

/* Subcommands: exec.c, serve.c. Each returns the process exit status. */
int agent_exec_main(struct agent_config *cfg);
int agent_serve_main(struct agent_config *cfg);

/*
 * The services `exec` offers, chosen by the client's HELLO. A service
 * takes the link over (its callbacks and argument), runs on `loop`, and
 * stores the process's exit status in *status before the loop ends.
 */
struct cpx_link;
struct uv_loop_s;

int agent_job_start(struct agent_config *cfg, struct uv_loop_s *loop,
    struct cpx_link *link, int *status);	/* job.c */
int agent_files_start(struct agent_config *cfg, struct uv_loop_s *loop,
    struct cpx_link *link, int *status);	/* files.c */
int agent_probe_start(struct agent_config *cfg, struct uv_loop_s *loop,
    struct cpx_link *link, int *status);	/* probe.c */

/* codec_cache.c */
int agent_codecs_find(const struct agent_config *cfg, const char *name,
    char **dir);
int agent_codecs_lock(const struct agent_config *cfg, const char *name,
    int *fd, char **cause);
void agent_codecs_unlock(int fd);
void agent_codecs_remove(const char *dir);
int agent_codecs_tmp(const struct agent_config *cfg, const char *name,
    char **tmp, int *fd, char **cause);
int agent_codecs_commit(const struct agent_config *cfg, const char *name,
    const char *tmp, const char *manifest, char **cause);
char **agent_codecs_list(const struct agent_config *cfg, size_t *n);
struct cJSON *agent_codecs_json(const struct agent_config *cfg);
const char *agent_codec_cpu(const struct agent_config *cfg);
unsigned agent_codec_source(const struct agent_config *cfg, int offered,
    int same, int has_cpu);

/* codec_cache_url.c: downloads of a set from CLUSTERPLEX_CODEC_URL. */
struct cpx_codec_set;

int agent_codec_url_check(const char *tmpl, char **cause);
char *agent_codec_url(const char *tmpl, const char *version, const char *arch,
    const char *file);
char *agent_codec_url_shown(const char *url);
char *agent_codec_arch(const struct cpx_codec_set *s);
int agent_codec_is_lib(const char *path);
char *agent_curl_find(void);
char **agent_curl_argv(const char *curl, const char *url, uint64_t max_bytes,
    uint64_t timeout_ms);
char **agent_curl_env(char *const *environ_);

#endif /* AGENT_H */
