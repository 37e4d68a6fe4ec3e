/* The websocket transports: SockJS-framed (/<server>/<session>/websocket) and raw
 * (/websocket), on the project's RFC 6455 codec. */
#ifndef WEBSOCKET_H
#define WEBSOCKET_H

#include <stdbool.h>
#include <stdint.h>

#include "transport.h"

/* Settings of the websocket transports, the same for every prefix. */
struct ws_settings {
    bool deflate;               /* accept permessage-deflate offers (RFC 7692) */
    uint32_t deflate_min_bytes; /* messages shorter than this are sent uncompressed */
};

/* Before the first connection; the defaults are zero (no compression). */
void websocket_configure(const struct ws_settings *s);
/* Frees the loop-wide compression state (at shutdown, after the last connection). */
void websocket_cleanup(void);

/* Checks the handshake, answers 101 and takes the connection over; or answers the error
 * (400 with a reason, 405 for other methods). */
void websocket_handle(const struct tp_request *req, bool raw);

#endif
