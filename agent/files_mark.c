/* files_mark.c — which blocks and files the push must (not) send again. */

#include <string.h>
#include <sys/stat.h>

#include "files.h"

static uint64_t
rotl(uint64_t x, int r)
{
	return x << r | x >> (64 - r);
}

static uint64_t
mix(uint64_t acc, uint64_t w)
{
	return rotl((acc ^ w) * 0x9e3779b97f4a7c15ull, 31);
}

/*
 * A 64-bit hash of a block, never 0, fast (four independent lanes of a
 * multiply each 8 bytes). It only has to tell whether a block the agent
 * read twice from the same file changed in between; it guards against
 * accidents, not against the transcoder, which writes what it likes.
 */
uint64_t
files_hash(const uint8_t *p, size_t n)
{
	uint64_t a = 0x243f6a8885a308d3ull ^ n, b = 0x13198a2e03707344ull;
	uint64_t c = 0xa4093822299f31d0ull, d = 0x082efa98ec4e6c89ull, w[4];
	size_t i;

	for (i = 0; i + sizeof w <= n; i += sizeof w) {
		memcpy(w, p + i, sizeof w);
		a = mix(a, w[0]);
		b = mix(b, w[1]);
		c = mix(c, w[2]);
		d = mix(d, w[3]);
	}
	memset(w, 0, sizeof w);
	memcpy(w, p + i, n - i);
	a = mix(a, w[0]) ^ rotl(mix(b, w[1]), 17);
	c = mix(c, w[2]) ^ rotl(mix(d, w[3]), 43);
	a = mix(a, c);
	a ^= a >> 33;
	a *= 0xff51afd7ed558ccdull;
	a ^= a >> 29;
	return a | 1;
}

/*
 * Files written through the service (by fuse, for PMS) are not pushed:
 * they are not transcoder output, and a pushed file is one fuse may pass
 * through to a local copy, which a writer on the PMS host could not
 * share. Their completion says DROP.
 */
void
files_mark_written(struct files_svc *s, int fd)
{
	struct stat sb;

	if (fstat(fd, &sb) != 0)
		return;
	s->written[s->written_next].dev = (uint64_t)sb.st_dev;
	s->written[s->written_next].ino = (uint64_t)sb.st_ino;
	s->written_next = (s->written_next + 1) % FILES_WRITTEN_RING;
}

int
files_was_written(struct files_svc *s, uint64_t dev, uint64_t ino)
{
	size_t i;

	for (i = 0; i < FILES_WRITTEN_RING; i++)
		if (s->written[i].ino == ino && s->written[i].dev == dev &&
		    ino != 0)
			return 1;
	return 0;
}

