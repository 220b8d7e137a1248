/* cpx-ssh.h — SSH client connections on a libuv loop (libssh2, non-blocking). */

#ifndef CPX_SSH_H
#define CPX_SSH_H

#include <uv.h>

#include "cpx-link.h"
#include "cpx-protocol.h"

/*
 * One cpx_ssh_conn is one TCP connection and one libssh2 session to a
 * worker, verified against its pinned host key and authenticated with the
 * PMS host's ed25519 key. Channels opened on it run the worker's forced
 * command (the agent) and carry bytes (cpx_ssh_chan) or frames (a
 * cpx_link). Everything here belongs to the loop thread that created it.
 *
 * Failure statuses (negative errno, one meaning each, documented for the
 * shim's exit codes):
 *   -ECONNREFUSED, -EHOSTUNREACH, -ENETUNREACH   TCP connect failed
 *   -ETIMEDOUT       connect/handshake/channel deadline passed, or
 *                    keepalives lost
 *   -EKEYREJECTED    the server's host key is not the pinned one
 *   -EACCES          the server refused our key
 *   -ENOKEY          our own key file is missing or unreadable
 *   -EPROTO          SSH protocol failure
 *   -ECONNRESET      the connection dropped
 *   -ECONNABORTED    closed locally (cpx_ssh_close) while in use
 */

struct cpx_ssh_conn;
struct cpx_ssh_chan;

struct cpx_ssh_auth {
	const char *key_path;	 /* private key; its public half at <path>.pub */
	const char *known_hosts; /* optional known_hosts file checked too */
};

struct cpx_ssh_opts {
	unsigned connect_timeout_ms;	/* TCP connect + handshake + auth; also
					   the bound for a channel to open */
	unsigned keepalive_ms;		/* probe period; dead after 3 missed */
};

/* status 0: ready for channels; otherwise why it failed (cause for logs). */
typedef void (*cpx_ssh_ready_cb)(struct cpx_ssh_conn *c, int status,
    const char *cause, void *arg);
/* The connection died after it was ready; its channels have ended. */
typedef void (*cpx_ssh_dead_cb)(struct cpx_ssh_conn *c, int status,
    const char *cause, void *arg);
/* A channel opened (link != NULL) or failed (status, cause). */
typedef void (*cpx_ssh_open_cb)(struct cpx_ssh_conn *c, int status,
    const char *cause, struct cpx_link *link, void *arg);

/* ssh.c */

/*
 * Starts connecting; the result arrives through `ready` (never from
 * inside this call). The caller owns the connection and frees it with
 * cpx_ssh_close() exactly once, also after a failure or death; that is
 * allowed from inside any callback.
 */
struct cpx_ssh_conn *cpx_ssh_connect(uv_loop_t *loop,
    const struct cpx_endpoint *ep, const struct cpx_ssh_auth *auth,
    const struct cpx_ssh_opts *opts, cpx_ssh_ready_cb ready,
    cpx_ssh_dead_cb dead, void *arg);
int cpx_ssh_is_ready(const struct cpx_ssh_conn *c);
size_t cpx_ssh_channel_count(const struct cpx_ssh_conn *c);
const struct cpx_endpoint *cpx_ssh_endpoint(const struct cpx_ssh_conn *c);
/* Every channel not closed by its user ends with -ECONNABORTED first. */
void cpx_ssh_close(struct cpx_ssh_conn *c);

/*
 * Raw channels, for splicing bytes (the pool). Callbacks: exactly one
 * `opened`; after a successful open, data until exactly one `end`
 * (0: the agent closed its output; <0: error). After `end`, or after
 * cpx_ssh_chan_close(), the channel is gone and no callback runs again.
 */
struct cpx_ssh_chan_cbs {
	void (*opened)(struct cpx_ssh_chan *ch, int status, const char *cause,
	    void *arg);
	void (*data)(struct cpx_ssh_chan *ch, const void *p, size_t n,
	    void *arg);
	void (*end)(struct cpx_ssh_chan *ch, int error, void *arg);
	/* Optional: the write queue emptied (for flow control). */
	void (*drain)(struct cpx_ssh_chan *ch, void *arg);
};

/* ssh_chan.c */

struct cpx_ssh_chan *cpx_ssh_chan_open(struct cpx_ssh_conn *c,
    const char *command, const struct cpx_ssh_chan_cbs *cbs, void *arg);
void cpx_ssh_chan_write(struct cpx_ssh_chan *ch, const void *p, size_t n);
size_t cpx_ssh_chan_pending(const struct cpx_ssh_chan *ch);
void cpx_ssh_chan_pause(struct cpx_ssh_chan *ch, int paused);
/*
 * Ends the channel from our side: with `flush`, queued bytes are sent
 * first; then EOF and close, so the agent sees the end of its input at
 * once. Allowed while the channel is still opening (it is closed as soon
 * as it opens) and from inside its callbacks.
 */
void cpx_ssh_chan_close(struct cpx_ssh_chan *ch, int flush);

/* ssh_link.c */

/*
 * Opens an exec channel (the command string is constant: the worker's
 * forced command replaces it) and hands it over as a framed link. The
 * channel's stderr (the agent's own diagnostics) goes to the log.
 */
void cpx_ssh_open_link(struct cpx_ssh_conn *c, const char *command,
    cpx_link_frame_cb on_frame, cpx_link_close_cb on_close, void *link_arg,
    cpx_ssh_open_cb opened, void *arg);

/* ssh_key.c */

/* Formats the SHA256 fingerprint of an OpenSSH public key line; caller frees. */
char *cpx_ssh_fingerprint(const char *pubkey_line);
/* Decodes the key blob of an OpenSSH public key line; caller frees. */
int cpx_ssh_key_blob(const char *pubkey_line, uint8_t **blob, size_t *len);
/* SHA-256 of n bytes. */
void cpx_sha256(const void *data, size_t n, uint8_t out[32]);

#endif /* CPX_SSH_H */
