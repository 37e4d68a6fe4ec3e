#include "gw_outq.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "gw_alloc.h"
#include "gw_error.h"
#include "gw_refbuf.h"

/* Copy segments of the standard size are pooled; a larger copy gets a segment of its own. */
#define COPY_SEG_BYTES 480
/* One writev covers this many segments; a flush loops for more. */
#define MAX_IOV 128
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

/* A free list of one kind of object, linked through its first pointer. */
struct pool {
    void *first;
    size_t n, max;
};

static struct pool ref_pool = {NULL, 0, REF_POOL_MAX};
static struct pool copy_pool = {NULL, 0, COPY_POOL_MAX};
static struct pool queue_pool = {NULL, 0, QUEUE_POOL_MAX};

static void *pool_get(struct pool *p, size_t size)
{
    void *obj = p->first;
    if (!obj)
        return gw_malloc(size);
    p->first = *(void **)obj;
    p->n--;
    return obj;
}

static void pool_put(struct pool *p, void *obj)
{
    if (p->n == p->max) {
        gw_free(obj);
        return;
    }
    *(void **)obj = p->first;
    p->first = obj;
    p->n++;
}

static void pool_release(struct pool *p)
{
    while (p->first) {
        void *obj = p->first;
        p->first = *(void **)obj;
        gw_free(obj);
    }
    p->n = 0;
}

void gw_outq_pool_release(void)
{
    pool_release(&ref_pool);
    pool_release(&copy_pool);
    pool_release(&queue_pool);
}

static void seg_release(struct seg *s)
{
    if (s->ref) {
        gw_refbuf_unref(s->ref);
        pool_put(&ref_pool, s);
    } else if (s->size == COPY_SEG_BYTES) {
        pool_put(&copy_pool, s);
    } else {
        gw_free(s);
    }
}

struct gw_outq *gw_outq_new(void)
{
    struct gw_outq *q = pool_get(&queue_pool, sizeof(*q));
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
    pool_put(&queue_pool, q);
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
    struct seg *s = size == COPY_SEG_BYTES ? pool_get(&copy_pool, sizeof(*s) + size)
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
    struct seg *s = pool_get(&ref_pool, sizeof(*s));
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

ssize_t gw_outq_write(struct gw_outq *q, int fd)
{
    struct iovec iov[MAX_IOV];
    int n_iov = 0;
    for (struct seg *s = q->head; s && n_iov < MAX_IOV; s = s->next) {
        iov[n_iov].iov_base = (void *)s->data;
        iov[n_iov].iov_len = s->len;
        n_iov++;
    }
    if (n_iov == 0)
        return 0;
    ssize_t n;
    do
        n = writev(fd, iov, n_iov);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n;
    q->bytes -= (size_t)n;
    size_t left = (size_t)n;
    while (left > 0) {
        struct seg *s = q->head;
        if (left < s->len) {
            s->data += left;
            s->len -= (uint32_t)left;
            break;
        }
        left -= s->len;
        q->head = s->next;
        if (!q->head)
            q->tail = NULL;
        seg_release(s);
    }
    return n;
}
