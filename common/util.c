/* util.c — allocation, time, encodings and path checks used everywhere. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cpx.h"

void *
cpx_xmalloc(size_t n)
{
	void *p = malloc(n == 0 ? 1 : n);

	if (p == NULL)
		cpx_fatal("out of memory (%zu bytes)", n);
	return p;
}

void *
cpx_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);

	if (p == NULL)
		cpx_fatal("out of memory (%zu x %zu bytes)", n, size);
	return p;
}

void *
cpx_xrealloc(void *p, size_t n)
{
	p = realloc(p, n == 0 ? 1 : n);
	if (p == NULL)
		cpx_fatal("out of memory (%zu bytes)", n);
	return p;
}

char *
cpx_xstrdup(const char *s)
{
	return cpx_xstrndup(s, strlen(s));
}

char *
cpx_xstrndup(const char *s, size_t n)
{
	char *p = cpx_xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
cpx_xprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		cpx_fatal("out of memory");
	va_end(ap);
	return s;
}

/* Sets *cause (if cause is not NULL) to a new message; caller frees. */
void
cpx_set_cause(char **cause, const char *fmt, ...)
{
	va_list ap;

	if (cause == NULL)
		return;
	free(*cause);
	va_start(ap, fmt);
	if (vasprintf(cause, fmt, ap) < 0)
		cpx_fatal("out of memory");
	va_end(ap);
}

uint64_t
cpx_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t
cpx_now_ms(void)
{
	return cpx_now_us() / 1000;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
int
cpx_utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		size_t len, k;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07;
		} else {
			return 0;
		}
		if (i + len > n)
			return 0;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Returns a new NUL-terminated base64 string; caller frees. */
char *
cpx_b64_encode(const uint8_t *data, size_t n)
{
	char *out = cpx_xmalloc((n + 2) / 3 * 4 + 1), *o = out;
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16 | data[i + 1] << 8 |
		    data[i + 2];
		*o++ = b64_alphabet[v >> 18];
		*o++ = b64_alphabet[(v >> 12) & 63];
		*o++ = b64_alphabet[(v >> 6) & 63];
		*o++ = b64_alphabet[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)data[i] << 16;

		if (i + 1 < n)
			v |= data[i + 1] << 8;
		*o++ = b64_alphabet[v >> 18];
		*o++ = b64_alphabet[(v >> 12) & 63];
		*o++ = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

static int
b64_value(char c)
{
	const char *p = strchr(b64_alphabet, c);

	return (c != '\0' && p != NULL) ? (int)(p - b64_alphabet) : -1;
}

/*
 * Decodes padded base64. On success *out is a new buffer (NUL-terminated
 * for convenience, the terminator not counted); caller frees.
 */
int
cpx_b64_decode(const char *s, size_t slen, uint8_t **out, size_t *outlen)
{
	uint8_t *o;
	size_t i, n = 0, pad = 0;

	if (slen % 4 != 0)
		return -EINVAL;
	if (slen > 0 && s[slen - 1] == '=')
		pad++;
	if (slen > 1 && s[slen - 2] == '=')
		pad++;
	o = cpx_xmalloc(slen / 4 * 3 + 1);
	for (i = 0; i < slen; i += 4) {
		int v[4], k;
		int last = (i + 4 == slen);

		for (k = 0; k < 4; k++) {
			if (last && k >= 4 - (int)pad) {
				v[k] = 0;
				continue;
			}
			if ((v[k] = b64_value(s[i + k])) < 0) {
				free(o);
				return -EINVAL;
			}
		}
		o[n++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
		if (!last || pad < 2)
			o[n++] = (uint8_t)(v[1] << 4 | v[2] >> 2);
		if (!last || pad < 1)
			o[n++] = (uint8_t)(v[2] << 6 | v[3]);
	}
	o[n] = '\0';
	*out = o;
	*outlen = n;
	return 0;
}

/* Compares secrets in time independent of where they differ. */
int
cpx_ct_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;
	unsigned char diff = (la != lb);

	for (i = 0; i < la; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)b[lb ? i % lb : 0];
	return diff == 0;
}

/*
 * True when `path` is a non-empty relative path whose every component is
 * a real name: no leading '/', no "", "." or ".." components.
 */
int
cpx_path_clean_relative(const char *path)
{
	const char *p = path;

	if (*p == '\0' || *p == '/' || strlen(path) >= 4096)
		return 0;
	for (;;) {
		size_t n = strcspn(p, "/");

		if (n == 0 || n > 255 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (p[n] == '\0')
			return 1;
		p += n + 1;
	}
}

/*
 * True when absolute `path` lies strictly below `root` on a component
 * boundary; *rest then points at the relative remainder inside `path`.
 */
int
cpx_path_under(const char *path, const char *root, const char **rest)
{
	size_t n = strlen(root);

	while (n > 1 && root[n - 1] == '/')
		n--;
	if (path[0] != '/' || strncmp(path, root, n) != 0)
		return 0;
	if (n == 1 && root[0] == '/')
		n = 0;
	if (path[n] != '/' || path[n + 1] == '\0')
		return 0;
	if (rest != NULL)
		*rest = path + n + 1;
	return 1;
}

/*
 * Returns a printable copy of `s` (n bytes) for logs: non-printable bytes
 * become \xNN, and the result is cut after `max` input bytes. Caller frees.
 */
char *
cpx_escape(const char *s, size_t n, size_t max)
{
	size_t i, lim = n < max ? n : max;
	char *out = cpx_xmalloc(lim * 4 + 4), *o = out;

	for (i = 0; i < lim; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '\\')
			o += sprintf(o, "\\x%02x", c);
		else
			*o++ = (char)c;
	}
	if (lim < n)
		o += sprintf(o, "...");
	*o = '\0';
	return out;
}

int
cpx_set_cloexec(int fd)
{
	int flags = fcntl(fd, F_GETFD);

	if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

int
cpx_set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* Closes both ends of a pipe that are open (>= 0) and marks them closed. */
void
cpx_close_pair(int p[2])
{
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	p[0] = p[1] = -1;
}

/* Writes everything, retrying on EINTR; returns n or -errno. */
ssize_t
cpx_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	size_t done = 0;

	while (done < n) {
		ssize_t w = write(fd, p + done, n - done);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)w;
	}
	return (ssize_t)n;
}

/* Reads a whole file of at most `max` bytes; *out is NUL-terminated, caller frees. */
int
cpx_read_file(const char *path, size_t max, char **out, size_t *outlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), error = 0;
	size_t len = 0, cap = 4096;
	char *buf = NULL;

	if (fd < 0)
		return -errno;
	buf = cpx_xmalloc(cap + 1);
	for (;;) {
		ssize_t r;

		if (len == cap) {
			if (cap >= max) {
				error = -EFBIG;
				goto out;
			}
			cap = cap * 2 > max ? max : cap * 2;
			buf = cpx_xrealloc(buf, cap + 1);
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			error = -errno;
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	*out = buf;
	buf = NULL;
	if (outlen != NULL)
		*outlen = len;
out:
	free(buf);
	close(fd);
	return error;
}

int
cpx_mkdir_p(const char *path, mode_t mode)
{
	char *copy = cpx_xstrdup(path), *p;
	int error = 0;

	for (p = copy + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;

		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST) {
			error = -errno;
			break;
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	free(copy);
	return error;
}
