/* job_codecs_url.c — a codec set for this worker's CPU, downloaded from CLUSTERPLEX_CODEC_URL. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "job_codecs.h"

/*
 * Under the set's lock (job_codecs.c), with its temporary folder made:
 *
 * 1. SET_WANT {"data": false} asks the shim for the names in PMS's set of
 *    the same version (the shim serves only the job's own set); the
 *    libraries at its top are what Plex serves one by one.
 * 2. Each library is fetched by its own curl (codec_cache_url.c), one
 *    after the other: curl writes to a pipe, the agent writes the file
 *    (O_EXCL, O_NOFOLLOW), counts it against CLUSTERPLEX_CODEC_MAX_MB and
 *    computes its SHA-256 for the manifest.
 * 3. job_codecs_done() writes the manifest and renames the folder into
 *    place whole.
 *
 * Any failure (curl's exit status, an empty or oversized file, the
 * deadline, the job's end) kills curl's process group, and the folder is
 * removed with the fetch: no partial set is ever left. curl dies with the
 * agent too (PR_SET_PDEATHSIG, agent_proc_spawn).
 */

extern char **environ;

struct codec_dl {
	struct job *j;		/* NULL once detached from the job */
	uv_pipe_t out, err;
	uv_signal_t chld;
	int open;		/* handles not yet closed */
	pid_t pid;
	int out_eof, err_eof, reaped, wstatus;
	int fd;			/* the file being written, or -1 */
	uint32_t mode;
	char *name;
	char *shown;		/* the URL as messages show it */
	char *fail;		/* the agent's own reason to stop it */
	uint64_t size;
	struct cpx_sha256_ctx sha;
	char msg[256];		/* curl's stderr, its first bytes */
	size_t msglen;
	char buf[64 * 1024];
};

static void next_file(struct job *j);

static uint64_t
max_bytes(const struct job *j)
{
	return (uint64_t)j->cfg->codec_max_mb << 20;
}

/* Asks the shim for the names in PMS's set. */
void
job_codecs_url_begin(struct job *j)
{
	struct job_codecs *c = j->codecs;
	char *want = cpx_set_want_encode(c->offer, 0);

	cpx_info("job %s: downloading codec set %s from CLUSTERPLEX_CODEC_URL "
	    "(the names of %s from PMS)", j->spec.id, c->want, c->offer);
	if (j->link != NULL)
		cpx_link_send(j->link, CPX_MSG_SET_WANT, 0, want, strlen(want));
	free(want);
}

/* One entry of PMS's list: a library to download, or skipped. */
int
job_codecs_url_entry(struct job *j, const struct cpx_set_entry *e, char **why)
{
	struct job_codecs *c = j->codecs;

	if (e->type != CPX_SET_REG || !agent_codec_is_lib(e->path)) {
		cpx_debug("job %s: %s of %s is not downloaded (not a library "
		    "at the set's top)", j->spec.id, e->path, c->offer);
		free(e->path);
		return 0;
	}
	c->libs = cpx_xrealloc(c->libs, (c->nlibs + 1) * sizeof *c->libs);
	c->modes = cpx_xrealloc(c->modes, (c->nlibs + 1) * sizeof *c->modes);
	c->libs[c->nlibs] = e->path;
	c->modes[c->nlibs++] = (e->mode & 0755) | 0400;
	return 0;
}

/* PMS's list is complete: the downloads begin. */
int
job_codecs_url_listed(struct job *j, char **why)
{
	struct job_codecs *c = j->codecs;

	if (c->nlibs == 0) {
		*why = cpx_xprintf("PMS's set %s lists no library (*.so) to "
		    "download", c->offer);
		return -ENOENT;
	}
	c->files = 0;
	c->bytes = 0;
	next_file(j);
	return 0;
}

static void
on_closed(uv_handle_t *h)
{
	struct codec_dl *dl = h->data;

	if (--dl->open > 0)
		return;
	free(dl->name);
	free(dl->shown);
	free(dl->fail);
	free(dl);
}

static void
close_one(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, on_closed);
}

/* Detached: the pipes close now, the SIGCHLD watcher once curl is reaped. */
static void
dl_release(struct codec_dl *dl)
{
	close_one((uv_handle_t *)&dl->out);
	close_one((uv_handle_t *)&dl->err);
	if (dl->reaped)
		close_one((uv_handle_t *)&dl->chld);
}

static void
dl_detach(struct codec_dl *dl)
{
	if (!dl->reaped && dl->pid > 0)
		kill(-dl->pid, SIGKILL);
	if (dl->fd >= 0)
		close(dl->fd);
	dl->fd = -1;
	dl->j = NULL;
	dl_release(dl);
}

/* The job ends or fails while a download runs: curl dies, its handles close. */
void
job_codecs_url_stop(struct job_codecs *c)
{
	if (c->dl != NULL)
		dl_detach(c->dl);
	c->dl = NULL;
}

/* The URL being downloaded (as shown), or NULL. */
const char *
job_codecs_url_current(const struct job_codecs *c)
{
	return c->dl != NULL ? c->dl->shown : NULL;
}

/* Why curl's download failed, from its exit status and its first line. */
static char *
curl_failure(const struct codec_dl *dl)
{
	size_t n = strcspn(dl->msg, "\r\n");
	char *line, *out;

	if (n > 0) {
		line = cpx_escape(dl->msg, n, 200);
		out = cpx_xprintf("%s: %s", dl->shown, line);
		free(line);
		return out;
	}
	if (WIFSIGNALED(dl->wstatus))
		return cpx_xprintf("%s: curl killed by signal %d", dl->shown,
		    WTERMSIG(dl->wstatus));
	return cpx_xprintf("%s: curl exited with status %d", dl->shown,
	    WEXITSTATUS(dl->wstatus));
}

/* The file is complete and curl said so: NULL, or why not. */
static char *
file_verdict(struct codec_dl *dl)
{
	if (dl->fail != NULL)
		return cpx_xprintf("%s: %s", dl->shown, dl->fail);
	if (!WIFEXITED(dl->wstatus) || WEXITSTATUS(dl->wstatus) != 0)
		return curl_failure(dl);
	if (dl->size == 0)
		return cpx_xprintf("%s: an empty file", dl->shown);
	if (fchmod(dl->fd, dl->mode) != 0 || close(dl->fd) != 0) {
		dl->fd = -1;
		return cpx_xprintf("%s: %s", dl->name, strerror(errno));
	}
	dl->fd = -1;
	return NULL;
}

/* curl ended and both pipes are drained: the next file, or the verdict. */
static void
file_done(struct codec_dl *dl)
{
	struct job *j = dl->j;
	struct job_codecs *c = j->codecs;
	char *why = file_verdict(dl);
	uint8_t d[32];

	c->dl = NULL;
	if (why == NULL) {
		cpx_sha256_final(&dl->sha, d);
		job_codecs_add_entry(c, dl->name, dl->size, d);
		c->files++;
		c->lib++;
		cpx_debug("job %s: %s: %llu bytes", j->spec.id, dl->shown,
		    (unsigned long long)dl->size);
	}
	dl_detach(dl);
	if (why != NULL) {
		job_codecs_failed(j, why);
		free(why);
	} else {
		next_file(j);
	}
}

/*
 * After each event of curl's: attached, the file is done once curl is
 * reaped and both pipes are drained; detached, its pipes are closed
 * already and the watcher closes once curl is reaped (the loop, and the
 * agent, end only then).
 */
static void
check_done(struct codec_dl *dl)
{
	if (dl->j == NULL)
		dl_release(dl);
	else if (dl->out_eof && dl->err_eof && dl->reaped)
		file_done(dl);
}

static void
alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct codec_dl *dl = h->data;

	(void)hint;
	*buf = uv_buf_init(dl->buf, sizeof dl->buf);
}

/* The agent stops curl itself: the set would be too big, or the disk failed. */
static void
stop_curl(struct codec_dl *dl, char *why)
{
	if (dl->fail == NULL)
		dl->fail = why;
	else
		free(why);
	kill(-dl->pid, SIGKILL);
}

static void
take_bytes(struct codec_dl *dl, const char *p, size_t n)
{
	struct job_codecs *c = dl->j->codecs;

	if (dl->fail != NULL)
		return;
	if (c->bytes + n > max_bytes(dl->j)) {
		stop_curl(dl, cpx_xprintf("the set is larger than "
		    "CLUSTERPLEX_CODEC_MAX_MB (%ld MB)", dl->j->cfg->codec_max_mb));
		return;
	}
	if (cpx_write_all(dl->fd, p, n) < 0) {
		stop_curl(dl, cpx_xprintf("writing %s: %s", dl->name,
		    strerror(errno)));
		return;
	}
	cpx_sha256_update(&dl->sha, p, n);
	dl->size += n;
	c->bytes += n;
}

static void
on_out(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct codec_dl *dl = s->data;

	if (n > 0 && dl->j != NULL)
		take_bytes(dl, buf->base, (size_t)n);
	if (n < 0) {
		uv_read_stop(s);
		dl->out_eof = 1;
		check_done(dl);
	}
}

static void
on_err(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct codec_dl *dl = s->data;
	size_t room = sizeof dl->msg - 1 - dl->msglen;

	if (n > 0) {
		if ((size_t)n < room)
			room = (size_t)n;
		memcpy(dl->msg + dl->msglen, buf->base, room);
		dl->msglen += room;
		dl->msg[dl->msglen] = '\0';
	} else if (n < 0) {
		uv_read_stop(s);
		dl->err_eof = 1;
		check_done(dl);
	}
}

static void
on_chld(uv_signal_t *s, int signum)
{
	struct codec_dl *dl = s->data;

	(void)signum;
	if (dl->reaped || waitpid(dl->pid, &dl->wstatus, WNOHANG) != dl->pid)
		return;
	dl->reaped = 1;
	check_done(dl);
}

static int
open_pipe(uv_pipe_t *p, int fd, uv_read_cb cb)
{
	if (uv_pipe_open(p, fd) != 0) {
		close(fd);
		return -EIO;
	}
	return uv_read_start((uv_stream_t *)p, alloc_cb, cb);
}

/* Starts curl for one file; its output goes to dl->fd. */
static int
spawn(struct job *j, struct codec_dl *dl, const char *url, char **cause)
{
	struct job_codecs *c = j->codecs;
	uint64_t now = cpx_now_ms(), room = max_bytes(j) - c->bytes;
	char **argv = agent_curl_argv(j->cfg->curl, url, room > 0 ? room : 1,
	    c->deadline > now ? c->deadline - now : 1);
	char **envp = agent_curl_env(environ);
	struct job_proc p;
	int error;

	error = agent_proc_spawn(j->cfg->curl, argv, envp, c->tmpfd, &p, cause);
	agent_strv_free(argv);
	agent_strv_free(envp);
	if (error != 0) {
		dl->reaped = 1;
		dl->out_eof = dl->err_eof = 1;
		return error;
	}
	dl->pid = p.pid;
	close(p.in_fd);
	if (open_pipe(&dl->out, p.out_fd, on_out) != 0) {
		close(p.err_fd);
		cpx_set_cause(cause, "cannot read curl's output");
		return -EIO;
	}
	if (open_pipe(&dl->err, p.err_fd, on_err) != 0) {
		cpx_set_cause(cause, "cannot read curl's output");
		return -EIO;
	}
	/* It may have ended before the watcher could see it. */
	on_chld(&dl->chld, SIGCHLD);
	return 0;
}

static struct codec_dl *
dl_new(struct job *j, const char *name, uint32_t mode, const char *url)
{
	struct codec_dl *dl = cpx_xcalloc(1, sizeof *dl);

	dl->j = j;
	dl->fd = -1;
	dl->mode = mode;
	dl->name = cpx_xstrdup(name);
	dl->shown = agent_codec_url_shown(url);
	cpx_sha256_init(&dl->sha);
	/* Before the fork: no exit can go unnoticed. */
	uv_signal_init(j->loop, &dl->chld);
	dl->chld.data = dl;
	dl->open = 1;
	uv_signal_start(&dl->chld, on_chld, SIGCHLD);
	/* Handles not opened yet close at once; they must be initialised. */
	uv_pipe_init(j->loop, &dl->out, 0);
	uv_pipe_init(j->loop, &dl->err, 0);
	dl->out.data = dl->err.data = dl;
	dl->open += 2;
	return dl;
}

static void
next_file(struct job *j)
{
	struct job_codecs *c = j->codecs;
	const char *name;
	char *url, *cause = NULL, *why;
	struct codec_dl *dl;

	if (c->lib == c->nlibs) {
		job_codecs_done(j);
		return;
	}
	name = c->libs[c->lib];
	url = agent_codec_url(j->cfg->codec_url, c->version, c->arch, name);
	dl = dl_new(j, name, c->modes[c->lib], url);
	c->dl = dl;
	dl->fd = openat(c->tmpfd, name, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (dl->fd < 0)
		cpx_set_cause(&cause, "%s: %s", name, strerror(errno));
	if (dl->fd < 0 || spawn(j, dl, url, &cause) != 0) {
		why = cpx_xprintf("%s: %s", dl->shown, cause);
		free(cause);
		free(url);
		job_codecs_failed(j, why);
		free(why);
		return;
	}
	free(url);
}
