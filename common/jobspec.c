/* jobspec.c — the job spec a shim sends to an agent, as JSON, byte-exact. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cpx-protocol.h"

#define JOBSPEC_VERSION 1
#define JOBSPEC_MAX_STR (1024 * 1024)

void
cpx_jobspec_free(struct cpx_jobspec *js)
{
	size_t i;

	free(js->id);
	free(js->session);
	free(js->root);
	free(js->cwd);
	for (i = 0; i < js->argc; i++)
		free(js->argv[i]);
	free(js->argv);
	for (i = 0; i < js->envc; i++)
		free(js->env[i]);
	free(js->env);
	for (i = 0; i < js->ninputs; i++)
		free(js->inputs[i].name);
	free(js->inputs);
	free(js->codecs);
	memset(js, 0, sizeof *js);
}

/*
 * Bytes as JSON: a string when the value is valid UTF-8 (cJSON escapes
 * control characters), {"b64": ...} otherwise.
 */
static cJSON *
bytes_to_json(const char *s)
{
	size_t n = strlen(s);
	cJSON *obj;
	char *b64;

	if (cpx_utf8_valid((const uint8_t *)s, n))
		return cJSON_CreateString(s);
	obj = cJSON_CreateObject();
	b64 = cpx_b64_encode((const uint8_t *)s, n);
	cJSON_AddStringToObject(obj, "b64", b64);
	free(b64);
	return obj;
}

/* The inverse of bytes_to_json; NULL when malformed or containing NUL. */
static char *
bytes_from_json(const cJSON *v)
{
	const cJSON *b64;
	uint8_t *out;
	size_t n;

	if (cJSON_IsString(v))
		return cpx_xstrdup(v->valuestring);
	b64 = cJSON_GetObjectItemCaseSensitive(v, "b64");
	if (!cJSON_IsObject(v) || !cJSON_IsString(b64))
		return NULL;
	if (cpx_b64_decode(b64->valuestring, strlen(b64->valuestring), &out,
	    &n) != 0)
		return NULL;
	if (memchr(out, '\0', n) != NULL) {
		free(out);
		return NULL;
	}
	return (char *)out;
}

static cJSON *
strings_to_json(char *const *list, size_t n)
{
	cJSON *arr = cJSON_CreateArray();
	size_t i;

	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, bytes_to_json(list[i]));
	return arr;
}

static cJSON *
inputs_to_json(const struct cpx_jobspec *js)
{
	cJSON *arr = cJSON_CreateArray(), *o;
	size_t i;

	for (i = 0; i < js->ninputs; i++) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", js->inputs[i].name);
		cJSON_AddNumberToObject(o, "size", (double)js->inputs[i].size);
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

/* Returns a new JSON text; caller frees. */
char *
cpx_jobspec_encode(const struct cpx_jobspec *js)
{
	cJSON *obj = cJSON_CreateObject();

	cJSON_AddNumberToObject(obj, "v", JOBSPEC_VERSION);
	cJSON_AddStringToObject(obj, "id", js->id);
	cJSON_AddStringToObject(obj, "session", js->session ? js->session : "");
	cJSON_AddItemToObject(obj, "root", bytes_to_json(js->root));
	cJSON_AddItemToObject(obj, "cwd", bytes_to_json(js->cwd));
	cJSON_AddItemToObject(obj, "argv", strings_to_json(js->argv, js->argc));
	cJSON_AddItemToObject(obj, "env", strings_to_json(js->env, js->envc));
	cJSON_AddNumberToObject(obj, "pms_port", js->pms_port);
	cJSON_AddBoolToObject(obj, "tunnel", js->tunnel);
	cJSON_AddBoolToObject(obj, "verbose", js->verbose);
	cJSON_AddItemToObject(obj, "inputs", inputs_to_json(js));
	if (js->codecs != NULL)
		cJSON_AddStringToObject(obj, "codecs", js->codecs);
	return cpx_json_take(obj, 0);
}

static int
decode_strings(const cJSON *arr, size_t max, char ***out, size_t *n,
    const char *what, char **cause)
{
	const cJSON *v;
	size_t count = 0;
	int size = cJSON_GetArraySize(arr);

	if (!cJSON_IsArray(arr) || size < 0 || (size_t)size > max) {
		cpx_set_cause(cause, "\"%s\" must be an array of at most %zu "
		    "entries", what, max);
		return -EINVAL;
	}
	*out = cpx_xcalloc((size_t)size + 1, sizeof **out);
	cJSON_ArrayForEach(v, arr) {
		char *s = bytes_from_json(v);

		if (s == NULL) {
			cpx_set_cause(cause, "\"%s\"[%zu] is not a string or "
			    "{\"b64\"} without NUL bytes", what, count);
			*n = count;
			return -EINVAL;
		}
		(*out)[count++] = s;
	}
	*n = count;
	return 0;
}

static int
decode_inputs(const cJSON *arr, struct cpx_jobspec *js, char **cause)
{
	const cJSON *v;
	int size = cJSON_GetArraySize(arr);

	if (arr == NULL)
		return 0;
	if (!cJSON_IsArray(arr) || size > CPX_JOB_MAX_INPUTS) {
		cpx_set_cause(cause, "\"inputs\" must be an array of at most %d",
		    CPX_JOB_MAX_INPUTS);
		return -EINVAL;
	}
	js->inputs = cpx_xcalloc((size_t)size + 1, sizeof *js->inputs);
	cJSON_ArrayForEach(v, arr) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(v, "name");
		const cJSON *sz = cJSON_GetObjectItemCaseSensitive(v, "size");

		if (!cJSON_IsString(name) || !cJSON_IsNumber(sz) ||
		    strchr(name->valuestring, '/') != NULL ||
		    !cpx_path_clean_relative(name->valuestring) ||
		    sz->valuedouble < 0 ||
		    sz->valuedouble > (double)CPX_JOB_MAX_INPUT_SIZE) {
			cpx_set_cause(cause, "input %zu needs a plain file name "
			    "and a size up to %ld bytes", js->ninputs,
			    CPX_JOB_MAX_INPUT_SIZE);
			return -EINVAL;
		}
		js->inputs[js->ninputs].name = cpx_xstrdup(name->valuestring);
		js->inputs[js->ninputs++].size = (uint64_t)sz->valuedouble;
	}
	return 0;
}

static int
decode_required_strings(const cJSON *obj, struct cpx_jobspec *js,
    char **cause)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
	const cJSON *session = cJSON_GetObjectItemCaseSensitive(obj, "session");

	if (!cJSON_IsString(id) || *id->valuestring == '\0' ||
	    strlen(id->valuestring) > 128) {
		cpx_set_cause(cause, "\"id\" must be a string of 1-128 bytes");
		return -EINVAL;
	}
	js->id = cpx_xstrdup(id->valuestring);
	js->session = cpx_xstrdup(cJSON_IsString(session) ?
	    session->valuestring : "");
	js->root = bytes_from_json(cJSON_GetObjectItemCaseSensitive(obj, "root"));
	js->cwd = bytes_from_json(cJSON_GetObjectItemCaseSensitive(obj, "cwd"));
	if (js->root == NULL || js->cwd == NULL || js->root[0] != '/' ||
	    js->cwd[0] != '/') {
		cpx_set_cause(cause, "\"root\" and \"cwd\" must be absolute paths");
		return -EINVAL;
	}
	return 0;
}

/* "codecs": the name of a set the client can send, or absent. */
static int
decode_codecs(const cJSON *obj, struct cpx_jobspec *js, char **cause)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(obj, "codecs");

	if (c == NULL || cJSON_IsNull(c))
		return 0;
	if (!cJSON_IsString(c) || !cpx_set_name_valid(c->valuestring)) {
		cpx_set_cause(cause, "\"codecs\" must be a codec set name");
		return -EINVAL;
	}
	js->codecs = cpx_xstrdup(c->valuestring);
	return 0;
}

static int
decode_options(const cJSON *obj, struct cpx_jobspec *js, char **cause)
{
	const cJSON *port = cJSON_GetObjectItemCaseSensitive(obj, "pms_port");

	if (!cJSON_IsNumber(port) || port->valuedouble < 1 ||
	    port->valuedouble > 65535) {
		cpx_set_cause(cause, "\"pms_port\" must be a port number");
		return -EINVAL;
	}
	js->pms_port = (int)port->valuedouble;
	js->tunnel = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, "tunnel"));
	js->verbose =
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, "verbose"));
	return decode_codecs(obj, js, cause);
}

/*
 * Decodes untrusted JSON into *js (zeroed first). On failure *js holds
 * whatever was decoded and must still be freed with cpx_jobspec_free.
 */
int
cpx_jobspec_decode(const char *json, size_t len, struct cpx_jobspec *js,
    char **cause)
{
	cJSON *obj = NULL;
	const cJSON *v;
	int error = -EINVAL;

	memset(js, 0, sizeof *js);
	obj = cJSON_ParseWithLength(json, len);
	if (obj == NULL || !cJSON_IsObject(obj)) {
		cpx_set_cause(cause, "job spec is not a JSON object");
		goto out;
	}
	v = cJSON_GetObjectItemCaseSensitive(obj, "v");
	if (!cJSON_IsNumber(v) || v->valuedouble != JOBSPEC_VERSION) {
		cpx_set_cause(cause, "job spec version is not %d",
		    JOBSPEC_VERSION);
		goto out;
	}
	if (decode_required_strings(obj, js, cause) != 0 ||
	    decode_options(obj, js, cause) != 0 ||
	    decode_strings(cJSON_GetObjectItemCaseSensitive(obj, "argv"),
	    CPX_JOB_MAX_ARGS, &js->argv, &js->argc, "argv", cause) != 0 ||
	    decode_strings(cJSON_GetObjectItemCaseSensitive(obj, "env"),
	    CPX_JOB_MAX_ENV, &js->env, &js->envc, "env", cause) != 0 ||
	    decode_inputs(cJSON_GetObjectItemCaseSensitive(obj, "inputs"), js,
	    cause) != 0)
		goto out;
	error = 0;
out:
	cJSON_Delete(obj);
	return error;
}
