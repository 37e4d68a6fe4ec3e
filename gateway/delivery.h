/* Scoped delivery: the application behind the gateway's SockJS prefix. It authenticates each
 * session (JWT), subscribes it to its user, client and global channels in the hub, applies the
 * session's event filter, and hands published messages to the session. */
#ifndef GW_DELIVERY_H
#define GW_DELIVERY_H

#include <stdint.h>

#include "config.h"
#include "metrics.h"
#include "pubsub_node.h"
#include "sockjs_session.h"

struct event_base;
struct gw_delivery;

#define GW_CLOSE_KINDS 8

struct gw_delivery_stats {
    uint64_t sessions; /* opened */
    uint64_t authenticated;
    uint64_t auth_failures;
    uint64_t malformed_messages;     /* malformed client messages */
    uint64_t deliveries;             /* messages handed to sessions */
    uint64_t filtered;               /* messages a session's filter held back */
    uint64_t ready;                  /* ready messages sent */
    uint64_t ready_unknown;          /* of those, without positions (no answer in time) */
    uint64_t recovered;              /* scopes asked to recover and recovered */
    uint64_t not_recovered;          /* scopes asked to recover and not recovered */
    uint64_t replayed;               /* missed messages sent after a ready message */
    uint64_t replay_too_large;       /* recoveries refused: the replay would overflow the queue */
    uint64_t open_authenticated;     /* open sessions with a token */
    uint64_t open_anonymous;         /* open sessions with a site and no token */
    uint64_t closes[GW_CLOSE_KINDS]; /* by gw_delivery_close_label() */
    /* From the API accepting a publish to its first frame queued to a session, per (publish,
     * channel) message; only this node's publishes carry the time. */
    struct gw_histogram publish_latency;
};

/* The label of closes[i]: "1001", "1002", "4001", "4002", "4003", "4008", "timeout" (closed
 * without a receiver for the disconnect delay, no close code), "other". */
const char *gw_delivery_close_label(unsigned i);

/* Creates the delivery as the subscriber of node's hub (pubsub_node_set_subscriber). */
struct gw_delivery *gw_delivery_new(struct event_base *base, const struct gw_config *cfg,
                                    struct pubsub_node *node);
/* The SockJS application to serve (sockjs_server_new(..., gw_delivery_app_ops, d)). */
extern const struct sockjs_app_ops gw_delivery_app_ops;
const struct gw_delivery_stats *gw_delivery_stats(const struct gw_delivery *d);
/* Sessions must be gone (their server freed) first; the node is freed after it. */
void gw_delivery_free(struct gw_delivery *d);

#endif
