/* gw_sendbatch over real sockets: several queues go out in one submission, each in order and
 * whole; a long queue sends as much as one writev would and keeps the rest, and long queues
 * fill a batch before its count of sends; a full socket answers
 * GW_EAGAIN with its bytes still queued, a small one takes what fits; a peer that is gone
 * answers GW_EIO (EPIPE) without a SIGPIPE; a batch refuses more sends than it holds. This
 * machine has io_uring: a gateway without it falls back to writev, but the test wants the
 * batch path. */
#include "gw_test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gw_error.h"
#include "gw_outq.h"
#include "gw_refbuf.h"
#include "gw_sendbatch.h"

/* A batch named `b` in the calling test, which fails (saying why) without io_uring. */
#define NEW_BATCH(sends)                                                                           \
    struct gw_sendbatch *b = gw_sendbatch_new(sends);                                              \
    if (!b)                                                                                        \
        fprintf(stderr, "io_uring: %s\n", strerror(errno));                                        \
    ASSERT_TRUE(b != NULL)

/* Fills fd's send buffer; returns the bytes it took (0 on an unexpected error). */
static size_t fill(int fd)
{
    static const char junk[4096];
    size_t total = 0;
    for (;;) {
        ssize_t n = write(fd, junk, sizeof(junk));
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? total : 0;
        total += (size_t)n;
    }
}

TEST(queues_go_out_whole_and_in_order_in_one_submission)
{
    enum { N = 5 };
    int fds[N][2];
    struct gw_outq *q[N];
    struct gw_refbuf *shared = gw_refbuf_copy("a[\"shared\"]", 11);
    NEW_BATCH(8);
    for (int i = 0; i < N; i++) {
        gw_test_socket_pair(fds[i], 0);
        q[i] = gw_outq_new();
        char head[8];
        snprintf(head, sizeof(head), "%d:", i);
        gw_outq_add(q[i], head, strlen(head));
        gw_outq_add_ref(q[i], shared, 0, shared->len);
        gw_outq_add(q[i], "h", 1);
        ASSERT_TRUE(gw_sendbatch_add(b, q[i], fds[i][0]));
    }
    ASSERT_UINT_EQ(gw_sendbatch_count(b), N);
    ASSERT_UINT_EQ(shared->refs, N + 1);
    gw_sendbatch_send(b);
    ASSERT_UINT_EQ(gw_sendbatch_count(b), 0);
    ASSERT_UINT_EQ(shared->refs, 1);
    for (int i = 0; i < N; i++) {
        int err = 0;
        ASSERT_INT_EQ(gw_sendbatch_result(b, (size_t)i, &err), 14);
        ASSERT_UINT_EQ(gw_outq_bytes(q[i]), 0);
        char buf[64], want[32];
        snprintf(want, sizeof(want), "%d:a[\"shared\"]h", i);
        size_t n = gw_test_read_all(fds[i][1], buf, sizeof(buf));
        ASSERT_MEM_EQ(buf, n, want, strlen(want));
        gw_outq_free(q[i]);
        close(fds[i][0]);
        close(fds[i][1]);
    }
    gw_refbuf_unref(shared);
    gw_sendbatch_free(b);
}

TEST(a_long_queue_sends_its_first_ranges_and_keeps_the_rest)
{
    int fds[2];
    gw_test_socket_pair(fds, 0);
    enum { PARTS = 3 * GW_OUTQ_WRITE_IOV };
    struct gw_refbuf *parts[PARTS];
    struct gw_outq *q = gw_outq_new();
    char want[PARTS];
    for (int i = 0; i < PARTS; i++) {
        want[i] = (char)('A' + i % 26);
        parts[i] = gw_refbuf_copy(&want[i], 1);
        gw_outq_add_ref(q, parts[i], 0, 1);
        gw_refbuf_unref(parts[i]);
    }
    NEW_BATCH(4);
    ASSERT_TRUE(gw_sendbatch_add(b, q, fds[0]));
    gw_sendbatch_send(b);
    int err = 0;
    ssize_t sent = gw_sendbatch_result(b, 0, &err);
    ASSERT_INT_EQ(sent, GW_OUTQ_WRITE_IOV); /* as much as one writev would take */
    ASSERT_UINT_EQ(gw_outq_bytes(q), PARTS - (size_t)sent);
    /* The rest follows with the ordinary writes, in order. */
    while (gw_outq_bytes(q) > 0)
        ASSERT_TRUE(gw_outq_write(q, fds[0]) > 0);
    char buf[PARTS + 1];
    size_t n = gw_test_read_all(fds[1], buf, sizeof(buf));
    ASSERT_MEM_EQ(buf, n, want, PARTS);
    gw_outq_free(q);
    gw_sendbatch_free(b);
    close(fds[0]);
    close(fds[1]);
}

TEST(a_full_socket_answers_eagain_and_keeps_its_bytes)
{
    int full[2], free_[2];
    gw_test_socket_pair(full, 4096);
    gw_test_socket_pair(free_, 0);
    size_t filled = fill(full[0]);
    ASSERT_TRUE(filled > 0);
    struct gw_outq *qa = gw_outq_new(), *qb = gw_outq_new();
    gw_outq_add(qa, "h", 1);
    gw_outq_add(qb, "o", 1);
    NEW_BATCH(4);
    ASSERT_TRUE(gw_sendbatch_add(b, qa, full[0]));
    ASSERT_TRUE(gw_sendbatch_add(b, qb, free_[0]));
    gw_sendbatch_send(b);
    int err = 0;
    ASSERT_INT_EQ(gw_sendbatch_result(b, 0, &err), GW_EAGAIN);
    ASSERT_UINT_EQ(gw_outq_bytes(qa), 1);
    ASSERT_INT_EQ(gw_sendbatch_result(b, 1, &err), 1);
    ASSERT_UINT_EQ(gw_outq_bytes(qb), 0);
    /* Once the reader drains it, the kept byte goes out last. */
    static char sink[1 << 20];
    ASSERT_UINT_EQ(gw_test_read_all(full[1], sink, sizeof(sink)), filled);
    ASSERT_TRUE(gw_sendbatch_add(b, qa, full[0]));
    gw_sendbatch_send(b);
    ASSERT_INT_EQ(gw_sendbatch_result(b, 0, &err), 1);
    char c = 0;
    ASSERT_INT_EQ(read(full[1], &c, 1), 1);
    ASSERT_INT_EQ(c, 'h');
    gw_outq_free(qa);
    gw_outq_free(qb);
    gw_sendbatch_free(b);
    close(full[0]);
    close(full[1]);
    close(free_[0]);
    close(free_[1]);
}

TEST(a_small_socket_buffer_takes_what_fits)
{
    int fds[2];
    gw_test_socket_pair(fds, 4096);
    /* A send buffer of a few KiB has room for some, not all, of a 256 KiB copy. */
    size_t big = 256 * 1024;
    char *data = malloc(big);
    memset(data, 'x', big);
    struct gw_outq *q = gw_outq_new();
    gw_outq_add(q, data, big);
    NEW_BATCH(1);
    ASSERT_TRUE(gw_sendbatch_add(b, q, fds[0]));
    gw_sendbatch_send(b);
    int err = 0;
    ssize_t sent = gw_sendbatch_result(b, 0, &err);
    ASSERT_TRUE(sent > 0 && (size_t)sent < big);
    ASSERT_UINT_EQ(gw_outq_bytes(q), big - (size_t)sent);
    free(data);
    gw_outq_free(q);
    gw_sendbatch_free(b);
    close(fds[0]);
    close(fds[1]);
}

TEST(a_gone_peer_answers_eio_with_epipe_and_no_signal)
{
    int fds[2];
    gw_test_socket_pair(fds, 0);
    close(fds[1]);
    struct gw_outq *q = gw_outq_new();
    gw_outq_add(q, "h", 1);
    NEW_BATCH(2);
    ASSERT_TRUE(gw_sendbatch_add(b, q, fds[0]));
    gw_sendbatch_send(b); /* with SIGPIPE at its default, a signal would end the test here */
    int err = 0;
    ASSERT_INT_EQ(gw_sendbatch_result(b, 0, &err), GW_EIO);
    ASSERT_INT_EQ(err, EPIPE);
    ASSERT_UINT_EQ(gw_outq_bytes(q), 1);
    gw_outq_free(q);
    gw_sendbatch_free(b);
    close(fds[0]);
}

/* Queues of many ranges each fill a batch's ranges before its sends: it then takes no more,
 * and every queue it took goes out whole. */
TEST(a_batch_of_long_queues_is_full_before_its_count_of_sends)
{
    enum { QUEUES = 64 };
    int fds[QUEUES][2];
    struct gw_outq *q[QUEUES];
    struct gw_refbuf *one = gw_refbuf_copy("x", 1);
    NEW_BATCH(QUEUES);
    size_t taken = 0;
    for (int i = 0; i < QUEUES; i++) {
        gw_test_socket_pair(fds[i], 0);
        q[i] = gw_outq_new();
        for (int k = 0; k < GW_OUTQ_WRITE_IOV; k++)
            gw_outq_add_ref(q[i], one, 0, 1);
        if (taken == (size_t)i && gw_sendbatch_add(b, q[i], fds[i][0]))
            taken++;
    }
    ASSERT_TRUE(taken > 0 && taken < QUEUES);
    ASSERT_UINT_EQ(gw_sendbatch_count(b), taken);
    gw_sendbatch_send(b);
    for (int i = 0; i < QUEUES; i++) {
        int err = 0;
        if ((size_t)i < taken)
            ASSERT_INT_EQ(gw_sendbatch_result(b, (size_t)i, &err), GW_OUTQ_WRITE_IOV);
        ASSERT_UINT_EQ(gw_outq_bytes(q[i]), (size_t)i < taken ? 0 : GW_OUTQ_WRITE_IOV);
        gw_outq_free(q[i]);
        close(fds[i][0]);
        close(fds[i][1]);
    }
    ASSERT_UINT_EQ(one->refs, 1);
    gw_refbuf_unref(one);
    gw_sendbatch_free(b);
}

TEST(a_batch_holds_as_many_sends_as_it_was_made_for)
{
    int fds[2];
    gw_test_socket_pair(fds, 0);
    struct gw_outq *q[3];
    NEW_BATCH(2);
    for (int i = 0; i < 3; i++) {
        q[i] = gw_outq_new();
        gw_outq_add(q[i], "x", 1);
    }
    ASSERT_TRUE(gw_sendbatch_add(b, q[0], fds[0]));
    ASSERT_TRUE(gw_sendbatch_add(b, q[1], fds[0]));
    ASSERT_TRUE(!gw_sendbatch_add(b, q[2], fds[0]));
    gw_sendbatch_send(b);
    /* Emptied: it takes sends again. */
    ASSERT_TRUE(gw_sendbatch_add(b, q[2], fds[0]));
    gw_sendbatch_send(b);
    char buf[8];
    ASSERT_UINT_EQ(gw_test_read_all(fds[1], buf, sizeof(buf)), 3);
    for (int i = 0; i < 3; i++)
        gw_outq_free(q[i]);
    gw_sendbatch_free(b);
    close(fds[0]);
    close(fds[1]);
}

GW_TEST_MAIN(TEST_CASE(queues_go_out_whole_and_in_order_in_one_submission),
             TEST_CASE(a_long_queue_sends_its_first_ranges_and_keeps_the_rest),
             TEST_CASE(a_full_socket_answers_eagain_and_keeps_its_bytes),
             TEST_CASE(a_small_socket_buffer_takes_what_fits),
             TEST_CASE(a_gone_peer_answers_eio_with_epipe_and_no_signal),
             TEST_CASE(a_batch_of_long_queues_is_full_before_its_count_of_sends),
             TEST_CASE(a_batch_holds_as_many_sends_as_it_was_made_for))
