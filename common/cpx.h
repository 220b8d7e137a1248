/* cpx.h — the common library shared by every ClusterPlex binary. */

#ifndef CPX_H
#define CPX_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CPX_VERSION "0.1.0"

/*
 * Conventions, project-wide:
 *  - functions that can fail return 0 or a negative errno;
 *  - human context for a failure comes back through a `char **cause`
 *    out-parameter, allocated, which the caller frees;
 *  - allocation failures abort (cpx_xmalloc and friends); parsers that
 *    face untrusted input return errors instead of aborting.
 */

#define CPX_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define CPX_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* log.c */

enum cpx_log_level {
	CPX_LOG_ERROR,
	CPX_LOG_WARN,
	CPX_LOG_INFO,
	CPX_LOG_DEBUG,
};

void cpx_log_init(const char *progname);
void cpx_log_set_level(enum cpx_log_level level);
int cpx_log_parse_level(const char *s, enum cpx_log_level *out);
void cpx_log_add_secret(const char *secret);
void cpx_log(enum cpx_log_level level, const char *func, const char *fmt, ...)
    CPX_PRINTF(3, 4);
void cpx_logv(enum cpx_log_level level, const char *func, const char *fmt,
    va_list ap);
_Noreturn void cpx_fatal_impl(const char *func, const char *fmt, ...)
    CPX_PRINTF(2, 3);

#define cpx_error(...) cpx_log(CPX_LOG_ERROR, __func__, __VA_ARGS__)
#define cpx_warn(...) cpx_log(CPX_LOG_WARN, __func__, __VA_ARGS__)
#define cpx_info(...) cpx_log(CPX_LOG_INFO, __func__, __VA_ARGS__)
#define cpx_debug(...) cpx_log(CPX_LOG_DEBUG, __func__, __VA_ARGS__)
#define cpx_fatal(...) cpx_fatal_impl(__func__, __VA_ARGS__)

/* util.c */

void *cpx_xmalloc(size_t n);
void *cpx_xcalloc(size_t n, size_t size);
void *cpx_xrealloc(void *p, size_t n);
char *cpx_xstrdup(const char *s);
char *cpx_xstrndup(const char *s, size_t n);
char *cpx_xprintf(const char *fmt, ...) CPX_PRINTF(1, 2);
void cpx_set_cause(char **cause, const char *fmt, ...) CPX_PRINTF(2, 3);
uint64_t cpx_now_ms(void);
uint64_t cpx_now_us(void);
int cpx_utf8_valid(const uint8_t *s, size_t n);
char *cpx_b64_encode(const uint8_t *data, size_t n);
int cpx_b64_decode(const char *s, size_t slen, uint8_t **out, size_t *outlen);
int cpx_ct_equal(const char *a, const char *b);
int cpx_path_clean_relative(const char *path);
int cpx_path_under(const char *path, const char *root, const char **rest);
char *cpx_escape(const char *s, size_t n, size_t max);
int cpx_set_cloexec(int fd);
int cpx_set_nonblock(int fd);
void cpx_close_pair(int p[2]);
ssize_t cpx_write_all(int fd, const void *buf, size_t n);
int cpx_read_file(const char *path, size_t max, char **out, size_t *outlen);
int cpx_mkdir_p(const char *path, mode_t mode);

/* sha256.c: SHA-256, one-shot (cpx_sha256 in cpx-ssh.h) and incremental. */

struct cpx_sha256_ctx {
	uint32_t h[8];
	uint64_t n;
	uint8_t buf[64];
	size_t fill;
};

void cpx_sha256_init(struct cpx_sha256_ctx *c);
void cpx_sha256_update(struct cpx_sha256_ctx *c, const void *data, size_t n);
void cpx_sha256_final(struct cpx_sha256_ctx *c, uint8_t out[32]);
void cpx_sha256_hex(const uint8_t d[32], char out[65]);

/* buf.c: growable byte buffers and a bounds-checked reader. */

struct cpx_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

void cpx_buf_init(struct cpx_buf *b);
void cpx_buf_free(struct cpx_buf *b);
void cpx_buf_reserve(struct cpx_buf *b, size_t extra);
void cpx_buf_add(struct cpx_buf *b, const void *p, size_t n);
void cpx_buf_add_u8(struct cpx_buf *b, uint8_t v);
void cpx_buf_add_u16(struct cpx_buf *b, uint16_t v);
void cpx_buf_add_u32(struct cpx_buf *b, uint32_t v);
void cpx_buf_set_u32(struct cpx_buf *b, size_t pos, uint32_t v);
void cpx_buf_add_u64(struct cpx_buf *b, uint64_t v);
void cpx_buf_add_str(struct cpx_buf *b, const void *p, size_t n);
void cpx_buf_add_cstr(struct cpx_buf *b, const char *s);
void cpx_buf_printf(struct cpx_buf *b, const char *fmt, ...) CPX_PRINTF(2, 3);
void cpx_buf_consume(struct cpx_buf *b, size_t n);
char *cpx_buf_cstr(struct cpx_buf *b);

/*
 * A reader never reads past its end: an underflow sets `err` and every
 * later call returns zeros, so a decoder checks `err` once at the end.
 */
struct cpx_reader {
	const uint8_t *p;
	size_t left;
	int err;
};

void cpx_reader_init(struct cpx_reader *r, const void *p, size_t n);
uint8_t cpx_rd_u8(struct cpx_reader *r);
uint16_t cpx_rd_u16(struct cpx_reader *r);
uint32_t cpx_rd_u32(struct cpx_reader *r);
uint64_t cpx_rd_u64(struct cpx_reader *r);
const uint8_t *cpx_rd_bytes(struct cpx_reader *r, size_t n);
const uint8_t *cpx_rd_str(struct cpx_reader *r, size_t *n, size_t max);
char *cpx_rd_cstr(struct cpx_reader *r, size_t max);

/* config.c: environment values, validated at start-up. */

char *cpx_env_value(const char *name);
int cpx_parse_bool(const char *value, int *out);
int cpx_env_str(const char *name, const char *def, char **out);
int cpx_env_bool(const char *name, int def, int *out, char **cause);
int cpx_env_long(const char *name, long def, long min, long max, long *out,
    char **cause);
int cpx_env_enum(const char *name, const char *def, const char *const *choices,
    int *out, char **cause);
int cpx_parse_url(const char *url, char **host, int *port, char **path,
    char **cause);
int cpx_parse_hostport(const char *s, int defport, char **host, int *port,
    char **cause);

#endif /* CPX_H */
