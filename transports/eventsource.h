/* The eventsource transport (GET S/eventsource). */
#ifndef EVENTSOURCE_H
#define EVENTSOURCE_H

#include "transport.h"

void eventsource_handle(const struct tp_request *req, const char *session_id, size_t id_len);

#endif
