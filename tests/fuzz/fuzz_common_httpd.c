/* fuzz_common_httpd.c — HTTP requests from a hostile client, in arbitrary pieces. */

#include <stdlib.h>
#include <string.h>

#include "cpx-httpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every request handed out must be whole and within the limits. */
static void
check(const struct cpx_httpd_limits *lim, const struct cpx_httpd_req *req)
{
	size_t i;

	if (req->body_len > lim->max_body || req->nheaders > lim->max_headers ||
	    strlen(req->target) > lim->max_url || req->body[req->body_len] != '\0')
		abort();
	for (i = 0; i < req->nheaders; i++) {
		if (strlen(req->hname[i]) + strlen(req->hvalue[i]) >
		    lim->max_header_bytes)
			abort();
	}
	if (strncmp(req->target, req->path, strlen(req->path)) != 0)
		abort();
	(void)cpx_httpd_header(req, "Authorization");
}

/* The first byte picks the split size, so the parser sees every boundary. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cpx_httpd_limits lim;
	struct cpx_httpd_parser p;
	struct cpx_httpd_req *req;
	size_t step, off, used, n;
	int r;

	if (size < 1)
		return 0;
	cpx_httpd_limits_default(&lim);
	lim.max_body = 4096;
	lim.max_header_bytes = 1024;
	lim.max_url = 256;
	lim.max_headers = 16;
	step = 1 + data[0] % 64;
	data++;
	size--;
	cpx_httpd_parser_init(&p, &lim);
	for (off = 0; off < size;) {
		n = size - off < step ? size - off : step;
		r = cpx_httpd_parse(&p, (const char *)data + off, n, &used,
		    &req);
		if (r < 0) {
			if (p.error_status < 400 || p.error_status > 599)
				abort();
			break;
		}
		if (used > n)
			abort();
		if (r == 1) {
			check(&lim, req);
			off += used;
		} else
			off += n;
	}
	(void)cpx_httpd_parse_eof(&p);
	cpx_httpd_parser_free(&p);
	return 0;
}
