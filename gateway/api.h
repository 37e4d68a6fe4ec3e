/* The publish API: POST /api/publish and GET /api/stats on the internal listener. */
#ifndef GW_API_H
#define GW_API_H

#include "delivery.h"
#include "gateway.h"
#include "pubsub_node.h"

struct gw_api {
    const struct gw_config *cfg;
    struct pubsub_node *node;
    struct gw_delivery *delivery;
    struct gw_server *sockjs; /* for session counts in stats */
    uint64_t requests;
    uint64_t publishes;
    uint64_t rejected; /* 400/413 */
    uint64_t unauthorized;
    uint64_t unavailable; /* 503 */
};

/* The route function of the API's gw_server; route_arg is the gw_api. */
void gw_api_route(struct gw_server *srv, struct tp_request *req, const char *path, size_t path_len);

#endif
