/* shim_doctor_xml.c — reading TranscoderTempDirectory out of Preferences.xml. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "doctor.h"

static int
attr(const char *xml, const char *name, char **out)
{
	return shim_xml_attr(xml, strlen(xml), "Preferences", name, out);
}

static void
test_values(void **state)
{
	const char *x = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	    "<Preferences OldestPreviousVersion=\"1.40.0\"\n  "
	    "TranscoderTempDirectory = '/mnt/a &amp; b&#x2F;c&#65;' "
	    "FriendlyName=\"x &quot;y&quot;\"/>\n";
	char *v = NULL;

	assert_int_equal(attr(x, "TranscoderTempDirectory", &v), 0);
	assert_string_equal(v, "/mnt/a & b/cA");
	free(v);
	assert_int_equal(attr(x, "FriendlyName", &v), 0);
	assert_string_equal(v, "x \"y\"");
	free(v);
	assert_int_equal(attr(x, "Missing", &v), -ENOENT);
	assert_null(v);
	/* An attribute whose name only ends like the one asked for. */
	assert_int_equal(attr("<Preferences XTranscoderTempDirectory=\"/x\"/>",
	    "TranscoderTempDirectory", &v), -ENOENT);
	assert_int_equal(attr("<PreferencesX TranscoderTempDirectory=\"/x\"/>",
	    "TranscoderTempDirectory", &v), -ENOENT);
}

static void
test_malformed(void **state)
{
	char *v = NULL;

	assert_int_equal(attr("<Preferences a=\"1", "a", &v), -EPROTO);
	assert_int_equal(attr("<Preferences a=1/>", "a", &v), -EPROTO);
	assert_int_equal(attr("<Preferences a=\"&bogus;\"/>", "a", &v), -EPROTO);
	assert_int_equal(attr("<Preferences a=\"&#0;\"/>", "a", &v), -EPROTO);
	assert_int_equal(attr("<Preferences a=\"x\" b/>", "a", &v), -EPROTO);
	assert_null(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
