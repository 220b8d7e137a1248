/* config.c — the agent's environment, and the env file sshd cannot pass. */

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agent.h"
#include "cpx-protocol.h"

#define ENV_FILE_MAX (64 * 1024)

static char *
default_name(void)
{
	char host[256];

	if (gethostname(host, sizeof host) != 0 || host[0] == '\0')
		return cpx_xstrdup("worker");
	host[sizeof host - 1] = '\0';
	return cpx_xstrdup(host);
}

static char *
current_user(void)
{
	struct passwd *pw = getpwuid(geteuid());

	return cpx_xstrdup(pw != NULL ? pw->pw_name : "clusterplex");
}

/* TRANSCODER_PATH is a folder (ClusterPlex's meaning), TRANSCODER_NAME the file. */
static char *
transcoder_path(void)
{
	char *dir, *name, *path;
	size_t n;

	cpx_env_str("TRANSCODER_PATH", "/usr/lib/plexmediaserver/", &dir);
	cpx_env_str("TRANSCODER_NAME", "Plex Transcoder", &name);
	n = strlen(dir);
	path = cpx_xprintf("%s%s%s", dir, n > 0 && dir[n - 1] == '/' ? "" : "/",
	    name);
	free(dir);
	free(name);
	return path;
}

static int
load_path_map(struct agent_config *cfg, char **cause)
{
	char *v = cpx_env_value("CLUSTERPLEX_PATH_MAP"), *sub = NULL;
	int error = agent_path_map_parse(v, &cfg->path_map, &sub);

	if (error != 0) {
		cpx_set_cause(cause, "CLUSTERPLEX_PATH_MAP: %s (expected "
		    "/pms/path=/worker/path[,...])", sub);
		free(sub);
	}
	free(v);
	return error;
}

/*
 * CLUSTERPLEX_CODEC_SOURCES: "pms", "url", "pms,url", ... in the order a
 * job tries them, or "none"; case and blanks ignored. *bits gets the
 * AGENT_SRC_* flags, order[] (room for AGENT_SRC_MAX, may be NULL) the
 * sources as given. A repeated source or "none" with another is refused.
 */
int
agent_parse_sources(const char *s, unsigned *bits, unsigned *order, size_t *n)
{
	static const struct { const char *name; unsigned bits; } srcs[] = {
		{ "pms", AGENT_SRC_PMS }, { "url", AGENT_SRC_URL }, { "none", 0 },
	};
	size_t i, len, k = 0;
	int none = 0;

	*bits = 0;
	while (*s != '\0') {
		s += strspn(s, " ,");
		len = strcspn(s, " ,");
		if (len == 0)
			break;
		for (i = 0; i < CPX_ARRAY_SIZE(srcs); i++) {
			if (strlen(srcs[i].name) == len &&
			    strncasecmp(s, srcs[i].name, len) == 0)
				break;
		}
		if (i == CPX_ARRAY_SIZE(srcs) || (*bits & srcs[i].bits) ||
		    (none && srcs[i].bits == 0))
			return -EINVAL;
		none |= srcs[i].bits == 0;
		*bits |= srcs[i].bits;
		if (srcs[i].bits != 0 && order != NULL)
			order[k] = srcs[i].bits;
		k += srcs[i].bits != 0;
		s += len;
	}
	if (none && *bits != 0)
		return -EINVAL;
	if (n != NULL)
		*n = k;
	return 0;
}

/* The url source: a template that expands to http(s) URLs, and curl to fetch them. */
static int
load_url(struct agent_config *cfg, char **cause)
{
	char *sub = NULL;

	cpx_env_str("CLUSTERPLEX_CODEC_URL", "https://downloads.plex.tv/codecs/"
	    "{version}/{arch}/{file}", &cfg->codec_url);
	if (agent_codec_url_check(cfg->codec_url, &sub) != 0) {
		cpx_set_cause(cause, "CLUSTERPLEX_CODEC_URL: %s", sub);
		free(sub);
		return -EINVAL;
	}
	if ((cfg->codec_sources & AGENT_SRC_URL) &&
	    (cfg->curl = agent_curl_find()) == NULL) {
		cpx_set_cause(cause, "CLUSTERPLEX_CODEC_SOURCES has url, which "
		    "downloads with curl, and curl is not installed (not in PATH "
		    "nor /usr/bin)");
		return -EINVAL;
	}
	return 0;
}

static int
load_sources(struct agent_config *cfg, char **cause)
{
	char *v = NULL;
	int error = 0;

	cpx_env_str("CLUSTERPLEX_CODEC_SOURCES", "pms", &v);
	if (agent_parse_sources(v, &cfg->codec_sources, cfg->codec_order,
	    &cfg->ncodec_order) != 0) {
		cpx_set_cause(cause, "CLUSTERPLEX_CODEC_SOURCES=\"%s\" is not "
		    "none or a list of pms and url (e.g. pms,url)", v);
		error = -EINVAL;
	}
	free(v);
	cfg->codec_cpu = cpx_xstrdup(cpx_codec_cpu());
	if (error == 0 && !cpx_cpu_name_valid(cfg->codec_cpu)) {
		cpx_set_cause(cause, "CLUSTERPLEX_CODEC_CPU=\"%s\" is not a CPU "
		    "name as in Plex's codec sets (x86_64, aarch64, armv7neon)",
		    cfg->codec_cpu);
		error = -EINVAL;
	}
	return error != 0 ? error : load_url(cfg, cause);
}

static int
load_codecs(struct agent_config *cfg, char **cause)
{
	char *def = cpx_xprintf("%s/eae", cfg->run_dir);

	cpx_env_str("CLUSTERPLEX_CODEC_CACHE", "/var/cache/clusterplex/codecs",
	    &cfg->codec_cache);
	cfg->codec_dirs = cpx_env_value("CLUSTERPLEX_CODEC_DIRS");
	cfg->eae_path = cpx_env_value("CLUSTERPLEX_EAE_PATH");
	cpx_env_str("CLUSTERPLEX_EAE_DIR", def, &cfg->eae_dir);
	free(def);
	if (load_sources(cfg, cause) != 0)
		return -EINVAL;
	if (cfg->codec_cache[0] != '/' || cfg->eae_dir[0] != '/' ||
	    (cfg->eae_path != NULL && cfg->eae_path[0] != '/')) {
		cpx_set_cause(cause, "CLUSTERPLEX_CODEC_CACHE, CLUSTERPLEX_EAE_DIR "
		    "and CLUSTERPLEX_EAE_PATH must be absolute paths");
		return -EINVAL;
	}
	if (cpx_env_long("CLUSTERPLEX_CODEC_TIMEOUT_MS", 300000, 1000,
	    3600000, &cfg->codec_timeout_ms, cause) != 0 ||
	    cpx_env_long("CLUSTERPLEX_CODEC_MAX_MB", 1024, 1, 2048,
	    &cfg->codec_max_mb, cause) != 0 ||
	    cpx_env_long("CLUSTERPLEX_EAE_IDLE_MS", 60000, 100, 86400000,
	    &cfg->eae_idle_ms, cause) != 0)
		return -EINVAL;
	return 0;
}

static int
load_common(struct agent_config *cfg, char **cause)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int off = 0;

	cfg->name = cpx_env_value("CLUSTERPLEX_WORKER_NAME");
	if (cfg->name == NULL)
		cfg->name = default_name();
	cpx_env_str("CLUSTERPLEX_TRANSCODE_DIR", "/transcode", &cfg->root);
	cpx_env_str("CLUSTERPLEX_RUN_DIR", "/run/clusterplex", &cfg->run_dir);
	cfg->transcoder = transcoder_path();
	cfg->hwaccel = cpx_env_value("FFMPEG_HWACCEL");
	if (cfg->hwaccel != NULL && cpx_parse_bool(cfg->hwaccel, &off) == 0 &&
	    !off) {
		free(cfg->hwaccel);
		cfg->hwaccel = NULL;
	}
	if (cfg->root[0] != '/') {
		cpx_set_cause(cause, "CLUSTERPLEX_TRANSCODE_DIR=\"%s\" must be "
		    "an absolute path", cfg->root);
		return -EINVAL;
	}
	if (load_path_map(cfg, cause) != 0 || load_codecs(cfg, cause) != 0)
		return -EINVAL;
	if (cpx_env_long("CLUSTERPLEX_LINK_TIMEOUT_MS", 10000, 1000, 600000,
	    &cfg->link_timeout_ms, cause) != 0 ||
	    cpx_env_long("CLUSTERPLEX_MIN_FREE_MB", 100, 0, 1048576,
	    &cfg->min_free_mb, cause) != 0)
		return -EINVAL;
	return cpx_env_long("CLUSTERPLEX_MAX_TASKS", cpus > 0 ? cpus : 1, 1,
	    1024, &cfg->max_tasks, cause);
}

static int
load_serve(struct agent_config *cfg, char **cause)
{
	cfg->orchestrator_url = cpx_env_value("ORCHESTRATOR_URL");
	if (cfg->orchestrator_url == NULL) {
		cpx_set_cause(cause, "ORCHESTRATOR_URL is not set (e.g. "
		    "http://dispatcher:3500)");
		return -EINVAL;
	}
	cfg->token = cpx_env_value("CLUSTERPLEX_TOKEN");
	cfg->ssh_address = cpx_env_value("CLUSTERPLEX_SSH_ADDRESS");
	cfg->ssh_user = cpx_env_value("CLUSTERPLEX_SSH_USER");
	if (cfg->ssh_user == NULL)
		cfg->ssh_user = current_user();
	cpx_env_str("CLUSTERPLEX_HOST_KEY_FILE",
	    "/etc/ssh/ssh_host_ed25519_key.pub", &cfg->host_key_file);
	cfg->caps = cpx_env_value("CLUSTERPLEX_CAPS");
	cfg->labels = cpx_env_value("CLUSTERPLEX_LABELS");
	if (cpx_env_long("LISTENING_PORT", 3501, 1, 65535, &cfg->listen_port,
	    cause) != 0)
		return -EINVAL;
	return cpx_env_long("STAT_CPU_INTERVAL", 2000, 100, 600000,
	    &cfg->heartbeat_ms, cause);
}

/* Fills *cfg from the environment; on failure *cause says which value is wrong. */
int
agent_config_load(struct agent_config *cfg, int serve, char **cause)
{
	int error;

	memset(cfg, 0, sizeof *cfg);
	error = load_common(cfg, cause);
	if (error == 0 && serve)
		error = load_serve(cfg, cause);
	return error;
}

void
agent_config_free(struct agent_config *cfg)
{
	free(cfg->name);
	free(cfg->root);
	free(cfg->transcoder);
	free(cfg->run_dir);
	free(cfg->hwaccel);
	agent_path_map_free(&cfg->path_map);
	free(cfg->codec_cache);
	free(cfg->codec_dirs);
	free(cfg->codec_url);
	free(cfg->codec_cpu);
	free(cfg->curl);
	free(cfg->eae_path);
	free(cfg->eae_dir);
	free(cfg->orchestrator_url);
	free(cfg->token);
	free(cfg->ssh_address);
	free(cfg->ssh_user);
	free(cfg->host_key_file);
	free(cfg->caps);
	free(cfg->labels);
	memset(cfg, 0, sizeof *cfg);
}

static int
valid_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return 0;
	for (i = 1; i < n; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return 0;
	}
	return 1;
}

static int
parse_line(const char *line, size_t n, size_t lineno,
    int (*set)(const char *, const char *, void *), void *arg, char **cause)
{
	const char *eq;
	char *name, *value;
	int error;

	while (n > 0 && isspace((unsigned char)*line))
		line++, n--;
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		n--;
	if (n == 0 || line[0] == '#')
		return 0;
	if (n > 7 && strncmp(line, "export ", 7) == 0)
		line += 7, n -= 7;
	eq = memchr(line, '=', n);
	if (eq == NULL || !valid_name(line, (size_t)(eq - line)) ||
	    memchr(line, '\0', n) != NULL) {
		cpx_set_cause(cause, "line %zu is not NAME=value", lineno);
		return -EINVAL;
	}
	name = cpx_xstrndup(line, (size_t)(eq - line));
	value = cpx_xstrndup(eq + 1, n - (size_t)(eq - line) - 1);
	error = set(name, value, arg);
	free(name);
	free(value);
	return error;
}

/*
 * Parses NAME=value lines (blank lines and # comments ignored, an
 * optional "export " prefix allowed) and calls set() for each. Quotes are
 * kept; cpx_env_value strips one layer when the value is read.
 */
int
agent_env_file_parse(const char *text, size_t len,
    int (*set)(const char *name, const char *value, void *arg), void *arg,
    char **cause)
{
	size_t off = 0, lineno = 0;
	int error;

	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;

		lineno++;
		error = parse_line(text + off, n, lineno, set, arg, cause);
		if (error != 0)
			return error;
		off += n + (nl != NULL);
	}
	return 0;
}

static int
set_env(const char *name, const char *value, void *arg)
{
	return setenv(name, value, 1) == 0 ? 0 : -errno;
}

/* Loads an env file into the environment; its values replace inherited ones. */
int
agent_env_file_load(const char *path, char **cause)
{
	char *text = NULL, *sub = NULL;
	size_t len;
	int error;

	error = cpx_read_file(path, ENV_FILE_MAX, &text, &len);
	if (error != 0) {
		cpx_set_cause(cause, "%s: %s", path, strerror(-error));
		return error;
	}
	error = agent_env_file_parse(text, len, set_env, NULL, &sub);
	if (error != 0)
		cpx_set_cause(cause, "%s: %s", path, sub);
	free(sub);
	free(text);
	return error;
}
