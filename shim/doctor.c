/* doctor.c — `clusterplex-shim doctor [--json] [--media FILE]...`: the whole setup checked. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "doctor.h"

/*
 * Run on the PMS host with PMS's ClusterPlex environment. Every check
 * says what it found and, when it fails, what to do; the exit status is
 * 0 only when no check failed (a check that does not apply, e.g. media
 * before any job ran, is "skip"), 1 otherwise, 2 for bad arguments.
 */

static const char usage[] =
    "usage: clusterplex-shim doctor [--json] [--media FILE]...\n"
    "  checks the dispatcher, PMS's settings, the fuse mount and every\n"
    "  registered worker; --media names sample input files (default: the\n"
    "  inputs of recent remote jobs). Exit 0 when nothing failed.\n";

void
dr_add(struct dr *d, const char *id, const char *target, int status,
    const char *fix, const char *fmt, ...)
{
	struct dr_check *c;
	va_list ap;
	char buf[1024];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	d->v = cpx_xrealloc(d->v, (d->n + 1) * sizeof *d->v);
	c = &d->v[d->n++];
	c->id = cpx_xstrdup(id);
	c->target = cpx_xstrdup(target);
	c->status = status;
	c->message = cpx_xstrdup(buf);
	c->fix = status == DR_FAIL && fix != NULL ? cpx_xstrdup(fix) : NULL;
}

static const char *const status_names[] = { "pass", "fail", "skip" };

static void
print_text(const struct dr *d, int *fails)
{
	const char *last = "";
	int counts[3] = { 0 };
	size_t i;

	for (i = 0; i < d->n; i++) {
		const struct dr_check *c = &d->v[i];

		if (strcmp(c->target, last) != 0)
			printf("%s\n", c->target);
		last = c->target;
		printf("  %-4s  %-22s %s\n", c->status == DR_PASS ? "ok" :
		    c->status == DR_FAIL ? "FAIL" : "skip", c->id, c->message);
		if (c->fix != NULL)
			printf("        %-22s fix: %s\n", "", c->fix);
		counts[c->status]++;
	}
	printf("%d passed, %d failed, %d skipped\n", counts[DR_PASS],
	    counts[DR_FAIL], counts[DR_SKIP]);
	*fails = counts[DR_FAIL];
}

static void
print_json(const struct dr *d, int *fails)
{
	cJSON *root = cJSON_CreateObject(), *arr, *o;
	char *s;
	size_t i;

	*fails = 0;
	arr = cJSON_AddArrayToObject(root, "checks");
	for (i = 0; i < d->n; i++) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "check", d->v[i].id);
		cJSON_AddStringToObject(o, "target", d->v[i].target);
		cJSON_AddStringToObject(o, "status", status_names[d->v[i].status]);
		cJSON_AddStringToObject(o, "message", d->v[i].message);
		if (d->v[i].fix != NULL)
			cJSON_AddStringToObject(o, "fix", d->v[i].fix);
		cJSON_AddItemToArray(arr, o);
		*fails += d->v[i].status == DR_FAIL;
	}
	cJSON_AddBoolToObject(root, "ok", *fails == 0);
	s = cpx_json_take(root, 1);
	printf("%s\n", s);
	free(s);
}

static void
dr_free(struct dr *d)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		free(d->v[i].id);
		free(d->v[i].target);
		free(d->v[i].message);
		free(d->v[i].fix);
	}
	for (i = 0; i < d->nmedia; i++)
		free(d->media[i]);
	free(d->media);
	free(d->v);
	free(d->transcode_dir);
	free(d->pms_data);
	free(d->codec_set);
}

/* The set PMS uses now: this environment's FFMPEG_EXTERNAL_LIBS, else Codecs/. */
static char *
current_set(const struct dr *d)
{
	char *dir = NULL, *name = shim_codec_set(&dir);

	free(dir);
	return name != NULL ? name : dr_find_codec_set(d->pms_data);
}

static int
parse_args(struct dr *d, int argc, char **argv, int *json)
{
	int i;

	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			*json = 1;
		} else if (strcmp(argv[i], "--media") == 0 && i + 1 < argc &&
		    argv[i + 1][0] == '/') {
			d->media = cpx_xrealloc(d->media, (d->nmedia + 1) *
			    sizeof *d->media);
			d->media[d->nmedia++] = cpx_xstrdup(argv[++i]);
		} else {
			fputs(usage, stderr);
			return -1;
		}
	}
	return 0;
}

int
shim_doctor_main(const struct shim_config *cfg, int argc, char **argv)
{
	struct dr d = { .cfg = cfg };
	cJSON *workers;
	int json = 0, fails;

	if (parse_args(&d, argc, argv, &json) != 0) {
		dr_free(&d);
		return 2;
	}
	cpx_log_set_level(CPX_LOG_ERROR);	/* our report says it all */
	if (d.nmedia == 0)
		d.media = shim_recent_inputs(cfg, &d.nmedia);
	d.transcode_dir = cpx_xstrdup(cfg->transcode_dir != NULL ?
	    cfg->transcode_dir : "/transcode");
	d.pms_data = dr_pms_data_dir();
	d.codec_set = current_set(&d);
	workers = dr_check_dispatcher(&d);
	dr_check_prefs(&d);
	dr_check_fuse(&d);
	if (workers != NULL)
		dr_check_workers(&d, workers);
	cJSON_Delete(workers);
	if (json)
		print_json(&d, &fails);
	else
		print_text(&d, &fails);
	dr_free(&d);
	return fails == 0 ? 0 : 1;
}
