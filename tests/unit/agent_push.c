/* agent_push.c — the file service pushing files while they are written. */

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

#define B CPX_PUSH_BLOCK

/* What the fuse side would hold: per block, the last bytes pushed. */
struct seen {
	uint64_t dev, ino;
	uint8_t *data[64];
	uint32_t len[64];
	unsigned sent[64];	/* how many times each block came */
	int done, dropped;
	struct cpx_attr version;
};

struct fixture {
	char top[64];
	char root[96];
	struct agent_config cfg;
	struct files_svc s;
	struct seen seen;
	struct cpx_buf events;	/* FEVENT payloads, each prefixed by u32 len */
	int order_ok;		/* DONE came before the COMPLETE event */
};

static struct fixture *
fx_of(struct files_svc *s)
{
	return (struct fixture *)((char *)s - offsetof(struct fixture, s));
}

static int
emit(struct files_svc *s, const struct cpx_buf *p)
{
	struct fixture *fx = fx_of(s);
	struct cpx_fevent_msg m;

	assert_int_equal(cpx_fevent_parse_msg(p->data, p->len, &m), 0);
	if (m.kind == CPX_FEV_COMPLETE && m.ino == fx->seen.ino &&
	    !fx->seen.done && !fx->seen.dropped)
		fx->order_ok = 0;
	free(m.path);
	cpx_buf_add_str(&fx->events, p->data, p->len);
	return 0;
}

static int
emit_push(struct files_svc *s, const struct cpx_buf *p)
{
	struct seen *sn = &fx_of(s)->seen;
	struct cpx_push m;
	size_t i;

	assert_int_equal(cpx_push_parse(p->data, p->len, &m), 0);
	sn->dev = m.dev;
	sn->ino = m.ino;
	switch (m.kind) {
	case CPX_PUSH_DATA:
		i = (size_t)(m.offset / B);
		assert_true(i < 64);
		free(sn->data[i]);
		sn->data[i] = cpx_xmalloc(m.len + 1);
		memcpy(sn->data[i], m.data, m.len);
		sn->len[i] = (uint32_t)m.len;
		sn->sent[i]++;
		sn->done = 0;
		break;
	case CPX_PUSH_DONE:
		sn->done = 1;
		sn->version = m.attr;
		break;
	case CPX_PUSH_DROP:
		sn->dropped = 1;
		sn->done = 0;
		break;
	}
	return 0;
}

static void
seen_reset(struct seen *sn)
{
	size_t i;

	for (i = 0; i < 64; i++)
		free(sn->data[i]);
	memset(sn, 0, sizeof *sn);
}

static int
setup(void **state)
{
	struct fixture *fx = cpx_xcalloc(1, sizeof *fx);

	strcpy(fx->top, "/tmp/agent-push-XXXXXX");
	assert_non_null(mkdtemp(fx->top));
	snprintf(fx->root, sizeof fx->root, "%s/root", fx->top);
	mkdir(fx->root, 0755);
	fx->cfg.root = fx->root;
	fx->cfg.link_timeout_ms = 10000;
	assert_int_equal(files_init(&fx->s, &fx->cfg), 0);
	fx->s.emit = emit;
	fx->s.emit_push = emit_push;
	fx->order_ok = 1;
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
	seen_reset(&fx->seen);
	free(fx);
	return 0;
}

static int
request(struct fixture *fx, const struct cpx_freq *q)
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
	cpx_buf_free(&req);
	cpx_buf_free(&reply);
	return status;
}

static int
push_raw(struct fixture *fx, const char *dir, unsigned share,
    unsigned shares, uint64_t max)
{
	struct cpx_freq q = { .op = CPX_FOP_PUSH, .path = dir,
	    .flags = share | shares << 16, .size = max };

	return request(fx, &q);
}

static char *in_root(struct fixture *fx, const char *rel);

/* PUSH of a folder that exists, as connection 0's WATCH made it. */
static int
push(struct fixture *fx, const char *dir, unsigned share, unsigned shares,
    uint64_t max)
{
	char *path = in_root(fx, dir);

	assert_int_equal(cpx_mkdir_p(path, 0755), 0);
	free(path);
	return push_raw(fx, dir, share, shares, max);
}

static uint8_t
byte(size_t i, int v)
{
	return (uint8_t)(i * 31 + (size_t)v * 7 + (i >> 13));
}

static void
fill(uint8_t *p, size_t off, size_t n, int v)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = byte(off + i, v);
}

/* Writes n bytes of version v at off, through fd, in 32 KiB pieces. */
static void
write_at(int fd, size_t off, size_t n, int v)
{
	uint8_t buf[32768];
	size_t k, m;

	for (k = 0; k < n; k += m) {
		m = n - k < sizeof buf ? n - k : sizeof buf;
		fill(buf, off + k, m, v);
		assert_int_equal(pwrite(fd, buf, m, (off_t)(off + k)),
		    (ssize_t)m);
	}
}

static char *
in_root(struct fixture *fx, const char *rel)
{
	return cpx_xprintf("%s/%s", fx->root, rel);
}

/* What the fuse side holds of blocks of `share` equals the file. */
static void
check_share(struct fixture *fx, const char *rel, unsigned share,
    unsigned shares)
{
	char *path = in_root(fx, rel);
	struct stat st;
	uint8_t *want;
	size_t i, n;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(fx->seen.done);
	assert_int_equal(fx->seen.version.size, st.st_size);
	assert_int_equal(fx->seen.version.mtime_ns, st.st_mtim.tv_nsec);
	assert_int_equal(fx->seen.ino, st.st_ino);
	want = cpx_xmalloc(B);
	n = ((size_t)st.st_size + B - 1) / B;
	for (i = 0; i < n; i++) {
		ssize_t got = pread(fd, want, B, (off_t)(i * B));

		if (i % shares != share) {
			assert_int_equal(fx->seen.sent[i], 0);
			continue;
		}
		assert_non_null(fx->seen.data[i]);
		assert_int_equal(fx->seen.len[i], got);
		assert_memory_equal(fx->seen.data[i], want, (size_t)got);
	}
	free(want);
	close(fd);
	free(path);
}

/*
 * A PUSH may come from another connection after PMS deleted the folder
 * through connection 0: it fails and does not make the folder again.
 */
static void
test_push_never_creates(void **state)
{
	struct fixture *fx = *state;
	char *dir = in_root(fx, "S/gone");
	struct stat st;

	assert_int_equal(push_raw(fx, "S/gone", 1, 2, 64 * B), -ENOENT);
	assert_int_equal(stat(dir, &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(request(fx, &(struct cpx_freq){ .op = CPX_FOP_WATCH,
	    .path = "S/gone" }), 0);
	assert_int_equal(stat(dir, &st), 0);	/* WATCH makes it */
	assert_int_equal(push_raw(fx, "S/gone", 1, 2, 64 * B), 0);
	free(dir);
}

/* Blocks go out while the file grows; the tail and DONE at its rename. */
static void
test_grow_then_rename(void **state)
{
	struct fixture *fx = *state;
	char *tmp = in_root(fx, "S/a/seg.tmp"), *fin = in_root(fx, "S/a/seg");
	int fd;

	assert_int_equal(push(fx, "S/a", 0, 1, 64 * B), 0);
	assert_int_equal(request(fx, &(struct cpx_freq){ .op = CPX_FOP_WATCH,
	    .path = "S/a" }), 0);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	write_at(fd, 0, 3 * B + 1000, 1);
	files_watch_drain(&fx->s);
	/* Three whole blocks are out; the partial fourth waits. */
	assert_int_equal(fx->seen.sent[0], 1);
	assert_int_equal(fx->seen.sent[2], 1);
	assert_int_equal(fx->seen.sent[3], 0);
	assert_false(fx->seen.done);
	write_at(fd, 3 * B + 1000, B, 1);
	close(fd);
	assert_int_equal(rename(tmp, fin), 0);
	files_watch_drain(&fx->s);
	check_share(fx, "S/a/seg", 0, 1);
	/* Nothing was sent twice: the rename kept what was out. */
	assert_int_equal(fx->seen.sent[0], 1);
	assert_int_equal(fx->seen.sent[3], 1);
	assert_true(fx->order_ok);
	free(tmp);
	free(fin);
}

/* A block rewritten after it went out is sent again before DONE. */
static void
test_rewrite_before_close(void **state)
{
	struct fixture *fx = *state;
	char *p = in_root(fx, "S/b/media-00001.ts");
	int fd;

	assert_int_equal(push(fx, "S/b", 0, 1, 64 * B), 0);
	assert_int_equal(request(fx, &(struct cpx_freq){ .op = CPX_FOP_WATCH,
	    .path = "S/b" }), 0);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	write_at(fd, 0, 4 * B, 1);
	files_watch_drain(&fx->s);
	assert_int_equal(fx->seen.sent[1], 1);
	write_at(fd, B + 10, 100, 2);	/* a header patched in place */
	write_at(fd, 4 * B, 5000, 1);
	close(fd);
	files_watch_drain(&fx->s);
	check_share(fx, "S/b/media-00001.ts", 0, 1);
	assert_int_equal(fx->seen.sent[1], 2);
	assert_int_equal(fx->seen.sent[0], 1);
	assert_true(fx->order_ok);
	free(p);
}

/* Share 1 of 3 sends blocks 1, 4, 7... and nothing else. */
static void
test_shares(void **state)
{
	struct fixture *fx = *state;
	char *p = in_root(fx, "S/c/x");
	int fd;

	assert_int_equal(push(fx, "S/c", 1, 3, 64 * B), 0);
	assert_int_equal(push(fx, "S/c", 3, 3, 64 * B), -EPROTO);
	assert_int_equal(push(fx, "S/c", 0, 17, 64 * B), -EPROTO);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	write_at(fd, 0, 8 * B + 7, 3);
	close(fd);
	files_watch_drain(&fx->s);
	check_share(fx, "S/c/x", 1, 3);
	assert_int_equal(fx->events.len, 0);	/* PUSH alone sends no events */
	free(p);
}

/* Deleted while written: DROP, and no descriptor stays open. */
static void
test_deleted_mid_write(void **state)
{
	struct fixture *fx = *state;
	char *p = in_root(fx, "S/d/seg.tmp");
	size_t i, open_streams = 0;
	int fd;

	assert_int_equal(push(fx, "S/d", 0, 2, 64 * B), 0);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	write_at(fd, 0, 5 * B, 1);
	files_watch_drain(&fx->s);
	assert_int_equal(fx->seen.sent[2], 1);
	assert_int_equal(unlink(p), 0);
	files_watch_drain(&fx->s);
	assert_true(fx->seen.dropped);
	for (i = 0; i < FILES_MAX_STREAMS; i++)
		open_streams += fx->s.streams[i] != NULL;
	assert_int_equal(open_streams, 0);
	close(fd);
	free(p);
}

/* Larger than the limit: DROP while growing, and at completion. */
static void
test_too_big(void **state)
{
	struct fixture *fx = *state;
	char *p = in_root(fx, "S/e/big");
	int fd;

	assert_int_equal(push(fx, "S/e", 0, 1, 2 * B), 0);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	write_at(fd, 0, 3 * B, 1);
	files_watch_drain(&fx->s);
	assert_true(fx->seen.dropped);
	fx->seen.dropped = 0;
	close(fd);
	files_watch_drain(&fx->s);
	assert_true(fx->seen.dropped);
	assert_false(fx->seen.done);
	free(p);
}

/* A file replaced under its name: the new one is pushed whole. */
static void
test_replaced(void **state)
{
	struct fixture *fx = *state;
	char *tmp = in_root(fx, "S/f/seg.tmp"), *fin = in_root(fx, "S/f/seg");
	int fd, v;

	assert_int_equal(push(fx, "S/f", 0, 1, 64 * B), 0);
	assert_int_equal(request(fx, &(struct cpx_freq){ .op = CPX_FOP_WATCH,
	    .path = "S/f" }), 0);
	for (v = 1; v <= 2; v++) {
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		write_at(fd, 0, 2 * B + 3, v);
		close(fd);
		assert_int_equal(rename(tmp, fin), 0);
		files_watch_drain(&fx->s);
		check_share(fx, "S/f/seg", 0, 1);
		assert_true(fx->order_ok);
	}
	assert_int_equal(fx->seen.sent[0], 2);
	free(tmp);
	free(fin);
}

static void
test_hash(void **state)
{
	uint8_t a[1000], b[1000];

	memset(a, 0, sizeof a);
	memcpy(b, a, sizeof b);
	assert_int_equal(files_hash(a, sizeof a), files_hash(b, sizeof b));
	assert_int_not_equal(files_hash(a, 999), files_hash(a, 1000));
	b[517] = 1;
	assert_int_not_equal(files_hash(a, sizeof a), files_hash(b, sizeof b));
	b[517] = 0;
	b[999] = 1;	/* in the tail, past the last whole 32 bytes */
	assert_int_not_equal(files_hash(a, sizeof a), files_hash(b, sizeof b));
	assert_int_not_equal(files_hash(a, 0), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_grow_then_rename, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rewrite_before_close,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_shares, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deleted_mid_write, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_too_big, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_push_never_creates, setup,
		    teardown),
		cmocka_unit_test(test_hash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
