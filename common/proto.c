/* proto.c — frames, HELLO, ERROR and worker endpoints. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cpx-protocol.h"

static const char *const msg_names[] = {
	[CPX_MSG_HELLO] = "HELLO",
	[CPX_MSG_ERROR] = "ERROR",
	[CPX_MSG_PING] = "PING",
	[CPX_MSG_PONG] = "PONG",
	[CPX_MSG_JOB] = "JOB",
	[CPX_MSG_INPUT] = "INPUT",
	[CPX_MSG_RUN] = "RUN",
	[CPX_MSG_STDIN] = "STDIN",
	[CPX_MSG_SIGNAL] = "SIGNAL",
	[CPX_MSG_STARTED] = "STARTED",
	[CPX_MSG_STDOUT] = "STDOUT",
	[CPX_MSG_STDERR] = "STDERR",
	[CPX_MSG_EXIT] = "EXIT",
	[CPX_MSG_TUN_OPEN] = "TUN_OPEN",
	[CPX_MSG_TUN_DATA] = "TUN_DATA",
	[CPX_MSG_TUN_CLOSE] = "TUN_CLOSE",
	[CPX_MSG_FREQ] = "FREQ",
	[CPX_MSG_FREPLY] = "FREPLY",
	[CPX_MSG_FEVENT] = "FEVENT",
	[CPX_MSG_FPUSH] = "FPUSH",
	[CPX_MSG_POOL_OPEN] = "POOL_OPEN",
	[CPX_MSG_POOL_READY] = "POOL_READY",
	[CPX_MSG_ROUTE_ADD] = "ROUTE_ADD",
	[CPX_MSG_ROUTE_DEL] = "ROUTE_DEL",
	[CPX_MSG_ROUTE_OK] = "ROUTE_OK",
};

const char *
cpx_msg_name(int type)
{
	if (type < 0 || (size_t)type >= CPX_ARRAY_SIZE(msg_names) ||
	    msg_names[type] == NULL)
		return "UNKNOWN";
	return msg_names[type];
}

/* Appends one frame to `out`. */
void
cpx_frame_put(struct cpx_buf *out, uint8_t type, uint32_t id,
    const void *payload, size_t len)
{
	cpx_buf_reserve(out, CPX_FRAME_HDR + len);
	cpx_buf_add_u32(out, (uint32_t)len);
	cpx_buf_add_u8(out, type);
	cpx_buf_add_u8(out, 0);
	cpx_buf_add_u16(out, 0);
	cpx_buf_add_u32(out, id);
	cpx_buf_add(out, payload, len);
}

/*
 * A frame built in place: cpx_frame_begin() leaves room for the header at
 * the end of `out` and returns where it starts; the caller appends the
 * payload; cpx_frame_end() writes the header. Large payloads (file
 * contents) are then written once, straight into the buffer that is sent.
 */
size_t
cpx_frame_begin(struct cpx_buf *out)
{
	size_t start = out->len;

	cpx_buf_reserve(out, CPX_FRAME_HDR);
	memset(out->data + start, 0, CPX_FRAME_HDR);
	out->len += CPX_FRAME_HDR;
	return start;
}

void
cpx_frame_end(struct cpx_buf *out, size_t start, uint8_t type, uint32_t id)
{
	cpx_frame_end_after(out, start, type, id, 0);
}

/* A frame whose last `after` bytes of payload follow `out` on the wire. */
void
cpx_frame_end_after(struct cpx_buf *out, size_t start, uint8_t type,
    uint32_t id, size_t after)
{
	cpx_buf_set_u32(out, start,
	    (uint32_t)(out->len - start - CPX_FRAME_HDR + after));
	out->data[start + 4] = type;
	cpx_buf_set_u32(out, start + 8, id);
}

/*
 * Decodes the frame at the start of data[0..len). Returns 0 and sets *f
 * and *consumed when a whole frame is there, -EAGAIN when more bytes are
 * needed, -EMSGSIZE for an oversized frame and -EPROTO for a malformed
 * header. *f points into `data`.
 */
int
cpx_frame_next(const uint8_t *data, size_t len, struct cpx_frame *f,
    size_t *consumed)
{
	struct cpx_reader r;
	uint32_t plen;

	if (len < CPX_FRAME_HDR)
		return -EAGAIN;
	cpx_reader_init(&r, data, len);
	plen = cpx_rd_u32(&r);
	if (plen > CPX_FRAME_MAX)
		return -EMSGSIZE;
	f->type = cpx_rd_u8(&r);
	if (cpx_rd_u8(&r) != 0 || cpx_rd_u16(&r) != 0 || f->type == 0)
		return -EPROTO;
	f->id = cpx_rd_u32(&r);
	if (len - CPX_FRAME_HDR < plen)
		return -EAGAIN;
	f->payload = data + CPX_FRAME_HDR;
	f->len = plen;
	*consumed = CPX_FRAME_HDR + plen;
	return 0;
}

/*
 * Prints `obj` (indented when `pretty`), frees it, and returns the text
 * (free() it); out of memory is fatal, as for every allocation.
 */
char *
cpx_json_take(struct cJSON *obj, int pretty)
{
	char *s = pretty ? cJSON_Print(obj) : cJSON_PrintUnformatted(obj);

	cJSON_Delete(obj);
	if (s == NULL)
		cpx_fatal("out of memory");
	return s;
}

static void
put_json(struct cpx_buf *out, cJSON *obj)
{
	char *s = cpx_json_take(obj, 0);

	cpx_buf_add(out, s, strlen(s));
	free(s);
}

/* Parses a JSON object from untrusted bytes; NULL if it is not one. */
static cJSON *
parse_object(const uint8_t *p, size_t n)
{
	cJSON *obj = cJSON_ParseWithLength((const char *)p, n);

	if (obj != NULL && !cJSON_IsObject(obj)) {
		cJSON_Delete(obj);
		obj = NULL;
	}
	return obj;
}

static char *
dup_string_field(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsString(v) ? cpx_xstrdup(v->valuestring) : NULL;
}

void
cpx_error_put(struct cpx_buf *out, const char *code, const char *message)
{
	cJSON *obj = cJSON_CreateObject();

	cJSON_AddStringToObject(obj, "code", code);
	cJSON_AddStringToObject(obj, "message", message);
	put_json(out, obj);
}

/* *code and *message are new strings; caller frees. */
int
cpx_error_parse(const uint8_t *p, size_t n, char **code, char **message)
{
	cJSON *obj = parse_object(p, n);

	*code = *message = NULL;
	if (obj == NULL)
		return -EPROTO;
	*code = dup_string_field(obj, "code");
	*message = dup_string_field(obj, "message");
	cJSON_Delete(obj);
	if (*code == NULL)
		*code = cpx_xstrdup(CPX_ERR_PROTO);
	if (*message == NULL)
		*message = cpx_xstrdup("(no message)");
	return 0;
}

void
cpx_hello_put(struct cpx_buf *out, const char *service, const char *who)
{
	cJSON *obj = cJSON_CreateObject();

	cJSON_AddNumberToObject(obj, "proto", CPX_PROTO_VERSION);
	if (service != NULL)
		cJSON_AddStringToObject(obj, "service", service);
	cJSON_AddStringToObject(obj, "who", who);
	cJSON_AddStringToObject(obj, "version", CPX_VERSION);
	put_json(out, obj);
}

/*
 * Checks a peer's HELLO. *service (may be NULL in an agent's answer) is a
 * new string; caller frees.
 */
int
cpx_hello_parse(const uint8_t *p, size_t n, char **service, char **cause)
{
	cJSON *obj = parse_object(p, n);
	const cJSON *proto;
	int error = 0;

	*service = NULL;
	if (obj == NULL) {
		cpx_set_cause(cause, "HELLO is not a JSON object");
		return -EPROTO;
	}
	proto = cJSON_GetObjectItemCaseSensitive(obj, "proto");
	if (!cJSON_IsNumber(proto) || proto->valuedouble != CPX_PROTO_VERSION) {
		cpx_set_cause(cause, "protocol version %g, expected %d",
		    cJSON_IsNumber(proto) ? proto->valuedouble : -1.0,
		    CPX_PROTO_VERSION);
		error = -EPROTONOSUPPORT;
		goto out;
	}
	*service = dup_string_field(obj, "service");
out:
	cJSON_Delete(obj);
	return error;
}

void
cpx_endpoint_free(struct cpx_endpoint *e)
{
	free(e->name);
	free(e->host);
	free(e->user);
	free(e->host_key);
	memset(e, 0, sizeof *e);
}

void
cpx_endpoint_copy(struct cpx_endpoint *dst, const struct cpx_endpoint *src)
{
	dst->name = src->name ? cpx_xstrdup(src->name) : NULL;
	dst->host = src->host ? cpx_xstrdup(src->host) : NULL;
	dst->port = src->port;
	dst->user = src->user ? cpx_xstrdup(src->user) : NULL;
	dst->host_key = src->host_key ? cpx_xstrdup(src->host_key) : NULL;
}

/* Adds the endpoint's fields to a JSON object. */
void
cpx_endpoint_to_json(const struct cpx_endpoint *e, cJSON *obj)
{
	cJSON_AddStringToObject(obj, "name", e->name ? e->name : "");
	cJSON_AddStringToObject(obj, "host", e->host ? e->host : "");
	cJSON_AddNumberToObject(obj, "port", e->port);
	cJSON_AddStringToObject(obj, "user", e->user ? e->user : "");
	cJSON_AddStringToObject(obj, "host_key", e->host_key ? e->host_key : "");
}

/* Reads an endpoint from a JSON object; all fields are required. */
int
cpx_endpoint_from_json(const cJSON *obj, struct cpx_endpoint *e, char **cause)
{
	const cJSON *port = cJSON_GetObjectItemCaseSensitive(obj, "port");

	memset(e, 0, sizeof *e);
	e->name = dup_string_field(obj, "name");
	e->host = dup_string_field(obj, "host");
	e->user = dup_string_field(obj, "user");
	e->host_key = dup_string_field(obj, "host_key");
	if (e->name == NULL || e->host == NULL || e->user == NULL ||
	    e->host_key == NULL || *e->host == '\0' || *e->user == '\0' ||
	    !cJSON_IsNumber(port) || port->valuedouble < 1 ||
	    port->valuedouble > 65535) {
		cpx_set_cause(cause, "worker endpoint needs name, host, port "
		    "(1-65535), user and host_key");
		cpx_endpoint_free(e);
		return -EINVAL;
	}
	e->port = (int)port->valuedouble;
	return 0;
}
