/* Timer queues: timers fire in order, never before their deadline; with a slack, the timers
 * falling due within it fire in one callback pass (one loop wakeup) instead of one each. */
#include "gw_test.h"

#include <event2/event.h>

#include "gw_timerq.h"

#define N 3

struct run {
    struct gw_timer timers[N];
    uint64_t fired_ms[N];
    int n_fired;
};

static void on_fire(struct gw_timer *t, void *arg)
{
    struct run *r = arg;
    r->fired_ms[t - r->timers] = gw_now_ms();
    r->n_fired++;
}

/* Starts N timers due 10 ms apart, runs the loop until all fired; returns how many loop turns
 * that took (one per wakeup). */
static int turns_until_all_fired(uint64_t slack_ms, struct run *r, uint64_t deadline[N])
{
    struct event_base *base = event_base_new();
    struct gw_timerq q;
    gw_timerq_init(&q, base, 40, on_fire, r);
    gw_timerq_set_slack(&q, slack_ms);
    for (int i = 0; i < N; i++) {
        gw_timer_init(&r->timers[i]);
        gw_timer_start(&r->timers[i], &q);
    }
    /* Spread the deadlines without waiting: 10 ms apart, still in queue order. */
    for (int i = 0; i < N; i++) {
        r->timers[i].deadline_ms += (uint64_t)i * 10;
        deadline[i] = r->timers[i].deadline_ms;
    }
    int turns = 0;
    while (r->n_fired < N && turns < 100) {
        event_base_loop(base, EVLOOP_ONCE);
        turns++;
    }
    gw_timerq_cleanup(&q);
    event_base_free(base);
    return turns;
}

TEST(without_slack_timers_fire_at_their_deadlines_in_order)
{
    struct run r = {0};
    uint64_t deadline[N];
    /* How many turns it takes depends on how late the loop wakes up: not asserted. */
    turns_until_all_fired(0, &r, deadline);
    ASSERT_INT_EQ(r.n_fired, N);
    for (int i = 0; i < N; i++) {
        ASSERT_TRUE(r.fired_ms[i] >= deadline[i]);
        ASSERT_TRUE(i == 0 || r.fired_ms[i] >= r.fired_ms[i - 1]);
    }
}

TEST(with_slack_the_timers_due_within_it_fire_together)
{
    struct run r = {0};
    uint64_t deadline[N];
    int turns = turns_until_all_fired(30, &r, deadline);
    ASSERT_INT_EQ(r.n_fired, N);
    ASSERT_INT_EQ(turns, 1);
    for (int i = 0; i < N; i++) {
        ASSERT_TRUE(r.fired_ms[i] >= deadline[i]); /* never early */
        ASSERT_UINT_EQ(r.fired_ms[i], r.fired_ms[0]);
    }
    ASSERT_TRUE(r.fired_ms[0] >= deadline[0] + 30);
}

GW_TEST_MAIN(TEST_CASE(without_slack_timers_fire_at_their_deadlines_in_order),
             TEST_CASE(with_slack_the_timers_due_within_it_fire_together))
