/* pool_sess.c — the pool's warm SSH sessions, shared by the shims' channels. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

static void
session_remove(struct psess *s)
{
	struct psess **pp;
	struct pclient *cl;

	for (pp = &s->pool->sessions; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	for (cl = s->pool->clients; cl != NULL; cl = cl->next) {
		if (cl->sess == s)
			cl->sess = NULL;
		if (cl->avoid == s)
			cl->avoid = NULL;
	}
	cpx_ssh_close(s->conn);
	cpx_endpoint_free(&s->ep);
	free(s->key);
	free(s);
}

static void
on_ready(struct cpx_ssh_conn *c, int status, const char *cause, void *arg)
{
	struct psess *s = arg;
	struct pclient *cl;

	if (status != 0) {
		s->dead = 1;
		while ((cl = s->waiting) != NULL) {
			s->waiting = cl->next_wait;
			cl->state = PC_CHANNEL;
			pool_client_fail(cl, status, cause);
		}
		session_remove(s);
		return;
	}
	s->ready = 1;
	cpx_info("session to %s (%s:%d) is up", s->ep.name, s->ep.host,
	    s->ep.port);
	while ((cl = s->waiting) != NULL) {
		s->waiting = cl->next_wait;
		pool_client_open_channel(cl);
	}
}

/* Its channels have ended (and their shims were told) before this runs. */
static void
on_dead(struct cpx_ssh_conn *c, int status, const char *cause, void *arg)
{
	struct psess *s = arg;

	s->dead = 1;
	session_remove(s);
}

/*
 * A session for `key` with room for one more channel: sshd allows
 * MaxSessions (10 by default) per connection, so busy workers get more
 * than one session. A session that died but has not said so yet is
 * skipped.
 */
struct psess *
pool_session_find(struct pool *pool, const char *key, const struct psess *avoid)
{
	struct psess *s;

	for (s = pool->sessions; s != NULL; s = s->next) {
		if (s == avoid || s->dead || strcmp(s->key, key) != 0 ||
		    s->users >= (unsigned)pool->cfg->pool_channels)
			continue;
		if (s->ready && !cpx_ssh_is_ready(s->conn))
			continue;
		return s;
	}
	return NULL;
}

struct psess *
pool_session_new(struct pool *pool, const struct cpx_endpoint *ep,
    const char *key)
{
	struct psess *s = cpx_xcalloc(1, sizeof *s);
	struct cpx_ssh_auth auth = { .key_path = pool->cfg->key_path,
	    .known_hosts = pool->cfg->known_hosts };
	struct cpx_ssh_opts opts = {
		.connect_timeout_ms = (unsigned)pool->cfg->ssh_timeout_ms,
		.keepalive_ms = (unsigned)pool->cfg->keepalive_ms,
	};

	s->pool = pool;
	s->key = cpx_xstrdup(key);
	cpx_endpoint_copy(&s->ep, ep);
	s->next = pool->sessions;
	pool->sessions = s;
	s->conn = cpx_ssh_connect(pool->loop, ep, &auth, &opts, on_ready,
	    on_dead, s);
	return s;
}

void
pool_session_assign(struct psess *s, struct pclient *cl)
{
	cl->sess = s;
	s->users++;
	s->idle_since = 0;
	if (s->ready) {
		pool_client_open_channel(cl);
		return;
	}
	cl->state = PC_SESSION;
	cl->next_wait = s->waiting;
	s->waiting = cl;
}

void
pool_session_release(struct pclient *cl)
{
	struct psess *s = cl->sess;

	if (s == NULL)
		return;
	cl->sess = NULL;
	if (--s->users == 0)
		s->idle_since = cpx_now_ms();
}

void
pool_session_unwait(struct psess *s, struct pclient *cl)
{
	struct pclient **pp;

	if (s == NULL)
		return;
	for (pp = &s->waiting; *pp != NULL; pp = &(*pp)->next_wait) {
		if (*pp == cl) {
			*pp = cl->next_wait;
			break;
		}
	}
}

/* Sessions nobody used for CLUSTERPLEX_POOL_IDLE_MS are closed. */
void
pool_sessions_expire(struct pool *pool, uint64_t now)
{
	struct psess *s, *next;

	for (s = pool->sessions; s != NULL; s = next) {
		next = s->next;
		if (s->ready && s->users == 0 && s->idle_since != 0 &&
		    now - s->idle_since > (uint64_t)pool->cfg->pool_idle_ms) {
			cpx_info("closing the idle session to %s", s->ep.name);
			session_remove(s);
		}
	}
}

void
pool_sessions_close_all(struct pool *pool)
{
	while (pool->sessions != NULL)
		session_remove(pool->sessions);
}
