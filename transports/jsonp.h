/* JSONP polling (GET S/jsonp?c=callback) and its sending side (POST S/jsonp_send). */
#ifndef JSONP_H
#define JSONP_H

#include "transport.h"

void jsonp_polling_handle(const struct tp_request *req, const char *session_id, size_t id_len);
void jsonp_send_handle(const struct tp_request *req, const char *session_id, size_t id_len);

#endif
