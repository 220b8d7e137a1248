/* pool.h — the pool's clients (shims) and sessions (one warm SSH per worker). */

#ifndef SHIM_POOL_H
#define SHIM_POOL_H

#include <uv.h>

#include "cpx-ssh.h"
#include "shim.h"

enum pc_state {
	PC_OPEN_WAIT,	/* reading POOL_OPEN */
	PC_SESSION,	/* waiting for its session to connect */
	PC_CHANNEL,	/* its channel is opening */
	PC_SPLICE,	/* bytes pass both ways */
	PC_DONE,
};

struct psess;

struct pclient {
	struct pool *pool;
	struct pclient *next;		/* every client */
	struct pclient *next_wait;	/* its session's waiting list */
	uv_pipe_t pipe;
	uv_shutdown_t shutdown;
	struct cpx_buf in;		/* bytes before the channel opened */
	enum pc_state state;
	struct cpx_endpoint ep;
	char *key;
	struct psess *sess;
	struct psess *avoid;		/* the session a retry must not use */
	struct cpx_ssh_chan *ch;
	int retried;
	int reading;
	int chan_paused;
};

struct psess {
	struct pool *pool;
	struct psess *next;
	char *key;			/* user@host:port hostkey */
	struct cpx_endpoint ep;
	struct cpx_ssh_conn *conn;
	int ready;
	int dead;
	struct pclient *waiting;
	unsigned users;			/* clients assigned to it */
	uint64_t idle_since;		/* 0 while in use */
};

struct pool {
	const struct shim_config *cfg;
	uv_loop_t *loop;
	uv_pipe_t server;
	uv_timer_t tick;
	uv_signal_t sigterm;
	uv_signal_t sigint;
	struct psess *sessions;
	struct pclient *clients;
	char *sock_path;
	int lock_fd;
	int stopping;
};

/* pool.c */
void pool_client_close(struct pclient *cl);
void pool_client_fail(struct pclient *cl, int status, const char *cause);
void pool_client_retry(struct pclient *cl, int status, const char *cause);
void pool_client_open_channel(struct pclient *cl);

/* pool_sess.c */
struct psess *pool_session_find(struct pool *pool, const char *key,
    const struct psess *avoid);
struct psess *pool_session_new(struct pool *pool,
    const struct cpx_endpoint *ep, const char *key);
void pool_session_assign(struct psess *s, struct pclient *cl);
void pool_session_release(struct pclient *cl);
void pool_session_unwait(struct psess *s, struct pclient *cl);
void pool_sessions_expire(struct pool *pool, uint64_t now);
void pool_sessions_close_all(struct pool *pool);

#endif /* SHIM_POOL_H */
