/*
 * fuzz_agent_files.c — the agent's file service answering hostile FREQs.
 *
 * Each input is a sequence of frames run against a real folder that holds
 * symlinks pointing out of it. Beside not crashing, the service must leave
 * everything outside its root alone: a canary file and folder next to the
 * root are checked after every input, and the run aborts if they changed.
 */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char top[64], root[96], outside[96], canary[128];
static struct stat canary_st, outside_st;

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
populate(void)
{
	char *p;

	p = cpx_xprintf("%s/Transcode/Sessions/s", root);
	cpx_mkdir_p(p, 0755);
	free(p);
	p = cpx_xprintf("%s/Transcode/Sessions/s/chunk-1.m4s", root);
	close(open(p, O_CREAT | O_WRONLY, 0644));
	free(p);
	p = cpx_xprintf("%s/up", root);
	symlink("../outside", p);
	free(p);
	p = cpx_xprintf("%s/abs", root);
	symlink(outside, p);
	free(p);
	p = cpx_xprintf("%s/Transcode/esc", root);
	symlink("../../outside/canary", p);
	free(p);
	p = cpx_xprintf("%s/proc", root);
	symlink("/proc/self/root", p);
	free(p);
	p = cpx_xprintf("%s/fifo", root);
	mkfifo(p, 0644);
	free(p);
}

static void
init_once(void)
{
	FILE *f;

	strcpy(top, "/tmp/fuzz-agent-files-XXXXXX");
	if (mkdtemp(top) == NULL)
		abort();
	snprintf(root, sizeof root, "%s/root", top);
	snprintf(outside, sizeof outside, "%s/outside", top);
	snprintf(canary, sizeof canary, "%s/canary", outside);
	mkdir(root, 0755);
	mkdir(outside, 0755);
	f = fopen(canary, "w");
	fputs("canary", f);
	fclose(f);
	stat(canary, &canary_st);
	stat(outside, &outside_st);
	atexit(cleanup);
	cpx_log_set_level(CPX_LOG_ERROR);
}

static int
emit(struct files_svc *s, const struct cpx_buf *p)
{
	uint8_t kind;
	char *path = NULL;
	struct cpx_attr a;

	/* Events the service sends must parse on the other side. */
	if (cpx_fevent_parse(p->data, p->len, &kind, &path, &a) != 0)
		abort();
	free(path);
	return 0;
}

static int
emit_push(struct files_svc *s, const struct cpx_buf *p)
{
	struct cpx_push m;

	/* Contents the service pushes must parse on the other side. */
	if (cpx_push_parse(p->data, p->len, &m) != 0)
		abort();
	return 0;
}

/* Nothing outside the root may have changed. */
static void
check_outside(void)
{
	struct stat st;

	if (stat(canary, &st) != 0 || st.st_size != canary_st.st_size ||
	    st.st_mode != canary_st.st_mode ||
	    st.st_mtim.tv_nsec != canary_st.st_mtim.tv_nsec ||
	    st.st_ino != canary_st.st_ino)
		abort();
	if (stat(outside, &st) != 0 || st.st_mtim.tv_sec !=
	    outside_st.st_mtim.tv_sec || st.st_mtim.tv_nsec !=
	    outside_st.st_mtim.tv_nsec || st.st_nlink != outside_st.st_nlink)
		abort();
}

static void
reset_root(void)
{
	char *p = cpx_xprintf("%s", root);

	nftw(p, rm, 16, FTW_DEPTH | FTW_PHYS);
	free(p);
	populate();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct agent_config cfg = { .root = root, .link_timeout_ms = 10000 };
	struct files_svc s;
	struct cpx_frame f;
	struct cpx_buf reply;
	size_t used, off = 0;

	if (!ready) {
		init_once();
		ready = 1;
	}
	reset_root();
	if (files_init(&s, &cfg) != 0)
		abort();
	s.emit = emit;
	s.emit_push = emit_push;
	cpx_buf_init(&reply);
	while (cpx_frame_next(data + off, size - off, &f, &used) == 0) {
		off += used;
		if (f.type != CPX_MSG_FREQ)
			continue;
		files_request(&s, f.payload, f.len, &reply);
		/* Every reply starts with a status, 0 or a negative errno. */
		if (reply.len < 4 || (reply.data[0] != 0 && reply.data[0] != 0xff))
			abort();
		cpx_buf_free(&reply);
		files_watch_drain(&s);
	}
	files_close_all(&s);
	check_outside();
	return 0;
}
