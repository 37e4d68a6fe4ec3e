#include "info.h"

#include <stdio.h>
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

/* A path-only sockjs_url (the gateway's own copy by default) becomes absolute with the
 * request's Host: the iframe runs on the gateway's origin, and SockJS wants an absolute URL.
 * Host is used only if it looks like a host, since it ends up inside the page. */
static const char *absolute_url(const struct tp_request *req, const char *url, char *buf,
                                size_t cap)
{
    if (url[0] != '/')
        return url;
    size_t len;
    const char *host = tp_request_header(req, "Host", &len);
    if (!host || len == 0 || len > 255)
        return url;
    for (size_t i = 0; i < len; i++) {
        char c = host[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return url;
    }
    snprintf(buf, cap, "http://%.*s%s", (int)len, host, url);
    return buf;
}

void info_iframe_handle(const struct tp_request *req)
{
    struct gw_buf body = GW_BUF_INIT;
    char url[1024];
    sockjs_iframe_body(
        absolute_url(req, sockjs_server_options(req->server)->sockjs_url, url, sizeof(url)), &body);
    tp_respond_tagged(req, "text/html; charset=UTF-8", body.data, body.len, TP_LONG_CACHE, false);
    gw_buf_release(&body);
}
