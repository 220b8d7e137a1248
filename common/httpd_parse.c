/* httpd_parse.c — HTTP/1.1 requests from untrusted bytes, by llhttp, within limits. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cpx-httpd.h"

/*
 * llhttp finds the structure; this file only collects the pieces into one
 * arena and enforces the limits that llhttp leaves to its user. Every limit
 * is checked as bytes arrive, so an oversized request is refused before it
 * is buffered.
 */

void
cpx_httpd_limits_default(struct cpx_httpd_limits *lim)
{
	lim->max_header_bytes = 8192;
	lim->max_url = 2048;
	lim->max_headers = CPX_HTTPD_MAX_HEADERS;
	lim->max_body = 1024 * 1024;
	lim->max_conns = 1024;
	lim->max_output = 4 * 1024 * 1024;
	lim->idle_ms = 60000;
	lim->request_ms = 10000;
}

static struct cpx_httpd_parser *
parser_of(llhttp_t *h)
{
	return (struct cpx_httpd_parser *)h->data;
}

static int
fail(struct cpx_httpd_parser *p, int status, const char *reason)
{
	if (p->error_status == 0) {
		p->error_status = status;
		p->error_reason = reason;
	}
	llhttp_set_error_reason(&p->http, reason);
	return HPE_USER;
}

static int
on_message_begin(llhttp_t *h)
{
	struct cpx_httpd_parser *p = parser_of(h);

	p->arena.len = 0;
	p->body.len = 0;
	p->nheaders = 0;
	p->header_bytes = 0;
	p->in_tok = 0;
	p->started = 1;
	p->complete = 0;
	p->expect_continue = 0;
	return 0;
}

/* Appends a piece of a URL, header name or value, counting it against the limit. */
static int
add_piece(struct cpx_httpd_parser *p, const char *at, size_t n)
{
	p->header_bytes += n;
	if (p->header_bytes > p->lim->max_header_bytes)
		return fail(p, 431, "request headers too large");
	if (!p->in_tok) {
		p->tok_start = p->arena.len;
		p->in_tok = 1;
	}
	cpx_buf_add(&p->arena, at, n);
	return 0;
}

/* Ends the current token with a NUL; returns its offset in the arena. */
static size_t
end_token(struct cpx_httpd_parser *p)
{
	size_t start = p->in_tok ? p->tok_start : p->arena.len;

	cpx_buf_add(&p->arena, "", 1);
	p->in_tok = 0;
	return start;
}

static int
on_url(llhttp_t *h, const char *at, size_t n)
{
	struct cpx_httpd_parser *p = parser_of(h);

	if (p->arena.len + n > p->lim->max_url)
		return fail(p, 414, "request target too long");
	return add_piece(p, at, n);
}

static int
on_url_complete(llhttp_t *h)
{
	struct cpx_httpd_parser *p = parser_of(h);

	p->url_off = end_token(p);
	return 0;
}

static int
on_header_field(llhttp_t *h, const char *at, size_t n)
{
	struct cpx_httpd_parser *p = parser_of(h);

	if (p->nheaders >= p->lim->max_headers ||
	    p->nheaders >= CPX_HTTPD_MAX_HEADERS)
		return fail(p, 431, "too many request headers");
	return add_piece(p, at, n);
}

static int
on_header_field_complete(llhttp_t *h)
{
	struct cpx_httpd_parser *p = parser_of(h);

	p->name_off[p->nheaders] = end_token(p);
	/* Separators count too, so many empty headers cannot slip past. */
	p->header_bytes += 4;
	return 0;
}

static int
on_header_value(llhttp_t *h, const char *at, size_t n)
{
	return add_piece(parser_of(h), at, n);
}

static int
on_header_value_complete(llhttp_t *h)
{
	struct cpx_httpd_parser *p = parser_of(h);

	p->value_off[p->nheaders++] = end_token(p);
	return 0;
}

static const char *
arena_header(const struct cpx_httpd_parser *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->nheaders; i++) {
		if (strcasecmp((const char *)p->arena.data + p->name_off[i],
		    name) == 0)
			return (const char *)p->arena.data + p->value_off[i];
	}
	return NULL;
}

static int
on_headers_complete(llhttp_t *h)
{
	struct cpx_httpd_parser *p = parser_of(h);
	const char *expect;

	if ((h->flags & F_CONTENT_LENGTH) &&
	    h->content_length > p->lim->max_body)
		return fail(p, 413, "request body too large");
	expect = arena_header(p, "Expect");
	if (expect != NULL) {
		if (strcasecmp(expect, "100-continue") != 0)
			return fail(p, 417, "unsupported Expect header");
		p->expect_continue = 1;
	}
	return 0;
}

static int
on_body(llhttp_t *h, const char *at, size_t n)
{
	struct cpx_httpd_parser *p = parser_of(h);

	if (p->body.len + n > p->lim->max_body)
		return fail(p, 413, "request body too large");
	cpx_buf_add(&p->body, at, n);
	return 0;
}

static void
build_request(struct cpx_httpd_parser *p)
{
	struct cpx_httpd_req *r = &p->req;
	size_t path_off = p->arena.len, n, i;
	char *base, *q;

	/* The path is a second copy, cut at '?', so the target stays whole. */
	n = strlen((const char *)p->arena.data + p->url_off) + 1;
	cpx_buf_reserve(&p->arena, n);
	memcpy(p->arena.data + path_off, p->arena.data + p->url_off, n);
	p->arena.len += n;
	base = (char *)p->arena.data;

	memset(r, 0, sizeof *r);
	r->method = llhttp_get_method(&p->http);
	r->method_name = llhttp_method_name((llhttp_method_t)r->method);
	r->target = base + p->url_off;
	r->path = base + path_off;
	r->query = "";
	if ((q = strchr(base + path_off, '?')) != NULL) {
		*q = '\0';
		r->query = q + 1;
	}
	r->nheaders = p->nheaders;
	for (i = 0; i < p->nheaders; i++) {
		r->hname[i] = base + p->name_off[i];
		r->hvalue[i] = base + p->value_off[i];
	}
	r->body = cpx_buf_cstr(&p->body);
	r->body_len = p->body.len;
	r->keep_alive = llhttp_should_keep_alive(&p->http);
	r->http_minor = llhttp_get_http_minor(&p->http);
}

static int
on_message_complete(llhttp_t *h)
{
	struct cpx_httpd_parser *p = parser_of(h);

	build_request(p);
	p->complete = 1;
	p->started = 0;
	p->expect_continue = 0;
	/* One request at a time: the caller answers before parsing on. */
	return HPE_PAUSED;
}

void
cpx_httpd_parser_init(struct cpx_httpd_parser *p,
    const struct cpx_httpd_limits *lim)
{
	memset(p, 0, sizeof *p);
	p->lim = lim;
	llhttp_settings_init(&p->settings);
	p->settings.on_message_begin = on_message_begin;
	p->settings.on_url = on_url;
	p->settings.on_url_complete = on_url_complete;
	p->settings.on_header_field = on_header_field;
	p->settings.on_header_field_complete = on_header_field_complete;
	p->settings.on_header_value = on_header_value;
	p->settings.on_header_value_complete = on_header_value_complete;
	p->settings.on_headers_complete = on_headers_complete;
	p->settings.on_body = on_body;
	p->settings.on_message_complete = on_message_complete;
	llhttp_init(&p->http, HTTP_REQUEST, &p->settings);
	p->http.data = p;
	cpx_buf_init(&p->arena);
	cpx_buf_init(&p->body);
}

void
cpx_httpd_parser_free(struct cpx_httpd_parser *p)
{
	cpx_buf_free(&p->arena);
	cpx_buf_free(&p->body);
}

/* An llhttp error that no callback of ours explained: the bytes are not HTTP. */
static int
parse_error(struct cpx_httpd_parser *p, llhttp_errno_t err)
{
	if (p->error_status == 0) {
		p->error_status = err == HPE_INVALID_VERSION ? 505 : 400;
		p->error_reason = llhttp_errno_name(err);
	}
	return -EPROTO;
}

int
cpx_httpd_parse(struct cpx_httpd_parser *p, const char *data, size_t len,
    size_t *used, struct cpx_httpd_req **req)
{
	llhttp_errno_t err;

	*used = 0;
	*req = NULL;
	if (p->error_status != 0)
		return -EPROTO;
	if (p->complete) {
		/* The previous request was answered; go on after it. */
		p->complete = 0;
		llhttp_resume(&p->http);
	}
	if (len == 0)
		return 0;
	err = llhttp_execute(&p->http, data, len);
	if (err == HPE_OK) {
		*used = len;
		return 0;
	}
	if (err == HPE_PAUSED && p->complete) {
		*used = (size_t)(llhttp_get_error_pos(&p->http) - data);
		*req = &p->req;
		return 1;
	}
	if (err == HPE_PAUSED_UPGRADE && p->complete) {
		/* No protocol switch offered: answer, then close. */
		*used = len;
		p->req.keep_alive = 0;
		*req = &p->req;
		return 1;
	}
	return parse_error(p, err);
}

int
cpx_httpd_parse_eof(struct cpx_httpd_parser *p)
{
	if (p->error_status != 0)
		return -EPROTO;
	if (p->started) {
		p->error_status = 400;
		p->error_reason = "request truncated";
		return -EPROTO;
	}
	return 0;
}

const char *
cpx_httpd_header(const struct cpx_httpd_req *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->nheaders; i++) {
		if (strcasecmp(req->hname[i], name) == 0)
			return req->hvalue[i];
	}
	return NULL;
}

/* Copies the raw value of `name` from the query string; -ENOENT or -ENOSPC. */
int
cpx_httpd_query(const struct cpx_httpd_req *req, const char *name,
    char *buf, size_t size)
{
	const char *s = req->query;
	size_t nlen = strlen(name), vlen;

	while (*s != '\0') {
		const char *end = strchr(s, '&');
		const char *stop = end != NULL ? end : s + strlen(s);

		if ((size_t)(stop - s) > nlen && strncmp(s, name, nlen) == 0 &&
		    s[nlen] == '=') {
			vlen = (size_t)(stop - s) - nlen - 1;
			if (vlen >= size)
				return -ENOSPC;
			memcpy(buf, s + nlen + 1, vlen);
			buf[vlen] = '\0';
			return 0;
		}
		s = end != NULL ? end + 1 : stop;
	}
	return -ENOENT;
}
