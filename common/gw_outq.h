/* A connection's output queue: bytes waiting for the socket, either copied into small
 * segments or referenced in shared gw_refbufs (one published frame written to thousands of
 * connections without a copy), written with one writev per flush.
 *
 * Queues and segments come from process-wide free lists (one event loop per process, no
 * threads), so that the steady state of a busy gateway allocates nothing per write, and a
 * connection with nothing queued holds nothing but a NULL pointer. The free lists are bounded;
 * what is beyond their bound goes back to malloc. */
#ifndef GW_OUTQ_H
#define GW_OUTQ_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "gw_error.h"

struct gw_refbuf;
struct gw_outq;

struct gw_outq *gw_outq_new(void);
/* Drops what is queued (references released) and returns q to the free list. */
void gw_outq_free(struct gw_outq *q);

/* Queues a copy of data. */
void gw_outq_add(struct gw_outq *q, const void *data, size_t len);
/* Queues bytes [off, off+len) of b by reference; b is kept alive until they are written. */
void gw_outq_add_ref(struct gw_outq *q, struct gw_refbuf *b, size_t off, size_t len);

size_t gw_outq_bytes(const struct gw_outq *q);

/* Byte ranges one write takes at most (a flush loops for more). */
#define GW_OUTQ_WRITE_IOV 128

/* Writes as much as the socket takes in one writev; returns the bytes written, GW_EAGAIN when
 * the socket is full, or GW_EIO (errno says why). */
ssize_t gw_outq_write(struct gw_outq *q, int fd);

/* The first (at most max) queued byte ranges, in order, for a send of one's own; returns how
 * many. They stay valid until q is changed. */
size_t gw_outq_iov(const struct gw_outq *q, struct iovec *iov, size_t max);
/* Drops the first n queued bytes (n at most gw_outq_bytes): they were written. */
void gw_outq_consume(struct gw_outq *q, size_t n);

/* Frees the free lists (at exit, so that leak checkers see a clean heap). */
void gw_outq_pool_release(void);

#endif
