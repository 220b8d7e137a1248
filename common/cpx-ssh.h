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
 * command (the agent) and carry frames as a cpx_link. Everything here
 * belongs to the loop thread that created it.
 *
 * Failure statuses (negative errno, one meaning each, documented for the
 * shim's exit codes):
 *   -ECONNREFUSED, -EHOSTUNREACH, -ENETUNREACH   TCP connect failed
 *   -ETIMEDOUT       connect/handshake deadline passed, or keepalives lost
 *   -EKEYREJECTED    the server's host key is not the pinned one
 *   -EACCES          the server refused our key
 *   -EPROTO          SSH protocol failure
 *   -ECONNRESET      the connection dropped
 */

struct cpx_ssh_conn;

struct cpx_ssh_auth {
	const char *key_path;	 /* private key; its public half at <path>.pub */
	const char *known_hosts; /* optional known_hosts file checked too */
};

struct cpx_ssh_opts {
	unsigned connect_timeout_ms;	/* TCP connect + handshake + auth */
	unsigned keepalive_ms;		/* probe period; dead after 3 missed */
};

/* status 0: ready for channels; otherwise why it failed (cause for logs). */
typedef void (*cpx_ssh_ready_cb)(struct cpx_ssh_conn *c, int status,
    const char *cause, void *arg);
/* The connection died after it was ready; its links are already lost. */
typedef void (*cpx_ssh_dead_cb)(struct cpx_ssh_conn *c, int status,
    const char *cause, void *arg);
/* A channel opened (link != NULL) or failed (status, cause). */
typedef void (*cpx_ssh_open_cb)(struct cpx_ssh_conn *c, int status,
    const char *cause, struct cpx_link *link, void *arg);

/* ssh.c */

struct cpx_ssh_conn *cpx_ssh_connect(uv_loop_t *loop,
    const struct cpx_endpoint *ep, const struct cpx_ssh_auth *auth,
    const struct cpx_ssh_opts *opts, cpx_ssh_ready_cb ready,
    cpx_ssh_dead_cb dead, void *arg);
int cpx_ssh_is_ready(const struct cpx_ssh_conn *c);
size_t cpx_ssh_channel_count(const struct cpx_ssh_conn *c);
void cpx_ssh_close(struct cpx_ssh_conn *c);

/*
 * Opens an exec channel (the command string is constant: the worker's
 * forced command replaces it) and hands it over as a framed link. The
 * channel's stderr (the agent's own diagnostics) goes to the log.
 */
void cpx_ssh_open_link(struct cpx_ssh_conn *c, const char *command,
    cpx_link_frame_cb on_frame, cpx_link_close_cb on_close, void *link_arg,
    cpx_ssh_open_cb opened, void *arg);

/* Formats the SHA256 fingerprint of an OpenSSH public key line; caller frees. */
char *cpx_ssh_fingerprint(const char *pubkey_line);

#endif /* CPX_SSH_H */
