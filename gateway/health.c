#include "health.h"

#include <string.h>

#include "gateway.h"
#include "pubsub_node.h"

bool gw_health_handle(const struct gw_health *health, const struct tp_request *req,
                      const char *path, size_t len)
{
#define IS(p) (len == sizeof(p) - 1 && memcmp(path, p, len) == 0)
    bool live = IS("/healthz");
    if (!health || (!live && !IS("/readyz")))
        return false;
#undef IS
    if (strcmp(req->method, "GET") != 0) {
        struct tp_head h;
        tp_head_start(&h, req, 405, "Method Not Allowed", "text/plain; charset=UTF-8", TP_NO_CACHE);
        tp_head_add(&h, "Allow", "GET");
        static const char body[] = "Method Not Allowed\n";
        tp_respond(req, &h, body, sizeof(body) - 1);
        return true;
    }
    const char *reason = NULL;
    if (!live && gw_server_draining(health->sockjs))
        reason = "draining\n";
    else if (!live && !pubsub_node_available(health->node))
        reason = "engine unavailable\n";
    if (reason)
        tp_respond_text(req, 503, "Service Unavailable", TP_NO_CACHE, reason);
    else
        tp_respond_text(req, 200, "OK", TP_NO_CACHE, "ok\n");
    return true;
}
