#include "http_receiver.h"

#include <stdio.h>
#include <string.h>

#include "gw_alloc.h"
#include "gw_error.h"
#include "gw_log.h"
#include "gw_refbuf.h"
#include "gw_url.h"

/* Frames are encoded here before being written; one loop per process, so one buffer serves
 * every receiver. Released after a large frame so that idle processes keep none. */
static struct gw_buf scratch;
#define SCRATCH_KEEP (64 * 1024)

static void scratch_done(void)
{
    if (scratch.cap > SCRATCH_KEEP)
        gw_buf_release(&scratch);
    else
        scratch.len = 0;
}

static void receiver_free(struct http_receiver *r)
{
    gw_free(r->head);
    gw_free(r);
}

static void on_conn_close(void *handler)
{
    struct http_receiver *r = handler;
    if (r->base.session)
        sockjs_session_receiver_lost(r->base.session, &r->base);
    receiver_free(r);
}

/* The session's close frame ends a poll, or goes out on a stream before its final chunk. */
static void on_going_away(void *handler)
{
    struct http_receiver *r = handler;
    if (r->base.session)
        sockjs_session_close(r->base.session, SOCKJS_CLOSE_GOING_AWAY,
                             SOCKJS_CLOSE_GOING_AWAY_REASON);
}

static const struct tp_handler_ops handler_ops = {
    .on_close = on_conn_close,
    .going_away = on_going_away,
};

static void poll_head(struct http_receiver *r, size_t body_len)
{
    struct tp_conn *c = r->conn;
    char length[64];
    int n = snprintf(length, sizeof(length), "Content-Length: %zu\r\n\r\n", body_len);
    tp_conn_write(c, r->head, r->head_len);
    tp_conn_write(c, length, (size_t)n);
}

static bool send_frame(struct sockjs_receiver *base, const struct sockjs_frame *f)
{
    struct http_receiver *r = (struct http_receiver *)base;
    struct tp_conn *c = r->conn;
    size_t written;
    if (f->msg && r->kind->frame_per_line) {
        struct gw_refbuf *frame = sockjs_message_form(f->msg, SOCKJS_FORM_FRAME);
        written = frame->len + 1;
        if (!r->kind->streaming) {
            poll_head(r, written);
            tp_conn_write_ref(c, frame, 0, frame->len);
            tp_conn_write(c, "\n", 1);
        } else {
            tp_stream_write_ref(&r->stream, frame, "\n", 1);
        }
    } else {
        r->kind->encode(r, f->data, f->len, &scratch);
        written = scratch.len;
        if (!r->kind->streaming) {
            poll_head(r, scratch.len);
            tp_conn_write(c, scratch.data, scratch.len);
        } else {
            tp_stream_write(&r->stream, scratch.data, scratch.len);
        }
        scratch_done();
    }
    if (!r->kind->streaming) {
        tp_conn_end_response(c, r->keep_alive);
        receiver_free(r);
        return false;
    }
    r->sent += written;
    if (r->sent < r->limit)
        return true;
    tp_stream_end(&r->stream);
    receiver_free(r);
    return false;
}

static void release(struct sockjs_receiver *base)
{
    struct http_receiver *r = (struct http_receiver *)base;
    if (r->kind->streaming)
        tp_stream_end(&r->stream);
    else
        tp_conn_close(r->conn, false); /* shutting down: nothing to answer a poll with */
    receiver_free(r);
}

static size_t queued(const struct sockjs_receiver *base)
{
    const struct http_receiver *r = (const struct http_receiver *)base;
    return tp_conn_queued(r->conn);
}

static const char *peer(const struct sockjs_receiver *base)
{
    const struct http_receiver *r = (const struct http_receiver *)base;
    return tp_conn_peer(r->conn);
}

static const struct sockjs_receiver_ops receiver_ops = {
    .name = "http",
    .send_frame = send_frame,
    .release = release,
    .queued = queued,
    .peer = peer,
};

void http_receiver_handle(const struct tp_request *req, const struct http_receiver_kind *kind,
                          const char *session_id, size_t id_len, const char *callback)
{
    /* Refused before anything is written or allocated: a request that may not use the session
     * neither attaches nor changes anything of it. */
    struct sockjs_session *existing;
    if (!tp_session_access(req, session_id, id_len, true, TP_COOKIE | (kind->head_flags & TP_CORS),
                           &existing))
        return;
    size_t cb_len = callback ? strlen(callback) : 0;
    struct http_receiver *r = gw_calloc(1, sizeof(*r) + cb_len + 1);
    r->base.ops = &receiver_ops;
    r->kind = kind;
    r->conn = req->conn;
    if (cb_len)
        memcpy(r->callback, callback, cb_len);
    struct tp_head h;
    tp_head_start(&h, req, 200, "OK", kind->content_type,
                  TP_NO_CACHE | TP_COOKIE | kind->head_flags);
    if (kind->extra_header)
        tp_head_add(&h, kind->extra_header, "%s", kind->extra_value);
    if (kind->streaming) {
        tp_stream_start(&r->stream, req, &h);
        r->limit = sockjs_server_options(req->server)->response_limit;
        if (kind->prelude) {
            kind->prelude(r, &scratch);
            tp_stream_write(&r->stream, scratch.data, scratch.len);
            scratch_done();
        }
    } else {
        /* The frame is not known yet: keep the head and send it with a Content-Length, which
         * proxies and HTTP/1.0 keep-alive handle better than a chunked poll. */
        r->keep_alive = req->keep_alive;
        if (!req->keep_alive)
            tp_head_add(&h, "Connection", "close");
        else if (req->http_minor == 0)
            tp_head_add(&h, "Connection", "keep-alive");
        r->head = gw_memdup(h.buf, h.len);
        r->head_len = h.len;
    }
    tp_conn_set_handler(req->conn, &handler_ops, r);
    struct sockjs_open_info info = {.query = req->query,
                                    .query_len = req->query_len,
                                    .transport = (uint8_t)kind->transport,
                                    .client = tp_conn_peer(req->conn)};
    sockjs_session_attach(req->server, session_id, id_len, &r->base, &info);
}

int http_receiver_callback(const struct tp_request *req, char out[HTTP_CALLBACK_MAX + 1])
{
    long n = req->query
                 ? gw_query_param(req->query, req->query_len, "c", out, HTTP_CALLBACK_MAX + 1)
                 : GW_ENOTFOUND;
    if (n == GW_ENOTFOUND || n == 0) {
        tp_respond_text(req, 500, "Internal Server Error", TP_COOKIE,
                        "\"callback\" parameter required");
        return GW_EINVAL;
    }
    bool valid = n > 0;
    for (long i = 0; valid && i < n; i++) {
        char c = out[i];
        valid = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '.' || c == '-';
    }
    if (!valid) {
        GW_INFO("%s: invalid callback parameter", tp_conn_peer(req->conn));
        tp_respond_text(req, 500, "Internal Server Error", TP_COOKIE,
                        "invalid \"callback\" parameter");
        return GW_EINVAL;
    }
    return 0;
}
