/* Fixed-size objects carved from 64 KiB chunks, for what every idle session holds (its
 * connection, websocket and SockJS session): no malloc header and no rounding to 16 bytes per
 * object, and no transient allocation interleaved between them to fragment the heap. Freed
 * objects are reused; chunks go back only when the slab is released, which requires every
 * object to have been freed (checked: a leak still shows).
 *
 * Under AddressSanitizer (GW_ASAN) every object is its own malloc instead, so that
 * use-after-free and overflows of these objects are still caught. One loop per process: no locks.
 */
#ifndef GW_SLAB_H
#define GW_SLAB_H

#include <stddef.h>

struct gw_slab {
    size_t size;  /* object size, a multiple of 8 */
    void *free;   /* freed objects, linked through their first bytes */
    char *next;   /* uncarved room in the newest chunk */
    size_t left;  /* bytes of that room */
    void *chunks; /* every chunk, linked through its first bytes */
    size_t live;  /* objects handed out and not freed */
};

#define GW_SLAB_INIT(obj_size)                                                                     \
    {                                                                                              \
        ((obj_size) + 7) & ~(size_t)7, NULL, NULL, 0, NULL, 0                                      \
    }

/* A slab of objects of `size` bytes (rounded up to 8). */
void gw_slab_init(struct gw_slab *s, size_t size);
/* A zeroed object. */
void *gw_slab_alloc(struct gw_slab *s);
void gw_slab_free(struct gw_slab *s, void *obj);
/* Frees the chunks; every object must have been freed. */
void gw_slab_release(struct gw_slab *s);

#endif
