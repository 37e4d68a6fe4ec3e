#include "gw_hash.h"

#include <stdbool.h>
#include <string.h>
#include <sys/random.h>

#include "gw_alloc.h"

static inline uint64_t rotl(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

struct sip_state {
    uint64_t v0, v1, v2, v3;
};

/* SipRound: the paper's ARX network on the four state words. */
static inline void sip_round(struct sip_state *s)
{
    s->v0 += s->v1;
    s->v1 = rotl(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = rotl(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = rotl(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = rotl(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = rotl(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = rotl(s->v2, 32);
}

static inline void sip_compress(struct sip_state *s, uint64_t m, int rounds)
{
    s->v3 ^= m;
    for (int i = 0; i < rounds; i++)
        sip_round(s);
    s->v0 ^= m;
}

static inline uint64_t load_le64(const unsigned char *p)
{
    uint64_t w = 0;
    for (int i = 7; i >= 0; i--)
        w = (w << 8) | p[i];
    return w;
}

/* SipHash-c-d. Inlined into its two callers, so that the round counts are constants. */
static inline uint64_t siphash(const struct gw_siphash_key *key, const void *data, size_t len,
                               int c_rounds, int d_rounds)
{
    /* The initial state: the key xored with "somepseudorandomlygeneratedbytes". */
    struct sip_state s = {
        .v0 = key->k0 ^ 0x736f6d6570736575ull,
        .v1 = key->k1 ^ 0x646f72616e646f6dull,
        .v2 = key->k0 ^ 0x6c7967656e657261ull,
        .v3 = key->k1 ^ 0x7465646279746573ull,
    };
    const unsigned char *p = data;
    size_t whole = len & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8)
        sip_compress(&s, load_le64(p + i), c_rounds);
    /* The last word: the remaining 0..7 bytes, zero-padded, with len mod 256 in its top byte. */
    uint64_t last = (uint64_t)(len & 0xff) << 56;
    for (size_t i = 0; i < (len & 7); i++)
        last |= (uint64_t)p[whole + i] << (8 * i);
    sip_compress(&s, last, c_rounds);
    s.v2 ^= 0xff;
    for (int i = 0; i < d_rounds; i++)
        sip_round(&s);
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

uint64_t gw_siphash13(const struct gw_siphash_key *key, const void *data, size_t len)
{
    return siphash(key, data, len, 1, 3);
}

uint64_t gw_siphash24(const struct gw_siphash_key *key, const void *data, size_t len)
{
    return siphash(key, data, len, 2, 4);
}

static struct gw_siphash_key process_key;
static bool process_key_ready;

void gw_hash_init(void)
{
    if (process_key_ready)
        return;
    unsigned char bytes[16];
    /* getrandom() returns up to 256 bytes whole once the pool is ready: one call. */
    ssize_t n = getrandom(bytes, sizeof(bytes), 0);
    GW_ASSERT(n == (ssize_t)sizeof(bytes));
    process_key.k0 = load_le64(bytes);
    process_key.k1 = load_le64(bytes + 8);
    process_key_ready = true;
}

uint32_t gw_hash_keyed(const void *data, size_t len)
{
    if (__builtin_expect(!process_key_ready, 0))
        gw_hash_init();
    return (uint32_t)gw_siphash13(&process_key, data, len);
}
