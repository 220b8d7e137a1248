/* serve_msg.c — registration and heartbeat bodies, as docs/dispatcher.md defines them. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cpx-protocol.h"
#include "serve.h"

void
agent_facts_free(struct agent_facts *f)
{
	free(f->ssh_host);
	free(f->host_key);
	free(f->transcoder_version);
	memset(f, 0, sizeof *f);
}

/*
 * The SSH endpoint advertised: CLUSTERPLEX_SSH_ADDRESS (host[:port]) when
 * set, else the address this machine reaches the dispatcher from, port 22.
 */
int
agent_ssh_endpoint(const struct agent_config *cfg, const char *local_addr,
    char **host, int *port, char **cause)
{
	if (cfg->ssh_address != NULL)
		return cpx_parse_hostport(cfg->ssh_address, 22, host, port,
		    cause);
	if (local_addr == NULL) {
		cpx_set_cause(cause, "no local address toward the dispatcher; "
		    "set CLUSTERPLEX_SSH_ADDRESS");
		return -EHOSTUNREACH;
	}
	*host = cpx_xstrdup(local_addr);
	*port = 22;
	return 0;
}

static cJSON *
jobs_json(const struct agent_job *jobs, size_t njobs)
{
	cJSON *arr = cJSON_CreateArray();
	size_t i;

	for (i = 0; i < njobs; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "id", jobs[i].id);
		if (jobs[i].session != NULL)
			cJSON_AddStringToObject(o, "session", jobs[i].session);
		if (jobs[i].started > 0)
			cJSON_AddNumberToObject(o, "started", jobs[i].started);
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

/* "a,b" -> ["a","b"], skipping empty items. */
static cJSON *
caps_json(const char *caps)
{
	cJSON *arr = cJSON_CreateArray();
	char *copy, *tok, *save = NULL;

	if (caps == NULL)
		return arr;
	copy = cpx_xstrdup(caps);
	for (tok = strtok_r(copy, ", ", &save); tok != NULL;
	    tok = strtok_r(NULL, ", ", &save))
		cJSON_AddItemToArray(arr, cJSON_CreateString(tok));
	free(copy);
	return arr;
}

/* "k=v,k2=v2" -> {"k":"v","k2":"v2"}; an item without '=' gets "". */
static cJSON *
labels_json(const char *labels)
{
	cJSON *obj = cJSON_CreateObject();
	char *copy, *tok, *save = NULL, *eq;

	if (labels == NULL)
		return obj;
	copy = cpx_xstrdup(labels);
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if (*tok == '\0')
			continue;
		eq = strchr(tok, '=');
		if (eq != NULL)
			*eq++ = '\0';
		cJSON_AddStringToObject(obj, tok, eq != NULL ? eq : "");
	}
	free(copy);
	return obj;
}

/* Registration body; caller frees. */
char *
agent_reg_body(const struct agent_config *cfg, const struct agent_facts *f,
    double cpu, int drain, const struct agent_job *jobs, size_t njobs)
{
	cJSON *root = cJSON_CreateObject(), *ssh;

	cJSON_AddStringToObject(root, "name", cfg->name);
	ssh = cJSON_AddObjectToObject(root, "ssh");
	cJSON_AddStringToObject(ssh, "host", f->ssh_host);
	cJSON_AddNumberToObject(ssh, "port", f->ssh_port);
	cJSON_AddStringToObject(ssh, "user", cfg->ssh_user);
	cJSON_AddStringToObject(ssh, "host_key", f->host_key);
	cJSON_AddNumberToObject(root, "cpus", (double)f->cpus);
	cJSON_AddNumberToObject(root, "bench", f->bench);
	cJSON_AddNumberToObject(root, "cpu", cpu);
	cJSON_AddStringToObject(root, "version", CPX_VERSION);
	if (f->transcoder_version != NULL)
		cJSON_AddStringToObject(root, "transcoder",
		    f->transcoder_version);
	cJSON_AddItemToObject(root, "caps", caps_json(cfg->caps));
	cJSON_AddItemToObject(root, "labels", labels_json(cfg->labels));
	cJSON_AddNumberToObject(root, "max_tasks", (double)cfg->max_tasks);
	cJSON_AddNumberToObject(root, "interval_ms", (double)cfg->heartbeat_ms);
	cJSON_AddBoolToObject(root, "drain", drain);
	cJSON_AddItemToObject(root, "jobs", jobs_json(jobs, njobs));
	cJSON_AddItemToObject(root, "codecs", agent_codecs_json(cfg));
	return cpx_json_take(root, 0);
}

/* Heartbeat body; caller frees. */
char *
agent_beat_body(const struct agent_config *cfg, double cpu, double load1,
    const struct agent_job *jobs, size_t njobs)
{
	cJSON *root = cJSON_CreateObject();

	cJSON_AddNumberToObject(root, "cpu", cpu);
	cJSON_AddNumberToObject(root, "load1", load1);
	cJSON_AddItemToObject(root, "jobs", jobs_json(jobs, njobs));
	/* The sets held change as jobs fetch them. */
	cJSON_AddItemToObject(root, "codecs", agent_codecs_json(cfg));
	return cpx_json_take(root, 0);
}

/* The drain flag of a registration or heartbeat answer. */
int
agent_parse_drain(const char *body, int *drain)
{
	cJSON *root = cJSON_Parse(body);
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "drain");
	int error = -EINVAL;

	if (cJSON_IsBool(d)) {
		*drain = cJSON_IsTrue(d);
		error = 0;
	}
	cJSON_Delete(root);
	return error;
}

/* The "error" sentence of a dispatcher's answer, printable; caller frees. */
char *
agent_parse_error(const char *body)
{
	cJSON *root = body != NULL ? cJSON_Parse(body) : NULL;
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
	char *out = NULL;

	if (cJSON_IsString(e))
		out = cpx_escape(e->valuestring, strlen(e->valuestring), 200);
	cJSON_Delete(root);
	return out;
}
