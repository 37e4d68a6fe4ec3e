/* gw_utf8: Markus Kuhn's decoder stress cases, every split point, an exhaustive comparison
 * with a naive reference decoder for short inputs, and random inputs around the ASCII fast
 * path. */
#include "gw_test.h"

#include <stdbool.h>

#include "gw_utf8.h"

/* Decodes code point by code point, the obvious way, as an independent oracle. */
static bool ref_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        size_t more;
        uint32_t cp, min;
        if (b < 0x80) {
            i++;
            continue;
        } else if ((b & 0xE0) == 0xC0) {
            more = 1, cp = b & 0x1F, min = 0x80;
        } else if ((b & 0xF0) == 0xE0) {
            more = 2, cp = b & 0x0F, min = 0x800;
        } else if ((b & 0xF8) == 0xF0) {
            more = 3, cp = b & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < more)
            return false;
        for (size_t j = 1; j <= more; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += more + 1;
    }
    return true;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Checks s whole, byte by byte, and split in two at every point. */
static void check(const char *s, size_t n, bool valid)
{
    const uint8_t *p = (const uint8_t *)s;
    ASSERT_INT_EQ(ref_valid(p, n), valid);
    ASSERT_INT_EQ(gw_utf8_valid(p, n), valid);

    uint32_t st = GW_UTF8_ACCEPT;
    for (size_t i = 0; i < n; i++)
        st = gw_utf8_feed(st, p + i, 1);
    ASSERT_INT_EQ(st == GW_UTF8_ACCEPT, valid);

    for (size_t cut = 0; cut <= n; cut++) {
        st = gw_utf8_feed(GW_UTF8_ACCEPT, p, cut);
        st = gw_utf8_feed(st, p + cut, n - cut);
        if ((st == GW_UTF8_ACCEPT) != valid)
            GW_FAIL_AT("split at %zu of %zu: state %u", cut, n, (unsigned)st);
    }
}

#define VALID(lit) check(lit, sizeof(lit) - 1, true)
#define INVALID(lit) check(lit, sizeof(lit) - 1, false)

/* Kuhn section 1: correct text. */
TEST(test_kuhn_correct)
{
    VALID("");
    VALID("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"); /* "kosme" in Greek */
    VALID("Hello, world");
}

/* Kuhn section 2: first and last sequences of each length, other boundaries. */
TEST(test_kuhn_boundaries)
{
    check("\x00", 1, true);
    VALID("\xc2\x80");
    VALID("\xe0\xa0\x80");
    VALID("\xf0\x90\x80\x80");
    INVALID("\xf8\x88\x80\x80\x80"); /* 5- and 6-byte forms are gone in RFC 3629 */
    INVALID("\xfc\x84\x80\x80\x80\x80");
    VALID("\x7f");
    VALID("\xdf\xbf");
    VALID("\xef\xbf\xbf");
    INVALID("\xf7\xbf\xbf\xbf"); /* U+1FFFFF */
    INVALID("\xfb\xbf\xbf\xbf\xbf");
    INVALID("\xfd\xbf\xbf\xbf\xbf\xbf");
    VALID("\xed\x9f\xbf");       /* U+D7FF */
    VALID("\xee\x80\x80");       /* U+E000 */
    VALID("\xef\xbf\xbd");       /* U+FFFD */
    VALID("\xf4\x8f\xbf\xbf");   /* U+10FFFF */
    INVALID("\xf4\x90\x80\x80"); /* U+110000 */
}

/* Kuhn section 3: malformed sequences. */
TEST(test_kuhn_malformed)
{
    INVALID("\x80");
    INVALID("\xbf");
    INVALID("\x80\xbf");
    INVALID("\x80\xbf\x80");
    INVALID("\x80\xbf\x80\xbf");
    INVALID("\x80\xbf\x80\xbf\x80");
    INVALID("a\x80"
            "b");
    char buf[8];
    /* Every continuation byte alone, and every lead byte followed by a space. */
    for (int b = 0x80; b <= 0xff; b++) {
        buf[0] = (char)b;
        buf[1] = ' ';
        check(buf, 1, false);
        check(buf, 2, false);
    }
    /* Sequences with the last continuation byte missing. */
    INVALID("\xc0");
    INVALID("\xe0\x80");
    INVALID("\xf0\x80\x80");
    INVALID("\xf8\x80\x80\x80");
    INVALID("\xfc\x80\x80\x80\x80");
    INVALID("\xdf");
    INVALID("\xef\xbf");
    INVALID("\xf7\xbf\xbf");
    INVALID("\xc2");
    INVALID("\xe1\x80");
    INVALID("\xf1\x80\x80");
    INVALID("\xc2"
            "a");
    INVALID("\xe1\x80"
            "a");
    INVALID("\xf1\x80\x80"
            "a");
    /* All of them concatenated. */
    INVALID("\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80"
            "\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf");
    /* Impossible bytes. */
    INVALID("\xfe");
    INVALID("\xff");
    INVALID("\xfe\xfe\xff\xff");
}

/* Kuhn section 4: overlong forms. */
TEST(test_kuhn_overlong)
{
    INVALID("\xc0\xaf"); /* "/" */
    INVALID("\xe0\x80\xaf");
    INVALID("\xf0\x80\x80\xaf");
    INVALID("\xf8\x80\x80\x80\xaf");
    INVALID("\xfc\x80\x80\x80\x80\xaf");
    INVALID("\xc1\xbf"); /* the largest overlong of each length */
    INVALID("\xe0\x9f\xbf");
    INVALID("\xf0\x8f\xbf\xbf");
    INVALID("\xf8\x87\xbf\xbf\xbf");
    INVALID("\xfc\x83\xbf\xbf\xbf\xbf");
    INVALID("\xc0\x80"); /* NUL */
    INVALID("\xe0\x80\x80");
    INVALID("\xf0\x80\x80\x80");
    INVALID("\xf8\x80\x80\x80\x80");
    INVALID("\xfc\x80\x80\x80\x80\x80");
}

/* Kuhn section 5: surrogates (invalid) and noncharacters (valid UTF-8). */
TEST(test_kuhn_surrogates_noncharacters)
{
    INVALID("\xed\xa0\x80");
    INVALID("\xed\xad\xbf");
    INVALID("\xed\xae\x80");
    INVALID("\xed\xaf\xbf");
    INVALID("\xed\xb0\x80");
    INVALID("\xed\xbe\x80");
    INVALID("\xed\xbf\xbf");
    INVALID("\xed\xa0\x80\xed\xb0\x80");
    INVALID("\xed\xa0\x80\xed\xbf\xbf");
    INVALID("\xed\xad\xbf\xed\xb0\x80");
    INVALID("\xed\xaf\xbf\xed\xbf\xbf");
    VALID("\xef\xbf\xbe"); /* U+FFFE */
    VALID("\xef\xbf\xbf"); /* U+FFFF */
    VALID("\xef\xb7\x90"); /* U+FDD0 */
    VALID("\xf0\x9f\xbf\xbe");
    VALID("\xf4\x8f\xbf\xbe");
}

/* The state machine rejects at the first byte that proves a sequence invalid, which is what
 * lets the websocket decoder fail a text message early. */
TEST(test_rejects_early)
{
    ASSERT_UINT_EQ(gw_utf8_feed(GW_UTF8_ACCEPT, (const uint8_t *)"\xc0", 1), GW_UTF8_REJECT);
    ASSERT_UINT_EQ(gw_utf8_feed(GW_UTF8_ACCEPT, (const uint8_t *)"\xf5", 1), GW_UTF8_REJECT);
    ASSERT_UINT_EQ(gw_utf8_feed(GW_UTF8_ACCEPT, (const uint8_t *)"\x80", 1), GW_UTF8_REJECT);
    ASSERT_UINT_EQ(gw_utf8_feed(GW_UTF8_ACCEPT, (const uint8_t *)"\xe0\x9f", 2), GW_UTF8_REJECT);
    ASSERT_UINT_EQ(gw_utf8_feed(GW_UTF8_ACCEPT, (const uint8_t *)"\xed\xa0", 2), GW_UTF8_REJECT);
    ASSERT_UINT_EQ(gw_utf8_feed(GW_UTF8_ACCEPT, (const uint8_t *)"\xf0\x8f", 2), GW_UTF8_REJECT);
    ASSERT_UINT_EQ(gw_utf8_feed(GW_UTF8_ACCEPT, (const uint8_t *)"\xf4\x90", 2), GW_UTF8_REJECT);
    /* Incomplete but still possible: neither accepted nor rejected. */
    uint32_t st = gw_utf8_feed(GW_UTF8_ACCEPT, (const uint8_t *)"\xf4\x8f\xbf", 3);
    ASSERT_TRUE(st != GW_UTF8_ACCEPT && st != GW_UTF8_REJECT);
    ASSERT_UINT_EQ(gw_utf8_feed(st, (const uint8_t *)"\xbf", 1), GW_UTF8_ACCEPT);
    /* Rejection is sticky, whatever follows. */
    st = gw_utf8_feed(GW_UTF8_ACCEPT, (const uint8_t *)"\xff", 1);
    ASSERT_UINT_EQ(gw_utf8_feed(st, (const uint8_t *)"abcdefghijklmnop", 16), GW_UTF8_REJECT);
    ASSERT_UINT_EQ(gw_utf8_feed(GW_UTF8_REJECT, NULL, 0), GW_UTF8_REJECT);
}

/* Every code point encodes to valid UTF-8 except the surrogates, checked with a prefix of
 * ASCII of every length mod 8 so each character also lands at every word offset. */
TEST(test_every_code_point)
{
    uint8_t buf[16];
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        size_t pad = cp & 7, n = pad;
        memset(buf, 'x', pad);
        if (cp < 0x80) {
            buf[n++] = (uint8_t)cp;
        } else if (cp < 0x800) {
            buf[n++] = (uint8_t)(0xC0 | cp >> 6);
            buf[n++] = (uint8_t)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            buf[n++] = (uint8_t)(0xE0 | cp >> 12);
            buf[n++] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
            buf[n++] = (uint8_t)(0x80 | (cp & 0x3F));
        } else {
            buf[n++] = (uint8_t)(0xF0 | cp >> 18);
            buf[n++] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
            buf[n++] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
            buf[n++] = (uint8_t)(0x80 | (cp & 0x3F));
        }
        bool expect = cp < 0xD800 || cp > 0xDFFF;
        if (gw_utf8_valid(buf, n) != expect)
            GW_FAIL_AT("U+%04X: expected %d", (unsigned)cp, expect);
        if (gw_utf8_valid(buf + pad, n - pad) != expect)
            GW_FAIL_AT("U+%04X alone: expected %d", (unsigned)cp, expect);
    }
}

/* All 1-, 2- and 3-byte strings agree with the reference decoder. */
TEST(test_exhaustive_short)
{
    uint8_t b[3];
    for (uint32_t v = 0; v < (1u << 24); v++) {
        b[0] = (uint8_t)(v >> 16), b[1] = (uint8_t)(v >> 8), b[2] = (uint8_t)v;
        if (gw_utf8_valid(b, 3) != ref_valid(b, 3))
            GW_FAIL_AT("%02x %02x %02x", b[0], b[1], b[2]);
        if (v < (1u << 16) && gw_utf8_valid(b + 1, 2) != ref_valid(b + 1, 2))
            GW_FAIL_AT("%02x %02x", b[1], b[2]);
    }
}

/* Random strings drawn from interesting bytes, mostly ASCII runs so the word-at-a-time path is
 * entered and left at every offset; each is checked whole and at random split points. */
TEST(test_random_against_reference)
{
    static const uint8_t pool[] = {'a',  0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                                   0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee,
                                   0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff};
    uint64_t rng = 0x9E3779B97F4A7C15u;
    uint8_t buf[64];
    size_t valid_seen = 0;
    for (int iter = 0; iter < 300000; iter++) {
        size_t n = rng_next(&rng) % sizeof(buf);
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rng_next(&rng);
            buf[i] = r % 4 ? (uint8_t)('a' + r % 26) : pool[(r >> 8) % sizeof(pool)];
        }
        bool expect = ref_valid(buf, n);
        valid_seen += expect;
        if (gw_utf8_valid(buf, n) != expect)
            GW_FAIL_AT("iteration %d, %zu bytes: expected %d", iter, n, expect);
        size_t cut = n ? rng_next(&rng) % n : 0;
        uint32_t st = gw_utf8_feed(GW_UTF8_ACCEPT, buf, cut);
        st = gw_utf8_feed(st, buf + cut, n - cut);
        if ((st == GW_UTF8_ACCEPT) != expect)
            GW_FAIL_AT("iteration %d split at %zu: expected %d", iter, cut, expect);
    }
    /* The mix must exercise both outcomes, or the comparison proves little. */
    ASSERT_TRUE(valid_seen > 1000 && valid_seen < 299000);
}

/* A long ASCII buffer with one bad byte at each position near the end, and valid text whose
 * multi-byte characters straddle every word boundary. */
TEST(test_long_buffers)
{
    size_t n = 1 << 20;
    uint8_t *buf = malloc(n);
    memset(buf, 'a', n);
    ASSERT_TRUE(gw_utf8_valid(buf, n));
    for (size_t i = n - 17; i < n; i++) {
        buf[i] = 0x80;
        if (gw_utf8_valid(buf, n))
            GW_FAIL_AT("bad byte at %zu accepted", i);
        buf[i] = 'a';
    }
    /* "a" + "é" + "€" + "𝄞" is 10 bytes, so repeats shift against the 8-byte words. */
    static const char unit[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e";
    size_t m = (n / 10) * 10;
    for (size_t i = 0; i < m; i += 10)
        memcpy(buf + i, unit, 10);
    ASSERT_TRUE(gw_utf8_valid(buf, m));
    ASSERT_TRUE(!gw_utf8_valid(buf, m - 1));
    buf[m / 20 * 10 + 4] = 0xc0; /* the second byte of a "€" */
    ASSERT_TRUE(!gw_utf8_valid(buf, m));
    free(buf);
}

GW_TEST_MAIN(TEST_CASE(test_kuhn_correct), TEST_CASE(test_kuhn_boundaries),
             TEST_CASE(test_kuhn_malformed), TEST_CASE(test_kuhn_overlong),
             TEST_CASE(test_kuhn_surrogates_noncharacters), TEST_CASE(test_rejects_early),
             TEST_CASE(test_every_code_point), TEST_CASE(test_exhaustive_short),
             TEST_CASE(test_random_against_reference), TEST_CASE(test_long_buffers))
