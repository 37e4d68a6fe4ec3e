/* The receiver behind every HTTP transport (polling and streaming): one HTTP response that
 * carries a session's frames, in the transport's encoding. Each transport is a kind. */
#ifndef HTTP_RECEIVER_H
#define HTTP_RECEIVER_H

#include <stdbool.h>
#include <stddef.h>

#include "gw_buf.h"
#include "gw_error.h"
#include "transport.h"

struct http_receiver;

struct http_receiver_kind {
    const char *name;
    enum sockjs_transport transport;
    const char *content_type;
    unsigned head_flags;      /* TP_* header groups besides TP_NO_CACHE and TP_COOKIE */
    const char *extra_header; /* one more header's name (with extra_value), or NULL */
    const char *extra_value;
    /* Streams stay after a frame until response_limit; polling requests end with the first. */
    bool streaming;
    /* The encoding is the frame followed by "\n": a published message's cached frame can then
     * be written by reference instead of being encoded per recipient. */
    bool frame_per_line;
    /* Bytes written once before any frame (streams only), e.g. xhr_streaming's 2048 'h'. */
    void (*prelude)(const struct http_receiver *r, struct gw_buf *out);
    /* Appends one frame in the transport's encoding. */
    void (*encode)(const struct http_receiver *r, const char *frame, size_t len,
                   struct gw_buf *out);
};

struct http_receiver {
    struct sockjs_receiver base;
    const struct http_receiver_kind *kind;
    struct tp_conn *conn;
    struct tp_stream stream; /* streams */
    char *head;              /* polling: the response head, waiting for its frame */
    size_t head_len;
    bool keep_alive; /* polling */
    size_t sent;     /* frame bytes written (streams) */
    size_t limit;    /* response_limit (streams) */
    char callback[]; /* the "c" parameter, for the kinds that take one */
};

/* Answers a receiver request of `kind` for the session id: sets up the response and attaches
 * it to the session. `callback` is the validated callback name or NULL. */
void http_receiver_handle(const struct tp_request *req, const struct http_receiver_kind *kind,
                          const char *session_id, size_t id_len, const char *callback);

#define HTTP_CALLBACK_MAX 256

/* The "c" query parameter of htmlfile and jsonp, decoded into out: 0, or GW_EINVAL after answering
 * 500 "\"callback\" parameter required" / "invalid \"callback\" parameter". Names are
 * [a-zA-Z0-9_.-]+: they are written into a page and a script, so nothing else may pass. */
int http_receiver_callback(const struct tp_request *req, char out[HTTP_CALLBACK_MAX + 1]);

#endif
