/* gw_slab: objects are zeroed, distinct and reused after free, many chunks' worth can be live
 * at once, and release needs every object back. */
#include "gw_test.h"

#include <stdint.h>
#include <string.h>

#include "gw_slab.h"

TEST(alloc_free_reuse)
{
    struct gw_slab s;
    gw_slab_init(&s, 20); /* rounded up to 24 */
    ASSERT_UINT_EQ(s.size, 24);
    enum { N = 10000 }; /* several 64 KiB chunks */
    static unsigned char *objs[N];
    for (int i = 0; i < N; i++) {
        objs[i] = gw_slab_alloc(&s);
        for (size_t j = 0; j < s.size; j++)
            ASSERT_TRUE(objs[i][j] == 0);
        ASSERT_TRUE(((uintptr_t)objs[i] & 7) == 0);
        memset(objs[i], 0xAB, s.size);
    }
    /* Distinct and not overlapping: each still holds only its own pattern byte. */
    for (int i = 0; i < N; i++)
        objs[i][0] = (unsigned char)i;
    for (int i = 0; i < N; i++)
        ASSERT_TRUE(objs[i][0] == (unsigned char)i && objs[i][s.size - 1] == 0xAB);
    ASSERT_UINT_EQ(s.live, N);
    for (int i = 0; i < N; i += 2)
        gw_slab_free(&s, objs[i]);
    /* Freed ones come back zeroed. */
    for (int i = 0; i < N; i += 2) {
        objs[i] = gw_slab_alloc(&s);
        ASSERT_TRUE(objs[i][0] == 0 && objs[i][s.size - 1] == 0);
    }
    for (int i = 0; i < N; i++)
        gw_slab_free(&s, objs[i]);
    ASSERT_UINT_EQ(s.live, 0);
    gw_slab_release(&s);
}

TEST(static_initialiser)
{
    static struct gw_slab s = GW_SLAB_INIT(13);
    ASSERT_UINT_EQ(s.size, 16);
    void *a = gw_slab_alloc(&s);
    void *b = gw_slab_alloc(&s);
    ASSERT_TRUE(a != b);
    gw_slab_free(&s, a);
    gw_slab_free(&s, b);
    gw_slab_free(&s, NULL);
    gw_slab_release(&s);
}

GW_TEST_MAIN(TEST_CASE(alloc_free_reuse), TEST_CASE(static_initialiser))
