/* buf.c — growable byte buffers (big-endian writers) and a bounded reader. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpx.h"

void
cpx_buf_init(struct cpx_buf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
}

void
cpx_buf_free(struct cpx_buf *b)
{
	free(b->data);
	cpx_buf_init(b);
}

void
cpx_buf_reserve(struct cpx_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;

	if (need <= b->cap)
		return;
	if (need < b->cap * 2)
		need = b->cap * 2;
	if (need < 256)
		need = 256;
	b->data = cpx_xrealloc(b->data, need);
	b->cap = need;
}

void
cpx_buf_add(struct cpx_buf *b, const void *p, size_t n)
{
	cpx_buf_reserve(b, n);
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
cpx_buf_add_u8(struct cpx_buf *b, uint8_t v)
{
	cpx_buf_add(b, &v, 1);
}

void
cpx_buf_add_u16(struct cpx_buf *b, uint16_t v)
{
	uint8_t d[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	cpx_buf_add(b, d, sizeof d);
}

void
cpx_buf_add_u32(struct cpx_buf *b, uint32_t v)
{
	cpx_buf_reserve(b, 4);
	b->len += 4;
	cpx_buf_set_u32(b, b->len - 4, v);
	b->data[b->len] = '\0';
}

/* Overwrites the 4 bytes at pos: a length or count known only later. */
void
cpx_buf_set_u32(struct cpx_buf *b, size_t pos, uint32_t v)
{
	b->data[pos] = (uint8_t)(v >> 24);
	b->data[pos + 1] = (uint8_t)(v >> 16);
	b->data[pos + 2] = (uint8_t)(v >> 8);
	b->data[pos + 3] = (uint8_t)v;
}

void
cpx_buf_add_u64(struct cpx_buf *b, uint64_t v)
{
	cpx_buf_add_u32(b, (uint32_t)(v >> 32));
	cpx_buf_add_u32(b, (uint32_t)v);
}

/* A string on the wire: u32 length, then the bytes. */
void
cpx_buf_add_str(struct cpx_buf *b, const void *p, size_t n)
{
	cpx_buf_add_u32(b, (uint32_t)n);
	cpx_buf_add(b, p, n);
}

void
cpx_buf_add_cstr(struct cpx_buf *b, const char *s)
{
	cpx_buf_add_str(b, s, strlen(s));
}

void
cpx_buf_printf(struct cpx_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	cpx_buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Drops the first n bytes. */
void
cpx_buf_consume(struct cpx_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->data != NULL)
		b->data[b->len] = '\0';
}

/* The contents as a C string; never NULL. */
char *
cpx_buf_cstr(struct cpx_buf *b)
{
	cpx_buf_reserve(b, 0);
	b->data[b->len] = '\0';
	return (char *)b->data;
}

void
cpx_reader_init(struct cpx_reader *r, const void *p, size_t n)
{
	r->p = p;
	r->left = n;
	r->err = 0;
}

const uint8_t *
cpx_rd_bytes(struct cpx_reader *r, size_t n)
{
	const uint8_t *p;

	if (r->err || n > r->left) {
		r->err = 1;
		return NULL;
	}
	p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

uint8_t
cpx_rd_u8(struct cpx_reader *r)
{
	const uint8_t *p = cpx_rd_bytes(r, 1);

	return p ? p[0] : 0;
}

uint16_t
cpx_rd_u16(struct cpx_reader *r)
{
	const uint8_t *p = cpx_rd_bytes(r, 2);

	return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

uint32_t
cpx_rd_u32(struct cpx_reader *r)
{
	const uint8_t *p = cpx_rd_bytes(r, 4);

	return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3] : 0;
}

uint64_t
cpx_rd_u64(struct cpx_reader *r)
{
	uint64_t hi = cpx_rd_u32(r);

	return hi << 32 | cpx_rd_u32(r);
}

/* A u32-length string of at most `max` bytes; returns a pointer into the input. */
const uint8_t *
cpx_rd_str(struct cpx_reader *r, size_t *n, size_t max)
{
	uint32_t len = cpx_rd_u32(r);

	if (r->err || len > max) {
		r->err = 1;
		*n = 0;
		return NULL;
	}
	*n = len;
	return cpx_rd_bytes(r, len);
}

/*
 * A string that must not contain NUL, returned as a new C string (caller
 * frees), or NULL with r->err set.
 */
char *
cpx_rd_cstr(struct cpx_reader *r, size_t max)
{
	size_t n;
	const uint8_t *p = cpx_rd_str(r, &n, max);

	if (p == NULL)
		return NULL;
	if (memchr(p, '\0', n) != NULL) {
		r->err = 1;
		return NULL;
	}
	return cpx_xstrndup((const char *)p, n);
}
