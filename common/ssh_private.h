/* ssh_private.h — what ssh.c and ssh_chan.c share about a connection. */

#ifndef SSH_PRIVATE_H
#define SSH_PRIVATE_H

#include <netdb.h>

#include <libssh2.h>

#include "cpx-ssh.h"

enum ssh_state {
	SSH_RESOLVING,
	SSH_CONNECTING,
	SSH_HANDSHAKE,
	SSH_AUTH,
	SSH_READY,
	SSH_DEAD,
};

/*
 * The libssh2 call that left a packet half sent. libssh2 1.10 refuses
 * (LIBSSH2_ERROR_BAD_USE) every other sending call on the session until
 * that very call is repeated and completes, so the drive loop retries it
 * first and touches nothing else meanwhile.
 */
enum chan_op {
	OP_NONE,
	OP_STATE,		/* open, exec, EOF, close: the state repeats it */
	OP_WRITE,
	OP_READ,
	OP_READ_ERR,
};

enum chan_state {
	CH_OPENING,
	CH_EXEC,
	CH_OPEN,
	CH_CLOSING,
	CH_DONE,
};

struct cpx_ssh_chan {
	struct cpx_ssh_conn *conn;
	struct cpx_ssh_chan *next;
	LIBSSH2_CHANNEL *ch;
	enum chan_state state;
	char *command;
	struct cpx_ssh_chan_cbs cbs;
	void *arg;
	struct cpx_buf out;
	size_t out_off;		/* bytes of `out` already sent */
	struct cpx_buf errline;	/* partial stderr line */
	uint64_t deadline;	/* opening or closing must be done by then */
	int paused;
	int user_closed;	/* no callbacks any more */
	int flush;		/* send queued bytes before EOF */
	int eof_sent;
	int want_drain;
	enum chan_op blocked_op;
};

struct cpx_ssh_conn {
	uv_loop_t *loop;
	struct cpx_endpoint ep;
	char *key_path;
	char *known_hosts;
	struct cpx_ssh_opts opts;
	cpx_ssh_ready_cb ready_cb;
	cpx_ssh_dead_cb dead_cb;
	void *arg;

	enum ssh_state state;
	int was_ready;
	int fd;
	uv_getaddrinfo_t gai;
	int gai_active;
	uv_poll_t *poll;
	int poll_events;
	uv_timer_t timer;
	uv_idle_t kick;
	int handles;		/* open libuv handles, incl. kick and timer */
	LIBSSH2_SESSION *session;

	uint64_t last_rx;	/* last time bytes arrived while reading */
	int reading;		/* we want input from the socket */
	struct cpx_ssh_chan *chans;
	struct cpx_ssh_chan *tx_owner;	/* see enum chan_op */
	char *privkey;
	size_t privkey_len;
	char *pubkey;
	size_t pubkey_len;
	int driving;
	int again;
	int user_closed;
	int reported;		/* failure/death reported to the user */
	int status;
	char *cause;
};

/* ssh.c */
void ssh_kick(struct cpx_ssh_conn *c);
void ssh_fail(struct cpx_ssh_conn *c, int status, const char *fmt, ...)
    CPX_PRINTF(3, 4);
int ssh_map_error(int rc);
int ssh_fatal_error(int rc);
const char *ssh_last_error(struct cpx_ssh_conn *c);

/* ssh_key.c */
int ssh_check_host_key(struct cpx_ssh_conn *c);
int ssh_read_keys(struct cpx_ssh_conn *c);
void ssh_wipe_keys(struct cpx_ssh_conn *c);

/* ssh_chan.c */
void ssh_chans_drive(struct cpx_ssh_conn *c);
int ssh_chans_want_read(struct cpx_ssh_conn *c);
void ssh_chans_end_all(struct cpx_ssh_conn *c, int status, const char *cause);
void ssh_chans_check_deadlines(struct cpx_ssh_conn *c, uint64_t now);

#endif /* SSH_PRIVATE_H */
