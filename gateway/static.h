/* The gateway's own web files, built into the binary (gateway/embed_assets.cmake): the demo
 * page, the SockJS client library that /iframe.html and pages can load from the gateway, and
 * the gateway's client library on top of it (web/sockjs-gateway.js). */
#ifndef GW_STATIC_H
#define GW_STATIC_H

#include <stdbool.h>
#include <stddef.h>

struct tp_request;

struct gw_asset {
    const char *name; /* file name under web/ */
    const unsigned char *data;
    size_t len;
};

extern const struct gw_asset gw_assets[];
extern const size_t gw_n_assets;

/* Where the client library is served: the default of --sockjs-url. */
#define GW_STATIC_SOCKJS_PATH "/static/sockjs.min.js"
/* Where web/sockjs-gateway.js is served. */
#define GW_STATIC_LIBRARY_PATH "/static/sockjs-gateway.js"

/* Answers GET /static/sockjs.min.js, /static/sockjs-gateway.js, /demo/ (and /demo, /
 * redirecting there); false when path is none of these. */
bool gw_static_handle(const struct tp_request *req, const char *path, size_t len);

#endif
