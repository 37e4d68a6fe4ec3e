#include "gw_url.h"
#include "gw_buf.h"
#include "gw_error.h"

#include <string.h>

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The raw value of parameter `name` (from after '=' to before '&' or the end) at or after
 * offset *pos, or NULL; *pos moves past it. */
static const char *find_param(const char *query, size_t query_len, size_t *pos, const char *name,
                              size_t *value_len)
{
    size_t name_len = strlen(name);
    const char *p = query + *pos, *end = query + query_len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *key_end = eq ? eq : stop;
        if ((size_t)(key_end - p) == name_len && memcmp(p, name, name_len) == 0) {
            const char *value = eq ? eq + 1 : stop;
            *value_len = (size_t)(stop - value);
            *pos = (size_t)(stop - query) + (stop < end);
            return value;
        }
        p = stop + 1;
    }
    *pos = query_len;
    return NULL;
}

long gw_query_param(const char *query, size_t query_len, const char *name, char *out, size_t cap)
{
    size_t pos = 0;
    return gw_query_param_next(query, query_len, &pos, name, out, cap);
}

long gw_query_param_next(const char *query, size_t query_len, size_t *pos, const char *name,
                         char *out, size_t cap)
{
    size_t raw_len;
    const char *raw = find_param(query, query_len, pos, name, &raw_len);
    if (!raw)
        return GW_ENOTFOUND;
    const char *stop = raw + raw_len;
    size_t n = 0;
    for (const char *v = raw; v < stop; v++) {
        char c = *v;
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && stop - v >= 3 && hex_value(v[1]) >= 0 && hex_value(v[2]) >= 0) {
            c = (char)(hex_value(v[1]) * 16 + hex_value(v[2]));
            v += 2;
        }
        if (n + 1 >= cap)
            return GW_ELIMIT;
        out[n++] = c;
    }
    out[n] = '\0';
    return (long)n;
}

long gw_percent_decode(const char *in, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%') {
            if (len - i < 3 || hex_value(in[i + 1]) < 0 || hex_value(in[i + 2]) < 0)
                return GW_EINVAL;
            c = (char)(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2]));
            if (c == '\0')
                return GW_EINVAL;
            i += 2;
        }
        if (n + 1 >= cap)
            return GW_ELIMIT;
        out[n++] = c;
    }
    if (cap == 0)
        return GW_ELIMIT;
    out[n] = '\0';
    return (long)n;
}

const char *gw_query_param_raw(const char *query, size_t query_len, const char *name, size_t *len)
{
    size_t pos = 0;
    return find_param(query, query_len, &pos, name, len);
}

void gw_url_append_redacted(struct gw_buf *b, const char *url, size_t len, const char *name)
{
    const char *q = memchr(url, '?', len);
    if (!q) {
        gw_buf_append(b, url, len);
        return;
    }
    size_t name_len = strlen(name);
    const char *end = url + len;
    gw_buf_append(b, url, (size_t)(q - url) + 1);
    for (const char *p = q + 1; p <= end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        if (eq && (size_t)(eq - p) == name_len && memcmp(p, name, name_len) == 0) {
            gw_buf_append(b, p, name_len + 1);
            gw_buf_append_str(b, "<redacted>");
        } else {
            gw_buf_append(b, p, (size_t)(stop - p));
        }
        if (!amp)
            break;
        gw_buf_append(b, "&", 1);
        p = amp + 1;
    }
}
