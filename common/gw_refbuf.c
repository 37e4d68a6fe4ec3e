#include "gw_refbuf.h"

#include <string.h>

#include "gw_alloc.h"
#include "gw_error.h"

struct gw_refbuf *gw_refbuf_new(size_t len)
{
    GW_ASSERT(len <= UINT32_MAX);
    struct gw_refbuf *b = gw_malloc(sizeof(*b) + len);
    b->refs = 1;
    b->len = (uint32_t)len;
    return b;
}

struct gw_refbuf *gw_refbuf_copy(const void *data, size_t len)
{
    struct gw_refbuf *b = gw_refbuf_new(len);
    if (len)
        memcpy(b->data, data, len);
    return b;
}

void gw_refbuf_unref(struct gw_refbuf *b)
{
    if (!b)
        return;
    GW_ASSERT(b->refs > 0);
    if (--b->refs == 0)
        gw_free(b);
}
