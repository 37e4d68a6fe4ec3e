/* What a transport sees of HTTP: the request view that the gateway hands over, and the
 * connection interface that the gateway implements (declared here, implemented above). */
#ifndef TRANSPORT_H
#define TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sockjs_session.h"

struct gw_refbuf;
struct tp_conn;

/* Encodings that transports cache on a published message, in the slots the SockJS layer hands
 * them (sockjs_message_transport_form). */
enum tp_message_form {
    TP_FORM_WS_FRAME = 0,     /* websocket text frame of "a[...]" */
    TP_FORM_WS_RAW,           /* websocket text frame of the JSON */
    TP_FORM_WS_DEFLATE_FRAME, /* the same two compressed (permessage-deflate), when smaller */
    TP_FORM_WS_DEFLATE_RAW,
    TP_FORM_END,
};
_Static_assert(TP_FORM_END <= SOCKJS_TRANSPORT_FORMS, "too few transport slots on a message");

/* Who owns a connection after a request was handed over: a long-polling request, a stream or
 * an upgraded websocket. */
struct tp_handler_ops {
    /* Upgraded connections only: bytes read from the socket (modifiable in place). Returns the
     * bytes consumed; the rest is kept (bounded) and presented again with more input. */
    size_t (*on_data)(void *handler, uint8_t *data, size_t len);
    /* Everything queued has been written to the socket (only after tp_conn_want_drain). */
    void (*on_drain)(void *handler);
    /* The connection is going away (peer closed, error, timeout, shutdown). The connection is
     * freed after this returns; the handler must not use it again. Not called for a close
     * the handler asked for itself. */
    void (*on_close)(void *handler);
    /* The server is draining: end what the handler carries with a going-away close (SockJS
     * c[1001,"Going away"], then a websocket close 1001 or a stream's final chunk). May
     * close the connection. */
    void (*going_away)(void *handler);
};

/* A connection as the gateway's HTTP server implements it. Call it through the tp_conn_*
 * wrappers below, which carry the contracts. */
struct tp_conn_ops {
    void (*write)(struct tp_conn *c, const void *data, size_t len);
    void (*write_ref)(struct tp_conn *c, struct gw_refbuf *b, size_t off, size_t len);
    size_t (*queued)(const struct tp_conn *c);
    void (*set_handler)(struct tp_conn *c, const struct tp_handler_ops *ops, void *handler);
    void (*upgrade)(struct tp_conn *c);
    void (*want_drain)(struct tp_conn *c);
    void (*end_response)(struct tp_conn *c, bool keep_alive);
    void (*close)(struct tp_conn *c, bool flush);
    const char *(*peer)(const struct tp_conn *c);
};

struct tp_conn {
    const struct tp_conn_ops *ops;
};

/* Queues bytes for writing (copied). Writes go out once per loop turn. */
static inline void tp_conn_write(struct tp_conn *c, const void *data, size_t len)
{
    c->ops->write(c, data, len);
}

/* Queues bytes [off, off+len) of b by reference (b is kept alive until written). */
static inline void tp_conn_write_ref(struct tp_conn *c, struct gw_refbuf *b, size_t off, size_t len)
{
    c->ops->write_ref(c, b, off, len);
}

/* Bytes queued and not yet written to the socket. */
static inline size_t tp_conn_queued(const struct tp_conn *c)
{
    return c->ops->queued(c);
}

/* Makes `handler` the owner of the connection's events until end_response or close. */
static inline void tp_conn_set_handler(struct tp_conn *c, const struct tp_handler_ops *ops,
                                       void *handler)
{
    c->ops->set_handler(c, ops, handler);
}

/* From now on every byte read goes to the handler's on_data (after a 101 response). */
static inline void tp_conn_upgrade(struct tp_conn *c)
{
    c->ops->upgrade(c);
}

/* Asks for one on_drain once the output queue is empty. */
static inline void tp_conn_want_drain(struct tp_conn *c)
{
    c->ops->want_drain(c);
}

/* The response is complete: the handler is dropped and the connection reads its next request
 * (keep_alive) or closes once everything queued is written. */
static inline void tp_conn_end_response(struct tp_conn *c, bool keep_alive)
{
    c->ops->end_response(c, keep_alive);
}

/* Closes the connection once everything queued is written (flush) or at once. The handler is
 * dropped first (no on_close). */
static inline void tp_conn_close(struct tp_conn *c, bool flush)
{
    c->ops->close(c, flush);
}

/* The peer's address, for logs ("127.0.0.1:5000"). */
static inline const char *tp_conn_peer(const struct tp_conn *c)
{
    return c->ops->peer(c);
}

struct tp_header {
    const char *name;
    const char *value;
    size_t name_len;
    size_t value_len;
};

/* A parsed request, valid during the dispatch call only. */
struct tp_request {
    struct tp_conn *conn;
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* the path below the prefix, e.g. "/000/abc/xhr" */
    size_t path_len;
    const char *query; /* after '?', not decoded; NULL if none */
    size_t query_len;
    const struct tp_header *headers;
    size_t n_headers;
    const char *body;
    size_t body_len;
    uint8_t http_major;
    uint8_t http_minor;
    bool keep_alive; /* what the client asked for (version and Connection header) */
    struct sockjs_server *server;
    uint32_t max_message; /* websocket message limit */
};

/* The value of a header (case-insensitive name), or NULL. */
const char *tp_request_header(const struct tp_request *req, const char *name, size_t *len);
/* Whether a comma-separated header contains `token` (case-insensitive). */
bool tp_header_has_token(const struct tp_request *req, const char *name, const char *token);

/* Response heads. Flags select the header groups of SockJS's rules. */
enum tp_head_flags {
    TP_NO_CACHE = 1,    /* Cache-Control: no-store, no-cache, no-transform, must-revalidate */
    TP_LONG_CACHE = 2,  /* Cache-Control: public, max-age=31536000 + Expires */
    TP_CORS = 4,        /* Access-Control-Allow-Origin/-Credentials (+ Vary: Origin) */
    TP_COOKIE = 8,      /* Set-Cookie: JSESSIONID when the server needs cookies */
    TP_REVALIDATE = 16, /* Cache-Control: no-cache: kept, but checked (ETag) before each use */
};

#define TP_HEAD_MAX 4096

struct tp_head {
    int status;
    size_t len;
    char buf[TP_HEAD_MAX];
};

void tp_head_start(struct tp_head *h, const struct tp_request *req, int status, const char *reason,
                   const char *content_type, unsigned flags);
void tp_head_add(struct tp_head *h, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A complete response with a body; the connection then reads its next request or closes. */
void tp_respond(const struct tp_request *req, struct tp_head *h, const void *body, size_t len);
/* A document that only changes with the build or the configuration, with a strong ETag
 * (FNV-1a 64 of the body); 304 when If-None-Match names it. `cache`: TP_LONG_CACHE (a year:
 * what never changes at its URL) or TP_REVALIDATE (what a new build changes at the same URL).
 * `any_origin` adds Access-Control-Allow-Origin: * (a script pages of any origin may load). */
void tp_respond_tagged(const struct tp_request *req, const char *content_type, const void *body,
                       size_t len, unsigned cache, bool any_origin);
/* A complete short response: status, text/plain body, no cache. */
void tp_respond_text(const struct tp_request *req, int status, const char *reason, unsigned flags,
                     const char *body);

/* A response given after the request handler returned (an answer that waits for Redis): what
 * it keeps of the request. The handler sets a tp_handler on the connection meanwhile, whose
 * on_close says the client went away. */
struct tp_deferred {
    struct tp_conn *conn;
    bool keep_alive;
    uint8_t http_minor;
};

void tp_defer(struct tp_deferred *d, const struct tp_request *req);
/* The complete response; flags: TP_NO_CACHE or TP_LONG_CACHE (the others read the request). */
void tp_respond_deferred(const struct tp_deferred *d, int status, const char *reason,
                         const char *content_type, unsigned flags, const void *body, size_t len);

/* May req use session `id` (sockjs_session_access)? True with *out the session (NULL: a
 * receiver may open one). Otherwise req has been answered as for an unknown session (404
 * "Session not found."), for a client over the unknown-session rate 429 with Retry-After, or
 * for a request that would open a session beyond its address's share tp_respond_crowded();
 * `flags` are the head flags of the endpoint's answers. */
/* 429 "Too many sessions from this address." with Retry-After: the client address holds
 * max_sessions_per_client sessions (sockjs_server_admits refused). */
void tp_respond_crowded(const struct tp_request *req, unsigned flags);
bool tp_session_access(const struct tp_request *req, const char *id, size_t len, bool opens,
                       unsigned flags, struct sockjs_session **out);

/* A streaming response: chunked for HTTP/1.1, close-delimited for HTTP/1.0. */
struct tp_stream {
    struct tp_conn *conn;
    bool chunked;
    bool keep_alive;
};

/* Writes the head of a stream (no Content-Length) and sets up s. */
void tp_stream_start(struct tp_stream *s, const struct tp_request *req, struct tp_head *h);
void tp_stream_write(struct tp_stream *s, const void *data, size_t len);
/* Writes b by reference (shared with other recipients) followed by a short copied suffix, as
 * one chunk. */
void tp_stream_write_ref(struct tp_stream *s, struct gw_refbuf *b, const char *suffix,
                         size_t suffix_len);
/* Ends the stream (last chunk, or close for HTTP/1.0) and gives the connection back. */
void tp_stream_end(struct tp_stream *s);

#endif
