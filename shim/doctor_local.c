/* doctor_local.c — doctor on the PMS host: dispatcher, PMS's settings, fuse. */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>

#include "cpx-http.h"
#include "doctor.h"

#define HTTP_MS 2000
#define FUSE_MS 2000

/*
 * GET /health (reachable), GET /api/v1/auth (token accepted), then the
 * registry. Returns the workers array (caller deletes) or NULL.
 */
cJSON *
dr_check_dispatcher(struct dr *d)
{
	const char *url = d->cfg->orchestrator_url;
	struct cpx_http_response r;
	cJSON *root = NULL, *workers = NULL;
	char *cause = NULL;

	if (cpx_http_request(url, "GET", "/health", NULL, NULL, HTTP_MS, &r,
	    &cause) != 0 || r.status != 200) {
		dr_add(d, "dispatcher.reachable", "dispatcher", DR_FAIL,
		    "start clusterplex-dispatcher, or point ORCHESTRATOR_URL at it",
		    "%s does not answer GET /health: %s", url,
		    cause != NULL ? cause : "not HTTP 200");
		if (cause == NULL)
			cpx_http_response_free(&r);
		free(cause);
		dr_add(d, "dispatcher.token", "dispatcher", DR_SKIP, NULL,
		    "not checked: the dispatcher does not answer");
		return NULL;
	}
	cpx_http_response_free(&r);
	dr_add(d, "dispatcher.reachable", "dispatcher", DR_PASS, NULL,
	    "%s answers", url);
	if (cpx_http_request(url, "GET", "/api/v1/auth", d->cfg->token, NULL,
	    HTTP_MS, &r, &cause) != 0) {
		dr_add(d, "dispatcher.token", "dispatcher", DR_FAIL, NULL,
		    "cannot ask: %s", cause);
		free(cause);
		return NULL;
	}
	if (r.status == 200)
		dr_add(d, "dispatcher.token", "dispatcher", DR_PASS, NULL,
		    "it accepts this CLUSTERPLEX_TOKEN");
	else
		dr_add(d, "dispatcher.token", "dispatcher", DR_FAIL,
		    "set the same CLUSTERPLEX_TOKEN for PMS, the dispatcher and "
		    "the workers", "it refuses %s (HTTP %d)", d->cfg->token ?
		    "this CLUSTERPLEX_TOKEN" : "requests without a token",
		    r.status);
	cpx_http_response_free(&r);
	if (cpx_http_request(url, "GET", "/api/v1/workers", NULL, NULL, HTTP_MS,
	    &r, &cause) == 0) {
		root = cJSON_Parse(r.body);
		workers = cJSON_DetachItemFromObjectCaseSensitive(root,
		    "workers");
		cpx_http_response_free(&r);
	}
	free(cause);
	cJSON_Delete(root);
	return workers;
}

static int
is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* PMS's "Plex Media Server" folder (Preferences.xml, Codecs/), or NULL. */
char *
dr_pms_data_dir(void)
{
	static const char *const defaults[] = {
		"/config/Library/Application Support/Plex Media Server",
		"/var/lib/plexmediaserver/Library/Application Support/"
		"Plex Media Server",
	};
	char *v = cpx_env_value("CLUSTERPLEX_PMS_DATA_DIR"), *p;
	size_t i;

	if (v != NULL)
		return v;
	if ((v = cpx_env_value("PLEX_MEDIA_SERVER_APPLICATION_SUPPORT_DIR"))) {
		p = cpx_xprintf("%s/Plex Media Server", v);
		free(v);
		return p;
	}
	for (i = 0; i < CPX_ARRAY_SIZE(defaults); i++) {
		if (is_dir(defaults[i]))
			return cpx_xstrdup(defaults[i]);
	}
	return NULL;
}

/* The set PMS uses now: the newest "<version>-linux-<cpu>..." in Codecs/. */
char *
dr_find_codec_set(const char *pms_data)
{
	struct cpx_codec_set s;
	char *dir, *path, *best = NULL;
	struct dirent *de;
	struct stat st;
	time_t newest = 0;
	DIR *dp;

	if (pms_data == NULL)
		return NULL;
	dir = cpx_xprintf("%s/Codecs", pms_data);
	if ((dp = opendir(dir)) != NULL) {
		while ((de = readdir(dp)) != NULL) {
			if (cpx_codec_set_parse(de->d_name, &s) != 0)
				continue;
			path = cpx_xprintf("%s/%s", dir, de->d_name);
			if (s.cpu != NULL && stat(path, &st) == 0 &&
			    S_ISDIR(st.st_mode) && (best == NULL ||
			    st.st_mtime > newest)) {
				free(best);
				best = cpx_xstrdup(de->d_name);
				newest = st.st_mtime;
			}
			free(path);
			cpx_codec_set_free(&s);
		}
		closedir(dp);
	}
	free(dir);
	return best;
}

static int
same_dir(const char *a, const char *b)
{
	char ra[PATH_MAX], rb[PATH_MAX];

	if (realpath(a, ra) == NULL || realpath(b, rb) == NULL)
		return strcmp(a, b) == 0;
	return strcmp(ra, rb) == 0;
}

/* Settings > Transcoder > "Transcoder temporary directory" must be our folder. */
void
dr_check_prefs(struct dr *d)
{
	char *path, *text = NULL, *val = NULL;
	const char *fix = "in Plex: Settings > Transcoder > Transcoder "
	    "temporary directory";
	size_t len;
	int error;

	if (d->pms_data == NULL) {
		dr_add(d, "pms.transcoder_temp", "pms", DR_FAIL, "set "
		    "CLUSTERPLEX_PMS_DATA_DIR to PMS's \"Plex Media Server\" "
		    "folder", "PMS's data folder was not found");
		return;
	}
	path = cpx_xprintf("%s/Preferences.xml", d->pms_data);
	error = cpx_read_file(path, 1024 * 1024, &text, &len);
	if (error == 0)
		error = shim_xml_attr(text, len, "Preferences",
		    "TranscoderTempDirectory", &val);
	if (error == -ENOENT && text != NULL)
		dr_add(d, "pms.transcoder_temp", "pms", DR_FAIL, fix, "%s sets "
		    "no TranscoderTempDirectory: PMS transcodes into its own "
		    "cache, not %s", path, d->transcode_dir);
	else if (error != 0)
		dr_add(d, "pms.transcoder_temp", "pms", DR_FAIL, NULL,
		    "cannot read %s: %s", path, strerror(-error));
	else if (!same_dir(val, d->transcode_dir))
		dr_add(d, "pms.transcoder_temp", "pms", DR_FAIL, fix,
		    "PMS transcodes into \"%s\", not into %s", val,
		    d->transcode_dir);
	else
		dr_add(d, "pms.transcoder_temp", "pms", DR_PASS, NULL,
		    "PMS transcodes into %s", val);
	free(path);
	free(text);
	free(val);
}

/* The fstype of the mount at `dir` from mountinfo, or NULL. */
static char *
mount_type(const char *dir)
{
	char line[4096], mp[PATH_MAX], type[128], *dash;
	char *out = NULL;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	while (f != NULL && fgets(line, sizeof line, f) != NULL) {
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 ||
		    (dash = strstr(line, " - ")) == NULL ||
		    sscanf(dash + 3, "%127s", type) != 1)
			continue;
		if (strcmp(mp, dir) == 0) {
			free(out);
			out = cpx_xstrdup(type);	/* the last one is on top */
		}
	}
	if (f != NULL)
		fclose(f);
	return out;
}

/* stat() in a child, so a hung mount costs FUSE_MS, not the doctor. */
static int
responsive(const char *dir)
{
	struct stat st;
	int status, waited = 0;
	pid_t pid = fork();

	if (pid == 0)
		_exit(stat(dir, &st) == 0 ? 0 : 1);
	while (pid > 0 && waited < FUSE_MS) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) && WEXITSTATUS(status) == 0;
		usleep(10000);
		waited += 10;
	}
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	return 0;
}

/* HELLO on fuse.sock answered by clusterplex-fuse's HELLO. */
static int
ctl_answers(const char *run_dir, char **why)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd p = { .events = POLLIN };
	struct cpx_frame f;
	struct cpx_buf b, h;
	uint8_t buf[1024];
	size_t used;
	ssize_t n;
	int ok = 0;

	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/fuse.sock", run_dir);
	p.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p.fd < 0 || connect(p.fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		*why = cpx_xprintf("%s: %s", sa.sun_path, strerror(errno));
		goto out;
	}
	cpx_buf_init(&h);
	cpx_buf_init(&b);
	cpx_hello_put(&h, "control", "clusterplex-doctor");
	cpx_frame_put(&b, CPX_MSG_HELLO, 0, h.data, h.len);
	cpx_buf_free(&h);
	n = cpx_write_all(p.fd, b.data, b.len) < 0 ? -1 :
	    poll(&p, 1, FUSE_MS) == 1 ? read(p.fd, buf, sizeof buf) : -1;
	cpx_buf_free(&b);
	ok = n > 0 && cpx_frame_next(buf, (size_t)n, &f, &used) == 0 &&
	    f.type == CPX_MSG_HELLO;
	if (!ok)
		*why = cpx_xprintf("%s did not answer HELLO", sa.sun_path);
out:
	if (p.fd >= 0)
		close(p.fd);
	return ok;
}

/*
 * clusterplex-fuse is mounted over the transcode folder, the mount
 * answers, and its control socket answers. Shared storage instead
 * (CLUSTERPLEX_SHARED_TRANSCODE=true: NFS for the transcode folder) needs
 * no mount: then the workers' check of the transcode folder is what counts.
 */
void
dr_check_fuse(struct dr *d)
{
	char *type = mount_type(d->transcode_dir), *why = NULL;
	int shared = 0;
	const char *fix = "start clusterplex-fuse over the transcode folder "
	    "(clusterplex-fuse CLUSTERPLEX_TRANSCODE_DIR)";

	cpx_env_bool("CLUSTERPLEX_SHARED_TRANSCODE", 0, &shared, NULL);
	if (shared)
		dr_add(d, "fuse.mount", "pms", DR_SKIP, NULL, "shared storage "
		    "(CLUSTERPLEX_SHARED_TRANSCODE): no fuse mount needed");
	else if (type == NULL || strncmp(type, "fuse", 4) != 0)
		dr_add(d, "fuse.mount", "pms", DR_FAIL, fix, "%s is not a fuse "
		    "mount (%s)", d->transcode_dir, type ? type : "not mounted");
	else if (!responsive(d->transcode_dir))
		dr_add(d, "fuse.mount", "pms", DR_FAIL, "unmount it "
		    "(fusermount3 -u) and start clusterplex-fuse again",
		    "the fuse mount at %s does not answer (its daemon died?)",
		    d->transcode_dir);
	else if (!ctl_answers(d->cfg->run_dir, &why))
		dr_add(d, "fuse.mount", "pms", DR_FAIL, "run clusterplex-fuse "
		    "with the same CLUSTERPLEX_RUN_DIR as PMS", "%s is mounted "
		    "but its control socket does not answer: %s",
		    d->transcode_dir, why);
	else
		dr_add(d, "fuse.mount", "pms", DR_PASS, NULL, "clusterplex-fuse "
		    "serves %s (%s) and answers on %s/fuse.sock",
		    d->transcode_dir, type, d->cfg->run_dir);
	free(type);
	free(why);
}
