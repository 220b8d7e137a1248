/* pool.c — `clusterplex-shim pool`: warm SSH sessions, channels spliced to shims. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpx-ssh.h"
#include "pool.h"

#define SPLICE_HIGH (1024 * 1024)
#define SPLICE_LOW (256 * 1024)
#define OPEN_FRAME_MAX (64 * 1024)

static void client_request(struct pclient *cl);

static void
on_client_closed(uv_handle_t *h)
{
	struct pclient *cl = h->data;
	struct pclient **pp;

	for (pp = &cl->pool->clients; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == cl) {
			*pp = cl->next;
			break;
		}
	}
	cpx_buf_free(&cl->in);
	cpx_endpoint_free(&cl->ep);
	free(cl->key);
	free(cl);
}

static void
on_client_shutdown(uv_shutdown_t *req, int status)
{
	struct pclient *cl = req->data;

	uv_close((uv_handle_t *)&cl->pipe, on_client_closed);
}

/*
 * The client is done. Its channel is closed without flushing: a shim
 * that went away (SIGKILLed by PMS) must stop its transcoder now, and
 * the EOF that does it is sent at once.
 */
void
pool_client_close(struct pclient *cl)
{
	if (cl->state == PC_DONE)
		return;
	if (cl->state == PC_SESSION)
		pool_session_unwait(cl->sess, cl);
	cl->state = PC_DONE;
	if (cl->ch != NULL)
		cpx_ssh_chan_close(cl->ch, 0);
	cl->ch = NULL;
	pool_session_release(cl);
	uv_read_stop((uv_stream_t *)&cl->pipe);
	cl->shutdown.data = cl;
	if (uv_shutdown(&cl->shutdown, (uv_stream_t *)&cl->pipe,
	    on_client_shutdown) != 0)
		uv_close((uv_handle_t *)&cl->pipe, on_client_closed);
}

struct pwrite {
	uv_write_t req;
	struct cpx_buf data;
};

static void
on_client_written(uv_write_t *req, int status)
{
	struct pwrite *w = (struct pwrite *)req;
	struct pclient *cl = req->data;

	cpx_buf_free(&w->data);
	free(w);
	if (cl->chan_paused && cl->ch != NULL &&
	    cl->pipe.write_queue_size < SPLICE_LOW) {
		cl->chan_paused = 0;
		cpx_ssh_chan_pause(cl->ch, 0);
	}
}

static void
client_write(struct pclient *cl, const void *p, size_t n)
{
	struct pwrite *w = cpx_xmalloc(sizeof *w);
	uv_buf_t buf;

	cpx_buf_init(&w->data);
	cpx_buf_add(&w->data, p, n);
	w->req.data = cl;
	buf = uv_buf_init((char *)w->data.data, (unsigned)n);
	if (uv_write(&w->req, (uv_stream_t *)&cl->pipe, &buf, 1,
	    on_client_written) != 0) {
		cpx_buf_free(&w->data);
		free(w);
		pool_client_close(cl);
	}
}

void
pool_client_fail(struct pclient *cl, int status, const char *cause)
{
	struct cpx_buf b, f;

	cpx_warn("cannot open a channel to %s: %s", cl->ep.name, cause);
	cpx_buf_init(&b);
	cpx_buf_init(&f);
	cpx_error_put(&b, shim_pool_error_code(status), cause);
	cpx_frame_put(&f, CPX_MSG_ERROR, 0, b.data, b.len);
	client_write(cl, f.data, f.len);
	cpx_buf_free(&b);
	cpx_buf_free(&f);
	pool_client_close(cl);
}

static void
on_chan_data(struct cpx_ssh_chan *ch, const void *p, size_t n, void *arg)
{
	struct pclient *cl = arg;

	client_write(cl, p, n);
	if (cl->state == PC_SPLICE && !cl->chan_paused &&
	    cl->pipe.write_queue_size > SPLICE_HIGH) {
		cl->chan_paused = 1;
		cpx_ssh_chan_pause(ch, 1);
	}
}

static void
on_chan_end(struct cpx_ssh_chan *ch, int error, void *arg)
{
	struct pclient *cl = arg;

	cl->ch = NULL;
	pool_client_close(cl);
}

static void on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void
pool_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static __thread char chunk[64 * 1024];

	*buf = uv_buf_init(chunk, sizeof chunk);
}

static void
client_read(struct pclient *cl, int on)
{
	if (cl->state == PC_DONE || cl->reading == on)
		return;
	cl->reading = on;
	if (on)
		uv_read_start((uv_stream_t *)&cl->pipe, pool_alloc,
		    on_client_read);
	else
		uv_read_stop((uv_stream_t *)&cl->pipe);
}

static void
on_chan_drain(struct cpx_ssh_chan *ch, void *arg)
{
	client_read(arg, 1);
}

static void
on_chan_opened(struct cpx_ssh_chan *ch, int status, const char *cause,
    void *arg)
{
	struct pclient *cl = arg;
	struct cpx_buf f;

	if (status != 0) {
		cl->ch = NULL;
		pool_client_retry(cl, status, cause);
		return;
	}
	cl->state = PC_SPLICE;
	cpx_buf_init(&f);
	cpx_frame_put(&f, CPX_MSG_POOL_READY, 0, NULL, 0);
	client_write(cl, f.data, f.len);
	cpx_buf_free(&f);
	/* What the shim sent right behind POOL_OPEN: its HELLO, JOB, RUN. */
	if (cl->in.len > 0)
		cpx_ssh_chan_write(ch, cl->in.data, cl->in.len);
	cpx_buf_free(&cl->in);
	client_read(cl, 1);
}

static const struct cpx_ssh_chan_cbs chan_cbs = {
	.opened = on_chan_opened,
	.data = on_chan_data,
	.end = on_chan_end,
	.drain = on_chan_drain,
};

void
pool_client_open_channel(struct pclient *cl)
{
	cl->state = PC_CHANNEL;
	cl->ch = cpx_ssh_chan_open(cl->sess->conn, SHIM_AGENT_COMMAND,
	    &chan_cbs, cl);
	if (cl->ch == NULL)
		pool_client_retry(cl, -ECONNRESET, "the session just closed");
}

/* The first frame must be POOL_OPEN; bytes after it wait for the channel. */
static void
parse_open(struct pclient *cl)
{
	struct cpx_frame f;
	char *cause = NULL;
	size_t used;
	int error = cpx_frame_next(cl->in.data, cl->in.len, &f, &used);

	if (error == -EAGAIN && cl->in.len < OPEN_FRAME_MAX)
		return;
	if (error != 0 || f.type != CPX_MSG_POOL_OPEN) {
		cpx_warn("a client did not start with POOL_OPEN");
		pool_client_close(cl);
		return;
	}
	if (shim_pool_parse_open(f.payload, f.len, &cl->ep, &cl->key,
	    &cause) != 0) {
		pool_client_fail(cl, -EINVAL, cause);
		free(cause);
		return;
	}
	cpx_buf_consume(&cl->in, used);
	client_request(cl);
}

static void
on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct pclient *cl = s->data;

	if (n < 0) {
		pool_client_close(cl);
		return;
	}
	if (n == 0)
		return;
	if (cl->state == PC_SPLICE) {
		cpx_ssh_chan_write(cl->ch, buf->base, (size_t)n);
		if (cpx_ssh_chan_pending(cl->ch) > SPLICE_HIGH)
			client_read(cl, 0);
		return;
	}
	cpx_buf_add(&cl->in, buf->base, (size_t)n);
	if (cl->state == PC_OPEN_WAIT)
		parse_open(cl);
	else if (cl->in.len > SPLICE_HIGH)
		client_read(cl, 0);
}

static void
client_request(struct pclient *cl)
{
	struct psess *s = pool_session_find(cl->pool, cl->key, cl->avoid);

	if (s == NULL)
		s = pool_session_new(cl->pool, &cl->ep, cl->key);
	pool_session_assign(s, cl);
}

/* A failed open on a session that went bad gets one fresh session. */
void
pool_client_retry(struct pclient *cl, int status, const char *cause)
{
	struct psess *old = cl->sess;

	pool_session_release(cl);
	if (cl->retried || cl->state == PC_DONE || cl->pool->stopping) {
		pool_client_fail(cl, status, cause);
		return;
	}
	cl->retried = 1;
	cl->avoid = old;
	cpx_debug("retrying %s on a new session: %s", cl->ep.name, cause);
	client_request(cl);
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct pool *pool = server->data;
	struct pclient *cl;

	if (status != 0)
		return;
	cl = cpx_xcalloc(1, sizeof *cl);
	cl->pool = pool;
	cpx_buf_init(&cl->in);
	uv_pipe_init(pool->loop, &cl->pipe, 0);
	cl->pipe.data = cl;
	if (uv_accept(server, (uv_stream_t *)&cl->pipe) != 0) {
		uv_close((uv_handle_t *)&cl->pipe, (uv_close_cb)free);
		return;
	}
	cl->next = pool->clients;
	pool->clients = cl;
	client_read(cl, 1);
}

static void
pool_stop(struct pool *pool)
{
	struct pclient *cl;

	if (pool->stopping)
		return;
	pool->stopping = 1;
	cpx_info("stopping");
	uv_close((uv_handle_t *)&pool->server, NULL);
	for (cl = pool->clients; cl != NULL; cl = cl->next)
		pool_client_close(cl);
	pool_sessions_close_all(pool);
	uv_close((uv_handle_t *)&pool->tick, NULL);
	uv_close((uv_handle_t *)&pool->sigterm, NULL);
	uv_close((uv_handle_t *)&pool->sigint, NULL);
}

static void
on_stop_signal(uv_signal_t *h, int sig)
{
	pool_stop(h->data);
}

static void
on_tick(uv_timer_t *t)
{
	pool_sessions_expire(t->data, cpx_now_ms());
}

/* One pool per socket: a second one (two shims racing) steps aside. */
static int
take_lock(struct pool *pool, int spawned)
{
	char *path = cpx_xprintf("%s.lock", pool->sock_path);

	pool->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(path);
	if (pool->lock_fd >= 0 && flock(pool->lock_fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (!spawned)
		cpx_error("another pool already serves %s", pool->sock_path);
	return -EBUSY;
}

static int
listen_socket(struct pool *pool)
{
	mode_t old;
	int error;

	unlink(pool->sock_path);
	uv_pipe_init(pool->loop, &pool->server, 0);
	pool->server.data = pool;
	old = umask(077);	/* only PMS's user may ask for channels */
	error = uv_pipe_bind(&pool->server, pool->sock_path);
	umask(old);
	if (error == 0)
		chmod(pool->sock_path, 0600);
	if (error == 0)
		error = uv_listen((uv_stream_t *)&pool->server, 128,
		    on_connection);
	if (error != 0) {
		cpx_error("cannot listen on %s: %s", pool->sock_path,
		    uv_strerror(error));
		uv_close((uv_handle_t *)&pool->server, NULL);
	}
	return error;
}

static void
write_pid(struct pool *pool)
{
	char *path = cpx_xprintf("%s.pid", pool->sock_path), buf[32];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd >= 0) {
		snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
		(void)cpx_write_all(fd, buf, strlen(buf));
		close(fd);
	}
	free(path);
}

static void
start_handles(struct pool *pool)
{
	uv_timer_init(pool->loop, &pool->tick);
	pool->tick.data = pool;
	uv_timer_start(&pool->tick, on_tick, 1000, 1000);
	uv_signal_init(pool->loop, &pool->sigterm);
	uv_signal_init(pool->loop, &pool->sigint);
	pool->sigterm.data = pool->sigint.data = pool;
	uv_signal_start(&pool->sigterm, on_stop_signal, SIGTERM);
	uv_signal_start(&pool->sigint, on_stop_signal, SIGINT);
}

static int
parse_args(struct pool *pool, int argc, char **argv, int *spawned)
{
	int i;

	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
			free(pool->sock_path);
			pool->sock_path = cpx_xstrdup(argv[++i]);
		} else if (strcmp(argv[i], "--spawned") == 0) {
			*spawned = 1;
		} else {
			fprintf(stderr, "usage: clusterplex-shim pool "
			    "[--socket PATH]\n");
			return -EINVAL;
		}
	}
	return 0;
}

int
shim_pool_main(const struct shim_config *cfg, int argc, char **argv)
{
	struct pool pool = { .cfg = cfg, .lock_fd = -1 };
	char *pid_path;
	int spawned = 0, status = 1;

	pool.sock_path = cpx_xprintf("%s/pool.sock", cfg->run_dir);
	if (parse_args(&pool, argc, argv, &spawned) != 0) {
		free(pool.sock_path);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	cpx_mkdir_p(cfg->run_dir, 0755);
	pool.loop = uv_default_loop();
	if (take_lock(&pool, spawned) != 0) {
		status = spawned ? 0 : 1;
		goto out;
	}
	if (listen_socket(&pool) != 0)
		goto out;
	write_pid(&pool);
	start_handles(&pool);
	cpx_info("serving %s (pid %ld)", pool.sock_path, (long)getpid());
	uv_run(pool.loop, UV_RUN_DEFAULT);
	unlink(pool.sock_path);
	pid_path = cpx_xprintf("%s.pid", pool.sock_path);
	unlink(pid_path);
	free(pid_path);
	status = 0;
out:
	uv_run(pool.loop, UV_RUN_DEFAULT);
	uv_loop_close(pool.loop);
	if (pool.lock_fd >= 0)
		close(pool.lock_fd);
	free(pool.sock_path);
	return status;
}
