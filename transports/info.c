#include "info.h"

#include <string.h>

#include "sockjs_info.h"

void info_greeting_handle(const struct tp_request *req)
{
    struct tp_head h;
    tp_head_start(&h, req, 200, "OK", "text/plain; charset=UTF-8", 0);
    static const char body[] = "Welcome to SockJS!\n";
    tp_respond(req, &h, body, sizeof(body) - 1);
}

void info_handle(const struct tp_request *req)
{
    struct gw_buf body = GW_BUF_INIT;
    sockjs_info_body(sockjs_server_options(req->server), &body);
    struct tp_head h;
    tp_head_start(&h, req, 200, "OK", "application/json; charset=UTF-8", TP_NO_CACHE | TP_CORS);
    tp_respond(req, &h, body.data, body.len);
    gw_buf_release(&body);
}

void info_options_handle(const struct tp_request *req)
{
    struct tp_head h;
    tp_head_start(&h, req, 204, "No Content", NULL, TP_LONG_CACHE | TP_CORS);
    tp_head_add(&h, "Access-Control-Max-Age", "31536000");
    tp_head_add(&h, "Access-Control-Allow-Methods", "OPTIONS, GET");
    tp_respond(req, &h, NULL, 0);
}

void info_iframe_handle(const struct tp_request *req)
{
    struct gw_buf body = GW_BUF_INIT;
    char etag[24];
    sockjs_iframe_body(sockjs_server_options(req->server), &body, etag);
    size_t len;
    const char *match = tp_request_header(req, "If-None-Match", &len);
    struct tp_head h;
    if (match && len == strlen(etag) && memcmp(match, etag, len) == 0) {
        tp_head_start(&h, req, 304, "Not Modified", NULL, TP_LONG_CACHE);
        tp_head_add(&h, "ETag", "%s", etag);
        tp_respond(req, &h, NULL, 0);
    } else {
        tp_head_start(&h, req, 200, "OK", "text/html; charset=UTF-8", TP_LONG_CACHE);
        tp_head_add(&h, "ETag", "%s", etag);
        tp_respond(req, &h, body.data, body.len);
    }
    gw_buf_release(&body);
}
