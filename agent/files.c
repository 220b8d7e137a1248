/* files.c — PLACEHOLDER until the file service lands (fuse work). */

#include "agent.h"

int
agent_files_start(struct agent_config *cfg, struct uv_loop_s *loop,
    struct cpx_link *link, int *status)
{
	cpx_error("the file service is not built yet");
	return -1;
}
