/* Request routing: prefix, then the SockJS URL scheme below it. The only code that lists the
 * transports. */
#include <string.h>

#include "eventsource.h"
#include "gateway.h"
#include "gw_log.h"
#include "health.h"
#include "htmlfile.h"
#include "info.h"
#include "jsonp.h"
#include "static.h"
#include "websocket.h"
#include "xhr.h"

static bool method_is(const struct tp_request *req, const char *m)
{
    return strcmp(req->method, m) == 0;
}

static void not_found(const struct tp_request *req)
{
    tp_respond_text(req, 404, "Not Found", 0, "Not Found\n");
}

/* "/iframe.html", "/iframe-1.2.3.html": [-.a-z0-9_]* between "iframe" and ".html". */
static bool is_iframe_path(const char *p, size_t len)
{
    if (len < 12 || memcmp(p, "/iframe", 7) != 0 || memcmp(p + len - 5, ".html", 5) != 0)
        return false;
    for (size_t i = 7; i < len - 5; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
            return false;
    }
    return true;
}

/* "/<server>/<session>/<transport>", with valid server and session ids. */
static bool split_session_path(const char *p, size_t len, const char **sid, size_t *sid_len,
                               const char **transport, size_t *t_len)
{
    const char *seg[3];
    size_t seg_len[3];
    size_t n = 0;
    const char *q = p, *end = p + len;
    while (q < end && n < 3) {
        if (*q != '/')
            break;
        q++;
        const char *start = q;
        while (q < end && *q != '/')
            q++;
        seg[n] = start;
        seg_len[n] = (size_t)(q - start);
        n++;
    }
    if (n != 3 || q != end || !sockjs_valid_id(seg[0], seg_len[0]) ||
        !sockjs_valid_id(seg[1], seg_len[1]))
        return false;
    *sid = seg[1];
    *sid_len = seg_len[1];
    *transport = seg[2];
    *t_len = seg_len[2];
    return true;
}

static bool session_path(const char *p, size_t len, const char **sid, size_t *sid_len)
{
    const char *transport;
    size_t t_len;
    return split_session_path(p, len, sid, sid_len, &transport, &t_len);
}

static void route_session(const struct tp_request *req, const char *sid, size_t sid_len,
                          const char *transport, size_t t_len)
{
    bool websocket = sockjs_server_options(req->server)->websocket;
#define IS(name) (t_len == sizeof(name) - 1 && memcmp(transport, name, t_len) == 0)
    if (IS("websocket") && websocket) {
        websocket_handle(req, false);
    } else if (IS("xhr") || IS("xhr_send") || IS("xhr_streaming")) {
        if (method_is(req, "OPTIONS"))
            xhr_options_handle(req);
        else if (!method_is(req, "POST"))
            not_found(req);
        else if (IS("xhr"))
            xhr_polling_handle(req, sid, sid_len);
        else if (IS("xhr_send"))
            xhr_send_handle(req, sid, sid_len);
        else
            xhr_streaming_handle(req, sid, sid_len);
    } else if (IS("eventsource") || IS("htmlfile") || IS("jsonp")) {
        if (!method_is(req, "GET"))
            not_found(req);
        else if (IS("eventsource"))
            eventsource_handle(req, sid, sid_len);
        else if (IS("htmlfile"))
            htmlfile_handle(req, sid, sid_len);
        else
            jsonp_polling_handle(req, sid, sid_len);
    } else if (IS("jsonp_send")) {
        if (method_is(req, "POST"))
            jsonp_send_handle(req, sid, sid_len);
        else
            not_found(req);
    } else {
        not_found(req);
    }
#undef IS
}

/* While draining, nothing new starts: retried elsewhere (or here, after the restart). The
 * connection closes after the answer. */
static void refuse_draining(struct gw_server *srv, const struct tp_request *req)
{
    srv->accept_stats.refused_drain++;
    struct tp_head h;
    tp_head_start(&h, req, 503, "Service Unavailable", "text/plain; charset=UTF-8", TP_NO_CACHE);
    tp_head_add(&h, "Retry-After", "1");
    static const char body[] = "Server shutting down\n";
    tp_respond(req, &h, body, sizeof(body) - 1);
}

static void route_prefix(struct gw_server *srv, struct tp_request *req, const char *p, size_t len)
{
    if (gw_server_draining(srv)) {
        /* Only a request for a live session goes on: it gets the session's close frame. */
        const char *sid;
        size_t sid_len;
        if (!session_path(p, len, &sid, &sid_len) ||
            !sockjs_session_find(req->server, sid, sid_len)) {
            refuse_draining(srv, req);
            return;
        }
    }
    bool get = method_is(req, "GET");
    if (len == 0 || (len == 1 && p[0] == '/')) {
        if (get)
            info_greeting_handle(req);
        else
            not_found(req);
        return;
    }
    if (len == 5 && memcmp(p, "/info", 5) == 0) {
        if (get)
            info_handle(req);
        else if (method_is(req, "OPTIONS"))
            info_options_handle(req);
        else
            not_found(req);
        return;
    }
    if (is_iframe_path(p, len)) {
        if (get)
            info_iframe_handle(req);
        else
            not_found(req);
        return;
    }
    if (len == 10 && memcmp(p, "/websocket", 10) == 0) {
        if (sockjs_server_options(req->server)->websocket)
            websocket_handle(req, true);
        else
            not_found(req);
        return;
    }
    const char *sid, *transport;
    size_t sid_len, t_len;
    if (!split_session_path(p, len, &sid, &sid_len, &transport, &t_len)) {
        not_found(req);
        return;
    }
    route_session(req, sid, sid_len, transport, t_len);
}

void gw_route_request(struct gw_server *srv, struct tp_request *req, const char *path,
                      size_t path_len)
{
    /* A draining server closes each connection after its answer: the answer says so. */
    if (gw_server_draining(srv))
        req->keep_alive = false;
    /* Before the drain's refusal: a load balancer keeps asking while the node drains. */
    if (gw_health_handle(srv->health, req, path, path_len))
        return;
    for (size_t i = 0; i < srv->n_routes; i++) {
        const struct gw_route *r = &srv->routes[i];
        if (path_len >= r->prefix_len && memcmp(path, r->prefix, r->prefix_len) == 0 &&
            (path_len == r->prefix_len || path[r->prefix_len] == '/')) {
            req->server = r->server;
            req->path = path + r->prefix_len;
            req->path_len = path_len - r->prefix_len;
            route_prefix(srv, req, req->path, req->path_len);
            return;
        }
    }
    if (gw_server_draining(srv))
        refuse_draining(srv, req);
    else if (!gw_static_handle(req, path, path_len))
        not_found(req);
}
