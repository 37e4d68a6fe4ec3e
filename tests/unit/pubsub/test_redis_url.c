/* pubsub_redis_url: every accepted form of --engine, every refusal with its reason, and the
 * masked form that logs use (no password in it). */
#include "gw_test.h"

#include <string.h>

#include "gw_error.h"
#include "pubsub_redis_url.h"

struct valid_case {
    const char *url;
    bool unix_socket;
    const char *host;
    int port;
    const char *path;
    bool has_password;
    const char *user, *password;
    int db;
    const char *masked;
};

TEST(valid_forms)
{
    static const struct valid_case cases[] = {
        {"redis://127.0.0.1:6380", false, "127.0.0.1", 6380, "", false, "", "", -1,
         "redis://127.0.0.1:6380"},
        {"redis://localhost", false, "localhost", 6379, "", false, "", "", -1, "redis://localhost"},
        {"redis://redis-1.internal_net.example:7000/3", false, "redis-1.internal_net.example", 7000,
         "", false, "", "", 3, "redis://redis-1.internal_net.example:7000/3"},
        {"redis://[::1]:6379/0", false, "::1", 6379, "", false, "", "", 0, "redis://[::1]:6379/0"},
        {"redis://[fe80::1%25eth0]", false, "", 0, "", false, "", "", 0, NULL}, /* refused */
        {"redis://host/", false, "host", 6379, "", false, "", "", -1, "redis://host/"},
        {"redis://:s3cret@host:1", false, "host", 1, "", true, "", "s3cret", -1,
         "redis://:***@host:1"},
        {"redis://app:p%40ss%3Aw/rd@10.0.0.1:6379/15", false, "10.0.0.1", 6379, "", true, "app",
         "p@ss:w/rd", 15, "redis://app:***@10.0.0.1:6379/15"},
        {"redis://app:raw@pass:word@host", false, "host", 6379, "", true, "app", "raw@pass:word",
         -1, "redis://app:***@host"},
        {"redis://:@host", false, "host", 6379, "", true, "", "", -1, "redis://:***@host"},
        {"unix:///run/redis/redis.sock", true, "", 0, "/run/redis/redis.sock", false, "", "", -1,
         "unix:///run/redis/redis.sock"},
        {"unix:///tmp/r@1.sock?db=2", true, "", 0, "/tmp/r@1.sock", false, "", "", 2,
         "unix:///tmp/r@1.sock?db=2"},
        {"unix://:pw@/tmp/r.sock", true, "", 0, "/tmp/r.sock", true, "", "pw", -1,
         "unix://:***@/tmp/r.sock"},
        {"unix://u%3Ax:pw@/tmp/r.sock?db=0", true, "", 0, "/tmp/r.sock", true, "u:x", "pw", 0,
         "unix://u%3Ax:***@/tmp/r.sock?db=0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct valid_case *c = &cases[i];
        struct pubsub_redis_url u;
        const char *reason = NULL;
        int rc = pubsub_redis_url_parse(c->url, &u, &reason);
        if (!c->masked) {
            ASSERT_INT_EQ(rc, GW_EINVAL);
            continue;
        }
        if (rc != 0)
            GW_FAIL_AT("refused \"%s\": %s", c->url, reason);
        ASSERT_INT_EQ(u.unix_socket, c->unix_socket);
        ASSERT_STR_EQ(u.host, c->host);
        ASSERT_INT_EQ(u.port, c->port);
        ASSERT_STR_EQ(u.path, c->path);
        ASSERT_INT_EQ(u.has_password, c->has_password);
        ASSERT_STR_EQ(u.user, c->user);
        ASSERT_STR_EQ(u.password, c->password);
        ASSERT_INT_EQ(u.db, c->db);
        ASSERT_STR_EQ(u.masked, c->masked);
    }
}

struct refused_case {
    const char *url;
    const char *reason; /* a part of it */
};

TEST(every_refusal_says_why)
{
    static const struct refused_case cases[] = {
        {"", "expected redis://"},
        {"http://127.0.0.1:6379", "expected redis://"},
        {"local", "expected redis://"},
        {"rediss://:pw@host:6380", "TLS"},
        {"redis://", "no host"},
        {"redis://:6379", "no host"},
        {"redis://:pw@:6379", "no host"},
        {"redis://host:", "bad port"},
        {"redis://host:0", "bad port"},
        {"redis://host:65536", "bad port"},
        {"redis://host:6379x", "bad port"},
        {"redis://host:99999999999", "bad port"},
        {"redis://host:6379/x", "bad database"},
        {"redis://host:6379/-1", "bad database"},
        {"redis://host:6379/1000000000", "bad database"},
        {"redis://host:6379/1/2", "bad database"},
        {"redis://host:6379?db=1", "unexpected text"},
        {"redis://ho st:6379", "bad character"},
        {"redis://host$:6379", "bad character"},
        {"redis://[::1:6379", "without ']'"},
        {"redis://[]:6379", "bad IPv6"},
        {"redis://[not-v6]:6379", "bad IPv6"},
        {"redis://[::1]x", "unexpected text"},
        {"redis://user@host", "without a password"},
        {"redis://:p%zz@host", "percent-encoding in the password"},
        {"redis://u%0:p@host", "percent-encoding in the user"},
        {"redis://:p%00@host", "percent-encoding in the password"},
        {"unix://", "absolute"},
        {"unix://relative/path.sock", "absolute"},
        {"unix:///tmp/r.sock?db=x", "bad database"},
        {"unix:///tmp/r.sock?db=", "bad database"},
        {"unix:///tmp/r.sock?timeout=1", "only query parameter"},
        {"unix:///tmp/r.sock#frag", "unexpected text"},
        {"unix://user@/tmp/r.sock", "without a password"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pubsub_redis_url u;
        const char *reason = NULL;
        if (pubsub_redis_url_parse(cases[i].url, &u, &reason) != GW_EINVAL)
            GW_FAIL_AT("accepted \"%s\"", cases[i].url);
        if (!reason || !strstr(reason, cases[i].reason))
            GW_FAIL_AT("\"%s\": reason \"%s\", expected \"%s\" in it", cases[i].url,
                       reason ? reason : "(none)", cases[i].reason);
    }
    /* Over-long parts. */
    char url[2048];
    memset(url, 'a', sizeof(url));
    memcpy(url, "redis://", 8);
    url[8 + PUBSUB_REDIS_HOST_MAX] = '\0';
    struct pubsub_redis_url u;
    const char *reason;
    ASSERT_INT_EQ(pubsub_redis_url_parse(url, &u, &reason), GW_EINVAL);
    ASSERT_TRUE(strstr(reason, "host name too long") != NULL);
    memset(url, 'a', sizeof(url));
    memcpy(url, "unix:///", 8);
    url[8 + PUBSUB_REDIS_PATH_MAX] = '\0';
    ASSERT_INT_EQ(pubsub_redis_url_parse(url, &u, &reason), GW_EINVAL);
    ASSERT_TRUE(strstr(reason, "socket path too long") != NULL);
    memset(url, 'a', sizeof(url));
    memcpy(url, "redis://:", 9);
    url[9 + PUBSUB_REDIS_PASSWORD_MAX] = '\0';
    strcat(url, "@h");
    ASSERT_INT_EQ(pubsub_redis_url_parse(url, &u, &reason), GW_EINVAL);
    ASSERT_TRUE(strstr(reason, "password too long") != NULL);
}

TEST(masking_hides_passwords_of_any_value)
{
    char out[256];
    ASSERT_STR_EQ(pubsub_redis_url_mask("redis://u:secret@h:1", out, sizeof(out)),
                  "redis://u:***@h:1");
    ASSERT_STR_EQ(pubsub_redis_url_mask("rediss://:secret@h", out, sizeof(out)), "rediss://:***@h");
    ASSERT_STR_EQ(pubsub_redis_url_mask("redis://secret@h", out, sizeof(out)), "redis://***@h");
    ASSERT_STR_EQ(pubsub_redis_url_mask("redis://u:se@cr:et@h:99999", out, sizeof(out)),
                  "redis://u:***@h:99999");
    ASSERT_STR_EQ(pubsub_redis_url_mask("garbage:secret@", out, sizeof(out)), "garbage:***@");
    ASSERT_STR_EQ(pubsub_redis_url_mask("redis://h:1", out, sizeof(out)), "redis://h:1");
    ASSERT_STR_EQ(pubsub_redis_url_mask("local", out, sizeof(out)), "local");
    ASSERT_TRUE(pubsub_redis_url_scheme("unix:///x"));
    ASSERT_TRUE(pubsub_redis_url_scheme("rediss://x"));
    ASSERT_TRUE(!pubsub_redis_url_scheme("local"));
}

GW_TEST_MAIN(TEST_CASE(valid_forms), TEST_CASE(every_refusal_says_why),
             TEST_CASE(masking_hides_passwords_of_any_value))
