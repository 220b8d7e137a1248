/* httpd_resp.c — HTTP responses: what a handler fills in, and the bytes sent. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cpx-httpd.h"

void
cpx_httpd_resp_init(struct cpx_httpd_resp *resp)
{
	resp->status = 200;
	resp->content_type = "application/json";
	cpx_buf_init(&resp->headers);
	cpx_buf_init(&resp->body);
	resp->close = 0;
}

void
cpx_httpd_resp_free(struct cpx_httpd_resp *resp)
{
	cpx_buf_free(&resp->headers);
	cpx_buf_free(&resp->body);
}

void
cpx_httpd_resp_header(struct cpx_httpd_resp *resp, const char *name,
    const char *fmt, ...)
{
	char value[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(value, sizeof value, fmt, ap);
	va_end(ap);
	/* A value is ours, never the client's, but CR/LF must not split it. */
	value[strcspn(value, "\r\n")] = '\0';
	cpx_buf_printf(&resp->headers, "%s: %s\r\n", name, value);
}

void
cpx_httpd_resp_error(struct cpx_httpd_resp *resp, int status,
    const char *fmt, ...)
{
	char msg[512];
	cJSON *obj;
	char *text;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	obj = cJSON_CreateObject();
	cJSON_AddStringToObject(obj, "error", msg);
	text = cJSON_PrintUnformatted(obj);
	resp->status = status;
	resp->content_type = "application/json";
	resp->body.len = 0;
	if (text != NULL)
		cpx_buf_add(&resp->body, text, strlen(text));
	cpx_buf_add(&resp->body, "\n", 1);
	free(text);
	cJSON_Delete(obj);
}

const char *
cpx_httpd_reason(int status)
{
	static const struct {
		int status;
		const char *reason;
	} reasons[] = {
		{ 100, "Continue" }, { 200, "OK" }, { 201, "Created" },
		{ 202, "Accepted" }, { 204, "No Content" },
		{ 400, "Bad Request" }, { 401, "Unauthorized" },
		{ 403, "Forbidden" }, { 404, "Not Found" },
		{ 405, "Method Not Allowed" }, { 408, "Request Timeout" },
		{ 409, "Conflict" }, { 411, "Length Required" },
		{ 413, "Content Too Large" }, { 414, "URI Too Long" },
		{ 415, "Unsupported Media Type" }, { 417, "Expectation Failed" },
		{ 422, "Unprocessable Content" }, { 429, "Too Many Requests" },
		{ 431, "Request Header Fields Too Large" },
		{ 500, "Internal Server Error" }, { 503, "Service Unavailable" },
		{ 505, "HTTP Version Not Supported" },
	};
	size_t i;

	for (i = 0; i < CPX_ARRAY_SIZE(reasons); i++) {
		if (reasons[i].status == status)
			return reasons[i].reason;
	}
	return "Unknown";
}

/*
 * keep_alive: 0 closes ("Connection: close"); HTTP/1.0 clients that asked
 * for keep-alive must be told it was granted (http10).
 */
void
cpx_httpd_resp_serialize(const struct cpx_httpd_resp *resp, int head,
    int keep_alive, int http10, struct cpx_buf *out)
{
	int nobody = resp->status == 204 || resp->status == 304 ||
	    resp->status < 200;

	cpx_buf_printf(out, "HTTP/1.1 %d %s\r\n", resp->status,
	    cpx_httpd_reason(resp->status));
	if (!nobody) {
		cpx_buf_printf(out, "Content-Type: %s\r\nContent-Length: %zu\r\n",
		    resp->content_type, resp->body.len);
	}
	if (!keep_alive)
		cpx_buf_add(out, "Connection: close\r\n", 19);
	else if (http10)
		cpx_buf_add(out, "Connection: keep-alive\r\n", 24);
	if (resp->headers.len > 0)
		cpx_buf_add(out, resp->headers.data, resp->headers.len);
	cpx_buf_add(out, "\r\n", 2);
	if (!head && !nobody && resp->body.len > 0)
		cpx_buf_add(out, resp->body.data, resp->body.len);
}
