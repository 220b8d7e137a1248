/*
 * fuzz_server.h — a loopback HTTP peer for fuzz targets of HTTP clients:
 * each connection gets the bytes the current input chose, then EOF.
 * Included by fuzz_common_httpc.c and fuzz_shim_dispatch.c.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static pthread_mutex_t fs_lock = PTHREAD_MUTEX_INITIALIZER;
static const uint8_t *fs_data;
static size_t fs_len;
static int fs_fd = -1;
static int fs_port;

/* Reads the request (up to its blank line, or 64 KiB), answers, closes. */
static void *
fs_main(void *arg)
{
	char buf[65536];
	size_t got;
	ssize_t n;
	int c;

	for (;;) {
		c = accept(fs_fd, NULL, NULL);
		if (c < 0)
			continue;
		got = 0;
		while (got < sizeof buf - 1 && (n = read(c, buf + got,
		    sizeof buf - 1 - got)) > 0) {
			got += (size_t)n;
			buf[got] = '\0';
			if (strstr(buf, "\r\n\r\n") != NULL)
				break;
		}
		pthread_mutex_lock(&fs_lock);
		if (fs_len > 0)
			(void)!write(c, fs_data, fs_len);
		pthread_mutex_unlock(&fs_lock);
		shutdown(c, SHUT_WR);
		/* Until the client has read it all and closed. */
		while (read(c, buf, sizeof buf) > 0)
			;
		close(c);
	}
	return NULL;
}

/* Starts the peer once; returns its port. */
static int
fs_start(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof sa;
	pthread_t t;

	if (fs_fd >= 0)
		return fs_port;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fs_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fs_fd < 0 || bind(fs_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    listen(fs_fd, 16) != 0 ||
	    getsockname(fs_fd, (struct sockaddr *)&sa, &len) != 0)
		abort();
	fs_port = ntohs(sa.sin_port);
	if (pthread_create(&t, NULL, fs_main, NULL) != 0)
		abort();
	pthread_detach(t);
	return fs_port;
}

/* What the next connection gets (the caller keeps `p` alive meanwhile). */
static void
fs_answer(const uint8_t *p, size_t n)
{
	pthread_mutex_lock(&fs_lock);
	fs_data = p;
	fs_len = n;
	pthread_mutex_unlock(&fs_lock);
}
