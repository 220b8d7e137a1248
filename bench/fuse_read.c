/*
 * fuse_read.c — read throughput of whole files, for bench/fuse.sh (c).
 *
 *   fuse_read ROUNDS FILE...
 *
 * Reads every FILE ROUNDS times into one reused buffer (so the figure is
 * the filesystem's, not the allocator's) and prints two rates in MB/s:
 * whole files opened, read and closed; and read() alone.
 */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1024 * 1024)

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	static char buf[CHUNK];
	double t0, t_all = 0, t_read = 0, a;
	long long bytes = 0;
	int rounds, r, i, fd;
	ssize_t n;

	if (argc < 3 || (rounds = atoi(argv[1])) < 1) {
		fprintf(stderr, "usage: fuse_read ROUNDS FILE...\n");
		return 2;
	}
	for (r = 0; r < rounds; r++) {
		for (i = 2; i < argc; i++) {
			t0 = now();
			if ((fd = open(argv[i], O_RDONLY)) < 0) {
				perror(argv[i]);
				return 1;
			}
			a = now();
			while ((n = read(fd, buf, sizeof buf)) > 0)
				bytes += n;
			t_read += now() - a;
			close(fd);
			t_all += now() - t0;
			if (n < 0) {
				perror(argv[i]);
				return 1;
			}
		}
	}
	printf("%.0f %.0f\n", (double)bytes / t_all / 1e6,
	    (double)bytes / t_read / 1e6);
	return 0;
}
