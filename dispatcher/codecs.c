/* codecs.c — which workers can run a job's codec set: what they report, what a placement asks. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "disp.h"

/*
 * A job's codec set ("8bf330d-2818-linux-x86_64-standard", the folder PMS
 * names in FFMPEG_EXTERNAL_LIBS) runs on a worker that has, or can get,
 * the same version for its own CPU. Workers report
 * {"cpu", "sources", "sets"} (docs/workers.md); a worker can run the set
 * when
 *
 *   - the set names no CPU (the agent uses it as it is),
 *   - it is of the worker's CPU and the worker fetches from PMS (pms),
 *   - the worker downloads sets for its CPU (url), or
 *   - it holds the version for its CPU (its folders or its cache).
 *
 * A worker that reports nothing (an older agent) is not filtered: the
 * agent still refuses a job it cannot run, and the shim asks again.
 */

#define SETS_MAX 64
#define SOURCES_MAX 8

void
disp_codecs_free(struct disp_codecs *c)
{
	size_t i;

	free(c->cpu);
	for (i = 0; i < c->nsets; i++)
		free(c->sets[i]);
	free(c->sets);
	memset(c, 0, sizeof *c);
}

/* Replaces *to with *from, which is emptied. */
void
disp_codecs_move(struct disp_codecs *to, struct disp_codecs *from)
{
	disp_codecs_free(to);
	*to = *from;
	memset(from, 0, sizeof *from);
}

static int
get_sources(const cJSON *arr, unsigned *out)
{
	const cJSON *e;

	*out = 0;
	if (arr == NULL || cJSON_IsNull(arr))
		return 0;
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > SOURCES_MAX)
		return -EINVAL;
	cJSON_ArrayForEach(e, arr) {
		if (!cJSON_IsString(e))
			return -EINVAL;
		/* A source this dispatcher does not know is no promise. */
		if (strcmp(e->valuestring, "pms") == 0)
			*out |= DISP_SRC_PMS;
		else if (strcmp(e->valuestring, "url") == 0)
			*out |= DISP_SRC_URL;
	}
	return 0;
}

static int
get_sets(const cJSON *arr, struct disp_codecs *c)
{
	const cJSON *e;

	if (arr == NULL || cJSON_IsNull(arr))
		return 0;
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > SETS_MAX)
		return -EINVAL;
	c->sets = cpx_xcalloc((size_t)cJSON_GetArraySize(arr) + 1,
	    sizeof *c->sets);
	cJSON_ArrayForEach(e, arr) {
		if (!cJSON_IsString(e) || !cpx_set_name_valid(e->valuestring))
			return -EINVAL;
		c->sets[c->nsets++] = cpx_xstrdup(e->valuestring);
	}
	return 0;
}

/*
 * The "codecs" object of a registration or heartbeat. Absent: 0 with
 * out->known 0. Refused with a cause unless every part is well-formed.
 */
int
disp_msg_codecs(const cJSON *root, struct disp_codecs *out, char **cause)
{
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, "codecs");
	const cJSON *cpu = cJSON_GetObjectItemCaseSensitive(o, "cpu");

	memset(out, 0, sizeof *out);
	if (o == NULL || cJSON_IsNull(o))
		return 0;
	if (!cJSON_IsObject(o) || !cJSON_IsString(cpu) ||
	    !cpx_cpu_name_valid(cpu->valuestring) ||
	    get_sources(cJSON_GetObjectItemCaseSensitive(o, "sources"),
	    &out->sources) != 0 ||
	    get_sets(cJSON_GetObjectItemCaseSensitive(o, "sets"), out) != 0) {
		disp_codecs_free(out);
		cpx_set_cause(cause, "\"codecs\" must be {\"cpu\": a CPU name, "
		    "\"sources\": [\"pms\"|\"url\"...], \"sets\": [at most %d "
		    "codec set names]}", SETS_MAX);
		return -EINVAL;
	}
	out->cpu = cpx_xstrdup(cpu->valuestring);
	out->known = 1;
	return 0;
}

/* The placement's "codecs": a set name, parsed into pr->set. */
int
disp_msg_place_codecs(const cJSON *root, struct disp_place_req *pr,
    char **cause)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "codecs");

	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v) || cpx_codec_set_parse(v->valuestring,
	    &pr->set) != 0) {
		cpx_set_cause(cause, "\"codecs\" must be a codec set name (1-%d "
		    "letters, digits, '.', '_', '-')", CPX_SET_NAME_MAX);
		return -EINVAL;
	}
	pr->codecs = 1;
	return 0;
}

/* Is `have` the set's version and variant for `cpu`? */
static int
same_set_for(const char *have, const struct cpx_codec_set *s, const char *cpu)
{
	size_t n = strlen(s->version), c = strlen(cpu);

	if (strncmp(have, s->version, n) != 0 ||
	    strncmp(have + n, "-linux-", 7) != 0 ||
	    strncmp(have + n + 7, cpu, c) != 0)
		return 0;
	have += n + 7 + c;
	if (s->variant == NULL)
		return *have == '\0';
	return *have == '-' && strcmp(have + 1, s->variant) == 0;
}

int
disp_codecs_can_run(const struct disp_codecs *w, const struct cpx_codec_set *s)
{
	size_t i;

	if (!w->known || s->cpu == NULL || (w->sources & DISP_SRC_URL))
		return 1;
	if ((w->sources & DISP_SRC_PMS) && strcmp(w->cpu, s->cpu) == 0)
		return 1;
	for (i = 0; i < w->nsets; i++) {
		if (same_set_for(w->sets[i], s, w->cpu))
			return 1;
	}
	return 0;
}

/* {"cpu", "sources", "sets"} for the workers' view; nothing when unknown. */
void
disp_render_codecs(const struct disp_codecs *c, cJSON *obj)
{
	cJSON *o, *src, *sets;
	size_t i;

	if (!c->known)
		return;
	o = cJSON_AddObjectToObject(obj, "codecs");
	cJSON_AddStringToObject(o, "cpu", c->cpu);
	src = cJSON_AddArrayToObject(o, "sources");
	if (c->sources & DISP_SRC_PMS)
		cJSON_AddItemToArray(src, cJSON_CreateString("pms"));
	if (c->sources & DISP_SRC_URL)
		cJSON_AddItemToArray(src, cJSON_CreateString("url"));
	sets = cJSON_AddArrayToObject(o, "sets");
	for (i = 0; i < c->nsets; i++)
		cJSON_AddItemToArray(sets, cJSON_CreateString(c->sets[i]));
}
