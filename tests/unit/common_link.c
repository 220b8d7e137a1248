/*
 * common_link.c — frames over a real pipe: sent with bytes that wait in
 * another pipe, and received into buffers a receiver can take over.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include <cmocka.h>
#include <uv.h>

#include "cpx-link.h"

#define DATA_LEN (192 * 1024)	/* three times the link's pipe */

/* The far end of the link's pipe: reads everything, after a delay. */
struct reader {
	int fd;
	int delay_ms;
	struct cpx_buf got;
	pthread_t thread;
};

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void *
read_all(void *arg)
{
	struct reader *r = arg;
	ssize_t n;

	sleep_ms(r->delay_ms);
	for (;;) {
		cpx_buf_reserve(&r->got, 4096);
		n = read(r->fd, r->got.data + r->got.len, 4096);
		if (n <= 0)
			break;
		r->got.len += (size_t)n;
		sleep_ms(0);
	}
	return NULL;
}

static void
on_frame(struct cpx_link *link, const struct cpx_frame *f, void *arg)
{
}

static uint8_t
pattern(size_t i)
{
	return (uint8_t)(i * 7 + i / 4096);
}

/* A pipe holding DATA_LEN bytes of pattern(), as a caller's would. */
static void
fill_pipe(int p[2])
{
	uint8_t *data = malloc(DATA_LEN);
	size_t i, off = 0;
	ssize_t n;

	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	assert_true(fcntl(p[1], F_SETPIPE_SZ, 2 * DATA_LEN) >= DATA_LEN);
	for (i = 0; i < DATA_LEN; i++)
		data[i] = pattern(i);
	while (off < DATA_LEN) {
		n = write(p[1], data + off, DATA_LEN - off);
		assert_true(n > 0);
		off += (size_t)n;
	}
	free(data);
}

/*
 * Frame 1: "head" then the pipe's bytes; frame 2 sent after it. The
 * reader starts after delay_ms: within the link's wait the bytes are
 * spliced, past it (`queued`) the rest is queued; either way they
 * arrive whole and in order, and the caller's pipe is left empty.
 */
static void
send_and_check(int delay_ms, int queued, size_t before)
{
	uv_loop_t loop;
	struct cpx_link *link;
	struct reader r = { .delay_ms = delay_ms };
	struct cpx_buf head;
	struct cpx_frame f;
	int out[2], in[2], data[2], left = -1;
	const uint8_t *at, *end;
	size_t start, used, i;

	uv_loop_init(&loop);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	(void)fcntl(out[1], F_SETPIPE_SZ, 65536);
	fill_pipe(data);
	link = cpx_link_stream_new(&loop, in[0], out[1], on_frame, NULL, NULL);
	assert_non_null(link);
	assert_true(cpx_link_can_splice(link));
	r.fd = out[0];
	cpx_buf_init(&r.got);
	assert_int_equal(pthread_create(&r.thread, NULL, read_all, &r), 0);

	if (before > 0) {	/* a frame queued already: ours goes behind it */
		uint8_t *big = calloc(1, before);

		cpx_link_send(link, CPX_MSG_PONG, 0, big, before);
		free(big);
		assert_true(cpx_link_pending(link) > 0);
	}
	cpx_buf_init(&head);
	start = cpx_frame_begin(&head);
	cpx_buf_add(&head, "head", 4);
	cpx_frame_end_after(&head, start, CPX_MSG_FREPLY, 1, DATA_LEN);
	cpx_link_send_spliced(link, &head, data[0], DATA_LEN);
	if (queued)
		assert_true(cpx_link_pending(link) > 0);
	cpx_link_send(link, CPX_MSG_PONG, 2, "after", 5);
	assert_int_equal(ioctl(data[0], FIONREAD, &left), 0);
	assert_int_equal(left, 0);
	while (cpx_link_pending(link) > 0)
		uv_run(&loop, UV_RUN_ONCE);
	cpx_link_close(link);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(pthread_join(r.thread, NULL), 0);

	at = r.got.data;
	end = r.got.data + r.got.len;
	if (before > 0) {
		assert_int_equal(cpx_frame_next(at, (size_t)(end - at), &f,
		    &used), 0);
		assert_int_equal(f.len, before);
		at += used;
	}
	assert_int_equal(cpx_frame_next(at, (size_t)(end - at), &f, &used), 0);
	at += used;
	assert_int_equal(f.type, CPX_MSG_FREPLY);
	assert_int_equal(f.id, 1);
	assert_int_equal(f.len, 4 + DATA_LEN);
	assert_memory_equal(f.payload, "head", 4);
	for (i = 0; i < DATA_LEN; i++)
		if (f.payload[4 + i] != pattern(i))
			fail_msg("byte %zu differs", i);
	assert_int_equal(cpx_frame_next(at, (size_t)(end - at), &f, &used), 0);
	assert_int_equal(f.id, 2);
	assert_memory_equal(f.payload, "after", 5);
	assert_ptr_equal(at + used, end);

	cpx_buf_free(&r.got);
	close(data[0]);
	close(data[1]);
	close(out[0]);
	close(in[1]);
	uv_loop_close(&loop);
}

static void
test_spliced_while_read(void **state)
{
	send_and_check(20, 0, 0);
}

static void
test_queued_when_reader_stalls(void **state)
{
	send_and_check(600, 1, 0);
}

static void
test_behind_queued_frames(void **state)
{
	send_and_check(300, 1, 100000);
}

/* Receiving: frames of these sizes, written to the link's pipe in pieces. */
static const size_t frame_sizes[] = {
	10, 150000, 3, 70000, CPX_PUSH_BLOCK + 40, 0, CPX_FRAME_MAX, 5,
};
#define NFRAMES (sizeof frame_sizes / sizeof frame_sizes[0])

struct receiver {
	int take;		/* take over large frames' buffers */
	size_t seen;
	void *kept[NFRAMES];	/* taken buffers, checked at the end */
	const uint8_t *payload[NFRAMES];
};

static uint8_t
frame_byte(size_t id, size_t i)
{
	return (uint8_t)(id * 31 + i * 7 + i / 1000);
}

static void
check_payload(size_t id, const uint8_t *p, size_t len)
{
	size_t i;

	assert_int_equal(len, frame_sizes[id]);
	for (i = 0; i < len; i++)
		if (p[i] != frame_byte(id, i))
			fail_msg("frame %zu: byte %zu differs", id, i);
}

static void
on_frame_received(struct cpx_link *link, const struct cpx_frame *f,
    void *arg)
{
	struct receiver *rc = arg;
	size_t id = rc->seen++;

	assert_true(id < NFRAMES);
	assert_int_equal(f->id, id);
	check_payload(id, f->payload, f->len);
	if (!rc->take)
		return;
	rc->kept[id] = cpx_link_take_frame(link, f);
	rc->payload[id] = f->payload;
	/* A large frame always spans reads here (the pipe holds 64 KiB). */
	if (f->len >= 64 * 1024)
		assert_non_null(rc->kept[id]);
}

static void
on_received_all(struct cpx_link *link, int error, void *arg)
{
	assert_int_equal(error, 0);
}

/* Writes every frame into the pipe in pieces of 1 to 20,000 bytes. */
static void *
write_frames(void *arg)
{
	int fd = *(int *)arg;
	struct cpx_buf all, payload;
	size_t id, i, off, piece, seed = 1;
	ssize_t n;

	cpx_buf_init(&all);
	for (id = 0; id < NFRAMES; id++) {
		cpx_buf_init(&payload);
		for (i = 0; i < frame_sizes[id]; i++)
			cpx_buf_add_u8(&payload, frame_byte(id, i));
		cpx_frame_put(&all, CPX_MSG_FREPLY, (uint32_t)id,
		    payload.data, payload.len);
		cpx_buf_free(&payload);
	}
	for (off = 0; off < all.len; off += (size_t)n) {
		seed = seed * 1103515245 + 12345;
		piece = 1 + (seed >> 8) % 20000;
		if (piece > all.len - off)
			piece = all.len - off;
		n = write(fd, all.data + off, piece);
		assert_true(n > 0);
	}
	close(fd);
	cpx_buf_free(&all);
	return NULL;
}

/*
 * Frames arrive whole and in order, whoever keeps what; a large frame's
 * buffer can be taken over, and its bytes stay as they were while the
 * link reads on into buffers of its own.
 */
static void
receive_and_check(int take)
{
	struct receiver rc = { .take = take };
	struct cpx_link *link;
	uv_loop_t loop;
	pthread_t writer;
	int in[2], out[2];
	size_t id;

	uv_loop_init(&loop);
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_true(fcntl(in[1], F_SETPIPE_SZ, 65536) == 65536);
	link = cpx_link_stream_new(&loop, in[0], out[1], on_frame_received,
	    on_received_all, &rc);
	assert_non_null(link);
	assert_int_equal(pthread_create(&writer, NULL, write_frames, &in[1]),
	    0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(pthread_join(writer, NULL), 0);
	assert_int_equal(rc.seen, NFRAMES);
	for (id = 0; id < NFRAMES; id++) {
		if (rc.kept[id] == NULL)
			continue;
		check_payload(id, rc.payload[id], frame_sizes[id]);
		free(rc.kept[id]);
	}
	close(out[0]);
	uv_loop_close(&loop);
}

static void
test_large_frames_taken(void **state)
{
	receive_and_check(1);
}

static void
test_frames_not_taken(void **state)
{
	receive_and_check(0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spliced_while_read),
		cmocka_unit_test(test_queued_when_reader_stalls),
		cmocka_unit_test(test_behind_queued_frames),
		cmocka_unit_test(test_large_frames_taken),
		cmocka_unit_test(test_frames_not_taken),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
