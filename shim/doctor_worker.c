/* doctor_worker.c — every registered worker, probed over SSH at once. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <cJSON.h>

#include "cpx-link.h"
#include "cpx-ssh.h"
#include "doctor.h"

#define WORKER_MS 15000
#define MAX_SKEW_MS 2000

/*
 * Per worker: connect with the PMS key, pinning the host key the worker
 * registered (and CLUSTERPLEX_KNOWN_HOSTS when set), exactly as a job
 * does. Then one channel asking for the command "echo CPXDOCTOR-<nonce>":
 * under the forced command the agent starts anyway and reports that
 * command as SSH_ORIGINAL_COMMAND; without one, sshd runs it and the
 * echo arrives where frames should. The probe service answers the rest.
 */

enum { C_SSH, C_HOSTKEY, C_FORCED, C_AGENT, C_TRANSCODER, C_CODECS, C_TDIR,
    C_MEDIA, C_CLOCK, C_MAX };

static const char *const ids[C_MAX] = { "worker.ssh", "worker.host_key",
	"worker.forced_command", "worker.agent", "worker.transcoder",
	"worker.codecs", "worker.transcode_dir", "worker.media",
	"worker.clock" };

struct dr_res {
	int set;
	int status;
	char *message;
	char *fix;
};

struct dr_worker {
	struct dr *d;
	struct cpx_endpoint ep;
	char *target;
	struct cpx_ssh_conn *conn;
	struct cpx_link *link;
	uv_timer_t timer;
	char nonce[33];
	int hello;
	int done;
	uint64_t t_ping, rtt;
	struct dr_res r[C_MAX];
};

static void CPX_PRINTF(5, 6)
res(struct dr_worker *w, int c, int status, const char *fix,
    const char *fmt, ...)
{
	va_list ap;
	char buf[1024];

	if (w->r[c].set)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	w->r[c].set = 1;
	w->r[c].status = status;
	w->r[c].message = cpx_xstrdup(buf);
	w->r[c].fix = fix != NULL ? cpx_xstrdup(fix) : NULL;
}

/* Ends the worker's probe: whatever is not known by now is skipped. */
static void
finish(struct dr_worker *w, const char *why)
{
	int c;

	if (w->done)
		return;
	w->done = 1;
	for (c = 0; c < C_MAX; c++)
		res(w, c, DR_SKIP, NULL, "not checked: %s", why);
	if (w->link != NULL)
		cpx_link_close(w->link);
	w->link = NULL;
	uv_timer_stop(&w->timer);
	uv_close((uv_handle_t *)&w->timer, NULL);
	cpx_ssh_close(w->conn);
	w->conn = NULL;
}

static void
on_timeout(uv_timer_t *t)
{
	struct dr_worker *w = t->data;

	res(w, C_AGENT, DR_FAIL, NULL, "no answer within %d s", WORKER_MS / 1000);
	finish(w, "the worker did not answer in time");
}

static const cJSON *
get(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *
str(const cJSON *o, const char *k, const char *def)
{
	const cJSON *v = get(o, k);

	return cJSON_IsString(v) ? v->valuestring : def;
}

static void
eval_transcoder(struct dr_worker *w, const cJSON *t)
{
	if (cJSON_IsTrue(get(t, "ok")))
		res(w, C_TRANSCODER, DR_PASS, NULL, "%s runs (%s)",
		    str(t, "path", "?"), str(t, "version", ""));
	else
		res(w, C_TRANSCODER, DR_FAIL, "install Plex's transcoder on the "
		    "worker, or fix TRANSCODER_PATH/TRANSCODER_NAME", "%s: %s",
		    str(t, "path", "?"), str(t, "error", "not runnable"));
}

static void
eval_codecs(struct dr_worker *w, const cJSON *c)
{
	const char *state = str(c, "state", "missing");

	if (strcmp(state, "none") == 0)
		res(w, C_CODECS, DR_SKIP, NULL, "PMS's codec folder was not "
		    "found (set CLUSTERPLEX_PMS_DATA_DIR)");
	else if (strcmp(state, "missing") == 0)
		res(w, C_CODECS, DR_FAIL, "see docs/workers.md, \"Codecs\"",
		    "codec set %s: %s", str(c, "want", "?"),
		    str(c, "error", "not available"));
	else
		res(w, C_CODECS, DR_PASS, NULL, "codec set %s is %s%s%s",
		    str(c, "want", "?"), strcmp(state, "fetchable") != 0 ? state :
		    strcmp(str(c, "source", "pms"), "url") == 0 ?
		    "downloaded from CLUSTERPLEX_CODEC_URL at the first job" :
		    "fetched from PMS at the first job",
		    get(c, "dir") ? " at " : "", str(c, "dir", ""));
}

static void
eval_media(struct dr_worker *w, const cJSON *arr)
{
	const cJSON *m;
	int n = 0;

	cJSON_ArrayForEach(m, arr) {
		n++;
		if (!cJSON_IsTrue(get(m, "ok"))) {
			res(w, C_MEDIA, DR_FAIL, "mount the media on the worker, "
			    "or map its path with CLUSTERPLEX_PATH_MAP",
			    "%s (as %s on the worker): %s", str(m, "path", "?"),
			    str(m, "mapped", "?"), str(m, "error", "?"));
			return;
		}
	}
	if (n == 0)
		res(w, C_MEDIA, DR_SKIP, NULL, "no sample media yet (no remote "
		    "job has run; pass --media FILE)");
	else
		res(w, C_MEDIA, DR_PASS, NULL, "%d sample file%s readable", n,
		    n == 1 ? "" : "s");
}

static void
eval_clock(struct dr_worker *w, const cJSON *reply, uint64_t t_rx)
{
	const cJSON *t = get(reply, "time_ms");
	struct timespec ts;
	double now, skew;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (double)ts.tv_sec * 1000 + (double)(ts.tv_nsec / 1000000);
	if (!cJSON_IsNumber(t)) {
		res(w, C_CLOCK, DR_SKIP, NULL, "the agent sent no time");
		return;
	}
	/* The agent read its clock about half a round trip before we got it. */
	skew = t->valuedouble + (double)w->rtt / 2 - now;
	if (skew > MAX_SKEW_MS || skew < -MAX_SKEW_MS)
		res(w, C_CLOCK, DR_FAIL, "run NTP (chrony, systemd-timesyncd) "
		    "on the worker and the PMS host", "the worker's clock is "
		    "%.1f s %s", (skew < 0 ? -skew : skew) / 1000,
		    skew < 0 ? "behind" : "ahead");
	else
		res(w, C_CLOCK, DR_PASS, NULL, "clock within %.0f ms",
		    skew < 0 ? -skew : skew);
}

static void
on_reply(struct dr_worker *w, const struct cpx_frame *f)
{
	cJSON *r = cJSON_ParseWithLength((const char *)f->payload, f->len);
	const char *orig = str(r, "original_command", NULL);
	const cJSON *t = get(r, "transcode_dir");

	if (orig != NULL && strstr(orig, w->nonce) != NULL)
		res(w, C_FORCED, DR_PASS, NULL, "sshd runs the agent whatever "
		    "command is asked for");
	else
		res(w, C_FORCED, DR_FAIL, "prefix the key's authorized_keys line "
		    "with restrict,command=\"clusterplex-agent exec ...\" "
		    "(scripts/provision-keys.sh prints it)", "the agent answered "
		    "but did not run as the forced command");
	res(w, C_AGENT, DR_PASS, NULL, "clusterplex-agent %s answers as %s",
	    str(r, "agent", "?"), str(r, "worker", "?"));
	eval_transcoder(w, get(r, "transcoder"));
	eval_codecs(w, get(r, "codecs"));
	if (cJSON_IsTrue(get(t, "ok")))
		res(w, C_TDIR, DR_PASS, NULL, "%s is writable",
		    str(t, "path", "?"));
	else
		res(w, C_TDIR, DR_FAIL, "give the agent's user write access to "
		    "its CLUSTERPLEX_TRANSCODE_DIR", "cannot write in %s: %s",
		    str(t, "path", "?"), str(t, "error", "?"));
	eval_media(w, get(r, "media"));
	eval_clock(w, r, cpx_now_ms());
	cJSON_Delete(r);
	finish(w, "done");
}

static void
on_frame(struct cpx_link *link, const struct cpx_frame *f, void *arg)
{
	struct dr_worker *w = arg;
	char *code = NULL, *msg = NULL;

	if (f->type == CPX_MSG_HELLO) {
		w->hello = 1;
	} else if (f->type == CPX_MSG_PONG) {
		w->rtt = cpx_now_ms() - w->t_ping;
	} else if (f->type == CPX_MSG_PROBE_REPLY) {
		on_reply(w, f);
	} else if (f->type == CPX_MSG_ERROR) {
		cpx_error_parse(f->payload, f->len, &code, &msg);
		res(w, C_FORCED, w->hello ? DR_SKIP : DR_FAIL, NULL,
		    "not checked: the agent refused the probe");
		res(w, C_AGENT, DR_FAIL, "install the same ClusterPlex version "
		    "on the workers as on the PMS host", "the agent refused "
		    "the probe (%s): %s", code ? code : "?", msg ? msg : "?");
		finish(w, "the agent cannot be probed");
	}
	free(code);
	free(msg);
}

/* The channel ended before the agent's report. */
static void
on_close(struct cpx_link *link, int error, void *arg)
{
	struct dr_worker *w = arg;

	w->link = NULL;
	if (!w->hello && error != 0) {
		res(w, C_FORCED, DR_FAIL, "prefix the key's authorized_keys line "
		    "with restrict,command=\"clusterplex-agent exec ...\" "
		    "(scripts/provision-keys.sh prints it)", "sshd ran the "
		    "command asked for instead of the agent: the key has no "
		    "forced command (shell access!)");
		finish(w, "no agent behind this key");
	} else if (!w->hello) {
		res(w, C_AGENT, DR_FAIL, "install clusterplex-agent at the path "
		    "in the forced command, executable by the worker's SSH "
		    "user", "the forced command ran but no agent answered");
		finish(w, "no agent answered");
	} else {
		res(w, C_AGENT, DR_FAIL, NULL, "the agent closed the probe "
		    "without a report");
		finish(w, "the agent sent no report");
	}
}

static void
on_opened(struct cpx_ssh_conn *c, int status, const char *cause,
    struct cpx_link *link, void *arg)
{
	struct dr_worker *w = arg;
	struct cpx_buf b;
	cJSON *req, *media;
	char *s;
	size_t i;

	if (status != 0) {
		res(w, C_AGENT, DR_FAIL, NULL, "no channel: %s", cause);
		finish(w, "no channel");
		return;
	}
	w->link = link;
	cpx_buf_init(&b);
	cpx_hello_put(&b, CPX_SERVICE_PROBE, "clusterplex-doctor");
	cpx_link_send_buf(link, CPX_MSG_HELLO, 0, &b);
	w->t_ping = cpx_now_ms();
	cpx_link_send(link, CPX_MSG_PING, 0, NULL, 0);
	req = cJSON_CreateObject();
	if (w->d->codec_set != NULL)
		cJSON_AddStringToObject(req, "codecs", w->d->codec_set);
	media = cJSON_AddArrayToObject(req, "media");
	for (i = 0; i < w->d->nmedia; i++)
		cJSON_AddItemToArray(media, cJSON_CreateString(w->d->media[i]));
	s = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	cpx_link_send(link, CPX_MSG_PROBE, 0, s, strlen(s));
	cJSON_free(s);
}

static void
on_ready(struct cpx_ssh_conn *c, int status, const char *cause, void *arg)
{
	struct dr_worker *w = arg;
	char *cmd;

	if (status == -EKEYREJECTED) {
		res(w, C_SSH, DR_PASS, NULL, "%s:%d answers SSH", w->ep.host,
		    w->ep.port);
		res(w, C_HOSTKEY, DR_FAIL, "if the worker's host key changed on "
		    "purpose, restart its agent serve (it registers the key) and "
		    "update CLUSTERPLEX_KNOWN_HOSTS", "%s", cause);
		finish(w, "the host key is not the pinned one");
		return;
	}
	if (status != 0) {
		res(w, C_SSH, DR_FAIL, status == -EACCES ? "add the PMS key's "
		    "line to the worker's authorized_keys" : status == -ENOKEY ?
		    "create the key with scripts/provision-keys.sh" :
		    "start sshd on the worker, or fix CLUSTERPLEX_SSH_ADDRESS",
		    "%s", cause);
		finish(w, "no SSH session");
		return;
	}
	res(w, C_SSH, DR_PASS, NULL, "%s:%d accepts the PMS key", w->ep.host,
	    w->ep.port);
	res(w, C_HOSTKEY, DR_PASS, NULL, "the host key is the pinned one");
	cmd = cpx_xprintf("echo CPXDOCTOR-%s", w->nonce);
	cpx_ssh_open_link(c, cmd, on_frame, on_close, w, on_opened, w);
	free(cmd);
}

static void
start(struct dr_worker *w, uv_loop_t *loop)
{
	const struct shim_config *cfg = w->d->cfg;
	struct cpx_ssh_auth auth = { .key_path = cfg->key_path,
	    .known_hosts = cfg->known_hosts };
	struct cpx_ssh_opts opts = { .connect_timeout_ms = 5000,
	    .keepalive_ms = (unsigned)cfg->keepalive_ms };
	uint8_t r[16];
	size_t i;

	if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
		cpx_fatal("getrandom failed");
	for (i = 0; i < sizeof r; i++)
		snprintf(w->nonce + 2 * i, 3, "%02x", r[i]);
	uv_timer_init(loop, &w->timer);
	w->timer.data = w;
	uv_timer_start(&w->timer, on_timeout, WORKER_MS, 0);
	w->conn = cpx_ssh_connect(loop, &w->ep, &auth, &opts, on_ready, NULL, w);
}

static void
collect(struct dr_worker *w)
{
	int c;

	for (c = 0; c < C_MAX; c++) {
		dr_add(w->d, ids[c], w->target, w->r[c].status, w->r[c].fix,
		    "%s", w->r[c].message);
		free(w->r[c].message);
		free(w->r[c].fix);
	}
	cpx_endpoint_free(&w->ep);
	free(w->target);
}

void
dr_check_workers(struct dr *d, const cJSON *workers)
{
	struct dr_worker *v;
	const cJSON *e;
	char *cause = NULL;
	size_t n = 0, i;
	uv_loop_t loop;

	v = cpx_xcalloc((size_t)cJSON_GetArraySize(workers) + 1, sizeof *v);
	uv_loop_init(&loop);
	cJSON_ArrayForEach(e, workers) {
		struct dr_worker *w = &v[n];
		const char *name = str(e, "name", "?");
		cJSON *ep = cJSON_Duplicate(get(e, "ssh"), 1);

		w->d = d;
		if (ep != NULL)
			cJSON_AddStringToObject(ep, "name", name);
		if (cpx_endpoint_from_json(ep, &w->ep, &cause) != 0) {
			dr_add(d, "worker.ssh", name, DR_FAIL, NULL, "the "
			    "dispatcher lists it without an SSH endpoint: %s",
			    cause);
			free(cause);
			cause = NULL;
			cJSON_Delete(ep);
			continue;
		}
		cJSON_Delete(ep);
		w->target = cpx_xprintf("worker %s", name);
		start(w, &loop);
		n++;
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	if (n == 0)
		dr_add(d, "workers", "dispatcher", DR_FAIL, "start "
		    "clusterplex-agent serve on each worker", "no worker is "
		    "registered");
	for (i = 0; i < n; i++)
		collect(&v[i]);
	free(v);
}
