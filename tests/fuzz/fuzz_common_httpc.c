/*
 * fuzz_common_httpc.c — the HTTP client (shim and agent serve -> the
 * dispatcher) reading hostile responses from a loopback peer: any status
 * it accepts is a number it can use, the body is whole and terminated,
 * and nothing ever waits past the deadline.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cpx.h"
#include "cpx-http.h"
#include "fuzz_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cpx_http_response resp = { 0 };
	char base[64], *cause = NULL;
	uint64_t t0;
	int r;

	cpx_log_set_level(CPX_LOG_ERROR);
	snprintf(base, sizeof base, "http://127.0.0.1:%d", fs_start());
	fs_answer(data, size);
	t0 = cpx_now_ms();
	r = cpx_http_request(base, "POST", "/api/v1/placements", "fuzz-token",
	    "{}", 2000, &resp, &cause);
	if (cpx_now_ms() - t0 > 4000)
		abort();
	if (r == 0) {
		if (resp.status < 100 || resp.status > 999 ||
		    resp.body == NULL || resp.body[resp.body_len] != '\0' ||
		    resp.body_len > 4 * 1024 * 1024)
			abort();
		cpx_http_response_free(&resp);
	} else if (r > 0 || cause == NULL) {
		abort();	/* a failure is a negative errno with a reason */
	}
	free(cause);
	fs_answer(NULL, 0);
	return 0;
}
