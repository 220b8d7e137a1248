/*
 * fuzz_agent_serve.c — what agent serve reads: the dispatcher's answers
 * (drain flag, error sentence), the job service's state files, and
 * /proc/stat. The first byte picks which; the rest is the text.
 *
 * A state file that parses names a job id of the dispatcher's alphabet
 * and a real pid; an error sentence comes back printable and bounded; a
 * CPU load is a percentage.
 */

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
job_file(const char *t, size_t n)
{
	struct agent_job job;
	const char *p;

	if (agent_job_parse(t, n, &job) == 0) {
		if (job.id == NULL || *job.id == '\0' || strlen(job.id) > 128 ||
		    job.pid < 1 || job.started < 0)
			abort();
		for (p = job.id; *p != '\0'; p++) {
			if (!isalnum((unsigned char)*p) && !strchr("._-:", *p))
				abort();
		}
	}
	free(job.id);
	free(job.session);
}

static void
answer(const char *t)
{
	char *e = agent_parse_error(t), *p;
	int drain = -1;

	if (agent_parse_drain(t, &drain) == 0 && drain != 0 && drain != 1)
		abort();
	if (e == NULL)
		return;
	for (p = e; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			abort();	/* it goes into a log line */
	}
	if (strlen(e) > 1024)
		abort();
	free(e);
}

static void
cpu(const char *t, size_t n)
{
	struct agent_cpu_sample a, b;
	const char *second = memchr(t, '\n', n);
	double pc;

	if (second == NULL || agent_cpu_read(t, &a) != 0 ||
	    agent_cpu_read(second + 1, &b) != 0)
		return;
	pc = agent_cpu_percent(&a, &b);
	if (!(pc >= 0 && pc <= 100))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *t;

	if (size < 1)
		return 0;
	t = cpx_xstrndup((const char *)data + 1, size - 1);
	switch (data[0] % 3) {
	case 0:
		job_file(t, size - 1);
		break;
	case 1:
		answer(t);
		break;
	default:
		cpu(t, strlen(t));
		break;
	}
	free(t);
	return 0;
}
