/* The websocket transports: SockJS-framed (/<server>/<session>/websocket) and raw
 * (/websocket), on the project's RFC 6455 codec. */
#ifndef WEBSOCKET_H
#define WEBSOCKET_H

#include <stdbool.h>

#include "transport.h"

/* Checks the handshake, answers 101 and takes the connection over; or answers the error
 * (400 with a reason, 405 for other methods). */
void websocket_handle(const struct tp_request *req, bool raw);

#endif
