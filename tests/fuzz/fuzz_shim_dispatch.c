/*
 * fuzz_shim_dispatch.c — the shim reading a hostile dispatcher's answer to
 * its placement request (POST /api/v1/placements). The first byte picks
 * the status, the rest is the body. A placement the shim accepts names a
 * complete worker endpoint with a pinned host key, and its job id.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "shim.h"
#include "fuzz_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int status[] = { 200, 200, 200, 503, 401, 409, 500, 201 };
	struct shim_config cfg = { .token = "fuzz-token",
	    .dispatch_timeout_ms = 2000 };
	struct shim_job job = { .session = "sess", .session_dir =
	    "Transcode/Sessions/x" };
	struct shim_placement pl = { 0 };
	char url[64], *cause = NULL, *resp;
	int r, n;

	if (size < 1)
		return 0;
	cpx_log_set_level(CPX_LOG_ERROR);
	snprintf(url, sizeof url, "http://127.0.0.1:%d", fs_start());
	cfg.orchestrator_url = url;
	resp = cpx_xprintf("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\n\r\n%n", status[data[0] % 8], size - 1, &n);
	resp = realloc(resp, (size_t)n + size);
	memcpy(resp + n, data + 1, size - 1);
	fs_answer((const uint8_t *)resp, (size_t)n + size - 1);
	r = shim_place(&cfg, &job, data[0] & 0x80 ? "w9" : NULL, &pl, &cause);
	fs_answer(NULL, 0);
	if (r == 0) {
		if (pl.job_id == NULL || pl.worker.name == NULL ||
		    pl.worker.host == NULL || *pl.worker.host == '\0' ||
		    pl.worker.port < 1 || pl.worker.port > 65535 ||
		    pl.worker.host_key == NULL || *pl.worker.host_key == '\0')
			abort();
		shim_placement_free(&pl);
	} else if (r > 0 || cause == NULL) {
		abort();
	}
	free(cause);
	free(resp);
	return 0;
}
