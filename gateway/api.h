/* The publish API: POST /api/publish and GET /api/stats on the internal listener. */
#ifndef GW_API_H
#define GW_API_H

#include "delivery.h"
#include "gateway.h"
#include "pubsub_node.h"

/* Publishes by result, for /metrics: accepted (202), rejected (400/413), unavailable (503). */
enum { GW_API_ACCEPTED, GW_API_REJECTED, GW_API_UNAVAILABLE, GW_API_RESULTS };
/* Publishes are counted by scope (enum pubsub_scope), or this one when it could not be read. */
#define GW_API_SCOPE_UNKNOWN 3

struct gw_metrics;

struct gw_api {
    const struct gw_config *cfg;
    struct pubsub_node *node;
    struct gw_delivery *delivery;
    struct gw_server *sockjs;   /* for session counts in stats */
    struct gw_metrics *metrics; /* GET /metrics; NULL: 404 */
    uint64_t requests;
    uint64_t publishes;
    uint64_t rejected; /* 400/413 */
    uint64_t unauthorized;
    uint64_t unavailable; /* 503 */
    uint64_t publish_results[GW_API_SCOPE_UNKNOWN + 1][GW_API_RESULTS];
};

/* The route function of the API's gw_server; route_arg is the gw_api. */
void gw_api_route(struct gw_server *srv, struct tp_request *req, const char *path, size_t path_len);

#endif
