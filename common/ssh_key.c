/* ssh_key.c — keys: fingerprints, the pinned host key check, our key pair. */

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ssh_private.h"

#define KEY_FILE_MAX (64 * 1024)

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
