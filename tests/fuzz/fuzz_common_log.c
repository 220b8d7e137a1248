/*
 * fuzz_common_log.c — log lines built from hostile text must not carry a
 * token: neither a registered secret (CLUSTERPLEX_TOKEN, X_PLEX_TOKEN),
 * nor a piece of one that a long line's truncation cut in two, nor a Plex
 * token in a URL query or header.
 *
 * The first byte picks how much padding comes first (so the secret lands
 * on every position, the end of a 4 KiB line included), the rest is the
 * message, logged around the secret and the token patterns. What the
 * logger writes to stderr is captured and searched.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cpx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "cpx-secret-3f9a2b7c41d0e8a65b1c"
#define PLEX "plexTok-9d8c7b6a"

static char pad[8192];

/* A piece of SECRET of at least `min` bytes ending the line: a leak. */
static int
has_piece(const char *line, size_t len, size_t min)
{
	size_t n = strlen(SECRET), k;

	for (k = min; k < n && k <= len; k++) {
		if (memcmp(line + len - k, SECRET, k) == 0)
			return 1;
	}
	return 0;
}

static void
check(const char *out, size_t len)
{
	const char *line = out, *end;

	if (memmem(out, len, SECRET, strlen(SECRET)) != NULL ||
	    memmem(out, len, PLEX, strlen(PLEX)) != NULL)
		abort();
	while (line < out + len) {
		end = memchr(line, '\n', (size_t)(out + len - line));
		if (end == NULL)
			end = out + len;
		/* A line cut at the logger's limit (4094 bytes and its
		   newline) must not end in a piece of the secret: the rest of
		   it was cut off, so the search for the whole one missed it. */
		if (end - line >= 4094 && has_piece(line, (size_t)(end - line), 4))
			abort();
		line = end + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	char *msg, out[65536];
	size_t npad;
	ssize_t n;
	int saved;

	if (fd < 0) {
		fd = memfd_create("fuzz-log", 0);
		/* As cpx_log_init() registers both tokens of the environment. */
		cpx_log_add_secret(SECRET);
		cpx_log_add_secret(PLEX);
		memset(pad, 'x', sizeof pad);
	}
	if (size < 1 || size > 8192)
		return 0;
	npad = (size_t)data[0] * 17 % 4200;
	msg = cpx_xstrndup((const char *)data + 1, size - 1);
	ftruncate(fd, 0);
	lseek(fd, 0, SEEK_SET);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	cpx_info("%.*s%s%s", (int)npad, pad, msg, SECRET);
	cpx_info("%.*s%s" SECRET "%s", (int)npad, pad, msg, msg);
	cpx_info("GET /x?X-Plex-Token=" PLEX "&%s", msg);
	cpx_info("X-Plex-Token: " PLEX "\r\n%s", msg);
	cpx_info("%s env X_PLEX_TOKEN=" PLEX " CLUSTERPLEX_TOKEN=%s", msg, msg);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, out, sizeof out, 0);
	if (n > 0)
		check(out, (size_t)n);
	free(msg);
	return 0;
}
