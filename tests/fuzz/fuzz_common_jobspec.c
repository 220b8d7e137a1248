/* fuzz_common_jobspec.c — job specs from a hostile peer: decode, re-encode, compare. */

#include <stdlib.h>
#include <string.h>

#include "cpx-protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cpx_jobspec js, again;
	char *cause = NULL, *json;
	size_t i;

	if (cpx_jobspec_decode((const char *)data, size, &js, &cause) == 0) {
		/* Whatever decodes must survive a round trip unchanged. */
		json = cpx_jobspec_encode(&js);
		if (cpx_jobspec_decode(json, strlen(json), &again, NULL) != 0)
			abort();
		if (again.argc != js.argc)
			abort();
		for (i = 0; i < js.argc; i++) {
			if (strcmp(again.argv[i], js.argv[i]) != 0)
				abort();
		}
		cpx_jobspec_free(&again);
		free(json);
	}
	cpx_jobspec_free(&js);
	free(cause);
	return 0;
}
