/*
 * fuse_raw.c — the SSH ceiling for bench/fuse.sh: one blocking libssh2
 * channel reading a forced command's output (`cat FILE`) to its end.
 *
 *   fuse_raw PORT KEY [CIPHER [MAC]]
 *
 * Prints "MB/s client-ms-per-MB cipher mac": what one libssh2 1.10
 * connection can carry on this machine, and what decrypting it costs the
 * client, with nothing else in the way. Bench code: no event loop, no
 * error recovery, no host key check (loopback, a throwaway sshd).
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libssh2.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int
dial(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		perror("connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

int
main(int argc, char **argv)
{
	static char buf[65536];
	LIBSSH2_SESSION *s;
	LIBSSH2_CHANNEL *ch;
	char pub[4096];
	double t0, c0, t, c;
	long long total = 0;
	ssize_t n;
	int fd;

	if (argc < 3) {
		fprintf(stderr, "usage: fuse_raw PORT KEY [CIPHER [MAC]]\n");
		return 2;
	}
	snprintf(pub, sizeof pub, "%s.pub", argv[2]);
	libssh2_init(0);
	fd = dial(atoi(argv[1]));
	s = libssh2_session_init();
	if (argc > 3) {
		libssh2_session_method_pref(s, LIBSSH2_METHOD_CRYPT_CS, argv[3]);
		libssh2_session_method_pref(s, LIBSSH2_METHOD_CRYPT_SC, argv[3]);
	}
	if (argc > 4) {
		libssh2_session_method_pref(s, LIBSSH2_METHOD_MAC_CS, argv[4]);
		libssh2_session_method_pref(s, LIBSSH2_METHOD_MAC_SC, argv[4]);
	}
	if (libssh2_session_handshake(s, fd) != 0 ||
	    libssh2_userauth_publickey_fromfile(s, "root", pub, argv[2],
	    NULL) != 0 || (ch = libssh2_channel_open_ex(s, "session", 7,
	    4 * 1024 * 1024, 32768, NULL, 0)) == NULL ||
	    libssh2_channel_exec(ch, "cat") != 0) {
		fprintf(stderr, "fuse_raw: SSH set-up failed\n");
		return 1;
	}
	t0 = now();
	c0 = cpu();
	while ((n = libssh2_channel_read(ch, buf, sizeof buf)) > 0)
		total += n;
	t = now() - t0;
	c = cpu() - c0;
	printf("%.0f %.2f %s %s\n", (double)total / t / 1e6,
	    c * 1e3 / ((double)total / 1e6),
	    libssh2_session_methods(s, LIBSSH2_METHOD_CRYPT_SC),
	    libssh2_session_methods(s, LIBSSH2_METHOD_MAC_SC));
	return 0;
}
