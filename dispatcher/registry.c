/* registry.c — workers: registration, heartbeats, leave, drain and expiry. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "disp.h"

/*
 * The registry is soft state: every field is what a worker told us (or
 * can tell us again after a restart), plus counters and the back-off,
 * which may safely start from zero.
 */

double
disp_wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
disp_init(struct disp *d, const struct disp_config *cfg)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t rnd[8];
	uint64_t t = cpx_now_us() ^ (uint64_t)time(NULL);
	size_t i;

	memset(d, 0, sizeof *d);
	d->cfg = cfg;
	disp_map_init(&d->workers);
	disp_map_init(&d->jobs);
	disp_map_init(&d->sessions);
	/* Tells a restart apart in /health; not a secret, not an identity. */
	if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
		for (i = 0; i < sizeof rnd; i++, t = t * 6364136223846793005ull + 1)
			rnd[i] = (uint8_t)(t >> 56);
	}
	for (i = 0; i < sizeof rnd; i++) {
		d->instance[2 * i] = hex[rnd[i] >> 4];
		d->instance[2 * i + 1] = hex[rnd[i] & 15];
	}
	d->instance[sizeof d->instance - 1] = '\0';
	d->started_wall = disp_wall_now();
}

struct disp_worker *
disp_worker_find(struct disp *d, const char *name)
{
	struct disp_hnode *n = disp_map_get(&d->workers, name);

	return n != NULL ? disp_container(n, struct disp_worker, node) : NULL;
}

int
disp_worker_alive(const struct disp_worker *w, uint64_t now)
{
	return now < w->expires_ms;
}

static void
worker_free(struct disp_worker *w)
{
	size_t i;

	cpx_endpoint_free(&w->ep);
	free(w->version);
	free(w->transcoder);
	for (i = 0; i < w->ncaps; i++)
		free(w->caps[i]);
	free(w->caps);
	cJSON_Delete(w->labels);
	disp_codecs_free(&w->codecs);
	free(w);
}

static void
order_add(struct disp *d, struct disp_worker *w)
{
	if (d->nworkers == d->order_cap) {
		d->order_cap = d->order_cap ? d->order_cap * 2 : 64;
		d->order = cpx_xrealloc(d->order,
		    d->order_cap * sizeof *d->order);
	}
	w->index = d->nworkers;
	d->order[d->nworkers++] = w;
}

static void
order_remove(struct disp *d, struct disp_worker *w)
{
	size_t i;

	memmove(&d->order[w->index], &d->order[w->index + 1],
	    (d->nworkers - w->index - 1) * sizeof *d->order);
	d->nworkers--;
	for (i = w->index; i < d->nworkers; i++)
		d->order[i]->index = i;
}

/* Removes a worker at once: its running jobs end as "lost". */
static void
worker_remove(struct disp *d, struct disp_worker *w, uint64_t now)
{
	disp_worker_drop_jobs(d, w, now);
	disp_map_del(&d->workers, &w->node);
	order_remove(d, w);
	d->departed++;
	worker_free(w);
}

/* Moves what a registration says into the worker (the registration is emptied). */
static void
take_registration(struct disp *d, struct disp_worker *w, struct disp_reg *reg,
    uint64_t now)
{
	size_t i;

	free(w->ep.host);
	free(w->ep.user);
	free(w->ep.host_key);
	w->ep.host = reg->ep.host;
	w->ep.port = reg->ep.port;
	w->ep.user = reg->ep.user;
	w->ep.host_key = reg->ep.host_key;
	reg->ep.host = reg->ep.user = reg->ep.host_key = NULL;
	free(w->version);
	free(w->transcoder);
	w->version = reg->version;
	w->transcoder = reg->transcoder;
	reg->version = reg->transcoder = NULL;
	for (i = 0; i < w->ncaps; i++)
		free(w->caps[i]);
	free(w->caps);
	w->caps = reg->caps;
	w->ncaps = (uint8_t)reg->ncaps;
	reg->caps = NULL;
	reg->ncaps = 0;
	cJSON_Delete(w->labels);
	w->labels = reg->labels;
	reg->labels = NULL;
	disp_codecs_move(&w->codecs, &reg->codecs);
	w->cpus = reg->cpus;
	w->bench = reg->bench;
	w->max_tasks = (int32_t)reg->max_tasks;
	w->per_task = 100.0 / (double)(reg->max_tasks > 0 ? reg->max_tasks : 1);
	w->interval_ms = reg->interval_ms;
	w->cpu = reg->cpu;
	w->draining = (uint8_t)reg->drain;
	w->last_seen_ms = now;
	w->expires_ms = now + (uint64_t)(w->interval_ms * d->cfg->misses);
}

static int
same_endpoint(const struct disp_worker *w, const struct disp_reg *reg)
{
	return strcmp(w->ep.host, reg->ep.host) == 0 &&
	    w->ep.port == reg->ep.port &&
	    strcmp(w->ep.host_key, reg->ep.host_key) == 0;
}

/*
 * Registers a worker, or refreshes one that registers again (after our
 * restart, its own restart, or a 404 to a heartbeat): the jobs it reports
 * become ours again. A live worker of the same name on another endpoint
 * is refused, so two machines with one hostname do not take turns.
 */
int
disp_register(struct disp *d, struct disp_reg *reg, uint64_t now,
    struct disp_worker **out, char **cause)
{
	struct disp_worker *w = disp_worker_find(d, reg->ep.name);
	int fresh = w == NULL;

	if (w != NULL && disp_worker_alive(w, now) && !same_endpoint(w, reg)) {
		cpx_set_cause(cause, "worker \"%s\" is registered with another "
		    "SSH endpoint and still heartbeating; use a unique "
		    "CLUSTERPLEX_WORKER_NAME", reg->ep.name);
		return -EEXIST;
	}
	if (fresh && d->nworkers >= (size_t)d->cfg->max_workers) {
		cpx_set_cause(cause, "the dispatcher has its maximum of %ld "
		    "workers (CLUSTERPLEX_MAX_WORKERS)", d->cfg->max_workers);
		return -ENOSPC;
	}
	if (fresh) {
		w = cpx_xcalloc(1, sizeof *w);
		w->ep.name = reg->ep.name;
		reg->ep.name = NULL;
		w->registered_ms = now;
		w->registered_wall = disp_wall_now();
		disp_map_put(&d->workers, &w->node, w->ep.name);
		order_add(d, w);
	}
	take_registration(d, w, reg, now);
	disp_jobs_reconcile(d, w, reg->jobs, reg->njobs, now);
	cpx_info("worker %s %sregistered: %s@%s:%d, %ld cpus, bench %.0f, "
	    "max %d tasks, %u running%s", w->ep.name, fresh ? "" : "re-",
	    w->ep.user, w->ep.host, w->ep.port, w->cpus, w->bench,
	    w->max_tasks, w->ntasks, w->draining ? ", draining" : "");
	*out = w;
	return 0;
}

/* -ENOENT: unknown worker, which must register again. */
int
disp_heartbeat(struct disp *d, const char *name, struct disp_beat *beat,
    uint64_t now, struct disp_worker **out)
{
	struct disp_worker *w = disp_worker_find(d, name);

	if (w == NULL)
		return -ENOENT;
	w->cpu = beat->cpu;
	w->load1 = beat->load1;
	/* An older agent's heartbeat says nothing: what it registered stays. */
	if (beat->codecs.known)
		disp_codecs_move(&w->codecs, &beat->codecs);
	w->last_seen_ms = now;
	w->expires_ms = now + (uint64_t)(w->interval_ms * d->cfg->misses);
	disp_jobs_reconcile(d, w, beat->jobs, beat->njobs, now);
	*out = w;
	return 0;
}

int
disp_leave(struct disp *d, const char *name, uint64_t now)
{
	struct disp_worker *w = disp_worker_find(d, name);

	if (w == NULL)
		return -ENOENT;
	cpx_info("worker %s left (%u jobs running)", name, w->ntasks);
	worker_remove(d, w, now);
	return 0;
}

int
disp_drain(struct disp *d, const char *name, int drain)
{
	struct disp_worker *w = disp_worker_find(d, name);

	if (w == NULL)
		return -ENOENT;
	if (w->draining != drain)
		cpx_info("worker %s %s", name, drain ? "draining: no new jobs" :
		    "back in placement");
	w->draining = (uint8_t)drain;
	return 0;
}

/* Removes workers whose heartbeats stopped, and forgets idle sessions. */
void
disp_sweep(struct disp *d, uint64_t now)
{
	struct disp_worker *w;
	size_t i = 0;

	while (i < d->nworkers) {
		w = d->order[i];
		if (disp_worker_alive(w, now)) {
			i++;
			continue;
		}
		cpx_warn("worker %s sent no heartbeat for %llu ms; removed "
		    "(%u jobs lost)", w->ep.name,
		    (unsigned long long)(now - w->last_seen_ms), w->ntasks);
		worker_remove(d, w, now);
	}
	disp_sessions_prune(d, now);
}

void
disp_free(struct disp *d)
{
	while (d->nworkers > 0)
		worker_remove(d, d->order[d->nworkers - 1], 0);
	while (d->hist_head != NULL) {
		struct disp_job *j = d->hist_head;

		d->hist_head = j->next;
		disp_map_del(&d->jobs, &j->node);
		free(j->id);
		free(j->session);
		free(j->worker);
		free(j);
	}
	disp_sessions_prune(d, UINT64_MAX);
	free(d->order);
	disp_map_free(&d->workers);
	disp_map_free(&d->jobs);
	disp_map_free(&d->sessions);
}
