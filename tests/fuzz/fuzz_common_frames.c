/* fuzz_common_frames.c — frames, HELLO, ERROR, file requests and events from a hostile peer. */

#include <stdlib.h>
#include <string.h>

#include "cpx-protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
parse_payload(const struct cpx_frame *f)
{
	struct cpx_freq q;
	struct cpx_attr a;
	char *s1 = NULL, *s2 = NULL;
	uint8_t kind;

	switch (f->type) {
	case CPX_MSG_HELLO:
		cpx_hello_parse(f->payload, f->len, &s1, &s2);
		break;
	case CPX_MSG_ERROR:
		cpx_error_parse(f->payload, f->len, &s1, &s2);
		break;
	case CPX_MSG_FREQ:
		if (cpx_freq_parse(f->payload, f->len, &q) == 0) {
			/* A parsed request re-encodes to the same bytes. */
			struct cpx_buf b;

			cpx_buf_init(&b);
			cpx_freq_put(&b, &q);
			if (b.len != f->len || memcmp(b.data, f->payload, b.len))
				abort();
			cpx_buf_free(&b);
		}
		cpx_freq_free(&q);
		break;
	case CPX_MSG_FEVENT:
		cpx_fevent_parse(f->payload, f->len, &kind, &s1, &a);
		break;
	}
	free(s1);
	free(s2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cpx_frame f;
	size_t used, off = 0;

	while (cpx_frame_next(data + off, size - off, &f, &used) == 0) {
		parse_payload(&f);
		off += used;
	}
	return 0;
}
