/* jobs.c — running jobs per worker, recent history, and session affinity. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "disp.h"

/*
 * A job runs from its placement (or from the first report of a worker
 * that already runs it, after a restart) until the shim reports its end,
 * the worker stops reporting it, or its worker goes away. Ended jobs stay
 * in a bounded history for the status page.
 */

#define BACKOFF_MAX_SHIFT 4	/* consecutive failures double it, up to 16x */

struct disp_job *
disp_job_find(struct disp *d, const char *id)
{
	struct disp_hnode *n = disp_map_get(&d->jobs, id);

	return n != NULL ? disp_container(n, struct disp_job, node) : NULL;
}

struct disp_session *
disp_session_find(struct disp *d, const char *id)
{
	struct disp_hnode *n = disp_map_get(&d->sessions, id);

	return n != NULL ? disp_container(n, struct disp_session, node) : NULL;
}

/* Remembers that `session` runs on w; bounded like the job table. */
static void
session_ref(struct disp *d, const char *id, struct disp_worker *w,
    uint64_t now)
{
	struct disp_session *s = disp_session_find(d, id);

	if (s == NULL) {
		if (d->sessions.count >= (size_t)d->cfg->max_jobs)
			return;
		s = cpx_xcalloc(1, sizeof *s);
		s->id = cpx_xstrdup(id);
		disp_map_put(&d->sessions, &s->node, s->id);
		s->next = d->sess_list;
		if (d->sess_list != NULL)
			d->sess_list->prev = s;
		d->sess_list = s;
	}
	if (s->worker == NULL || strcmp(s->worker, w->ep.name) != 0) {
		free(s->worker);
		s->worker = cpx_xstrdup(w->ep.name);
	}
	s->running++;
	s->last_ms = now;
}

static void
session_unref(struct disp *d, const char *id, uint64_t now)
{
	struct disp_session *s = disp_session_find(d, id);

	if (s != NULL && s->running > 0) {
		s->running--;
		s->last_ms = now;
	}
}

void
disp_sessions_prune(struct disp *d, uint64_t now)
{
	struct disp_session *s, *next;

	for (s = d->sess_list; s != NULL; s = next) {
		next = s->next;
		if (s->running > 0 ||
		    now - s->last_ms < (uint64_t)d->cfg->affinity_ms)
			continue;
		if (s->prev != NULL)
			s->prev->next = s->next;
		else
			d->sess_list = s->next;
		if (s->next != NULL)
			s->next->prev = s->prev;
		disp_map_del(&d->sessions, &s->node);
		free(s->id);
		free(s->worker);
		free(s);
	}
}

static void
job_free(struct disp_job *j)
{
	free(j->id);
	free(j->session);
	free(j->worker);
	free(j);
}

static void
hist_unlink(struct disp *d, struct disp_job *j)
{
	if (j->prev != NULL)
		j->prev->next = j->next;
	else
		d->hist_head = j->next;
	if (j->next != NULL)
		j->next->prev = j->prev;
	else
		d->hist_tail = j->prev;
	d->nhist--;
}

/* Forgets an ended job entirely. */
static void
hist_drop(struct disp *d, struct disp_job *j)
{
	hist_unlink(d, j);
	disp_map_del(&d->jobs, &j->node);
	job_free(j);
}

static void
hist_push(struct disp *d, struct disp_job *j)
{
	j->prev = NULL;
	j->next = d->hist_head;
	if (d->hist_head != NULL)
		d->hist_head->prev = j;
	else
		d->hist_tail = j;
	d->hist_head = j;
	d->nhist++;
	while (d->nhist > (size_t)d->cfg->history)
		hist_drop(d, d->hist_tail);
}

static void
worker_unlink(struct disp_job *j)
{
	struct disp_worker *w = j->w;

	if (j->prev != NULL)
		j->prev->next = j->next;
	else
		w->jobs = j->next;
	if (j->next != NULL)
		j->next->prev = j->prev;
	w->ntasks--;
	if (!j->seen)
		w->nunseen--;
	j->w = NULL;
}

/*
 * A running job on w. An ended job of the same id is forgotten first: a
 * worker that reports it again is running it again (after a partition).
 */
struct disp_job *
disp_job_add(struct disp *d, struct disp_worker *w, const char *id,
    const char *session, double started_wall, uint64_t now)
{
	struct disp_job *j = disp_job_find(d, id);

	if (j != NULL)
		hist_drop(d, j);
	j = cpx_xcalloc(1, sizeof *j);
	j->id = cpx_xstrdup(id);
	j->session = session != NULL ? cpx_xstrdup(session) : NULL;
	j->worker = cpx_xstrdup(w->ep.name);
	j->w = w;
	j->placed_ms = now;
	j->started_wall = started_wall > 0 ? started_wall : disp_wall_now();
	j->running = 1;
	j->outcome = -1;
	j->duration_ms = -1;
	j->next = w->jobs;
	if (w->jobs != NULL)
		w->jobs->prev = j;
	w->jobs = j;
	w->ntasks++;
	w->nunseen++;
	disp_map_put(&d->jobs, &j->node, j->id);
	d->nrunning++;
	if (session != NULL)
		session_ref(d, session, w, now);
	return j;
}

static void
apply_backoff(struct disp *d, struct disp_worker *w, int outcome,
    uint64_t now)
{
	int shift;

	if (outcome == DISP_OK) {
		w->failures = 0;
		return;
	}
	if (outcome != DISP_WORKER_ERROR)
		return;
	w->worker_errors++;
	w->failures++;
	shift = w->failures - 1 < BACKOFF_MAX_SHIFT ? w->failures - 1 :
	    BACKOFF_MAX_SHIFT;
	w->backoff_until = now + ((uint64_t)d->cfg->backoff_ms << shift);
	cpx_warn("worker %s failed a job (%d in a row); avoided for %llu ms",
	    w->ep.name, w->failures,
	    (unsigned long long)(w->backoff_until - now));
}

/* Ends a running job with `outcome` and moves it to the history. */
void
disp_job_finish(struct disp *d, struct disp_job *j, int outcome, uint64_t now)
{
	if (!j->running)
		return;
	if (j->w != NULL) {
		apply_backoff(d, j->w, outcome, now);
		worker_unlink(j);
	}
	j->running = 0;
	j->outcome = outcome;
	j->ended_ms = now;
	j->ended_wall = disp_wall_now();
	if (j->duration_ms < 0)
		j->duration_ms = now > j->placed_ms ?
		    (long)(now - j->placed_ms) : 0;
	d->nrunning--;
	d->outcomes[outcome]++;
	if (j->session != NULL)
		session_unref(d, j->session, now);
	hist_push(d, j);
}

/*
 * The shim's report. A job the dispatcher already closed by guessing
 * (ended, never-started, lost) takes the shim's better-informed outcome
 * for display; -EALREADY when the shim reported it before.
 */
int
disp_job_end(struct disp *d, const char *id, const struct disp_end *end,
    uint64_t now)
{
	struct disp_job *j = disp_job_find(d, id);

	if (j == NULL)
		return -ENOENT;
	if (!j->running && j->outcome <= DISP_WORKER_ERROR)
		return -EALREADY;
	j->has_exit = end->has_exit;
	j->exit_code = end->exit_code;
	if (end->duration_ms >= 0)
		j->duration_ms = end->duration_ms;
	if (j->running)
		disp_job_finish(d, j, end->outcome, now);
	else
		j->outcome = end->outcome;
	return 0;
}

static void
mark_seen(struct disp_job *j, struct disp_worker *w)
{
	if (!j->seen) {
		j->seen = 1;
		w->nunseen--;
	}
	j->gen = w->gen;
}

/* One job the worker says it runs. */
static void
reconcile_one(struct disp *d, struct disp_worker *w,
    const struct disp_job_report *r, uint64_t now)
{
	struct disp_job *j = disp_job_find(d, r->id);

	if (j != NULL && j->running && j->w == w) {
		if (j->session == NULL && r->session != NULL) {
			j->session = cpx_xstrdup(r->session);
			session_ref(d, r->session, w, now);
		}
		mark_seen(j, w);
		return;
	}
	/*
	 * A job whose end was reported may linger in the worker's reports
	 * for a beat while its state file is removed: it stays ended. Only
	 * the dispatcher's own guesses (lost, never started) are revived.
	 */
	if (j != NULL && !j->running && j->outcome != DISP_LOST &&
	    j->outcome != DISP_NEVER_STARTED)
		return;
	if (j != NULL && j->running)
		disp_job_finish(d, j, DISP_LOST, now);
	j = disp_job_add(d, w, r->id, r->session, r->started, now);
	mark_seen(j, w);
}

/*
 * Brings w's jobs in line with its report: reported jobs run (learnt
 * again after a restart), jobs it stopped reporting have ended, and jobs
 * placed on it that it never reported are given up after the start grace.
 */
void
disp_jobs_reconcile(struct disp *d, struct disp_worker *w,
    const struct disp_job_report *jobs, size_t njobs, uint64_t now)
{
	struct disp_job *j, *next;
	size_t i;

	w->gen++;
	for (i = 0; i < njobs; i++)
		reconcile_one(d, w, &jobs[i], now);
	for (j = w->jobs; j != NULL; j = next) {
		next = j->next;
		if (j->gen == w->gen)
			continue;
		if (j->seen)
			disp_job_finish(d, j, DISP_ENDED, now);
		else if (now - j->placed_ms >= (uint64_t)d->cfg->start_grace_ms)
			disp_job_finish(d, j, DISP_NEVER_STARTED, now);
	}
}

void
disp_worker_drop_jobs(struct disp *d, struct disp_worker *w, uint64_t now)
{
	while (w->jobs != NULL)
		disp_job_finish(d, w->jobs, DISP_LOST, now);
}
