/* cpx-http.h — HTTP/1.1 client (blocking, with a deadline) and server (libuv). */

#ifndef CPX_HTTP_H
#define CPX_HTTP_H

#include <stddef.h>

#include "cpx.h"

/*
 * Client: one request on a fresh connection, everything (connect, send,
 * response) bounded by timeout_ms so that a dispatcher that is down, slow
 * or half-open never makes a caller hang. `token`, when not NULL, is sent
 * as "Authorization: Bearer <token>" and never logged. Responses are
 * parsed with llhttp; bodies above 4 MiB are refused.
 *
 * Returns 0 with *resp filled (any HTTP status), or a negative errno:
 * -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -EPROTO (not HTTP), ...
 */
struct cpx_http_response {
	int status;
	char *body;		/* NUL-terminated */
	size_t body_len;
};

/* httpc.c */

int cpx_http_request(const char *base_url, const char *method,
    const char *path, const char *token, const char *json_body,
    unsigned timeout_ms, struct cpx_http_response *resp, char **cause);
void cpx_http_response_free(struct cpx_http_response *resp);

#endif /* CPX_HTTP_H */
