/*
 * fuzz_env.h — configuration from hostile environment values, for the
 * fuzz_*_config targets. The input is NUL-separated values, one per
 * variable of the target's list, in order; a variable past the last value
 * is unset. Compose files produce quotes, blanks, signs, huge numbers.
 */

#include <stdlib.h>
#include <string.h>

static void
fe_apply(const char *const *names, size_t n, const uint8_t *data, size_t size)
{
	size_t i, off = 0, len;
	char *v;

	for (i = 0; i < n; i++) {
		if (off >= size) {
			unsetenv(names[i]);
			continue;
		}
		len = strnlen((const char *)data + off, size - off);
		v = cpx_xstrndup((const char *)data + off, len);
		setenv(names[i], v, 1);
		free(v);
		off += len + 1;
	}
}
