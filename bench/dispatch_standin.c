/*
 * dispatch_standin.c — the transcoder for bench/dispatch.sh: records the
 * wall clock as early as a program can (a constructor, before main) in
 * ./dispatch.ts, and exits. Worker and PMS host are the same machine in
 * the benchmark, so the clocks agree.
 */

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct timespec started;

__attribute__((constructor)) static void
stamp(void)
{
	clock_gettime(CLOCK_REALTIME, &started);
}

int
main(void)
{
	char buf[64];
	int fd = open("dispatch.ts.tmp", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int n = snprintf(buf, sizeof buf, "%lld %ld\n",
	    (long long)started.tv_sec, started.tv_nsec);

	if (fd < 0 || write(fd, buf, (size_t)n) != n || close(fd) != 0 ||
	    rename("dispatch.ts.tmp", "dispatch.ts") != 0)
		return 1;
	return 0;
}
