/* gw_outq over a real socket pair: copies and references come out in order, partial writes
 * resume mid-segment, references are released once written or dropped, and a full socket
 * reports EAGAIN with the rest still queued. */
#include "gw_test.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gw_error.h"
#include "gw_outq.h"
#include "gw_refbuf.h"

TEST(copies_and_references_in_order)
{
    int fds[2];
    gw_test_socket_pair(fds, 0);
    struct gw_refbuf *shared = gw_refbuf_copy("SHARED-FRAME", 12);
    struct gw_outq *q = gw_outq_new();
    gw_outq_add(q, "ab", 2);
    gw_outq_add_ref(q, shared, 0, 6);
    gw_outq_add(q, "cd", 2);
    gw_outq_add(q, "ef", 2); /* joins the previous copy segment */
    gw_outq_add_ref(q, shared, 7, 5);
    ASSERT_UINT_EQ(shared->refs, 3);
    ASSERT_UINT_EQ(gw_outq_bytes(q), 17);
    ASSERT_INT_EQ(gw_outq_write(q, fds[0]), 17);
    ASSERT_UINT_EQ(gw_outq_bytes(q), 0);
    ASSERT_UINT_EQ(shared->refs, 1);
    char buf[64];
    size_t n = gw_test_read_all(fds[1], buf, sizeof(buf));
    ASSERT_MEM_EQ(buf, n, "abSHAREDcdefFRAME", 17);
    gw_outq_free(q);
    gw_refbuf_unref(shared);
    close(fds[0]);
    close(fds[1]);
}

TEST(large_copy_and_many_segments)
{
    int fds[2];
    gw_test_socket_pair(fds, 0);
    static char big[5000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    struct gw_outq *q = gw_outq_new();
    gw_outq_add(q, big, sizeof(big));
    struct gw_refbuf *b = gw_refbuf_copy("x", 1);
    /* More segments than one writev takes. */
    for (int i = 0; i < 300; i++)
        gw_outq_add_ref(q, b, 0, 1);
    size_t total = 0;
    while (gw_outq_bytes(q) > 0) {
        ssize_t n = gw_outq_write(q, fds[0]);
        ASSERT_TRUE(n > 0);
        total += (size_t)n;
    }
    ASSERT_UINT_EQ(total, sizeof(big) + 300);
    ASSERT_UINT_EQ(b->refs, 1);
    static char got[6000];
    size_t n = gw_test_read_all(fds[1], got, sizeof(got));
    ASSERT_UINT_EQ(n, sizeof(big) + 300);
    ASSERT_MEM_EQ(got, sizeof(big), big, sizeof(big));
    for (size_t i = sizeof(big); i < n; i++)
        ASSERT_TRUE(got[i] == 'x');
    gw_outq_free(q);
    gw_refbuf_unref(b);
    close(fds[0]);
    close(fds[1]);
}

TEST(full_socket_keeps_the_rest_and_resumes_mid_segment)
{
    int fds[2];
    gw_test_socket_pair(fds, 4096);
    static char chunk[1000];
    memset(chunk, 'z', sizeof(chunk));
    struct gw_refbuf *b = gw_refbuf_copy(chunk, sizeof(chunk));
    struct gw_outq *q = gw_outq_new();
    size_t queued = 0;
    for (int i = 0; i < 2000; i++) {
        gw_outq_add_ref(q, b, 0, sizeof(chunk));
        gw_outq_add(q, "|", 1);
        queued += sizeof(chunk) + 1;
    }
    size_t written = 0;
    ssize_t n;
    while ((n = gw_outq_write(q, fds[0])) > 0)
        written += (size_t)n;
    ASSERT_INT_EQ(n, GW_EAGAIN);
    ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK);
    ASSERT_TRUE(written > 0 && written < queued);
    ASSERT_UINT_EQ(gw_outq_bytes(q), queued - written);
    /* Drain the reader while writing the rest: every byte arrives once, in order. */
    static char got[2002000];
    size_t have = gw_test_read_all(fds[1], got, sizeof(got));
    while (gw_outq_bytes(q) > 0) {
        n = gw_outq_write(q, fds[0]);
        ASSERT_TRUE(n > 0 || errno == EAGAIN);
        have += gw_test_read_all(fds[1], got + have, sizeof(got) - have);
    }
    have += gw_test_read_all(fds[1], got + have, sizeof(got) - have);
    ASSERT_UINT_EQ(have, queued);
    for (size_t i = 0; i < have; i++)
        ASSERT_TRUE(got[i] == (i % 1001 == 1000 ? '|' : 'z'));
    ASSERT_UINT_EQ(b->refs, 1);
    gw_outq_free(q);
    gw_refbuf_unref(b);
    close(fds[0]);
    close(fds[1]);
}

TEST(free_releases_unwritten_references)
{
    struct gw_refbuf *b = gw_refbuf_copy("abc", 3);
    struct gw_outq *q = gw_outq_new();
    gw_outq_add_ref(q, b, 0, 3);
    gw_outq_add(q, "def", 3);
    gw_outq_add_ref(q, b, 1, 2);
    ASSERT_UINT_EQ(b->refs, 3);
    gw_outq_free(q);
    ASSERT_UINT_EQ(b->refs, 1);
    gw_refbuf_unref(b);
    gw_outq_pool_release();
}

GW_TEST_MAIN(TEST_CASE(copies_and_references_in_order), TEST_CASE(large_copy_and_many_segments),
             TEST_CASE(full_socket_keeps_the_rest_and_resumes_mid_segment),
             TEST_CASE(free_releases_unwritten_references))
