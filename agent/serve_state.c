/* serve_state.c — agent serve's decisions after each exchange with the dispatcher. */

#include "serve.h"

/*
 * 404 means "I do not know you" only as an answer to a heartbeat; to a
 * registration it means the URL does not lead to a dispatcher, and to a
 * leave that there is nothing left to leave. 408, 429 and 5xx are passing
 * troubles of the dispatcher (or of a proxy in front of it), like no
 * answer at all; every other 4xx says our request is wrong and repeating
 * it quickly cannot help.
 */
enum agent_outcome
agent_classify(enum agent_call_kind kind, int error, int status)
{
	if (error != 0)
		return AGENT_DOWN;
	if (status >= 200 && status < 300)
		return AGENT_OK;
	switch (status) {
	case 401:
	case 403:
		return AGENT_AUTH;
	case 404:
		if (kind == AGENT_CALL_BEAT)
			return AGENT_UNKNOWN;
		return kind == AGENT_CALL_LEAVE ? AGENT_OK : AGENT_REJECTED;
	case 409:
		return AGENT_CONFLICT;
	case 408:
	case 429:
		return AGENT_DOWN;
	}
	return status >= 500 ? AGENT_DOWN : AGENT_REJECTED;
}

/* The word /health shows for the dispatcher's state. */
const char *
agent_outcome_name(enum agent_outcome o)
{
	switch (o) {
	case AGENT_NONE:
		return "connecting";
	case AGENT_OK:
		return "up";
	case AGENT_UNKNOWN:
		return "re-registering";
	case AGENT_DOWN:
		return "unreachable";
	case AGENT_AUTH:
		return "unauthorized";
	case AGENT_CONFLICT:
		return "name-conflict";
	case AGENT_REJECTED:
		return "rejected";
	}
	return "?";
}

/*
 * Delay before registration attempt `failures` + 1: doubling from 0.5 s
 * up to 5 s, then shortened by up to a quarter at random (rnd in [0, 1))
 * so that a fleet of workers does not knock on a restarted dispatcher in
 * step. Never more than AGENT_BACKOFF_MAX_MS.
 */
unsigned
agent_backoff_ms(unsigned failures, double rnd)
{
	unsigned d;

	if (failures == 0)
		return 0;
	d = AGENT_BACKOFF_BASE_MS << (failures - 1 < 8 ? failures - 1 : 8);
	if (d > AGENT_BACKOFF_MAX_MS)
		d = AGENT_BACKOFF_MAX_MS;
	if (rnd < 0 || rnd >= 1)
		rnd = 0;
	return d - (unsigned)((double)d * 0.25 * rnd);
}

/*
 * Applies the outcome of one exchange and says what comes next. While
 * registered, a dispatcher that does not answer is beaten at the regular
 * period: when it comes back (restarted, empty) its first answer is 404,
 * and the registration that follows at once brings the worker and its
 * jobs back within one period. A refusal (token, name, body) retries at
 * the slowest pace, since only an operator can fix it.
 */
void
agent_sm_done(struct agent_sm *sm, enum agent_call_kind kind,
    enum agent_outcome o, uint64_t now_ms, double rnd, struct agent_next *next)
{
	next->changed = o != sm->last;
	next->reg = 0;
	next->delay_ms = 0;
	sm->last = o;
	if (kind == AGENT_CALL_LEAVE) {
		sm->registered = 0;
		return;
	}
	switch (o) {
	case AGENT_OK:
		sm->registered = 1;
		sm->failures = 0;
		sm->last_ok_ms = now_ms;
		return;
	case AGENT_UNKNOWN:
		sm->registered = 0;
		sm->failures = 0;
		next->reg = 1;
		return;
	case AGENT_DOWN:
		if (kind == AGENT_CALL_BEAT && sm->registered)
			return;
		sm->failures++;
		next->delay_ms = agent_backoff_ms(sm->failures, rnd);
		break;
	default:
		sm->failures++;
		next->delay_ms = agent_backoff_ms(AGENT_BACKOFF_STEPS, rnd);
		break;
	}
	sm->registered = 0;
	next->reg = 1;
}

/*
 * Every request is bounded by the heartbeat period, within 1–5 s: long
 * enough for a loaded dispatcher, short enough that a stop never waits
 * long for the request in flight.
 */
unsigned
agent_http_timeout_ms(long heartbeat_ms)
{
	if (heartbeat_ms < 1000)
		return 1000;
	return heartbeat_ms > 5000 ? 5000 : (unsigned)heartbeat_ms;
}

/* Before two /proc/stat samples exist, the load average stands in. */
double
agent_cpu_estimate(double load1, long cpus)
{
	double pct;

	if (cpus < 1)
		cpus = 1;
	pct = load1 / (double)cpus * 100.0;
	if (!(pct > 0))
		return 0;
	return pct > 100 ? 100 : pct;
}
