/* gw_hash: SipHash gives the reference outputs (the paper's SipHash-2-4 vectors; SipHash-1-3 as
 * CPython computes it), and the keyed table hash spreads keys that all collide under the
 * unkeyed FNV-1a the tables used before. */
#include "gw_test.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gw_hash.h"

/* The reference key: bytes 00 01 .. 0f. */
static const struct gw_siphash_key reference_key = {0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};

struct vector {
    size_t len; /* of the message 00 01 .. (len - 1) */
    uint64_t out;
};

static bool vectors_match(uint64_t (*siphash)(const struct gw_siphash_key *, const void *, size_t),
                          const struct gw_siphash_key *key, const struct vector *v, size_t n)
{
    unsigned char msg[64];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (unsigned char)i;
    bool all = true;
    for (size_t i = 0; i < n; i++) {
        uint64_t out = siphash(key, msg, v[i].len);
        if (out != v[i].out) {
            fprintf(stderr, "len %zu: %016" PRIx64 ", expected %016" PRIx64 "\n", v[i].len, out,
                    v[i].out);
            all = false;
        }
    }
    return all;
}

TEST(siphash24_reference_vectors)
{
    /* vectors.h of the reference implementation, under the reference key; len 15 is the
     * paper's appendix example. */
    static const struct vector vectors[] = {
        {0, 0x726fdb47dd0e0e31ull},  {1, 0x74f839c593dc67fdull},  {2, 0x0d6c8009d9a94f5aull},
        {3, 0x85676696d7fb7e2dull},  {7, 0xab0200f58b01d137ull},  {8, 0x93f5f5799a932462ull},
        {15, 0xa129ca6149be45e5ull}, {16, 0x3f2acc7f57c29bdbull}, {63, 0x958a324ceb064572ull},
    };
    ASSERT_TRUE(
        vectors_match(gw_siphash24, &reference_key, vectors, sizeof(vectors) / sizeof(vectors[0])));
}

TEST(siphash13_vectors)
{
    /* CPython hashes bytes with SipHash-1-3; PYTHONHASHSEED=0 makes its key all zeros:
     * PYTHONHASHSEED=0 python3 -c 'print(hex(hash(bytes(range(N))) & (2**64 - 1)))' */
    static const struct gw_siphash_key zero_key = {0, 0};
    static const struct vector vectors[] = {
        {1, 0x68a914128e01e473ull},  {2, 0x010bac45c41e3669ull},  {3, 0x4d4c9a4a8ef6e0adull},
        {7, 0x2f098ab0c751325aull},  {8, 0xead411e67ebe2eeaull},  {9, 0x75927f9d95124362ull},
        {15, 0xf30eb725bb91c9eaull}, {16, 0x8972188433a5c5b7ull}, {63, 0x385d3e39e5f37359ull},
    };
    ASSERT_TRUE(
        vectors_match(gw_siphash13, &zero_key, vectors, sizeof(vectors) / sizeof(vectors[0])));
}

TEST(keyed_hash_is_stable_and_secret)
{
    static const char id[] = "a-session-id";
    uint32_t h = gw_hash_keyed(id, sizeof(id) - 1);
    ASSERT_UINT_EQ(gw_hash_keyed(id, sizeof(id) - 1), h);
    /* The key is drawn once: a later init (main's) keeps the tables' hashes valid. */
    gw_hash_init();
    ASSERT_UINT_EQ(gw_hash_keyed(id, sizeof(id) - 1), h);
    /* Under a zero key (or the reference one) the output could be computed outside. Both
     * matching a random key's by chance: 2^-64. */
    static const struct gw_siphash_key zero_key = {0, 0};
    ASSERT_TRUE(h != (uint32_t)gw_siphash13(&zero_key, id, sizeof(id) - 1) ||
                h != (uint32_t)gw_siphash13(&reference_key, id, sizeof(id) - 1));
}

TEST(keys_colliding_under_fnv_spread)
{
    /* 1,024 ids that all fall in bucket 0 of a 1,024-bucket table under FNV-1a 32 (what a
     * flood would send) land all over it under the keyed hash: at a load of one, the longest
     * of 1,024 chains is about 6 for random hashes. */
    enum { BUCKETS = 1024, IDS = 1024 };
    static unsigned chain[BUCKETS];
    size_t found = 0;
    char id[32];
    for (unsigned i = 0; found < IDS; i++) {
        int n = snprintf(id, sizeof(id), "s%u", i);
        if ((gw_fnv32(GW_FNV32_INIT, id, (size_t)n) & (BUCKETS - 1)) != 0)
            continue;
        chain[gw_hash_keyed(id, (size_t)n) & (BUCKETS - 1)]++;
        found++;
    }
    unsigned longest = 0;
    for (size_t b = 0; b < BUCKETS; b++)
        longest = chain[b] > longest ? chain[b] : longest;
    ASSERT_TRUE(longest <= 16);
}

GW_TEST_MAIN(TEST_CASE(siphash24_reference_vectors), TEST_CASE(siphash13_vectors),
             TEST_CASE(keyed_hash_is_stable_and_secret), TEST_CASE(keys_colliding_under_fnv_spread))
