/* The htmlfile transport (GET S/htmlfile?c=callback): a never-ending page of script tags. */
#ifndef HTMLFILE_H
#define HTMLFILE_H

#include "transport.h"

void htmlfile_handle(const struct tp_request *req, const char *session_id, size_t id_len);

#endif
