/* codec_cache_url.c — downloads of a codec set: the URL template, the file list, curl's argv. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agent.h"
#include "cpx-protocol.h"

/*
 * Plex serves each library of a codec set as its own file:
 * https://downloads.plex.tv/codecs/<version>/<arch>/<lib>.so, where the
 * version and the arch are the two halves of the set's name
 * ("8bf330d-2818" and "linux-aarch64-standard"). CLUSTERPLEX_CODEC_URL is
 * that URL with {version}, {arch} and {file} in it. Which files a set has
 * comes from PMS's own set of the same version (its names), never from
 * scraping a binary or a web page.
 *
 * The transfer is curl's (HTTPS needs a TLS stack we do not otherwise
 * carry): started with execve, an argv and no shell, reading no
 * configuration file (-q), restricted to http and https, bounded in time
 * and size, and writing to its stdout only, which the agent reads, counts,
 * hashes and writes into the set's temporary folder itself.
 */

#define URL_MAX 2048
#define CONNECT_S 10L
#define MAX_REDIRS "5"

static const char *const placeholders[] = { "{version}", "{arch}", "{file}" };

/* Index of the placeholder at s, or -1. */
static int
placeholder_at(const char *s)
{
	size_t i;

	for (i = 0; i < CPX_ARRAY_SIZE(placeholders); i++) {
		if (strncmp(s, placeholders[i], strlen(placeholders[i])) == 0)
			return (int)i;
	}
	return -1;
}

static size_t
scheme_len(const char *s)
{
	if (strncasecmp(s, "https://", 8) == 0)
		return 8;
	if (strncasecmp(s, "http://", 7) == 0)
		return 7;
	return 0;
}

/*
 * A template is an http or https URL with a host, printable ASCII without
 * blanks, whose only braces are {version}, {arch} and {file}; {file} is
 * required (every file needs its own URL).
 */
int
agent_codec_url_check(const char *tmpl, char **cause)
{
	size_t i, n = strlen(tmpl), skip = scheme_len(tmpl);
	int p, file = 0;

	if (skip == 0 || n > URL_MAX || tmpl[skip] == '\0' ||
	    tmpl[skip] == '/' || tmpl[skip] == '{') {
		cpx_set_cause(cause, "not an http:// or https:// URL with a host "
		    "(at most %d characters)", URL_MAX);
		return -EINVAL;
	}
	for (i = skip; i < n; i++) {
		unsigned char c = (unsigned char)tmpl[i];

		if (c <= 0x20 || c >= 0x7f) {
			cpx_set_cause(cause, "blanks, control characters and "
			    "non-ASCII are not allowed (percent-encode them)");
			return -EINVAL;
		}
		if (c == '}') {
			cpx_set_cause(cause, "a '}' outside {version}, {arch} "
			    "or {file}");
			return -EINVAL;
		}
		if (c != '{')
			continue;
		if ((p = placeholder_at(tmpl + i)) < 0) {
			cpx_set_cause(cause, "only {version}, {arch} and {file} "
			    "may appear in braces");
			return -EINVAL;
		}
		file |= p == 2;
		i += strlen(placeholders[p]) - 1;
	}
	if (!file) {
		cpx_set_cause(cause, "{file} is missing");
		return -EINVAL;
	}
	return 0;
}

/* RFC 3986 unreserved characters pass, every other byte is percent-encoded. */
static void
add_encoded(struct cpx_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
		    c == '~') {
			cpx_buf_add_u8(b, c);
		} else {
			cpx_buf_add_u8(b, '%');
			cpx_buf_add_u8(b, (uint8_t)hex[c >> 4]);
			cpx_buf_add_u8(b, (uint8_t)hex[c & 15]);
		}
	}
}

/* The URL of one file; the template was checked (agent_codec_url_check). Caller frees. */
char *
agent_codec_url(const char *tmpl, const char *version, const char *arch,
    const char *file)
{
	const char *values[] = { version, arch, file };
	struct cpx_buf b;
	int p;

	cpx_buf_init(&b);
	while (*tmpl != '\0') {
		if (*tmpl == '{' && (p = placeholder_at(tmpl)) >= 0) {
			add_encoded(&b, values[p]);
			tmpl += strlen(placeholders[p]);
		} else {
			cpx_buf_add_u8(&b, (uint8_t)*tmpl++);
		}
	}
	return cpx_buf_cstr(&b);
}

/*
 * A URL as logs and error lines show it: without user:password@ and
 * without the query (where a token would be), which becomes "?...".
 * Caller frees.
 */
char *
agent_codec_url_shown(const char *url)
{
	size_t skip = scheme_len(url), auth, q;
	const char *host = url + skip, *p;

	auth = skip + strcspn(url + skip, "/?#");
	for (p = url + skip; p < url + auth; p++) {
		if (*p == '@')
			host = p + 1;
	}
	q = strcspn(url, "?#");
	return cpx_xprintf("%.*s%.*s%s", (int)skip, url, (int)(url + q - host),
	    host, url[q] != '\0' ? "?..." : "");
}

/* "linux-aarch64-standard": the set's name without its version; NULL without a CPU. */
char *
agent_codec_arch(const struct cpx_codec_set *s)
{
	if (s->cpu == NULL)
		return NULL;
	return cpx_xprintf("linux-%s%s%s", s->cpu, s->variant != NULL ? "-" : "",
	    s->variant != NULL ? s->variant : "");
}

/*
 * Which entries of PMS's set are downloaded: the libraries at its top,
 * "<lib>.so" as Plex names them. Subfolders (an EasyAudioEncoder that
 * came with the set) and other files are not Plex's per-library
 * downloads.
 */
int
agent_codec_is_lib(const char *path)
{
	size_t n = strlen(path);

	return n > 3 && n <= 255 && strchr(path, '/') == NULL &&
	    path[0] != '.' && strcmp(path + n - 3, ".so") == 0 &&
	    cpx_set_name_valid(path);
}

static int
executable(const char *dir, size_t n, char **out)
{
	char *path = cpx_xprintf("%.*s/curl", (int)n, dir);

	if (n > 0 && dir[0] == '/' && access(path, X_OK) == 0) {
		*out = path;
		return 1;
	}
	free(path);
	return 0;
}

/* curl's absolute path: PATH (an sshd forced command's is short), then /usr/bin, /bin. */
char *
agent_curl_find(void)
{
	const char *path = getenv("PATH"), *p;
	char *out = NULL;
	size_t n;

	for (p = path; p != NULL && *p != '\0'; p += n + (p[n] == ':')) {
		n = strcspn(p, ":");
		if (executable(p, n, &out))
			return out;
	}
	if (executable("/usr/bin", 8, &out) || executable("/bin", 4, &out) ||
	    executable("/usr/local/bin", 14, &out))
		return out;
	return NULL;
}

/*
 * curl's argv for one file. --fail: an HTTP error is an error, not a body;
 * --proto: http and https only, and a redirect never leaves https for
 * http; --max-filesize: a size the server announces above what the set
 * may still take fails at once (the agent counts the bytes too, for a
 * server that announces none); --max-time: what is left of
 * CLUSTERPLEX_CODEC_TIMEOUT_MS. Caller frees (agent_strv_free).
 */
char **
agent_curl_argv(const char *curl, const char *url, uint64_t max_bytes,
    uint64_t timeout_ms)
{
	long secs = (long)((timeout_ms + 999) / 1000);
	const char *fixed[] = { "-q", "--silent", "--show-error", "--fail",
		"--globoff", "--proto", "=https,http", "--proto-redir",
		strncasecmp(url, "https:", 6) == 0 ? "=https" : "=https,http",
		"--location", "--max-redirs", MAX_REDIRS, "--user-agent",
		"clusterplex/" CPX_VERSION, "--output", "-" };
	size_t i, k = 0, n = CPX_ARRAY_SIZE(fixed) + 10;
	char **v = cpx_xcalloc(n, sizeof *v);

	if (secs < 1)
		secs = 1;
	v[k++] = cpx_xstrdup(curl);
	for (i = 0; i < CPX_ARRAY_SIZE(fixed); i++)
		v[k++] = cpx_xstrdup(fixed[i]);
	v[k++] = cpx_xstrdup("--connect-timeout");
	v[k++] = cpx_xprintf("%ld", secs < CONNECT_S ? secs : CONNECT_S);
	v[k++] = cpx_xstrdup("--max-time");
	v[k++] = cpx_xprintf("%ld", secs);
	v[k++] = cpx_xstrdup("--max-filesize");
	v[k++] = cpx_xprintf("%llu", (unsigned long long)max_bytes);
	v[k++] = cpx_xstrdup("--url");
	v[k++] = cpx_xstrdup(url);
	v[k] = NULL;
	return v;
}

/*
 * curl's environment: proxies and CA locations the worker set, nothing
 * else (no HOME: no ~/.netrc or ~/.curlrc either). Caller frees.
 */
char **
agent_curl_env(char *const *environ_)
{
	static const char *const keep[] = { "http_proxy", "https_proxy",
		"HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY",
		"SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE" };
	size_t i, k, n = 0, len;
	char **v;

	for (i = 0; environ_ != NULL && environ_[i] != NULL; i++)
		n++;
	v = cpx_xcalloc(n + 1, sizeof *v);
	for (i = 0, n = 0; environ_ != NULL && environ_[i] != NULL; i++) {
		for (k = 0; k < CPX_ARRAY_SIZE(keep); k++) {
			len = strlen(keep[k]);
			if (strncmp(environ_[i], keep[k], len) == 0 &&
			    environ_[i][len] == '=') {
				v[n++] = cpx_xstrdup(environ_[i]);
				break;
			}
		}
	}
	v[n] = NULL;
	return v;
}
