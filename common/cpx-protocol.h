/* cpx-protocol.h — every message ClusterPlex binaries exchange, in one place. */

#ifndef CPX_PROTOCOL_H
#define CPX_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "cpx.h"

/*
 * Bump CPX_PROTO_VERSION on any incompatible change. Both ends send it in
 * HELLO; a mismatch is refused with an ERROR naming both versions.
 *
 * Additions that stay version 1, and why each is compatible both ways:
 *  - codec sets (SET_* frames, the job spec's "codecs"): an agent asks for
 *    a set only when the spec names one, which only a shim that serves
 *    sets does; an older agent ignores the field and never asks;
 *  - the "probe" service (PROBE, PROBE_REPLY): an older agent refuses the
 *    unknown service with ERROR, which `doctor` reports as "agent too old";
 *  - EAE_* frames run on the worker's own socket between `agent exec` and
 *    `agent serve` of one install, never between hosts.
 * A change in what an existing frame means would need a new version.
 */
#define CPX_PROTO_VERSION 1

/*
 * Framing, used on every SSH channel (shim<->agent, fuse<->agent) and on
 * the local unix sockets (shim<->pool, shim<->fuse control). All integers
 * are big-endian.
 *
 *   u32 length     payload length, at most CPX_FRAME_MAX
 *   u8  type       enum cpx_msg
 *   u8  flags      0 (reserved)
 *   u16 reserved   0
 *   u32 id         tunnel id, request id or input index; 0 when unused
 *   ... payload
 */
#define CPX_FRAME_HDR 12
#define CPX_FRAME_MAX (1024 * 1024)

enum cpx_msg {
	/* Any service. */
	CPX_MSG_HELLO = 1,	/* JSON, see cpx_hello_* below */
	CPX_MSG_ERROR = 2,	/* JSON {"code": str, "message": str} */
	CPX_MSG_PING = 3,	/* empty; the peer answers PONG */
	CPX_MSG_PONG = 4,

	/* Job service: client (shim) -> agent. */
	CPX_MSG_JOB = 10,	/* JSON job spec, see struct cpx_jobspec */
	CPX_MSG_INPUT = 11,	/* id = input index; u64 offset + bytes */
	CPX_MSG_RUN = 12,	/* empty: all inputs sent, start the transcoder */
	CPX_MSG_STDIN = 13,	/* bytes for the transcoder; empty = EOF */
	CPX_MSG_SIGNAL = 14,	/* u8 signal number to forward */

	/*
	 * Job service, between JOB and the transcoder's start: a codec set
	 * the agent asked for with SET_WANT (see "Codec sets" below).
	 */
	CPX_MSG_SET_FILE = 15,	/* id = entry index; cpx_set_entry */
	CPX_MSG_SET_DATA = 16,	/* id = entry index; the file's next bytes */
	CPX_MSG_SET_SUM = 17,	/* id = entry index; 32-byte SHA-256 as read */
	CPX_MSG_SET_END = 18,	/* JSON {"files": n, "bytes": n} | {"error": str} */

	/* Job service: agent -> client. */
	CPX_MSG_STARTED = 20,	/* JSON {"pid": n, "callback_port": n} */
	CPX_MSG_STDOUT = 21,	/* bytes */
	CPX_MSG_STDERR = 22,	/* bytes */
	CPX_MSG_EXIT = 23,	/* u8 kind (enum cpx_exit_kind), u8 value, u8 core */
	CPX_MSG_SET_WANT = 24,	/* JSON {"kind": "codecs", "name": str, "data": bool} */

	/*
	 * Callback tunnel: a TCP connection the transcoder opened to the
	 * agent's per-job loopback listener, carried to PMS's loopback.
	 * id = tunnel id chosen by the agent.
	 */
	CPX_MSG_TUN_OPEN = 30,	/* agent -> client: connect to PMS */
	CPX_MSG_TUN_DATA = 31,	/* both ways; empty = EOF (shutdown write) */
	CPX_MSG_TUN_CLOSE = 32, /* both ways: the connection is gone */

	/* File service: fuse -> agent requests, agent -> fuse replies/events. */
	CPX_MSG_FREQ = 40,	/* id = request id; u8 op (enum cpx_fop) + args */
	CPX_MSG_FREPLY = 41,	/* id = request id; i32 status (0/-errno) + result */
	CPX_MSG_FEVENT = 42,	/* u8 kind (enum cpx_fevent), str path, attr */
	CPX_MSG_FPUSH = 43,	/* contents of files being written, see below */

	/* PMS-host local sockets. */
	CPX_MSG_POOL_OPEN = 50,	 /* shim -> pool: JSON cpx_endpoint + "service" */
	CPX_MSG_POOL_READY = 51, /* pool -> shim: channel open, frames now pass */
	CPX_MSG_ROUTE_ADD = 52,	 /* shim -> fuse: JSON {"dir", "job", "worker"} */
	CPX_MSG_ROUTE_DEL = 53,	 /* shim -> fuse: JSON {"dir"} */
	CPX_MSG_ROUTE_OK = 54,	 /* fuse -> shim */

	/*
	 * Probe service (HELLO "probe"), for `clusterplex-shim doctor`: one
	 * request, one reply, then the agent closes. See cpx_probe_* below.
	 */
	CPX_MSG_PROBE = 60,	  /* client -> agent: JSON request */
	CPX_MSG_PROBE_REPLY = 61, /* agent -> client: JSON report */

	/*
	 * Worker-local socket $CLUSTERPLEX_RUN_DIR/agent.sock, `agent exec`
	 * -> `agent serve`: an EasyAudioEncoder for a job. The connection is
	 * the lease: while it is open the EAE keeps running (and is restarted
	 * if it dies); when the last lease closes it stops after the idle time.
	 */
	CPX_MSG_EAE_ACQUIRE = 70, /* JSON {"root": str, "binary": str, "job": str} */
	CPX_MSG_EAE_READY = 71,	  /* JSON {"dir": str, "pid": n, "started": bool} */
};

enum cpx_exit_kind {
	CPX_EXIT_CODE = 0,	/* value = exit code */
	CPX_EXIT_SIGNAL = 1,	/* value = signal number */
};

struct cpx_frame {
	uint8_t type;
	uint32_t id;
	const uint8_t *payload;
	size_t len;
};

/* proto.c */

const char *cpx_msg_name(int type);
void cpx_frame_put(struct cpx_buf *out, uint8_t type, uint32_t id,
    const void *payload, size_t len);
size_t cpx_frame_begin(struct cpx_buf *out);
void cpx_frame_end(struct cpx_buf *out, size_t start, uint8_t type,
    uint32_t id);
void cpx_frame_end_after(struct cpx_buf *out, size_t start, uint8_t type,
    uint32_t id, size_t after);
int cpx_frame_next(const uint8_t *data, size_t len, struct cpx_frame *f,
    size_t *consumed);

/*
 * Error codes carried in CPX_MSG_ERROR "code"; the shim maps them to its
 * documented exit codes.
 */
#define CPX_ERR_PROTO "protocol"	 /* malformed or unexpected message */
#define CPX_ERR_VERSION "version"	 /* protocol version mismatch */
#define CPX_ERR_SPEC "bad-spec"		 /* job spec refused (cwd, argv, ...) */
#define CPX_ERR_EXEC "exec-failed"	 /* transcoder could not be started */
#define CPX_ERR_BUSY "busy"		 /* worker is full or draining */
#define CPX_ERR_CONNECT "connect"	 /* pool: could not reach the worker */
#define CPX_ERR_HOSTKEY "host-key"	 /* pool: host key mismatch */
#define CPX_ERR_AUTH "auth"		 /* pool: key refused */

void cpx_error_put(struct cpx_buf *out, const char *code, const char *message);
int cpx_error_parse(const uint8_t *p, size_t n, char **code, char **message);

/*
 * HELLO. Client: {"proto": 1, "service": "job"|"files", "client": "..."}.
 * Agent: {"proto": 1, "agent": "<version>", "worker": "<name>"}.
 */
#define CPX_SERVICE_JOB "job"
#define CPX_SERVICE_FILES "files"
#define CPX_SERVICE_PROBE "probe"

/*
 * PROBE request: {"codecs": str|null (the set PMS uses now), "media":
 * [str...] (sample input paths as PMS names them, at most 16)}.
 * PROBE_REPLY: {"agent", "worker", "original_command" (SSH_ORIGINAL_COMMAND,
 * present only under a forced command), "transcoder": {"path","ok",
 * "version"|"error"}, "codecs": {"cpu","state" (none|cached|own|fetchable|
 * missing),"want","dir","source" (pms|url, when fetchable),"error"},
 * "transcode_dir": {"path","ok","error"},
 * "media": [{"path","mapped","ok","error"}], "time_ms" (wall clock)}.
 */

void cpx_hello_put(struct cpx_buf *out, const char *service, const char *who);
int cpx_hello_parse(const uint8_t *p, size_t n, char **service,
    char **cause);

/*
 * A worker's SSH endpoint, as the dispatcher hands it out. `host_key` is
 * an OpenSSH public key line ("ssh-ed25519 AAAA...") and is pinned: a
 * server presenting another key is refused.
 */
struct cpx_endpoint {
	char *name;
	char *host;
	int port;
	char *user;
	char *host_key;
};

struct cJSON;

void cpx_endpoint_free(struct cpx_endpoint *e);
void cpx_endpoint_copy(struct cpx_endpoint *dst, const struct cpx_endpoint *src);
void cpx_endpoint_to_json(const struct cpx_endpoint *e, struct cJSON *obj);
int cpx_endpoint_from_json(const struct cJSON *obj, struct cpx_endpoint *e,
    char **cause);
char *cpx_json_take(struct cJSON *obj, int pretty);

/*
 * Job spec (CPX_MSG_JOB), JSON:
 *   {"v": 1, "id": str, "session": str, "root": str, "cwd": str,
 *    "argv": [bytes...], "env": [bytes "NAME=value"...],
 *    "pms_port": n, "tunnel": bool, "verbose": bool,
 *    "inputs": [{"name": str, "size": n}...], "codecs": str}
 * "bytes" is a JSON string when the value is valid UTF-8 and otherwise
 * {"b64": "..."}, so argv and env travel byte-for-byte whatever they hold.
 * argv excludes argv[0]. "root" is PMS's transcode folder; "cwd" must lie
 * under it and the agent maps it below its own transcode folder.
 * "codecs" (optional) names the codec set in the job's FFMPEG_EXTERNAL_LIBS
 * (the folder's base name) and says the client can send it (SET_WANT).
 */
#define CPX_JOB_MAX_ARGS 8192
#define CPX_JOB_MAX_ENV 1024
#define CPX_JOB_MAX_INPUTS 64
#define CPX_JOB_MAX_INPUT_SIZE (256L * 1024 * 1024)

struct cpx_input {
	char *name;		/* plain file name inside the session folder */
	uint64_t size;
};

struct cpx_jobspec {
	char *id;
	char *session;
	char *root;
	char *cwd;
	char **argv;		/* NULL-terminated */
	size_t argc;
	char **env;		/* NULL-terminated "NAME=value" */
	size_t envc;
	int pms_port;
	int tunnel;
	int verbose;
	struct cpx_input *inputs;
	size_t ninputs;
	char *codecs;		/* codec set the client serves, or NULL */
};

/* jobspec.c */

void cpx_jobspec_free(struct cpx_jobspec *js);
char *cpx_jobspec_encode(const struct cpx_jobspec *js);
int cpx_jobspec_decode(const char *json, size_t len, struct cpx_jobspec *js,
    char **cause);

/*
 * File service. Paths are relative to the worker's transcode folder,
 * '/'-separated, without "", "." or ".." components (cpx_path_clean_relative);
 * "" names the folder itself where an op allows it. The agent resolves every
 * path beneath its root (openat2 RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS):
 * a symlink may point elsewhere inside the root, never out of it.
 *
 * Request payload: u8 op, then per op:
 *   STAT, UNLINK, RMDIR, STATFS, WATCH, UNWATCH   str path
 *   READDIR    str path, u64 cookie (0 first, then the reply's "next")
 *   OPEN       str path, u32 flags (CPX_O_*), u32 mode
 *   READ       u64 handle, u64 offset, u32 size (<= CPX_FREAD_MAX)
 *   PREAD      str path, u64 offset, u32 size (<= CPX_FREAD_MAX)
 *   WRITE      u64 handle, u64 offset, str data (<= CPX_FREAD_MAX)
 *   CLOSE      u64 handle
 *   MKDIR      str path, u32 mode
 *   RENAME     str from, str to, u32 flags (0 or CPX_RENAME_NOREPLACE)
 *   TRUNCATE   str path, u64 size
 *   CHMOD      str path, u32 mode
 *   UTIMENS    str path, attr-times (i64 s, u32 ns) atime, mtime
 *   PUSH       str path, u32 share | shares << 16, u64 largest file pushed
 * Reply payload: i32 status (0 or -errno); on success, per op:
 *   STAT       attr
 *   READDIR    u32 count, count x (str name, attr), u64 next (0: no more)
 *   OPEN       u64 handle, attr
 *   READ       str data (short at end of file)
 *   PREAD      attr (of the file as read), str data
 *   WRITE      u32 written
 *   STATFS     u64 bsize, blocks, bfree, bavail, files, ffree, u32 namemax
 *   others     nothing
 * Strings are u32 length + bytes.
 *
 * OPEN, READ and PREAD serve regular files only. PREAD needs no handle, so
 * read-only access keeps no state on the worker and survives reconnects.
 * WATCH creates the folder (and missing parents, mode 0755) when it does
 * not exist yet, so a route can be watched before its job has started;
 * FEVENTs for it follow until UNWATCH or the link ends. A malformed
 * request is answered with -EPROTO; the link stays up.
 *
 * PUSH watches the folder like WATCH (without sending FEVENTs for it, unless
 * WATCH asked for them too) and pushes the contents of its files as they
 * are written: see CPX_MSG_FPUSH. UNWATCH ends both.
 *
 * RMTREE removes a folder with everything below it (never following a
 * symlink; never the root itself): a session folder PMS deleted while the
 * worker could not be reached. An agent that predates it answers -EPROTO.
 *
 * Changes from the first draft (both ends are in this tree): READDIR pages
 * with a cookie, PREAD and CPX_FEV_OVERFLOW were added; then PUSH, FPUSH,
 * and the file identity at the end of FEVENTs; then RMTREE.
 */
#define CPX_PATH_MAX 4096
#define CPX_FREAD_MAX (512 * 1024)
#define CPX_RENAME_NOREPLACE 0x1

enum cpx_fop {
	CPX_FOP_STAT = 1,
	CPX_FOP_READDIR,
	CPX_FOP_OPEN,
	CPX_FOP_READ,
	CPX_FOP_WRITE,
	CPX_FOP_CLOSE,
	CPX_FOP_MKDIR,
	CPX_FOP_UNLINK,
	CPX_FOP_RMDIR,
	CPX_FOP_RENAME,
	CPX_FOP_TRUNCATE,
	CPX_FOP_CHMOD,
	CPX_FOP_UTIMENS,
	CPX_FOP_STATFS,
	CPX_FOP_WATCH,
	CPX_FOP_UNWATCH,
	CPX_FOP_PREAD,
	CPX_FOP_PUSH,
	CPX_FOP_RMTREE,		/* the folder and everything below it */
	CPX_FOP_MAX_
};

/* Open flags on the wire, independent of any host's O_* values. */
#define CPX_O_RDONLY 0x00
#define CPX_O_WRONLY 0x01
#define CPX_O_RDWR 0x02
#define CPX_O_ACCMODE 0x03
#define CPX_O_CREAT 0x04
#define CPX_O_EXCL 0x08
#define CPX_O_TRUNC 0x10
#define CPX_O_APPEND 0x20
#define CPX_O_ALL_ 0x3f

struct cpx_attr {
	uint32_t mode;		/* S_IFMT type bits and permissions */
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint64_t size;
	uint64_t blocks;	/* 512-byte blocks */
	int64_t atime_s, mtime_s, ctime_s;
	uint32_t atime_ns, mtime_ns, ctime_ns;
};

struct cpx_statfs {
	uint64_t bsize, blocks, bfree, bavail, files, ffree;
	uint32_t namemax;
};

/*
 * Events for watched folders (agent -> fuse, frame id 0). A file is
 * "complete" when it was closed after writing or renamed into place: the
 * fuse side may fetch it ahead. CREATED and COMPLETE carry the file's
 * attributes and, after them, its identity (u64 dev, u64 ino: the key of
 * its pushed contents); the others carry zeros. A parser accepts events
 * without the identity too.
 */
enum cpx_fevent {
	CPX_FEV_CREATED = 1,	/* a new name appeared (may still be written) */
	CPX_FEV_COMPLETE,	/* closed after writing, or renamed into place */
	CPX_FEV_REMOVED,	/* a name disappeared (deleted or renamed away) */
	CPX_FEV_DIR_GONE,	/* the watched folder itself was removed */
	CPX_FEV_OVERFLOW,	/* events were lost: path (a watched folder)
				   must be revalidated as a whole */
};

/*
 * Pushed contents (CPX_MSG_FPUSH, agent -> fuse, frame id 0). In a folder
 * with PUSH share k of n, the agent sends block i (CPX_PUSH_BLOCK bytes at
 * i * CPX_PUSH_BLOCK; shorter only at the end of the file) of every regular
 * file written there when i % n == k: whole blocks while the file grows,
 * the rest once it is complete. Files are keyed by (dev, ino), which a
 * rename keeps. Payload: u8 kind, u64 dev, u64 ino, then per kind:
 *   DATA   u64 offset, str bytes   the block as read now (may change again)
 *   DONE   attr                    this share's blocks, as last sent, are
 *                                  the file's contents in that version
 *                                  (size and mtime); blocks past its end
 *                                  mean nothing
 *   DROP   -                       forget what was sent (deleted, too
 *                                  large, unreadable, or never pushed)
 * When a file of the folder completes, each pushing agent sends DONE or
 * DROP for it, the one that also sends FEVENTs before its COMPLETE event,
 * so the fuse side knows at that event what its own connection delivered.
 * A block sent again after DONE undoes that DONE.
 */
#define CPX_PUSH_BLOCK (128 * 1024)
#define CPX_PUSH_SHARES_MAX 16

enum cpx_push_kind {
	CPX_PUSH_DATA = 1,
	CPX_PUSH_DONE,
	CPX_PUSH_DROP,
};

struct cpx_push {
	uint8_t kind;
	uint64_t dev, ino;
	uint64_t offset;	/* DATA */
	const uint8_t *data;	/* DATA: points into the frame */
	size_t len;
	struct cpx_attr attr;	/* DONE */
};

struct cpx_fevent_msg {
	uint8_t kind;
	char *path;		/* owned: free it */
	struct cpx_attr attr;
	uint64_t dev, ino;	/* 0 when not sent */
};

struct cpx_freq {
	uint8_t op;
	const char *path;	/* points into the frame; NUL-terminated copy */
	const char *path2;	/* RENAME target */
	uint64_t handle;
	uint64_t offset;	/* READ, PREAD, WRITE offset; READDIR cookie */
	uint64_t size;		/* READ size, TRUNCATE size */
	uint32_t flags;
	uint32_t mode;
	const uint8_t *data;	/* WRITE */
	size_t datalen;
	int64_t atime_s, mtime_s;
	uint32_t atime_ns, mtime_ns;
	char *buf_;		/* owns path/path2 */
};

/* fileproto.c */

struct stat;

const char *cpx_fop_name(int op);
void cpx_attr_put(struct cpx_buf *b, const struct cpx_attr *a);
void cpx_attr_get(struct cpx_reader *r, struct cpx_attr *a);
void cpx_attr_from_stat(struct cpx_attr *a, const struct stat *st);
void cpx_attr_to_stat(const struct cpx_attr *a, struct stat *st);
void cpx_statfs_put(struct cpx_buf *b, const struct cpx_statfs *s);
void cpx_statfs_get(struct cpx_reader *r, struct cpx_statfs *s);
void cpx_freq_put(struct cpx_buf *b, const struct cpx_freq *q);
int cpx_freq_parse(const uint8_t *p, size_t n, struct cpx_freq *q);
void cpx_freq_free(struct cpx_freq *q);
void cpx_fevent_put(struct cpx_buf *b, uint8_t kind, const char *path,
    const struct cpx_attr *a);
void cpx_fevent_put_file(struct cpx_buf *b, uint8_t kind, const char *path,
    const struct cpx_attr *a, uint64_t dev, uint64_t ino);
int cpx_fevent_parse(const uint8_t *p, size_t n, uint8_t *kind, char **path,
    struct cpx_attr *a);
int cpx_fevent_parse_msg(const uint8_t *p, size_t n, struct cpx_fevent_msg *m);
void cpx_push_put_head(struct cpx_buf *b, uint8_t kind, uint64_t dev,
    uint64_t ino);
int cpx_push_parse(const uint8_t *p, size_t n, struct cpx_push *m);
int cpx_flags_to_open(uint32_t cpx_flags);
uint32_t cpx_flags_from_open(int oflags);

/*
 * Opens `path` (relative, "" for dirfd itself) beneath dirfd with openat2:
 * never outside it, never through /proc magic links, and with `nosymlinks`
 * through no symlink at all. Returns an fd or a negative errno (-EXDEV for
 * an escape attempt).
 */
int cpx_open_beneath(int dirfd, const char *path, int flags, unsigned mode,
    int nosymlinks);
/* Splits "a/b/c" into a new "a/b" (or "" at top level) and a pointer to "c". */
char *cpx_path_split(const char *path, const char **name);

/*
 * Codec sets. PMS's transcoder loads its codecs from FFMPEG_EXTERNAL_LIBS,
 * a folder named "<version>-linux-<cpu>[-<variant>]" (e.g.
 * "8bf330d-2818-linux-x86_64-standard"); a set is that folder's contents.
 * A worker that lacks the job's set sends SET_WANT {"kind": "codecs",
 * "name", "data": true}; the client checks the name against its own
 * FFMPEG_EXTERNAL_LIBS (it serves nothing else) and answers, per entry in
 * order: SET_FILE, then for a regular file its bytes as SET_DATA frames
 * and its SHA-256 as read (SET_SUM); then SET_END. "data": false asks for
 * the SET_FILE entries only (names for a download from another source).
 * An error ends the stream with SET_END {"error"}.
 *
 * SET_FILE payload: u8 type (CPX_SET_DIR, CPX_SET_REG), u32 mode (the
 * permission bits), u64 size (0 for a folder), str path (relative, clean,
 * at most CPX_SET_DEPTH components). Folders come before what they hold.
 */
#define CPX_SET_DIR 1
#define CPX_SET_REG 2
#define CPX_SET_MAX_FILES 4096
#define CPX_SET_MAX_BYTES (2ULL * 1024 * 1024 * 1024)
#define CPX_SET_DEPTH 8
#define CPX_SET_NAME_MAX 128

struct cpx_set_entry {
	uint8_t type;
	uint32_t mode;
	uint64_t size;
	char *path;
};

/* A set's name taken apart: "<version>-linux-<cpu>[-<variant>]". */
struct cpx_codec_set {
	char *name;
	char *version;		/* "8bf330d-2818" */
	char *cpu;		/* "x86_64"; NULL when the name has no arch */
	char *variant;		/* "standard" or NULL */
};

/* codecset.c */

int cpx_set_name_valid(const char *name);
int cpx_cpu_name_valid(const char *cpu);
int cpx_codec_set_parse(const char *name, struct cpx_codec_set *s);
void cpx_codec_set_free(struct cpx_codec_set *s);
char *cpx_codec_set_for_cpu(const struct cpx_codec_set *s, const char *cpu);
const char *cpx_codec_cpu(void);
char *cpx_codec_libs_dir(const char *env_value);
char *cpx_codec_libs_value(const char *dir);
void cpx_set_entry_put(struct cpx_buf *b, const struct cpx_set_entry *e);
int cpx_set_entry_parse(const uint8_t *p, size_t n, struct cpx_set_entry *e);
char *cpx_set_want_encode(const char *name, int data);
int cpx_set_want_parse(const uint8_t *p, size_t n, char **name, int *data);

#endif /* CPX_PROTOCOL_H */
