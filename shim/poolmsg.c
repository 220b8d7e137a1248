/* poolmsg.c — the pool's side of POOL_OPEN, from a local but untrusted peer. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "shim.h"

/*
 * POOL_OPEN is the endpoint as JSON (cpx_endpoint_to_json) plus
 * "service". *key names the warm session it may share: the same user,
 * address and pinned host key. Caller frees *ep and *key.
 */
int
shim_pool_parse_open(const uint8_t *p, size_t n, struct cpx_endpoint *ep,
    char **key, char **cause)
{
	cJSON *obj = cJSON_ParseWithLength((const char *)p, n);
	int error = -EINVAL;

	memset(ep, 0, sizeof *ep);
	*key = NULL;
	if (!cJSON_IsObject(obj)) {
		cpx_set_cause(cause, "POOL_OPEN is not a JSON object");
		goto out;
	}
	if (cpx_endpoint_from_json(obj, ep, cause) != 0)
		goto out;
	if (*ep->host_key == '\0' || strlen(ep->host_key) > 16384 ||
	    strlen(ep->host) > 255 || strlen(ep->user) > 255) {
		cpx_set_cause(cause, "POOL_OPEN needs a pinned host key and a "
		    "sane host and user");
		cpx_endpoint_free(ep);
		goto out;
	}
	*key = cpx_xprintf("%s@%s:%d %s", ep->user, ep->host, ep->port,
	    ep->host_key);
	error = 0;
out:
	cJSON_Delete(obj);
	return error;
}

/* An SSH failure status as the ERROR code a shim maps to its exit code. */
const char *
shim_pool_error_code(int status)
{
	switch (status) {
	case -EKEYREJECTED:
		return CPX_ERR_HOSTKEY;
	case -EACCES:
	case -ENOKEY:
		return CPX_ERR_AUTH;
	default:
		return CPX_ERR_CONNECT;
	}
}
