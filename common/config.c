/* config.c — environment values, validated at start-up with a clear message. */

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cpx.h"

/*
 * Returns the trimmed value of an environment variable with one layer of
 * matching quotes removed, or NULL when unset or empty. Compose files
 * often carry `VAR="value"` into the environment literally; ClusterPlex
 * crashed on exactly that. Caller frees.
 */
char *
cpx_env_value(const char *name)
{
	const char *v = getenv(name);
	size_t n;

	if (v == NULL)
		return NULL;
	while (isspace((unsigned char)*v))
		v++;
	n = strlen(v);
	while (n > 0 && isspace((unsigned char)v[n - 1]))
		n--;
	if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
		v++;
		n -= 2;
	}
	if (n == 0)
		return NULL;
	return cpx_xstrndup(v, n);
}

int
cpx_env_str(const char *name, const char *def, char **out)
{
	char *v = cpx_env_value(name);

	*out = v != NULL ? v : (def != NULL ? cpx_xstrdup(def) : NULL);
	return 0;
}

int
cpx_parse_bool(const char *value, int *out)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };
	size_t i;

	for (i = 0; i < CPX_ARRAY_SIZE(yes); i++) {
		if (strcasecmp(value, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(value, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -EINVAL;
}

int
cpx_env_bool(const char *name, int def, int *out, char **cause)
{
	char *v = cpx_env_value(name);
	int error = 0;

	*out = def;
	if (v != NULL && cpx_parse_bool(v, out) != 0) {
		cpx_set_cause(cause, "%s=\"%s\" is not a boolean "
		    "(use true/false, yes/no, on/off or 1/0)", name, v);
		error = -EINVAL;
	}
	free(v);
	return error;
}

int
cpx_env_long(const char *name, long def, long min, long max, long *out,
    char **cause)
{
	char *v = cpx_env_value(name), *end;
	long n;
	int error = 0;

	*out = def;
	if (v == NULL)
		return 0;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || end == v) {
		cpx_set_cause(cause, "%s=\"%s\" is not a number", name, v);
		error = -EINVAL;
	} else if (n < min || n > max) {
		cpx_set_cause(cause, "%s=%ld is out of range (%ld to %ld)",
		    name, n, min, max);
		error = -ERANGE;
	} else {
		*out = n;
	}
	free(v);
	return error;
}

/* *out is the index of the matching choice (case-insensitive). */
int
cpx_env_enum(const char *name, const char *def, const char *const *choices,
    int *out, char **cause)
{
	char *v = cpx_env_value(name);
	const char *s = v != NULL ? v : def;
	struct cpx_buf list;
	int i, error = -EINVAL;

	for (i = 0; choices[i] != NULL; i++) {
		if (strcasecmp(s, choices[i]) == 0) {
			*out = i;
			error = 0;
			goto out;
		}
	}
	cpx_buf_init(&list);
	for (i = 0; choices[i] != NULL; i++)
		cpx_buf_printf(&list, "%s%s", i ? ", " : "", choices[i]);
	cpx_set_cause(cause, "%s=\"%s\" is not one of: %s", name, s,
	    cpx_buf_cstr(&list));
	cpx_buf_free(&list);
out:
	free(v);
	return error;
}

static int
parse_port(const char *s, size_t n, int *port)
{
	long v = 0;
	size_t i;

	if (n == 0 || n > 5)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -EINVAL;
	*port = (int)v;
	return 0;
}

/*
 * "host", "host:port", "[v6]" or "[v6]:port". *host is new (caller frees).
 */
int
cpx_parse_hostport(const char *s, int defport, char **host, int *port,
    char **cause)
{
	const char *colon, *end;

	*port = defport;
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (end == NULL || end == s + 1)
			goto bad;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			goto bad;
		s++;
	} else {
		colon = strrchr(s, ':');
		end = colon != NULL ? colon : s + strlen(s);
		if (colon != NULL && strchr(s, ':') != colon)
			goto bad;
	}
	if (end == s || memchr(s, '/', (size_t)(end - s)) != NULL)
		goto bad;
	if (colon != NULL && parse_port(colon + 1, strlen(colon + 1), port) != 0)
		goto bad;
	*host = cpx_xstrndup(s, (size_t)(end - s));
	return 0;
bad:
	cpx_set_cause(cause, "\"%s\" is not host[:port]", s);
	return -EINVAL;
}

/*
 * Parses "http://host[:port][/path]". Only plain http: the dispatcher API
 * is meant for a private network or loopback (TLS belongs to a proxy).
 * *host and *path are new (caller frees); path defaults to "".
 */
int
cpx_parse_url(const char *url, char **host, int *port, char **path,
    char **cause)
{
	const char *rest, *slash;
	char *hostport = NULL;
	int error;

	if (strncasecmp(url, "http://", 7) != 0) {
		cpx_set_cause(cause, "\"%s\" is not an http:// URL", url);
		return -EINVAL;
	}
	rest = url + 7;
	slash = strchr(rest, '/');
	hostport = cpx_xstrndup(rest, slash ? (size_t)(slash - rest) : strlen(rest));
	error = cpx_parse_hostport(hostport, 80, host, port, NULL);
	if (error != 0) {
		cpx_set_cause(cause, "\"%s\" has no valid host[:port]", url);
		goto out;
	}
	*path = cpx_xstrdup(slash ? slash : "");
	/* A trailing slash would double up when endpoints are appended. */
	while (strlen(*path) > 0 && (*path)[strlen(*path) - 1] == '/')
		(*path)[strlen(*path) - 1] = '\0';
out:
	free(hostport);
	return error;
}
