/* URL query strings and percent-encoding. */
#ifndef GW_URL_H
#define GW_URL_H

#include <stddef.h>

#include "gw_error.h"

/* The decoded value ('+' and %XX) of parameter `name` in query (not NUL-terminated) into out
 * (at most cap-1 bytes, NUL-terminated). Returns the decoded length, GW_ENOTFOUND when absent,
 * or GW_ELIMIT when it does not fit in out. A parameter without '=' has an empty value. */
long gw_query_param(const char *query, size_t query_len, const char *name, char *out, size_t cap);
/* The same for a repeated parameter: the next occurrence at or after offset *pos (start at 0),
 * moving *pos past it. */
long gw_query_param_next(const char *query, size_t query_len, size_t *pos, const char *name,
                         char *out, size_t cap);

/* The value of parameter `name` as it stands in query (not decoded; *len bytes, not
 * NUL-terminated), or NULL when absent: for comparing a value byte for byte, at any length. */
const char *gw_query_param_raw(const char *query, size_t query_len, const char *name, size_t *len);

/* Percent-decodes len bytes of in ("%XX"; '+' stays '+', as in URL user info) into out (at most
 * cap-1 bytes, NUL-terminated). Returns the decoded length, GW_EINVAL for a '%' not followed by
 * two hex digits or one that decodes to NUL (out is a C string), or GW_ELIMIT when it does not
 * fit. */
long gw_percent_decode(const char *in, size_t len, char *out, size_t cap);

struct gw_buf;
/* Appends url (path and query, len bytes) to b with the value of every query parameter called
 * `name` replaced by "<redacted>": for logs, which must not hold tokens. */
void gw_url_append_redacted(struct gw_buf *b, const char *url, size_t len, const char *name);

#endif
