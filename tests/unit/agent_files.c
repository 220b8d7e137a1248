/* agent_files.c — the file service: every op, its bounds and its confinement. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "files.h"

struct fixture {
	char top[64];		/* holds root/ and outside/ */
	char root[96];
	struct agent_config cfg;
	struct files_svc s;
	struct cpx_buf events;	/* FEVENT payloads, each prefixed by u32 len */
};

static int
emit(struct files_svc *s, const struct cpx_buf *p)
{
	struct fixture *fx = (struct fixture *)((char *)s -
	    offsetof(struct fixture, s));

	cpx_buf_add_str(&fx->events, p->data, p->len);
	return 0;
}

static void
put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int
setup(void **state)
{
	struct fixture *fx = cpx_xcalloc(1, sizeof *fx);
	char *p;

	strcpy(fx->top, "/tmp/agent-files-XXXXXX");
	assert_non_null(mkdtemp(fx->top));
	snprintf(fx->root, sizeof fx->root, "%s/root", fx->top);
	mkdir(fx->root, 0755);
	p = cpx_xprintf("%s/outside", fx->top);
	mkdir(p, 0755);
	free(p);
	p = cpx_xprintf("%s/outside/secret", fx->top);
	put(p, "secret");
	free(p);
	fx->cfg.root = fx->root;
	fx->cfg.link_timeout_ms = 10000;
	assert_int_equal(files_init(&fx->s, &fx->cfg), 0);
	fx->s.emit = emit;
	cpx_buf_init(&fx->events);
	*state = fx;
	return 0;
}

static int
rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	files_close_all(&fx->s);
	nftw(fx->top, rm, 16, FTW_DEPTH | FTW_PHYS);
	cpx_buf_free(&fx->events);
	free(fx);
	return 0;
}

/* Sends one request; returns its status and leaves the result in *res. */
static int
call(struct fixture *fx, const struct cpx_freq *q, struct cpx_buf *res)
{
	struct cpx_buf req, reply;
	struct cpx_reader r;
	int32_t status;

	cpx_buf_init(&req);
	cpx_buf_init(&reply);
	cpx_freq_put(&req, q);
	files_request(&fx->s, req.data, req.len, &reply);
	cpx_reader_init(&r, reply.data, reply.len);
	status = (int32_t)cpx_rd_u32(&r);
	assert_false(r.err);
	if (res != NULL) {
		cpx_buf_init(res);
		cpx_buf_add(res, r.p, r.left);
	}
	cpx_buf_free(&req);
	cpx_buf_free(&reply);
	return status;
}

static int
simple(struct fixture *fx, uint8_t op, const char *path)
{
	struct cpx_freq q = { .op = op, .path = path };

	return call(fx, &q, NULL);
}

static char *
in_root(struct fixture *fx, const char *rel)
{
	return cpx_xprintf("%s/%s", fx->root, rel);
}

static void
test_stat_pread_readdir(void **state)
{
	struct fixture *fx = *state;
	struct cpx_freq q = { .op = CPX_FOP_PREAD, .path = "a/f", .size = 100 };
	struct cpx_buf res;
	struct cpx_reader r;
	struct cpx_attr a;
	size_t n;
	char *p = in_root(fx, "a");

	mkdir(p, 0755);
	free(p);
	p = in_root(fx, "a/f");
	put(p, "hello");
	free(p);
	assert_int_equal(simple(fx, CPX_FOP_STAT, "a/f"), 0);
	assert_int_equal(simple(fx, CPX_FOP_STAT, ""), 0);
	assert_int_equal(simple(fx, CPX_FOP_STAT, "a/nope"), -ENOENT);
	assert_int_equal(call(fx, &q, &res), 0);
	cpx_reader_init(&r, res.data, res.len);
	cpx_attr_get(&r, &a);
	assert_int_equal(a.size, 5);
	assert_memory_equal(cpx_rd_str(&r, &n, 100), "hello", 5);
	assert_int_equal(n, 5);
	cpx_buf_free(&res);
	q.op = CPX_FOP_READDIR;
	q.offset = 0;
	assert_int_equal(call(fx, &q, &res), -ENOTDIR);
	cpx_buf_free(&res);
	q.path = "a";
	assert_int_equal(call(fx, &q, &res), 0);
	cpx_reader_init(&r, res.data, res.len);
	assert_int_equal(cpx_rd_u32(&r), 1);
	cpx_buf_free(&res);
}

/* Every way out of the root is refused, and nothing outside changes. */
static void
test_confinement(void **state)
{
	struct fixture *fx = *state;
	struct cpx_freq q = { .op = CPX_FOP_OPEN, .flags = CPX_O_RDWR };
	char *p, *out = cpx_xprintf("%s/outside", fx->top);
	struct stat st;

	p = in_root(fx, "up");
	assert_int_equal(symlink("../outside", p), 0);
	free(p);
	p = in_root(fx, "secret");
	assert_int_equal(symlink("../outside/secret", p), 0);
	free(p);
	p = in_root(fx, "abs");
	assert_int_equal(symlink(out, p), 0);
	free(p);
	p = in_root(fx, "proc");
	assert_int_equal(symlink("/proc/self/root/etc", p), 0);
	free(p);
	/* Malformed paths never reach the disk. */
	assert_int_equal(simple(fx, CPX_FOP_STAT, "../outside/secret"), -EPROTO);
	assert_int_equal(simple(fx, CPX_FOP_STAT, "/etc/passwd"), -EPROTO);
	assert_int_equal(simple(fx, CPX_FOP_STAT, "a/./b"), -EPROTO);
	/* Symlinks out are refused by the kernel (openat2 RESOLVE_BENEATH). */
	assert_int_equal(simple(fx, CPX_FOP_STAT, "up/secret"), -EXDEV);
	assert_int_equal(simple(fx, CPX_FOP_STAT, "secret"), -EXDEV);
	assert_int_equal(simple(fx, CPX_FOP_STAT, "abs"), -EXDEV);
	assert_int_equal(simple(fx, CPX_FOP_STAT, "proc/passwd"), -EXDEV);
	q.path = "secret";
	assert_int_equal(call(fx, &q, NULL), -EXDEV);
	q.path = "up/new";
	q.flags = CPX_O_CREAT | CPX_O_WRONLY;
	assert_int_equal(call(fx, &q, NULL), -EXDEV);
	assert_int_equal(simple(fx, CPX_FOP_UNLINK, "up/secret"), -EXDEV);
	assert_int_equal(simple(fx, CPX_FOP_MKDIR, "up/d"), -EXDEV);
	assert_int_equal(simple(fx, CPX_FOP_WATCH, "up/w"), -EXDEV);
	q.op = CPX_FOP_RENAME;
	q.path = "a";
	q.path2 = "up/stolen";
	q.flags = 0;
	assert_int_equal(call(fx, &q, NULL), -EXDEV);
	q.op = CPX_FOP_CHMOD;
	q.path = "secret";
	q.mode = 0777;
	assert_int_equal(call(fx, &q, NULL), -EXDEV);
	q.op = CPX_FOP_TRUNCATE;
	q.size = 0;
	assert_int_equal(call(fx, &q, NULL), -EXDEV);
	/* The symlink itself may go: it is a name inside the root. */
	assert_int_equal(simple(fx, CPX_FOP_UNLINK, "secret"), 0);
	p = cpx_xprintf("%s/secret", out);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 6);
	assert_int_equal(st.st_mode & 0777, 0644);
	free(p);
	free(out);
}

static void
test_handles(void **state)
{
	struct fixture *fx = *state;
	struct cpx_freq q = { .op = CPX_FOP_OPEN, .path = "f",
		.flags = CPX_O_CREAT | CPX_O_RDWR, .mode = 0640 };
	struct cpx_buf res;
	struct cpx_reader r;
	uint64_t h, first = 0;
	size_t n;
	int i;

	for (i = 0; i < FILES_MAX_HANDLES; i++) {
		assert_int_equal(call(fx, &q, &res), 0);
		cpx_reader_init(&r, res.data, res.len);
		h = cpx_rd_u64(&r);
		if (i == 0)
			first = h;
		cpx_buf_free(&res);
	}
	assert_int_equal(call(fx, &q, NULL), -EMFILE);
	q.op = CPX_FOP_WRITE;
	q.handle = first;
	q.offset = 3;
	q.data = (const uint8_t *)"abc";
	q.datalen = 3;
	assert_int_equal(call(fx, &q, &res), 0);
	cpx_buf_free(&res);
	q.op = CPX_FOP_READ;
	q.offset = 0;
	q.size = 10;
	assert_int_equal(call(fx, &q, &res), 0);
	cpx_reader_init(&r, res.data, res.len);
	assert_memory_equal(cpx_rd_str(&r, &n, 10), "\0\0\0abc", 6);
	assert_int_equal(n, 6);
	cpx_buf_free(&res);
	q.op = CPX_FOP_CLOSE;
	assert_int_equal(call(fx, &q, NULL), 0);
	assert_int_equal(call(fx, &q, NULL), -EBADF);	/* closed */
	q.op = CPX_FOP_OPEN;
	assert_int_equal(call(fx, &q, &res), 0);	/* the slot again */
	cpx_buf_free(&res);
	q.op = CPX_FOP_READ;
	assert_int_equal(call(fx, &q, NULL), -EBADF);	/* old generation */
	q.handle = 0xffffffffffull;
	assert_int_equal(call(fx, &q, NULL), -EBADF);
}

/* A FIFO would block an open forever; the service must not hang on one. */
static void
test_fifo(void **state)
{
	struct fixture *fx = *state;
	struct cpx_freq q = { .op = CPX_FOP_PREAD, .path = "fifo", .size = 10 };
	char *p = in_root(fx, "fifo");

	assert_int_equal(mkfifo(p, 0644), 0);
	free(p);
	assert_int_equal(call(fx, &q, NULL), -EINVAL);
	q.op = CPX_FOP_OPEN;
	q.flags = CPX_O_RDONLY;
	assert_int_equal(call(fx, &q, NULL), -EINVAL);
	q.op = CPX_FOP_TRUNCATE;
	assert_int_not_equal(call(fx, &q, NULL), 0);
}

static void
test_names(void **state)
{
	struct fixture *fx = *state;
	struct cpx_freq q = { .op = CPX_FOP_MKDIR, .path = "d", .mode = 0750 };
	struct cpx_buf res;
	struct cpx_reader r;
	struct cpx_statfs sf;
	struct stat st;
	char *p;

	assert_int_equal(call(fx, &q, NULL), 0);
	assert_int_equal(call(fx, &q, NULL), -EEXIST);
	p = in_root(fx, "d/x");
	put(p, "x");
	free(p);
	p = in_root(fx, "y");
	put(p, "y");
	free(p);
	assert_int_equal(simple(fx, CPX_FOP_RMDIR, "d"), -ENOTEMPTY);
	q.op = CPX_FOP_RENAME;
	q.path = "y";
	q.path2 = "d/x";
	q.flags = CPX_RENAME_NOREPLACE;
	assert_int_equal(call(fx, &q, NULL), -EEXIST);
	q.flags = 0;
	assert_int_equal(call(fx, &q, NULL), 0);
	q.op = CPX_FOP_TRUNCATE;
	q.path = "d/x";
	q.size = 1000;
	assert_int_equal(call(fx, &q, NULL), 0);
	q.op = CPX_FOP_CHMOD;
	q.mode = 0600;
	assert_int_equal(call(fx, &q, NULL), 0);
	q.op = CPX_FOP_UTIMENS;
	q.atime_s = 1000;
	q.mtime_s = 2000;
	q.mtime_ns = 5;
	assert_int_equal(call(fx, &q, NULL), 0);
	p = in_root(fx, "d/x");
	assert_int_equal(stat(p, &st), 0);
	free(p);
	assert_int_equal(st.st_size, 1000);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_mtim.tv_sec, 2000);
	assert_int_equal(st.st_mtim.tv_nsec, 5);
	assert_int_equal(simple(fx, CPX_FOP_UNLINK, "d/x"), 0);
	assert_int_equal(simple(fx, CPX_FOP_RMDIR, "d"), 0);
	assert_int_equal(simple(fx, CPX_FOP_UNLINK, ""), -EINVAL);
	q.op = CPX_FOP_STATFS;
	q.path = "";
	assert_int_equal(call(fx, &q, &res), 0);
	cpx_reader_init(&r, res.data, res.len);
	cpx_statfs_get(&r, &sf);
	assert_false(r.err);
	assert_true(sf.bsize > 0 && sf.namemax >= 255);
	cpx_buf_free(&res);
}

static void
test_readdir_pages(void **state)
{
	struct fixture *fx = *state;
	struct cpx_freq q = { .op = CPX_FOP_READDIR, .path = "many" };
	char *dir = in_root(fx, "many"), *p;
	struct cpx_buf res;
	struct cpx_reader r;
	struct cpx_attr a;
	uint32_t count, i, total = 0;
	int n = 14000, pages = 0, fd;

	mkdir(dir, 0755);
	for (i = 0; i < (uint32_t)n; i++) {
		p = cpx_xprintf("%s/chunk-stream0-%05u.m4s", dir, i);
		fd = open(p, O_CREAT | O_WRONLY, 0644);
		assert_true(fd >= 0);
		close(fd);
		free(p);
	}
	do {
		assert_int_equal(call(fx, &q, &res), 0);
		assert_true(res.len <= CPX_FRAME_MAX - CPX_FRAME_HDR - 4);
		cpx_reader_init(&r, res.data, res.len);
		count = cpx_rd_u32(&r);
		for (i = 0; i < count; i++) {
			free(cpx_rd_cstr(&r, 255));
			cpx_attr_get(&r, &a);
		}
		q.offset = cpx_rd_u64(&r);
		assert_false(r.err);
		assert_int_equal(r.left, 0);
		total += count;
		pages++;
		cpx_buf_free(&res);
	} while (q.offset != 0);
	assert_int_equal(total, n);
	assert_true(pages >= 2);
	free(dir);
}

/* Returns the next event's kind and path (caller frees), or 0. */
static uint8_t
next_event(struct fixture *fx, size_t *off, char **path)
{
	struct cpx_reader r;
	struct cpx_attr a;
	const uint8_t *p;
	uint8_t kind;
	size_t n;

	if (*off >= fx->events.len)
		return 0;
	cpx_reader_init(&r, fx->events.data + *off, fx->events.len - *off);
	p = cpx_rd_str(&r, &n, CPX_FRAME_MAX);
	*off += 4 + n;
	assert_int_equal(cpx_fevent_parse(p, n, &kind, path, &a), 0);
	return kind;
}

static void
test_watch(void **state)
{
	struct fixture *fx = *state;
	char *tmp = in_root(fx, "S/x/seg.tmp"), *fin = in_root(fx, "S/x/seg");
	char *path = NULL;
	size_t off = 0;
	int kinds = 0;
	uint8_t k;

	assert_int_equal(simple(fx, CPX_FOP_WATCH, ""), -EINVAL);
	assert_int_equal(simple(fx, CPX_FOP_WATCH, "S/x"), 0);	/* created */
	assert_int_equal(simple(fx, CPX_FOP_WATCH, "S/x"), 0);	/* idempotent */
	put(tmp, "data");
	assert_int_equal(rename(tmp, fin), 0);
	files_watch_drain(&fx->s);	/* names gone by then are not stat-ed */
	unlink(fin);
	files_watch_drain(&fx->s);
	while ((k = next_event(fx, &off, &path)) != 0) {
		if (k == CPX_FEV_COMPLETE && strcmp(path, "S/x/seg") == 0)
			kinds |= 1;
		if (k == CPX_FEV_CREATED && strcmp(path, "S/x/seg.tmp") == 0)
			kinds |= 2;
		if (k == CPX_FEV_REMOVED && strcmp(path, "S/x/seg") == 0)
			kinds |= 4;
		free(path);
	}
	assert_int_equal(kinds, 7);
	assert_int_equal(simple(fx, CPX_FOP_UNWATCH, "S/x"), 0);
	assert_int_equal(simple(fx, CPX_FOP_UNWATCH, "S/x"), -ENOENT);
	put(tmp, "more");
	files_watch_drain(&fx->s);
	assert_int_equal(next_event(fx, &off, &path), 0);	/* silence */
	assert_int_equal(simple(fx, CPX_FOP_WATCH, "S/x"), 0);
	unlink(tmp);
	free(fin);
	fin = in_root(fx, "S/x");
	assert_int_equal(rmdir(fin), 0);
	files_watch_drain(&fx->s);
	kinds = 0;
	while ((k = next_event(fx, &off, &path)) != 0) {
		kinds |= k == CPX_FEV_DIR_GONE;
		free(path);
	}
	assert_int_equal(kinds, 1);
	free(tmp);
	free(fin);
}

/* mkdir -p of a path below the root. */
static void
make_dirs(struct fixture *fx, const char *rel)
{
	char *p = in_root(fx, rel), *slash;

	for (slash = p + strlen(fx->root) + 1; (slash = strchr(slash, '/'));
	    slash++) {
		*slash = '\0';
		mkdir(p, 0755);
		*slash = '/';
	}
	mkdir(p, 0755);
	free(p);
}

/*
 * RMTREE takes a session folder with everything in it (files, a FIFO,
 * subfolders, symlinks out, which it removes without following), and
 * nothing else: not the root, not through a symlink, not a tree too deep.
 */
static void
test_rmtree(void **state)
{
	struct fixture *fx = *state;
	char *p, *deep, *out = cpx_xprintf("%s/outside", fx->top);
	struct stat st;
	int i;

	make_dirs(fx, "s/sub/deeper");
	p = in_root(fx, "s/seg-1.m4s");
	put(p, "x");
	free(p);
	p = in_root(fx, "s/sub/deeper/f");
	put(p, "y");
	free(p);
	p = in_root(fx, "s/fifo");
	assert_int_equal(mkfifo(p, 0644), 0);
	free(p);
	p = in_root(fx, "s/out");
	assert_int_equal(symlink(out, p), 0);
	free(p);
	p = in_root(fx, "s/sub/secret");
	assert_int_equal(symlink("../../../outside/secret", p), 0);
	free(p);
	assert_int_equal(simple(fx, CPX_FOP_RMTREE, "s"), 0);
	p = in_root(fx, "s");
	assert_int_not_equal(lstat(p, &st), 0);
	free(p);
	p = cpx_xprintf("%s/secret", out);
	assert_int_equal(stat(p, &st), 0);	/* the symlinks' target stays */
	free(p);
	assert_int_equal(simple(fx, CPX_FOP_RMTREE, "s"), 0);	/* idempotent */
	/* Not the root; not through a symlink out; the link itself may go. */
	assert_int_equal(simple(fx, CPX_FOP_RMTREE, ""), -EINVAL);
	assert_int_equal(simple(fx, CPX_FOP_RMTREE, "../outside"), -EPROTO);
	p = in_root(fx, "up");
	assert_int_equal(symlink("../outside", p), 0);
	free(p);
	assert_int_equal(simple(fx, CPX_FOP_RMTREE, "up/secret"), -EXDEV);
	assert_int_equal(simple(fx, CPX_FOP_RMTREE, "up"), 0);
	p = cpx_xprintf("%s/secret", out);
	assert_int_equal(stat(p, &st), 0);
	free(p);
	/* A tree deeper than any session folder is refused, not walked. */
	deep = cpx_xstrdup("t");
	for (i = 0; i < 20; i++) {
		p = cpx_xprintf("%s/d", deep);
		free(deep);
		deep = p;
	}
	make_dirs(fx, deep);
	free(deep);
	assert_int_equal(simple(fx, CPX_FOP_RMTREE, "t"), -ELOOP);
	free(out);
}

static void
test_malformed(void **state)
{
	struct fixture *fx = *state;
	const uint8_t junk[] = { 99, 0, 0 }, stat_short[] = { CPX_FOP_STAT, 0 };
	struct cpx_buf reply;

	cpx_buf_init(&reply);
	files_request(&fx->s, junk, sizeof junk, &reply);
	files_request(&fx->s, stat_short, sizeof stat_short, &reply);
	files_request(&fx->s, NULL, 0, &reply);
	assert_int_equal(reply.len, 12);
	assert_memory_equal(reply.data, "\xff\xff\xff\xb9\xff\xff\xff\xb9"
	    "\xff\xff\xff\xb9", 12);	/* -EPROTO thrice */
	cpx_buf_free(&reply);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stat_pread_readdir, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_confinement, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readdir_pages, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_watch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rmtree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
