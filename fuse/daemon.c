/* daemon.c — the process: mount, threads, and a clean way out. */

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "cfs.h"

/*
 * Threads: libfuse's request threads (the main thread waits in
 * fuse_session_loop_mt), the loop thread (libuv: workers, the control
 * socket, deadlines, signals) and the notification thread (notify.c).
 * Request threads never wait for the network: they hand calls to the
 * loop thread, whose answers reply to the kernel.
 */

#define TICK_MS 100

static void set_readahead(struct cfs *fs);
#define SWEEP_TICKS 100

static void
loop_close_all(struct cfs *fs)
{
	fs->lanes[0].stopping = 1;
	cfs_ctl_stop(fs);
	cfs_routing_shutdown(fs);
	cfs_lane_close_queue(&fs->lanes[0]);
	cfs_workers_drain(&fs->lanes[0]);
	cfs_workers_free(&fs->lanes[0]);
	uv_close((uv_handle_t *)&fs->tick, NULL);
	uv_close((uv_handle_t *)&fs->sigterm, NULL);
	uv_close((uv_handle_t *)&fs->sigint, NULL);
	uv_close((uv_handle_t *)&fs->sighup, NULL);
	uv_close((uv_handle_t *)&fs->wake, NULL);
}

static void
on_wake(uv_async_t *a)
{
	struct cfs *fs = a->data;

	if (fs->stop_loop) {
		if (!fs->lanes[0].stopping)
			loop_close_all(fs);
		return;
	}
	cfs_workers_drain(&fs->lanes[0]);
}

/*
 * The device number of our mount, from /proc/self/mountinfo: a stat() of
 * the mount point would be a request to ourselves.
 */
static unsigned
mount_minor(const char *mountpoint)
{
	unsigned maj, min, found = 0;
	char *line = NULL, mnt[4096];
	size_t cap = 0;
	FILE *f = fopen("/proc/self/mountinfo", "r");

	if (f == NULL)
		return 0;
	while (getline(&line, &cap, f) > 0) {
		/* id parent maj:min root mountpoint ... (the last one wins) */
		if (sscanf(line, "%*d %*d %u:%u %*s %4095s", &maj, &min, mnt) == 3 &&
		    strcmp(mnt, mountpoint) == 0)
			found = min;
	}
	free(line);
	fclose(f);
	return found;
}

/* The kernel side of the mount, for when open files keep it alive. */
static void
abort_connection(struct cfs *fs)
{
	char *path = cpx_xprintf("/sys/fs/fuse/connections/%u/abort",
	    fs->dev_minor);
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT &&
	    mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, NULL) == 0)
		fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0 && write(fd, "1", 1) == 1) {
		cpx_info("files were still open: fuse connection aborted");
	} else {
		cpx_error("cannot abort the fuse connection (%s); exiting",
		    strerror(errno));
		_exit(0);
	}
	if (fd >= 0)
		close(fd);
	free(path);
}

static void
on_tick(uv_timer_t *t)
{
	struct cfs *fs = t->data;

	cfs_workers_tick(&fs->lanes[0], TICK_MS);
	cfs_routing_tick(fs);
	cfs_pending_tick(fs);
	cfs_push_tick(fs);
	cfs_backing_tick(fs, 0);
	if (++fs->tick_count % SWEEP_TICKS == 0)
		cfs_cache_sweep(fs);
	if (fs->init_done && !fs->readahead_set) {
		fs->readahead_set = 1;
		set_readahead(fs);
	}
	if (fs->unmounting && fs->abort_at != 0 &&
	    uv_now(&fs->loop) >= fs->abort_at) {
		fs->abort_at = 0;
		abort_connection(fs);
	}
}

/*
 * SIGTERM/SIGINT: unmount. A plain unmount works when nothing is open;
 * otherwise the mount is detached at once (the folder underneath shows
 * again, nobody sees "Transport endpoint is not connected") and the
 * connection is aborted after CLUSTERPLEX_FUSE_SHUTDOWN_MS if open files
 * still hold it. Either way the session loop ends and we exit 0.
 */
void
cfs_shutdown(struct cfs *fs, const char *why)
{
	if (fs->unmounting)
		return;
	fs->unmounting = 1;
	cpx_info("%s: unmounting %s", why, fs->set.mountpoint);
	fuse_session_exit(fs->se);
	if (umount2(fs->set.mountpoint, 0) == 0)
		return;
	if (umount2(fs->set.mountpoint, MNT_DETACH) != 0)
		cpx_warn("cannot unmount %s: %s", fs->set.mountpoint,
		    strerror(errno));
	fs->abort_at = uv_now(&fs->loop) + (uint64_t)fs->set.shutdown_ms;
}

static void
on_signal(uv_signal_t *s, int signum)
{
	if (signum == SIGHUP) {
		cpx_info("SIGHUP ignored (nothing to reload)");
		return;
	}
	cfs_shutdown(s->data, strsignal(signum));
}

static void
loop_handles(struct cfs *fs)
{
	uv_loop_init(&fs->loop);
	uv_async_init(&fs->loop, &fs->wake, on_wake);
	fs->wake.data = fs;
	uv_timer_init(&fs->loop, &fs->tick);
	fs->tick.data = fs;
	uv_timer_start(&fs->tick, on_tick, TICK_MS, TICK_MS);
	uv_signal_init(&fs->loop, &fs->sigterm);
	uv_signal_init(&fs->loop, &fs->sigint);
	uv_signal_init(&fs->loop, &fs->sighup);
	fs->sigterm.data = fs->sigint.data = fs->sighup.data = fs;
	uv_signal_start(&fs->sigterm, on_signal, SIGTERM);
	uv_signal_start(&fs->sigint, on_signal, SIGINT);
	uv_signal_start(&fs->sighup, on_signal, SIGHUP);
}

static void *
loop_main(void *arg)
{
	struct cfs *fs = arg;

	uv_run(&fs->loop, UV_RUN_DEFAULT);
	return NULL;
}

/* Is the newest mount on `mountpoint` one of ours (fuse.clusterplex)? */
static int
our_mount(const char *mountpoint)
{
	char *line = NULL, mnt[4096], type[64];
	size_t cap = 0;
	int ours = 0;
	FILE *f = fopen("/proc/self/mountinfo", "r");

	if (f == NULL)
		return 0;
	while (getline(&line, &cap, f) > 0) {
		char *dash = strstr(line, " - ");

		if (dash == NULL || sscanf(line, "%*d %*d %*s %*s %4095s", mnt) != 1 ||
		    strcmp(mnt, mountpoint) != 0)
			continue;
		ours = sscanf(dash, " - %63s", type) == 1 &&
		    strcmp(type, "fuse.clusterplex") == 0;
	}
	free(line);
	fclose(f);
	return ours;
}

/*
 * A daemon that died leaves its mount behind, dead ("Transport endpoint
 * is not connected"): detach it, or we would open our folder through it.
 * A stat() may still be answered from the kernel's cache, statfs() never
 * is. A live mount of ours means another daemon serves the folder.
 */
static int
clear_stale_mounts(const char *mountpoint, char **cause)
{
	struct statfs sf;
	int tries;

	for (tries = 0; tries < 8 && our_mount(mountpoint); tries++) {
		if (statfs(mountpoint, &sf) == 0) {
			cpx_set_cause(cause, "%s is served by another "
			    "clusterplex-fuse already", mountpoint);
			return -EBUSY;
		}
		if (umount2(mountpoint, MNT_DETACH) != 0) {
			cpx_set_cause(cause, "cannot clear the dead mount on %s: %s",
			    mountpoint, strerror(errno));
			return -errno;
		}
		cpx_info("cleared a dead mount at %s", mountpoint);
	}
	return 0;
}

static int
open_root(struct cfs *fs, char **cause)
{
	struct stat st;
	int error;

	if ((error = clear_stale_mounts(fs->set.mountpoint, cause)) != 0)
		return error;
	fs->rootfd = open(fs->set.mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->rootfd < 0 || fstat(fs->rootfd, &st) != 0) {
		cpx_set_cause(cause, "cannot open %s: %s", fs->set.mountpoint,
		    strerror(errno));
		return -errno;
	}
	fs->root_uid = st.st_uid;
	fs->root_gid = st.st_gid;
	if (cpx_mkdir_p(fs->set.run_dir, 0755) != 0) {
		cpx_set_cause(cause, "cannot create %s: %s", fs->set.run_dir,
		    strerror(errno));
		return -errno;
	}
	return 0;
}

/*
 * The kernel reads ahead 128 KiB on a FUSE mount by default and the INIT
 * reply can only lower that; a larger window (set on the mount's bdi once
 * INIT is through, or INIT would lower it again) turns a sequential read
 * into fewer, larger requests.
 */
static void
set_readahead(struct cfs *fs)
{
	char *path = cpx_xprintf("/sys/class/bdi/0:%u/read_ahead_kb",
	    fs->dev_minor);
	char *kb = cpx_xprintf("%d\n", CFS_BDI_READAHEAD_KB);
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || cpx_write_all(fd, kb, strlen(kb)) < 0)
		cpx_debug("cannot set %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(kb);
	free(path);
}

static int
new_session(struct cfs *fs, char **cause)
{
	char *argv[] = { "clusterplex-fuse", "-o",
		"fsname=clusterplex,subtype=clusterplex,allow_other,"
		"default_permissions", "-d", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(fs->set.debug ? 4 : 3, argv);

	fs->se = fuse_session_new(&args, &cfs_ops, sizeof cfs_ops, fs);
	fuse_opt_free_args(&args);
	if (fs->se == NULL) {
		cpx_set_cause(cause, "cannot create the fuse session");
		return -EIO;
	}
	if (fuse_session_mount(fs->se, fs->set.mountpoint) != 0) {
		cpx_set_cause(cause, "cannot mount on %s", fs->set.mountpoint);
		fuse_session_destroy(fs->se);
		fs->se = NULL;
		return -EIO;
	}
	fs->dev_minor = mount_minor(fs->set.mountpoint);
	/* Our own reads and writes of /dev/fuse: passthrough (kio.c). */
	if (cfs_kio_attach(fs) != 0)
		cpx_warn("cannot take over /dev/fuse: no passthrough");
	return 0;
}

static void
init_state(struct cfs *fs, struct cfs_settings *set,
    const struct cfs_transport *transport, void *transport_arg)
{
	pthread_condattr_t ca;

	memset(fs, 0, sizeof *fs);
	fs->set = *set;
	memset(set, 0, sizeof *set);
	fs->transport = transport;
	fs->transport_arg = transport_arg;
	fs->rootfd = -1;
	pthread_rwlock_init(&fs->route_lock, NULL);
	pthread_mutex_init(&fs->files_lock, NULL);
	cfs_lanes_init(fs, (int)fs->set.connections);
	pthread_mutex_init(&fs->notify_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);	/* cpx_now_ms() */
	pthread_cond_init(&fs->notify_cond, &ca);
	pthread_condattr_destroy(&ca);
	cfs_nodes_init(fs);
	cfs_cache_init(fs);
	loop_handles(fs);
}

static void
free_state(struct cfs *fs)
{
	if (fs->se != NULL) {
		fuse_session_unmount(fs->se);
		fuse_session_destroy(fs->se);
		fs->se = NULL;
	}
	uv_run(&fs->loop, UV_RUN_DEFAULT);	/* handles still closing */
	uv_loop_close(&fs->loop);
	cfs_routes_free(fs);
	cfs_pending_free(fs);
	cfs_files_free(fs);
	pthread_mutex_destroy(&fs->files_lock);
	cfs_cache_free(fs);
	cfs_nodes_free(fs);
	if (fs->rootfd >= 0)
		close(fs->rootfd);
	pthread_rwlock_destroy(&fs->route_lock);
	cfs_lanes_free(fs);
	pthread_mutex_destroy(&fs->notify_lock);
	pthread_cond_destroy(&fs->notify_cond);
	cfs_settings_free(&fs->set);
}

static int
serve(struct cfs *fs)
{
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	int error;

	fuse_loop_cfg_set_max_threads(lc, (unsigned)fs->set.threads);
	fuse_loop_cfg_set_idle_threads(lc, 4);
	cfs_lanes_start(fs);
	if (pthread_create(&fs->loop_thread, NULL, loop_main, fs) != 0)
		cpx_fatal("cannot start the loop thread");
	pthread_setname_np(fs->loop_thread, "cpx-fuse-loop");
	cpx_info("serving %s (run dir %s, %s transport, %d connection%s per "
	    "worker)", fs->set.mountpoint, fs->set.run_dir, fs->transport->name,
	    fs->nlanes, fs->nlanes == 1 ? "" : "s");
	error = fuse_session_loop_mt(fs->se, lc);
	fuse_loop_cfg_destroy(lc);
	fs->stop_loop = 1;
	uv_async_send(&fs->wake);
	pthread_join(fs->loop_thread, NULL);
	cfs_lanes_stop(fs);
	cfs_notify_stop(fs);
	return error < 0 ? error : 0;
}

/* Runs the filesystem until it is unmounted. Returns the exit status. */
int
cfs_run(struct cfs_settings *set, const struct cfs_transport *transport,
    void *transport_arg)
{
	struct cfs *fs = cpx_xmalloc(sizeof *fs);
	char *cause = NULL;
	int status = 1;

	signal(SIGPIPE, SIG_IGN);
	/*
	 * Cache blocks are 128 KiB: from fresh mmap()s, each would cost 32
	 * page faults and as many zeroed pages. Keep them in the heap, and
	 * few enough to stay warm (cache.c: served blocks; backing.c).
	 */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
	init_state(fs, set, transport, transport_arg);
	if (open_root(fs, &cause) != 0 || new_session(fs, &cause) != 0 ||
	    cfs_ctl_start(fs, &cause) != 0) {
		cpx_error("%s", cause);
		free(cause);
		loop_close_all(fs);
		goto out;
	}
	cfs_notify_start(fs);
	cfs_routing_restore(fs);
	if (serve(fs) == 0)
		status = 0;
	cpx_info("unmounted %s", fs->set.mountpoint);
out:
	free_state(fs);
	free(fs);
	return status;
}
