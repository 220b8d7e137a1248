/* fuzz_common_codecset.c — SET_FILE, SET_WANT and set names from hostile bytes. */

#include <stdlib.h>
#include <string.h>

#include "cpx-protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cpx_set_entry e;
	struct cpx_codec_set s;
	char *name = NULL, *text, *dir, *back;
	int d;

	if (cpx_set_entry_parse(data, size, &e) == 0) {
		/* Whatever passes can never leave the folder it is written to. */
		if (e.path[0] == '/' ||
		    !cpx_path_clean_relative(e.path))
			abort();
		free(e.path);
	}
	if (cpx_set_want_parse(data, size, &name, &d) == 0 &&
	    !cpx_set_name_valid(name))
		abort();
	free(name);
	text = cpx_xstrndup((const char *)data, strnlen((const char *)data, size));
	if (cpx_codec_set_parse(text, &s) == 0)
		cpx_codec_set_free(&s);
	if ((dir = cpx_codec_libs_dir(text)) != NULL) {
		back = cpx_codec_libs_value(dir);
		free(back);
		free(dir);
	}
	free(text);
	return 0;
}
