/* Per-client token buckets in a bounded table, and the client key they count under. */
#include "gw_test.h"

#include "gw_net.h"
#include "gw_ratelimit.h"

static uint64_t key_of(const char *name)
{
    return gw_ratelimit_key(name, strlen(name));
}

TEST(burst_then_rate)
{
    struct gw_ratelimit rl;
    gw_ratelimit_init(&rl, 2, 3, 64); /* 2/s: one token per 500 ms */
    uint64_t k = key_of("a"), now = 1000000;
    ASSERT_UINT_EQ(gw_ratelimit_wait_ms(&rl, k, now), 0);
    ASSERT_TRUE(rl.entries == NULL); /* nothing allocated before the first charge */
    ASSERT_TRUE(!gw_ratelimit_charge(&rl, k, now));
    ASSERT_TRUE(!gw_ratelimit_charge(&rl, k, now));
    ASSERT_TRUE(gw_ratelimit_charge(&rl, k, now)); /* the third empties the bucket */
    ASSERT_UINT_EQ(gw_ratelimit_wait_ms(&rl, k, now), 500);
    ASSERT_UINT_EQ(gw_ratelimit_wait_ms(&rl, k, now + 200), 300);
    ASSERT_UINT_EQ(gw_ratelimit_wait_ms(&rl, k, now + 500), 0);
    /* Others are not affected. */
    ASSERT_UINT_EQ(gw_ratelimit_wait_ms(&rl, key_of("b"), now), 0);
    /* Refill stops at the burst. */
    ASSERT_TRUE(!gw_ratelimit_charge(&rl, k, now + 100000));
    ASSERT_TRUE(!gw_ratelimit_charge(&rl, k, now + 100000));
    ASSERT_TRUE(gw_ratelimit_charge(&rl, k, now + 100000));
    gw_ratelimit_cleanup(&rl);
}

TEST(rate_zero_limits_nothing)
{
    struct gw_ratelimit rl;
    gw_ratelimit_init(&rl, 0, 1, 64);
    for (int i = 0; i < 10; i++)
        ASSERT_TRUE(!gw_ratelimit_charge(&rl, key_of("a"), 5));
    ASSERT_UINT_EQ(gw_ratelimit_wait_ms(&rl, key_of("a"), 5), 0);
    ASSERT_TRUE(rl.entries == NULL);
    gw_ratelimit_cleanup(&rl);
}

/* One set of four entries: refilled entries are taken before a limited client is forgotten,
 * and any number of clients fits in the same memory. */
TEST(bounded_table_evicts_refilled_then_oldest)
{
    struct gw_ratelimit rl;
    gw_ratelimit_init(&rl, 1, 1, 4);
    ASSERT_UINT_EQ(rl.n_sets, 1);
    char name[32];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "old%d", i);
        gw_ratelimit_charge(&rl, key_of(name), 0); /* refilled by t = 1000 */
    }
    uint64_t victim = key_of("victim");
    ASSERT_TRUE(gw_ratelimit_charge(&rl, victim, 500)); /* limited until t = 1500 */
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "new%d", i);
        gw_ratelimit_charge(&rl, key_of(name), 1200);
    }
    ASSERT_UINT_EQ(gw_ratelimit_wait_ms(&rl, victim, 1200), 300);
    /* A fourth limited client in the full set replaces the one touched longest ago. */
    gw_ratelimit_charge(&rl, key_of("new3"), 1200);
    ASSERT_UINT_EQ(gw_ratelimit_wait_ms(&rl, victim, 1200), 0);
    for (int i = 0; i < 100000; i++) {
        snprintf(name, sizeof(name), "c%d", i);
        gw_ratelimit_charge(&rl, key_of(name), 2000 + (uint64_t)i);
    }
    ASSERT_UINT_EQ(rl.n_sets, 1);
    gw_ratelimit_cleanup(&rl);
}

TEST(client_key_drops_port_and_keeps_a_64)
{
    static const char *const cases[][2] = {
        {"192.0.2.1:5555", "192.0.2.1"},
        {"192.0.2.1", "192.0.2.1"},
        {"[2001:db8:1:2:3:4:5:6]:80", "2001:db8:1:2::/64"},
        {"2001:db8:1:2::9", "2001:db8:1:2::/64"},
        {"[::1]:8080", "::/64"},
        {"local", "local"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[96];
        gw_client_key(cases[i][0], out, sizeof(out));
        ASSERT_STR_EQ(out, cases[i][1]);
    }
}

GW_TEST_MAIN(TEST_CASE(burst_then_rate), TEST_CASE(rate_zero_limits_nothing),
             TEST_CASE(bounded_table_evicts_refilled_then_oldest),
             TEST_CASE(client_key_drops_port_and_keeps_a_64))
