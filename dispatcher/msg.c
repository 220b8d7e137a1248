/* msg.c — request bodies from workers, shims and operators, validated field by field. */

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "disp.h"

/*
 * Everything here faces the network: a body is refused with one clear
 * sentence rather than half-accepted, every string and list is bounded,
 * and nothing aborts on bad input (the fuzz target checks that).
 */

const char *const disp_outcome_names[] = {
	"ok", "failed", "killed", "worker-error", "ended", "never-started",
	"lost", NULL
};

/* Names of workers and jobs travel in URL paths: letters, digits, . _ - : only. */
int
disp_valid_name(const char *s, size_t max)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > max || s[0] == '.' || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' &&
		    s[i] != '_' && s[i] != '-' && s[i] != ':')
			return 0;
	}
	return 1;
}

/* Printable ASCII without quotes or backslashes: safe in every view we render. */
static int
valid_text(const char *s, size_t max, int spaces)
{
	size_t n = strlen(s), i;

	if (n > max)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') {
			if (!(spaces && c == ' '))
				return 0;
		}
	}
	return 1;
}

static cJSON *
parse_object(const char *body, size_t len, char **cause)
{
	cJSON *root;

	if (len == 0) {
		cpx_set_cause(cause, "the request needs a JSON body");
		return NULL;
	}
	root = cJSON_ParseWithLength(body, len);
	if (root == NULL) {
		cpx_set_cause(cause, "the body is not valid JSON");
		return NULL;
	}
	if (!cJSON_IsObject(root)) {
		cpx_set_cause(cause, "the body must be a JSON object");
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

/* A string field: 0 and *out (new) when present and valid, 1 when absent. */
static int
get_string(const cJSON *obj, const char *field, int required, size_t max,
    int (*ok)(const char *, size_t), char **out, char **cause)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);

	*out = NULL;
	if (v == NULL || cJSON_IsNull(v)) {
		if (!required)
			return 1;
		cpx_set_cause(cause, "\"%s\" is missing", field);
		return -EINVAL;
	}
	if (!cJSON_IsString(v) || !ok(v->valuestring, max)) {
		cpx_set_cause(cause, "\"%s\" must be a string of at most %zu "
		    "allowed characters", field, max);
		return -EINVAL;
	}
	*out = cpx_xstrdup(v->valuestring);
	return 0;
}

static int
ok_name(const char *s, size_t max)
{
	return disp_valid_name(s, max);
}

static int
ok_text(const char *s, size_t max)
{
	return valid_text(s, max, 1);
}

static int
ok_token(const char *s, size_t max)
{
	return *s != '\0' && valid_text(s, max, 0);
}

/* A number field within [min, max]; absent leaves *out as it is. */
static int
get_number(const cJSON *obj, const char *field, double min, double max,
    double *out, char **cause)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);

	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
	    v->valuedouble < min || v->valuedouble > max) {
		cpx_set_cause(cause, "\"%s\" must be a number from %g to %g",
		    field, min, max);
		return -EINVAL;
	}
	*out = v->valuedouble;
	return 0;
}

static int
get_long(const cJSON *obj, const char *field, long min, long max, long *out,
    char **cause)
{
	double d = (double)*out;
	int error = get_number(obj, field, (double)min, (double)max, &d, cause);

	if (error == 0 && d != (double)(long long)d) {
		cpx_set_cause(cause, "\"%s\" must be a whole number", field);
		return -EINVAL;
	}
	*out = (long)d;
	return error;
}

static void
free_strv(char **v)
{
	size_t i;

	for (i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/* An array of names, lower-cased when `lower`; NULL-terminated in *out. */
static int
get_names(const cJSON *obj, const char *field, size_t maxn, int lower,
    char ***out, size_t *n, char **cause)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, field), *e;
	size_t i = 0, k;

	*out = NULL;
	*n = 0;
	if (arr == NULL || cJSON_IsNull(arr))
		return 0;
	if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) > maxn)
		goto bad;
	*out = cpx_xcalloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof **out);
	cJSON_ArrayForEach(e, arr) {
		if (!cJSON_IsString(e) || !disp_valid_name(e->valuestring,
		    DISP_NAME_MAX))
			goto bad;
		(*out)[i] = cpx_xstrdup(e->valuestring);
		for (k = 0; lower && (*out)[i][k] != '\0'; k++)
			(*out)[i][k] = (char)tolower((unsigned char)(*out)[i][k]);
		i++;
	}
	*n = i;
	return 0;
bad:
	free_strv(*out);
	*out = NULL;
	cpx_set_cause(cause, "\"%s\" must be a list of at most %zu names "
	    "(letters, digits, '.', '_', '-', ':')", field, maxn);
	return -EINVAL;
}

static int
get_labels(const cJSON *obj, cJSON **out, char **cause)
{
	const cJSON *l = cJSON_GetObjectItemCaseSensitive(obj, "labels"), *e;
	int n = 0;

	*out = NULL;
	if (l == NULL || cJSON_IsNull(l))
		return 0;
	if (!cJSON_IsObject(l))
		goto bad;
	cJSON_ArrayForEach(e, l) {
		if (++n > DISP_LABELS_MAX || !cJSON_IsString(e) ||
		    !disp_valid_name(e->string, DISP_NAME_MAX) ||
		    !valid_text(e->valuestring, 256, 1))
			goto bad;
	}
	*out = cJSON_Duplicate(l, 1);
	return 0;
bad:
	cpx_set_cause(cause, "\"labels\" must be an object of at most %d "
	    "name: text pairs", DISP_LABELS_MAX);
	return -EINVAL;
}

static void
free_reports(struct disp_job_report *jobs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(jobs[i].id);
		free(jobs[i].session);
	}
	free(jobs);
}

static int
get_report(const cJSON *e, struct disp_job_report *r, char **cause)
{
	memset(r, 0, sizeof *r);
	if (!cJSON_IsObject(e)) {
		cpx_set_cause(cause, "each of \"jobs\" must be an object");
		return -EINVAL;
	}
	if (get_string(e, "id", 1, DISP_JOB_ID_MAX, ok_name, &r->id,
	    cause) < 0 ||
	    get_string(e, "session", 0, DISP_SESSION_MAX, ok_token,
	    &r->session, cause) < 0 ||
	    get_number(e, "started", 0, 1e11, &r->started, cause) != 0)
		return -EINVAL;
	return 0;
}

/* "jobs": [{"id", "session", "started"}...], what a worker runs now. */
static int
get_reports(const cJSON *obj, struct disp_job_report **out, size_t *n,
    char **cause)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, "jobs"), *e;
	size_t i = 0;

	*out = NULL;
	*n = 0;
	if (arr == NULL || cJSON_IsNull(arr))
		return 0;
	if (!cJSON_IsArray(arr) ||
	    (size_t)cJSON_GetArraySize(arr) > DISP_REPORT_JOBS_MAX) {
		cpx_set_cause(cause, "\"jobs\" must be a list of at most %d "
		    "jobs", DISP_REPORT_JOBS_MAX);
		return -EINVAL;
	}
	*out = cpx_xcalloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof **out);
	cJSON_ArrayForEach(e, arr) {
		if (get_report(e, &(*out)[i], cause) != 0) {
			free_reports(*out, i + 1);
			*out = NULL;
			return -EINVAL;
		}
		i++;
	}
	*n = i;
	return 0;
}

/* A host key line: "<type> <base64> [comment]". */
static int
valid_host_key(const char *s)
{
	const char *sp = strchr(s, ' ');
	size_t i;

	if (sp == NULL || sp == s || strlen(s) > 8192 ||
	    (strncmp(s, "ssh-", 4) != 0 && strncmp(s, "ecdsa-", 6) != 0 &&
	    strncmp(s, "sk-", 3) != 0))
		return 0;
	for (i = 1; sp[i] != '\0' && sp[i] != ' '; i++) {
		if (!isalnum((unsigned char)sp[i]) && sp[i] != '+' &&
		    sp[i] != '/' && sp[i] != '=')
			return 0;
	}
	return i > 16 && valid_text(s, 8192, 1);
}

static int
get_ssh(const cJSON *root, struct disp_reg *reg, char **cause)
{
	const cJSON *ssh = cJSON_GetObjectItemCaseSensitive(root, "ssh");
	long port = 22;

	if (!cJSON_IsObject(ssh)) {
		cpx_set_cause(cause, "\"ssh\" must be an object with host, "
		    "port, user and host_key");
		return -EINVAL;
	}
	if (get_string(ssh, "host", 1, 255, ok_name, &reg->ep.host,
	    cause) != 0 ||
	    get_long(ssh, "port", 1, 65535, &port, cause) != 0 ||
	    get_string(ssh, "user", 1, DISP_NAME_MAX, ok_name, &reg->ep.user,
	    cause) != 0 ||
	    get_string(ssh, "host_key", 1, 8192, ok_text, &reg->ep.host_key,
	    cause) != 0)
		return -EINVAL;
	reg->ep.port = (int)port;
	if (!valid_host_key(reg->ep.host_key)) {
		cpx_set_cause(cause, "\"ssh.host_key\" must be an OpenSSH "
		    "public key line (\"ssh-ed25519 AAAA...\")");
		return -EINVAL;
	}
	return 0;
}

static int
get_reg_numbers(const cJSON *root, struct disp_reg *reg, char **cause)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "drain");

	if (get_long(root, "cpus", 1, 4096, &reg->cpus, cause) != 0 ||
	    get_number(root, "bench", 0, 1e12, &reg->bench, cause) != 0 ||
	    get_number(root, "cpu", 0, 100, &reg->cpu, cause) != 0 ||
	    get_long(root, "max_tasks", 0, 1024, &reg->max_tasks,
	    cause) != 0 ||
	    get_long(root, "interval_ms", 100, 600000, &reg->interval_ms,
	    cause) != 0)
		return -EINVAL;
	if (d != NULL && !cJSON_IsNull(d) && !cJSON_IsBool(d)) {
		cpx_set_cause(cause, "\"drain\" must be true or false");
		return -EINVAL;
	}
	reg->drain = cJSON_IsTrue(d);
	if (reg->max_tasks == 0)
		reg->max_tasks = reg->cpus;
	return 0;
}

/*
 * Registration: {"name", "ssh": {"host","port","user","host_key"}, "cpus",
 * "bench", "version", "transcoder", "caps", "labels", "max_tasks",
 * "interval_ms", "drain", "jobs"}. Only name and ssh are required.
 */
int
disp_msg_register(const char *body, size_t len, struct disp_reg *reg,
    char **cause)
{
	cJSON *root;
	int error = -EINVAL;

	memset(reg, 0, sizeof *reg);
	reg->cpus = 1;
	reg->interval_ms = 2000;
	if ((root = parse_object(body, len, cause)) == NULL)
		return -EINVAL;
	if (get_string(root, "name", 1, DISP_NAME_MAX, ok_name, &reg->ep.name,
	    cause) != 0 || get_ssh(root, reg, cause) != 0 ||
	    get_reg_numbers(root, reg, cause) != 0 ||
	    get_string(root, "version", 0, 64, ok_text, &reg->version,
	    cause) < 0 ||
	    get_string(root, "transcoder", 0, 128, ok_text, &reg->transcoder,
	    cause) < 0 ||
	    get_names(root, "caps", DISP_CAPS_MAX, 1, &reg->caps, &reg->ncaps,
	    cause) != 0 ||
	    get_labels(root, &reg->labels, cause) != 0 ||
	    get_reports(root, &reg->jobs, &reg->njobs, cause) != 0 ||
	    disp_msg_codecs(root, &reg->codecs, cause) != 0)
		goto out;
	error = 0;
out:
	if (error != 0)
		disp_reg_free(reg);
	cJSON_Delete(root);
	return error;
}

void
disp_reg_free(struct disp_reg *reg)
{
	cpx_endpoint_free(&reg->ep);
	free(reg->version);
	free(reg->transcoder);
	free_strv(reg->caps);
	cJSON_Delete(reg->labels);
	free_reports(reg->jobs, reg->njobs);
	disp_codecs_free(&reg->codecs);
	memset(reg, 0, sizeof *reg);
}

/* Heartbeat: {"cpu", "load1", "jobs", "codecs"}. */
int
disp_msg_heartbeat(const char *body, size_t len, struct disp_beat *beat,
    char **cause)
{
	cJSON *root;
	int error = -EINVAL;

	memset(beat, 0, sizeof *beat);
	if ((root = parse_object(body, len, cause)) == NULL)
		return -EINVAL;
	if (get_number(root, "cpu", 0, 100, &beat->cpu, cause) == 0 &&
	    get_number(root, "load1", 0, 1e6, &beat->load1, cause) == 0 &&
	    get_reports(root, &beat->jobs, &beat->njobs, cause) == 0 &&
	    disp_msg_codecs(root, &beat->codecs, cause) == 0)
		error = 0;
	if (error != 0)
		disp_beat_free(beat);
	cJSON_Delete(root);
	return error;
}

void
disp_beat_free(struct disp_beat *beat)
{
	free_reports(beat->jobs, beat->njobs);
	disp_codecs_free(&beat->codecs);
	memset(beat, 0, sizeof *beat);
}

/* Placement: {"job", "session", "caps", "exclude", "codecs"}; all optional. */
int
disp_msg_place(const char *body, size_t len, struct disp_place_req *pr,
    char **cause)
{
	cJSON *root;
	int error = -EINVAL;

	memset(pr, 0, sizeof *pr);
	if ((root = parse_object(body, len, cause)) == NULL)
		return -EINVAL;
	if (get_string(root, "job", 0, DISP_JOB_ID_MAX, ok_name, &pr->job,
	    cause) >= 0 &&
	    get_string(root, "session", 0, DISP_SESSION_MAX, ok_token,
	    &pr->session, cause) >= 0 &&
	    get_names(root, "caps", DISP_CAPS_MAX, 1, &pr->caps, &pr->ncaps,
	    cause) == 0 &&
	    get_names(root, "exclude", 64, 0, &pr->exclude, &pr->nexclude,
	    cause) == 0 &&
	    disp_msg_place_codecs(root, pr, cause) == 0)
		error = 0;
	if (error != 0)
		disp_place_req_free(pr);
	cJSON_Delete(root);
	return error;
}

void
disp_place_req_free(struct disp_place_req *pr)
{
	free(pr->job);
	free(pr->session);
	free_strv(pr->caps);
	free_strv(pr->exclude);
	cpx_codec_set_free(&pr->set);
	memset(pr, 0, sizeof *pr);
}

/* Job end: {"outcome", "exit", "duration_ms"}; outcome is required. */
int
disp_msg_end(const char *body, size_t len, struct disp_end *end, char **cause)
{
	const cJSON *o;
	cJSON *root;
	int error = -EINVAL, i;

	memset(end, 0, sizeof *end);
	end->duration_ms = -1;
	if ((root = parse_object(body, len, cause)) == NULL)
		return -EINVAL;
	o = cJSON_GetObjectItemCaseSensitive(root, "outcome");
	end->outcome = -1;
	for (i = 0; i <= DISP_WORKER_ERROR && cJSON_IsString(o); i++) {
		if (strcmp(o->valuestring, disp_outcome_names[i]) == 0)
			end->outcome = i;
	}
	if (end->outcome < 0) {
		cpx_set_cause(cause, "\"outcome\" must be \"ok\", \"failed\", "
		    "\"killed\" or \"worker-error\"");
		goto out;
	}
	end->has_exit = cJSON_GetObjectItemCaseSensitive(root, "exit") != NULL;
	if (get_long(root, "exit", -255, 255, &end->exit_code, cause) == 0 &&
	    get_long(root, "duration_ms", 0, 31L * 86400000,
	    &end->duration_ms, cause) == 0)
		error = 0;
out:
	cJSON_Delete(root);
	return error;
}

/* Drain: {"drain": true|false}. */
int
disp_msg_drain(const char *body, size_t len, int *drain, char **cause)
{
	const cJSON *d;
	cJSON *root;
	int error = -EINVAL;

	if ((root = parse_object(body, len, cause)) == NULL)
		return -EINVAL;
	d = cJSON_GetObjectItemCaseSensitive(root, "drain");
	if (cJSON_IsBool(d)) {
		*drain = cJSON_IsTrue(d);
		error = 0;
	} else
		cpx_set_cause(cause, "\"drain\" must be true or false");
	cJSON_Delete(root);
	return error;
}
