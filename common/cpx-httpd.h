/* cpx-httpd.h — HTTP/1.1 server on libuv, requests parsed by llhttp. */

#ifndef CPX_HTTPD_H
#define CPX_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

#include "cpx.h"

/*
 * The server answers each request synchronously: the handler sees a whole
 * request (headers and body already read, within limits) and fills a
 * response before it returns. Keep-alive and pipelining work; responses
 * leave in request order. A client that is malformed, too big or too slow
 * gets a 4xx (400, 408, 413, 414, 431) or a closed connection, and no
 * client can stall the loop for the others.
 */

struct cpx_httpd_limits {
	size_t max_header_bytes;	/* request line + headers; 431 past it */
	size_t max_url;			/* 414 past it */
	size_t max_headers;		/* header count; 431 past it */
	size_t max_body;		/* 413 past it */
	size_t max_conns;		/* more are answered 503 and closed */
	size_t max_output;		/* unsent bytes before reading pauses */
	unsigned idle_ms;		/* keep-alive connection with no request */
	unsigned request_ms;		/* first byte to whole request; 408 */
};

/* Defaults: 8 KiB headers, 2 KiB URL, 64 headers, 1 MiB body, 1024 conns... */
void cpx_httpd_limits_default(struct cpx_httpd_limits *lim);

#define CPX_HTTPD_MAX_HEADERS 64

/* A complete request. Every string is NUL-terminated and lives until the handler returns. */
struct cpx_httpd_req {
	int method;			/* llhttp_method_t: HTTP_GET, ... */
	const char *method_name;	/* "GET" */
	const char *target;		/* as sent: path and query */
	const char *path;		/* target up to '?' */
	const char *query;		/* after '?', or "" */
	size_t nheaders;
	const char *hname[CPX_HTTPD_MAX_HEADERS];
	const char *hvalue[CPX_HTTPD_MAX_HEADERS];
	const char *body;		/* "" when none */
	size_t body_len;
	int keep_alive;			/* the client wants the connection kept */
	int http_minor;
};

/* The value of a header (name compared case-insensitively), or NULL. */
const char *cpx_httpd_header(const struct cpx_httpd_req *req, const char *name);

/* The value of a query parameter (no percent-decoding), copied into buf. */
int cpx_httpd_query(const struct cpx_httpd_req *req, const char *name,
    char *buf, size_t size);

/* What a handler fills in. cpx_httpd_resp_init() has set status 200. */
struct cpx_httpd_resp {
	int status;
	const char *content_type;	/* static string; default application/json */
	struct cpx_buf headers;		/* extra "Name: value\r\n" lines */
	struct cpx_buf body;
	int close;			/* close the connection after this response */
};

void cpx_httpd_resp_init(struct cpx_httpd_resp *resp);
void cpx_httpd_resp_free(struct cpx_httpd_resp *resp);
void cpx_httpd_resp_header(struct cpx_httpd_resp *resp, const char *name,
    const char *fmt, ...) CPX_PRINTF(3, 4);
/* A JSON error body {"error": message} with the status. */
void cpx_httpd_resp_error(struct cpx_httpd_resp *resp, int status,
    const char *fmt, ...) CPX_PRINTF(3, 4);
const char *cpx_httpd_reason(int status);
/* Serialises status line, headers and body (no body for HEAD) into out. */
void cpx_httpd_resp_serialize(const struct cpx_httpd_resp *resp, int head,
    int keep_alive, int http10, struct cpx_buf *out);

typedef void (*cpx_httpd_handler)(const struct cpx_httpd_req *req,
    struct cpx_httpd_resp *resp, void *arg);

/*
 * The request parser, without any I/O (the server and the fuzz target use
 * it). cpx_httpd_parse() consumes bytes until one request is complete:
 *   1   a request is ready in *req (valid until the next parse/reset call);
 *       *used bytes were consumed, the rest belongs to the next request;
 *   0   all bytes consumed, more are needed;
 *  <0   the stream is bad; p->error_status is the 4xx to answer with.
 */
struct cpx_httpd_parser {
	llhttp_t http;
	llhttp_settings_t settings;
	const struct cpx_httpd_limits *lim;
	struct cpx_buf arena;		/* URL, header names and values */
	struct cpx_buf body;
	size_t tok_start;
	int in_tok;
	size_t url_off;
	size_t name_off[CPX_HTTPD_MAX_HEADERS];
	size_t value_off[CPX_HTTPD_MAX_HEADERS];
	size_t nheaders;
	size_t header_bytes;
	int started;			/* a request has begun arriving */
	int complete;
	int expect_continue;		/* answer "100 Continue" before the body */
	int error_status;
	const char *error_reason;
	struct cpx_httpd_req req;
};

void cpx_httpd_parser_init(struct cpx_httpd_parser *p,
    const struct cpx_httpd_limits *lim);
void cpx_httpd_parser_free(struct cpx_httpd_parser *p);
int cpx_httpd_parse(struct cpx_httpd_parser *p, const char *data, size_t len,
    size_t *used, struct cpx_httpd_req **req);
/* The stream ended: 0 when it ended between requests, else an error. */
int cpx_httpd_parse_eof(struct cpx_httpd_parser *p);

/* The server. */

struct cpx_httpd;
struct uv_loop_s;

struct cpx_httpd_stats {
	uint64_t accepted;
	uint64_t refused;		/* over max_conns */
	uint64_t requests;
	uint64_t bad_requests;		/* answered 4xx by the server itself */
	uint64_t timeouts;
	size_t open;
};

/*
 * Listens on host:port (port 0: any; see cpx_httpd_port). `limits` may be
 * NULL for the defaults. *out is new; cpx_httpd_close() frees it.
 */
int cpx_httpd_start(struct uv_loop_s *loop, const char *host, int port,
    const struct cpx_httpd_limits *limits, cpx_httpd_handler handler,
    void *arg, struct cpx_httpd **out, char **cause);
int cpx_httpd_port(const struct cpx_httpd *srv);
void cpx_httpd_get_stats(const struct cpx_httpd *srv,
    struct cpx_httpd_stats *st);
/* Stops listening and closes every connection; handles close on the loop. */
void cpx_httpd_close(struct cpx_httpd *srv);

#endif /* CPX_HTTPD_H */
