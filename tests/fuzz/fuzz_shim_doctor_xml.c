/* fuzz_shim_doctor_xml.c — PMS's Preferences.xml as hostile text. */

#include <stdlib.h>
#include <string.h>

#include "doctor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *v = NULL;
	int r = shim_xml_attr((const char *)data, size, "Preferences",
	    "TranscoderTempDirectory", &v);

	if ((r == 0) != (v != NULL))
		abort();
	free(v);
	return 0;
}
