/* gw_error: every code has its own text, so that a log line names the failure. */
#include "gw_test.h"

#include <string.h>

#include "gw_error.h"

TEST(every_code_has_its_own_text)
{
    ASSERT_STR_EQ(gw_strerror(GW_OK), "ok");
    for (int a = GW_ELAST; a < 0; a++) {
        const char *text = gw_strerror(a);
        ASSERT_TRUE(strcmp(text, "unknown error") != 0);
        for (int b = GW_ELAST; b < a; b++)
            ASSERT_TRUE(strcmp(text, gw_strerror(b)) != 0);
    }
}

TEST(anything_else_is_unknown)
{
    ASSERT_STR_EQ(gw_strerror(GW_ELAST - 1), "unknown error");
    ASSERT_STR_EQ(gw_strerror(1), "unknown error");
}

GW_TEST_MAIN(TEST_CASE(every_code_has_its_own_text), TEST_CASE(anything_else_is_unknown))
