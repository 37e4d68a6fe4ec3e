#include "xhr.h"

#include <string.h>

#include "gw_error.h"
#include "gw_log.h"
#include "http_receiver.h"
#include "sockjs_frame.h"

static void encode_line(const struct http_receiver *r, const char *frame, size_t len,
                        struct gw_buf *out)
{
    (void)r;
    gw_buf_append(out, frame, len);
    gw_buf_append(out, "\n", 1);
}

/* Old browsers deliver no progress event for an XHR until some bytes arrived. */
static void streaming_prelude(const struct http_receiver *r, struct gw_buf *out)
{
    (void)r;
    char *p = gw_buf_reserve(out, 2049);
    memset(p, 'h', 2048);
    p[2048] = '\n';
    out->len += 2049;
}

static const struct http_receiver_kind xhr_polling_kind = {
    .name = "xhr",
    .transport = SOCKJS_TRANSPORT_XHR_POLLING,
    .content_type = "application/javascript; charset=UTF-8",
    .head_flags = TP_CORS,
    .streaming = false,
    .frame_per_line = true,
    .encode = encode_line,
};

static const struct http_receiver_kind xhr_streaming_kind = {
    .name = "xhr_streaming",
    .transport = SOCKJS_TRANSPORT_XHR_STREAMING,
    .content_type = "application/javascript; charset=UTF-8",
    .head_flags = TP_CORS,
    .streaming = true,
    .frame_per_line = true,
    .prelude = streaming_prelude,
    .encode = encode_line,
};

void xhr_polling_handle(const struct tp_request *req, const char *session_id, size_t id_len)
{
    http_receiver_handle(req, &xhr_polling_kind, session_id, id_len, NULL);
}

void xhr_streaming_handle(const struct tp_request *req, const char *session_id, size_t id_len)
{
    http_receiver_handle(req, &xhr_streaming_kind, session_id, id_len, NULL);
}

void xhr_send_handle(const struct tp_request *req, const char *session_id, size_t id_len)
{
    struct sockjs_session *s;
    if (!tp_session_access(req, session_id, id_len, false, TP_CORS | TP_COOKIE, &s))
        return;
    int rc = sockjs_session_receive_payload(s, req->body, req->body_len);
    if (rc != GW_OK) {
        GW_INFO("%s: xhr_send rejected: %s", tp_conn_peer(req->conn),
                sockjs_payload_error_text(rc));
        tp_respond_text(req, 500, "Internal Server Error", TP_CORS | TP_COOKIE,
                        sockjs_payload_error_text(rc));
        return;
    }
    struct tp_head h;
    tp_head_start(&h, req, 204, "No Content", "text/plain; charset=UTF-8",
                  TP_NO_CACHE | TP_CORS | TP_COOKIE);
    tp_respond(req, &h, NULL, 0);
}

void xhr_options_handle(const struct tp_request *req)
{
    struct tp_head h;
    tp_head_start(&h, req, 204, "No Content", NULL, TP_LONG_CACHE | TP_CORS | TP_COOKIE);
    tp_head_add(&h, "Access-Control-Max-Age", "31536000");
    tp_head_add(&h, "Access-Control-Allow-Methods", "OPTIONS, POST");
    tp_respond(req, &h, NULL, 0);
}
