/* A websocket connection carrying one session.
 *
 *   OPEN --session releases us / protocol error / client close--> CLOSING --> (freed)
 *
 * OPEN: frames from the session go out as text messages; client messages go to the session.
 * CLOSING: our close frame is queued and the connection closes once it is written (the gateway
 * then waits briefly for the client's FIN); input is ignored.
 *
 * With permessage-deflate negotiated (ws_deflate.h) a connection holds one flag more, no zlib
 * state: messages of at least deflate_min_bytes go out compressed (a published message is
 * compressed once, cached on it and shared like its plain frame) and compressed client messages
 * are inflated with the loop-wide stream, limited to the message size limit. */
#include "websocket.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "gw_alloc.h"
#include "gw_buf.h"
#include "gw_error.h"
#include "gw_log.h"
#include "gw_refbuf.h"
#include "gw_slab.h"
#include "gw_utf8.h"
#include "sockjs_frame.h"
#include "websocket_codec.h"
#include "ws_deflate.h"

static struct ws_settings settings;
/* Loop-wide: the one deflate and inflate stream every connection uses, reset per message. */
static struct ws_deflate zlib_state = WS_DEFLATE_INIT;

struct ws_conn {
    struct sockjs_receiver base;
    struct tp_conn *conn;
    struct gw_buf *message; /* a message split over reads or fragments, while it arrives */
    struct ws_decoder decoder;
    /* One byte for all: every session holds these. */
    bool raw : 1;
    bool deflate : 1; /* permessage-deflate negotiated */
    bool closing : 1;
    bool in_feed : 1;    /* inside on_data: freeing is left to it */
    bool released : 1;   /* the session let go of us while in_feed */
    bool going_away : 1; /* the session's close frame was c[1001]: the drain */
};

/* Every websocket connection, packed (gw_slab.h). */
static struct gw_slab ws_slab = GW_SLAB_INIT(sizeof(struct ws_conn));

void websocket_configure(const struct ws_settings *s)
{
    settings = *s;
}

void websocket_cleanup(void)
{
    ws_deflate_cleanup(&zlib_state);
    gw_slab_release(&ws_slab);
}

static void ws_write_frame(struct ws_conn *ws, enum ws_opcode op, const void *data, size_t len)
{
    uint8_t header[10];
    size_t n = ws_encode_header(header, op, true, len);
    tp_conn_write(ws->conn, header, n);
    if (len)
        tp_conn_write(ws->conn, data, len);
}

static bool ws_compresses(const struct ws_conn *ws, size_t len)
{
    return ws->deflate && len >= settings.deflate_min_bytes;
}

/* A text message compressed into one frame (header and payload), at *start in out (which
 * starts empty); or false when compression would not make it smaller (it then goes out plain). */
static bool ws_deflate_frame(const char *data, size_t len, struct gw_buf *out, size_t *start)
{
    /* Compress after room for the longest header, then put the header right before. */
    gw_buf_reserve(out, 10);
    out->len = 10;
    ws_deflate_compress(&zlib_state, data, len, out);
    size_t clen = out->len - 10;
    if (clen >= len)
        return false;
    uint8_t header[10];
    size_t n = ws_encode_header(header, WS_OP_TEXT, true, clen);
    header[0] |= WS_RSV1;
    *start = 10 - n;
    memcpy(out->data + *start, header, n);
    return true;
}

/* A text message written as a copy, compressed if negotiated and worth it. */
static void ws_write_text(struct ws_conn *ws, const char *data, size_t len)
{
    struct gw_buf b = GW_BUF_INIT;
    size_t start;
    if (ws_compresses(ws, len) && ws_deflate_frame(data, len, &b, &start))
        tp_conn_write(ws->conn, b.data + start, b.len - start);
    else
        ws_write_frame(ws, WS_OP_TEXT, data, len);
    gw_buf_release(&b);
}

/* The plain websocket frame of a published message, built once. */
static struct gw_refbuf *ws_plain_form(struct pubsub_message *m, enum tp_message_form form,
                                       const char *data, size_t len)
{
    struct gw_refbuf *frame = sockjs_message_transport_form(m, form);
    if (!frame) {
        uint8_t header[10];
        size_t n = ws_encode_header(header, WS_OP_TEXT, true, len);
        frame = gw_refbuf_new(n + len);
        memcpy(frame->data, header, n);
        memcpy(frame->data + n, data, len);
        sockjs_message_set_transport_form(m, form, frame);
    }
    return frame;
}

/* A published message's websocket frame is built once and written by reference to every
 * recipient; so is its compressed frame (no context takeover: the same bytes are right for
 * every deflate connection). When compression does not pay, the compressed form is the plain
 * frame. */
static void ws_write_shared(struct ws_conn *ws, struct pubsub_message *m,
                            enum tp_message_form plain, const char *data, size_t len)
{
    struct gw_refbuf *frame;
    if (ws_compresses(ws, len)) {
        enum tp_message_form form =
            plain == TP_FORM_WS_RAW ? TP_FORM_WS_DEFLATE_RAW : TP_FORM_WS_DEFLATE_FRAME;
        frame = sockjs_message_transport_form(m, form);
        if (!frame) {
            struct gw_buf b = GW_BUF_INIT;
            size_t start;
            if (ws_deflate_frame(data, len, &b, &start))
                frame = gw_refbuf_copy(b.data + start, b.len - start);
            else
                frame = gw_refbuf_ref(ws_plain_form(m, plain, data, len));
            gw_buf_release(&b);
            sockjs_message_set_transport_form(m, form, frame);
        }
    } else {
        frame = ws_plain_form(m, plain, data, len);
    }
    tp_conn_write_ref(ws->conn, frame, 0, frame->len);
}

static void ws_free(struct ws_conn *ws)
{
    gw_buf_free(&ws->message);
    gw_slab_free(&ws_slab, ws);
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
    tp_conn_close(ws->conn, true);
}

/* The session is told when we, not it, end the connection. */
static void ws_drop_session(struct ws_conn *ws)
{
    struct sockjs_session *s = ws->base.session;
    if (s)
        sockjs_session_receiver_lost(s, &ws->base);
}

/* Ends the connection for a bad client message. */
static void ws_fail(struct ws_conn *ws, uint16_t code, const char *reason)
{
    ws_drop_session(ws);
    ws_close(ws, code, reason);
}

static bool send_frame(struct sockjs_receiver *base, const struct sockjs_frame *f)
{
    struct ws_conn *ws = (struct ws_conn *)base;
    if (ws->closing)
        return true;
    if (!ws->raw) {
        if (f->type == SOCKJS_FRAME_CLOSE && f->close_code == SOCKJS_CLOSE_GOING_AWAY)
            ws->going_away = true;
        if (f->msg)
            ws_write_shared(ws, f->msg, TP_FORM_WS_FRAME, f->data, f->len);
        else
            ws_write_text(ws, f->data, f->len);
        return true;
    }
    switch (f->type) {
    case SOCKJS_FRAME_RAW:
        if (f->msg)
            ws_write_shared(ws, f->msg, TP_FORM_WS_RAW, f->data, f->len);
        else
            ws_write_text(ws, f->data, f->len);
        break;
    case SOCKJS_FRAME_HEARTBEAT:
        ws_write_frame(ws, WS_OP_PING, NULL, 0);
        break;
    case SOCKJS_FRAME_CLOSE:
        /* Application codes are SockJS's; only some are valid on a websocket. */
        ws_close(ws,
                 ws_close_code_valid((uint16_t)f->close_code) ? (uint16_t)f->close_code
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
    if (ws->going_away)
        ws_close(ws, WS_CLOSE_GOING_AWAY, SOCKJS_CLOSE_GOING_AWAY_REASON);
    else
        ws_close(ws, WS_CLOSE_NORMAL, "Normal closure");
    if (ws->in_feed)
        ws->released = true;
    else
        ws_free(ws);
}

static size_t queued(const struct sockjs_receiver *base)
{
    const struct ws_conn *ws = (const struct ws_conn *)base;
    return tp_conn_queued(ws->conn);
}

static const char *peer(const struct sockjs_receiver *base)
{
    const struct ws_conn *ws = (const struct ws_conn *)base;
    return tp_conn_peer(ws->conn);
}

static const struct sockjs_receiver_ops receiver_ops = {
    .name = "websocket",
    .send_frame = send_frame,
    .release = release,
    .queued = queued,
    .peer = peer,
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
    if (rc != GW_OK) {
        GW_INFO("%s: websocket payload rejected: %s", tp_conn_peer(ws->conn),
                sockjs_payload_error_text(rc));
        ws_fail(ws, WS_CLOSE_INVALID_PAYLOAD, sockjs_payload_error_text(rc));
    }
}

/* A complete client message, inflated first when compressed (RFC 7692 7.2.2): the inflated size
 * is held to the message size limit (a decompression bomb gets 1009 having cost at most that),
 * and text is checked for UTF-8 after inflating (1007). */
static void deliver_message(struct ws_conn *ws, enum ws_opcode opcode, const uint8_t *data,
                            size_t len)
{
    if (!ws_decoder_compressed(&ws->decoder)) {
        deliver(ws, data, len);
        return;
    }
    const char *peer = tp_conn_peer(ws->conn);
    uint32_t max = ws->decoder.max_message;
    struct gw_buf b = GW_BUF_INIT;
    int rc = ws_deflate_inflate(&zlib_state, data, len, max ? max : SIZE_MAX, &b);
    if (rc == GW_ELIMIT) {
        GW_INFO("%s: websocket compressed message inflates past %u bytes (close 1009)", peer, max);
        ws_fail(ws, WS_CLOSE_TOO_BIG, "Message too big");
    } else if (rc < 0) {
        GW_INFO("%s: websocket compressed message is not valid deflate data (close 1007)", peer);
        ws_fail(ws, WS_CLOSE_INVALID_PAYLOAD, "Invalid compressed data");
    } else if (opcode == WS_OP_TEXT && !gw_utf8_valid(b.data, b.len)) {
        GW_INFO("%s: websocket compressed text message is not valid UTF-8 (close 1007)", peer);
        ws_fail(ws, WS_CLOSE_INVALID_PAYLOAD, "Invalid UTF-8");
    } else {
        deliver(ws, (const uint8_t *)(b.data ? b.data : ""), b.len);
    }
    gw_buf_release(&b);
}

static int on_data(void *arg, enum ws_opcode opcode, const uint8_t *data, size_t len, bool last)
{
    struct ws_conn *ws = arg;
    if (last && !ws->message) {
        deliver_message(ws, opcode, data, len);
    } else {
        if (!ws->message)
            ws->message = gw_buf_new();
        gw_buf_append(ws->message, data, len);
        if (last) {
            deliver_message(ws, opcode, (const uint8_t *)ws->message->data, ws->message->len);
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
        GW_DEBUG("%s: websocket closed by client (%u)", tp_conn_peer(ws->conn), code);
        ws_drop_session(ws);
        /* Answer with a plain normal closure: an echoed 1007 or 1011 would read as our own
         * complaint. No code in, no code out (RFC 6455 5.5.1). */
        ws->closing = true;
        uint8_t payload[2] = {WS_CLOSE_NORMAL >> 8, WS_CLOSE_NORMAL & 0xff};
        ws_write_frame(ws, WS_OP_CLOSE, payload, code == WS_CLOSE_NO_STATUS ? 0 : 2);
        tp_conn_close(ws->conn, true);
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
        GW_INFO("%s: websocket protocol error: %s (close %u)", tp_conn_peer(ws->conn),
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

static void on_going_away(void *handler)
{
    struct ws_conn *ws = handler;
    if (ws->base.session)
        sockjs_session_close(ws->base.session, SOCKJS_CLOSE_GOING_AWAY,
                             SOCKJS_CLOSE_GOING_AWAY_REASON);
    else if (!ws->closing)
        ws_close(ws, WS_CLOSE_GOING_AWAY, SOCKJS_CLOSE_GOING_AWAY_REASON);
}

static const struct tp_handler_ops handler_ops = {
    .on_data = on_conn_data,
    .on_close = on_conn_close,
    .going_away = on_going_away,
};

/* Whether to answer with permessage-deflate: enabled, and an offer in one of the request's
 * Sec-WebSocket-Extensions headers that we can honour. Declined offers are logged. */
static bool negotiate_deflate(const struct tp_request *req)
{
    if (!settings.deflate)
        return false;
    static const char name[] = "Sec-WebSocket-Extensions";
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct tp_header *h = &req->headers[i];
        if (h->name_len != sizeof(name) - 1 || strncasecmp(h->name, name, h->name_len) != 0)
            continue;
        const char *why = NULL;
        switch (ws_deflate_parse_offers(h->value, h->value_len, &why)) {
        case WS_DEFLATE_ACCEPTED:
            return true;
        case WS_DEFLATE_DECLINED:
        case WS_DEFLATE_MALFORMED:
            GW_DEBUG("%s: permessage-deflate declined: %s: %.*s", tp_conn_peer(req->conn), why,
                     (int)(h->value_len > 200 ? 200 : h->value_len), h->value);
            break;
        case WS_DEFLATE_NOT_OFFERED:
            break;
        }
    }
    return false;
}

static void refuse(const struct tp_request *req, const char *why)
{
    GW_INFO("%s: websocket handshake refused: %s", tp_conn_peer(req->conn), why);
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
    /* Before the upgrade, as for the HTTP transports: the client learns why in plain HTTP. */
    if (!sockjs_server_admits(req->server, tp_conn_peer(req->conn))) {
        tp_respond_crowded(req, 0);
        return;
    }
    char accept[29];
    ws_accept_key(key, len, accept);
    bool deflate = negotiate_deflate(req);
    static const char head_fmt[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                   "Upgrade: websocket\r\n"
                                   "Connection: Upgrade\r\n"
                                   "Sec-WebSocket-Accept: %s\r\n%s\r\n";
    static const char extension_line[] = "Sec-WebSocket-Extensions: " WS_DEFLATE_RESPONSE "\r\n";
    char head[sizeof(head_fmt) + sizeof(extension_line) + 32];
    int n = snprintf(head, sizeof(head), head_fmt, accept, deflate ? extension_line : "");
    struct tp_conn *c = req->conn;
    tp_conn_write(c, head, (size_t)n);

    struct ws_conn *ws = gw_slab_alloc(&ws_slab);
    ws->base.ops = &receiver_ops;
    ws->conn = c;
    ws->raw = raw;
    ws_decoder_init(&ws->decoder, req->max_message);
    ws->deflate = deflate;
    if (deflate)
        ws_decoder_allow_compression(&ws->decoder);
    /* The upgrade frees the request; the application still wants its query when it opens. */
    char buf[SOCKJS_OPEN_INFO_BUF];
    struct sockjs_open_info info;
    char *heap = sockjs_open_info_copy(
        &(struct sockjs_open_info){req->query, req->query_len, SOCKJS_TRANSPORT_WEBSOCKET, NULL},
        buf, &info);
    info.client = tp_conn_peer(c);
    struct sockjs_server *server = req->server;
    tp_conn_set_handler(c, &handler_ops, ws);
    tp_conn_upgrade(c);
    sockjs_session_new_attached(server, &ws->base, raw, &info);
    gw_free(heap);
}
