/* Immutable, refcounted byte buffers: one published or encoded message shared by every
 * recipient's output queue without copying. Single-threaded (one loop per process). */
#ifndef GW_REFBUF_H
#define GW_REFBUF_H

#include <stddef.h>
#include <stdint.h>

struct gw_refbuf {
    uint32_t refs;
    uint32_t len;
    char data[];
};

/* A new buffer of len bytes with one reference; data is uninitialised. */
struct gw_refbuf *gw_refbuf_new(size_t len);
/* A new buffer holding a copy of data. */
struct gw_refbuf *gw_refbuf_copy(const void *data, size_t len);

static inline struct gw_refbuf *gw_refbuf_ref(struct gw_refbuf *b)
{
    b->refs++;
    return b;
}

void gw_refbuf_unref(struct gw_refbuf *b);

#endif
