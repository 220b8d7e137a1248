/* serve_info.c — what a worker measures about itself: CPU, benchmark, jobs, keys, address. */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cjson/cJSON.h>

#include "serve.h"

#define JOB_FILE_MAX (64 * 1024)
#define KEY_FILE_MAX (16 * 1024)

extern char **environ;

/* Parses the aggregate "cpu" line of /proc/stat. */
int
agent_cpu_read(const char *text, struct agent_cpu_sample *s)
{
	unsigned long long v[10] = { 0 };
	int n, i;

	n = sscanf(text, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
	    "%llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7],
	    &v[8], &v[9]);
	if (n < 4)
		return -EINVAL;
	/* guest and guest_nice are already inside user and nice. */
	s->total = 0;
	for (i = 0; i < n && i < 8; i++)
		s->total += v[i];
	s->busy = s->total - v[3] - v[4];
	return 0;
}

int
agent_cpu_sample(struct agent_cpu_sample *s)
{
	char *text = NULL;
	size_t len;
	int error;

	error = cpx_read_file("/proc/stat", 1024 * 1024, &text, &len);
	if (error == 0)
		error = agent_cpu_read(text, s);
	free(text);
	return error;
}

/* Load of the whole machine between two samples, in percent. */
double
agent_cpu_percent(const struct agent_cpu_sample *prev,
    const struct agent_cpu_sample *cur)
{
	uint64_t dt = cur->total - prev->total, db = cur->busy - prev->busy;

	if (cur->total <= prev->total || cur->busy < prev->busy)
		return 0;
	/* The ratio first: 100 * db rounded up, then divided, can pass 100. */
	return db >= dt ? 100.0 : 100.0 * ((double)db / (double)dt);
}

double
agent_load1(void)
{
	char *text = NULL;
	size_t len;
	double l = 0;

	if (cpx_read_file("/proc/loadavg", 4096, &text, &len) == 0 &&
	    sscanf(text, "%lf", &l) != 1)
		l = 0;
	free(text);
	return l;
}

/*
 * A quick CPU score: integer and floating-point mixing on one core for
 * `ms`, in millions of rounds per second, times the CPU count. Only its
 * ratio between workers matters (LOAD_RANK).
 */
double
agent_cpu_bench(long cpus, unsigned ms)
{
	volatile uint64_t sink = 0;
	uint64_t x = 88172645463325252ull, rounds = 0, t0 = cpx_now_us(), t;
	double f = 1.0;
	int i;

	do {
		for (i = 0; i < 4096; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			f = f * 1.0000001 + (double)(x & 255) * 1e-9;
		}
		rounds += 4096;
		t = cpx_now_us();
	} while (t - t0 < (uint64_t)ms * 1000);
	sink = x + (uint64_t)f;
	(void)sink;
	/* One decimal is plenty; no libm for it. */
	return (double)(uint64_t)((double)rounds / (double)(t - t0) *
	    (double)cpus * 10.0 + 0.5) / 10.0;
}

/* Reads the child's output until EOF or the deadline. */
static void
read_bounded(int fd, char *buf, size_t size, uint64_t deadline_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t len = 0;
	ssize_t n;
	uint64_t now;

	while (len < size - 1 && (now = cpx_now_ms()) < deadline_ms) {
		if (poll(&pfd, 1, (int)(deadline_ms - now)) <= 0)
			break;
		n = read(fd, buf + len, size - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
}

/*
 * First line of `<transcoder> -version`, or NULL; never waits longer than
 * timeout_ms (the child is killed).
 */
char *
agent_transcoder_version(const char *path, unsigned timeout_ms)
{
	posix_spawn_file_actions_t fa;
	char *argv[] = { (char *)path, "-version", NULL }, buf[512], *out = NULL;
	int fds[2], status;
	pid_t pid;

	if (access(path, X_OK) != 0 || pipe2(fds, O_CLOEXEC) != 0)
		return NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if (posix_spawn(&pid, path, &fa, NULL, argv, environ) == 0) {
		close(fds[1]);
		fds[1] = -1;
		read_bounded(fds[0], buf, sizeof buf, cpx_now_ms() + timeout_ms);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		buf[strcspn(buf, "\r\n")] = '\0';
		if (buf[0] != '\0')
			out = cpx_xstrndup(buf, 120);
	}
	posix_spawn_file_actions_destroy(&fa);
	close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	return out;
}

/* The host's public key line, as the shim will pin it. */
int
agent_host_key(const char *path, char **key, char **cause)
{
	char *text = NULL;
	size_t len;
	int error;

	*key = NULL;
	error = cpx_read_file(path, KEY_FILE_MAX, &text, &len);
	if (error != 0) {
		cpx_set_cause(cause, "cannot read host key %s: %s", path,
		    strerror(-error));
		return error;
	}
	text[strcspn(text, "\r\n")] = '\0';
	if ((strncmp(text, "ssh-", 4) != 0 && strncmp(text, "ecdsa-", 6) != 0) ||
	    strchr(text, ' ') == NULL) {
		cpx_set_cause(cause, "%s is not an OpenSSH public key "
		    "(CLUSTERPLEX_HOST_KEY_FILE wants the .pub file)", path);
		free(text);
		return -EINVAL;
	}
	*key = text;
	return 0;
}

/*
 * The local address this machine uses to reach the dispatcher: a UDP
 * socket "connected" to it sends nothing but makes the kernel choose the
 * route, and getsockname() tells which source address it chose.
 */
int
agent_local_address(const char *url, char **addr, char **cause)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char *host = NULL, *path = NULL, port[8], buf[INET6_ADDRSTRLEN];
	int p, fd = -1, error;

	*addr = NULL;
	if ((error = cpx_parse_url(url, &host, &p, &path, cause)) != 0)
		return error;
	snprintf(port, sizeof port, "%d", p);
	if ((error = getaddrinfo(host, port, &hints, &ai)) != 0) {
		cpx_set_cause(cause, "cannot resolve %s: %s", host,
		    gai_strerror(error));
		error = -EHOSTUNREACH;
		goto out;
	}
	fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		error = -errno;
		cpx_set_cause(cause, "no route to %s: %s", host, strerror(errno));
		goto out;
	}
	if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
		    buf, sizeof buf);
	else
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
		    buf, sizeof buf);
	*addr = cpx_xstrdup(buf);
out:
	if (fd >= 0)
		close(fd);
	if (ai != NULL)
		freeaddrinfo(ai);
	free(host);
	free(path);
	return error;
}

static int
valid_job_id(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 128 || s[0] == '.' || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		if (!isalnum((unsigned char)s[i]) && !strchr("._-:", s[i]))
			return 0;
	}
	return 1;
}

/* One job state file: {"id", "session", "pid", "started"}; id and pid required. */
int
agent_job_parse(const char *text, size_t len, struct agent_job *job)
{
	cJSON *root = cJSON_ParseWithLength(text, len);
	const cJSON *id, *session, *pid, *started;
	int error = -EINVAL;

	memset(job, 0, sizeof *job);
	id = cJSON_GetObjectItemCaseSensitive(root, "id");
	session = cJSON_GetObjectItemCaseSensitive(root, "session");
	pid = cJSON_GetObjectItemCaseSensitive(root, "pid");
	started = cJSON_GetObjectItemCaseSensitive(root, "started");
	if (cJSON_IsString(id) && valid_job_id(id->valuestring) &&
	    cJSON_IsNumber(pid) && pid->valuedouble >= 1 &&
	    pid->valuedouble < 4194305) {
		job->id = cpx_xstrdup(id->valuestring);
		if (cJSON_IsString(session) && session->valuestring[0] != '\0' &&
		    strlen(session->valuestring) <= 256)
			job->session = cpx_xstrdup(session->valuestring);
		job->pid = (pid_t)pid->valuedouble;
		if (cJSON_IsNumber(started) && isfinite(started->valuedouble) &&
		    started->valuedouble > 0 && started->valuedouble < 1e11)
			job->started = started->valuedouble;
		error = 0;
	}
	cJSON_Delete(root);
	return error;
}

static int
pid_alive(pid_t pid)
{
	return kill(pid, 0) == 0 || errno == EPERM;
}

static int
load_job(int dirfd, const char *name, struct agent_job *job)
{
	char buf[JOB_FILE_MAX];
	ssize_t n;
	int fd, error = -EINVAL;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof buf);
	if (n > 0 && (size_t)n < sizeof buf)
		error = agent_job_parse(buf, (size_t)n, job);
	close(fd);
	/* A file left by a job service that died is not a running job. */
	if (error == 0 && !pid_alive(job->pid)) {
		free(job->id);
		free(job->session);
		memset(job, 0, sizeof *job);
		error = -ESRCH;
	}
	return error;
}

/*
 * The jobs running now, from $run_dir/jobs/<id>.json. A missing folder is
 * no jobs; unreadable or stale files are skipped.
 */
int
agent_jobs_scan(const char *run_dir, struct agent_job **jobs, size_t *njobs)
{
	char *path = cpx_xprintf("%s/jobs", run_dir);
	DIR *dir = opendir(path);
	struct dirent *de;
	size_t n = 0, len;

	*jobs = cpx_xcalloc(AGENT_JOBS_MAX, sizeof **jobs);
	*njobs = 0;
	free(path);
	if (dir == NULL)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(dir)) != NULL && n < AGENT_JOBS_MAX) {
		len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len < 6 ||
		    strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		if (load_job(dirfd(dir), de->d_name, &(*jobs)[n]) == 0)
			n++;
	}
	closedir(dir);
	*njobs = n;
	return 0;
}

void
agent_jobs_free(struct agent_job *jobs, size_t njobs)
{
	size_t i;

	for (i = 0; i < njobs; i++) {
		free(jobs[i].id);
		free(jobs[i].session);
	}
	free(jobs);
}
