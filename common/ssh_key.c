/* ssh_key.c — keys: fingerprints, the pinned host key check, our key pair. */

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ssh_private.h"

#define KEY_FILE_MAX (64 * 1024)

/*
 * SHA-256 as specified in FIPS 180-4, for fingerprints in log lines and
 * status pages: libssh2 only hashes the key of a live session, and the
 * pinned key has to be shown before any session exists.
 */
static const uint32_t sha_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void
sha256_block(uint32_t h[8], const uint8_t *p)
{
	uint32_t w[64], v[8], t1, t2;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		    (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (i = 16; i < 64; i++)
		w[i] = w[i - 16] + (ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^
		    (w[i - 15] >> 3)) + w[i - 7] + (ROR(w[i - 2], 17) ^
		    ROR(w[i - 2], 19) ^ (w[i - 2] >> 10));
	memcpy(v, h, sizeof v);
	for (i = 0; i < 64; i++) {
		t1 = v[7] + (ROR(v[4], 6) ^ ROR(v[4], 11) ^ ROR(v[4], 25)) +
		    ((v[4] & v[5]) ^ (~v[4] & v[6])) + sha_k[i] + w[i];
		t2 = (ROR(v[0], 2) ^ ROR(v[0], 13) ^ ROR(v[0], 22)) +
		    ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
		memmove(v + 1, v, 7 * sizeof v[0]);
		v[4] += t1;
		v[0] = t1 + t2;
	}
	for (i = 0; i < 8; i++)
		h[i] += v[i];
}

void
cpx_sha256(const void *data, size_t n, uint8_t out[32])
{
	uint32_t h[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
	const uint8_t *p = data;
	uint8_t tail[128];
	size_t left = n, tlen;
	uint64_t bits = (uint64_t)n * 8;
	int i;

	for (; left >= 64; left -= 64, p += 64)
		sha256_block(h, p);
	memset(tail, 0, sizeof tail);
	memcpy(tail, p, left);
	tail[left] = 0x80;
	tlen = left + 1 + 8 <= 64 ? 64 : 128;
	for (i = 0; i < 8; i++)
		tail[tlen - 1 - i] = (uint8_t)(bits >> (8 * i));
	sha256_block(h, tail);
	if (tlen == 128)
		sha256_block(h, tail + 64);
	for (i = 0; i < 32; i++)
		out[i] = (uint8_t)(h[i / 4] >> (24 - 8 * (i % 4)));
}

/*
 * "ssh-ed25519 AAAA... comment" → the decoded second field. The blob
 * must name the same key type as the first field.
 */
int
cpx_ssh_key_blob(const char *line, uint8_t **blob, size_t *len)
{
	const char *type, *b64;
	size_t tlen, blen;
	struct cpx_reader r;
	const uint8_t *inner;
	size_t ilen;

	*blob = NULL;
	type = line;
	while (isspace((unsigned char)*type))
		type++;
	tlen = strcspn(type, " \t");
	b64 = type + tlen;
	while (*b64 == ' ' || *b64 == '\t')
		b64++;
	blen = strcspn(b64, " \t\r\n");
	if (tlen == 0 || blen == 0 ||
	    cpx_b64_decode(b64, blen, blob, len) != 0)
		goto bad;
	cpx_reader_init(&r, *blob, *len);
	inner = cpx_rd_str(&r, &ilen, 64);
	if (r.err || ilen != tlen || memcmp(inner, type, tlen) != 0)
		goto bad;
	return 0;
bad:
	free(*blob);
	*blob = NULL;
	return -EINVAL;
}

/* "SHA256:<base64 without padding>", like ssh-keygen -l; NULL if unparsable. */
char *
cpx_ssh_fingerprint(const char *pubkey_line)
{
	uint8_t *blob, digest[32];
	size_t len;
	char *b64, *out;

	if (pubkey_line == NULL || cpx_ssh_key_blob(pubkey_line, &blob,
	    &len) != 0)
		return NULL;
	cpx_sha256(blob, len, digest);
	free(blob);
	b64 = cpx_b64_encode(digest, sizeof digest);
	b64[strcspn(b64, "=")] = '\0';
	out = cpx_xprintf("SHA256:%s", b64);
	free(b64);
	return out;
}

static char *
blob_fingerprint(const void *blob, size_t len)
{
	uint8_t digest[32];
	char *b64, *out;

	cpx_sha256(blob, len, digest);
	b64 = cpx_b64_encode(digest, sizeof digest);
	b64[strcspn(b64, "=")] = '\0';
	out = cpx_xprintf("SHA256:%s", b64);
	free(b64);
	return out;
}

static int
check_pinned(struct cpx_ssh_conn *c, const char *key, size_t len)
{
	uint8_t *pinned = NULL;
	size_t plen;
	char *got, *want;
	int error = 0;

	if (cpx_ssh_key_blob(c->ep.host_key, &pinned, &plen) != 0) {
		ssh_fail(c, -EKEYREJECTED, "pinned host key of %s is not an "
		    "OpenSSH public key line", c->ep.name);
		return -EKEYREJECTED;
	}
	if (plen != len || memcmp(pinned, key, len) != 0) {
		got = blob_fingerprint(key, len);
		want = blob_fingerprint(pinned, plen);
		ssh_fail(c, -EKEYREJECTED, "host key mismatch for %s (%s:%d): "
		    "server presented %s, pinned %s", c->ep.name, c->ep.host,
		    c->ep.port, got, want);
		free(got);
		free(want);
		error = -EKEYREJECTED;
	}
	free(pinned);
	return error;
}

static int
check_known_hosts(struct cpx_ssh_conn *c, const char *key, size_t len)
{
	LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(c->session);
	int rc = LIBSSH2_KNOWNHOST_CHECK_FAILURE;

	if (kh != NULL && libssh2_knownhost_readfile(kh, c->known_hosts,
	    LIBSSH2_KNOWNHOST_FILE_OPENSSH) >= 0)
		rc = libssh2_knownhost_checkp(kh, c->ep.host, c->ep.port, key,
		    len, LIBSSH2_KNOWNHOST_TYPE_PLAIN |
		    LIBSSH2_KNOWNHOST_KEYENC_RAW, NULL);
	if (kh != NULL)
		libssh2_knownhost_free(kh);
	if (rc == LIBSSH2_KNOWNHOST_CHECK_MATCH)
		return 0;
	ssh_fail(c, -EKEYREJECTED, "host key of %s (%s:%d) %s %s", c->ep.name,
	    c->ep.host, c->ep.port,
	    rc == LIBSSH2_KNOWNHOST_CHECK_MISMATCH ? "does not match" :
	    rc == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND ? "is not listed in" :
	    "cannot be checked against", c->known_hosts);
	return -EKEYREJECTED;
}

/*
 * The pinned key from the registry, and the known_hosts file when one is
 * configured, must both accept the server. Neither configured: refused,
 * never trusted on first use.
 */
int
ssh_check_host_key(struct cpx_ssh_conn *c)
{
	const char *key;
	size_t len;
	int type, pinned = c->ep.host_key != NULL && *c->ep.host_key != '\0';

	key = libssh2_session_hostkey(c->session, &len, &type);
	if (key == NULL) {
		ssh_fail(c, -EPROTO, "%s sent no host key", c->ep.name);
		return -EPROTO;
	}
	if (!pinned && c->known_hosts == NULL) {
		ssh_fail(c, -EKEYREJECTED, "no pinned host key for %s and no "
		    "known_hosts file: refusing an unverified server", c->ep.name);
		return -EKEYREJECTED;
	}
	if (pinned && check_pinned(c, key, len) != 0)
		return -EKEYREJECTED;
	if (c->known_hosts != NULL && check_known_hosts(c, key, len) != 0)
		return -EKEYREJECTED;
	return 0;
}

/* Reads the key pair once per connection; wiped as soon as auth is over. */
int
ssh_read_keys(struct cpx_ssh_conn *c)
{
	char *pubpath = cpx_xprintf("%s.pub", c->key_path);
	int error;

	error = cpx_read_file(c->key_path, KEY_FILE_MAX, &c->privkey,
	    &c->privkey_len);
	if (error != 0) {
		ssh_fail(c, -ENOKEY, "cannot read SSH key %s: %s", c->key_path,
		    strerror(-error));
	} else if (cpx_read_file(pubpath, KEY_FILE_MAX, &c->pubkey,
	    &c->pubkey_len) != 0) {
		c->pubkey = NULL;	/* libssh2 derives it from the private key */
		c->pubkey_len = 0;
	}
	free(pubpath);
	return error;
}

void
ssh_wipe_keys(struct cpx_ssh_conn *c)
{
	if (c->privkey != NULL)
		explicit_bzero(c->privkey, c->privkey_len);
	free(c->privkey);
	free(c->pubkey);
	c->privkey = c->pubkey = NULL;
}
