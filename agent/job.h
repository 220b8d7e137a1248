/* job.h — the agent's job service: one transcoder per SSH channel. */

#ifndef AGENT_JOB_H
#define AGENT_JOB_H

#include <sys/types.h>

#include <uv.h>

#include "agent.h"
#include "cpx-link.h"
#include "cpx-tunnel.h"

/* How argv changes on its way to the worker's transcoder (job_argv.c). */
struct job_argv_opts {
	const char *transcoder;		/* becomes argv[0] */
	const char *pms_root;		/* PMS's transcode folder */
	const char *worker_root;	/* ours */
	const struct agent_path_map *path_map;	/* may be NULL */
	int pms_port;
	int callback_port;		/* 0: leave callback URLs alone */
	int verbose;
	const char *hwaccel;		/* NULL: none */
};

struct job_proc {
	pid_t pid;
	int in_fd;	/* write end of the transcoder's stdin */
	int out_fd;	/* read ends of its stdout and stderr */
	int err_fd;
};

/* One job's state, shared by job.c (frames, lifecycle) and job_io.c. */
struct job {
	struct agent_config *cfg;
	struct uv_loop_s *loop;
	struct cpx_link *link;		/* NULL once closed or lost */
	int *status;
	struct cpx_jobspec spec;
	int have_spec;
	int cwd_fd;
	char *worker_cwd;
	int *input_fd;
	uint64_t *input_done;
	char **argv;
	char **envp;
	struct cpx_tunnels *tunnels;
	uv_tcp_t listener;
	int callback_port;
	uv_timer_t link_timer;		/* no frame for link_timeout_ms: lost */
	uv_timer_t drain_timer;		/* bounds the wait for output after exit */
	uv_signal_t sigchld;
	uv_pipe_t in, out, err;
	int in_open, out_open, err_open, listening;
	int out_paused;
	struct cpx_buf early_stdin;	/* STDIN before the transcoder started */
	int early_stdin_eof;
	int early_sigs[8];
	int nearly_sigs;
	pid_t pid;
	pid_t guard_pid;
	int guard_fd;		/* see agent_guard_start */
	int exited;
	int wstatus;
	int lost;
	int finished;
	char *state_path;
	uint64_t started_ms;		/* wall clock, for the state file */
	uint64_t t_job;			/* monotonic, for logs */
	int handles;

	/* Before RUN: the codec set and the EAE (job_codecs.c, job_eae.c). */
	struct job_codecs *codecs;	/* a fetch under way, or NULL */
	uv_timer_t prep_timer;
	int prepared;			/* RUN may start the transcoder */
	int run_pending;		/* RUN came before that */
	int eae_fd;			/* our lease on an EAE, or -1 */
};

/* job.c */
void job_prepared(struct job *j, const char *error);
void job_send_exit(struct job *j);
void job_finish(struct job *j, int status);
void job_handle_closed(uv_handle_t *h);

/* job_io.c */
int job_listen(struct job *j, char **cause);
int job_start_io(struct job *j, const struct job_proc *p);
void job_stdin(struct job *j, const struct cpx_frame *f);
void job_signal(struct job *j, int sig);
void job_close_stdin(struct job *j);
void job_close_io(struct job *j);

/* job_argv.c */
char **agent_job_argv(char *const *argv, size_t argc,
    const struct job_argv_opts *o);
char **agent_job_env(char *const *env, size_t envc, const char *pwd,
    char *(*own)(const char *name));
int agent_env_forwardable(const char *entry);
void agent_strv_free(char **v);

/* job_path.c */
int agent_job_id_valid(const char *id);
int agent_job_map_cwd(const char *worker_root, const char *pms_root,
    const char *cwd, int *dirfd, char **worker_cwd, char **cause);
int agent_job_open_input(int dirfd, const char *name, char **cause);


/* job_proc.c */
int agent_proc_spawn(const char *path, char *const argv[],
    char *const envp[], int cwd_fd, struct job_proc *p, char **cause);
int agent_signal_allowed(int sig);
int agent_guard_start(pid_t pgid, pid_t *guard_pid);
void agent_guard_done(int fd);

/* job_codecs.c */
void job_env_set(struct job *j, const char *name, const char *value);
const char *job_spec_env(const struct job *j, const char *name);
int job_codecs_start(struct job *j, char **why);
void job_codecs_frame(struct job *j, const struct cpx_frame *f);
void job_codecs_free(struct job *j);

/* job_eae.c */
int agent_argv_uses_eae(char *const *argv, size_t argc);
char *agent_eae_binary(const struct agent_config *cfg, char *const *envp);
int job_eae_start(struct job *j, char **why);

/* job_state.c */
char *agent_state_write(const char *run_dir, const struct cpx_jobspec *js,
    pid_t pid, uint64_t started_ms, const char *cwd);
void agent_state_remove(const char *path);
int agent_state_running(const char *run_dir);
int agent_root_space(const char *dir, long min_free_mb, char *msg,
    size_t len);

#endif /* AGENT_JOB_H */
