/* PROXY protocol headers: every valid header whole, at every prefix and followed by a request;
 * every invalid one rejected at the exact byte that makes it invalid, never before. Each parse
 * reads from a heap copy of exactly the bytes offered, so that ASan catches a read past len. */
#include "gw_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "gw_alloc.h"
#include "gw_error.h"
#include "gw_net.h"
#include "proxy_protocol.h"

#define REQUEST "GET /echo/info HTTP/1.1\r\nHost: example.com\r\n\r\n"

static int parse_exact(const void *data, size_t len, struct gw_proxy_info *out)
{
    uint8_t *copy = gw_malloc(len ? len : 1);
    if (len)
        memcpy(copy, data, len);
    int r = gw_proxy_parse(copy, len, out);
    gw_free(copy);
    return r;
}

/* Parses a prefix into a poisoned struct, which must come back untouched unless the result is
 * a header length. */
static int parse_poisoned(const void *data, size_t len, bool *touched)
{
    struct gw_proxy_info info, poison;
    memset(&info, 0xA5, sizeof(info));
    memset(&poison, 0xA5, sizeof(poison));
    int r = parse_exact(data, len, &info);
    *touched = memcmp(&info, &poison, sizeof(info)) != 0;
    return r;
}

/* hdr (len bytes) is one valid header: each shorter prefix needs more, the whole header parses
 * to len, and so does the header followed by a request. *out gets the result. */
static void expect_header(const void *hdr, size_t len, struct gw_proxy_info *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t k = 0; k < len; k++) {
        bool touched;
        int r = parse_poisoned(hdr, k, &touched);
        if (r != GW_EAGAIN)
            GW_FAIL_AT("prefix of %zu of %zu bytes: %d (%s), expected GW_EAGAIN", k, len, r,
                       gw_strerror(r));
        if (touched)
            GW_FAIL_AT("prefix of %zu of %zu bytes: out written", k, len);
    }
    ASSERT_INT_EQ(parse_exact(hdr, len, out), len);

    size_t total = len + strlen(REQUEST);
    uint8_t *buf = gw_malloc(total);
    memcpy(buf, hdr, len);
    memcpy(buf + len, REQUEST, strlen(REQUEST));
    struct gw_proxy_info again;
    int r = parse_exact(buf, total, &again);
    gw_free(buf);
    ASSERT_INT_EQ(r, len);
    ASSERT_INT_EQ(again.local, out->local);
    ASSERT_MEM_EQ(&again.src, sizeof(again.src), &out->src, sizeof(out->src));
    ASSERT_MEM_EQ(&again.dst, sizeof(again.dst), &out->dst, sizeof(out->dst));
}

/* data (len bytes) is invalid from its first `at` bytes on: shorter prefixes need more, every
 * longer one is rejected, and out is never written. */
static void expect_reject(const void *data, size_t len, size_t at)
{
    for (size_t k = 0; k <= len; k++) {
        bool touched;
        int r = parse_poisoned(data, k, &touched);
        int want = k < at ? GW_EAGAIN : GW_EPROTO;
        if (r != want)
            GW_FAIL_AT("prefix of %zu of %zu bytes (rejected from %zu): %d (%s), expected %s", k,
                       len, at, r, gw_strerror(r), gw_strerror(want));
        if (touched)
            GW_FAIL_AT("prefix of %zu of %zu bytes: out written", k, len);
    }
}

/* A v1 line that is rejected once its prefix `bad` has arrived. */
static void reject_v1(const char *line, const char *bad)
{
    ASSERT_TRUE(strncmp(line, bad, strlen(bad)) == 0);
    expect_reject(line, strlen(line), strlen(bad));
}

static const char *addr_text(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
    return gw_format_sockaddr(ss, buf, cap);
}

#define ASSERT_ADDR(ss, text)                                                                      \
    do {                                                                                           \
        char _buf[64];                                                                             \
        ASSERT_STR_EQ(addr_text(&(ss), _buf, sizeof(_buf)), text);                                 \
    } while (0)

static void expect_v1(const char *line, const char *src, const char *dst)
{
    struct gw_proxy_info info;
    int failures = gw_test_failures;
    expect_header(line, strlen(line), &info);
    if (gw_test_failures != failures)
        GW_FAIL_AT("header: %s", line);
    ASSERT_INT_EQ(info.local, false);
    ASSERT_ADDR(info.src, src);
    ASSERT_ADDR(info.dst, dst);
}

static void expect_v1_local(const char *line)
{
    struct gw_proxy_info info;
    expect_header(line, strlen(line), &info);
    ASSERT_INT_EQ(info.local, true);
    ASSERT_INT_EQ(info.src.ss_family, AF_UNSPEC);
    ASSERT_INT_EQ(info.dst.ss_family, AF_UNSPEC);
}

/* ---- v2 building ---------------------------------------------------------------------------- */

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* 192.168.0.1:56324 -> 10.0.0.2:443 */
static const uint8_t block4[12] = {192, 168, 0, 1, 10, 0, 0, 2, 0xDC, 0x04, 0x01, 0xBB};
/* [2001:db8::1]:1 -> [::1]:65535 */
static const uint8_t block6[36] = {0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0,    0,
                                   0,    0,    0,    1,    0, 0, 0, 0, 0, 0, 0,    0,
                                   0,    0,    0,    0,    0, 0, 0, 1, 0, 1, 0xFF, 0xFF};

/* Writes a v2 header declaring addr_len bytes, followed by the block (block_len bytes, which
 * may differ from addr_len to build broken headers). Returns the bytes written. */
static size_t v2_build(uint8_t *buf, uint8_t ver_cmd, uint8_t fam, size_t addr_len,
                       const uint8_t *block, size_t block_len)
{
    memcpy(buf, v2_sig, sizeof(v2_sig));
    buf[12] = ver_cmd;
    buf[13] = fam;
    buf[14] = (uint8_t)(addr_len >> 8);
    buf[15] = (uint8_t)addr_len;
    if (block_len)
        memcpy(buf + 16, block, block_len);
    return 16 + block_len;
}

/* ---- v1 ------------------------------------------------------------------------------------- */

TEST(v1_tcp4)
{
    expect_v1("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", "192.168.0.1:56324",
              "192.168.0.11:443");
    /* The longest TCP4 line the spec lists, and the smallest values. */
    const char *longest = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    ASSERT_INT_EQ(strlen(longest), 56);
    expect_v1(longest, "255.255.255.255:65535", "255.255.255.255:65535");
    expect_v1("PROXY TCP4 0.0.0.0 1.0.0.10 0 0\r\n", "0.0.0.0:0", "1.0.0.10:0");
}

TEST(v1_tcp6)
{
    expect_v1("PROXY TCP6 2001:db8::1 ::1 1 65535\r\n", "[2001:db8::1]:1", "[::1]:65535");
    expect_v1("PROXY TCP6 ::ffff:192.0.2.1 2001:DB8:0:0:0:0:0:2 40000 8080\r\n",
              "[::ffff:192.0.2.1]:40000", "[2001:db8::2]:8080");
    const char *longest = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    ASSERT_INT_EQ(strlen(longest), 104);
    expect_v1(longest, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
              "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
    /* The longest address text: IPv6 ending in a dotted quad. */
    expect_v1("PROXY TCP6 1111:2222:3333:4444:5555:6666:255.255.255.255 :: 10 20\r\n",
              "[1111:2222:3333:4444:5555:6666:ffff:ffff]:10", "[::]:20");
}

TEST(v1_unknown)
{
    expect_v1_local("PROXY UNKNOWN\r\n");
    expect_v1_local("PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n");
    /* Whatever follows UNKNOWN is ignored, even if it is no address at all. */
    expect_v1_local("PROXY UNKNOWN  what\tever \x01\xff\r\n");
    /* The spec's worst case is exactly the 107-byte limit. */
    const char *longest = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    ASSERT_INT_EQ(strlen(longest), GW_PROXY_V1_MAX_LEN);
    expect_v1_local(longest);
}

TEST(v1_not_proxy)
{
    struct gw_proxy_info info;
    ASSERT_INT_EQ(parse_exact("", 0, &info), GW_EAGAIN);
    ASSERT_INT_EQ(parse_exact("PRO", 3, &info), GW_EAGAIN);
    ASSERT_INT_EQ(parse_exact("GET / HTTP/1.1\r\n", 1, &info), GW_EPROTO);
    reject_v1("GET / HTTP/1.1\r\n", "G");
    reject_v1(REQUEST, "G");
    reject_v1("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "p");
    reject_v1(" PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", " ");
    reject_v1("PROXX TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXX");
    reject_v1("PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXYT");
    reject_v1("PROXY\r\n", "PROXY\r");
    reject_v1("\x16\x03\x01\x02\x00", "\x16"); /* a TLS ClientHello */
}

TEST(v1_bad_protocol)
{
    reject_v1("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP5");
    reject_v1("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY t");
    reject_v1("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY UD");
    reject_v1("PROXY TCP44 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP44");
    reject_v1("PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP ");
    reject_v1("PROXY TCP4\r\n", "PROXY TCP4\r");
    reject_v1("PROXY \r\n", "PROXY \r");
    reject_v1("PROXY UNKNOWNX\r\n", "PROXY UNKNOWNX");
    reject_v1("PROXY UNKNOWN\n", "PROXY UNKNOWN\n");
}

TEST(v1_bad_addresses)
{
    reject_v1("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3 ");
    reject_v1("PROXY TCP4 256.1.1.1 5.6.7.8 1 2\r\n", "PROXY TCP4 256.1.1.1 ");
    reject_v1("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4 01.2.3.4 ");
    reject_v1("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4.5 ");
    reject_v1("PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n", "PROXY TCP4 1..3.4 ");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.08 1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.08 ");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8x 1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8x");
    reject_v1("PROXY TCP4 1111111111111111 5.6.7.8 1 2\r\n", "PROXY TCP4 1111111111111111");
    reject_v1("PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "PROXY TCP4 :");
    reject_v1("PROXY TCP4 1.2.3.4 ::1 1 2\r\n", "PROXY TCP4 1.2.3.4 :");
    reject_v1("PROXY TCP4 a.b.c.d 5.6.7.8 1 2\r\n", "PROXY TCP4 a");
    reject_v1("PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "PROXY TCP6 1.2.3.4 ");
    reject_v1("PROXY TCP6 ::1 1.2.3.4 1 2\r\n", "PROXY TCP6 ::1 1.2.3.4 ");
    reject_v1("PROXY TCP6 2001:db8::g ::1 1 2\r\n", "PROXY TCP6 2001:db8::g");
    reject_v1("PROXY TCP6 1::2::3 ::1 1 2\r\n", "PROXY TCP6 1::2::3 ");
    reject_v1("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", "PROXY TCP6 1:2:3:4:5:6:7:8:9 ");
    reject_v1("PROXY TCP6 12345:: ::1 1 2\r\n", "PROXY TCP6 12345:: ");
    reject_v1("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "PROXY TCP6 fe80::1%");
    /* A field past the longest address text is rejected at its first extra byte. */
    reject_v1("PROXY TCP6 0000:0000:0000:0000:0000:0000:000.000.000.0000 ::1 1 2\r\n",
              "PROXY TCP6 0000:0000:0000:0000:0000:0000:000.000.000.0000");
    /* Missing fields. */
    reject_v1("PROXY TCP4 1.2.3.4\r\n", "PROXY TCP4 1.2.3.4\r");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8\r");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r");
}

TEST(v1_bad_ports)
{
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 65536");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 99999");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 4294967297 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 429496");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 08");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 00 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 00");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 0443\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 04");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 -");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 +");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 0x50 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 0x");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2a\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2a");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ");
}

TEST(v1_bad_spacing)
{
    reject_v1("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY  ");
    reject_v1("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4  ");
    reject_v1("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4  ");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8  ");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1  ");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ");
    reject_v1("PROXY\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY\t");
    reject_v1("PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4\t");
    reject_v1("PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4\t");
}

TEST(v1_bad_line_end)
{
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rGET", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rG");
    reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n\r", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n");
    reject_v1("PROXY UNKNOWN\rX\r\n", "PROXY UNKNOWN\rX");
    reject_v1("PROXY UNKNOWN foo\nbar\r\n", "PROXY UNKNOWN foo\n");
    reject_v1("PROXY UNKNOWN foo\r\r\n", "PROXY UNKNOWN foo\r\r");

    /* No CRLF within 107 bytes: rejected once the 107th byte is there, however much follows. */
    char line[300];
    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    expect_reject(line, sizeof(line), GW_PROXY_V1_MAX_LEN);
    /* One byte too long: the CR is the 107th byte, its LF the 108th. */
    memcpy(line + GW_PROXY_V1_MAX_LEN - 1, "\r\n", 2);
    expect_reject(line, GW_PROXY_V1_MAX_LEN + 1, GW_PROXY_V1_MAX_LEN);
    /* One byte shorter fits. */
    memcpy(line + GW_PROXY_V1_MAX_LEN - 2, "\r\n", 2);
    struct gw_proxy_info info;
    expect_header(line, GW_PROXY_V1_MAX_LEN, &info);
    ASSERT_INT_EQ(info.local, true);
}

/* ---- v2 ------------------------------------------------------------------------------------- */

TEST(v2_ipv4)
{
    uint8_t buf[64];
    size_t n = v2_build(buf, 0x21, 0x11, sizeof(block4), block4, sizeof(block4));
    struct gw_proxy_info info;
    expect_header(buf, n, &info);
    ASSERT_INT_EQ(n, 28);
    ASSERT_INT_EQ(info.local, false);
    ASSERT_ADDR(info.src, "192.168.0.1:56324");
    ASSERT_ADDR(info.dst, "10.0.0.2:443");
}

TEST(v2_ipv6)
{
    uint8_t buf[64];
    size_t n = v2_build(buf, 0x21, 0x21, sizeof(block6), block6, sizeof(block6));
    struct gw_proxy_info info;
    expect_header(buf, n, &info);
    ASSERT_INT_EQ(n, 52);
    ASSERT_INT_EQ(info.local, false);
    ASSERT_ADDR(info.src, "[2001:db8::1]:1");
    ASSERT_ADDR(info.dst, "[::1]:65535");
}

TEST(v2_tlvs)
{
    /* ALPN "h2", a 3-byte NOOP and an AUTHORITY after the addresses: skipped with them. */
    static const uint8_t tlvs[] = {0x01, 0x00, 0x02, 'h',  '2',  0x04, 0x00, 0x03, 0,
                                   0,    0,    0x02, 0x00, 0x0B, 'e',  'x',  'a',  'm',
                                   'p',  'l',  'e',  '.',  'c',  'o',  'm'};
    uint8_t block[sizeof(block6) + sizeof(tlvs)];
    memcpy(block, block6, sizeof(block6));
    memcpy(block + sizeof(block6), tlvs, sizeof(tlvs));
    uint8_t buf[128];
    size_t n = v2_build(buf, 0x21, 0x21, sizeof(block), block, sizeof(block));
    struct gw_proxy_info info;
    expect_header(buf, n, &info);
    ASSERT_INT_EQ(n, 16 + 36 + sizeof(tlvs));
    ASSERT_ADDR(info.src, "[2001:db8::1]:1");
    ASSERT_ADDR(info.dst, "[::1]:65535");

    /* Padding up to the cap is still accepted. */
    uint8_t big[GW_PROXY_V2_MAX_ADDR_LEN];
    memset(big, 0, sizeof(big));
    memcpy(big, block4, sizeof(block4));
    size_t pad = sizeof(big) - sizeof(block4) - 3;
    big[12] = 0x04;
    big[13] = (uint8_t)(pad >> 8);
    big[14] = (uint8_t)pad;
    uint8_t hdr[16 + sizeof(big)];
    n = v2_build(hdr, 0x21, 0x11, sizeof(big), big, sizeof(big));
    expect_header(hdr, n, &info);
    ASSERT_INT_EQ(n, GW_PROXY_V2_MAX_LEN);
    ASSERT_ADDR(info.src, "192.168.0.1:56324");
}

static void expect_v2_local(uint8_t ver_cmd, uint8_t fam, const uint8_t *block, size_t block_len)
{
    uint8_t buf[16 + GW_PROXY_V2_MAX_ADDR_LEN];
    size_t n = v2_build(buf, ver_cmd, fam, block_len, block, block_len);
    struct gw_proxy_info info;
    int failures = gw_test_failures;
    expect_header(buf, n, &info);
    if (gw_test_failures != failures)
        GW_FAIL_AT("ver_cmd 0x%02x, fam 0x%02x, %zu bytes", ver_cmd, fam, block_len);
    ASSERT_INT_EQ(info.local, true);
    ASSERT_INT_EQ(info.src.ss_family, AF_UNSPEC);
    ASSERT_INT_EQ(info.dst.ss_family, AF_UNSPEC);
}

TEST(v2_local)
{
    /* A health check from the proxy itself: the family and any addresses are ignored. */
    expect_v2_local(0x20, 0x00, NULL, 0);
    expect_v2_local(0x20, 0x11, block4, sizeof(block4));
    expect_v2_local(0x20, 0x11, NULL, 0);
    expect_v2_local(0x20, 0xFF, block6, sizeof(block6));
}

TEST(v2_unsupported_families)
{
    uint8_t unix_block[216];
    memset(unix_block, 0, sizeof(unix_block));
    memcpy(unix_block, "/run/lb.sock", 12);
    /* UNSPEC, with or without bytes, UDP and AF_UNIX: valid, but the socket's addresses are
     * the ones to use. */
    expect_v2_local(0x21, 0x00, NULL, 0);
    expect_v2_local(0x21, 0x00, block4, sizeof(block4));
    expect_v2_local(0x21, 0x12, block4, sizeof(block4));
    expect_v2_local(0x21, 0x22, block6, sizeof(block6));
    expect_v2_local(0x21, 0x31, unix_block, sizeof(unix_block));
    expect_v2_local(0x21, 0x32, unix_block, sizeof(unix_block));
}

TEST(v2_bad_signature)
{
    uint8_t buf[64];
    size_t n = v2_build(buf, 0x21, 0x11, sizeof(block4), block4, sizeof(block4));
    for (size_t i = 0; i < sizeof(v2_sig); i++) {
        buf[i] ^= 0x80;
        int failures = gw_test_failures;
        expect_reject(buf, n, i + 1);
        buf[i] ^= 0x80;
        if (gw_test_failures != failures)
            GW_FAIL_AT("signature byte %zu", i);
    }
    /* A v1 signature cannot start a v2 header or the other way round. */
    buf[0] = 'P';
    expect_reject(buf, n, 2);
}

static void reject_v2(uint8_t ver_cmd, uint8_t fam, size_t addr_len, const uint8_t *block,
                      size_t block_len, size_t at)
{
    uint8_t buf[16 + 1024];
    size_t n = v2_build(buf, ver_cmd, fam, addr_len, block, block_len);
    int failures = gw_test_failures;
    expect_reject(buf, n, at);
    if (gw_test_failures != failures)
        GW_FAIL_AT("ver_cmd 0x%02x, fam 0x%02x, length %zu", ver_cmd, fam, addr_len);
}

TEST(v2_bad_version_command)
{
    static const uint8_t bad[] = {0x11, 0x01, 0x31, 0xF1, 0x10, 0x22, 0x23, 0x2F};
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++)
        reject_v2(bad[i], 0x11, sizeof(block4), block4, sizeof(block4), 13);
}

TEST(v2_bad_family)
{
    /* Family above AF_UNIX, transport above DGRAM, and pairs the spec does not list. */
    static const uint8_t bad[] = {0x41, 0xF1, 0x13, 0x1F, 0x01, 0x02, 0x10, 0x20, 0x30, 0xFF};
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++)
        reject_v2(0x21, bad[i], sizeof(block4), block4, sizeof(block4), 14);
}

TEST(v2_bad_length)
{
    uint8_t unix_block[216];
    memset(unix_block, 0, sizeof(unix_block));
    /* Shorter than the addresses of the family: rejected on the length, before the block. */
    reject_v2(0x21, 0x11, 11, block4, 11, 16);
    reject_v2(0x21, 0x11, 0, NULL, 0, 16);
    reject_v2(0x21, 0x21, 35, block6, 35, 16);
    reject_v2(0x21, 0x21, 12, block4, 12, 16);
    reject_v2(0x21, 0x12, 11, block4, 11, 16);
    reject_v2(0x21, 0x31, 215, unix_block, 215, 16);
    /* Over the cap, whatever follows. */
    uint8_t big[1024];
    memset(big, 0, sizeof(big));
    memcpy(big, block4, sizeof(block4));
    reject_v2(0x21, 0x11, GW_PROXY_V2_MAX_ADDR_LEN + 1, big, GW_PROXY_V2_MAX_ADDR_LEN + 1, 16);
    reject_v2(0x21, 0x11, 0xFFFF, big, sizeof(big), 16);
    reject_v2(0x20, 0x00, 0xFFFF, NULL, 0, 16);
}

/* ---- robustness ----------------------------------------------------------------------------- */

static uint32_t rng_state = 0x12345678;

static uint32_t rng(void)
{
    /* xorshift32: reproducible runs. */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Any input gives a known result; a header length never exceeds the input, and a parsed header
 * is either local or has addresses of one IP family. */
static void check_sane(const uint8_t *data, size_t len)
{
    struct gw_proxy_info info;
    int r = parse_exact(data, len, &info);
    if (r == GW_EAGAIN || r == GW_EPROTO)
        return;
    if (r <= 0 || (size_t)r > len)
        GW_FAIL_AT("%zu bytes: result %d", len, r);
    if (info.local) {
        ASSERT_INT_EQ(info.src.ss_family, AF_UNSPEC);
        return;
    }
    ASSERT_TRUE(info.src.ss_family == AF_INET || info.src.ss_family == AF_INET6);
    ASSERT_INT_EQ(info.dst.ss_family, info.src.ss_family);
}

TEST(mutations)
{
    /* Every byte of valid headers replaced by a few values, then truncated at every length. */
    static const uint8_t values[] = {0x00, '\r', '\n', ' ', '0', '9', ':', '.', 'f', 0x11, 0xFF};
    uint8_t v2[64];
    size_t v2_len = v2_build(v2, 0x21, 0x21, sizeof(block6), block6, sizeof(block6));
    const char *v1 = "PROXY TCP6 2001:db8::1 ::1 1 65535\r\n";
    const struct {
        const uint8_t *data;
        size_t len;
    } inputs[] = {{(const uint8_t *)v1, strlen(v1)}, {v2, v2_len}};
    for (size_t in = 0; in < GW_ARRAY_LEN(inputs); in++) {
        uint8_t buf[64];
        size_t len = inputs[in].len;
        for (size_t i = 0; i < len; i++) {
            for (size_t v = 0; v < GW_ARRAY_LEN(values); v++) {
                memcpy(buf, inputs[in].data, len);
                buf[i] = values[v];
                for (size_t k = 0; k <= len; k++)
                    check_sane(buf, k);
            }
        }
    }
}

TEST(random_input)
{
    uint8_t buf[GW_PROXY_MAX_LEN + 16];
    for (int round = 0; round < 20000; round++) {
        size_t len = rng() % sizeof(buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)rng();
        /* Start with a signature most of the time, or nothing gets past the first byte. */
        uint32_t kind = rng() % 4;
        if (kind == 0 && len >= 6)
            memcpy(buf, "PROXY ", 6);
        else if (kind == 1 && len >= 14)
            memcpy(buf, "PROXY UNKNOWN ", 14);
        else if (kind >= 2 && len >= 16) {
            memcpy(buf, v2_sig, sizeof(v2_sig));
            buf[12] = (uint8_t)(0x20 | (rng() % 2));
            buf[15] = (uint8_t)(rng() % 2 ? buf[15] : 12);
            buf[14] = (uint8_t)(rng() % 4 ? 0 : buf[14] & 3);
        }
        check_sane(buf, len);
    }
}

GW_TEST_MAIN(TEST_CASE(v1_tcp4), TEST_CASE(v1_tcp6), TEST_CASE(v1_unknown), TEST_CASE(v1_not_proxy),
             TEST_CASE(v1_bad_protocol), TEST_CASE(v1_bad_addresses), TEST_CASE(v1_bad_ports),
             TEST_CASE(v1_bad_spacing), TEST_CASE(v1_bad_line_end), TEST_CASE(v2_ipv4),
             TEST_CASE(v2_ipv6), TEST_CASE(v2_tlvs), TEST_CASE(v2_local),
             TEST_CASE(v2_unsupported_families), TEST_CASE(v2_bad_signature),
             TEST_CASE(v2_bad_version_command), TEST_CASE(v2_bad_family), TEST_CASE(v2_bad_length),
             TEST_CASE(mutations), TEST_CASE(random_input))
