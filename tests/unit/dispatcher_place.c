/* dispatcher_place.c — strategies, limits, back-off, drain, caps, codec sets, affinity, expiry, restart. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "disp.h"

static struct disp_config cfg;
static struct disp d;
static long interval_ms;

static int
setup(void **state)
{
	disp_config_defaults(&cfg);
	cfg.misses = 3;
	cfg.backoff_ms = 1000;
	cfg.start_grace_ms = 5000;
	cfg.affinity_ms = 60000;
	disp_init(&d, &cfg);
	interval_ms = 1000;
	return 0;
}

static int
teardown(void **state)
{
	disp_free(&d);
	disp_config_free(&cfg);
	return 0;
}

/* Registers `name` through the real message parser; extra is more JSON fields. */
static struct disp_worker *
add_worker(const char *name, const char *extra, uint64_t now)
{
	struct disp_worker *w = NULL;
	struct disp_reg reg;
	char body[2048], *cause = NULL;

	snprintf(body, sizeof body, "{\"name\":\"%s\",\"ssh\":{\"host\":"
	    "\"h-%s\",\"port\":22,\"user\":\"cpx\",\"host_key\":"
	    "\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOx0 %s\"},"
	    "\"interval_ms\":%ld%s%s}", name, name, name, interval_ms,
	    extra[0] ? "," : "", extra);
	assert_int_equal(disp_msg_register(body, strlen(body), &reg, &cause),
	    0);
	assert_int_equal(disp_register(&d, &reg, now, &w, &cause), 0);
	disp_reg_free(&reg);
	return w;
}

static const char *
place(const char *job, const char *session, const char *caps, uint64_t now)
{
	struct disp_place_req pr;
	struct disp_placement pl;
	char body[512], *cause = NULL;

	snprintf(body, sizeof body, "{%s%s%s%s%s%s\"caps\":[%s]}",
	    job ? "\"job\":\"" : "", job ? job : "", job ? "\"," : "",
	    session ? "\"session\":\"" : "", session ? session : "",
	    session ? "\"," : "", caps ? caps : "");
	assert_int_equal(disp_msg_place(body, strlen(body), &pr, &cause), 0);
	if (disp_place(&d, &pr, now, &pl) != 0) {
		disp_place_req_free(&pr);
		return "(none)";
	}
	disp_place_req_free(&pr);
	return pl.w->ep.name;
}

static void
beat(const char *name, double cpu, const char *jobs, uint64_t now)
{
	struct disp_worker *w;
	struct disp_beat b;
	char body[1024], *cause = NULL;

	snprintf(body, sizeof body, "{\"cpu\":%g,\"jobs\":[%s]}", cpu, jobs);
	assert_int_equal(disp_msg_heartbeat(body, strlen(body), &b, &cause), 0);
	assert_int_equal(disp_heartbeat(&d, name, &b, now, &w), 0);
	disp_beat_free(&b);
}

static void
end_job(const char *id, const char *outcome, uint64_t now)
{
	struct disp_end e;
	char body[128], *cause = NULL;

	snprintf(body, sizeof body, "{\"outcome\":\"%s\",\"exit\":1}", outcome);
	assert_int_equal(disp_msg_end(body, strlen(body), &e, &cause), 0);
	assert_int_equal(disp_job_end(&d, id, &e, now), 0);
}

static void
test_rr(void **state)
{
	cfg.strategy = DISP_RR;
	add_worker("a", "\"max_tasks\":10", 0);
	add_worker("b", "\"max_tasks\":10", 0);
	add_worker("c", "\"max_tasks\":10", 0);
	assert_string_equal(place(NULL, NULL, NULL, 1), "a");
	assert_string_equal(place(NULL, NULL, NULL, 1), "b");
	assert_string_equal(place(NULL, NULL, NULL, 1), "c");
	assert_string_equal(place(NULL, NULL, NULL, 1), "a");
	/* A drained worker drops out of the turn; the others keep rotating. */
	assert_int_equal(disp_drain(&d, "b", 1), 0);
	assert_string_equal(place(NULL, NULL, NULL, 1), "c");
	assert_string_equal(place(NULL, NULL, NULL, 1), "a");
	assert_string_equal(place(NULL, NULL, NULL, 1), "c");
}

static void
test_load_tasks(void **state)
{
	cfg.strategy = DISP_LOAD_TASKS;
	add_worker("a", "\"max_tasks\":10", 0);
	add_worker("b", "\"max_tasks\":10", 0);
	/* a reports two running jobs: b takes the next two. */
	beat("a", 10, "{\"id\":\"x1\"},{\"id\":\"x2\"}", 10);
	assert_string_equal(place("p1", NULL, NULL, 20), "b");
	assert_string_equal(place("p2", NULL, NULL, 20), "b");
	/* Tied at two: the least recently chosen goes first. */
	assert_string_equal(place("p3", NULL, NULL, 20), "a");
	assert_string_equal(place("p4", NULL, NULL, 20), "b");
}

static void
test_load_cpu_counts_placements_at_once(void **state)
{
	cfg.strategy = DISP_LOAD_CPU;
	add_worker("a", "\"max_tasks\":4", 0);
	add_worker("b", "\"max_tasks\":4", 0);
	beat("a", 10, "", 1);
	beat("b", 30, "", 1);
	/* Without a heartbeat in between, each placement adds 25 % to a. */
	assert_string_equal(place("j1", NULL, NULL, 2), "a");	/* 10 -> 35 */
	assert_string_equal(place("j2", NULL, NULL, 2), "b");	/* 30 -> 55 */
	assert_string_equal(place("j3", NULL, NULL, 2), "a");	/* 35 -> 60 */
	assert_string_equal(place("j4", NULL, NULL, 2), "b");
	assert_true(disp_projected_cpu(disp_worker_find(&d, "a")) > 59);
}

static void
test_load_rank(void **state)
{
	cfg.strategy = DISP_LOAD_RANK;
	add_worker("slow", "\"bench\":1000,\"max_tasks\":8", 0);
	add_worker("fast", "\"bench\":3000,\"max_tasks\":8", 0);
	beat("slow", 0, "", 1);
	beat("fast", 50, "", 1);
	/* rank: slow 1000 x 100 = 100000, fast 3000 x 50 = 150000. */
	assert_string_equal(place("r1", NULL, NULL, 2), "fast");
	/* fast projected 62.5 % -> 3000 x 37.5 = 112500: still fast. */
	assert_string_equal(place("r2", NULL, NULL, 2), "fast");
	/* 75 % -> 75000 < 100000: slow. */
	assert_string_equal(place("r3", NULL, NULL, 2), "slow");
}

static void
test_max_tasks(void **state)
{
	cfg.strategy = DISP_LOAD_RANK;
	add_worker("a", "\"bench\":100,\"max_tasks\":2", 0);
	assert_string_not_equal(place("m1", NULL, NULL, 1), "(none)");
	assert_string_not_equal(place("m2", NULL, NULL, 1), "(none)");
	assert_string_equal(place("m3", NULL, NULL, 1), "(none)");
	assert_int_equal(d.place_fail[DISP_PF_BUSY], 1);
	end_job("m1", "ok", 2);
	assert_string_equal(place("m3", NULL, NULL, 3), "a");
}

static void
test_backoff(void **state)
{
	cfg.strategy = DISP_RR;
	interval_ms = 100000;
	add_worker("a", "\"max_tasks\":5", 0);
	add_worker("b", "\"max_tasks\":5", 0);
	assert_string_equal(place("f1", NULL, NULL, 100), "a");
	end_job("f1", "worker-error", 100);
	/* a is avoided for backoff_ms, then takes jobs again. */
	assert_string_equal(place(NULL, NULL, NULL, 200), "b");
	assert_string_equal(place(NULL, NULL, NULL, 300), "b");
	assert_string_equal(place(NULL, NULL, NULL, 1100), "a");
	/* A second failure in a row doubles the period. */
	assert_string_equal(place("f2", NULL, NULL, 1200), "b");
	assert_string_equal(place("f3", NULL, NULL, 1200), "a");
	end_job("f3", "worker-error", 1200);
	assert_string_equal(place(NULL, NULL, NULL, 2300), "b");
	assert_string_equal(place(NULL, NULL, NULL, 3300), "a");
	/* Ordinary failures of the transcoder are not the worker's fault. */
	end_job("f2", "failed", 3300);
	assert_true(disp_worker_find(&d, "b")->backoff_until <= 3300);
	/* Only one worker, backing off: it still gets the job (below). */
	assert_int_equal(disp_leave(&d, "b", 3400), 0);
	assert_string_equal(place("f4", NULL, NULL, 3400), "a");
	end_job("f4", "worker-error", 3400);
	assert_string_equal(place(NULL, NULL, NULL, 3500), "a");
}

/*
 * Regression (tests/faults: namespace-killed): after one failure each, all
 * workers back off at once (a network blip does that). Back-off steers
 * jobs to the others; when there are none it must not refuse the job.
 */
static void
test_backoff_everywhere(void **state)
{
	cfg.strategy = DISP_RR;
	interval_ms = 100000;
	add_worker("a", "\"max_tasks\":5", 0);
	add_worker("b", "\"max_tasks\":5", 0);
	assert_string_equal(place("e1", NULL, NULL, 100), "a");
	assert_string_equal(place("e2", NULL, NULL, 100), "b");
	end_job("e1", "worker-error", 100);
	/* A healthy worker is still preferred to one backing off. */
	assert_string_equal(place("e3", NULL, NULL, 150), "b");
	end_job("e2", "worker-error", 200);
	assert_string_not_equal(place("e4", NULL, NULL, 300), "(none)");
	/* The shim's retry still excludes the worker that failed it. */
	assert_int_equal(disp_drain(&d, "b", 1), 0);
	assert_string_equal(place("e5", NULL, NULL, 300), "a");
	{
		struct disp_place_req pr;
		struct disp_placement pl;
		char *cause = NULL;
		const char *body = "{\"job\":\"e5\",\"exclude\":[\"a\"]}";

		assert_int_equal(disp_msg_place(body, strlen(body), &pr, &cause),
		    0);
		assert_int_equal(disp_place(&d, &pr, 300, &pl), -EAGAIN);
		disp_place_req_free(&pr);
	}
}

/*
 * Regression (tests/faults: shim-killed): a shim SIGKILLed before its
 * transcoder started leaves a placement its worker never reports, held
 * until the start grace ends (5 s here). Once the worker had two
 * heartbeats to report it, such a placement no longer makes the cluster
 * refuse work; a fresh burst and reported jobs still fill a worker.
 */
static void
test_unreported_placements(void **state)
{
	cfg.strategy = DISP_LOAD_TASKS;
	add_worker("a", "\"max_tasks\":2", 0);
	add_worker("b", "\"max_tasks\":2", 0);
	assert_string_not_equal(place("k1", NULL, NULL, 10), "(none)");
	assert_string_not_equal(place("k2", NULL, NULL, 10), "(none)");
	assert_string_not_equal(place("k3", NULL, NULL, 10), "(none)");
	assert_string_not_equal(place("k4", NULL, NULL, 10), "(none)");
	/* A burst counts at once: full within the two heartbeats. */
	assert_string_equal(place("n0", NULL, NULL, 1500), "(none)");
	/* Four phantoms two heartbeats (2 s) old: the next job gets a worker. */
	assert_string_not_equal(place("n1", NULL, NULL, 2100), "(none)");
	/* Reported jobs do fill a worker. */
	beat("a", 10, "{\"id\":\"r1\",\"started\":1},{\"id\":\"r2\","
	    "\"started\":1}", 2200);
	beat("b", 10, "{\"id\":\"r3\",\"started\":1},{\"id\":\"r4\","
	    "\"started\":1}", 2200);
	assert_string_equal(place("n2", NULL, NULL, 4300), "(none)");
	assert_true(d.place_fail[DISP_PF_BUSY] >= 2);
}

static void
test_drain(void **state)
{
	struct disp_worker *a;

	cfg.strategy = DISP_LOAD_TASKS;
	a = add_worker("a", "\"max_tasks\":5", 0);
	assert_string_equal(place("d1", NULL, NULL, 1), "a");
	assert_int_equal(disp_drain(&d, "a", 1), 0);
	assert_string_equal(place("d2", NULL, NULL, 2), "(none)");
	assert_int_equal(d.place_fail[DISP_PF_DRAINING], 1);
	/* Running jobs stay. */
	beat("a", 20, "{\"id\":\"d1\"}", 3);
	assert_int_equal(a->ntasks, 1);
	assert_int_equal(disp_drain(&d, "nope", 1), -ENOENT);
	assert_int_equal(disp_drain(&d, "a", 0), 0);
	assert_string_equal(place("d2", NULL, NULL, 4), "a");
}

static void
test_caps(void **state)
{
	cfg.strategy = DISP_RR;
	add_worker("cpu", "\"max_tasks\":5", 0);
	add_worker("gpu", "\"max_tasks\":5,\"caps\":[\"VAAPI\",\"qsv\"]", 0);
	assert_string_equal(place(NULL, NULL, "\"vaapi\"", 1), "gpu");
	assert_string_equal(place(NULL, NULL, "\"vaapi\"", 1), "gpu");
	assert_string_equal(place(NULL, NULL, "\"qsv\",\"vaapi\"", 1), "gpu");
	assert_string_equal(place(NULL, NULL, "\"nvenc\"", 1), "(none)");
	assert_int_equal(d.place_fail[DISP_PF_NO_CAPS], 1);
	assert_string_equal(place(NULL, NULL, NULL, 1), "cpu");
}

/* A placement for a job whose codec set is `set`; *reason gets a refusal's. */
static const char *
place_set(const char *set, uint64_t now, char *reason, size_t len)
{
	struct disp_place_req pr;
	struct disp_placement pl;
	char body[512], *cause = NULL;

	snprintf(body, sizeof body, "{\"codecs\":\"%s\"}", set);
	assert_int_equal(disp_msg_place(body, strlen(body), &pr, &cause), 0);
	if (disp_place(&d, &pr, now, &pl) != 0) {
		if (reason != NULL)
			snprintf(reason, len, "%s", pl.reason);
		disp_place_req_free(&pr);
		return "(none)";
	}
	disp_place_req_free(&pr);
	return pl.w->ep.name;
}

#define X86 "8bf330d-2818-linux-x86_64-standard"
#define ARM "8bf330d-2818-linux-aarch64-standard"

static void
test_codecs(void **state)
{
	char reason[256];
	int i, seen[5] = { 0 };
	const char *w;

	cfg.strategy = DISP_RR;
	add_worker("x86", "\"max_tasks\":50,\"codecs\":{\"cpu\":\"x86_64\","
	    "\"sources\":[\"pms\"],\"sets\":[]}", 0);
	/* aarch64, fetches from PMS only: cannot run PMS's x86_64 set. */
	add_worker("arm", "\"max_tasks\":50,\"codecs\":{\"cpu\":\"aarch64\","
	    "\"sources\":[\"pms\"]}", 0);
	/* aarch64 with the same version for its CPU in its folders. */
	add_worker("own", "\"max_tasks\":50,\"codecs\":{\"cpu\":\"aarch64\","
	    "\"sources\":[],\"sets\":[\"" ARM "\"]}", 0);
	/* aarch64 that downloads its sets. */
	add_worker("dl", "\"max_tasks\":50,\"codecs\":{\"cpu\":\"aarch64\","
	    "\"sources\":[\"url\",\"future\"]}", 0);
	/* An agent that reports no codecs is not filtered. */
	add_worker("old", "\"max_tasks\":50", 0);
	for (i = 0; i < 40; i++) {
		w = place_set(X86, 1, NULL, 0);
		assert_string_not_equal(w, "arm");
		seen[strcmp(w, "x86") == 0 ? 0 : strcmp(w, "own") == 0 ? 1 :
		    strcmp(w, "dl") == 0 ? 2 : strcmp(w, "old") == 0 ? 3 : 4]++;
	}
	assert_int_equal(seen[0], 10);
	assert_int_equal(seen[1], 10);
	assert_int_equal(seen[2], 10);
	assert_int_equal(seen[3], 10);
	assert_int_equal(seen[4], 0);
	/* Another version: "own" holds only 8bf330d-2818 for aarch64. */
	for (i = 0; i < 9; i++)
		assert_string_not_equal(place_set("1111111-1000-linux-x86_64-"
		    "standard", 1, NULL, 0), "own");
	/* Nor another variant of the same version. */
	for (i = 0; i < 9; i++)
		assert_string_not_equal(place_set("8bf330d-2818-linux-x86_64",
		    1, NULL, 0), "own");
	/* A job without a set, or with a set of no CPU, goes anywhere. */
	memset(seen, 0, sizeof seen);
	for (i = 0; i < 5; i++)
		seen[strcmp(place(NULL, NULL, NULL, 1), "arm") == 0]++;
	assert_int_equal(seen[1], 1);
	for (i = 0; i < 5; i++)
		seen[strcmp(place_set("8bf330d-2818", 1, NULL, 0), "arm") == 0]++;
	assert_int_equal(seen[1], 2);
	/* The others drain: the reason counts each kind. */
	assert_int_equal(disp_drain(&d, "x86", 1), 0);
	assert_int_equal(disp_drain(&d, "own", 1), 0);
	assert_int_equal(disp_drain(&d, "dl", 1), 0);
	assert_int_equal(disp_drain(&d, "old", 1), 0);
	assert_string_equal(place_set(X86, 2, reason, sizeof reason), "(none)");
	assert_non_null(strstr(reason, "1 unable to get codec set " X86));
	assert_non_null(strstr(reason, "4 draining"));
	/* Only the aarch64 worker without the set is left: no worker, for that reason. */
	assert_int_equal(disp_leave(&d, "x86", 2), 0);
	assert_int_equal(disp_leave(&d, "own", 2), 0);
	assert_int_equal(disp_leave(&d, "dl", 2), 0);
	assert_int_equal(disp_leave(&d, "old", 2), 0);
	assert_string_equal(place_set(X86, 2, reason, sizeof reason), "(none)");
	assert_int_equal(d.place_fail[DISP_PF_NO_CODECS], 1);
	/* Its heartbeat reports the set fetched meanwhile: now it can. */
	beat("arm", 5, "", 3);
	assert_string_equal(place_set(X86, 3, NULL, 0), "(none)");
	{
		struct disp_worker *aw;
		struct disp_beat b;
		const char *body = "{\"cpu\":5,\"codecs\":{\"cpu\":\"aarch64\","
		    "\"sources\":[\"pms\"],\"sets\":[\"" ARM "\"]}}";
		char *cause = NULL;

		assert_int_equal(disp_msg_heartbeat(body, strlen(body), &b,
		    &cause), 0);
		assert_int_equal(disp_heartbeat(&d, "arm", &b, 4, &aw), 0);
		disp_beat_free(&b);
	}
	assert_string_equal(place_set(X86, 4, NULL, 0), "arm");
}

static void
test_codecs_messages(void **state)
{
	static const char *const bad_reg[] = {
		"\"codecs\":[]", "\"codecs\":{}", "\"codecs\":{\"cpu\":\"x86-64\"}",
		"\"codecs\":{\"cpu\":\"\"}",
		"\"codecs\":{\"cpu\":\"x86_64\",\"sources\":\"pms\"}",
		"\"codecs\":{\"cpu\":\"x86_64\",\"sources\":[1]}",
		"\"codecs\":{\"cpu\":\"x86_64\",\"sets\":[\"../x\"]}",
		"\"codecs\":{\"cpu\":\"x86_64\",\"sets\":[\".hidden\"]}",
		"\"codecs\":{\"cpu\":\"x86_64\",\"sets\":{}}",
	};
	static const char *const bad_place[] = {
		"{\"codecs\":1}", "{\"codecs\":\"\"}", "{\"codecs\":\"a/b\"}",
		"{\"codecs\":[\"x\"]}",
	};
	struct disp_place_req pr;
	struct disp_reg reg;
	char body[1024], *cause = NULL;
	size_t i;

	for (i = 0; i < CPX_ARRAY_SIZE(bad_reg); i++) {
		snprintf(body, sizeof body, "{\"name\":\"w\",\"ssh\":{\"host\":"
		    "\"h\",\"port\":22,\"user\":\"u\",\"host_key\":"
		    "\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOx0\"},%s}",
		    bad_reg[i]);
		assert_int_equal(disp_msg_register(body, strlen(body), &reg,
		    &cause), -EINVAL);
		assert_non_null(strstr(cause, "\"codecs\""));
		free(cause);
		cause = NULL;
	}
	for (i = 0; i < CPX_ARRAY_SIZE(bad_place); i++) {
		assert_int_equal(disp_msg_place(bad_place[i],
		    strlen(bad_place[i]), &pr, &cause), -EINVAL);
		free(cause);
		cause = NULL;
	}
	/* Null means absent. */
	assert_int_equal(disp_msg_place("{\"codecs\":null}", 15, &pr, &cause), 0);
	assert_false(pr.codecs);
	disp_place_req_free(&pr);
}

static void
test_affinity(void **state)
{
	cfg.strategy = DISP_RR;
	add_worker("a", "\"max_tasks\":5", 0);
	add_worker("b", "\"max_tasks\":5", 0);
	assert_string_equal(place("s1", "sess", NULL, 1), "a");
	/* Same session: a again, though RR would say b. */
	assert_string_equal(place("s2", "sess", NULL, 2), "a");
	assert_string_equal(place("o1", "other", NULL, 2), "b");
	/* After the session's jobs ended, affinity lasts affinity_ms. */
	end_job("s1", "killed", 10);
	end_job("s2", "killed", 10);
	assert_string_equal(place("s3", "sess", NULL, 20), "a");
	end_job("s3", "killed", 30);
	assert_string_equal(place("x1", NULL, NULL, 40), "b");
	beat("a", 0, "", 60000);
	beat("b", 0, "", 60000);
	assert_string_equal(place("y1", NULL, NULL, 60000), "a");
	/* affinity_ms after the last job ended, the session is forgotten: RR says b. */
	assert_string_equal(place("s4", "sess", NULL, 30 + 60001), "b");
	end_job("s4", "ok", 61000);
	disp_sessions_prune(&d, 61000 + 60000);
	assert_null(disp_session_find(&d, "sess"));
	/* A draining session worker gives the job to another. */
	assert_string_equal(place("s5", "sess2", NULL, 61000), "a");
	assert_string_equal(place("s6", "sess2", NULL, 61000), "a");
	assert_int_equal(disp_drain(&d, "a", 1), 0);
	assert_string_equal(place("s7", "sess2", NULL, 61001), "b");
}

static void
test_expiry_and_leave(void **state)
{
	add_worker("a", "\"max_tasks\":5", 0);	/* 1000 ms, 3 misses */
	add_worker("b", "\"max_tasks\":5", 0);
	assert_string_not_equal(place("e1", NULL, NULL, 10), "(none)");
	beat("a", 0, "", 2000);
	/* b missed three beats: out of placement at once, removed by the sweep. */
	assert_string_equal(place("e2", NULL, NULL, 3000), "a");
	assert_string_equal(place("e3", NULL, NULL, 3000), "a");
	disp_sweep(&d, 3000);
	assert_null(disp_worker_find(&d, "b"));
	assert_int_equal(d.nworkers, 1);
	/* A clean leave is immediate; its jobs end as lost. */
	assert_int_equal(disp_leave(&d, "a", 3100), 0);
	assert_int_equal(d.nworkers, 0);
	assert_int_equal(d.nrunning, 0);
	assert_true(d.outcomes[DISP_LOST] >= 2);
	assert_string_equal(place("e4", NULL, NULL, 3200), "(none)");
	assert_int_equal(d.place_fail[DISP_PF_NO_WORKERS], 1);
}

static void
test_reconcile(void **state)
{
	struct disp_worker *a;
	struct disp_job *j;

	cfg.strategy = DISP_RR;
	a = add_worker("a", "\"max_tasks\":10", 0);
	assert_string_equal(place("k1", "s", NULL, 0), "a");
	assert_string_equal(place("k2", "s", NULL, 0), "a");
	assert_int_equal(a->nunseen, 2);
	beat("a", 0, "{\"id\":\"k1\",\"session\":\"s\"}", 1000);
	assert_int_equal(a->nunseen, 1);
	/* k2 never reported within the grace: given up. k1 then stops. */
	beat("a", 0, "{\"id\":\"k1\"}", 6000);
	j = disp_job_find(&d, "k2");
	assert_false(j->running);
	assert_int_equal(j->outcome, DISP_NEVER_STARTED);
	beat("a", 0, "", 7000);
	j = disp_job_find(&d, "k1");
	assert_int_equal(j->outcome, DISP_ENDED);
	/* The shim's later report replaces the guess. */
	end_job("k1", "ok", 7100);
	assert_int_equal(disp_job_find(&d, "k1")->outcome, DISP_OK);
	assert_int_equal(a->ntasks, 0);
	/* An end reported while the worker still lists the job keeps it ended. */
	assert_string_equal(place("k3", NULL, NULL, 8000), "a");
	beat("a", 0, "{\"id\":\"k3\"}", 8100);
	end_job("k3", "killed", 8200);
	beat("a", 0, "{\"id\":\"k3\"}", 8300);
	assert_false(disp_job_find(&d, "k3")->running);
	assert_int_equal(a->ntasks, 0);
}

static void
test_restart_recovery(void **state)
{
	struct disp_worker *w = NULL;
	struct disp_beat b = { 0 };

	/* A fresh dispatcher: heartbeats are refused until the worker registers. */
	assert_int_equal(disp_heartbeat(&d, "a", &b, 0, &w), -ENOENT);
	w = add_worker("a", "\"max_tasks\":3,\"jobs\":[{\"id\":\"r1\","
	    "\"session\":\"s1\",\"started\":1700000000},{\"id\":\"r2\"}]", 10);
	assert_int_equal(d.nrunning, 2);
	assert_int_equal(w->ntasks, 2);
	assert_int_equal(w->nunseen, 0);
	assert_true(disp_job_find(&d, "r1")->started_wall == 1700000000);
	/* Running jobs count against the limit, and their sessions stick. */
	assert_string_equal(place("r3", "s1", NULL, 20), "a");
	assert_string_equal(place("r4", NULL, NULL, 20), "(none)");
	/* A second registration of the same worker changes nothing. */
	add_worker("a", "\"max_tasks\":3,\"jobs\":[{\"id\":\"r1\"},"
	    "{\"id\":\"r2\"},{\"id\":\"r3\"}]", 30);
	assert_int_equal(d.nrunning, 3);
	assert_int_equal(d.nworkers, 1);
}

static void
test_name_conflict(void **state)
{
	struct disp_worker *w = NULL;
	struct disp_reg reg;
	char *cause = NULL;
	const char *body = "{\"name\":\"a\",\"ssh\":{\"host\":\"10.9.9.9\","
	    "\"port\":22,\"user\":\"cpx\",\"host_key\":\"ssh-ed25519 "
	    "AAAAC3NzaC1lZDI1NTE5AAAAIOx0 other\"}}";

	add_worker("a", "", 0);
	assert_int_equal(disp_msg_register(body, strlen(body), &reg, &cause), 0);
	assert_int_equal(disp_register(&d, &reg, 100, &w, &cause), -EEXIST);
	free(cause);
	cause = NULL;
	/* Once the first has expired, the name is free again. */
	assert_int_equal(disp_register(&d, &reg, 5000, &w, &cause), 0);
	assert_string_equal(w->ep.host, "10.9.9.9");
	disp_reg_free(&reg);
}

static void
test_retry_excludes(void **state)
{
	struct disp_place_req pr;
	struct disp_placement pl;
	const char *body = "{\"job\":\"t1\",\"exclude\":[\"a\"]}";
	char *cause = NULL;

	cfg.strategy = DISP_RR;
	add_worker("a", "\"max_tasks\":5", 0);
	add_worker("b", "\"max_tasks\":5", 0);
	assert_string_equal(place("t1", NULL, NULL, 1), "a");
	/* The shim could not reach a: it asks again for t1 without a. */
	assert_int_equal(disp_msg_place(body, strlen(body), &pr, &cause), 0);
	assert_int_equal(disp_place(&d, &pr, 2, &pl), 0);
	assert_string_equal(pl.w->ep.name, "b");
	assert_int_equal(disp_worker_find(&d, "a")->ntasks, 0);
	/* Once b reports t1, a new placement of t1 is a conflict. */
	beat("b", 0, "{\"id\":\"t1\"}", 3);
	assert_int_equal(disp_place(&d, &pr, 4, &pl), -EEXIST);
	disp_place_req_free(&pr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_tasks, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_load_cpu_counts_placements_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_rank, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_max_tasks, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backoff_everywhere, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unreported_placements,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_caps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_codecs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_codecs_messages, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_affinity, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_expiry_and_leave, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reconcile, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_restart_recovery, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_name_conflict, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_retry_excludes, setup,
		    teardown),
	};

	cpx_log_set_level(CPX_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
