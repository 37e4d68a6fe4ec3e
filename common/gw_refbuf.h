/* Immutable, refcounted byte buffers: one published or encoded message shared by every
 * recipient's output queue without copying. Single-threaded (one loop per process). */
#ifndef GW_REFBUF_H
#define GW_REFBUF_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

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

/* Appends bytes [off, off+len) of b to out by reference (no copy); out keeps b alive until
 * libevent has written them. Returns 0 or GW_EIO. */
int gw_refbuf_add_to_evbuffer(struct evbuffer *out, struct gw_refbuf *b, size_t off, size_t len);

#endif
