/* log.c — one line per event, with a level, to stderr; secrets never printed. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cpx.h"

#define LOG_LINE_MAX 4096
#define MAX_SECRETS 8

static const char *log_prog = "clusterplex";
static enum cpx_log_level log_level = CPX_LOG_INFO;
static char *log_secrets[MAX_SECRETS];
static int log_nsecrets;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/*
 * Reads CLUSTERPLEX_LOG_LEVEL and registers the tokens found in the
 * environment as secrets, so that no later log line can print them, even
 * inside a URL or an argv that is being logged.
 */
void
cpx_log_init(const char *progname)
{
	const char *level = getenv("CLUSTERPLEX_LOG_LEVEL");
	enum cpx_log_level parsed;

	log_prog = progname;
	if (level != NULL && cpx_log_parse_level(level, &parsed) == 0)
		log_level = parsed;
	cpx_log_add_secret(getenv("X_PLEX_TOKEN"));
	cpx_log_add_secret(getenv("CLUSTERPLEX_TOKEN"));
}

void
cpx_log_set_level(enum cpx_log_level level)
{
	log_level = level;
}

int
cpx_log_parse_level(const char *s, enum cpx_log_level *out)
{
	size_t i;

	for (i = 0; i < CPX_ARRAY_SIZE(level_names); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum cpx_log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = CPX_LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

void
cpx_log_add_secret(const char *secret)
{
	int i;

	/* Very short values would redact half of every line; refuse them. */
	if (secret == NULL || strlen(secret) < 4 || log_nsecrets == MAX_SECRETS)
		return;
	for (i = 0; i < log_nsecrets; i++) {
		if (strcmp(log_secrets[i], secret) == 0)
			return;
	}
	log_secrets[log_nsecrets++] = cpx_xstrdup(secret);
}

static void
mask_span(char *start, size_t n)
{
	memset(start, '*', n);
}

/* Masks the value after every occurrence of `key` up to a delimiter. */
static void
mask_after(char *line, const char *key, const char *stop)
{
	char *p = line;
	size_t klen = strlen(key);

	while ((p = strcasestr(p, key)) != NULL) {
		p += klen;
		mask_span(p, strcspn(p, stop));
	}
}

/*
 * Rewrites `line` in place so that no registered secret and no Plex token
 * in a URL query or header survives. Masking keeps the length, so the
 * surrounding text stays readable.
 */
void
cpx_log_redact(char *line)
{
	int i;
	char *p;

	for (i = 0; i < log_nsecrets; i++) {
		size_t n = strlen(log_secrets[i]);

		while ((p = strstr(line, log_secrets[i])) != NULL)
			mask_span(p, n);
	}
	mask_after(line, "X-Plex-Token=", "&# \"'");
	mask_after(line, "X-Plex-Token: ", "\r\n\"'");
	mask_after(line, "X_PLEX_TOKEN=", " \"'");
	mask_after(line, "CLUSTERPLEX_TOKEN=", " \"'");
	mask_after(line, "Authorization: Bearer ", "\r\n\"'");
}

/*
 * A line cut at LOG_LINE_MAX may end inside a secret, where the search for
 * the whole secret cannot see it: mask any start of a secret that ends it.
 */
static void
redact_cut(char *line)
{
	size_t len = strlen(line), n, k;
	int i;

	for (i = 0; i < log_nsecrets; i++) {
		n = strlen(log_secrets[i]);
		for (k = n - 1; k > 0; k--) {
			if (k <= len && memcmp(line + len - k, log_secrets[i],
			    k) == 0) {
				mask_span(line + len - k, k);
				break;
			}
		}
	}
}

static size_t
format_prefix(char *buf, size_t size, enum cpx_log_level level,
    const char *func)
{
	struct timeval tv;
	struct tm tm;
	size_t n;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(buf + n, size - n, ".%03ldZ %s[%ld] %s %s: ",
	    (long)(tv.tv_usec / 1000), log_prog, (long)getpid(),
	    level_names[level], func);
	return n < size ? n : size - 1;
}

/* A log line is one line: control characters become spaces. */
static void
flatten(char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20)
			*s = ' ';
	}
}

void
cpx_logv(enum cpx_log_level level, const char *func, const char *fmt,
    va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t n;
	int saved = errno, cut;

	if (level > log_level)
		return;
	n = format_prefix(line, sizeof line - 1, level, func);
	cut = vsnprintf(line + n, sizeof line - n - 1, fmt, ap) >=
	    (int)(sizeof line - n - 1);
	flatten(line + n);
	cpx_log_redact(line);
	if (cut)
		redact_cut(line);
	n = strlen(line);
	line[n++] = '\n';
	(void)cpx_write_all(STDERR_FILENO, line, n);
	errno = saved;
}

void
cpx_log(enum cpx_log_level level, const char *func, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cpx_logv(level, func, fmt, ap);
	va_end(ap);
}

void
cpx_fatal_impl(const char *func, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cpx_logv(CPX_LOG_ERROR, func, fmt, ap);
	va_end(ap);
	abort();
}
