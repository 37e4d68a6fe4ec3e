#include "gw_slab.h"

#include <string.h>

#include "gw_alloc.h"

#define CHUNK_BYTES (64 * 1024)

void gw_slab_init(struct gw_slab *s, size_t size)
{
    memset(s, 0, sizeof(*s));
    s->size = (size + 7) & ~(size_t)7;
    GW_ASSERT(s->size >= sizeof(void *) && s->size <= CHUNK_BYTES / 16);
}

void *gw_slab_alloc(struct gw_slab *s)
{
    s->live++;
#if GW_ASAN
    return gw_calloc(1, s->size);
#else
    void *obj = s->free;
    if (obj) {
        s->free = *(void **)obj;
    } else {
        if (s->left < s->size) {
            /* The chunk's first 8 bytes link it to the previous chunk. */
            char *chunk = gw_malloc(CHUNK_BYTES);
            *(void **)chunk = s->chunks;
            s->chunks = chunk;
            s->next = chunk + 8;
            s->left = CHUNK_BYTES - 8;
        }
        obj = s->next;
        s->next += s->size;
        s->left -= s->size;
    }
    memset(obj, 0, s->size);
    return obj;
#endif
}

void gw_slab_free(struct gw_slab *s, void *obj)
{
    if (!obj)
        return;
    GW_ASSERT(s->live > 0);
    s->live--;
#if GW_ASAN
    gw_free(obj);
#else
    *(void **)obj = s->free;
    s->free = obj;
#endif
}

void gw_slab_release(struct gw_slab *s)
{
    GW_ASSERT(s->live == 0);
    while (s->chunks) {
        void *chunk = s->chunks;
        s->chunks = *(void **)chunk;
        gw_free(chunk);
    }
    s->free = NULL;
    s->next = NULL;
    s->left = 0;
}
