#include "gw_sendbatch.h"

#include <errno.h>
#include <liburing.h>
#include <string.h>
#include <sys/socket.h>

#include "gw_alloc.h"
#include "gw_error.h"
#include "gw_outq.h"

/* Byte ranges one send takes from a queue, as writev would (what is beyond goes out with the
 * caller's next write), and for a whole batch: a heartbeat or a message is one or two ranges,
 * a fan-out turn queues dozens per connection, which then fill a batch before it has its
 * number of sends. */
#define IOV_PER_SEND GW_OUTQ_WRITE_IOV
#define IOV_PER_BATCH 4096

struct gw_sendbatch {
    struct io_uring ring;
    unsigned cap;  /* sends per batch (the ring's size) */
    unsigned n;    /* sends added */
    unsigned done; /* sends of the last gw_sendbatch_send, whose results are readable */
    size_t iov_used;
    struct gw_outq **queues;
    struct msghdr *msgs;
    struct iovec *iov;
    int *res;
};

struct gw_sendbatch *gw_sendbatch_new(unsigned sends)
{
    struct gw_sendbatch *b = gw_calloc(1, sizeof(*b));
    /* Only this thread submits and nothing completes later than the submission: the ring needs
     * no interrupts to deliver completions. Kernels before 6.0 lack these flags and are not
     * used: on those, whether MSG_DONTWAIT really keeps a full socket's send from waiting in the
     * kernel is not something to rely on. */
    int rc = io_uring_queue_init(sends, &b->ring,
                                 IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
                                     IORING_SETUP_SINGLE_ISSUER);
    if (rc < 0) {
        gw_free(b);
        errno = -rc;
        return NULL;
    }
    b->cap = sends;
    b->queues = gw_calloc(sends, sizeof(*b->queues));
    b->msgs = gw_calloc(sends, sizeof(*b->msgs));
    b->iov = gw_calloc(IOV_PER_BATCH, sizeof(*b->iov));
    b->res = gw_calloc(sends, sizeof(*b->res));
    return b;
}

void gw_sendbatch_free(struct gw_sendbatch *b)
{
    if (!b)
        return;
    io_uring_queue_exit(&b->ring);
    gw_free(b->queues);
    gw_free(b->msgs);
    gw_free(b->iov);
    gw_free(b->res);
    gw_free(b);
}

bool gw_sendbatch_add(struct gw_sendbatch *b, struct gw_outq *q, int fd)
{
    size_t room = IOV_PER_BATCH - b->iov_used;
    if (b->n == b->cap || room == 0)
        return false;
    struct iovec *iov = &b->iov[b->iov_used];
    size_t n_iov = gw_outq_iov(q, iov, room < IOV_PER_SEND ? room : IOV_PER_SEND);
    b->iov_used += n_iov;
    GW_ASSERT(n_iov > 0);
    /* The ring has room for every send of a batch: it is emptied by each gw_sendbatch_send. */
    struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
    GW_ASSERT(sqe != NULL);
    /* MSG_DONTWAIT: a full socket completes with EAGAIN now instead of being retried later by
     * the kernel, which would reorder it with the caller's next write. */
    int flags = MSG_DONTWAIT | MSG_NOSIGNAL;
    if (n_iov == 1) {
        /* One range (a heartbeat, a message written alone): a plain send spares the kernel
         * copying in a msghdr and an iovec array. */
        io_uring_prep_send(sqe, fd, iov->iov_base, iov->iov_len, flags);
    } else {
        struct msghdr *msg = &b->msgs[b->n];
        memset(msg, 0, sizeof(*msg));
        msg->msg_iov = iov;
        msg->msg_iovlen = n_iov;
        io_uring_prep_sendmsg(sqe, fd, msg, (unsigned)flags);
    }
    io_uring_sqe_set_data64(sqe, b->n);
    b->queues[b->n++] = q;
    return true;
}

size_t gw_sendbatch_count(const struct gw_sendbatch *b)
{
    return b->n;
}

void gw_sendbatch_send(struct gw_sendbatch *b)
{
    unsigned n = b->n, seen = 0;
    b->n = 0;
    b->iov_used = 0;
    b->done = n;
    while (seen < n) {
        int rc = io_uring_submit_and_wait(&b->ring, n - seen);
        /* Anything but a transient refusal is a misuse of the ring, not an effect of input. */
        GW_ASSERT(rc >= 0 || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY || rc == -ENOMEM);
        struct io_uring_cqe *cqe;
        unsigned head, reaped = 0;
        io_uring_for_each_cqe(&b->ring, head, cqe)
        {
            uint64_t i = io_uring_cqe_get_data64(cqe);
            GW_ASSERT(i < n);
            b->res[i] = cqe->res;
            reaped++;
        }
        io_uring_cq_advance(&b->ring, reaped);
        seen += reaped;
    }
    for (unsigned i = 0; i < n; i++)
        if (b->res[i] > 0)
            gw_outq_consume(b->queues[i], (size_t)b->res[i]);
}

ssize_t gw_sendbatch_result(const struct gw_sendbatch *b, size_t i, int *err)
{
    GW_ASSERT(i < b->done);
    int res = b->res[i];
    if (res >= 0)
        return res;
    if (res == -EAGAIN || res == -EWOULDBLOCK)
        return GW_EAGAIN;
    *err = -res;
    return GW_EIO;
}
