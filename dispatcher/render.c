/* render.c — the JSON views: /health, /api/v1/workers, /api/v1/jobs. */

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "disp.h"

static void
print_into(cJSON *root, struct cpx_buf *out)
{
	char *text = cJSON_PrintUnformatted(root);

	if (text != NULL) {
		cpx_buf_add(out, text, strlen(text));
		free(text);
	}
	cpx_buf_add(out, "\n", 1);
	cJSON_Delete(root);
}

static size_t
count_ready(struct disp *d, uint64_t now)
{
	size_t i, n = 0;

	for (i = 0; i < d->nworkers; i++) {
		struct disp_worker *w = d->order[i];

		if (disp_worker_alive(w, now) && !w->draining &&
		    now >= w->backoff_until)
			n++;
	}
	return n;
}

/* Nothing secret here: counts, the strategy and the version. */
void
disp_render_health(struct disp *d, struct cpx_buf *out)
{
	cJSON *root = cJSON_CreateObject();
	uint64_t now = cpx_now_ms();

	cJSON_AddStringToObject(root, "status", "ok");
	cJSON_AddNumberToObject(root, "workers", (double)d->nworkers);
	cJSON_AddNumberToObject(root, "ready", (double)count_ready(d, now));
	cJSON_AddNumberToObject(root, "jobs", (double)d->nrunning);
	cJSON_AddStringToObject(root, "strategy",
	    disp_strategy_names[d->cfg->strategy]);
	cJSON_AddStringToObject(root, "version", CPX_VERSION);
	cJSON_AddStringToObject(root, "instance", d->instance);
	cJSON_AddNumberToObject(root, "uptime_s",
	    (double)(long)(disp_wall_now() - d->started_wall));
	print_into(root, out);
}

static const char *
worker_state(const struct disp_worker *w, uint64_t now)
{
	if (!disp_worker_alive(w, now))
		return "stale";
	if (w->draining)
		return "draining";
	if (now < w->backoff_until)
		return "backoff";
	if ((int32_t)w->ntasks >= w->max_tasks)
		return "full";
	return "ready";
}

static cJSON *
string_array(char **v, size_t n)
{
	cJSON *arr = cJSON_CreateArray();
	size_t i;

	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(v[i]));
	return arr;
}

void
disp_render_worker(struct disp_worker *w, uint64_t now, cJSON *obj)
{
	cJSON *ssh, *jobs;
	struct disp_job *j;

	cJSON_AddStringToObject(obj, "name", w->ep.name);
	ssh = cJSON_AddObjectToObject(obj, "ssh");
	cpx_endpoint_to_json(&w->ep, ssh);
	cJSON_DeleteItemFromObject(ssh, "name");
	cJSON_AddStringToObject(obj, "state", worker_state(w, now));
	cJSON_AddNumberToObject(obj, "cpus", (double)w->cpus);
	cJSON_AddNumberToObject(obj, "bench", w->bench);
	cJSON_AddNumberToObject(obj, "cpu", w->cpu);
	cJSON_AddNumberToObject(obj, "projected_cpu", disp_projected_cpu(w));
	cJSON_AddNumberToObject(obj, "load1", w->load1);
	cJSON_AddNumberToObject(obj, "tasks", (double)w->ntasks);
	cJSON_AddNumberToObject(obj, "max_tasks", (double)w->max_tasks);
	cJSON_AddBoolToObject(obj, "draining", w->draining);
	cJSON_AddNumberToObject(obj, "backoff_ms", now < w->backoff_until ?
	    (double)(w->backoff_until - now) : 0);
	cJSON_AddNumberToObject(obj, "failures", w->failures);
	cJSON_AddStringToObject(obj, "version", w->version ? w->version : "");
	cJSON_AddStringToObject(obj, "transcoder",
	    w->transcoder ? w->transcoder : "");
	cJSON_AddItemToObject(obj, "caps", string_array(w->caps, w->ncaps));
	cJSON_AddItemToObject(obj, "labels", w->labels ?
	    cJSON_Duplicate(w->labels, 1) : cJSON_CreateObject());
	disp_render_codecs(&w->codecs, obj);
	cJSON_AddNumberToObject(obj, "heartbeat_ms", (double)w->interval_ms);
	cJSON_AddNumberToObject(obj, "last_seen_ms",
	    (double)(now - w->last_seen_ms));
	cJSON_AddNumberToObject(obj, "registered", w->registered_wall);
	cJSON_AddNumberToObject(obj, "placements", (double)w->placements);
	jobs = cJSON_AddArrayToObject(obj, "jobs");
	for (j = w->jobs; j != NULL; j = j->next)
		cJSON_AddItemToArray(jobs, cJSON_CreateString(j->id));
}

void
disp_render_workers(struct disp *d, uint64_t now, struct cpx_buf *out)
{
	cJSON *root = cJSON_CreateObject(), *arr;
	size_t i;

	cJSON_AddStringToObject(root, "strategy",
	    disp_strategy_names[d->cfg->strategy]);
	arr = cJSON_AddArrayToObject(root, "workers");
	for (i = 0; i < d->nworkers; i++) {
		cJSON *obj = cJSON_CreateObject();

		disp_render_worker(d->order[i], now, obj);
		cJSON_AddItemToArray(arr, obj);
	}
	print_into(root, out);
}

static cJSON *
job_json(const struct disp_job *j, uint64_t now)
{
	cJSON *obj = cJSON_CreateObject();

	cJSON_AddStringToObject(obj, "id", j->id);
	if (j->session != NULL)
		cJSON_AddStringToObject(obj, "session", j->session);
	else
		cJSON_AddNullToObject(obj, "session");
	cJSON_AddStringToObject(obj, "worker", j->worker);
	cJSON_AddStringToObject(obj, "state", j->running ? (j->seen ?
	    "running" : "starting") : "ended");
	cJSON_AddNumberToObject(obj, "started", j->started_wall);
	cJSON_AddNumberToObject(obj, "duration_ms", j->running ?
	    (double)(now - j->placed_ms) : (double)j->duration_ms);
	cJSON_AddBoolToObject(obj, "affinity", j->affinity);
	if (!j->running) {
		cJSON_AddStringToObject(obj, "outcome",
		    disp_outcome_names[j->outcome]);
		cJSON_AddNumberToObject(obj, "ended", j->ended_wall);
		if (j->has_exit)
			cJSON_AddNumberToObject(obj, "exit",
			    (double)j->exit_code);
	}
	return obj;
}

/* Running jobs (all of them), then up to `limit` ended ones, newest first. */
void
disp_render_jobs(struct disp *d, uint64_t now, long limit,
    struct cpx_buf *out)
{
	cJSON *root = cJSON_CreateObject(), *run, *recent;
	struct disp_job *j;
	size_t i;
	long n = 0;

	cJSON_AddNumberToObject(root, "running_count", (double)d->nrunning);
	run = cJSON_AddArrayToObject(root, "running");
	for (i = 0; i < d->nworkers; i++) {
		for (j = d->order[i]->jobs; j != NULL; j = j->next)
			cJSON_AddItemToArray(run, job_json(j, now));
	}
	recent = cJSON_AddArrayToObject(root, "recent");
	for (j = d->hist_head; j != NULL && n < limit; j = j->next, n++)
		cJSON_AddItemToArray(recent, job_json(j, now));
	print_into(root, out);
}
