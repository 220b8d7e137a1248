/* files_splice.c — file bytes for a read reply moved, not copied. */

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "files.h"

/*
 * A READ or PREAD reply's bytes are spliced from the file into a pipe of
 * our own (the page cache's pages, by reference) and from there into the
 * link, which waits for sshd to take them (cpx_link_send_spliced): the
 * agent no longer copies them into a buffer and out of it again, its two
 * copies per byte. Anything unexpected (a filesystem without splice, a
 * pipe smaller than the read) falls back to pread(2); the pipe is empty
 * between requests.
 */

#define SPLICE_PIPE (1 << 20)

/* The pipe, made on first use; 0, or -1 when this agent cannot splice. */
static int
splice_pipe(struct files_svc *s)
{
	int size;

	if (s->spipe[0] >= 0)
		return 0;
	if (s->spipe_failed || pipe2(s->spipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		s->spipe[0] = s->spipe[1] = -1;
		s->spipe_failed = 1;
		return -1;
	}
	(void)fcntl(s->spipe[1], F_SETPIPE_SZ, SPLICE_PIPE);
	size = fcntl(s->spipe[1], F_GETPIPE_SZ);
	s->spipe_room = size > 0 ? (size_t)size / 2 : 0;  /* unaligned reads */
	return 0;
}

/* Empties the pipe: what a failed splice left in it is never sent. */
static void
splice_drain(struct files_svc *s)
{
	char sink[4096];

	while (read(s->spipe[0], sink, sizeof sink) > 0)
		;
	s->spliced = 0;
}

/*
 * Moves up to `size` bytes of fd at `off` into the pipe (s->spliced: how
 * many; fewer at the end of the file). 0, -ENOTSUP when the caller must
 * pread instead, or the -errno of a read that failed.
 */
int
files_splice_read(struct files_svc *s, int fd, uint64_t off, size_t size)
{
	loff_t at = (loff_t)off;
	ssize_t n;

	s->spliced = 0;
	if (!s->splice_ok || splice_pipe(s) != 0 || size > s->spipe_room)
		return -ENOTSUP;
	while (s->spliced < size) {
		n = splice(fd, &at, s->spipe[1], NULL, size - s->spliced,
		    SPLICE_F_NONBLOCK);
		if (n == 0)
			break;
		if (n > 0) {
			s->spliced += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		n = errno == EINVAL || errno == EAGAIN ? -ENOTSUP : -errno;
		splice_drain(s);
		return (int)n;
	}
	return 0;
}

void
files_splice_close(struct files_svc *s)
{
	if (s->spipe[0] >= 0) {
		close(s->spipe[0]);
		close(s->spipe[1]);
	}
	s->spipe[0] = s->spipe[1] = -1;
}
