/* common_codecset.c — codec set names, FFMPEG_EXTERNAL_LIBS, SET_* payloads. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cpx-protocol.h"

static void
test_names(void **state)
{
	struct cpx_codec_set s;
	char *other;

	assert_int_equal(cpx_codec_set_parse("8bf330d-2818-linux-x86_64-standard",
	    &s), 0);
	assert_string_equal(s.version, "8bf330d-2818");
	assert_string_equal(s.cpu, "x86_64");
	assert_string_equal(s.variant, "standard");
	other = cpx_codec_set_for_cpu(&s, "aarch64");
	assert_string_equal(other, "8bf330d-2818-linux-aarch64-standard");
	free(other);
	cpx_codec_set_free(&s);
	assert_int_equal(cpx_codec_set_parse("99c90e0-3084-linux-x86_64", &s), 0);
	assert_string_equal(s.cpu, "x86_64");
	assert_null(s.variant);
	cpx_codec_set_free(&s);
	assert_int_equal(cpx_codec_set_parse("custom-set", &s), 0);
	assert_null(s.cpu);
	assert_null(cpx_codec_set_for_cpu(&s, "aarch64"));
	cpx_codec_set_free(&s);
	assert_int_equal(cpx_codec_set_parse("../x", &s), -EINVAL);
	assert_int_equal(cpx_codec_set_parse(".hidden", &s), -EINVAL);
	assert_int_equal(cpx_codec_set_parse("a b", &s), -EINVAL);
	assert_int_equal(cpx_codec_set_parse("", &s), -EINVAL);
}

static void
test_libs_value(void **state)
{
	char *d = cpx_codec_libs_dir("/config/Library/Application\\ Support/"
	    "Plex\\ Media\\ Server/Codecs/8bf330d-2818-linux-x86_64/"), *v;

	assert_string_equal(d, "/config/Library/Application Support/Plex Media "
	    "Server/Codecs/8bf330d-2818-linux-x86_64");
	v = cpx_codec_libs_value(d);
	assert_string_equal(v, "/config/Library/Application\\ Support/Plex\\ "
	    "Media\\ Server/Codecs/8bf330d-2818-linux-x86_64/");
	free(d);
	free(v);
	assert_null(cpx_codec_libs_dir("relative/x"));
}

static void
roundtrip(uint8_t type, uint32_t mode, uint64_t size, const char *path,
    int want)
{
	struct cpx_set_entry e = { type, mode, size, (char *)path }, got;
	struct cpx_buf b;

	cpx_buf_init(&b);
	cpx_set_entry_put(&b, &e);
	assert_int_equal(cpx_set_entry_parse(b.data, b.len, &got), want);
	if (want == 0) {
		assert_int_equal(got.type, type);
		assert_int_equal(got.mode, mode);
		assert_true(got.size == size);
		assert_string_equal(got.path, path);
		free(got.path);
	} else {
		assert_null(got.path);
	}
	cpx_buf_free(&b);
}

static void
test_entries(void **state)
{
	char *name = NULL;
	int data = 0;

	roundtrip(CPX_SET_REG, 0755, 1234, "libh264_decoder.so", 0);
	roundtrip(CPX_SET_DIR, 0755, 0, "EasyAudioEncoder/EasyAudioEncoder", 0);
	roundtrip(CPX_SET_REG, 0644, 1, "../etc/passwd", -EPROTO);
	roundtrip(CPX_SET_REG, 0644, 1, "/etc/passwd", -EPROTO);
	roundtrip(CPX_SET_REG, 0644, 1, "a//b", -EPROTO);
	roundtrip(CPX_SET_DIR, 0755, 5, "d", -EPROTO);
	roundtrip(7, 0755, 0, "d", -EPROTO);
	roundtrip(CPX_SET_REG, 0104755, 1, "setuid", -EPROTO);
	roundtrip(CPX_SET_REG, 0644, 1, "a/b/c/d/e/f/g/h/i", -EPROTO);
	name = cpx_set_want_encode("8bf330d-2818-linux-x86_64", 0);
	{
		char *n2 = NULL;

		assert_int_equal(cpx_set_want_parse((uint8_t *)name,
		    strlen(name), &n2, &data), 0);
		assert_string_equal(n2, "8bf330d-2818-linux-x86_64");
		assert_int_equal(data, 0);
		free(n2);
	}
	free(name);
	assert_int_equal(cpx_set_want_parse((const uint8_t *)
	    "{\"kind\":\"codecs\",\"name\":\"../x\"}", 31, &name, &data), -EPROTO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_libs_value),
		cmocka_unit_test(test_entries),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
