/*
 * exec_standin.c — a stand-in transcoder for the process-semantics tests:
 * it does what its first argument says, so one binary serves every test.
 *
 *   argv             write argv[1..] NUL-separated to ./argv.bin
 *   exit N           exit with code N
 *   signal N         die by signal N
 *   cat              copy stdin to stdout
 *   out N            N bytes of a pattern to stdout, then to stderr
 *   sleep S          write ./pid, start a child that sleeps too, sleep S
 *   callback URL     PUT to URL (http://127.0.0.1:port/path), print status
 *   env              print the environment
 *   where            print the working directory
 *   show NAME        print the file NAME (in the working directory)
 *   tick N           print a line every 100 ms, N times
 *   eae N ... -eae_prefix:K P ...
 *                    N times, 300 ms apart: drop "<P><i>.in" into
 *                    $EAE_ROOT/Convert to WAV (to 8ch or less)/ and wait
 *                    (10 s at most) for the EAE's "<P><i>.wav"; print it
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

static int
dump_argv(int argc, char **argv)
{
	FILE *f = fopen("argv.bin.tmp", "w");
	int i;

	if (f == NULL)
		return 3;
	for (i = 1; i < argc; i++)
		fwrite(argv[i], 1, strlen(argv[i]) + 1, f);
	if (fclose(f) != 0 || rename("argv.bin.tmp", "argv.bin") != 0)
		return 3;
	return 0;
}

static int
copy_stdin(void)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(0, buf, sizeof buf)) > 0) {
		if (write(1, buf, (size_t)n) != n)
			return 4;
	}
	return n == 0 ? 0 : 4;
}

static int
pattern(long n)
{
	char buf[4096];
	long i, k;
	int fd;

	for (i = 0; i < (long)sizeof buf; i++)
		buf[i] = (char)('a' + i % 26);
	for (fd = 1; fd <= 2; fd++) {
		for (i = 0; i < n; i += k) {
			k = n - i < (long)sizeof buf ? n - i : (long)sizeof buf;
			if (write(fd, buf, (size_t)k) != k)
				return 4;
		}
	}
	return 0;
}

static int
sleeper(int secs)
{
	FILE *f;

	if (fork() == 0) {
		sleep((unsigned)secs);
		_exit(0);
	}
	f = fopen("pid", "w");
	if (f != NULL) {
		fprintf(f, "%ld\n", (long)getpid());
		fclose(f);
	}
	sleep((unsigned)secs);
	return 0;
}

static int
callback(const char *url)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char host[64], req[1024], resp[512];
	const char *path;
	int port, fd;
	ssize_t n;

	if (sscanf(url, "http://%63[^:]:%d", host, &port) != 2 ||
	    (path = strchr(url + 7, '/')) == NULL)
		return 5;
	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, host, &sa.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		return 6;
	snprintf(req, sizeof req, "PUT %s HTTP/1.1\r\nHost: %s:%d\r\n"
	    "X-Plex-Token: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
	    path, host, port, getenv("X_PLEX_TOKEN") ? getenv("X_PLEX_TOKEN") : "");
	if (write(fd, req, strlen(req)) < 0)
		return 6;
	n = read(fd, resp, sizeof resp - 1);
	close(fd);
	if (n < 12)
		return 7;
	resp[n] = '\0';
	printf("callback status %.3s\n", resp + 9);
	return strncmp(resp + 9, "200", 3) == 0 ? 0 : 8;
}

/* The value after -eae_prefix[:K], as the real transcoder reads it. */
static const char *
eae_prefix(int argc, char **argv)
{
	int i;

	for (i = 1; i + 1 < argc; i++) {
		if (strncmp(argv[i], "-eae_prefix", 11) == 0)
			return argv[i + 1];
	}
	return "eae_";
}

static int
eae_once(const char *dir, const char *prefix, int i)
{
	char in[8300], tmp[8300], out[8300], buf[512];
	FILE *f;
	int t;
	size_t n;

	snprintf(tmp, sizeof tmp, "%s/.%s%d.tmp", dir, prefix, i);
	snprintf(in, sizeof in, "%s/%s%d.in", dir, prefix, i);
	snprintf(out, sizeof out, "%s/%s%d.wav", dir, prefix, i);
	if ((f = fopen(tmp, "w")) == NULL)
		return 3;
	fprintf(f, "audio %s%d", prefix, i);
	if (fclose(f) != 0 || rename(tmp, in) != 0)
		return 3;
	for (t = 0; t < 1000; t++) {
		if ((f = fopen(out, "r")) != NULL) {
			n = fread(buf, 1, sizeof buf - 1, f);
			buf[n] = '\0';
			fclose(f);
			unlink(out);
			printf("%s\n", buf);
			fflush(stdout);
			return 0;
		}
		usleep(10000);
	}
	printf("EAE timeout! EAE not running, or wrong folder? %s\n", out);
	return 1;
}

static int
eae(int argc, char **argv)
{
	const char *root = getenv("EAE_ROOT"), *prefix = eae_prefix(argc, argv);
	char dir[4096];
	int i, n = atoi(argv[2]), rc;

	if (root == NULL)
		return 2;
	snprintf(dir, sizeof dir, "%s/Convert to WAV (to 8ch or less)", root);
	mkdir(dir, 0755);
	for (i = 0; i < n; i++) {
		if (i > 0)
			usleep(300000);
		if ((rc = eae_once(dir, prefix, i)) != 0)
			return rc;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	char cwd[4096];
	int i;

	if (argc < 2)
		return 2;
	if (strcmp(argv[1], "argv") == 0)
		return dump_argv(argc, argv);
	if (strcmp(argv[1], "exit") == 0 && argc > 2)
		return atoi(argv[2]);
	if (strcmp(argv[1], "signal") == 0 && argc > 2) {
		signal(atoi(argv[2]), SIG_DFL);
		raise(atoi(argv[2]));
		return 9;
	}
	if (strcmp(argv[1], "cat") == 0)
		return copy_stdin();
	if (strcmp(argv[1], "out") == 0 && argc > 2)
		return pattern(atol(argv[2]));
	if (strcmp(argv[1], "sleep") == 0 && argc > 2)
		return sleeper(atoi(argv[2]));
	if (strcmp(argv[1], "callback") == 0 && argc > 2)
		return callback(argv[2]);
	if (strcmp(argv[1], "eae") == 0 && argc > 2)
		return eae(argc, argv);
	if (strcmp(argv[1], "env") == 0) {
		for (i = 0; environ[i] != NULL; i++)
			printf("%s\n", environ[i]);
		return 0;
	}
	if (strcmp(argv[1], "show") == 0 && argc > 2) {
		FILE *f = fopen(argv[2], "r");
		int c;

		if (f == NULL)
			return 3;
		while ((c = getc(f)) != EOF)
			putchar(c);
		return 0;
	}
	if (strcmp(argv[1], "tick") == 0 && argc > 2) {
		for (i = 0; i < atoi(argv[2]); i++) {
			printf("tick %d\n", i);
			fflush(stdout);
			usleep(100000);
		}
		return 0;
	}
	if (strcmp(argv[1], "where") == 0 && getcwd(cwd, sizeof cwd) != NULL) {
		printf("%s\n", cwd);
		return 0;
	}
	return 2;
}
