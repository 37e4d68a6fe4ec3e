/* Growable byte buffer for transient assembly (a message being reassembled, a frame being
 * encoded). Owned by one object; freed as soon as the bytes have been used so that idle objects
 * hold none. */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stddef.h>

struct gw_buf {
    char *data;
    size_t len;
    size_t cap;
};

#define GW_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Makes room for `more` bytes after len; returns a pointer to that room. */
char *gw_buf_reserve(struct gw_buf *b, size_t more);
void gw_buf_append(struct gw_buf *b, const void *data, size_t len);
void gw_buf_append_str(struct gw_buf *b, const char *s);
void gw_buf_appendf(struct gw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void gw_buf_consume(struct gw_buf *b, size_t n);
/* Releases the memory; the buffer is empty and reusable afterwards. */
void gw_buf_release(struct gw_buf *b);

/* For objects that hold a buffer only while in use (a pointer, NULL at rest): a new empty
 * buffer, and freeing it (with its memory) back to NULL. */
struct gw_buf *gw_buf_new(void);
void gw_buf_free(struct gw_buf **b);

#endif
