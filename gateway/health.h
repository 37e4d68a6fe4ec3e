/* GET /healthz and /readyz on every listener, for load balancers and orchestrators: no key, no
 * cache. /healthz is 200 while the process answers (also while it drains); /readyz is 200 while
 * the node takes new sessions, 503 with the reason while it drains or its engine (Redis) is
 * unavailable. */
#ifndef GW_HEALTH_H
#define GW_HEALTH_H

#include <stdbool.h>
#include <stddef.h>

struct gw_server;
struct pubsub_node;
struct tp_request;

/* What readiness depends on: the SockJS server (its drain) and the node's engine. */
struct gw_health {
    const struct gw_server *sockjs;
    const struct pubsub_node *node;
};

/* Answers GET /healthz and /readyz; false when path is neither (nothing answered). */
bool gw_health_handle(const struct gw_health *health, const struct tp_request *req,
                      const char *path, size_t len);

#endif
