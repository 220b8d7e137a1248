/* codecset.c — codec set names, FFMPEG_EXTERNAL_LIBS values, SET_* frames. */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include <cJSON.h>

#include "cpx-protocol.h"

/*
 * A set name becomes a folder name in a worker's cache and travels in
 * frames: letters, digits, '.', '_', '-', 1-128 long, not starting with
 * '.' or '-'.
 */
int
cpx_set_name_valid(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > CPX_SET_NAME_MAX || name[0] == '.' || name[0] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
		    !(c >= '0' && c <= '9') && c != '.' && c != '_' && c != '-')
			return 0;
	}
	return 1;
}

/*
 * Plex's CPU names (x86_64, aarch64, armv7neon): letters, digits and '_',
 * never '-', which ends the CPU in a set name.
 */
int
cpx_cpu_name_valid(const char *cpu)
{
	size_t i, n = strlen(cpu);

	if (n == 0 || n > 32)
		return 0;
	for (i = 0; i < n; i++) {
		if (!isalnum((unsigned char)cpu[i]) && cpu[i] != '_')
			return 0;
	}
	return 1;
}

void
cpx_codec_set_free(struct cpx_codec_set *s)
{
	free(s->name);
	free(s->version);
	free(s->cpu);
	free(s->variant);
	memset(s, 0, sizeof *s);
}

/*
 * "8bf330d-2818-linux-x86_64-standard" → version "8bf330d-2818", cpu
 * "x86_64", variant "standard". Plex's CPU names hold '_' but never '-',
 * so the CPU ends at the next '-'. A valid name without "-linux-" is a
 * set of unknown architecture (cpu NULL). Returns 0 or -EINVAL.
 */
int
cpx_codec_set_parse(const char *name, struct cpx_codec_set *s)
{
	const char *at = NULL, *p, *cpu, *dash;

	memset(s, 0, sizeof *s);
	if (!cpx_set_name_valid(name))
		return -EINVAL;
	for (p = strstr(name, "-linux-"); p != NULL; p = strstr(p + 1,
	    "-linux-"))
		at = p;
	s->name = cpx_xstrdup(name);
	if (at == NULL || at == name || at[7] == '\0' || at[7] == '-') {
		s->version = cpx_xstrdup(name);
		return 0;
	}
	s->version = cpx_xstrndup(name, (size_t)(at - name));
	cpu = at + 7;
	dash = strchr(cpu, '-');
	s->cpu = dash != NULL ? cpx_xstrndup(cpu, (size_t)(dash - cpu)) :
	    cpx_xstrdup(cpu);
	if (dash != NULL && dash[1] != '\0')
		s->variant = cpx_xstrdup(dash + 1);
	return 0;
}

/* The same version and variant for another CPU (caller frees); NULL without an arch. */
char *
cpx_codec_set_for_cpu(const struct cpx_codec_set *s, const char *cpu)
{
	if (s->cpu == NULL)
		return NULL;
	return cpx_xprintf("%s-linux-%s%s%s", s->version, cpu,
	    s->variant != NULL ? "-" : "", s->variant != NULL ? s->variant : "");
}

/*
 * This machine's CPU in Plex's codec names. CLUSTERPLEX_CODEC_CPU
 * overrides it (a worker emulating another CPU, or a name Plex gave a
 * CPU we do not know).
 */
const char *
cpx_codec_cpu(void)
{
	static char cpu[65];
	struct utsname u;
	const char *env = getenv("CLUSTERPLEX_CODEC_CPU");

	if (env != NULL && *env != '\0')
		return env;
	if (cpu[0] != '\0')
		return cpu;
	if (uname(&u) != 0)
		return "unknown";
	if (strcmp(u.machine, "armv7l") == 0 || strcmp(u.machine, "armv8l") == 0)
		snprintf(cpu, sizeof cpu, "armv7neon");
	else if (strcmp(u.machine, "arm64") == 0)
		snprintf(cpu, sizeof cpu, "aarch64");
	else
		snprintf(cpu, sizeof cpu, "%s", u.machine);
	return cpu;
}

/*
 * PMS escapes blanks in FFMPEG_EXTERNAL_LIBS with backslashes
 * ("/config/Library/Application\ Support/..."). Returns the folder, without
 * escapes or trailing '/' (caller frees), or NULL when it is not absolute.
 */
char *
cpx_codec_libs_dir(const char *v)
{
	char *out = cpx_xmalloc(strlen(v) + 1);
	size_t i, k = 0;

	for (i = 0; v[i] != '\0'; i++) {
		if (v[i] == '\\' && v[i + 1] != '\0')
			i++;
		out[k++] = v[i];
	}
	while (k > 1 && out[k - 1] == '/')
		k--;
	out[k] = '\0';
	if (out[0] != '/') {
		free(out);
		return NULL;
	}
	return out;
}

/* The reverse, as PMS writes it: blanks and backslashes escaped, a trailing '/'. */
char *
cpx_codec_libs_value(const char *dir)
{
	struct cpx_buf b;
	size_t i;

	cpx_buf_init(&b);
	for (i = 0; dir[i] != '\0'; i++) {
		if (dir[i] == ' ' || dir[i] == '\\')
			cpx_buf_add_u8(&b, '\\');
		cpx_buf_add_u8(&b, (uint8_t)dir[i]);
	}
	if (i == 0 || dir[i - 1] != '/')
		cpx_buf_add_u8(&b, '/');
	return cpx_buf_cstr(&b);
}

void
cpx_set_entry_put(struct cpx_buf *b, const struct cpx_set_entry *e)
{
	cpx_buf_add_u8(b, e->type);
	cpx_buf_add_u32(b, e->mode);
	cpx_buf_add_u64(b, e->size);
	cpx_buf_add_cstr(b, e->path);
}

static int
path_depth_ok(const char *path)
{
	int depth = 1;

	for (; *path != '\0'; path++)
		depth += *path == '/';
	return depth <= CPX_SET_DEPTH;
}

/*
 * Decodes SET_FILE. The path is refused unless it is clean and relative,
 * so a hostile client can never make a worker write outside its cache.
 * On success e->path is allocated (caller frees).
 */
int
cpx_set_entry_parse(const uint8_t *p, size_t n, struct cpx_set_entry *e)
{
	struct cpx_reader r;

	memset(e, 0, sizeof *e);
	cpx_reader_init(&r, p, n);
	e->type = cpx_rd_u8(&r);
	e->mode = cpx_rd_u32(&r);
	e->size = cpx_rd_u64(&r);
	e->path = cpx_rd_cstr(&r, CPX_PATH_MAX);
	if (r.err || r.left != 0 || e->path == NULL ||
	    (e->type != CPX_SET_DIR && e->type != CPX_SET_REG) ||
	    (e->type == CPX_SET_DIR && e->size != 0) ||
	    e->size > CPX_SET_MAX_BYTES || (e->mode & ~07777u) != 0 ||
	    !cpx_path_clean_relative(e->path) || !path_depth_ok(e->path)) {
		free(e->path);
		e->path = NULL;
		return -EPROTO;
	}
	return 0;
}

char *
cpx_set_want_encode(const char *name, int data)
{
	cJSON *obj = cJSON_CreateObject();

	cJSON_AddStringToObject(obj, "kind", "codecs");
	cJSON_AddStringToObject(obj, "name", name);
	cJSON_AddBoolToObject(obj, "data", data);
	return cpx_json_take(obj, 0);
}

/* Decodes SET_WANT; *name is allocated. Only kind "codecs" exists. */
int
cpx_set_want_parse(const uint8_t *p, size_t n, char **name, int *data)
{
	cJSON *obj = cJSON_ParseWithLength((const char *)p, n);
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(obj, "kind");
	const cJSON *nm = cJSON_GetObjectItemCaseSensitive(obj, "name");
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(obj, "data");
	int error = -EPROTO;

	*name = NULL;
	if (cJSON_IsString(k) && strcmp(k->valuestring, "codecs") == 0 &&
	    cJSON_IsString(nm) && cpx_set_name_valid(nm->valuestring) &&
	    (d == NULL || cJSON_IsBool(d))) {
		*name = cpx_xstrdup(nm->valuestring);
		*data = d == NULL || cJSON_IsTrue(d);
		error = 0;
	}
	cJSON_Delete(obj);
	return error;
}
