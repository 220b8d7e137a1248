/* fuzz_dispatcher_msg.c — request bodies from workers and shims, and the registry they feed. */

#include <stdlib.h>
#include <string.h>

#include "disp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct disp_config cfg;
static struct disp d;
static int ready;

/*
 * The first byte picks the message; a body that parses is applied to a
 * long-lived registry too, so the rules run on hostile values.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct disp_reg reg;
	struct disp_beat beat;
	struct disp_place_req pr;
	struct disp_placement pl;
	struct disp_worker *w;
	struct disp_end end;
	static uint64_t now;
	const char *body = (const char *)data + 1;
	char *cause = NULL;
	int drain;

	if (!ready) {
		disp_config_defaults(&cfg);
		cfg.history = 50;
		cfg.max_workers = 64;
		cfg.max_jobs = 1000;
		cpx_log_set_level(CPX_LOG_ERROR);
		disp_init(&d, &cfg);
		ready = 1;
	}
	if (size < 1)
		return 0;
	now += 100;
	switch (data[0] % 5) {
	case 0:
		if (disp_msg_register(body, size - 1, &reg, &cause) == 0) {
			if (reg.ep.name == NULL || reg.ep.host == NULL ||
			    !disp_valid_name(reg.ep.name, DISP_NAME_MAX))
				abort();
			(void)disp_register(&d, &reg, now, &w, &cause);
			disp_reg_free(&reg);
		}
		break;
	case 1:
		if (disp_msg_heartbeat(body, size - 1, &beat, &cause) == 0) {
			if (d.nworkers > 0)
				(void)disp_heartbeat(&d,
				    d.order[now % d.nworkers]->ep.name, &beat,
				    now, &w);
			disp_beat_free(&beat);
		}
		break;
	case 2:
		if (disp_msg_place(body, size - 1, &pr, &cause) == 0) {
			/* Reported jobs never exceed the limit (placements
			   left unreported may, docs/dispatcher.md). */
			if (disp_place(&d, &pr, now, &pl) == 0 &&
			    pl.w->ntasks - pl.w->nunseen >
			    (size_t)pl.w->max_tasks)
				abort();
			disp_place_req_free(&pr);
		}
		break;
	case 3:
		if (disp_msg_end(body, size - 1, &end, &cause) == 0 &&
		    d.hist_head != NULL)
			(void)disp_job_end(&d, d.hist_head->id, &end, now);
		break;
	default:
		(void)disp_msg_drain(body, size - 1, &drain, &cause);
		break;
	}
	free(cause);
	if (now % 5000 == 0)
		disp_sweep(&d, now);
	return 0;
}
