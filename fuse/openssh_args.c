/* openssh_args.c — OpenSSH's client as fuse's transport: its command line. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libssh2.h>

#include "cfs.h"
#include "cpx-ssh.h"

/*
 * Everything ssh needs is on its command line: `-F /dev/null` keeps
 * every ssh_config out (user or system), so the connection is exactly
 * what the libssh2 transport makes: our key only, no agent, no
 * password, no forwarding, the server's key checked against the pinned
 * one (written to a known_hosts file of our own) and refused otherwise.
 *
 * Ciphers: AES-GCM first. On a CPU with AES-NI and CLMUL it is OpenSSH's
 * cheapest (one pass, no separate MAC); chacha20-poly1305 (OpenSSH's own
 * first choice) and aes128-ctr follow for servers without it.
 * docs/fuse.md has the figures.
 */
#define OSSH_CIPHERS "aes128-gcm@openssh.com,chacha20-poly1305@openssh.com," \
    "aes128-ctr,aes256-gcm@openssh.com,aes256-ctr"

/*
 * ssh splits option values on blanks and quotes, and expands %-tokens in
 * file names: a path that would need quoting is refused, '%' is doubled.
 */
static int
path_ok(const char *name, const char *path, char **cause)
{
	const char *p;

	for (p = path; *p != '\0'; p++) {
		if ((unsigned char)*p <= ' ' || *p == '"' || *p == '\'' ||
		    *p == '\\' || *p == '#' || *p == 0x7f) {
			cpx_set_cause(cause, "%s=\"%s\": OpenSSH's client cannot "
			    "be given a path with blanks, quotes, '\\' or '#' "
			    "(CLUSTERPLEX_FUSE_SSH=openssh)", name, path);
			return -EINVAL;
		}
	}
	return 0;
}

int
cfs_ossh_check_settings(const struct cfs_settings *set, char **cause)
{
	if (path_ok("CLUSTERPLEX_SSH_KEY", set->ssh_key, cause) != 0 ||
	    path_ok("CLUSTERPLEX_RUN_DIR", set->run_dir, cause) != 0 ||
	    (set->known_hosts != NULL && path_ok("CLUSTERPLEX_KNOWN_HOSTS",
	    set->known_hosts, cause) != 0))
		return -EINVAL;
	if (access(CFS_OSSH_PROGRAM, X_OK) != 0) {
		cpx_set_cause(cause, "CLUSTERPLEX_FUSE_SSH=openssh (the "
		    "default), but %s cannot be run: %s (install "
		    "openssh-client, or set CLUSTERPLEX_FUSE_SSH=libssh2)",
		    CFS_OSSH_PROGRAM, strerror(errno));
		return -EINVAL;
	}
	return 0;
}

static char *
escape_tokens(const char *path)
{
	char *out = cpx_xmalloc(strlen(path) * 2 + 1), *q = out;

	for (; *path != '\0'; path++) {
		if (*path == '%')
			*q++ = '%';
		*q++ = *path;
	}
	*q = '\0';
	return out;
}

/* A host or user that ssh could read as an option or a user@host. */
static int
name_ok(const char *s, const char *extra)
{
	const char *p;

	if (s == NULL || *s == '\0' || *s == '-' || strlen(s) > 255)
		return 0;
	for (p = s; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' ||
		    *p == '_' || strchr(extra, *p) != NULL))
			return 0;
	}
	return 1;
}

struct args {
	char **v;
	size_t n, cap;
};

static void
add(struct args *a, char *s)
{
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->v = cpx_xrealloc(a->v, a->cap * sizeof *a->v);
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static void
opt(struct args *a, char *kv)
{
	add(a, cpx_xstrdup("-o"));
	add(a, kv);
}

static long
seconds_up(long ms)
{
	return ms <= 1000 ? 1 : (ms + 999) / 1000;
}

static void
add_host_key_options(struct args *a, const char *known_hosts, int pinned)
{
	char *kh = escape_tokens(known_hosts);

	opt(a, cpx_xstrdup("StrictHostKeyChecking=yes"));
	opt(a, cpx_xprintf("UserKnownHostsFile=%s", kh));
	opt(a, cpx_xstrdup("GlobalKnownHostsFile=/dev/null"));
	/* The pinned key is filed under one name, whatever the address. */
	if (pinned)
		opt(a, cpx_xstrdup("HostKeyAlias=" CFS_OSSH_ALIAS));
	opt(a, cpx_xstrdup("CheckHostIP=no"));
	opt(a, cpx_xstrdup("UpdateHostKeys=no"));
	free(kh);
}

static void
add_auth_options(struct args *a, const char *key)
{
	char *k = escape_tokens(key);

	add(a, cpx_xstrdup("-i"));
	add(a, k);
	opt(a, cpx_xstrdup("IdentitiesOnly=yes"));
	opt(a, cpx_xstrdup("IdentityAgent=none"));
	opt(a, cpx_xstrdup("BatchMode=yes"));
	opt(a, cpx_xstrdup("PasswordAuthentication=no"));
	opt(a, cpx_xstrdup("KbdInteractiveAuthentication=no"));
	opt(a, cpx_xstrdup("PubkeyAuthentication=yes"));
}

/*
 * ssh's argv, for execve (no shell): NULL with *cause when the endpoint
 * cannot be handed to ssh safely. `known_hosts` is the file the server's
 * key is checked against: ours with the pinned key (`pinned`), or
 * CLUSTERPLEX_KNOWN_HOSTS when the route pins none.
 */
char **
cfs_ossh_argv(const struct cfs_settings *set, const struct cpx_endpoint *ep,
    const char *known_hosts, int pinned, char **cause)
{
	struct args a = { NULL, 0, 0 };

	if (!name_ok(ep->host, ":") || !name_ok(ep->user, "") ||
	    ep->port < 1 || ep->port > 65535) {
		cpx_set_cause(cause, "worker %s: host \"%s\", user \"%s\" or "
		    "port %d cannot be given to ssh", ep->name,
		    ep->host ? ep->host : "", ep->user ? ep->user : "",
		    ep->port);
		return NULL;
	}
	add(&a, cpx_xstrdup(CFS_OSSH_PROGRAM));
	add(&a, cpx_xstrdup("-F"));
	add(&a, cpx_xstrdup("/dev/null"));
	add(&a, cpx_xstrdup("-T"));	/* no terminal: a byte stream */
	add(&a, cpx_xstrdup("-x"));
	add(&a, cpx_xstrdup("-a"));
	add(&a, cpx_xstrdup("-e"));
	add(&a, cpx_xstrdup("none"));	/* no escape character in the stream */
	add(&a, cpx_xstrdup("-c"));
	add(&a, cpx_xstrdup(OSSH_CIPHERS));
	add_auth_options(&a, set->ssh_key);
	add_host_key_options(&a, known_hosts, pinned);
	opt(&a, cpx_xprintf("ConnectTimeout=%ld",
	    seconds_up(set->connect_timeout_ms)));
	opt(&a, cpx_xprintf("ServerAliveInterval=%ld",
	    seconds_up(set->keepalive_ms)));
	opt(&a, cpx_xstrdup("ServerAliveCountMax=3"));
	opt(&a, cpx_xstrdup("ControlMaster=no"));
	opt(&a, cpx_xstrdup("ControlPath=none"));
	opt(&a, cpx_xstrdup("ClearAllForwardings=yes"));
	opt(&a, cpx_xstrdup("LogLevel=ERROR"));
	add(&a, cpx_xstrdup("-p"));
	add(&a, cpx_xprintf("%d", ep->port));
	add(&a, cpx_xstrdup("-l"));
	add(&a, cpx_xstrdup(ep->user));
	add(&a, cpx_xstrdup("--"));
	add(&a, cpx_xstrdup(ep->host));
	add(&a, cpx_xstrdup(CFS_AGENT_COMMAND));
	return a.v;
}

void
cfs_ossh_argv_free(char **argv)
{
	char **p;

	if (argv == NULL)
		return;
	for (p = argv; *p != NULL; p++)
		free(*p);
	free(argv);
}

/*
 * One file per worker and lane, named after a hash of the worker's name
 * (which comes from a route: it never becomes part of a path).
 */
char *
cfs_ossh_known_hosts_path(const char *run_dir, const char *worker, int lane)
{
	uint8_t d[32];
	char hex[65];

	cpx_sha256(worker, strlen(worker), d);
	cpx_sha256_hex(d, hex);
	hex[16] = '\0';
	return cpx_xprintf("%s/fuse-ssh/known_hosts.%s.%d", run_dir, hex, lane);
}

static int
key_line(const char *host_key, char **line, char **cause)
{
	uint8_t *blob = NULL;
	size_t len, n = host_key ? strcspn(host_key, " \t") : 0;
	char *type, *b64;

	if (n == 0 || cpx_ssh_key_blob(host_key, &blob, &len) != 0) {
		cpx_set_cause(cause, "the pinned host key is not an OpenSSH "
		    "public key line");
		return -EKEYREJECTED;
	}
	type = cpx_xstrndup(host_key, n);
	if (!name_ok(type, "@")) {
		cpx_set_cause(cause, "the pinned host key's type is not valid");
		free(type);
		free(blob);
		return -EKEYREJECTED;
	}
	b64 = cpx_b64_encode(blob, len);
	*line = cpx_xprintf("%s %s %s\n", CFS_OSSH_ALIAS, type, b64);
	free(b64);
	free(type);
	free(blob);
	return 0;
}

/* Our folder in the run dir: a real folder, ours, 0700. */
static int
private_dir(const char *dir, char **cause)
{
	struct stat st;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		goto fail;
	if (lstat(dir, &st) != 0)
		goto fail;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
		cpx_set_cause(cause, "%s is not a folder of ours", dir);
		return -EPERM;
	}
	if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) != 0)
		goto fail;
	return 0;
fail:
	cpx_set_cause(cause, "%s: %s", dir, strerror(errno));
	return -errno;
}

/*
 * Writes the pinned key as the only entry of a known_hosts file of our
 * own (0600, in a 0700 folder; replaced atomically, so a connection
 * starting on another lane never reads half a file).
 */
int
cfs_ossh_write_known_hosts(const char *path, const char *host_key,
    char **cause)
{
	char *line = NULL, *dir = cpx_xstrdup(path), *tmp = NULL, *slash;
	int fd = -1, error;

	if ((error = key_line(host_key, &line, cause)) != 0)
		goto out;
	if ((slash = strrchr(dir, '/')) != NULL)
		*slash = '\0';
	if ((error = private_dir(dir, cause)) != 0)
		goto out;
	tmp = cpx_xprintf("%s.tmp", path);
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd < 0 || fchmod(fd, 0600) != 0 ||
	    cpx_write_all(fd, line, strlen(line)) < 0) {
		error = -errno;
		cpx_set_cause(cause, "writing %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		fd = -1;
		error = -errno;
		cpx_set_cause(cause, "writing %s: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
	error = 0;
out:
	if (error != 0 && tmp != NULL) {
		if (fd >= 0)
			close(fd);
		(void)unlink(tmp);
	}
	free(tmp);
	free(dir);
	free(line);
	return error;
}

/*
 * A route that pins a key while CLUSTERPLEX_KNOWN_HOSTS is set: the
 * libssh2 transport wants the server's key to match both. ssh is given
 * the pinned key alone and refuses any other; so the pinned key must
 * also be the one the file lists for that host and port, checked here
 * with the same libssh2 lookup as the libssh2 transport uses.
 */
int
cfs_ossh_listed(const char *known_hosts, const struct cpx_endpoint *ep,
    char **cause)
{
	LIBSSH2_SESSION *session = libssh2_session_init();
	LIBSSH2_KNOWNHOSTS *kh = NULL;
	uint8_t *blob = NULL;
	size_t len;
	int rc = LIBSSH2_KNOWNHOST_CHECK_FAILURE;

	if (cpx_ssh_key_blob(ep->host_key, &blob, &len) == 0 &&
	    session != NULL && (kh = libssh2_knownhost_init(session)) != NULL &&
	    libssh2_knownhost_readfile(kh, known_hosts,
	    LIBSSH2_KNOWNHOST_FILE_OPENSSH) >= 0)
		rc = libssh2_knownhost_checkp(kh, ep->host, ep->port,
		    (const char *)blob, len, LIBSSH2_KNOWNHOST_TYPE_PLAIN |
		    LIBSSH2_KNOWNHOST_KEYENC_RAW, NULL);
	if (kh != NULL)
		libssh2_knownhost_free(kh);
	if (session != NULL)
		libssh2_session_free(session);
	free(blob);
	if (rc == LIBSSH2_KNOWNHOST_CHECK_MATCH)
		return 0;
	cpx_set_cause(cause, "host key pinned for %s (%s:%d) %s %s", ep->name,
	    ep->host, ep->port,
	    rc == LIBSSH2_KNOWNHOST_CHECK_MISMATCH ? "does not match" :
	    rc == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND ? "is not listed in" :
	    "cannot be checked against", known_hosts);
	return -EKEYREJECTED;
}

/* ssh's messages (OpenSSH 9.x, LogLevel ERROR) and the statuses of cpx-ssh.h. */
static const struct {
	const char *text;
	int status;
} messages[] = {
	{ "Host key verification failed", -EKEYREJECTED },
	{ "REMOTE HOST IDENTIFICATION HAS CHANGED", -EKEYREJECTED },
	{ "host key is known for", -EKEYREJECTED },
	{ "no matching host key type", -EKEYREJECTED },
	{ "Identity file", -ENOKEY },		/* ... not accessible */
	{ "UNPROTECTED PRIVATE KEY FILE", -ENOKEY },
	{ "Load key", -ENOKEY },
	{ "Permission denied", -EACCES },
	{ "Too many authentication failures", -EACCES },
	{ "Connection refused", -ECONNREFUSED },
	{ "No route to host", -EHOSTUNREACH },
	{ "Could not resolve hostname", -EHOSTUNREACH },
	{ "Network is unreachable", -ENETUNREACH },
	{ "timed out", -ETIMEDOUT },
	{ "Timeout, server", -ETIMEDOUT },	/* ServerAlive probes lost */
	{ "not responding", -ETIMEDOUT },
	{ "no matching cipher", -EPROTO },
	{ "no matching MAC", -EPROTO },
	{ "no matching key exchange", -EPROTO },
	{ "Connection reset", -ECONNRESET },
	{ "Connection closed", -ECONNRESET },
	{ "closed by remote host", -ECONNRESET },
	{ "Broken pipe", -ECONNRESET },
};

/* The status a line of ssh's stderr means, or 0 for none known. */
int
cfs_ossh_classify(const char *line)
{
	size_t i;

	for (i = 0; i < CPX_ARRAY_SIZE(messages); i++)
		if (strstr(line, messages[i].text) != NULL)
			return messages[i].status;
	return 0;
}
