/* serve.c — PLACEHOLDER until registration and heartbeats land (dispatcher work). */

#include "agent.h"

int
agent_serve_main(struct agent_config *cfg)
{
	cpx_error("serve is not built yet");
	return 1;
}
