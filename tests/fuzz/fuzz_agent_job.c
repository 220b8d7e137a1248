/*
 * fuzz_agent_job.c — the worker's job service (clusterplex-agent exec,
 * after HELLO "job") reading hostile frames from a PMS host that holds the
 * key: JOB specs, INPUT files, codec-set frames, STDIN, SIGNAL, tunnel
 * frames, in any order, then EOF. It runs on a real loop over a socket
 * pair, with a real folder as its transcode root; RUN frames are dropped
 * so no process starts (tests/integration/security_agent.sh covers runs).
 *
 * Beside not crashing, the service must write nothing outside its root: a
 * canary folder next to it is checked after every input.
 */

#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char top[64], root[96], outside[96];
static struct agent_config cfg;
static struct stat outside_st;

static int
rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (ftw->level > 0)
		remove(path);
	return 0;
}

static void
cleanup(void)
{
	nftw(top, rm, 16, FTW_DEPTH | FTW_PHYS);
	rmdir(top);
}

static void
init_once(void)
{
	char *p;

	strcpy(top, "/tmp/fuzz-agent-job-XXXXXX");
	if (mkdtemp(top) == NULL)
		abort();
	snprintf(root, sizeof root, "%s/root", top);
	snprintf(outside, sizeof outside, "%s/outside", top);
	mkdir(root, 0755);
	mkdir(outside, 0755);
	stat(outside, &outside_st);
	atexit(cleanup);
	cpx_log_set_level(CPX_LOG_ERROR);
	cfg.name = "fuzz";
	cfg.root = root;
	cfg.transcoder = "/bin/true";
	cfg.run_dir = p = cpx_xprintf("%s/run", top);
	mkdir(p, 0755);
	cfg.codec_cache = cpx_xprintf("%s/codecs", top);
	cfg.eae_dir = cpx_xprintf("%s/eae", top);
	cfg.codec_sources = AGENT_SRC_PMS;
	cfg.codec_order[0] = AGENT_SRC_PMS;
	cfg.ncodec_order = 1;
	cfg.codec_cpu = cpx_xstrdup(cpx_codec_cpu());
	cfg.codec_timeout_ms = 1000;
	cfg.link_timeout_ms = 1000;
	cfg.max_tasks = 4;
	cfg.eae_idle_ms = 100;
}

static void
reset_root(void)
{
	char *p;

	nftw(root, rm, 16, FTW_DEPTH | FTW_PHYS);
	p = cpx_xprintf("%s/Transcode/Sessions", root);
	cpx_mkdir_p(p, 0755);
	free(p);
	/* A link out of the root, as a careless volume could hold. */
	p = cpx_xprintf("%s/Transcode/Sessions/out", root);
	symlink(outside, p);
	free(p);
}

static void
check_outside(void)
{
	struct stat st;

	if (stat(outside, &st) != 0 || st.st_nlink != outside_st.st_nlink ||
	    st.st_mtim.tv_sec != outside_st.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != outside_st.st_mtim.tv_nsec)
		abort();
}

static void
ignore_frame(struct cpx_link *link, const struct cpx_frame *f, void *arg)
{
}

static void
ignore_close(struct cpx_link *link, int error, void *arg)
{
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct cpx_frame f;
	struct cpx_buf in;
	struct cpx_link *link;
	uv_loop_t loop;
	size_t off = 0, used;
	int sv[2], status = 0;
	char buf[65536];

	if (!ready) {
		init_once();
		ready = 1;
	}
	reset_root();
	/* The frames to send, without RUN. */
	cpx_buf_init(&in);
	while (cpx_frame_next(data + off, size - off, &f, &used) == 0) {
		off += used;
		if (f.type != CPX_MSG_RUN)
			cpx_frame_put(&in, f.type, f.id, f.payload, f.len);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	if (in.len > 0 && write(sv[1], in.data, in.len) != (ssize_t)in.len)
		abort();
	shutdown(sv[1], SHUT_WR);
	uv_loop_init(&loop);
	link = cpx_link_stream_new(&loop, sv[0], sv[0], ignore_frame,
	    ignore_close, NULL);
	if (link == NULL || agent_job_start(&cfg, &loop, link, &status) != 0)
		abort();
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0)
		abort();	/* a handle left open: the service did not end */
	/* What it answered must be frames too. */
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	while (read(sv[1], buf, sizeof buf) > 0)
		;
	close(sv[1]);
	cpx_buf_free(&in);
	check_outside();
	return 0;
}
