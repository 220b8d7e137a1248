/* pathmap.c — CLUSTERPLEX_PATH_MAP: media seen at other paths on this worker. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

/*
 * "from=to[,from=to...]". Both sides are absolute paths; a trailing '/'
 * is ignored; "." and ".." components and empty ones ("//") are refused,
 * because a prefix that is not canonical would never match what PMS
 * writes, and silently so. A backslash takes the next character as it is
 * (`\,` `\=` `\\`), for paths holding those. Blanks around an entry are
 * dropped (compose files write "a=b, c=d"); empty entries are ignored.
 */

#define PATH_MAP_MAX 64

static int
canonical(char *p, char **cause, const char *what)
{
	size_t n = strlen(p);

	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	if (p[0] != '/') {
		cpx_set_cause(cause, "%s \"%s\" is not an absolute path", what,
		    p);
		return -EINVAL;
	}
	if (n > 1 && !cpx_path_clean_relative(p + 1)) {
		cpx_set_cause(cause, "%s \"%s\" has an empty, \".\" or \"..\" "
		    "component", what, p);
		return -EINVAL;
	}
	return 0;
}

/* One entry's text (escapes still in) into from and to. */
static int
parse_entry(const char *s, size_t n, struct agent_path_map_entry *e,
    char **cause)
{
	char *buf = cpx_xmalloc(n + 1), *from = buf, *to = NULL;
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n) {
			buf[k++] = s[++i];
		} else if (s[i] == '=' && to == NULL) {
			buf[k++] = '\0';
			to = buf + k;
		} else {
			buf[k++] = s[i];
		}
	}
	buf[k] = '\0';
	if (to == NULL) {
		cpx_set_cause(cause, "entry \"%s\" is not from=to", buf);
		free(buf);
		return -EINVAL;
	}
	if (canonical(from, cause, "source") != 0 ||
	    canonical(to, cause, "target") != 0) {
		free(buf);
		return -EINVAL;
	}
	e->from = cpx_xstrdup(from);
	e->flen = strlen(from);
	e->to = cpx_xstrdup(to);
	free(buf);
	return 0;
}

/* The end of the entry starting at s: an unescaped ',' or newline. */
static size_t
entry_len(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && s[i] != ',' && s[i] != '\n'; i++) {
		if (s[i] == '\\' && s[i + 1] != '\0')
			i++;
	}
	return i;
}

static int
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static int
add_entry(struct agent_path_map *m, const char *s, size_t n, char **cause)
{
	struct agent_path_map_entry e;
	size_t i;

	if (m->n == PATH_MAP_MAX) {
		cpx_set_cause(cause, "more than %d entries", PATH_MAP_MAX);
		return -EINVAL;
	}
	if (parse_entry(s, n, &e, cause) != 0)
		return -EINVAL;
	for (i = 0; i < m->n; i++) {
		if (strcmp(m->v[i].from, e.from) == 0) {
			cpx_set_cause(cause, "\"%s\" is mapped twice", e.from);
			free(e.from);
			free(e.to);
			return -EINVAL;
		}
	}
	m->v = cpx_xrealloc(m->v, (m->n + 1) * sizeof *m->v);
	m->v[m->n++] = e;
	return 0;
}

/* Parses `spec` (NULL or empty: no mapping) into *m; free with agent_path_map_free. */
int
agent_path_map_parse(const char *spec, struct agent_path_map *m, char **cause)
{
	const char *s = spec, *b;
	size_t n, k;

	memset(m, 0, sizeof *m);
	while (s != NULL && *s != '\0') {
		n = entry_len(s);
		b = s;
		k = n;
		while (k > 0 && is_blank(*b))
			b++, k--;
		while (k > 0 && is_blank(b[k - 1]) &&
		    !(k >= 2 && b[k - 2] == '\\'))
			k--;
		if (k > 0 && add_entry(m, b, k, cause) != 0) {
			agent_path_map_free(m);
			return -EINVAL;
		}
		s += n;
		if (*s != '\0')
			s++;
	}
	return 0;
}

void
agent_path_map_free(struct agent_path_map *m)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		free(m->v[i].from);
		free(m->v[i].to);
	}
	free(m->v);
	memset(m, 0, sizeof *m);
}

/* Does `path` start with `e->from` on a component boundary? */
static int
matches(const struct agent_path_map_entry *e, const char *path)
{
	if (e->flen == 1)	/* "/" */
		return path[0] == '/';
	return strncmp(path, e->from, e->flen) == 0 &&
	    (path[e->flen] == '\0' || path[e->flen] == '/');
}

/*
 * `path` with the longest matching prefix replaced, or NULL when no entry
 * matches (caller frees). A prefix matches only whole components:
 * "/data" maps "/data" and "/data/x", never "/database".
 */
char *
agent_path_map_apply(const struct agent_path_map *m, const char *path)
{
	const struct agent_path_map_entry *best = NULL;
	const char *rest;
	size_t i;

	for (i = 0; m != NULL && i < m->n; i++) {
		if (matches(&m->v[i], path) &&
		    (best == NULL || m->v[i].flen > best->flen))
			best = &m->v[i];
	}
	if (best == NULL)
		return NULL;
	rest = best->flen == 1 ? path : path + best->flen;
	if (strcmp(best->to, "/") == 0)
		return cpx_xstrdup(*rest != '\0' ? rest : "/");
	return cpx_xprintf("%s%s", best->to, rest);
}
