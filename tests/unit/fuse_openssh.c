/* fuse_openssh.c — OpenSSH's client as transport: argv, known_hosts, messages. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cfs.h"

#define KEY1 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILtRjAxfiijFcRqnBhCccwnDb66FK1vanyHJiFDsmLDw"
#define KEY2 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGXNZLJ9zSgn9Sz5jcftHaeRi7F0HaRK17yRg7Z4iMYv"

static char tmpdir[] = "/tmp/fuse_openssh.XXXXXX";

static void
settings(struct cfs_settings *set)
{
	memset(set, 0, sizeof *set);
	set->ssh_key = (char *)"/etc/clusterplex/id_%h";
	set->run_dir = (char *)"/run/clusterplex";
	set->connect_timeout_ms = 4500;
	set->keepalive_ms = 300;
}

static struct cpx_endpoint
endpoint(const char *host, const char *user, int port)
{
	struct cpx_endpoint ep = {
		.name = (char *)"w1", .host = (char *)host, .port = port,
		.user = (char *)user, .host_key = (char *)KEY1,
	};

	return ep;
}

static size_t
count(char **argv)
{
	size_t n = 0;

	while (argv[n] != NULL)
		n++;
	return n;
}

/* The value of `-o Name=...`, or NULL. */
static const char *
option(char **argv, const char *name)
{
	size_t i, len = strlen(name);

	for (i = 0; argv[i] != NULL && argv[i + 1] != NULL; i++)
		if (strcmp(argv[i], "-o") == 0 &&
		    strncmp(argv[i + 1], name, len) == 0 &&
		    argv[i + 1][len] == '=')
			return argv[i + 1] + len + 1;
	return NULL;
}

static const char *
flag(char **argv, const char *f)
{
	size_t i;

	for (i = 0; argv[i] != NULL && argv[i + 1] != NULL; i++)
		if (strcmp(argv[i], f) == 0)
			return argv[i + 1];
	return NULL;
}

static void
test_argv_pinned(void **state)
{
	struct cfs_settings set;
	struct cpx_endpoint ep = endpoint("10.0.0.11", "cpx", 2222);
	char *cause = NULL, **argv;
	size_t n, i;

	settings(&set);
	argv = cfs_ossh_argv(&set, &ep, "/run/c%p/kh", 1, &cause);
	assert_non_null(argv);
	assert_null(cause);
	n = count(argv);
	assert_string_equal(argv[0], "/usr/bin/ssh");
	assert_string_equal(flag(argv, "-F"), "/dev/null");
	assert_string_equal(flag(argv, "-i"), "/etc/clusterplex/id_%%h");
	assert_string_equal(option(argv, "StrictHostKeyChecking"), "yes");
	assert_string_equal(option(argv, "UserKnownHostsFile"), "/run/c%%p/kh");
	assert_string_equal(option(argv, "GlobalKnownHostsFile"), "/dev/null");
	assert_string_equal(option(argv, "HostKeyAlias"), CFS_OSSH_ALIAS);
	assert_string_equal(option(argv, "BatchMode"), "yes");
	assert_string_equal(option(argv, "IdentitiesOnly"), "yes");
	assert_string_equal(option(argv, "IdentityAgent"), "none");
	assert_string_equal(option(argv, "PasswordAuthentication"), "no");
	assert_string_equal(option(argv, "ConnectTimeout"), "5");
	assert_string_equal(option(argv, "ServerAliveInterval"), "1");
	assert_string_equal(option(argv, "ServerAliveCountMax"), "3");
	assert_string_equal(flag(argv, "-p"), "2222");
	assert_string_equal(flag(argv, "-l"), "cpx");
	assert_non_null(flag(argv, "-c"));
	/* The destination after "--", then the agent: nothing else. */
	assert_true(n > 4);
	assert_string_equal(argv[n - 3], "--");
	assert_string_equal(argv[n - 2], "10.0.0.11");
	assert_string_equal(argv[n - 1], CFS_AGENT_COMMAND);
	for (i = 1; i < n - 3; i++)
		if (strcmp(argv[i - 1], "-o") == 0)
			assert_null(strchr(argv[i], ' '));
	assert_null(argv[n]);
	cfs_ossh_argv_free(argv);
}

static void
test_argv_unpinned(void **state)
{
	struct cfs_settings set;
	struct cpx_endpoint ep = endpoint("pms-worker.lan", "root", 22);
	char *cause = NULL, **argv;

	settings(&set);
	set.connect_timeout_ms = 100;
	set.keepalive_ms = 2500;
	argv = cfs_ossh_argv(&set, &ep, "/etc/kh", 0, &cause);
	assert_non_null(argv);
	assert_null(option(argv, "HostKeyAlias"));
	assert_string_equal(option(argv, "UserKnownHostsFile"), "/etc/kh");
	assert_string_equal(option(argv, "StrictHostKeyChecking"), "yes");
	assert_string_equal(option(argv, "ConnectTimeout"), "1");
	assert_string_equal(option(argv, "ServerAliveInterval"), "3");
	cfs_ossh_argv_free(argv);
}

static void
test_argv_refused(void **state)
{
	static const struct {
		const char *host, *user;
		int port;
	} bad[] = {
		{ "-oProxyCommand=touch /tmp/x", "root", 22 },
		{ "a b", "root", 22 }, { "root@host", "cpx", 22 },
		{ "", "root", 22 }, { "host\n", "root", 22 },
		{ "host", "-oProxyCommand=x", 22 }, { "host", "a b", 22 },
		{ "host", "", 22 }, { "host", "u@h", 22 },
		{ "host", "root", 0 }, { "host", "root", 65536 },
	};
	struct cfs_settings set;
	struct cpx_endpoint ep;
	char *cause;
	size_t i;

	settings(&set);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cause = NULL;
		ep = endpoint(bad[i].host, bad[i].user, bad[i].port);
		assert_null(cfs_ossh_argv(&set, &ep, "/kh", 1, &cause));
		assert_non_null(cause);
		free(cause);
	}
	ep = endpoint("fe80::1", "cpx_worker-1", 65535);
	cause = NULL;
	cfs_ossh_argv_free(cfs_ossh_argv(&set, &ep, "/kh", 1, &cause));
	assert_null(cause);
}

static void
test_settings_paths(void **state)
{
	struct cfs_settings set;
	char *cause = NULL;

	settings(&set);
	set.ssh_key = (char *)"/etc/my keys/id";
	assert_int_equal(cfs_ossh_check_settings(&set, &cause), -EINVAL);
	assert_non_null(cause);
	free(cause);
	cause = NULL;
	settings(&set);
	set.known_hosts = (char *)"/etc/\"kh";
	assert_int_equal(cfs_ossh_check_settings(&set, &cause), -EINVAL);
	free(cause);
}

static void
test_env(void **state)
{
	struct cfs_settings set;
	char *cause = NULL;

	unsetenv("CLUSTERPLEX_FUSE_SSH");
	if (access(CFS_OSSH_PROGRAM, X_OK) == 0) {
		assert_int_equal(cfs_settings_load(&set, &cause), 0);
		assert_int_equal(set.openssh, 1);	/* the default */
	} else {
		assert_int_equal(cfs_settings_load(&set, &cause), -EINVAL);
		assert_non_null(strstr(cause, "CLUSTERPLEX_FUSE_SSH=libssh2"));
		free(cause);
		cause = NULL;
	}
	cfs_settings_free(&set);
	setenv("CLUSTERPLEX_FUSE_SSH", "libssh2", 1);
	assert_int_equal(cfs_settings_load(&set, &cause), 0);
	assert_int_equal(set.openssh, 0);
	cfs_settings_free(&set);
	setenv("CLUSTERPLEX_FUSE_SSH", "sshfs", 1);
	assert_int_equal(cfs_settings_load(&set, &cause), -EINVAL);
	assert_non_null(strstr(cause, "CLUSTERPLEX_FUSE_SSH"));
	free(cause);
	cause = NULL;
	cfs_settings_free(&set);
	if (access(CFS_OSSH_PROGRAM, X_OK) == 0) {
		setenv("CLUSTERPLEX_FUSE_SSH", "openssh", 1);
		assert_int_equal(cfs_settings_load(&set, &cause), 0);
		assert_int_equal(set.openssh, 1);
		cfs_settings_free(&set);
	}
	unsetenv("CLUSTERPLEX_FUSE_SSH");
}

static char *
slurp(const char *path)
{
	char *s = NULL;
	size_t n;

	if (cpx_read_file(path, 4096, &s, &n) != 0)
		return NULL;
	return s;
}

static void
test_known_hosts(void **state)
{
	char *path = cfs_ossh_known_hosts_path(tmpdir, "../w1/evil", 3);
	char *dir = cpx_xprintf("%s/fuse-ssh", tmpdir), *cause = NULL, *s;
	struct stat st;

	/* The worker's name is hashed: never a part of the path. */
	assert_int_equal(strncmp(path, dir, strlen(dir)), 0);
	assert_null(strchr(path + strlen(dir) + 1, '/'));
	assert_null(strstr(path, "evil"));
	assert_int_equal(cfs_ossh_write_known_hosts(path, KEY1 " root@vm",
	    &cause), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	s = slurp(path);
	assert_string_equal(s, CFS_OSSH_ALIAS " " KEY1 "\n");
	free(s);
	/* Rewritten for another key: only that one is left. */
	assert_int_equal(cfs_ossh_write_known_hosts(path, KEY2, &cause), 0);
	s = slurp(path);
	assert_string_equal(s, CFS_OSSH_ALIAS " " KEY2 "\n");
	free(s);
	/* A folder left too open is closed again; a symlink is refused. */
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(cfs_ossh_write_known_hosts(path, KEY2, &cause), 0);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	/* A second line smuggled after the key never reaches the file. */
	assert_int_equal(cfs_ossh_write_known_hosts(path, KEY1 "\n* " KEY2,
	    &cause), 0);
	s = slurp(path);
	assert_string_equal(s, CFS_OSSH_ALIAS " " KEY1 "\n");
	free(s);
	unlink(path);
	free(path);
	free(dir);
}

static void
test_known_hosts_symlink(void **state)
{
	char *link = cpx_xprintf("%s/run", tmpdir), *cause = NULL;
	char *path = cfs_ossh_known_hosts_path(link, "w1", 0);
	char *target = cpx_xprintf("%s/fuse-ssh", tmpdir);
	char *fake = cpx_xprintf("%s/fuse-ssh", link);

	assert_int_equal(mkdir(link, 0755), 0);
	assert_int_equal(symlink(target, fake), 0);
	assert_int_equal(cfs_ossh_write_known_hosts(path, KEY1, &cause),
	    -EPERM);
	assert_non_null(cause);
	free(cause);
	unlink(fake);
	rmdir(link);
	free(fake);
	free(target);
	free(path);
	free(link);
}

static void
test_known_hosts_bad_keys(void **state)
{
	static const char *const bad[] = {
		"", "ssh-ed25519", "ssh-ed25519 !!!!",
		"ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAILtRjAxfiijFcRqnBhCccwnDb66FK1vanyHJiFDsmLDw",
		"ssh-ed25519 AAAA\nclusterplex-worker ssh-ed25519 AAAA",
	};
	char *path = cpx_xprintf("%s/fuse-ssh/bad", tmpdir), *cause;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cause = NULL;
		assert_int_equal(cfs_ossh_write_known_hosts(path, bad[i],
		    &cause), -EKEYREJECTED);
		assert_non_null(cause);
		free(cause);
		assert_int_not_equal(access(path, F_OK), 0);
	}
	cause = NULL;
	assert_int_equal(cfs_ossh_write_known_hosts(path, NULL, &cause),
	    -EKEYREJECTED);
	free(cause);
	free(path);
}

static void
test_listed(void **state)
{
	char *kh = cpx_xprintf("%s/known_hosts", tmpdir), *cause = NULL;
	struct cpx_endpoint ep = endpoint("127.0.0.1", "root", 2222);
	FILE *f = fopen(kh, "w");

	assert_non_null(f);
	fprintf(f, "[127.0.0.1]:2222 %s\nother.host %s\n", KEY1, KEY2);
	fclose(f);
	assert_int_equal(cfs_ossh_listed(kh, &ep, &cause), 0);
	ep.host_key = (char *)KEY2;	/* not the one listed for the host */
	assert_int_equal(cfs_ossh_listed(kh, &ep, &cause), -EKEYREJECTED);
	free(cause);
	cause = NULL;
	ep.host_key = (char *)KEY1;
	ep.port = 22;			/* listed for another port only */
	assert_int_not_equal(cfs_ossh_listed(kh, &ep, &cause), 0);
	free(cause);
	cause = NULL;
	ep.port = 2222;
	unlink(kh);
	assert_int_equal(cfs_ossh_listed(kh, &ep, &cause), -EKEYREJECTED);
	free(cause);
	free(kh);
}

static void
test_classify(void **state)
{
	assert_int_equal(cfs_ossh_classify("Host key verification failed."),
	    -EKEYREJECTED);
	assert_int_equal(cfs_ossh_classify("No ED25519 host key is known for "
	    "clusterplex-worker and you have requested strict checking."),
	    -EKEYREJECTED);
	assert_int_equal(cfs_ossh_classify("root@127.0.0.1: Permission denied "
	    "(publickey)."), -EACCES);
	assert_int_equal(cfs_ossh_classify("ssh: connect to host 127.0.0.1 "
	    "port 1: Connection refused"), -ECONNREFUSED);
	assert_int_equal(cfs_ossh_classify("ssh: connect to host 10.9.9.9 "
	    "port 22: Connection timed out"), -ETIMEDOUT);
	assert_int_equal(cfs_ossh_classify("Timeout, server 127.0.0.1 not "
	    "responding."), -ETIMEDOUT);
	assert_int_equal(cfs_ossh_classify("Warning: Identity file /x not "
	    "accessible: No such file or directory."), -ENOKEY);
	assert_int_equal(cfs_ossh_classify("ssh: Could not resolve hostname "
	    "nowhere: Name or service not known"), -EHOSTUNREACH);
	assert_int_equal(cfs_ossh_classify("Connection closed by 127.0.0.1 "
	    "port 22"), -ECONNRESET);
	assert_int_equal(cfs_ossh_classify("something else entirely"), 0);
}

static int
setup(void **state)
{
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char *d = cpx_xprintf("%s/fuse-ssh", tmpdir);

	rmdir(d);
	free(d);
	return rmdir(tmpdir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_argv_pinned),
		cmocka_unit_test(test_argv_unpinned),
		cmocka_unit_test(test_argv_refused),
		cmocka_unit_test(test_settings_paths),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_known_hosts),
		cmocka_unit_test(test_known_hosts_symlink),
		cmocka_unit_test(test_known_hosts_bad_keys),
		cmocka_unit_test(test_listed),
		cmocka_unit_test(test_classify),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
