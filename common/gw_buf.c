#include "gw_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gw_alloc.h"

char *gw_buf_reserve(struct gw_buf *b, size_t more)
{
    if (b->cap - b->len < more) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < more)
            cap *= 2;
        b->data = gw_realloc(b->data, cap);
        b->cap = cap;
    }
    return b->data + b->len;
}

void gw_buf_append(struct gw_buf *b, const void *data, size_t len)
{
    if (!len)
        return;
    memcpy(gw_buf_reserve(b, len), data, len);
    b->len += len;
}

void gw_buf_append_str(struct gw_buf *b, const char *s)
{
    gw_buf_append(b, s, strlen(s));
}

void gw_buf_appendf(struct gw_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    GW_ASSERT(n >= 0);
    char *p = gw_buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void gw_buf_consume(struct gw_buf *b, size_t n)
{
    GW_ASSERT(n <= b->len);
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void gw_buf_release(struct gw_buf *b)
{
    gw_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

struct gw_buf *gw_buf_new(void)
{
    return gw_calloc(1, sizeof(struct gw_buf));
}

void gw_buf_free(struct gw_buf **b)
{
    if (!*b)
        return;
    gw_buf_release(*b);
    gw_free(*b);
    *b = NULL;
}
