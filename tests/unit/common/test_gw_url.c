/* gw_url: query parameters, decoded, one or each of a repeated name. */
#include "gw_test.h"

#include <string.h>

#include "gw_buf.h"
#include "gw_url.h"

TEST(first_value_decoded)
{
    const char *q = "a=1&token=x%2By+z&token=2";
    char out[32];
    ASSERT_INT_EQ(gw_query_param(q, strlen(q), "token", out, sizeof(out)), 5);
    ASSERT_STR_EQ(out, "x+y z");
    ASSERT_INT_EQ(gw_query_param(q, strlen(q), "missing", out, sizeof(out)), GW_ENOTFOUND);
    ASSERT_INT_EQ(gw_query_param(q, strlen(q), "token", out, 3), GW_ELIMIT);
}

TEST(repeated_values_in_order)
{
    const char *q = "id=a&site=s&id=b%3Ac&id&id=d";
    const char *want[] = {"a", "b:c", "", "d"};
    char out[32];
    size_t pos = 0, n = 0;
    long len;
    while ((len = gw_query_param_next(q, strlen(q), &pos, "id", out, sizeof(out))) >= 0) {
        ASSERT_TRUE(n < 4);
        ASSERT_STR_EQ(out, want[n]);
        ASSERT_INT_EQ(len, strlen(want[n]));
        n++;
    }
    ASSERT_INT_EQ(len, GW_ENOTFOUND);
    ASSERT_UINT_EQ(n, 4);
    ASSERT_UINT_EQ(pos, strlen(q));
}

static void check_redacted(const char *url, const char *want)
{
    struct gw_buf b = GW_BUF_INIT;
    gw_url_append_redacted(&b, url, strlen(url), "token");
    ASSERT_MEM_EQ(b.data, b.len, want, strlen(want));
    gw_buf_release(&b);
}

TEST(tokens_redacted_for_logs)
{
    check_redacted("/sockjs/1/2/xhr?token=abc.def&x=1&token=zz",
                   "/sockjs/1/2/xhr?token=<redacted>&x=1&token=<redacted>");
    check_redacted("/p?tokens=a&xtoken=b&token", "/p?tokens=a&xtoken=b&token");
    check_redacted("/p?token=", "/p?token=<redacted>");
    check_redacted("/no/query", "/no/query");
    check_redacted("/p?", "/p?");
    check_redacted("/p?a=1&", "/p?a=1&");
}

TEST(percent_decoding_is_strict)
{
    char out[16];
    ASSERT_INT_EQ(gw_percent_decode("p%40ss%3Aw+d", 12, out, sizeof(out)), 8);
    ASSERT_STR_EQ(out, "p@ss:w+d");
    ASSERT_INT_EQ(gw_percent_decode("%2f%2F", 6, out, sizeof(out)), 2);
    ASSERT_STR_EQ(out, "//");
    ASSERT_INT_EQ(gw_percent_decode("", 0, out, sizeof(out)), 0);
    ASSERT_STR_EQ(out, "");
    ASSERT_INT_EQ(gw_percent_decode("a%", 2, out, sizeof(out)), GW_EINVAL);
    ASSERT_INT_EQ(gw_percent_decode("a%4", 3, out, sizeof(out)), GW_EINVAL);
    ASSERT_INT_EQ(gw_percent_decode("%zz", 3, out, sizeof(out)), GW_EINVAL);
    ASSERT_INT_EQ(gw_percent_decode("a%00b", 5, out, sizeof(out)), GW_EINVAL);
    ASSERT_INT_EQ(gw_percent_decode("abcd", 4, out, 4), GW_ELIMIT);
    ASSERT_INT_EQ(gw_percent_decode("abc", 3, out, 4), 3);
}

GW_TEST_MAIN(TEST_CASE(first_value_decoded), TEST_CASE(repeated_values_in_order),
             TEST_CASE(tokens_redacted_for_logs), TEST_CASE(percent_decoding_is_strict))
