/* The --config file syntax line by line (gw_config_parse_line), the environment's lists (a
 * listener's ,proxy and ,trusted stay with its address), the secret requirement, and
 * --print-config reading back to the same configuration. */
#include "gw_test.h"

#include <stdlib.h>
#include <unistd.h>

#include "config.h"

/* Parses `text`; on an option line, *name and *value are copied to the out buffers. */
static int parse(const char *text, char *name, char *value, const char **reason)
{
    char line[256];
    snprintf(line, sizeof(line), "%s", text);
    char *n, *v;
    int rc = gw_config_parse_line(line, &n, &v, reason);
    if (rc == 1) {
        snprintf(name, 64, "%s", n);
        snprintf(value, 128, "%s", v);
    }
    return rc;
}

#define ASSERT_OPTION(text, want_name, want_value)                                                 \
    do {                                                                                           \
        char _n[64], _v[128];                                                                      \
        const char *_reason = "";                                                                  \
        ASSERT_INT_EQ(parse(text, _n, _v, &_reason), 1);                                           \
        ASSERT_STR_EQ(_n, want_name);                                                              \
        ASSERT_STR_EQ(_v, want_value);                                                             \
    } while (0)

#define ASSERT_REFUSED(text, want_reason)                                                          \
    do {                                                                                           \
        char _n[64], _v[128];                                                                      \
        const char *_reason = "";                                                                  \
        ASSERT_INT_EQ(parse(text, _n, _v, &_reason), GW_EINVAL);                                   \
        ASSERT_TRUE(strstr(_reason, want_reason) != NULL);                                         \
    } while (0)

TEST(blank_and_comment_lines_have_no_option)
{
    char n[64], v[128];
    const char *reason;
    ASSERT_INT_EQ(parse("", n, v, &reason), 0);
    ASSERT_INT_EQ(parse("   \t\r\n", n, v, &reason), 0);
    ASSERT_INT_EQ(parse("# listen = 1.2.3.4:5\n", n, v, &reason), 0);
    ASSERT_INT_EQ(parse("   # indented comment", n, v, &reason), 0);
}

TEST(bare_values_end_at_a_comment_and_lose_trailing_blanks)
{
    ASSERT_OPTION("jwt-secret = a # comment\n", "jwt-secret", "a");
    ASSERT_OPTION("  prefix=/x  \r\n", "prefix", "/x");
    ASSERT_OPTION("jwt-secret = a#b", "jwt-secret", "a#b");
    ASSERT_OPTION("jwt-secret = a\t# tab then comment", "jwt-secret", "a");
    ASSERT_OPTION("node-id = # nothing", "node-id", "");
    ASSERT_OPTION("listen = 127.0.0.1:1,proxy", "listen", "127.0.0.1:1,proxy");
    /* Quotes inside a bare value are kept: only a leading one quotes. */
    ASSERT_OPTION("api-key = it's", "api-key", "it's");
}

TEST(a_name_alone_sets_a_flag)
{
    ASSERT_OPTION("allow-anonymous", "allow-anonymous", "");
    ASSERT_OPTION("ws-deflate   # on", "ws-deflate", "");
}

TEST(double_quotes_unescape)
{
    ASSERT_OPTION("jwt-secret = \"a # not a comment\"  # comment", "jwt-secret",
                  "a # not a comment");
    ASSERT_OPTION("api-key = \"q\\\"b\\\\s\\n\\t\\#\"", "api-key", "q\"b\\s\n\t#");
    ASSERT_OPTION("node-id = \"\"", "node-id", "");
    ASSERT_OPTION("prefix = \" /x \"\n", "prefix", " /x ");
}

TEST(single_quotes_are_literal)
{
    ASSERT_OPTION("jwt-secret = 'a\\n \"b\" # c' # comment", "jwt-secret", "a\\n \"b\" # c");
    ASSERT_OPTION("node-id = ''", "node-id", "");
}

TEST(syntax_errors_say_why)
{
    ASSERT_REFUSED("jwt-secret = \"abc", "no closing '\"'");
    ASSERT_REFUSED("jwt-secret = \"abc\n", "no closing '\"'");
    ASSERT_REFUSED("jwt-secret = 'abc", "no closing \"'\"");
    ASSERT_REFUSED("jwt-secret = \"a\\qb\"", "unknown escape");
    ASSERT_REFUSED("jwt-secret = \"a\" b", "text after the closing");
    ASSERT_REFUSED("jwt-secret = 'a' b", "text after the closing");
    ASSERT_REFUSED("= value", "no option name");
    ASSERT_REFUSED("jwt secret = value", "expected '='");
}

static int load(struct gw_config *cfg, int argc, const char *const *argv)
{
    gw_config_defaults(cfg);
    return gw_config_load(cfg, argc, (char **)argv);
}

TEST(env_lists_split_on_blanks_and_commas_keeping_listener_flags)
{
    setenv("SOCKJS_GATEWAY_LISTEN", "127.0.0.1:9312,proxy 127.0.0.1:9313,trusted,proxy\t[::1]:9",
           1);
    setenv("SOCKJS_GATEWAY_ENGINE", "redis://a:1,redis://b:2 redis://c:3", 1);
    setenv("SOCKJS_GATEWAY_JWT_SECRET", " s1  s2 ", 1);
    const char *argv[] = {"gw"};
    struct gw_config cfg;
    ASSERT_INT_EQ(load(&cfg, 1, argv), 0);
    unsetenv("SOCKJS_GATEWAY_LISTEN");
    unsetenv("SOCKJS_GATEWAY_ENGINE");
    unsetenv("SOCKJS_GATEWAY_JWT_SECRET");
    ASSERT_UINT_EQ(cfg.listen.n, 3);
    ASSERT_STR_EQ(cfg.listen.items[0], "127.0.0.1:9312,proxy");
    ASSERT_STR_EQ(cfg.listen.items[1], "127.0.0.1:9313,trusted,proxy");
    ASSERT_STR_EQ(cfg.listen.items[2], "[::1]:9");
    ASSERT_UINT_EQ(cfg.engines.n, 3);
    ASSERT_STR_EQ(cfg.engines.items[1], "redis://b:2");
    ASSERT_UINT_EQ(cfg.jwt_secrets.n, 2);
    ASSERT_STR_EQ(cfg.jwt_secrets.items[1], "s2");
    gw_config_cleanup(&cfg);
}

TEST(no_secret_is_refused_unless_anonymous_or_test_app)
{
    struct gw_config cfg;
    const char *bare[] = {"gw"};
    ASSERT_INT_EQ(load(&cfg, 1, bare), GW_EINVAL);
    gw_config_cleanup(&cfg);
    const char *anonymous[] = {"gw", "--allow-anonymous"};
    ASSERT_INT_EQ(load(&cfg, 2, anonymous), 0);
    gw_config_cleanup(&cfg);
    const char *test_app[] = {"gw", "--test-app"};
    ASSERT_INT_EQ(load(&cfg, 2, test_app), 0);
    gw_config_cleanup(&cfg);
}

/* Prints `cfg` to a string (caller frees). */
static char *printed(const struct gw_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    gw_config_print(cfg, out);
    fclose(out);
    return text;
}

TEST(print_config_reads_back_and_masks_secrets)
{
    const char *argv[] = {"gw",
                          "--jwt-secret",
                          "first-secret-value",
                          "--jwt-secret",
                          "second secret # \"quoted\"",
                          "--api-key",
                          "the-api-key",
                          "--node-id",
                          " spaced\tid # x ",
                          "--engine",
                          "redis://user:redis-password@127.0.0.1:6379",
                          "--listen",
                          "127.0.0.1:1,proxy"};
    struct gw_config cfg;
    ASSERT_INT_EQ(load(&cfg, sizeof(argv) / sizeof(argv[0]), argv), 0);
    char *text = printed(&cfg);
    ASSERT_TRUE(strstr(text, "first-secret-value") == NULL);
    ASSERT_TRUE(strstr(text, "second secret") == NULL);
    ASSERT_TRUE(strstr(text, "the-api-key") == NULL);
    ASSERT_TRUE(strstr(text, "redis-password") == NULL);
    ASSERT_TRUE(strstr(text, "\nengine = redis://***@127.0.0.1:6379\n") != NULL);
    ASSERT_TRUE(strstr(text, "\njwt-secret = ***\njwt-secret = ***\n") != NULL);

    char path[] = "/tmp/gw_test_config_XXXXXX";
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    const char *again_argv[] = {"gw", "--config", path};
    struct gw_config again;
    ASSERT_INT_EQ(load(&again, 3, again_argv), 0);
    unlink(path);
    ASSERT_STR_EQ(again.node_id, " spaced\tid # x ");
    ASSERT_STR_EQ(again.listen.items[0], "127.0.0.1:1,proxy");
    char *text_again = printed(&again);
    ASSERT_STR_EQ(text_again, text);
    free(text_again);
    free(text);
    gw_config_cleanup(&again);
    gw_config_cleanup(&cfg);
}

GW_TEST_MAIN(TEST_CASE(blank_and_comment_lines_have_no_option),
             TEST_CASE(bare_values_end_at_a_comment_and_lose_trailing_blanks),
             TEST_CASE(a_name_alone_sets_a_flag), TEST_CASE(double_quotes_unescape),
             TEST_CASE(single_quotes_are_literal), TEST_CASE(syntax_errors_say_why),
             TEST_CASE(env_lists_split_on_blanks_and_commas_keeping_listener_flags),
             TEST_CASE(no_secret_is_refused_unless_anonymous_or_test_app),
             TEST_CASE(print_config_reads_back_and_masks_secrets))
