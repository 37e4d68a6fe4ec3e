/* The static endpoints of a prefix: greeting, /info (and its preflight), /iframe*.html. */
#ifndef INFO_H
#define INFO_H

#include "transport.h"

void info_greeting_handle(const struct tp_request *req);
void info_handle(const struct tp_request *req);
void info_options_handle(const struct tp_request *req);
void info_iframe_handle(const struct tp_request *req);

#endif
