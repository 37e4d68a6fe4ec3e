#include "gw_test.h"

#include "sockjs_frame.h"

static void quote(const char *in, size_t len, struct gw_buf *out)
{
    out->len = 0;
    sockjs_quote(out, in, len);
}

/* in and want are string literals (they may hold NUL): sockjs_quote(in) must be exactly want,
 * the bytes sockjs-node 0.3.24's utils.quote() writes. */
#define ASSERT_QUOTES(b, in, want)                                                                 \
    do {                                                                                           \
        quote(in, sizeof(in) - 1, b);                                                              \
        ASSERT_MEM_EQ((b)->data, (b)->len, want, sizeof(want) - 1);                                \
    } while (0)

TEST(quotes_ascii_and_json_specials)
{
    struct gw_buf b = GW_BUF_INIT;
    ASSERT_QUOTES(&b, "hello", "\"hello\"");
    ASSERT_QUOTES(&b, "a\"b\\c", "\"a\\\"b\\\\c\"");
    ASSERT_QUOTES(&b, "", "\"\"");
    /* JSON.stringify leaves these raw. */
    ASSERT_QUOTES(&b, "/ \x7f <>&'%", "\"/ \x7f <>&'%\"");
    gw_buf_release(&b);
}

TEST(escapes_controls_like_json_stringify)
{
    struct gw_buf b = GW_BUF_INIT;
    /* The observation: "\0\n\r" was \u0000\u000a\u000d; sockjs-node writes \u0000\n\r. */
    ASSERT_QUOTES(&b, "  \x00\n\r ", "\"  \\u0000\\n\\r \"");
    ASSERT_QUOTES(&b,
                  "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
                  "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f",
                  "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007"
                  "\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f"
                  "\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017"
                  "\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\"");
    gw_buf_release(&b);
}

TEST(escapes_sockjs_unicode_ranges_lowercase)
{
    struct gw_buf b = GW_BUF_INIT;
    /* U+200B stays raw, U+200C..U+200F escaped */
    ASSERT_QUOTES(&b, "\xe2\x80\x8b\xe2\x80\x8c\xe2\x80\x8f", "\"\xe2\x80\x8b\\u200c\\u200f\"");
    /* U+2027 raw, U+2028, U+2029, U+202F escaped, U+2030 raw */
    ASSERT_QUOTES(&b, "\xe2\x80\xa7\xe2\x80\xa8\xe2\x80\xa9\xe2\x80\xaf\xe2\x80\xb0",
                  "\"\xe2\x80\xa7\\u2028\\u2029\\u202f\xe2\x80\xb0\"");
    /* U+205F raw, U+2060 and U+206F escaped, U+2070 raw */
    ASSERT_QUOTES(&b, "\xe2\x81\x9f\xe2\x81\xa0\xe2\x81\xaf\xe2\x81\xb0",
                  "\"\xe2\x81\x9f\\u2060\\u206f\xe2\x81\xb0\"");
    /* U+FFEF raw, U+FFF0, U+FFFD and U+FFFF escaped */
    ASSERT_QUOTES(&b, "\xef\xbf\xaf\xef\xbf\xb0\xef\xbf\xbd\xef\xbf\xbf",
                  "\"\xef\xbf\xaf\\ufff0\\ufffd\\uffff\"");
    gw_buf_release(&b);
}

TEST(keeps_other_bmp_characters_raw)
{
    struct gw_buf b = GW_BUF_INIT;
    /* U+0080, U+00E9, U+0300, U+07FF, U+0800, U+D7FF, U+E000, U+FEFF among ASCII */
    ASSERT_QUOTES(&b,
                  "a\xc2\x80\xc3\xa9\xcc\x80\xdf\xbf"
                  "b\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80"
                  "\xef\xbb\xbf"
                  "c",
                  "\"a\xc2\x80\xc3\xa9\xcc\x80\xdf\xbf"
                  "b\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80"
                  "\xef\xbb\xbf"
                  "c\"");
    gw_buf_release(&b);
}

TEST(escapes_astral_characters_as_surrogate_pairs)
{
    struct gw_buf b = GW_BUF_INIT;
    ASSERT_QUOTES(&b, "\xf0\x9f\x98\x80", "\"\\ud83d\\ude00\""); /* U+1F600 */
    ASSERT_QUOTES(&b, "x\xf0\x90\x80\x80y\xf4\x8f\xbf\xbf",      /* U+10000, U+10FFFF */
                  "\"x\\ud800\\udc00y\\udbff\\udfff\"");
    ASSERT_QUOTES(&b, "\xf0\xaa\x9b\x96\xf3\xa0\x80\x81", /* U+2A6D6, U+E0001 */
                  "\"\\ud869\\uded6\\udb40\\udc01\"");
    gw_buf_release(&b);
}

TEST(replaces_invalid_utf8)
{
    struct gw_buf b = GW_BUF_INIT;
    /* a stray byte and an encoded surrogate */
    ASSERT_QUOTES(&b,
                  "a\xff"
                  "b\xed\xa0\x80",
                  "\"a\\ufffdb\\ufffd\\ufffd\\ufffd\"");
    /* an overlong NUL, a lone continuation byte, past U+10FFFF, and a truncated sequence */
    ASSERT_QUOTES(&b,
                  "\xc0\x80"
                  "\x80"
                  "\xf4\x90\x80\x80"
                  "\xe2\x80",
                  "\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"");
    gw_buf_release(&b);
}

TEST(quoting_a_frame_again_is_json_stringify)
{
    static const char msg[] = "\"\\\n\xe2\x80\xa8\xf0\x9f\x98\x80\xc3\xa9";
    static const char want_frame[] = "a[\"\\\"\\\\\\n\\u2028\\ud83d\\ude00\xc3\xa9\"]";
    /* JSON.stringify(frame): only '"' and '\' change. */
    static const char want_again[] =
        "\"a[\\\"\\\\\\\"\\\\\\\\\\\\n\\\\u2028\\\\ud83d\\\\ude00\xc3\xa9\\\"]\"";
    struct gw_buf frame = GW_BUF_INIT, b = GW_BUF_INIT;
    gw_buf_append_str(&frame, "a[");
    sockjs_quote(&frame, msg, sizeof(msg) - 1);
    gw_buf_append_str(&frame, "]");
    ASSERT_MEM_EQ(frame.data, frame.len, want_frame, sizeof(want_frame) - 1);
    quote(frame.data, frame.len, &b);
    ASSERT_MEM_EQ(b.data, b.len, want_again, sizeof(want_again) - 1);
    gw_buf_release(&frame);
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
    ASSERT_INT_EQ(sockjs_parse_payload(p, strlen(p), collect, &c), GW_OK);
    ASSERT_INT_EQ(c.count, 3);
    ASSERT_MEM_EQ(c.all.data, c.all.len, "a|b\0c|\xf0\x9f\x98\x80|", 11);
    gw_buf_release(&c.all);
}

TEST(rejects_bad_payloads_without_delivering)
{
    struct collected c = {GW_BUF_INIT, 0};
    ASSERT_INT_EQ(sockjs_parse_payload("", 0, collect, &c), GW_EEMPTY);
    ASSERT_INT_EQ(sockjs_parse_payload("[\"a\"", 4, collect, &c), GW_EPROTO);
    ASSERT_INT_EQ(sockjs_parse_payload("{}", 2, collect, &c), GW_EINVAL);
    ASSERT_INT_EQ(sockjs_parse_payload("\"x\"", 3, collect, &c), GW_EINVAL);
    ASSERT_INT_EQ(sockjs_parse_payload("[\"a\",1]", 7, collect, &c), GW_EINVAL);
    ASSERT_INT_EQ(sockjs_parse_payload("[]", 2, collect, &c), GW_OK);
    ASSERT_INT_EQ(c.count, 0);
    ASSERT_STR_EQ(sockjs_payload_error_text(GW_EEMPTY), "Payload expected.");
    ASSERT_STR_EQ(sockjs_payload_error_text(GW_EPROTO), "Broken JSON encoding.");
    gw_buf_release(&c.all);
}

GW_TEST_MAIN(TEST_CASE(quotes_ascii_and_json_specials),
             TEST_CASE(escapes_controls_like_json_stringify),
             TEST_CASE(escapes_sockjs_unicode_ranges_lowercase),
             TEST_CASE(keeps_other_bmp_characters_raw),
             TEST_CASE(escapes_astral_characters_as_surrogate_pairs),
             TEST_CASE(replaces_invalid_utf8), TEST_CASE(quoting_a_frame_again_is_json_stringify),
             TEST_CASE(close_frame), TEST_CASE(parses_payloads),
             TEST_CASE(rejects_bad_payloads_without_delivering))
