/* dispatch.c — asking the dispatcher for a worker, and telling it how it ended. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <cJSON.h>

#include "cpx-http.h"
#include "shim.h"

#define END_TIMEOUT_MS 300

/* 128 random bits in hex: a job id nobody else will ever pick. */
char *
shim_new_job_id(void)
{
	uint8_t r[16];
	char *id = cpx_xmalloc(sizeof r * 2 + 1);
	size_t i;

	if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
		cpx_fatal("getrandom failed");
	for (i = 0; i < sizeof r; i++)
		snprintf(id + 2 * i, 3, "%02x", r[i]);
	return id;
}

void
shim_placement_free(struct shim_placement *pl)
{
	free(pl->job_id);
	cpx_endpoint_free(&pl->worker);
	memset(pl, 0, sizeof *pl);
}

static char *
placement_body(const char *job_id, const struct shim_job *job,
    const char *exclude)
{
	cJSON *obj = cJSON_CreateObject(), *ex = cJSON_CreateArray();
	char *dir = NULL, *codecs = shim_codec_set(&dir);

	cJSON_AddStringToObject(obj, "job", job_id);
	cJSON_AddStringToObject(obj, "session", job->session);
	cJSON_AddItemToObject(obj, "caps", cJSON_CreateArray());
	/* The set the job spec will offer: placement avoids workers that cannot get it. */
	if (codecs != NULL)
		cJSON_AddStringToObject(obj, "codecs", codecs);
	free(codecs);
	free(dir);
	if (exclude != NULL)
		cJSON_AddItemToArray(ex, cJSON_CreateString(exclude));
	cJSON_AddItemToObject(obj, "exclude", ex);
	return cpx_json_take(obj, 0);
}

static int
parse_placement(const char *body, const char *asked,
    struct shim_placement *pl, char **cause)
{
	cJSON *obj = cJSON_Parse(body);
	const cJSON *job = cJSON_GetObjectItemCaseSensitive(obj, "job");
	const cJSON *worker = cJSON_GetObjectItemCaseSensitive(obj, "worker");
	char *sub = NULL;
	int error = -EPROTO;

	if (!cJSON_IsObject(worker)) {
		cpx_set_cause(cause, "placement answer has no \"worker\" object");
		goto out;
	}
	if (cpx_endpoint_from_json(worker, &pl->worker, &sub) != 0) {
		cpx_set_cause(cause, "placement answer: %s", sub);
		goto out;
	}
	if (*pl->worker.host_key == '\0') {
		cpx_set_cause(cause, "placement answer: worker %s has no "
		    "pinned host_key", pl->worker.name);
		shim_placement_free(pl);
		goto out;
	}
	pl->job_id = cpx_xstrdup(cJSON_IsString(job) && *job->valuestring ?
	    job->valuestring : asked);
	error = 0;
out:
	free(sub);
	cJSON_Delete(obj);
	return error;
}

/*
 * POST /api/v1/placements, bounded by CLUSTERPLEX_DISPATCH_TIMEOUT_MS;
 * `exclude` (or NULL) names a worker that just failed this job. Returns
 * 0 with *pl filled, -ENOSPC when no worker can take the job (503), or
 * another negative errno when the dispatcher failed.
 */
int
shim_place(const struct shim_config *cfg, const struct shim_job *job,
    const char *exclude, struct shim_placement *pl, char **cause)
{
	struct cpx_http_response resp;
	char *id = shim_new_job_id(), *body = placement_body(id, job, exclude);
	int error;

	memset(pl, 0, sizeof *pl);
	error = cpx_http_request(cfg->orchestrator_url, "POST",
	    "/api/v1/placements", cfg->token, body,
	    (unsigned)cfg->dispatch_timeout_ms, &resp, cause);
	if (error != 0)
		goto out;
	if (resp.status == 200 || resp.status == 201) {
		error = parse_placement(resp.body, id, pl, cause);
	} else if (resp.status == 503) {
		cpx_set_cause(cause, "no worker can take the job");
		error = -ENOSPC;
	} else {
		cpx_set_cause(cause, "placement answered HTTP %d%s", resp.status,
		    resp.status == 401 || resp.status == 403 ?
		    " (check CLUSTERPLEX_TOKEN)" : "");
		error = -EPROTO;
	}
	cpx_http_response_free(&resp);
out:
	free(body);
	free(id);
	return error;
}

/*
 * POST /api/v1/jobs/{id}/end: best effort, with a short deadline, since
 * PMS is waiting for our exit.
 */
void
shim_report_end(const struct shim_config *cfg, const char *job_id,
    const struct shim_outcome *out, uint64_t duration_ms)
{
	struct cpx_http_response resp;
	cJSON *obj = cJSON_CreateObject();
	char *body, *path = cpx_xprintf("/api/v1/jobs/%s/end", job_id);
	char *cause = NULL;
	unsigned t = cfg->dispatch_timeout_ms < END_TIMEOUT_MS ?
	    (unsigned)cfg->dispatch_timeout_ms : END_TIMEOUT_MS;
	int value;

	cJSON_AddStringToObject(obj, "outcome", shim_end_outcome(out, &value));
	cJSON_AddNumberToObject(obj, "exit", value);
	cJSON_AddNumberToObject(obj, "duration_ms", (double)duration_ms);
	body = cJSON_PrintUnformatted(obj);
	cJSON_Delete(obj);
	if (body != NULL && cpx_http_request(cfg->orchestrator_url, "POST", path,
	    cfg->token, body, t, &resp, &cause) == 0) {
		if (resp.status >= 300)
			cpx_debug("job end for %s: HTTP %d", job_id, resp.status);
		cpx_http_response_free(&resp);
	} else {
		cpx_debug("job end for %s not reported: %s", job_id,
		    cause != NULL ? cause : "out of memory");
	}
	cJSON_free(body);
	free(cause);
	free(path);
}
