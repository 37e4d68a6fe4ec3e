#include "gw_outq.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "gw_alloc.h"
#include "gw_error.h"
#include "gw_pool.h"
#include "gw_refbuf.h"

/* Copy segments of the standard size are pooled; a larger copy gets a segment of its own. */
#define COPY_SEG_BYTES 480
/* Free-list bounds: enough for bursts of fan-out (a segment per queued message), small next
 * to the sessions they serve (at most ~2.6 MiB in all). */
#define REF_POOL_MAX 65536
#define COPY_POOL_MAX 1024
#define QUEUE_POOL_MAX 16384

struct seg {
    struct seg *next;
    struct gw_refbuf *ref; /* NULL: the bytes live in buf */
    const char *data;      /* first unwritten byte */
    uint32_t len;          /* unwritten bytes */
    uint32_t size;         /* bytes of buf (0 for a reference) */
    char buf[];
};

struct gw_outq {
    struct seg *head, *tail;
    size_t bytes;
};

static struct gw_pool ref_pool = GW_POOL_INIT(REF_POOL_MAX);
static struct gw_pool copy_pool = GW_POOL_INIT(COPY_POOL_MAX);
static struct gw_pool queue_pool = GW_POOL_INIT(QUEUE_POOL_MAX);

void gw_outq_pool_release(void)
{
    gw_pool_release(&ref_pool, NULL);
    gw_pool_release(&copy_pool, NULL);
    gw_pool_release(&queue_pool, NULL);
}

static void seg_release(struct seg *s)
{
    if (s->ref) {
        gw_refbuf_unref(s->ref);
        gw_pool_put(&ref_pool, s, NULL);
    } else if (s->size == COPY_SEG_BYTES) {
        gw_pool_put(&copy_pool, s, NULL);
    } else {
        gw_free(s);
    }
}

struct gw_outq *gw_outq_new(void)
{
    struct gw_outq *q = gw_pool_get(&queue_pool, sizeof(*q));
    q->head = q->tail = NULL;
    q->bytes = 0;
    return q;
}

void gw_outq_free(struct gw_outq *q)
{
    if (!q)
        return;
    while (q->head) {
        struct seg *s = q->head;
        q->head = s->next;
        seg_release(s);
    }
    gw_pool_put(&queue_pool, q, NULL);
}

static void append(struct gw_outq *q, struct seg *s)
{
    s->next = NULL;
    if (q->tail)
        q->tail->next = s;
    else
        q->head = s;
    q->tail = s;
    q->bytes += s->len;
}

void gw_outq_add(struct gw_outq *q, const void *data, size_t len)
{
    if (len == 0)
        return;
    struct seg *t = q->tail;
    /* Small writes (frame headers, short frames) fill the tail segment before a new one. */
    if (t && !t->ref) {
        size_t used = (size_t)(t->data - t->buf) + t->len;
        size_t room = t->size - used;
        size_t n = len < room ? len : room;
        memcpy(t->buf + used, data, n);
        t->len += (uint32_t)n;
        q->bytes += n;
        data = (const char *)data + n;
        len -= n;
        if (len == 0)
            return;
    }
    GW_ASSERT(len <= UINT32_MAX);
    size_t size = len <= COPY_SEG_BYTES ? COPY_SEG_BYTES : len;
    struct seg *s = size == COPY_SEG_BYTES ? gw_pool_get(&copy_pool, sizeof(*s) + size)
                                           : gw_malloc(sizeof(*s) + size);
    s->ref = NULL;
    s->size = (uint32_t)size;
    s->data = s->buf;
    s->len = (uint32_t)len;
    memcpy(s->buf, data, len);
    append(q, s);
}

void gw_outq_add_ref(struct gw_outq *q, struct gw_refbuf *b, size_t off, size_t len)
{
    if (len == 0)
        return;
    GW_ASSERT(off + len <= b->len);
    struct seg *s = gw_pool_get(&ref_pool, sizeof(*s));
    s->ref = gw_refbuf_ref(b);
    s->size = 0;
    s->data = b->data + off;
    s->len = (uint32_t)len;
    append(q, s);
}

size_t gw_outq_bytes(const struct gw_outq *q)
{
    return q->bytes;
}

size_t gw_outq_iov(const struct gw_outq *q, struct iovec *iov, size_t max)
{
    size_t n = 0;
    for (const struct seg *s = q->head; s && n < max; s = s->next) {
        iov[n].iov_base = (void *)s->data;
        iov[n].iov_len = s->len;
        n++;
    }
    return n;
}

void gw_outq_consume(struct gw_outq *q, size_t n)
{
    GW_ASSERT(n <= q->bytes);
    q->bytes -= n;
    while (n > 0) {
        struct seg *s = q->head;
        if (n < s->len) {
            s->data += n;
            s->len -= (uint32_t)n;
            break;
        }
        n -= s->len;
        q->head = s->next;
        if (!q->head)
            q->tail = NULL;
        seg_release(s);
    }
}

ssize_t gw_outq_write(struct gw_outq *q, int fd)
{
    struct iovec iov[GW_OUTQ_WRITE_IOV];
    size_t n_iov = gw_outq_iov(q, iov, GW_OUTQ_WRITE_IOV);
    if (n_iov == 0)
        return 0;
    ssize_t n;
    do
        n = writev(fd, iov, (int)n_iov);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? GW_EAGAIN : GW_EIO;
    gw_outq_consume(q, (size_t)n);
    return n;
}
