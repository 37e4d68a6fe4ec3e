/* permessage-deflate (RFC 7692) as the gateway runs it: no context takeover in either
 * direction. Every message is compressed and inflated from an empty window, so a published
 * message is compressed once and the result shared by every recipient, and a connection keeps
 * no zlib state between messages: the two z_streams are loop-wide and reset per message.
 *
 * Negotiation: the server always answers WS_DEFLATE_RESPONSE. server_no_context_takeover is
 * what we do anyway; client_no_context_takeover may be put in a response whether or not the
 * offer had it (RFC 7692 7.1.1.2), and lets us inflate each client message with a fresh
 * window. An offer is declined (the next one is tried) when it has a parameter we cannot honour:
 * server_max_window_bits below 15 (our shared frames use a 32 KiB window), an unknown
 * parameter, a repeated one, or a bad value. client_max_window_bits (with or without a value)
 * needs no answer: we inflate with the largest window, which reads any smaller one. */
#ifndef WS_DEFLATE_H
#define WS_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>

#include <zlib.h>

struct gw_buf;

#define WS_DEFLATE_RESPONSE                                                                        \
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

enum ws_deflate_offer {
    WS_DEFLATE_NOT_OFFERED, /* no permessage-deflate offer in the header */
    WS_DEFLATE_ACCEPTED,    /* one offer we can honour (answer WS_DEFLATE_RESPONSE) */
    WS_DEFLATE_DECLINED,    /* permessage-deflate offered, but with parameters we cannot honour */
    WS_DEFLATE_MALFORMED,   /* the header does not follow RFC 6455 9.1 (from the first error on) */
};

/* Reads one Sec-WebSocket-Extensions value (a comma-separated list of offers, each with
 * ;-separated parameters, values as tokens or quoted strings) and says whether it holds a
 * permessage-deflate offer that we accept; the first acceptable offer wins. On DECLINED or
 * MALFORMED, *why (if given) is set to a static reason for the log. */
enum ws_deflate_offer ws_deflate_parse_offers(const char *value, size_t len, const char **why);

/* The loop-wide compression state: a deflate and an inflate stream, each created on first use
 * (a gateway that never negotiates the extension allocates nothing) and reset per message. */
struct ws_deflate {
    z_stream def;
    z_stream inf;
    bool def_ready;
    bool inf_ready;
};

#define WS_DEFLATE_INIT                                                                            \
    {                                                                                              \
        .def_ready = false, .inf_ready = false                                                     \
    }

/* Frees the streams; z may be used again afterwards. */
void ws_deflate_cleanup(struct ws_deflate *z);

/* Compresses len bytes as one message (raw deflate from an empty window, ended by a sync flush
 * whose 00 00 ff ff tail is removed, RFC 7692 7.2.1) and appends the result to out. */
void ws_deflate_compress(struct ws_deflate *z, const void *data, size_t len, struct gw_buf *out);

/* Inflates one compressed message (the 00 00 ff ff tail is added here) and appends it to out.
 * Returns 0; GW_ELIMIT as soon as the output would pass `limit` bytes (no more than limit + 1
 * bytes are ever produced: a decompression bomb costs at most the limit); or GW_EINVAL when the
 * data is not valid deflate data, or ends inside a block. */
int ws_deflate_inflate(struct ws_deflate *z, const void *data, size_t len, size_t limit,
                       struct gw_buf *out);

#endif
