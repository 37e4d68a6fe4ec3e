/* A bounded free list of same-sized objects, for what is allocated and freed at a high rate
 * (output segments, request parsers): reusing them keeps the hot paths off malloc. Objects are
 * linked through their first pointer-sized bytes while parked. One loop per process: no locks. */
#ifndef GW_POOL_H
#define GW_POOL_H

#include <stddef.h>

#include "gw_alloc.h"

struct gw_pool {
    void *first;
    size_t n;
    size_t max; /* parked objects beyond this are freed */
};

#define GW_POOL_INIT(max)                                                                          \
    {                                                                                              \
        NULL, 0, (max)                                                                             \
    }

/* A parked object (contents as left, but for its first pointer-sized bytes), or a new
 * uninitialised one of `size` bytes. */
static inline void *gw_pool_get(struct gw_pool *p, size_t size)
{
    void *obj = p->first;
    if (!obj)
        return gw_malloc(size);
    p->first = *(void **)obj;
    p->n--;
    return obj;
}

/* Parks obj, or frees it (with `destroy`, NULL: gw_free) when the pool is full, and always
 * under AddressSanitizer (GW_ASAN), so that a use after "free" is still caught. */
static inline void gw_pool_put(struct gw_pool *p, void *obj, void (*destroy)(void *))
{
    if (GW_ASAN || p->n == p->max) {
        (destroy ? destroy : gw_free)(obj);
        return;
    }
    *(void **)obj = p->first;
    p->first = obj;
    p->n++;
}

/* Frees every parked object (at exit). */
static inline void gw_pool_release(struct gw_pool *p, void (*destroy)(void *))
{
    while (p->first) {
        void *obj = p->first;
        p->first = *(void **)obj;
        (destroy ? destroy : gw_free)(obj);
    }
    p->n = 0;
}

#endif
