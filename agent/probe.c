/* probe.c — the "probe" service: what `clusterplex-shim doctor` asks a worker. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "agent.h"
#include "cpx-link.h"

/*
 * One PROBE in, one PROBE_REPLY out, then the channel closes. The request
 * (JSON) names the codec set PMS uses now and sample media paths; the
 * reply reports, from this worker's point of view and with this
 * worker's configuration: the forced command that ran us, the
 * transcoder, the codec set, the transcode folder, the media, the clock.
 * Nothing here changes the worker except a file created and removed in
 * the transcode folder.
 */

#define PROBE_MEDIA_MAX 16
#define TRANSCODER_MS 3000

struct probe {
	struct agent_config *cfg;
	int *status;
};

static cJSON *
result(int ok, const char *error)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddBoolToObject(o, "ok", ok);
	if (error != NULL)
		cJSON_AddStringToObject(o, "error", error);
	return o;
}

/* The first line the transcoder prints for -version, within TRANSCODER_MS. */
static void
run_transcoder(const char *path, cJSON *o)
{
	char line[256] = "", *nl;
	int p[2], st = 0, waited = 0, fd;
	ssize_t n = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0 || (pid = fork()) < 0) {
		cJSON_AddStringToObject(o, "error", strerror(errno));
		return;
	}
	if (pid == 0) {
		fd = open("/dev/null", O_RDWR);
		dup2(fd, 0);
		dup2(p[1], 1);
		dup2(fd, 2);
		execl(path, path, "-version", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while (waited < TRANSCODER_MS && waitpid(pid, &st, WNOHANG) == 0) {
		usleep(10000);
		waited += 10;
	}
	if (waited >= TRANSCODER_MS) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	if (poll(&(struct pollfd){ .fd = p[0], .events = POLLIN }, 1, 0) > 0)
		n = read(p[0], line, sizeof line - 1);
	close(p[0]);
	line[n > 0 ? n : 0] = '\0';
	if ((nl = strchr(line, '\n')) != NULL)
		*nl = '\0';
	if (WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) >= 126)) {
		cJSON_AddStringToObject(o, "error", WIFSIGNALED(st) ?
		    "it died by a signal (or hung) on -version" :
		    "it cannot be executed (exit 126/127: missing loader, "
		    "libraries or permissions)");
		return;
	}
	cJSON_ReplaceItemInObject(o, "ok", cJSON_CreateTrue());
	cJSON_AddStringToObject(o, "version", line);
}

static cJSON *
check_transcoder(const struct agent_config *cfg)
{
	cJSON *o = result(0, NULL);

	cJSON_AddStringToObject(o, "path", cfg->transcoder);
	if (access(cfg->transcoder, X_OK) != 0)
		cJSON_AddStringToObject(o, "error", strerror(errno));
	else
		run_transcoder(cfg->transcoder, o);
	return o;
}

static int
cache_writable(const struct agent_config *cfg, char **why)
{
	int error = cpx_mkdir_p(cfg->codec_cache, 0755);

	if (error == 0 && access(cfg->codec_cache, W_OK) != 0)
		error = -errno;
	if (error != 0)
		*why = cpx_xprintf("the codec cache %s cannot be written: %s",
		    cfg->codec_cache, strerror(-error));
	return error;
}

/* cached | own | fetchable (with its source) | missing, for the set PMS uses now. */
static cJSON *
check_codecs(const struct agent_config *cfg, const char *name)
{
	struct cpx_codec_set have;
	cJSON *o = cJSON_CreateObject();
	char *want = NULL, *dir = NULL, *why = NULL;
	const char *cpu = agent_codec_cpu(cfg), *state = "missing";
	unsigned source;
	int same;

	cJSON_AddStringToObject(o, "cpu", cpu);
	if (name == NULL || cpx_codec_set_parse(name, &have) != 0) {
		cJSON_AddStringToObject(o, "state", "none");
		return o;
	}
	same = have.cpu == NULL || strcmp(have.cpu, cpu) == 0;
	want = same ? cpx_xstrdup(name) : cpx_codec_set_for_cpu(&have, cpu);
	if (agent_codecs_find(cfg, want, &dir) == 0)
		state = cpx_path_under(dir, cfg->codec_cache, NULL) ? "cached" :
		    "own";
	else if ((source = agent_codec_source(cfg, 1, same,
	    have.cpu != NULL)) != 0) {
		state = cache_writable(cfg, &why) == 0 ? "fetchable" : "missing";
		cJSON_AddStringToObject(o, "source", source == AGENT_SRC_URL ?
		    "url" : "pms");
	}
	else if (same)
		why = cpx_xstrdup("CLUSTERPLEX_CODEC_SOURCES allows neither pms "
		    "nor url");
	else
		why = cpx_xprintf("PMS's set is for %s; this %s worker needs %s "
		    "in a folder of CLUSTERPLEX_CODEC_DIRS, or url in "
		    "CLUSTERPLEX_CODEC_SOURCES", have.cpu, cpu, want);
	cJSON_AddStringToObject(o, "want", want);
	cJSON_AddStringToObject(o, "state", state);
	if (dir != NULL)
		cJSON_AddStringToObject(o, "dir", dir);
	if (why != NULL)
		cJSON_AddStringToObject(o, "error", why);
	cpx_codec_set_free(&have);
	free(want);
	free(dir);
	free(why);
	return o;
}

static cJSON *
check_transcode_dir(const struct agent_config *cfg)
{
	char *path = cpx_xprintf("%s/.clusterplex-probe-%ld", cfg->root,
	    (long)getpid());
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	cJSON *o;

	if (fd < 0 || write(fd, "x", 1) != 1) {
		o = result(0, strerror(errno));
	} else {
		o = result(1, NULL);
	}
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	cJSON_AddStringToObject(o, "path", cfg->root);
	free(path);
	return o;
}

/* Each sample, through CLUSTERPLEX_PATH_MAP, opened and one byte read. */
static cJSON *
check_media(const struct agent_config *cfg, const cJSON *paths)
{
	cJSON *arr = cJSON_CreateArray(), *o;
	const cJSON *p;
	char *mapped, c;
	int fd, n = 0;

	cJSON_ArrayForEach(p, paths) {
		if (!cJSON_IsString(p) || p->valuestring[0] != '/' ||
		    ++n > PROBE_MEDIA_MAX)
			continue;
		mapped = agent_path_map_apply(&cfg->path_map, p->valuestring);
		fd = open(mapped ? mapped : p->valuestring, O_RDONLY | O_CLOEXEC);
		o = fd >= 0 && read(fd, &c, 1) >= 0 ? result(1, NULL) :
		    result(0, strerror(errno));
		if (fd >= 0)
			close(fd);
		cJSON_AddStringToObject(o, "path", p->valuestring);
		cJSON_AddStringToObject(o, "mapped", mapped ? mapped :
		    p->valuestring);
		cJSON_AddItemToArray(arr, o);
		free(mapped);
	}
	return arr;
}

static char *
reply(struct probe *pr, const cJSON *req)
{
	const cJSON *set = cJSON_GetObjectItemCaseSensitive(req, "codecs");
	const char *orig = getenv("SSH_ORIGINAL_COMMAND");
	cJSON *o = cJSON_CreateObject();
	struct timespec ts;

	cJSON_AddStringToObject(o, "agent", CPX_VERSION);
	cJSON_AddStringToObject(o, "worker", pr->cfg->name);
	if (orig != NULL)
		cJSON_AddStringToObject(o, "original_command", orig);
	cJSON_AddItemToObject(o, "transcoder", check_transcoder(pr->cfg));
	cJSON_AddItemToObject(o, "codecs", check_codecs(pr->cfg,
	    cJSON_IsString(set) ? set->valuestring : NULL));
	cJSON_AddItemToObject(o, "transcode_dir",
	    check_transcode_dir(pr->cfg));
	cJSON_AddItemToObject(o, "media", check_media(pr->cfg,
	    cJSON_GetObjectItemCaseSensitive(req, "media")));
	clock_gettime(CLOCK_REALTIME, &ts);
	cJSON_AddNumberToObject(o, "time_ms", (double)ts.tv_sec * 1000 +
	    (double)(ts.tv_nsec / 1000000));
	return cpx_json_take(o, 0);
}

static void
on_frame(struct cpx_link *link, const struct cpx_frame *f, void *arg)
{
	struct probe *pr = arg;
	cJSON *req;
	char *s;

	if (f->type == CPX_MSG_PING) {
		cpx_link_send(link, CPX_MSG_PONG, f->id, NULL, 0);
		return;
	}
	req = f->type == CPX_MSG_PROBE ? cJSON_ParseWithLength(
	    (const char *)f->payload, f->len) : NULL;
	if (req == NULL || !cJSON_IsObject(req)) {
		struct cpx_buf b;

		cpx_buf_init(&b);
		cpx_error_put(&b, CPX_ERR_PROTO, "expected a PROBE request");
		cpx_link_send_buf(link, CPX_MSG_ERROR, 0, &b);
	} else {
		s = reply(pr, req);
		cpx_link_send(link, CPX_MSG_PROBE_REPLY, 0, s, strlen(s));
		free(s);
		*pr->status = 0;
	}
	cJSON_Delete(req);
	cpx_link_close(link);	/* on_close will not run: ours to free */
	free(pr);
}

static void
on_close(struct cpx_link *link, int error, void *arg)
{
	free(arg);
}

int
agent_probe_start(struct agent_config *cfg, struct uv_loop_s *loop,
    struct cpx_link *link, int *status)
{
	struct probe *pr = cpx_xcalloc(1, sizeof *pr);

	pr->cfg = cfg;
	pr->status = status;
	link->on_frame = on_frame;
	link->on_close = on_close;
	link->arg = pr;
	*status = 1;
	return 0;
}
