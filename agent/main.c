/* main.c — clusterplex-agent: `serve` on every worker, `exec` as sshd's forced command. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

#define DEFAULT_ENV_FILE "/etc/clusterplex/agent.env"

static const char usage[] =
    "usage: clusterplex-agent serve\n"
    "       clusterplex-agent exec [--env-file PATH]\n"
    "\n"
    "serve  registers this worker with the dispatcher (ORCHESTRATOR_URL),\n"
    "       heartbeats its load and running jobs every STAT_CPU_INTERVAL ms\n"
    "       and answers GET /health on LISTENING_PORT (default 3501).\n"
    "exec   the forced command of the worker's authorized_keys entry: runs\n"
    "       one transcode, or serves the transcode folder to clusterplex-fuse,\n"
    "       as the first message on standard input asks. Its configuration\n"
    "       comes from PATH (default " DEFAULT_ENV_FILE " when present),\n"
    "       NAME=value lines, because sshd passes no environment.\n"
    "\n"
    "Environment: see README.md, section \"Configuration\".\n";

/*
 * sshd passes the forced command no environment of ours: `exec` reads its
 * configuration from an env file. Returns 0, 2 (usage) or 78 (bad file).
 */
static int
load_exec_env(int argc, char **argv)
{
	const char *path = NULL;
	char *cause = NULL;

	if (argc == 4 && strcmp(argv[2], "--env-file") == 0)
		path = argv[3];
	else if (argc == 2 && access(DEFAULT_ENV_FILE, R_OK) == 0)
		path = DEFAULT_ENV_FILE;
	else if (argc != 2)
		return 2;
	if (path != NULL && agent_env_file_load(path, &cause) != 0) {
		cpx_error("cannot load env file: %s", cause);
		free(cause);
		return 78;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct agent_config cfg;
	char *cause = NULL;
	int serve, status;

	cpx_log_init("clusterplex-agent");
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc < 2 || (strcmp(argv[1], "serve") != 0 &&
	    strcmp(argv[1], "exec") != 0)) {
		fputs(usage, stderr);
		return 2;
	}
	serve = strcmp(argv[1], "serve") == 0;
	if (serve && argc != 2) {
		fputs(usage, stderr);
		return 2;
	}
	if (!serve && (status = load_exec_env(argc, argv)) != 0) {
		if (status == 2)
			fputs(usage, stderr);
		return status;
	}
	cpx_log_init("clusterplex-agent");
	if (agent_config_load(&cfg, serve, &cause) != 0) {
		cpx_error("configuration: %s", cause);
		free(cause);
		agent_config_free(&cfg);
		return 78;
	}
	status = serve ? agent_serve_main(&cfg) : agent_exec_main(&cfg);
	agent_config_free(&cfg);
	return status;
}
