/* config.c — clusterplex-fuse's environment, validated once at start-up. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cfs.h"

struct knob {
	const char *name;
	long def, min, max;
	size_t offset;
};

#define KNOB(n, d, lo, hi, field) \
	{ n, d, lo, hi, offsetof(struct cfs_settings, field) }

/* docs/fuse.md lists each with its reason. */
static const struct knob knobs[] = {
	KNOB("CLUSTERPLEX_FUSE_TIMEOUT_MS", 5000, 100, 600000, op_timeout_ms),
	KNOB("CLUSTERPLEX_CONNECT_TIMEOUT_MS", 5000, 100, 120000,
	    connect_timeout_ms),
	KNOB("CLUSTERPLEX_KEEPALIVE_MS", 1000, 100, 60000, keepalive_ms),
	KNOB("CLUSTERPLEX_FUSE_CACHE_MB", 256, 16, 65536, cache_mb),
	KNOB("CLUSTERPLEX_FUSE_PREFETCH_MAX_MB", 32, 0, 4096, prefetch_max_mb),
	KNOB("CLUSTERPLEX_FUSE_READAHEAD_KB", 8192, 0, 1048576, readahead_kb),
	KNOB("CLUSTERPLEX_FUSE_THREADS", 16, 2, 1024, threads),
	KNOB("CLUSTERPLEX_FUSE_SHUTDOWN_MS", 3000, 0, 600000, shutdown_ms),
	KNOB("CLUSTERPLEX_FUSE_CONNECTIONS", 2, 1, 16, connections),
	KNOB("CLUSTERPLEX_FUSE_PASSTHROUGH", 1, 0, 1, passthrough),
};

/* CLUSTERPLEX_FUSE_SSH, in the order of cfs_settings.openssh's values. */
static const char *const ssh_clients[] = { "libssh2", "openssh", NULL };

int
cfs_settings_load(struct cfs_settings *set, char **cause)
{
	size_t i;

	memset(set, 0, sizeof *set);
	cpx_env_str("CLUSTERPLEX_TRANSCODE_DIR", "/transcode", &set->mountpoint);
	cpx_env_str("CLUSTERPLEX_RUN_DIR", "/run/clusterplex", &set->run_dir);
	cpx_env_str("CLUSTERPLEX_SSH_KEY", "/etc/clusterplex/id_ed25519",
	    &set->ssh_key);
	set->known_hosts = cpx_env_value("CLUSTERPLEX_KNOWN_HOSTS");
	for (i = 0; i < CPX_ARRAY_SIZE(knobs); i++) {
		const struct knob *k = &knobs[i];

		if (cpx_env_long(k->name, k->def, k->min, k->max,
		    (long *)((char *)set + k->offset), cause) != 0)
			return -EINVAL;
	}
	if (cpx_env_enum("CLUSTERPLEX_FUSE_SSH", "openssh", ssh_clients,
	    &set->openssh, cause) != 0)
		return -EINVAL;
	if (set->run_dir[0] != '/') {
		cpx_set_cause(cause, "CLUSTERPLEX_RUN_DIR=\"%s\" must be an "
		    "absolute path", set->run_dir);
		return -EINVAL;
	}
	if (set->openssh && cfs_ossh_check_settings(set, cause) != 0)
		return -EINVAL;
	return 0;
}

/* The mount point from the command line wins over the environment. */
int
cfs_settings_mountpoint(struct cfs_settings *set, const char *arg,
    char **cause)
{
	if (arg != NULL) {
		free(set->mountpoint);
		set->mountpoint = cpx_xstrdup(arg);
	}
	if (set->mountpoint[0] != '/') {
		cpx_set_cause(cause, "the mount point \"%s\" must be an "
		    "absolute path", set->mountpoint);
		return -EINVAL;
	}
	return 0;
}

void
cfs_settings_free(struct cfs_settings *set)
{
	free(set->mountpoint);
	free(set->run_dir);
	free(set->ssh_key);
	free(set->known_hosts);
	memset(set, 0, sizeof *set);
}
