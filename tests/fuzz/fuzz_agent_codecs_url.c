/* fuzz_agent_codecs_url.c — URL templates, the URLs they make, what logs show, library names, sources. */

#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "cpx-protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Input: template, version, arch, file, sources, separated by '\n'. */
static char *
field(const char **p, const char *end)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	const char *stop = nl != NULL ? nl : end;
	char *out = cpx_xstrndup(*p, strnlen(*p, (size_t)(stop - *p)));

	*p = nl != NULL ? nl + 1 : end;
	return out;
}

/* What a template expands to is one URL: no blank, control or non-ASCII byte. */
static void
check_url(const char *u)
{
	const char *q, *s = u;

	for (; *s != '\0'; s++) {
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			abort();
	}
	if (strncasecmp(u, "http://", 7) != 0 &&
	    strncasecmp(u, "https://", 8) != 0)
		abort();
	/* A shown URL keeps no query and no user:password@. */
	s = agent_codec_url_shown(u);
	q = strpbrk(s, "?#");
	if ((q != NULL && strcmp(q, "?...") != 0) ||
	    strncmp(s, u, strcspn(u, ":")) != 0)
		abort();
	free((char *)s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	char *t = field(&p, end), *v = field(&p, end), *a = field(&p, end);
	char *f = field(&p, end), *src = field(&p, end), *cause = NULL, *u;
	unsigned bits, order[AGENT_SRC_MAX];
	size_t n;

	if (agent_codec_url_check(t, &cause) == 0) {
		u = agent_codec_url(t, v, a, f);
		check_url(u);
		free(u);
	} else if (cause == NULL) {
		abort();
	}
	free(cause);
	free(agent_codec_url_shown(t));
	if (agent_codec_is_lib(f) && (strchr(f, '/') != NULL ||
	    strcmp(f + strlen(f) - 3, ".so") != 0 || f[0] == '.'))
		abort();
	if (agent_parse_sources(src, &bits, order, &n) == 0 &&
	    (n > AGENT_SRC_MAX || (bits & ~(unsigned)(AGENT_SRC_PMS |
	    AGENT_SRC_URL)) != 0))
		abort();
	free(t);
	free(v);
	free(a);
	free(f);
	free(src);
	return 0;
}
