#include "static.h"

#include <string.h>

#include "transport.h"

static const struct gw_asset *find_asset(const char *name)
{
    for (size_t i = 0; i < gw_n_assets; i++) {
        if (strcmp(gw_assets[i].name, name) == 0)
            return &gw_assets[i];
    }
    return NULL;
}

static void redirect(const struct tp_request *req, const char *location)
{
    struct tp_head h;
    tp_head_start(&h, req, 301, "Moved Permanently", "text/plain; charset=UTF-8", 0);
    tp_head_add(&h, "Location", "%s", location);
    tp_respond(req, &h, location, strlen(location));
}

bool gw_static_handle(const struct tp_request *req, const char *path, size_t len)
{
#define IS(p) (len == sizeof(p) - 1 && memcmp(path, p, len) == 0)
    bool get = strcmp(req->method, "GET") == 0;
    if (IS(GW_STATIC_SOCKJS_PATH) || IS(GW_STATIC_LIBRARY_PATH)) {
        bool stock = IS(GW_STATIC_SOCKJS_PATH);
        const struct gw_asset *a =
            find_asset(stock ? "sockjs-client-1.6.1.min.js" : "sockjs-gateway.js");
        if (!get || !a)
            return false;
        /* Pages of any origin load them (the cross-origin SockJS setups). The stock client
         * never changes at its URL; the gateway's own library changes with the gateway at the
         * same URL, so browsers revalidate it (a 304 while the ETag, its hash, holds). */
        tp_respond_tagged(req, "application/javascript; charset=UTF-8", a->data, a->len,
                          stock ? TP_LONG_CACHE : TP_REVALIDATE, true);
        return true;
    }
    if (IS("/") || IS("/demo")) {
        if (!get)
            return false;
        redirect(req, "/demo/");
        return true;
    }
    if (IS("/demo/")) {
        const struct gw_asset *a = find_asset("demo.html");
        if (!get || !a)
            return false;
        struct tp_head h;
        tp_head_start(&h, req, 200, "OK", "text/html; charset=UTF-8", TP_NO_CACHE);
        tp_respond(req, &h, a->data, a->len);
        return true;
    }
    return false;
#undef IS
}
