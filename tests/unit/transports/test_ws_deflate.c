/* ws_deflate: Sec-WebSocket-Extensions offers (accepted, declined, malformed) and the
 * per-message deflate/inflate: round trips, no context carried between messages, peers'
 * encodings (final block, no sync-flush tail), the size limit against a decompression bomb,
 * and invalid or truncated data. */
#include "gw_test.h"

#include <stdbool.h>

#include <zlib.h>

#include "gw_alloc.h"
#include "gw_buf.h"
#include "gw_error.h"
#include "ws_deflate.h"

/* ---- offers ---- */

#define ACCEPTED WS_DEFLATE_ACCEPTED
#define NONE WS_DEFLATE_NOT_OFFERED
#define DECLINED WS_DEFLATE_DECLINED
#define MALFORMED WS_DEFLATE_MALFORMED

TEST(test_offers)
{
    static const struct {
        const char *value;
        enum ws_deflate_offer want;
    } cases[] = {
        {"permessage-deflate", ACCEPTED},
        /* Chromium, Firefox, libwebsockets, Python websockets. */
        {"permessage-deflate; client_max_window_bits", ACCEPTED},
        {"permessage-deflate; client_no_context_takeover; client_max_window_bits", ACCEPTED},
        {"permessage-deflate; server_max_window_bits=15; client_max_window_bits=12", ACCEPTED},
        {"permessage-deflate; server_no_context_takeover; client_no_context_takeover", ACCEPTED},
        {"permessage-deflate;client_max_window_bits=8", ACCEPTED},
        {"Permessage-Deflate; Client_Max_Window_Bits", ACCEPTED},
        {"permessage-deflate ; client_max_window_bits = 9 ", ACCEPTED},
        {"permessage-deflate; client_max_window_bits=\"10\"", ACCEPTED},
        {"permessage-deflate; server_max_window_bits=\"1\\5\"", ACCEPTED},
        /* Another extension first; empty list elements. */
        {"x-webkit-deflate-frame, permessage-deflate", ACCEPTED},
        {"foo; a=\"x,y;z\", permessage-deflate", ACCEPTED},
        {" , permessage-deflate,", ACCEPTED},
        /* The first offer we cannot honour is skipped for the next one. */
        {"permessage-deflate; server_max_window_bits=10, permessage-deflate", ACCEPTED},
        {"permessage-deflate; x=1, permessage-deflate; client_max_window_bits", ACCEPTED},

        {"", NONE},
        {" ", NONE},
        {"x-webkit-deflate-frame", NONE},
        {"permessage-deflatex", NONE},
        {"deflate-frame; a=1, foo", NONE},

        /* A window below ours: shared frames could reach further back. */
        {"permessage-deflate; server_max_window_bits=10", DECLINED},
        {"permessage-deflate; server_max_window_bits=8", DECLINED},
        /* Bad values (RFC 7692 7.1.2: 8..15, no leading zero), missing or extra values. */
        {"permessage-deflate; server_max_window_bits", DECLINED},
        {"permessage-deflate; server_max_window_bits=16", DECLINED},
        {"permessage-deflate; server_max_window_bits=015", DECLINED},
        {"permessage-deflate; server_max_window_bits=7", DECLINED},
        {"permessage-deflate; client_max_window_bits=16", DECLINED},
        {"permessage-deflate; client_max_window_bits=08", DECLINED},
        {"permessage-deflate; client_max_window_bits=\"\"", DECLINED},
        {"permessage-deflate; client_max_window_bits=123456789012", DECLINED},
        {"permessage-deflate; server_no_context_takeover=1", DECLINED},
        {"permessage-deflate; client_no_context_takeover=\"\"", DECLINED},
        /* Repeated and unknown parameters. */
        {"permessage-deflate; client_max_window_bits; client_max_window_bits", DECLINED},
        {"permessage-deflate; server_no_context_takeover; server_no_context_takeover", DECLINED},
        {"permessage-deflate; mystery", DECLINED},
        {"permessage-deflate; server_max_window_bits=10, permessage-deflate; x", DECLINED},

        {"permessage-deflate;", MALFORMED},
        {"permessage-deflate; =1", MALFORMED},
        {"permessage-deflate; client_max_window_bits=", MALFORMED},
        {"permessage-deflate; client_max_window_bits=\"10", MALFORMED},
        {"permessage-deflate; client_max_window_bits=\"1\\", MALFORMED},
        {"permessage-deflate client_max_window_bits", MALFORMED},
        {"permessage-deflate; a=b c", MALFORMED},
        {"\"permessage-deflate\"", MALFORMED},
        {"permessage-deflate; a=\"\x01\"", MALFORMED},
        {";", MALFORMED},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        const char *why = NULL;
        enum ws_deflate_offer got =
            ws_deflate_parse_offers(cases[i].value, strlen(cases[i].value), &why);
        if (got != cases[i].want)
            GW_FAIL_AT("offer \"%s\": %d, expected %d (%s)", cases[i].value, (int)got,
                       (int)cases[i].want, why ? why : "-");
        if ((got == DECLINED || got == MALFORMED) && !why)
            GW_FAIL_AT("offer \"%s\": no reason given", cases[i].value);
    }
}

/* ---- compression ---- */

/* Text of n bytes with repetition, like JSON events. */
static char *sample(size_t n, unsigned seed)
{
    static const char *const words[] = {"{\"id\":", "\"name\":\"", "contacts.updated",
                                        "\"},",     "Τη γλώσσα",   "12345",
                                        "company",  "\"email\":\""};
    char *p = gw_malloc(n + 1);
    size_t i = 0;
    while (i < n) {
        seed = seed * 1103515245u + 12345u;
        const char *w = words[(seed >> 16) % GW_ARRAY_LEN(words)];
        size_t len = strlen(w);
        if (len > n - i)
            len = n - i;
        memcpy(p + i, w, len);
        i += len;
    }
    p[n] = 0;
    return p;
}

/* Inflates with plain zlib, as a peer would: appends the tail, raw inflate, fresh window. */
static size_t zlib_inflate(const char *in, size_t len, char *out, size_t cap)
{
    z_stream s;
    memset(&s, 0, sizeof(s));
    if (inflateInit2(&s, -15) != Z_OK)
        return SIZE_MAX;
    char *data = gw_malloc(len + 4);
    memcpy(data, in, len);
    memcpy(data + len, "\x00\x00\xff\xff", 4);
    s.next_in = (Bytef *)data;
    s.avail_in = (uInt)(len + 4);
    s.next_out = (Bytef *)out;
    s.avail_out = (uInt)cap;
    int rc = inflate(&s, Z_SYNC_FLUSH);
    size_t n = cap - s.avail_out;
    inflateEnd(&s);
    gw_free(data);
    return rc == Z_OK || rc == Z_STREAM_END ? n : SIZE_MAX;
}

/* A peer's compressor: one message, fresh window, flushed with `flush`; the sync tail removed
 * when it is there (Z_SYNC_FLUSH). */
static void zlib_deflate(const char *in, size_t len, int flush, int level, struct gw_buf *out)
{
    z_stream s;
    memset(&s, 0, sizeof(s));
    GW_ASSERT(deflateInit2(&s, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    size_t cap = deflateBound(&s, (uLong)len) + 64;
    s.next_in = (Bytef *)in;
    s.avail_in = (uInt)len;
    s.next_out = (Bytef *)gw_buf_reserve(out, cap);
    s.avail_out = (uInt)cap;
    int rc = deflate(&s, flush);
    GW_ASSERT(rc == Z_OK || rc == Z_STREAM_END);
    out->len += cap - s.avail_out;
    deflateEnd(&s);
    if (flush == Z_SYNC_FLUSH) {
        GW_ASSERT(out->len >= 4 && memcmp(out->data + out->len - 4, "\x00\x00\xff\xff", 4) == 0);
        out->len -= 4;
    }
}

TEST(test_round_trips)
{
    struct ws_deflate z = WS_DEFLATE_INIT;
    static const size_t sizes[] = {0, 1, 5, 64, 500, 4096, 70000, 300000};
    for (size_t i = 0; i < GW_ARRAY_LEN(sizes); i++) {
        size_t n = sizes[i];
        char *text = sample(n, (unsigned)i);
        struct gw_buf c = GW_BUF_INIT, back = GW_BUF_INIT;
        ws_deflate_compress(&z, text, n, &c);
        if (n >= 500 && c.len * 2 > n)
            GW_FAIL_AT("%zu bytes compressed to %zu", n, c.len);
        /* A peer reads it with a fresh window... */
        char *out = gw_malloc(n + 1);
        size_t got = zlib_inflate(c.data, c.len, out, n + 1);
        ASSERT_MEM_EQ(out, got, text, n);
        /* ...and so do we, with the exact limit. */
        ASSERT_INT_EQ(ws_deflate_inflate(&z, c.data ? c.data : "", c.len, n, &back), 0);
        ASSERT_MEM_EQ(back.data ? back.data : "", back.len, text, n);
        gw_free(out);
        gw_free(text);
        gw_buf_release(&c);
        gw_buf_release(&back);
    }
    ws_deflate_cleanup(&z);
}

/* Without context takeover each message is compressed alone: the same input gives the same
 * bytes whatever came before, so one compressed frame serves every recipient. */
TEST(test_no_context_between_messages)
{
    struct ws_deflate z = WS_DEFLATE_INIT;
    char *a = sample(800, 1), *b = sample(800, 2);
    struct gw_buf first = GW_BUF_INIT, other = GW_BUF_INIT, again = GW_BUF_INIT;
    ws_deflate_compress(&z, a, 800, &first);
    ws_deflate_compress(&z, b, 800, &other);
    ws_deflate_compress(&z, a, 800, &again);
    ASSERT_MEM_EQ(again.data, again.len, first.data, first.len);
    /* Inflating does not depend on earlier messages either. */
    struct gw_buf out = GW_BUF_INIT;
    ASSERT_INT_EQ(ws_deflate_inflate(&z, other.data, other.len, 800, &out), 0);
    out.len = 0;
    ASSERT_INT_EQ(ws_deflate_inflate(&z, first.data, first.len, 800, &out), 0);
    ASSERT_MEM_EQ(out.data, out.len, a, 800);
    gw_free(a);
    gw_free(b);
    gw_buf_release(&first);
    gw_buf_release(&other);
    gw_buf_release(&again);
    gw_buf_release(&out);
    ws_deflate_cleanup(&z);
}

/* Peers end messages with a sync flush (tail removed), a full flush, or a final block
 * (Z_FINISH, allowed by RFC 7692 7.2.3.3); stored blocks (level 0) too. */
TEST(test_inflate_peer_encodings)
{
    struct ws_deflate z = WS_DEFLATE_INIT;
    char *text = sample(3000, 7);
    static const struct {
        int flush, level;
    } ways[] = {{Z_SYNC_FLUSH, 6}, {Z_FULL_FLUSH, 1}, {Z_FINISH, 9}, {Z_SYNC_FLUSH, 0}};
    for (size_t i = 0; i < GW_ARRAY_LEN(ways); i++) {
        struct gw_buf c = GW_BUF_INIT, out = GW_BUF_INIT;
        zlib_deflate(text, 3000, ways[i].flush, ways[i].level, &c);
        if (ways[i].flush == Z_FULL_FLUSH)
            c.len -= 4; /* a full flush ends with the same empty stored block */
        int rc = ws_deflate_inflate(&z, c.data, c.len, 3000, &out);
        if (rc != 0)
            GW_FAIL_AT("way %zu: %d", i, rc);
        ASSERT_MEM_EQ(out.data, out.len, text, 3000);
        gw_buf_release(&c);
        gw_buf_release(&out);
    }
    gw_free(text);
    ws_deflate_cleanup(&z);
}

/* 10 MB of zeros compress to ~10 KB; with a 1000-byte limit inflating stops at once, having
 * produced no more than limit + 1 bytes. */
TEST(test_inflate_limit)
{
    struct ws_deflate z = WS_DEFLATE_INIT;
    size_t n = 10 * 1024 * 1024;
    char *zeros = gw_calloc(1, n);
    struct gw_buf bomb = GW_BUF_INIT, out = GW_BUF_INIT;
    ws_deflate_compress(&z, zeros, n, &bomb);
    ASSERT_TRUE(bomb.len < 20000);
    ASSERT_INT_EQ(ws_deflate_inflate(&z, bomb.data, bomb.len, 1000, &out), GW_ELIMIT);
    ASSERT_TRUE(out.len <= 1001);
    ASSERT_TRUE(out.cap <= 16384 + 1024);
    /* One byte under the message's size fails too; the stream is usable afterwards. */
    gw_buf_release(&out);
    struct gw_buf small = GW_BUF_INIT;
    ws_deflate_compress(&z, zeros, 100, &small);
    ASSERT_INT_EQ(ws_deflate_inflate(&z, small.data, small.len, 99, &out), GW_ELIMIT);
    out.len = 0;
    ASSERT_INT_EQ(ws_deflate_inflate(&z, small.data, small.len, 100, &out), 0);
    ASSERT_MEM_EQ(out.data, out.len, zeros, 100);
    gw_free(zeros);
    gw_buf_release(&bomb);
    gw_buf_release(&small);
    gw_buf_release(&out);
    ws_deflate_cleanup(&z);
}

TEST(test_inflate_invalid)
{
    struct ws_deflate z = WS_DEFLATE_INIT;
    char *text = sample(2000, 3);
    struct gw_buf c = GW_BUF_INIT, fin = GW_BUF_INIT, out = GW_BUF_INIT;
    ws_deflate_compress(&z, text, 2000, &c);
    zlib_deflate(text, 2000, Z_FINISH, 6, &fin);
    /* Reserved block type 11. */
    ASSERT_INT_EQ(ws_deflate_inflate(&z, "\xff\xff\xff", 3, 1000, &out), GW_EINVAL);
    /* Cut inside a block: never valid, whatever the tail makes of it. */
    for (size_t cut = 1; cut + 1 < c.len; cut += 7) {
        out.len = 0;
        int rc = ws_deflate_inflate(&z, c.data, cut, 100000, &out);
        if (rc != GW_EINVAL)
            GW_FAIL_AT("cut at %zu of %zu: %d", cut, c.len, rc);
    }
    /* Bytes after a final block. */
    gw_buf_append(&fin, "\x00", 1);
    out.len = 0;
    ASSERT_INT_EQ(ws_deflate_inflate(&z, fin.data, fin.len, 100000, &out), GW_EINVAL);
    /* And the stream recovers for the next message. */
    out.len = 0;
    ASSERT_INT_EQ(ws_deflate_inflate(&z, c.data, c.len, 2000, &out), 0);
    ASSERT_MEM_EQ(out.data, out.len, text, 2000);
    gw_free(text);
    gw_buf_release(&c);
    gw_buf_release(&fin);
    gw_buf_release(&out);
    ws_deflate_cleanup(&z);
}

TEST(test_empty_messages)
{
    struct ws_deflate z = WS_DEFLATE_INIT;
    struct gw_buf c = GW_BUF_INIT, out = GW_BUF_INIT;
    /* Empty payload, and the single 0x00 of RFC 7692 7.2.3.6. */
    ASSERT_INT_EQ(ws_deflate_inflate(&z, "", 0, 10, &out), 0);
    ASSERT_UINT_EQ(out.len, 0);
    ASSERT_INT_EQ(ws_deflate_inflate(&z, "\x00", 1, 10, &out), 0);
    ASSERT_UINT_EQ(out.len, 0);
    ws_deflate_compress(&z, "", 0, &c);
    ASSERT_INT_EQ(ws_deflate_inflate(&z, c.data, c.len, 0, &out), 0);
    ASSERT_UINT_EQ(out.len, 0);
    gw_buf_release(&c);
    gw_buf_release(&out);
    ws_deflate_cleanup(&z);
    ws_deflate_cleanup(&z);
}

GW_TEST_MAIN(TEST_CASE(test_offers), TEST_CASE(test_round_trips),
             TEST_CASE(test_no_context_between_messages), TEST_CASE(test_inflate_peer_encodings),
             TEST_CASE(test_inflate_limit), TEST_CASE(test_inflate_invalid),
             TEST_CASE(test_empty_messages))
