/* job_codecs.c — the job's codec set on this worker: found, or fetched once (from PMS, or downloaded). */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "job_codecs.h"

#define LOCK_POLL_MS 50

/*
 * PMS names the codec folder its transcoder uses in the job's
 * FFMPEG_EXTERNAL_LIBS; the set is that folder's base name. A worker of
 * the same CPU uses the same set, found in its own folders or its cache;
 * missing, it gets the set from the first of its CLUSTERPLEX_CODEC_SOURCES
 * that applies: `pms` (the same CPU only: the shim sends PMS's folder over
 * this job's link) or `url` (Plex's files for this worker's CPU, named by
 * PMS's set: job_codecs_url.c). Concurrent jobs needing one set fetch it
 * once: the first takes the set's lock in the cache (codec_cache.c), the
 * others poll the lock and then find the set.
 */

static void try_lock(struct job *j);

/* Replaces (or adds) NAME=value in the job's environment. */
void
job_env_set(struct job *j, const char *name, const char *value)
{
	size_t i, n = strlen(name);
	char *entry = cpx_xprintf("%s=%s", name, value);

	for (i = 0; j->envp[i] != NULL; i++) {
		if (strncmp(j->envp[i], name, n) == 0 && j->envp[i][n] == '=') {
			free(j->envp[i]);
			j->envp[i] = entry;
			return;
		}
	}
	j->envp = cpx_xrealloc(j->envp, (i + 2) * sizeof *j->envp);
	j->envp[i] = entry;
	j->envp[i + 1] = NULL;
}

/* PMS's value of a variable in the job spec, or NULL. */
const char *
job_spec_env(const struct job *j, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < j->spec.envc; i++) {
		if (strncmp(j->spec.env[i], name, n) == 0 &&
		    j->spec.env[i][n] == '=')
			return j->spec.env[i] + n + 1;
	}
	return NULL;
}

/* The job's set: the one the shim offers, else the base name of PMS's folder. */
static char *
job_set(const struct job *j)
{
	const char *v = job_spec_env(j, "FFMPEG_EXTERNAL_LIBS"), *base;
	char *dir, *out = NULL;

	if (j->spec.codecs != NULL)
		return cpx_xstrdup(j->spec.codecs);
	if (v == NULL || (dir = cpx_codec_libs_dir(v)) == NULL)
		return NULL;
	base = strrchr(dir, '/') + 1;
	if (cpx_set_name_valid(base))
		out = cpx_xstrdup(base);
	free(dir);
	return out;
}

static void
codecs_free(struct job_codecs *c)
{
	size_t i;

	if (c == NULL)
		return;
	job_codecs_url_stop(c);
	if (c->fd >= 0)
		close(c->fd);
	if (c->tmpfd >= 0)
		close(c->tmpfd);
	if (c->tmp != NULL)
		agent_codecs_remove(c->tmp);
	agent_codecs_unlock(c->lockfd);
	cJSON_Delete(c->entries);
	for (i = 0; i < c->nlibs; i++)
		free(c->libs[i]);
	free(c->libs);
	free(c->modes);
	free(c->offer);
	free(c->version);
	free(c->arch);
	free(c->tmp);
	free(c->path);
	free(c->want);
	free(c);
}

/* The job ends (or refuses) while a fetch runs: drop its folder and lock. */
void
job_codecs_free(struct job *j)
{
	codecs_free(j->codecs);
	j->codecs = NULL;
}

static void
use_set(struct job *j, const char *dir)
{
	char *v = cpx_codec_libs_value(dir);

	job_env_set(j, "FFMPEG_EXTERNAL_LIBS", v);
	free(v);
}

static const char *
source_name(unsigned source)
{
	return source == AGENT_SRC_URL ? "CLUSTERPLEX_CODEC_URL" : "PMS";
}

/* The fetch failed: nothing of it stays, and the job is refused with one line. */
void
job_codecs_failed(struct job *j, const char *why)
{
	char *msg = cpx_xprintf("codec set %s from %s: %s", j->codecs->want,
	    source_name(j->codecs->source), why);

	uv_timer_stop(&j->prep_timer);
	job_codecs_free(j);
	job_prepared(j, msg);
	free(msg);
}

static void
on_prep_timer(uv_timer_t *t)
{
	struct job *j = t->data;
	const char *url;
	char *why;

	if (j->codecs == NULL)
		return;
	if (!j->codecs->receiving) {
		try_lock(j);
		return;
	}
	/* A download names the URL it was waiting for. */
	url = job_codecs_url_current(j->codecs);
	why = cpx_xprintf("%s%stimed out (CLUSTERPLEX_CODEC_TIMEOUT_MS)",
	    url != NULL ? url : "", url != NULL ? ": " : "");
	job_codecs_failed(j, why);
	free(why);
}

static void
start_fetch(struct job *j)
{
	struct job_codecs *c = j->codecs;
	char *cause = NULL, *want;

	if (agent_codecs_tmp(j->cfg, c->want, &c->tmp, &c->tmpfd, &cause) != 0) {
		job_codecs_failed(j, cause);
		free(cause);
		return;
	}
	c->receiving = 1;
	c->t0 = cpx_now_ms();
	c->entries = cJSON_CreateArray();
	uv_timer_start(&j->prep_timer, on_prep_timer, c->deadline -
	    cpx_now_ms(), 0);
	if (c->source == AGENT_SRC_URL) {
		job_codecs_url_begin(j);
		return;
	}
	want = cpx_set_want_encode(c->want, 1);
	cpx_info("job %s: fetching codec set %s from PMS", j->spec.id, c->want);
	if (j->link != NULL)
		cpx_link_send(j->link, CPX_MSG_SET_WANT, 0, want, strlen(want));
	free(want);
}

/* Takes the set's lock, or polls it while another job fetches the set. */
static void
try_lock(struct job *j)
{
	struct job_codecs *c = j->codecs;
	char *cause = NULL, *dir = NULL;
	int error = agent_codecs_lock(j->cfg, c->want, &c->lockfd, &cause);

	if (error == -EWOULDBLOCK) {
		if (cpx_now_ms() >= c->deadline) {
			job_codecs_failed(j, "another job's fetch did not finish "
			    "in time");
		} else {
			if (!c->waiting)
				cpx_info("job %s: waiting for another job's "
				    "fetch of codec set %s", j->spec.id, c->want);
			c->waiting = 1;
			uv_timer_start(&j->prep_timer, on_prep_timer,
			    LOCK_POLL_MS, 0);
		}
	} else if (error != 0) {
		job_codecs_failed(j, cause);
	} else if (agent_codecs_find(j->cfg, c->want, &dir) == 0) {
		/* Fetched by the job we waited for. */
		cpx_info("job %s: codec set %s is here now", j->spec.id, c->want);
		use_set(j, dir);
		job_codecs_free(j);
		job_prepared(j, NULL);
	} else {
		start_fetch(j);
	}
	free(cause);
	free(dir);
}

/* Why this worker cannot get `want` (PMS has `have`), for the refusal. */
static char *
no_source(const struct job *j, const struct cpx_codec_set *have,
    const char *want)
{
	const char *cpu = agent_codec_cpu(j->cfg);

	if (j->spec.codecs == NULL)
		return cpx_xprintf("codec set %s is not on this %s worker and "
		    "the PMS host offers no %s (missing there, or an older "
		    "shim)", want, cpu, have->name);
	if (have->cpu != NULL && strcmp(have->cpu, cpu) != 0)
		return cpx_xprintf("codec set %s is not on this %s worker and "
		    "PMS has only %s: put %s into a folder of "
		    "CLUSTERPLEX_CODEC_DIRS, or add url to "
		    "CLUSTERPLEX_CODEC_SOURCES to download it from Plex", want,
		    cpu, have->name, want);
	return cpx_xprintf("codec set %s is not on this worker and "
	    "CLUSTERPLEX_CODEC_SOURCES allows neither pms nor url", want);
}

static void
begin(struct job *j, const char *want, unsigned source,
    const struct cpx_codec_set *have)
{
	struct job_codecs *c = cpx_xcalloc(1, sizeof *c);
	struct cpx_codec_set mine;

	j->codecs = c;
	c->want = cpx_xstrdup(want);
	c->source = source;
	c->fd = c->tmpfd = c->lockfd = -1;
	c->deadline = cpx_now_ms() + (uint64_t)j->cfg->codec_timeout_ms;
	if (source == AGENT_SRC_URL && cpx_codec_set_parse(want, &mine) == 0) {
		c->offer = cpx_xstrdup(have->name);
		c->version = cpx_xstrdup(mine.version);
		c->arch = agent_codec_arch(&mine);
		cpx_codec_set_free(&mine);
	}
	try_lock(j);
}

/*
 * Settles the job's codec set before RUN: 0 when done (the environment
 * names the worker's copy, or the job needs no set), 1 when a fetch is
 * under way (job_prepared() follows), -1 with *why when this worker
 * cannot get the set.
 */
int
job_codecs_start(struct job *j, char **why)
{
	struct cpx_codec_set have;
	char *name = job_set(j), *dir = NULL, *want;
	const char *cpu = agent_codec_cpu(j->cfg);
	unsigned source;
	int same, rc = 0;

	if (name == NULL || cpx_codec_set_parse(name, &have) != 0) {
		free(name);
		return 0;
	}
	same = have.cpu == NULL || strcmp(have.cpu, cpu) == 0;
	want = same ? cpx_xstrdup(name) : cpx_codec_set_for_cpu(&have, cpu);
	source = agent_codec_source(j->cfg, j->spec.codecs != NULL, same,
	    have.cpu != NULL);
	if (agent_codecs_find(j->cfg, want, &dir) == 0) {
		cpx_debug("job %s: codec set %s at %s", j->spec.id, want, dir);
		use_set(j, dir);
	} else if (same && j->spec.codecs == NULL) {
		/*
		 * The PMS host has no such folder either: its own transcoder
		 * would run without the set, and so does this one.
		 */
		cpx_info("job %s: codec set %s is on neither host; running "
		    "without it, as PMS would", j->spec.id, want);
	} else if (source != 0) {
		begin(j, want, source, &have);
		rc = 1;
	} else {
		*why = no_source(j, &have, want);
		rc = -1;
	}
	cpx_codec_set_free(&have);
	free(name);
	free(want);
	free(dir);
	return rc;
}

static int
on_entry(struct job *j, const struct cpx_frame *f, char **why)
{
	struct job_codecs *c = j->codecs;
	struct cpx_set_entry e;

	if (c->fd >= 0 || f->id != c->next ||
	    cpx_set_entry_parse(f->payload, f->len, &e) != 0) {
		*why = cpx_xstrdup("malformed or out-of-order SET_FILE");
		return -EPROTO;
	}
	c->next++;
	if (c->files >= CPX_SET_MAX_FILES ||
	    c->bytes + e.size > CPX_SET_MAX_BYTES) {
		free(e.path);
		*why = cpx_xstrdup("the set is larger than a worker accepts");
		return -EFBIG;
	}
	c->files++;
	if (c->source == AGENT_SRC_URL)
		return job_codecs_url_entry(j, &e, why);
	if (e.type == CPX_SET_DIR) {
		if (mkdirat(c->tmpfd, e.path, 0755) != 0 && errno != EEXIST) {
			*why = cpx_xprintf("%s: %s", e.path, strerror(errno));
			free(e.path);
			return -errno;
		}
		free(e.path);
		return 0;
	}
	c->fd = openat(c->tmpfd, e.path, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (c->fd < 0) {
		*why = cpx_xprintf("%s: %s", e.path, strerror(errno));
		free(e.path);
		return -errno;
	}
	c->path = e.path;
	c->left = c->size = e.size;
	c->mode = (e.mode & 0755) | 0400;
	cpx_sha256_init(&c->sha);
	return 0;
}

static int
on_data(struct job *j, const struct cpx_frame *f, char **why)
{
	struct job_codecs *c = j->codecs;

	if (c->fd < 0 || f->id + 1 != c->next || f->len > c->left) {
		*why = cpx_xstrdup("SET_DATA beyond its file");
		return -EPROTO;
	}
	if (cpx_write_all(c->fd, f->payload, f->len) < 0) {
		*why = cpx_xprintf("writing %s: %s", c->path, strerror(errno));
		return -errno;
	}
	cpx_sha256_update(&c->sha, f->payload, f->len);
	c->left -= f->len;
	c->bytes += f->len;
	return 0;
}

static int
on_sum(struct job *j, const struct cpx_frame *f, char **why)
{
	struct job_codecs *c = j->codecs;
	uint8_t d[32];

	if (c->fd < 0 || f->id + 1 != c->next || f->len != 32 || c->left != 0) {
		*why = cpx_xstrdup("SET_SUM out of place or file incomplete");
		return -EPROTO;
	}
	cpx_sha256_final(&c->sha, d);
	if (memcmp(d, f->payload, 32) != 0) {
		*why = cpx_xprintf("%s: SHA-256 differs from PMS's file", c->path);
		return -EIO;
	}
	if (fchmod(c->fd, c->mode) != 0 || close(c->fd) != 0) {
		c->fd = -1;
		*why = cpx_xprintf("%s: %s", c->path, strerror(errno));
		return -errno;
	}
	c->fd = -1;
	job_codecs_add_entry(c, c->path, c->size, d);
	free(c->path);
	c->path = NULL;
	return 0;
}

/* A file of the set is complete: the manifest lists it. */
void
job_codecs_add_entry(struct job_codecs *c, const char *path, uint64_t size,
    const uint8_t sha[32])
{
	cJSON *e = cJSON_CreateObject();
	char hex[65];

	cpx_sha256_hex(sha, hex);
	cJSON_AddStringToObject(e, "path", path);
	cJSON_AddNumberToObject(e, "size", (double)size);
	cJSON_AddStringToObject(e, "sha256", hex);
	cJSON_AddItemToArray(c->entries, e);
}

static char *
manifest(struct job *j)
{
	struct job_codecs *c = j->codecs;
	cJSON *m = cJSON_CreateObject();
	char *url;

	cJSON_AddStringToObject(m, "name", c->want);
	cJSON_AddStringToObject(m, "from", c->source == AGENT_SRC_URL ? "url" :
	    "pms");
	if (c->source == AGENT_SRC_URL) {
		url = agent_codec_url_shown(j->cfg->codec_url);
		cJSON_AddStringToObject(m, "url", url);
		cJSON_AddStringToObject(m, "names_from", c->offer);
		free(url);
	}
	cJSON_AddStringToObject(m, "job", j->spec.id);
	cJSON_AddNumberToObject(m, "fetched", (double)time(NULL));
	cJSON_AddNumberToObject(m, "files", (double)c->files);
	cJSON_AddNumberToObject(m, "bytes", (double)c->bytes);
	cJSON_AddItemToObject(m, "entries", c->entries);
	c->entries = NULL;
	return cpx_json_take(m, 1);
}

/*
 * Every file arrived and was checked: the manifest goes in, the folder is
 * renamed into place whole, and the job uses it.
 */
void
job_codecs_done(struct job *j)
{
	struct job_codecs *c = j->codecs;
	char *m = manifest(j), *dir, *cause = NULL;
	int error = agent_codecs_commit(j->cfg, c->want, c->tmp, m, &cause);

	free(m);
	if (error != 0) {
		job_codecs_failed(j, cause);
		free(cause);
		return;
	}
	free(c->tmp);
	c->tmp = NULL;
	cpx_info("job %s: codec set %s fetched from %s: %llu files, %llu "
	    "bytes in %llu ms", j->spec.id, c->want, source_name(c->source),
	    (unsigned long long)c->files, (unsigned long long)c->bytes,
	    (unsigned long long)(cpx_now_ms() - c->t0));
	dir = cpx_xprintf("%s/%s", j->cfg->codec_cache, c->want);
	use_set(j, dir);
	free(dir);
	uv_timer_stop(&j->prep_timer);
	job_codecs_free(j);
	job_prepared(j, NULL);
}

static int
on_end(struct job *j, const struct cpx_frame *f, char **why)
{
	struct job_codecs *c = j->codecs;
	cJSON *obj = cJSON_ParseWithLength((const char *)f->payload, f->len);
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(obj, "error");
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, "files");
	int error = -EPROTO;

	if (cJSON_IsString(err))
		*why = cpx_xprintf("the PMS host says: %s", err->valuestring);
	else if (c->fd >= 0 || !cJSON_IsNumber(n) || n->valuedouble !=
	    (double)c->files)
		*why = cpx_xstrdup("SET_END does not match what arrived");
	else
		error = 0;
	cJSON_Delete(obj);
	if (error != 0)
		return error;
	if (c->source == AGENT_SRC_URL)
		return job_codecs_url_listed(j, why);
	job_codecs_done(j);
	return 0;
}

/* SET_* frames from the shim while a fetch runs. */
void
job_codecs_frame(struct job *j, const struct cpx_frame *f)
{
	char *why = NULL;
	int error;

	if (j->codecs == NULL || !j->codecs->receiving) {
		cpx_debug("ignoring %s: no fetch under way",
		    cpx_msg_name(f->type));
		return;
	}
	switch (f->type) {
	case CPX_MSG_SET_FILE:
		error = on_entry(j, f, &why);
		break;
	case CPX_MSG_SET_DATA:
		error = on_data(j, f, &why);
		break;
	case CPX_MSG_SET_SUM:
		error = on_sum(j, f, &why);
		break;
	default:
		error = on_end(j, f, &why);
		break;
	}
	if (error != 0)
		job_codecs_failed(j, why != NULL ? why : strerror(-error));
	free(why);
}
