/* place.c — choosing a worker for a job, at once, by the configured strategy. */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "disp.h"

/*
 * A placement is one pass over the registry: the workers that may take
 * the job (alive, not draining, not backing off, under their task limit,
 * with every capability asked for, not excluded) compete by the
 * strategy's key; the least recently chosen wins a tie, so equal workers
 * take turns. The job counts against the winner at once, so a burst
 * between two heartbeats spreads instead of piling onto one worker.
 *
 * Back-off and placements a worker has not reported steer jobs elsewhere;
 * they must not refuse a job that a worker could run. When no worker
 * passes the first pass, a second one ignores back-off and does not count
 * placements the worker left unreported for two of its heartbeats: after
 * a network blip every worker backs off at once, and a shim SIGKILLed
 * before its transcoder started leaves a placement that would hold a slot
 * until the start grace ends. A real job is reported at the worker's next
 * heartbeat, so a burst still counts in full. The agent's own task limit
 * ("busy") and the shim's retry elsewhere stay the hard stops.
 */

const char *const disp_place_fail_names[] = {
	"no-workers", "no-capable-worker", "draining", "backoff", "busy",
	"excluded", "no-codec-set", NULL
};

/* CPU load the worker will have once the jobs placed since its last report run. */
double
disp_projected_cpu(const struct disp_worker *w)
{
	double cpu = w->cpu + w->per_task * (double)w->nunseen;

	return cpu > 100.0 ? 100.0 : cpu;
}

static int
has_cap(const struct disp_worker *w, const char *cap)
{
	size_t i;

	for (i = 0; i < w->ncaps; i++) {
		if (strcmp(w->caps[i], cap) == 0)
			return 1;
	}
	return 0;
}

static int
excluded(const struct disp_place_req *pr, const struct disp_worker *w)
{
	size_t i;

	for (i = 0; i < pr->nexclude; i++) {
		if (strcmp(pr->exclude[i], w->ep.name) == 0)
			return 1;
	}
	return 0;
}

/* Placements w has not reported although two of its heartbeats passed. */
static uint32_t
stale_unseen(const struct disp_worker *w, uint64_t now)
{
	const struct disp_job *j;
	uint32_t n = 0;

	if (w->nunseen == 0)
		return 0;
	for (j = w->jobs; j != NULL; j = j->next) {
		if (!j->seen && now - j->placed_ms >= 2 * (uint64_t)w->interval_ms)
			n++;
	}
	return n;
}

/*
 * -1 when w may take the job, else why not (enum disp_place_fail).
 * `relaxed`: no back-off, and stale unreported placements do not count.
 */
static int
ineligible(const struct disp_worker *w, const struct disp_place_req *pr,
    uint64_t now, int relaxed)
{
	uint32_t tasks = relaxed ? w->ntasks - stale_unseen(w, now) : w->ntasks;

	size_t i;

	if (!disp_worker_alive(w, now))
		return DISP_PF_NO_WORKERS;
	if (excluded(pr, w))
		return DISP_PF_EXCLUDED;
	for (i = 0; i < pr->ncaps; i++) {
		if (!has_cap(w, pr->caps[i]))
			return DISP_PF_NO_CAPS;
	}
	if (pr->codecs && !disp_codecs_can_run(&w->codecs, &pr->set))
		return DISP_PF_NO_CODECS;
	if (w->draining)
		return DISP_PF_DRAINING;
	if (now < w->backoff_until && !relaxed)
		return DISP_PF_BACKOFF;
	if ((int32_t)tasks >= w->max_tasks)
		return DISP_PF_BUSY;
	return -1;
}

/* What the strategy compares: smaller wins, field by field. */
struct rank_key {
	double k1;
	double k2;
	uint64_t pick;
};

static void
rank_key(int strategy, const struct disp_worker *w, struct rank_key *k)
{
	k->k1 = k->k2 = 0;
	k->pick = w->last_pick;
	switch (strategy) {
	case DISP_LOAD_CPU:
		k->k1 = disp_projected_cpu(w);
		break;
	case DISP_LOAD_TASKS:
		k->k1 = (double)w->ntasks;
		break;
	case DISP_LOAD_RANK:
		/* ClusterPlex's rank: benchmark score times free CPU; higher wins. */
		k->k1 = -w->bench * (100.0 - disp_projected_cpu(w));
		k->k2 = (double)w->ntasks;
		break;
	default:
		break;
	}
}

static int
better(const struct rank_key *a, const struct rank_key *b)
{
	if (a->k1 != b->k1)
		return a->k1 < b->k1;
	if (a->k2 != b->k2)
		return a->k2 < b->k2;
	return a->pick < b->pick;
}

static void
describe_failure(const struct disp_place_req *pr, const size_t *why,
    size_t alive, struct disp_placement *out)
{
	static const int order[] = { DISP_PF_BUSY, DISP_PF_BACKOFF,
		DISP_PF_DRAINING, DISP_PF_EXCLUDED, DISP_PF_NO_CAPS,
		DISP_PF_NO_CODECS };
	size_t i;
	int n;

	if (alive == 0) {
		out->fail = DISP_PF_NO_WORKERS;
		snprintf(out->reason, sizeof out->reason,
		    "no worker is registered");
		return;
	}
	for (i = 0; i < CPX_ARRAY_SIZE(order); i++) {
		if (why[order[i]] > 0) {
			out->fail = order[i];
			break;
		}
	}
	n = snprintf(out->reason, sizeof out->reason, "no worker can take the "
	    "job: %zu busy, %zu backing off after failures, %zu draining, "
	    "%zu excluded, %zu without the capabilities%s%s", why[DISP_PF_BUSY],
	    why[DISP_PF_BACKOFF], why[DISP_PF_DRAINING], why[DISP_PF_EXCLUDED],
	    why[DISP_PF_NO_CAPS], pr->ncaps > 0 ? " " : "",
	    pr->ncaps > 0 ? pr->caps[0] : "");
	if (pr->codecs && n > 0 && (size_t)n < sizeof out->reason)
		snprintf(out->reason + n, sizeof out->reason - (size_t)n,
		    ", %zu unable to get codec set %s", why[DISP_PF_NO_CODECS],
		    pr->set.name);
}

/* The session's worker, when it can take this job too. */
static struct disp_worker *
affinity_worker(struct disp *d, const struct disp_place_req *pr, uint64_t now)
{
	struct disp_session *s;
	struct disp_worker *w;

	if (pr->session == NULL || (s = disp_session_find(d, pr->session)) ==
	    NULL || s->worker == NULL)
		return NULL;
	if (s->running == 0 && now - s->last_ms >= (uint64_t)d->cfg->affinity_ms)
		return NULL;
	w = disp_worker_find(d, s->worker);
	return w != NULL && ineligible(w, pr, now, 0) < 0 ? w : NULL;
}

/* The strategy's choice among the workers that pass; `why` counts the others. */
static struct disp_worker *
best_pass(struct disp *d, const struct disp_place_req *pr, uint64_t now,
    int relaxed, size_t *why, size_t *alive)
{
	struct disp_worker *best = NULL, *w;
	struct rank_key bk = { 0 }, k;
	size_t i;
	int r;

	for (i = 0; i < d->nworkers; i++) {
		w = d->order[i];
		r = ineligible(w, pr, now, relaxed);
		if (r != DISP_PF_NO_WORKERS)
			(*alive)++;
		if (r >= 0) {
			why[r]++;
			continue;
		}
		rank_key(d->cfg->strategy, w, &k);
		if (best == NULL || better(&k, &bk)) {
			best = w;
			bk = k;
		}
	}
	return best;
}

static struct disp_worker *
best_worker(struct disp *d, const struct disp_place_req *pr, uint64_t now,
    struct disp_placement *out)
{
	struct disp_worker *best;
	size_t why[DISP_PF_MAX_] = { 0 }, relaxed[DISP_PF_MAX_];
	size_t alive = 0, alive2 = 0;

	best = best_pass(d, pr, now, 0, why, &alive);
	if (best == NULL && (why[DISP_PF_BACKOFF] > 0 || why[DISP_PF_BUSY] > 0))
		best = best_pass(d, pr, now, 1, relaxed, &alive2);
	if (best == NULL)
		describe_failure(pr, why, alive, out);
	return best;
}

/*
 * Places a job: 0 with out->w and out->job set, -EAGAIN with out->fail and
 * out->reason when no worker can take it, -EEXIST when the job id is
 * already running on a worker that reported it.
 */
int
disp_place(struct disp *d, const struct disp_place_req *pr, uint64_t now,
    struct disp_placement *out)
{
	struct disp_job *old = pr->job ? disp_job_find(d, pr->job) : NULL;
	struct disp_worker *w;
	char id[64];

	memset(out, 0, sizeof *out);
	if (old != NULL && old->running && old->seen) {
		snprintf(out->reason, sizeof out->reason, "job is running on "
		    "worker %s", old->worker);
		return -EEXIST;
	}
	if (d->nrunning >= (size_t)d->cfg->max_jobs) {
		out->fail = DISP_PF_BUSY;
		snprintf(out->reason, sizeof out->reason, "the dispatcher "
		    "tracks its maximum of %ld jobs", d->cfg->max_jobs);
		goto fail;
	}
	if ((w = affinity_worker(d, pr, now)) != NULL)
		out->affinity = 1;
	else if ((w = best_worker(d, pr, now, out)) == NULL)
		goto fail;
	/* A retry of a job that never started on its first worker replaces it. */
	if (old != NULL && old->running)
		disp_job_finish(d, old, DISP_NEVER_STARTED, now);
	if (pr->job == NULL)
		snprintf(id, sizeof id, "job-%s-%llu", d->instance,
		    (unsigned long long)++d->job_seq);
	out->job = disp_job_add(d, w, pr->job ? pr->job : id, pr->session, 0,
	    now);
	out->job->affinity = out->affinity;
	w->last_pick = ++d->pick_seq;
	w->placements++;
	out->w = w;
	return 0;
fail:
	d->place_fail[out->fail]++;
	return -EAGAIN;
}
