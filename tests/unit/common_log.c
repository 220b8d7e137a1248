/* common_log.c — what the logger writes never carries a registered secret. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "cpx.h"

#define SECRET "cpx-secret-3f9a2b7c41d0e8a65b1c"

static char out[16384];

static int capture_fd = -1, saved_stderr = -1;

/* Between start() and stop(), what the logger writes lands in `out`. */
static void
start(void)
{
	capture_fd = memfd_create("log", 0);
	saved_stderr = dup(STDERR_FILENO);
	dup2(capture_fd, STDERR_FILENO);
}

static void
stop(void)
{
	ssize_t n;

	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	n = pread(capture_fd, out, sizeof out - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(capture_fd);
}

static int
setup(void **state)
{
	(void)state;
	cpx_log_add_secret(SECRET);
	return 0;
}

/* Text that ends like the secret's start, right before the secret: masking
   the first match must not leave the rest of the real one readable. */
static void
test_overlapping_occurrences(void **state)
{
	(void)state;
	start();
	cpx_info("%s" SECRET, "cpx-secret-3f9a2b7c41d0e8a65b1");
	stop();
	assert_null(strstr(out, "px-secret-3f9a2b7c41d0e8a65b1c"));
	assert_null(strstr(out, "3f9a2b7c41d0e8a65b1"));
}

/* A line that fills the logger's buffer exactly may have been cut inside
   a secret; its end is masked like that of a line known to be cut. */
static void
test_line_at_the_limit(void **state)
{
	static char pad[8192];
	int width;

	(void)state;
	memset(pad, 'x', sizeof pad - 1);
	for (width = 3980; width < 4100; width++) {
		start();
		cpx_info("%.*s" SECRET, width, pad);
		stop();
		assert_null(strstr(out, "cpx-secret-3f9a"));
	}
}

static void
test_plex_token_in_url(void **state)
{
	(void)state;
	start();
	cpx_info("GET /a?X-Plex-Token=%s&b=1", "abcdef123");
	stop();
	assert_null(strstr(out, "abcdef123"));
	assert_non_null(strstr(out, "&b=1"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overlapping_occurrences),
		cmocka_unit_test(test_line_at_the_limit),
		cmocka_unit_test(test_plex_token_in_url),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
