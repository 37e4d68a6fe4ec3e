/* A websocket connection carrying one session.
 *
 *   OPEN --session releases us / protocol error / client close--> CLOSING --> (freed)
 *
 * OPEN: frames from the session go out as text messages; client messages go to the session.
 * CLOSING: our close frame is queued and the connection closes once it is written (the gateway
 * then waits briefly for the client's FIN); input is ignored. */
#include "websocket.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "gw_alloc.h"
#include "gw_buf.h"
#include "gw_log.h"
#include "gw_refbuf.h"
#include "pubsub_hub.h"
#include "sockjs_frame.h"
#include "websocket_codec.h"

struct ws_conn {
    struct sockjs_receiver base;
    struct tp_conn *conn;
    struct gw_buf *message; /* a message split over reads or fragments, while it arrives */
    struct ws_decoder decoder;
    bool raw;
    bool closing;
    bool in_feed;  /* inside on_data: freeing is left to it */
    bool released; /* the session let go of us while in_feed */
};

static void ws_write_frame(struct ws_conn *ws, enum ws_opcode op, const void *data, size_t len)
{
    uint8_t header[10];
    size_t n = ws_encode_header(header, op, true, len);
    ws->conn->ops->write(ws->conn, header, n);
    if (len)
        ws->conn->ops->write(ws->conn, data, len);
}

/* A published message's websocket frame is built once and written by reference to every
 * recipient. */
static void ws_write_shared(struct ws_conn *ws, struct pubsub_message *m, enum tp_message_form form,
                            const char *data, size_t len)
{
    struct gw_refbuf *frame = m->forms[form];
    if (!frame) {
        uint8_t header[10];
        size_t n = ws_encode_header(header, WS_OP_TEXT, true, len);
        frame = gw_refbuf_new(n + len);
        memcpy(frame->data, header, n);
        memcpy(frame->data + n, data, len);
        m->forms[form] = frame;
    }
    ws->conn->ops->write_ref(ws->conn, frame, 0, frame->len);
}

static void ws_free(struct ws_conn *ws)
{
    gw_buf_free(&ws->message);
    gw_free(ws);
}

/* Sends a close frame and lets the connection close once it is written. */
static void ws_close(struct ws_conn *ws, uint16_t code, const char *reason)
{
    if (ws->closing)
        return;
    ws->closing = true;
    uint8_t payload[125];
    size_t n = ws_encode_close_payload(payload, code, reason);
    ws_write_frame(ws, WS_OP_CLOSE, payload, n);
    ws->conn->ops->close(ws->conn, true);
}

/* The session is told when we, not it, end the connection. */
static void ws_drop_session(struct ws_conn *ws)
{
    struct sockjs_session *s = ws->base.session;
    if (s)
        sockjs_session_receiver_lost(s, &ws->base);
}

static bool send_frame(struct sockjs_receiver *base, const struct sockjs_frame *f)
{
    struct ws_conn *ws = (struct ws_conn *)base;
    if (ws->closing)
        return true;
    if (!ws->raw) {
        if (f->msg)
            ws_write_shared(ws, f->msg, TP_FORM_WS_FRAME, f->data, f->len);
        else
            ws_write_frame(ws, WS_OP_TEXT, f->data, f->len);
        return true;
    }
    switch (f->type) {
    case SOCKJS_FRAME_RAW:
        if (f->msg)
            ws_write_shared(ws, f->msg, TP_FORM_WS_RAW, f->data, f->len);
        else
            ws_write_frame(ws, WS_OP_TEXT, f->data, f->len);
        break;
    case SOCKJS_FRAME_HEARTBEAT:
        ws_write_frame(ws, WS_OP_PING, NULL, 0);
        break;
    case SOCKJS_FRAME_CLOSE:
        /* Application codes are SockJS's; only some are valid on a websocket. */
        ws_close(ws, ws_close_code_valid((uint16_t)f->close_code) ? (uint16_t)f->close_code
                                                                   : WS_CLOSE_NORMAL,
                 f->close_reason);
        break;
    default:
        break;
    }
    return true;
}

static void release(struct sockjs_receiver *base)
{
    struct ws_conn *ws = (struct ws_conn *)base;
    ws_close(ws, WS_CLOSE_NORMAL, "Normal closure");
    if (ws->in_feed)
        ws->released = true;
    else
        ws_free(ws);
}

static size_t queued(const struct sockjs_receiver *base)
{
    const struct ws_conn *ws = (const struct ws_conn *)base;
    return ws->conn->ops->queued(ws->conn);
}

static const struct sockjs_receiver_ops receiver_ops = {
    .name = "websocket",
    .send_frame = send_frame,
    .release = release,
    .queued = queued,
};

static void deliver(struct ws_conn *ws, const uint8_t *data, size_t len)
{
    struct sockjs_session *s = ws->base.session;
    if (!s)
        return;
    if (ws->raw) {
        sockjs_session_receive_message(s, (const char *)data, len);
        return;
    }
    /* The client library sends nothing for an empty send(); "[]" carries no message. */
    if (len == 0)
        return;
    int rc = sockjs_session_receive_payload(s, (const char *)data, len);
    if (rc != SOCKJS_PAYLOAD_OK) {
        GW_INFO("%s: websocket payload rejected: %s", ws->conn->ops->peer(ws->conn),
                sockjs_payload_error_text(rc));
        ws_drop_session(ws);
        ws_close(ws, WS_CLOSE_INVALID_PAYLOAD, sockjs_payload_error_text(rc));
    }
}

static int on_data(void *arg, enum ws_opcode opcode, const uint8_t *data, size_t len, bool last)
{
    (void)opcode;
    struct ws_conn *ws = arg;
    if (last && !ws->message) {
        deliver(ws, data, len);
    } else {
        if (!ws->message)
            ws->message = gw_buf_new();
        gw_buf_append(ws->message, data, len);
        if (last) {
            deliver(ws, (const uint8_t *)ws->message->data, ws->message->len);
            gw_buf_free(&ws->message);
        }
    }
    return ws->closing ? 1 : 0;
}

static int on_control(void *arg, enum ws_opcode opcode, const uint8_t *data, size_t len)
{
    struct ws_conn *ws = arg;
    if (opcode == WS_OP_PING) {
        ws_write_frame(ws, WS_OP_PONG, data, len);
    } else if (opcode == WS_OP_CLOSE) {
        uint16_t code;
        const uint8_t *reason;
        size_t reason_len;
        ws_parse_close(data, len, &code, &reason, &reason_len);
        GW_DEBUG("%s: websocket closed by client (%u)", ws->conn->ops->peer(ws->conn), code);
        ws_drop_session(ws);
        /* Answer with a plain normal closure: an echoed 1007 or 1011 would read as our own
         * complaint. No code in, no code out (RFC 6455 5.5.1). */
        ws->closing = true;
        uint8_t payload[2] = {WS_CLOSE_NORMAL >> 8, WS_CLOSE_NORMAL & 0xff};
        ws_write_frame(ws, WS_OP_CLOSE, payload, code == WS_CLOSE_NO_STATUS ? 0 : 2);
        ws->conn->ops->close(ws->conn, true);
        return 1;
    }
    return 0;
}

static const struct ws_decoder_callbacks decoder_callbacks = {
    .on_data = on_data,
    .on_control = on_control,
};

static size_t on_conn_data(void *handler, uint8_t *data, size_t len)
{
    struct ws_conn *ws = handler;
    if (ws->closing)
        return len;
    ws->in_feed = true;
    long used = ws_decoder_feed(&ws->decoder, data, len, &decoder_callbacks, ws);
    ws->in_feed = false;
    if (used < 0) {
        GW_INFO("%s: websocket protocol error: %s (close %u)", ws->conn->ops->peer(ws->conn),
                ws_decoder_error(&ws->decoder), ws_decoder_close_code(&ws->decoder));
        ws_drop_session(ws);
        ws_close(ws, ws_decoder_close_code(&ws->decoder), ws_decoder_error(&ws->decoder));
        used = (long)len;
    }
    if (ws->closing) {
        /* The connection no longer calls us: we are done once nobody else holds us. */
        if (ws->released || !ws->base.session)
            ws_free(ws);
        return len;
    }
    return (size_t)used;
}

static void on_conn_close(void *handler)
{
    struct ws_conn *ws = handler;
    ws_drop_session(ws);
    ws_free(ws);
}

static const struct tp_handler_ops handler_ops = {
    .on_data = on_conn_data,
    .on_close = on_conn_close,
};

static void refuse(const struct tp_request *req, const char *why)
{
    GW_INFO("%s: websocket handshake refused: %s", req->conn->ops->peer(req->conn), why);
    struct tp_head h;
    tp_head_start(&h, req, 400, "Bad Request", "text/plain; charset=UTF-8", 0);
    tp_head_add(&h, "Sec-WebSocket-Version", "13");
    tp_respond(req, &h, why, strlen(why));
}

void websocket_handle(const struct tp_request *req, bool raw)
{
    if (strcmp(req->method, "GET") != 0) {
        struct tp_head h;
        tp_head_start(&h, req, 405, "Method Not Allowed", NULL, 0);
        tp_head_add(&h, "Allow", "GET");
        tp_respond(req, &h, NULL, 0);
        return;
    }
    size_t len;
    const char *upgrade = tp_request_header(req, "Upgrade", &len);
    if (!upgrade || len != 9 || strncasecmp(upgrade, "websocket", 9) != 0) {
        refuse(req, "Can \"Upgrade\" only to \"WebSocket\".");
        return;
    }
    if (!tp_header_has_token(req, "Connection", "upgrade")) {
        refuse(req, "\"Connection\" must be \"Upgrade\".");
        return;
    }
    if (tp_request_header(req, "Sec-WebSocket-Key1", NULL)) {
        refuse(req, "Hixie-76 websockets are not supported.");
        return;
    }
    const char *version = tp_request_header(req, "Sec-WebSocket-Version", &len);
    if (!version || len != 2 || memcmp(version, "13", 2) != 0) {
        refuse(req, "Unsupported WebSocket version: only 13 is.");
        return;
    }
    const char *key = tp_request_header(req, "Sec-WebSocket-Key", &len);
    /* A base64-encoded 16-byte nonce is 24 characters. */
    if (!key || len != 24) {
        refuse(req, "Missing or invalid Sec-WebSocket-Key.");
        return;
    }
    char accept[29];
    ws_accept_key(key, len, accept);
    static const char head_fmt[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                   "Upgrade: websocket\r\n"
                                   "Connection: Upgrade\r\n"
                                   "Sec-WebSocket-Accept: %s\r\n\r\n";
    char head[sizeof(head_fmt) + 32];
    int n = snprintf(head, sizeof(head), head_fmt, accept);
    struct tp_conn *c = req->conn;
    c->ops->write(c, head, (size_t)n);

    struct ws_conn *ws = gw_calloc(1, sizeof(*ws));
    ws->base.ops = &receiver_ops;
    ws->conn = c;
    ws->raw = raw;
    ws_decoder_init(&ws->decoder, req->max_message);
    /* The upgrade frees the request; the application still wants its query when it opens. */
    char *query = req->query ? gw_strndup(req->query, req->query_len) : NULL;
    struct sockjs_open_info info = {.query = query, .query_len = req->query_len};
    struct sockjs_server *server = req->server;
    c->ops->set_handler(c, &handler_ops, ws);
    c->ops->upgrade(c);
    sockjs_session_new_attached(server, &ws->base, raw, &info);
    gw_free(query);
}
