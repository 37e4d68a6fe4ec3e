/* The static SockJS documents: /info and /iframe.html. */
#ifndef SOCKJS_INFO_H
#define SOCKJS_INFO_H

#include "gw_buf.h"
#include "sockjs_session.h"

/* {"websocket": .., "origins": ["*:*"], "cookie_needed": .., "entropy": <random uint32>} */
void sockjs_info_body(const struct sockjs_options *opt, struct gw_buf *out);

/* The iframe page loading the client library from sockjs_url. */
void sockjs_iframe_body(const char *sockjs_url, struct gw_buf *out);

#endif
