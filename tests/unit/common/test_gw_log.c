/* gw_log: lines on stderr (captured through a pipe), held back between gw_log_hold() and
 * gw_log_release() and written together, in order, error lines at once. */
#include "gw_test.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "gw_log.h"

static int saved_stderr = -1;
static int pipe_rd = -1;

/* stderr into a non-blocking pipe, for one test. */
static void capture(void)
{
    int fds[2];
    ASSERT_INT_EQ(pipe(fds), 0);
    ASSERT_INT_EQ(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
    fflush(stderr);
    saved_stderr = dup(2);
    ASSERT_TRUE(saved_stderr >= 0);
    ASSERT_INT_EQ(dup2(fds[1], 2), 2);
    close(fds[1]);
    pipe_rd = fds[0];
}

static void restore(void)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    close(pipe_rd);
    saved_stderr = pipe_rd = -1;
}

/* What stderr got since the last call (NUL-terminated into out). */
static size_t captured(char *out, size_t cap)
{
    size_t n = 0;
    ssize_t r;
    while (n < cap - 1 && (r = read(pipe_rd, out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    return n;
}

/* The number of lines in text that end with msg. */
static int count_lines(const char *text, const char *msg)
{
    int n = 0;
    size_t len = strlen(msg);
    for (const char *nl = strchr(text, '\n'); nl; nl = strchr(nl + 1, '\n')) {
        if ((size_t)(nl - text) >= len && memcmp(nl - len, msg, len) == 0)
            n++;
    }
    return n;
}

TEST(lines_go_out_at_once)
{
    char out[4096];
    capture();
    GW_INFO("one %d", 1);
    captured(out, sizeof(out));
    ASSERT_INT_EQ(count_lines(out, " INFO one 1"), 1);
    restore();
}

TEST(held_lines_go_out_together_at_the_release)
{
    char out[4096];
    capture();
    gw_log_hold();
    GW_INFO("first");
    gw_log_hold(); /* nested: only the outer release writes */
    GW_WARN("second");
    gw_log_release();
    ASSERT_UINT_EQ(captured(out, sizeof(out)), 0);
    gw_log_release();
    captured(out, sizeof(out));
    ASSERT_INT_EQ(count_lines(out, " INFO first"), 1);
    ASSERT_INT_EQ(count_lines(out, " WARN second"), 1);
    ASSERT_TRUE(strstr(out, "first") < strstr(out, "second"));
    restore();
}

TEST(an_error_line_is_written_at_once_after_what_was_held)
{
    char out[4096];
    capture();
    gw_log_hold();
    GW_INFO("before");
    GW_ERROR("failure");
    captured(out, sizeof(out));
    ASSERT_INT_EQ(count_lines(out, " INFO before"), 1);
    ASSERT_INT_EQ(count_lines(out, " ERROR failure"), 1);
    ASSERT_TRUE(strstr(out, "before") < strstr(out, "failure"));
    GW_INFO("after");
    ASSERT_UINT_EQ(captured(out, sizeof(out)), 0);
    gw_log_flush();
    captured(out, sizeof(out));
    ASSERT_INT_EQ(count_lines(out, " INFO after"), 1);
    gw_log_release();
    ASSERT_UINT_EQ(captured(out, sizeof(out)), 0);
    restore();
}

TEST(a_full_buffer_is_written_early_and_nothing_is_lost)
{
    static char out[64 * 1024];
    capture();
    gw_log_hold();
    /* About 100 bytes a line: 400 lines pass the held buffer twice over. */
    for (int i = 0; i < 400; i++)
        GW_INFO("line %03d %s", i, "................................................");
    ASSERT_TRUE(captured(out, sizeof(out)) > 0);
    gw_log_release();
    size_t n = strlen(out);
    captured(out + n, sizeof(out) - n);
    int lines = 0;
    for (const char *p = strstr(out, " INFO line "); p; p = strstr(p + 1, " INFO line ")) {
        char want[16];
        snprintf(want, sizeof(want), "line %03d", lines);
        ASSERT_TRUE(strncmp(p + 6, want, strlen(want)) == 0);
        lines++;
    }
    ASSERT_INT_EQ(lines, 400);
    restore();
}

TEST(json_lines_are_held_too)
{
    char out[4096];
    capture();
    gw_log_json = true;
    gw_log_hold();
    GW_INFO("say \"hi\"");
    ASSERT_UINT_EQ(captured(out, sizeof(out)), 0);
    gw_log_release();
    gw_log_json = false;
    captured(out, sizeof(out));
    ASSERT_TRUE(strstr(out, "\"level\":\"info\",\"msg\":\"say \\\"hi\\\"\"}\n") != NULL);
    restore();
}

GW_TEST_MAIN(TEST_CASE(lines_go_out_at_once), TEST_CASE(held_lines_go_out_together_at_the_release),
             TEST_CASE(an_error_line_is_written_at_once_after_what_was_held),
             TEST_CASE(a_full_buffer_is_written_early_and_nothing_is_lost),
             TEST_CASE(json_lines_are_held_too))
