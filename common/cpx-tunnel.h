/* cpx-tunnel.h — TCP connections carried as TUN_* frames over a job's link. */

#ifndef CPX_TUNNEL_H
#define CPX_TUNNEL_H

#include <uv.h>

#include "cpx-link.h"

/*
 * The callback tunnel (see docs/ARCHITECTURE.md): the agent accepts the
 * transcoder's connections on its per-job loopback listener and announces
 * each with TUN_OPEN; the shim connects it to PMS. Both sides then move
 * bytes as TUN_DATA (empty = EOF, i.e. shutdown of the writing side) and
 * end with TUN_CLOSE, sent by whichever side sees its socket finish first.
 * Callbacks are small HTTP requests: there is no flow control per tunnel.
 */
struct cpx_tunnels;

/* tunnel.c */

struct cpx_tunnels *cpx_tunnels_new(uv_loop_t *loop, struct cpx_link *link,
    unsigned max);
/* Agent: accepts one connection from `server` and sends TUN_OPEN. */
int cpx_tunnels_accept(struct cpx_tunnels *t, uv_stream_t *server);
/* Shim: TUN_OPEN arrived; connects tunnel `id` to `addr`. */
void cpx_tunnels_connect(struct cpx_tunnels *t, uint32_t id,
    const struct sockaddr *addr);
/* TUN_DATA and TUN_CLOSE frames from the link. */
void cpx_tunnels_frame(struct cpx_tunnels *t, const struct cpx_frame *f);
size_t cpx_tunnels_count(const struct cpx_tunnels *t);
/* Closes every connection without sending anything; the link may be gone. */
void cpx_tunnels_free(struct cpx_tunnels *t);

#endif /* CPX_TUNNEL_H */
