/* fuzz_agent_envfile.c — the agent's env file and config values from hostile text. */

#include <stdlib.h>
#include <string.h>

#include "agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
check(const char *name, const char *value, void *arg)
{
	/* Names reaching set() are always valid identifiers. */
	if (name[0] == '\0' || strchr(name, '=') != NULL)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *cause = NULL, *value, *host = NULL, *path = NULL;
	int port;

	agent_env_file_parse((const char *)data, size, check, NULL, &cause);
	free(cause);
	cause = NULL;

	/* The same bytes as a value of every kind the configuration reads. */
	value = cpx_xstrndup((const char *)data, strnlen((const char *)data, size));
	setenv("CPX_FUZZ", value, 1);
	free(cpx_env_value("CPX_FUZZ"));
	{
		long n;
		int b;

		cpx_env_long("CPX_FUZZ", 1, 0, 100, &n, &cause);
		free(cause);
		cause = NULL;
		cpx_env_bool("CPX_FUZZ", 0, &b, &cause);
		free(cause);
		cause = NULL;
	}
	if (cpx_parse_url(value, &host, &port, &path, &cause) == 0) {
		if (port < 1 || port > 65535)
			abort();
	}
	free(host);
	free(path);
	free(cause);
	free(value);
	return 0;
}
