/* fuzz_agent_pathmap.c — CLUSTERPLEX_PATH_MAP from hostile text, applied to paths. */

#include <stdlib.h>
#include <string.h>

#include "agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const struct agent_path_map *m, const char *path)
{
	char *out = agent_path_map_apply(m, path);
	size_t i;
	int ok = out == NULL;

	/* A result always begins with one of the targets. */
	for (i = 0; out != NULL && i < m->n; i++) {
		if (strncmp(out, m->v[i].to, strlen(m->v[i].to)) == 0 ||
		    strcmp(m->v[i].to, "/") == 0)
			ok = 1;
	}
	if (!ok)
		abort();
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_path_map m;
	char *spec = cpx_xstrndup((const char *)data,
	    strnlen((const char *)data, size)), *cause = NULL;
	size_t i;

	if (agent_path_map_parse(spec, &m, &cause) == 0) {
		for (i = 0; i < m.n; i++) {
			if (m.v[i].from[0] != '/' || m.v[i].to[0] != '/')
				abort();
			check(&m, m.v[i].from);
		}
		check(&m, spec);
		check(&m, "/data/media/x.mkv");
		agent_path_map_free(&m);
	} else if (cause == NULL) {
		abort();
	}
	free(cause);
	free(spec);
	return 0;
}
