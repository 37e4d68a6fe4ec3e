#include "jsonp.h"

#include <string.h>
#include <strings.h>

#include "gw_alloc.h"
#include "gw_error.h"
#include "gw_log.h"
#include "gw_url.h"
#include "http_receiver.h"
#include "sockjs_frame.h"

/* An empty JS comment leads the call, as the reference server writes it: it keeps a response
 * from starting with bytes an attacker chose (the callback name), against content sniffing. */
static void encode(const struct http_receiver *r, const char *frame, size_t len, struct gw_buf *out)
{
    gw_buf_append(out, "/**/", 4);
    gw_buf_append_str(out, r->callback);
    gw_buf_append(out, "(", 1);
    sockjs_quote(out, frame, len);
    gw_buf_append(out, ");\r\n", 4);
}

static const struct http_receiver_kind jsonp_kind = {
    .name = "jsonp",
    .transport = SOCKJS_TRANSPORT_JSONP,
    .content_type = "application/javascript; charset=UTF-8",
    .extra_header = "X-Content-Type-Options",
    .extra_value = "nosniff",
    .streaming = false,
    .encode = encode,
};

void jsonp_polling_handle(const struct tp_request *req, const char *session_id, size_t id_len)
{
    char callback[HTTP_CALLBACK_MAX + 1];
    if (http_receiver_callback(req, callback) == 0)
        http_receiver_handle(req, &jsonp_kind, session_id, id_len, callback);
}

static bool is_form(const struct tp_request *req)
{
    size_t len;
    const char *type = tp_request_header(req, "Content-Type", &len);
    static const char form[] = "application/x-www-form-urlencoded";
    return type && len >= sizeof(form) - 1 && strncasecmp(type, form, sizeof(form) - 1) == 0;
}

void jsonp_send_handle(const struct tp_request *req, const char *session_id, size_t id_len)
{
    struct sockjs_session *s;
    if (!tp_session_access(req, session_id, id_len, false, TP_COOKIE, &s))
        return;
    const char *payload = req->body;
    size_t payload_len = req->body_len;
    char *decoded = NULL;
    if (is_form(req)) {
        /* d=<url-encoded JSON array>; the decoded text is never longer than the body. */
        decoded = gw_malloc(req->body_len + 1);
        long n = gw_query_param(req->body, req->body_len, "d", decoded, req->body_len + 1);
        payload = decoded;
        payload_len = n > 0 ? (size_t)n : 0;
    }
    int rc = sockjs_session_receive_payload(s, payload, payload_len);
    gw_free(decoded);
    if (rc != GW_OK) {
        GW_INFO("%s: jsonp_send rejected: %s", tp_conn_peer(req->conn),
                sockjs_payload_error_text(rc));
        tp_respond_text(req, 500, "Internal Server Error", TP_COOKIE,
                        sockjs_payload_error_text(rc));
        return;
    }
    tp_respond_text(req, 200, "OK", TP_COOKIE, "ok");
}
