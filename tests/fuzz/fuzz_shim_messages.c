/* fuzz_shim_messages.c — what the pool and the shim read from their peers. */

#include <stdlib.h>
#include <string.h>

#include "shim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
parse(const struct cpx_frame *f)
{
	struct cpx_endpoint ep;
	char *a = NULL, *b = NULL;

	switch (f->type) {
	case CPX_MSG_POOL_OPEN:
		if (shim_pool_parse_open(f->payload, f->len, &ep, &a, &b) == 0) {
			/* Accepted endpoints are complete and pinned. */
			if (ep.port < 1 || ep.port > 65535 || *ep.host == '\0' ||
			    *ep.host_key == '\0' || strstr(a, ep.host) == NULL)
				abort();
			cpx_endpoint_free(&ep);
		}
		break;
	case CPX_MSG_ERROR:
		if (cpx_error_parse(f->payload, f->len, &a, &b) == 0) {
			int code = shim_error_exit_code(a);

			if (code != SHIM_EXIT_SSH && code != SHIM_EXIT_AUTH &&
			    code != SHIM_EXIT_REFUSED)
				abort();
		}
		break;
	case CPX_MSG_HELLO:
		cpx_hello_parse(f->payload, f->len, &a, &b);
		break;
	}
	free(a);
	free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cpx_frame f;
	size_t used, off = 0;

	while (cpx_frame_next(data + off, size - off, &f, &used) == 0) {
		parse(&f);
		off += used;
	}
	/* The same bytes as a bare POOL_OPEN payload. */
	{
		struct cpx_endpoint ep;
		char *key = NULL, *cause = NULL;

		if (shim_pool_parse_open(data, size, &ep, &key, &cause) == 0)
			cpx_endpoint_free(&ep);
		free(key);
		free(cause);
	}
	return 0;
}
