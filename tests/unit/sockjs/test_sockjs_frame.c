#include "gw_test.h"

#include "sockjs_frame.h"

static void quote(const char *in, size_t len, struct gw_buf *out)
{
    out->len = 0;
    sockjs_quote(out, in, len);
}

TEST(quotes_ascii_and_json_specials)
{
    struct gw_buf b = GW_BUF_INIT;
    quote("hello", 5, &b);
    ASSERT_MEM_EQ(b.data, b.len, "\"hello\"", 7);
    quote("a\"b\\c", 5, &b);
    ASSERT_MEM_EQ(b.data, b.len, "\"a\\\"b\\\\c\"", 9);
    quote("", 0, &b);
    ASSERT_MEM_EQ(b.data, b.len, "\"\"", 2);
    gw_buf_release(&b);
}

TEST(escapes_control_characters_and_nul)
{
    struct gw_buf b = GW_BUF_INIT;
    quote("\x00\n\x1f\x7f", 4, &b);
    ASSERT_MEM_EQ(b.data, b.len, "\"\\u0000\\u000a\\u001f\x7f\"", 21);
    gw_buf_release(&b);
}

TEST(escapes_sockjs_unicode_ranges_lowercase)
{
    struct gw_buf b = GW_BUF_INIT;
    /* U+200B stays raw, U+200C..U+200F escaped */
    quote("\xe2\x80\x8b\xe2\x80\x8c\xe2\x80\x8f", 9, &b);
    ASSERT_MEM_EQ(b.data, b.len, "\"\xe2\x80\x8b\\u200c\\u200f\"", 17);
    /* U+2027 raw, U+2028, U+202F escaped, U+2030 raw */
    quote("\xe2\x80\xa7\xe2\x80\xa8\xe2\x80\xaf\xe2\x80\xb0", 12, &b);
    ASSERT_MEM_EQ(b.data, b.len, "\"\xe2\x80\xa7\\u2028\\u202f\xe2\x80\xb0\"", 20);
    /* U+205F raw, U+2060 and U+206F escaped, U+2070 raw */
    quote("\xe2\x81\x9f\xe2\x81\xa0\xe2\x81\xaf\xe2\x81\xb0", 12, &b);
    ASSERT_MEM_EQ(b.data, b.len, "\"\xe2\x81\x9f\\u2060\\u206f\xe2\x81\xb0\"", 20);
    /* U+FFEF raw, U+FFF0 and U+FFFF escaped */
    quote("\xef\xbf\xaf\xef\xbf\xb0\xef\xbf\xbf", 9, &b);
    ASSERT_MEM_EQ(b.data, b.len, "\"\xef\xbf\xaf\\ufff0\\uffff\"", 17);
    gw_buf_release(&b);
}

TEST(keeps_astral_characters_raw)
{
    struct gw_buf b = GW_BUF_INIT;
    quote("\xf0\x9f\x98\x80", 4, &b); /* U+1F600 */
    ASSERT_MEM_EQ(b.data, b.len, "\"\xf0\x9f\x98\x80\"", 6);
    gw_buf_release(&b);
}

TEST(replaces_invalid_utf8)
{
    struct gw_buf b = GW_BUF_INIT;
    quote("a\xff" "b\xed\xa0\x80", 6, &b); /* a stray byte and an encoded surrogate */
    ASSERT_MEM_EQ(b.data, b.len, "\"a\\ufffdb\\ufffd\\ufffd\\ufffd\"", 28);
    gw_buf_release(&b);
}

TEST(close_frame)
{
    struct gw_buf b = GW_BUF_INIT;
    sockjs_close_frame(&b, 3000, "Go away!");
    ASSERT_MEM_EQ(b.data, b.len, "c[3000,\"Go away!\"]", 18);
    gw_buf_release(&b);
}

struct collected {
    struct gw_buf all;
    int count;
};

static void collect(void *arg, const char *msg, size_t len)
{
    struct collected *c = arg;
    gw_buf_append(&c->all, msg, len);
    gw_buf_append(&c->all, "|", 1);
    c->count++;
}

TEST(parses_payloads)
{
    struct collected c = {GW_BUF_INIT, 0};
    const char *p = "[\"a\",\"b\\u0000c\",\"\\ud83d\\ude00\"]";
    ASSERT_INT_EQ(sockjs_parse_payload(p, strlen(p), collect, &c), SOCKJS_PAYLOAD_OK);
    ASSERT_INT_EQ(c.count, 3);
    ASSERT_MEM_EQ(c.all.data, c.all.len, "a|b\0c|\xf0\x9f\x98\x80|", 11);
    gw_buf_release(&c.all);
}

TEST(rejects_bad_payloads_without_delivering)
{
    struct collected c = {GW_BUF_INIT, 0};
    ASSERT_INT_EQ(sockjs_parse_payload("", 0, collect, &c), SOCKJS_PAYLOAD_EMPTY);
    ASSERT_INT_EQ(sockjs_parse_payload("[\"a\"", 4, collect, &c), SOCKJS_PAYLOAD_BROKEN);
    ASSERT_INT_EQ(sockjs_parse_payload("{}", 2, collect, &c), SOCKJS_PAYLOAD_NOT_ARRAY);
    ASSERT_INT_EQ(sockjs_parse_payload("\"x\"", 3, collect, &c), SOCKJS_PAYLOAD_NOT_ARRAY);
    ASSERT_INT_EQ(sockjs_parse_payload("[\"a\",1]", 7, collect, &c), SOCKJS_PAYLOAD_NOT_ARRAY);
    ASSERT_INT_EQ(sockjs_parse_payload("[]", 2, collect, &c), SOCKJS_PAYLOAD_OK);
    ASSERT_INT_EQ(c.count, 0);
    ASSERT_STR_EQ(sockjs_payload_error_text(SOCKJS_PAYLOAD_EMPTY), "Payload expected.");
    ASSERT_STR_EQ(sockjs_payload_error_text(SOCKJS_PAYLOAD_BROKEN), "Broken JSON encoding.");
    gw_buf_release(&c.all);
}

GW_TEST_MAIN(TEST_CASE(quotes_ascii_and_json_specials), TEST_CASE(escapes_control_characters_and_nul),
             TEST_CASE(escapes_sockjs_unicode_ranges_lowercase),
             TEST_CASE(keeps_astral_characters_raw), TEST_CASE(replaces_invalid_utf8),
             TEST_CASE(close_frame), TEST_CASE(parses_payloads),
             TEST_CASE(rejects_bad_payloads_without_delivering))
