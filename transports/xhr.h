/* The XHR transports: xhr (polling), xhr_streaming and xhr_send, with their preflights. */
#ifndef XHR_H
#define XHR_H

#include "transport.h"

void xhr_polling_handle(const struct tp_request *req, const char *session_id, size_t id_len);
void xhr_streaming_handle(const struct tp_request *req, const char *session_id, size_t id_len);
void xhr_send_handle(const struct tp_request *req, const char *session_id, size_t id_len);
/* OPTIONS on any of the three. */
void xhr_options_handle(const struct tp_request *req);

#endif
