/* job.c — PLACEHOLDER until the job service lands (remote-execution work). */

#include "agent.h"

int
agent_job_start(struct agent_config *cfg, struct uv_loop_s *loop,
    struct cpx_link *link, int *status)
{
	cpx_error("the job service is not built yet");
	return -1;
}
