/* job_eae.c — an EasyAudioEncoder for an EAE job, leased from `agent serve`. */

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cJSON.h>

#include "job.h"

#define EAE_REPLY_MS 10000

/* EasyAudioEncoder jobs name *_eae codecs or pass -eae_prefix[:N]. */
int
agent_argv_uses_eae(char *const *argv, size_t argc)
{
	size_t i, n;

	for (i = 0; i < argc; i++) {
		n = strlen(argv[i]);
		if ((n > 4 && argv[i][0] != '/' &&
		    strcmp(argv[i] + n - 4, "_eae") == 0) ||
		    strncmp(argv[i], "-eae_prefix", 11) == 0)
			return 1;
	}
	return 0;
}

static int
executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    access(path, X_OK) == 0;
}

/*
 * The worker's EasyAudioEncoder: CLUSTERPLEX_EAE_PATH, else the one that
 * came with the job's codec set (FFMPEG_EXTERNAL_LIBS in envp), in the
 * layouts Plex and ClusterPlex images use. Caller frees; NULL if none.
 */
char *
agent_eae_binary(const struct agent_config *cfg, char *const *envp)
{
	static const char *const rel[] = {
		"EasyAudioEncoder/EasyAudioEncoder/EasyAudioEncoder",
		"EasyAudioEncoder/EasyAudioEncoder", "EasyAudioEncoder",
	};
	char *dir = NULL, *path;
	size_t i;

	if (cfg->eae_path != NULL)
		return executable(cfg->eae_path) ? cpx_xstrdup(cfg->eae_path) :
		    NULL;
	for (i = 0; envp != NULL && envp[i] != NULL && dir == NULL; i++) {
		if (strncmp(envp[i], "FFMPEG_EXTERNAL_LIBS=", 21) == 0)
			dir = cpx_codec_libs_dir(envp[i] + 21);
	}
	for (i = 0; dir != NULL && i < CPX_ARRAY_SIZE(rel); i++) {
		path = cpx_xprintf("%s/%s", dir, rel[i]);
		if (executable(path)) {
			free(dir);
			return path;
		}
		free(path);
	}
	free(dir);
	return NULL;
}

static int
connect_serve(const char *run_dir, char **why)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if ((size_t)snprintf(sa.sun_path, sizeof sa.sun_path, "%s/agent.sock",
	    run_dir) >= sizeof sa.sun_path) {
		*why = cpx_xstrdup("CLUSTERPLEX_RUN_DIR is too long for a socket");
		return -ENAMETOOLONG;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		*why = cpx_xprintf("no EasyAudioEncoder supervisor at %s (%s): "
		    "is `clusterplex-agent serve` running on this worker?",
		    sa.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -ECONNREFUSED;
	}
	return fd;
}

/* Reads one frame from fd within EAE_REPLY_MS; *payload is allocated. */
static int
read_frame(int fd, struct cpx_frame *f, struct cpx_buf *in)
{
	uint64_t end = cpx_now_ms() + EAE_REPLY_MS;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint8_t buf[4096];
	size_t used;
	ssize_t n;
	int r;

	for (;;) {
		r = cpx_frame_next(in->data, in->len, f, &used);
		if (r != -EAGAIN)
			return r;
		if (cpx_now_ms() >= end || poll(&p, 1, (int)(end -
		    cpx_now_ms())) <= 0)
			return -ETIMEDOUT;
		n = read(fd, buf, sizeof buf);
		if (n <= 0)
			return n == 0 ? -ECONNRESET : -errno;
		cpx_buf_add(in, buf, (size_t)n);
	}
}

static char *
acquire_body(const struct job *j, const char *root, const char *binary)
{
	cJSON *obj = cJSON_CreateObject();

	cJSON_AddStringToObject(obj, "root", root);
	cJSON_AddStringToObject(obj, "binary", binary);
	cJSON_AddStringToObject(obj, "job", j->spec.id);
	return cpx_json_take(obj, 0);
}

/* The supervisor's answer: the EAE's folder on this worker, or its refusal. */
static int
read_ready(int fd, char **dir, long *pid, char **why)
{
	struct cpx_frame f;
	struct cpx_buf in;
	cJSON *obj = NULL;
	const cJSON *d, *p;
	char *code = NULL, *msg = NULL;
	int error;

	cpx_buf_init(&in);
	if ((error = read_frame(fd, &f, &in)) != 0) {
		*why = cpx_xprintf("the EasyAudioEncoder supervisor did not "
		    "answer: %s", strerror(-error));
	} else if (f.type == CPX_MSG_ERROR) {
		cpx_error_parse(f.payload, f.len, &code, &msg);
		*why = cpx_xprintf("EasyAudioEncoder: %s", msg ? msg : "refused");
		error = -EPERM;
	} else if (f.type != CPX_MSG_EAE_READY ||
	    (obj = cJSON_ParseWithLength((const char *)f.payload, f.len)) ==
	    NULL || !cJSON_IsString(d = cJSON_GetObjectItemCaseSensitive(obj,
	    "dir")) || !cJSON_IsNumber(p = cJSON_GetObjectItemCaseSensitive(obj,
	    "pid"))) {
		*why = cpx_xstrdup("malformed answer from the EAE supervisor");
		error = -EPROTO;
	} else {
		*dir = cpx_xstrdup(d->valuestring);
		*pid = (long)p->valuedouble;
	}
	cJSON_Delete(obj);
	cpx_buf_free(&in);
	free(code);
	free(msg);
	return error;
}

/*
 * For a job that uses EAE: asks `agent serve` (agent.sock) for an EAE
 * watching the job's EAE_ROOT, and points EAE_ROOT at the folder it
 * watches on this worker. The connection stays open as our lease until
 * the job ends (this process exits). 0, or -1 with *why.
 */
int
job_eae_start(struct job *j, char **why)
{
	const char *root = job_spec_env(j, "EAE_ROOT");
	char *binary, *body, *dir = NULL;
	struct cpx_buf b;
	long pid = 0;
	int fd;

	if (!agent_argv_uses_eae(j->spec.argv, j->spec.argc))
		return 0;
	if ((binary = agent_eae_binary(j->cfg, j->envp)) == NULL) {
		*why = cpx_xstrdup("this worker has no EasyAudioEncoder: set "
		    "CLUSTERPLEX_EAE_PATH, or keep EAE jobs on the PMS host "
		    "(TRANSCODE_EAE_LOCALLY=true)");
		return -1;
	}
	if ((fd = connect_serve(j->cfg->run_dir, why)) < 0) {
		free(binary);
		return -1;
	}
	body = acquire_body(j, root != NULL && *root != '\0' ? root : "default",
	    binary);
	cpx_buf_init(&b);
	cpx_frame_put(&b, CPX_MSG_EAE_ACQUIRE, 0, body, strlen(body));
	if (cpx_write_all(fd, b.data, b.len) < 0 ||
	    read_ready(fd, &dir, &pid, why) != 0) {
		if (*why == NULL)
			*why = cpx_xprintf("EAE supervisor: %s", strerror(errno));
		close(fd);
		fd = -1;
	} else {
		j->eae_fd = fd;
		job_env_set(j, "EAE_ROOT", dir);
		cpx_info("job %s: EasyAudioEncoder pid %ld watches %s",
		    j->spec.id, pid, dir);
	}
	cpx_buf_free(&b);
	free(body);
	free(binary);
	free(dir);
	return fd >= 0 ? 0 : -1;
}
