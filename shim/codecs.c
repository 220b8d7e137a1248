/* codecs.c — sending PMS's codec set to a worker that asks for it (SET_WANT). */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "cpx-link.h"
#include "shim.h"

/*
 * The shim serves exactly one folder: the one PMS named in this job's
 * FFMPEG_EXTERNAL_LIBS, and only when the worker asks for it by that
 * folder's name. Regular files and folders are sent; symlinks and
 * anything else are skipped (a set is plain files), so nothing outside
 * the folder can ever leave the PMS host. Files stream in chunks under
 * the link's flow control, each followed by its SHA-256 as read here.
 */

#define CHUNK (256 * 1024)
#define HIGH_WATER (4 * 1024 * 1024)

struct set_item {
	char *path;		/* relative to the set folder */
	uint8_t type;
	uint32_t mode;
	uint64_t size;
};

struct shim_setsend {
	struct cpx_link *link;
	char *dir;
	struct set_item *v;
	size_t n, cap;
	size_t i;		/* item being sent */
	int fd;
	uint64_t left;
	struct cpx_sha256_ctx sha;
	uint64_t bytes;
	int data;
	int done;
	uint8_t *buf;
	uint64_t t0;
};

/* PMS's codec folder for this job and its set name, or NULL. */
char *
shim_codec_set(char **dir)
{
	const char *v = getenv("FFMPEG_EXTERNAL_LIBS"), *base;
	struct stat st;
	char *d;

	*dir = NULL;
	if (v == NULL || (d = cpx_codec_libs_dir(v)) == NULL)
		return NULL;
	base = strrchr(d, '/') + 1;
	if (!cpx_set_name_valid(base) || stat(d, &st) != 0 ||
	    !S_ISDIR(st.st_mode)) {
		free(d);
		return NULL;
	}
	*dir = d;
	return cpx_xstrdup(base);
}

static int
add_item(struct shim_setsend *s, const char *path, const struct stat *st)
{
	if (s->n == CPX_SET_MAX_FILES)
		return -EFBIG;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->v = cpx_xrealloc(s->v, s->cap * sizeof *s->v);
	}
	s->v[s->n].path = cpx_xstrdup(path);
	s->v[s->n].type = S_ISDIR(st->st_mode) ? CPX_SET_DIR : CPX_SET_REG;
	s->v[s->n].mode = st->st_mode & 07777;
	s->v[s->n].size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
	s->n++;
	return 0;
}

/* Folders before their contents, names sorted: the same order every time. */
static int
walk(struct shim_setsend *s, const char *rel, int depth, char **cause)
{
	struct dirent **names = NULL;
	struct stat st;
	char *full = cpx_xprintf("%s%s%s", s->dir, *rel ? "/" : "", rel), *sub;
	int i, n = scandir(full, &names, NULL, alphasort), error = 0;

	if (n < 0) {
		cpx_set_cause(cause, "%s: %s", full, strerror(errno));
		free(full);
		return -errno;
	}
	for (i = 0; i < n; i++) {
		const char *nm = names[i]->d_name;

		if (error != 0 || strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0)
			continue;
		sub = cpx_xprintf("%s%s%s", rel, *rel ? "/" : "", nm);
		free(full);
		full = cpx_xprintf("%s/%s", s->dir, sub);
		if (lstat(full, &st) != 0 || !(S_ISREG(st.st_mode) ||
		    (S_ISDIR(st.st_mode) && depth < CPX_SET_DEPTH))) {
			cpx_debug("codec set: skipping %s", full);
		} else if ((error = add_item(s, sub, &st)) != 0) {
			cpx_set_cause(cause, "more than %d files", CPX_SET_MAX_FILES);
		} else if (S_ISDIR(st.st_mode)) {
			error = walk(s, sub, depth + 1, cause);
		}
		free(sub);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(full);
	return error;
}

static void
send_end(struct shim_setsend *s, const char *error)
{
	cJSON *obj = cJSON_CreateObject();
	char *t;

	if (error != NULL) {
		cJSON_AddStringToObject(obj, "error", error);
		cpx_warn("codec set %s not sent: %s", s->dir, error);
	} else {
		cJSON_AddNumberToObject(obj, "files", (double)s->n);
		cJSON_AddNumberToObject(obj, "bytes", (double)s->bytes);
		/* Names only: the worker downloads the files elsewhere. */
		cpx_info("%s codec set %s to the worker: %zu files, %llu "
		    "bytes in %llu ms", s->data ? "sent" : "listed",
		    strrchr(s->dir, '/') + 1, s->n, (unsigned long long)s->bytes,
		    (unsigned long long)(cpx_now_ms() - s->t0));
	}
	t = cpx_json_take(obj, 0);
	cpx_link_send(s->link, CPX_MSG_SET_END, 0, t, strlen(t));
	free(t);
	s->done = 1;
}

static int
open_item(struct shim_setsend *s, char **cause)
{
	struct set_item *it = &s->v[s->i];
	char *full = cpx_xprintf("%s/%s", s->dir, it->path);
	struct stat st;
	int error = 0;

	s->fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (s->fd < 0 || fstat(s->fd, &st) != 0) {
		error = -errno;
		cpx_set_cause(cause, "%s: %s", full, strerror(errno));
	} else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != it->size) {
		error = -ESTALE;
		cpx_set_cause(cause, "%s changed while it was being sent", full);
	}
	s->left = it->size;
	cpx_sha256_init(&s->sha);
	free(full);
	return error;
}

static void
put_entry(struct shim_setsend *s)
{
	struct set_item *it = &s->v[s->i];
	struct cpx_set_entry e = { .type = it->type, .mode = it->mode,
	    .size = it->size, .path = it->path };
	struct cpx_buf b;

	cpx_buf_init(&b);
	cpx_set_entry_put(&b, &e);
	cpx_link_send_buf(s->link, CPX_MSG_SET_FILE, (uint32_t)s->i, &b);
}

/* One step: an entry, a chunk, or a file's end. */
static int
step(struct shim_setsend *s, char **cause)
{
	uint8_t d[32];
	ssize_t n;

	if (s->fd < 0) {
		put_entry(s);
		if (s->v[s->i].type == CPX_SET_DIR || !s->data) {
			s->i++;
			return 0;
		}
		return open_item(s, cause);
	}
	if (s->left > 0) {
		n = read(s->fd, s->buf, s->left < CHUNK ? (size_t)s->left : CHUNK);
		if (n <= 0) {
			cpx_set_cause(cause, "reading %s/%s: %s", s->dir,
			    s->v[s->i].path, n == 0 ? "file shrank" :
			    strerror(errno));
			return -EIO;
		}
		cpx_sha256_update(&s->sha, s->buf, (size_t)n);
		cpx_link_send(s->link, CPX_MSG_SET_DATA, (uint32_t)s->i, s->buf,
		    (size_t)n);
		s->left -= (uint64_t)n;
		s->bytes += (uint64_t)n;
		return 0;
	}
	cpx_sha256_final(&s->sha, d);
	cpx_link_send(s->link, CPX_MSG_SET_SUM, (uint32_t)s->i, d, sizeof d);
	close(s->fd);
	s->fd = -1;
	s->i++;
	return 0;
}

/* Sends until the link's queue is full; the link's drain calls it again. */
void
shim_setsend_pump(struct shim_setsend *s)
{
	char *cause = NULL;

	while (s != NULL && !s->done && cpx_link_pending(s->link) < HIGH_WATER) {
		if (s->i == s->n) {
			send_end(s, NULL);
			break;
		}
		if (step(s, &cause) != 0) {
			send_end(s, cause);
			free(cause);
			break;
		}
	}
}

int
shim_setsend_active(const struct shim_setsend *s)
{
	return s != NULL && !s->done;
}

void
shim_setsend_free(struct shim_setsend *s)
{
	size_t i;

	if (s == NULL)
		return;
	if (s->fd >= 0)
		close(s->fd);
	for (i = 0; i < s->n; i++)
		free(s->v[i].path);
	free(s->v);
	free(s->dir);
	free(s->buf);
	free(s);
}

/*
 * A worker's SET_WANT. `dir` is PMS's folder for this job (NULL: none);
 * a request for any other name is refused. Returns the transfer (caller
 * pumps and frees it).
 */
struct shim_setsend *
shim_setsend_start(struct cpx_link *link, const char *dir,
    const struct cpx_frame *f)
{
	struct shim_setsend *s = cpx_xcalloc(1, sizeof *s);
	char *name = NULL, *cause = NULL;

	s->link = link;
	s->fd = -1;
	s->t0 = cpx_now_ms();
	s->buf = cpx_xmalloc(CHUNK);
	s->dir = cpx_xstrdup(dir != NULL ? dir : "(none)");
	if (cpx_set_want_parse(f->payload, f->len, &name, &s->data) != 0)
		send_end(s, "malformed SET_WANT");
	else if (dir == NULL || strcmp(strrchr(dir, '/') + 1, name) != 0)
		send_end(s, "that is not this job's codec set");
	else if (walk(s, "", 1, &cause) != 0)
		send_end(s, cause);
	else
		shim_setsend_pump(s);
	free(name);
	free(cause);
	return s;
}
