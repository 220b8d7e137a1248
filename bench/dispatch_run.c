/*
 * dispatch_run.c — times exec → first instruction of the transcoder.
 *
 *   dispatch_run RUNS CWD STAMP_FILE PROGRAM [ARGS...]
 *
 * Each run takes the wall clock, forks, and execs PROGRAM from CWD (the
 * shim, or the stand-in itself for the local baseline); the stand-in
 * writes its own start time into STAMP_FILE. Prints the runs' latencies
 * in microseconds, one per line, sorted. A failed run is an error.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int
cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

static long long
one(const char *cwd, const char *stamp, char **argv)
{
	long long t0, sec, nsec;
	FILE *f;
	pid_t pid;
	int st;

	unlink(stamp);
	t0 = now_ns();
	pid = fork();
	if (pid == 0) {
		if (chdir(cwd) != 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0) {
		fprintf(stderr, "dispatch_run: %s failed (status %d)\n", argv[0],
		    st);
		exit(1);
	}
	f = fopen(stamp, "r");
	if (f == NULL || fscanf(f, "%lld %lld", &sec, &nsec) != 2) {
		fprintf(stderr, "dispatch_run: no stamp in %s\n", stamp);
		exit(1);
	}
	fclose(f);
	return (sec * 1000000000LL + nsec - t0) / 1000;
}

int
main(int argc, char **argv)
{
	long long *us;
	int runs, i;

	if (argc < 5 || (runs = atoi(argv[1])) <= 0) {
		fprintf(stderr, "usage: dispatch_run RUNS CWD STAMP PROGRAM [ARGS]\n");
		return 2;
	}
	us = calloc((size_t)runs, sizeof *us);
	for (i = 0; i < runs; i++)
		us[i] = one(argv[2], argv[3], argv + 4);
	qsort(us, (size_t)runs, sizeof *us, cmp);
	for (i = 0; i < runs; i++)
		printf("%lld\n", us[i]);
	free(us);
	return 0;
}
