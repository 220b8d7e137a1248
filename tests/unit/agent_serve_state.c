/* agent_serve_state.c — agent serve's decisions: outcomes, back-off, state changes. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "serve.h"

static void
test_classify(void **state)
{
	assert_int_equal(agent_classify(AGENT_CALL_REGISTER, -ECONNREFUSED, 0),
	    AGENT_DOWN);
	assert_int_equal(agent_classify(AGENT_CALL_BEAT, -ETIMEDOUT, 0),
	    AGENT_DOWN);
	assert_int_equal(agent_classify(AGENT_CALL_REGISTER, 0, 201), AGENT_OK);
	assert_int_equal(agent_classify(AGENT_CALL_BEAT, 0, 200), AGENT_OK);
	assert_int_equal(agent_classify(AGENT_CALL_LEAVE, 0, 204), AGENT_OK);
	/* 404 means three different things. */
	assert_int_equal(agent_classify(AGENT_CALL_BEAT, 0, 404),
	    AGENT_UNKNOWN);
	assert_int_equal(agent_classify(AGENT_CALL_REGISTER, 0, 404),
	    AGENT_REJECTED);
	assert_int_equal(agent_classify(AGENT_CALL_LEAVE, 0, 404), AGENT_OK);
	assert_int_equal(agent_classify(AGENT_CALL_REGISTER, 0, 401),
	    AGENT_AUTH);
	assert_int_equal(agent_classify(AGENT_CALL_BEAT, 0, 403), AGENT_AUTH);
	assert_int_equal(agent_classify(AGENT_CALL_REGISTER, 0, 409),
	    AGENT_CONFLICT);
	assert_int_equal(agent_classify(AGENT_CALL_REGISTER, 0, 400),
	    AGENT_REJECTED);
	assert_int_equal(agent_classify(AGENT_CALL_REGISTER, 0, 413),
	    AGENT_REJECTED);
	/* Passing trouble: a proxy with no upstream, a dispatcher full. */
	assert_int_equal(agent_classify(AGENT_CALL_REGISTER, 0, 502),
	    AGENT_DOWN);
	assert_int_equal(agent_classify(AGENT_CALL_REGISTER, 0, 503),
	    AGENT_DOWN);
	assert_int_equal(agent_classify(AGENT_CALL_BEAT, 0, 408), AGENT_DOWN);
	assert_int_equal(agent_classify(AGENT_CALL_BEAT, 0, 429), AGENT_DOWN);
	assert_int_equal(agent_classify(AGENT_CALL_BEAT, 0, 302),
	    AGENT_REJECTED);
	assert_string_equal(agent_outcome_name(AGENT_DOWN), "unreachable");
	assert_string_equal(agent_outcome_name(AGENT_AUTH), "unauthorized");
	assert_string_equal(agent_outcome_name(AGENT_NONE), "connecting");
}

static void
test_backoff(void **state)
{
	static const unsigned want[] = { 0, 500, 1000, 2000, 4000, 5000, 5000 };
	unsigned i, d;
	double r;

	for (i = 0; i < CPX_ARRAY_SIZE(want); i++)
		assert_int_equal(agent_backoff_ms(i, 0), want[i]);
	assert_int_equal(agent_backoff_ms(AGENT_BACKOFF_STEPS, 0),
	    AGENT_BACKOFF_MAX_MS);
	/* Bounded whatever the count, even where a shift would overflow. */
	assert_int_equal(agent_backoff_ms(40, 0), AGENT_BACKOFF_MAX_MS);
	assert_int_equal(agent_backoff_ms(~0u, 0), AGENT_BACKOFF_MAX_MS);
	/* Jitter only shortens, by a quarter at most. */
	for (r = 0; r < 1; r += 0.05) {
		d = agent_backoff_ms(9, r);
		assert_true(d <= AGENT_BACKOFF_MAX_MS);
		assert_true(d > AGENT_BACKOFF_MAX_MS * 3 / 4);
	}
	assert_int_equal(agent_backoff_ms(1, 0.999), 376);
	/* Out-of-range randomness is ignored, never trusted. */
	assert_int_equal(agent_backoff_ms(2, 7.0), 1000);
	assert_int_equal(agent_backoff_ms(2, -1.0), 1000);
}

static void
test_down_at_start(void **state)
{
	struct agent_sm sm = { 0 };
	struct agent_next n;
	unsigned i;

	/* First failure is a change (one log line), the next ones are not. */
	agent_sm_done(&sm, AGENT_CALL_REGISTER, AGENT_DOWN, 100, 0, &n);
	assert_true(n.changed);
	assert_true(n.reg);
	assert_int_equal(n.delay_ms, 500);
	assert_false(sm.registered);
	for (i = 0; i < 10; i++) {
		agent_sm_done(&sm, AGENT_CALL_REGISTER, AGENT_DOWN, 200, 0, &n);
		assert_false(n.changed);
		assert_true(n.reg);
		assert_true(n.delay_ms <= AGENT_BACKOFF_MAX_MS);
	}
	assert_int_equal(n.delay_ms, AGENT_BACKOFF_MAX_MS);
	assert_int_equal(sm.last_ok_ms, 0);
	/* It comes up: registered, the back-off starts over. */
	agent_sm_done(&sm, AGENT_CALL_REGISTER, AGENT_OK, 900, 0, &n);
	assert_true(n.changed);
	assert_false(n.reg);
	assert_true(sm.registered);
	assert_int_equal(sm.failures, 0);
	assert_int_equal(sm.last_ok_ms, 900);
	agent_sm_done(&sm, AGENT_CALL_BEAT, AGENT_OK, 1000, 0, &n);
	assert_false(n.changed);
	assert_int_equal(sm.last_ok_ms, 1000);
}

/*
 * A dispatcher restart: beats fail while it is away (the worker keeps its
 * period, no back-off), the new one answers 404, the agent registers at
 * once.
 */
static void
test_restart(void **state)
{
	struct agent_sm sm = { .registered = 1, .last = AGENT_OK,
	    .last_ok_ms = 50 };
	struct agent_next n;
	int i;

	for (i = 0; i < 5; i++) {
		agent_sm_done(&sm, AGENT_CALL_BEAT, AGENT_DOWN, 100, 0.5, &n);
		assert_int_equal(n.changed, i == 0);
		assert_false(n.reg);
		assert_true(sm.registered);
	}
	assert_int_equal(sm.failures, 0);
	assert_int_equal(sm.last_ok_ms, 50);
	agent_sm_done(&sm, AGENT_CALL_BEAT, AGENT_UNKNOWN, 200, 0.5, &n);
	assert_true(n.changed);
	assert_true(n.reg);
	assert_int_equal(n.delay_ms, 0);
	assert_false(sm.registered);
	/* The registration itself fails: now the back-off applies. */
	agent_sm_done(&sm, AGENT_CALL_REGISTER, AGENT_DOWN, 300, 0, &n);
	assert_true(n.reg);
	assert_int_equal(n.delay_ms, 500);
	agent_sm_done(&sm, AGENT_CALL_REGISTER, AGENT_OK, 900, 0, &n);
	assert_true(sm.registered);
	assert_false(n.reg);
}

/* Refusals only an operator can fix retry at the slowest pace at once. */
static void
test_refusals(void **state)
{
	static const enum agent_outcome os[] = { AGENT_AUTH, AGENT_CONFLICT,
	    AGENT_REJECTED };
	struct agent_sm sm;
	struct agent_next n;
	size_t i;

	for (i = 0; i < CPX_ARRAY_SIZE(os); i++) {
		memset(&sm, 0, sizeof sm);
		agent_sm_done(&sm, AGENT_CALL_REGISTER, os[i], 10, 0, &n);
		assert_true(n.changed);
		assert_true(n.reg);
		assert_int_equal(n.delay_ms, AGENT_BACKOFF_MAX_MS);
		agent_sm_done(&sm, AGENT_CALL_REGISTER, os[i], 20, 0, &n);
		assert_false(n.changed);
		assert_int_equal(n.delay_ms, AGENT_BACKOFF_MAX_MS);
	}
	/* A token rotated under a registered worker: register again. */
	sm = (struct agent_sm){ .registered = 1, .last = AGENT_OK };
	agent_sm_done(&sm, AGENT_CALL_BEAT, AGENT_AUTH, 30, 0, &n);
	assert_false(sm.registered);
	assert_true(n.reg);
	assert_int_equal(n.delay_ms, AGENT_BACKOFF_MAX_MS);
	/* And a different refusal after it is a change again. */
	agent_sm_done(&sm, AGENT_CALL_REGISTER, AGENT_CONFLICT, 40, 0, &n);
	assert_true(n.changed);
}

static void
test_leave(void **state)
{
	struct agent_sm sm = { .registered = 1, .last = AGENT_OK };
	struct agent_next n;

	agent_sm_done(&sm, AGENT_CALL_LEAVE, AGENT_OK, 10, 0, &n);
	assert_false(sm.registered);
	assert_false(n.reg);
	sm.registered = 1;
	agent_sm_done(&sm, AGENT_CALL_LEAVE, AGENT_DOWN, 10, 0, &n);
	assert_false(sm.registered);
	assert_false(n.reg);
}

static void
test_timeout_and_cpu(void **state)
{
	assert_int_equal(agent_http_timeout_ms(100), 1000);
	assert_int_equal(agent_http_timeout_ms(2000), 2000);
	assert_int_equal(agent_http_timeout_ms(600000), 5000);
	assert_true(agent_cpu_estimate(1.0, 4) == 25.0);
	assert_true(agent_cpu_estimate(9.0, 2) == 100.0);
	assert_true(agent_cpu_estimate(0.5, 0) == 50.0);
	assert_true(agent_cpu_estimate(-1.0, 2) == 0.0);
}

static void
test_parse_error(void **state)
{
	char *e;

	e = agent_parse_error("{\"error\":\"the bearer token is not "
	    "CLUSTERPLEX_TOKEN\"}");
	assert_string_equal(e, "the bearer token is not CLUSTERPLEX_TOKEN");
	free(e);
	e = agent_parse_error("{\"error\":\"line\\nbreak\"}");
	assert_string_equal(e, "line\\x0abreak");
	free(e);
	assert_null(agent_parse_error("<html>"));
	assert_null(agent_parse_error(NULL));
	assert_null(agent_parse_error("{\"error\":5}"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_down_at_start),
		cmocka_unit_test(test_restart),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_leave),
		cmocka_unit_test(test_timeout_and_cpu),
		cmocka_unit_test(test_parse_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
