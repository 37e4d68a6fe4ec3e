/* Deadline queue: per-timer deadlines in one heap, expiring in order, set/move/cancel. */
#include "gw_test.h"

#include <event2/event.h>

#include "gw_deadline.h"

#define N 200

struct owner {
    uint32_t timer;
    int fired;
};

struct run {
    struct owner owners[N];
    int order[N];
    int n_fired;
    struct gw_deadlineq q;
    struct event_base *base;
};

static void on_fire(uint32_t *timer, void *arg)
{
    struct run *r = arg;
    struct owner *o = (struct owner *)((char *)timer - offsetof(struct owner, timer));
    o->fired++;
    r->order[r->n_fired++] = (int)(o - r->owners);
    if (r->n_fired == 1)
        gw_deadline_cancel(&r->q, &r->owners[N - 1].timer); /* callbacks may cancel others */
}

static void stop_loop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

TEST(expire_in_deadline_order)
{
    static struct run r;
    memset(&r, 0, sizeof(r));
    r.base = event_base_new();
    gw_deadlineq_init(&r.q, r.base, CLOCK_MONOTONIC, 60000, on_fire, &r);
    uint64_t now = gw_deadlineq_now_ms(&r.q);
    /* Deadlines in a scrambled order, all within 60 ms; then every third moved later, and one
     * cancelled. */
    for (int i = 0; i < N; i++)
        gw_deadline_set(&r.q, &r.owners[i].timer, now + 10 + (uint64_t)((i * 37) % N) / 4);
    for (int i = 0; i < N; i += 3)
        gw_deadline_set(&r.q, &r.owners[i].timer, now + 80 + (uint64_t)i / 8);
    gw_deadline_cancel(&r.q, &r.owners[1].timer);
    ASSERT_UINT_EQ(r.owners[1].timer, 0);
    ASSERT_UINT_EQ(r.q.n, N - 1);
    struct event *stop = evtimer_new(r.base, stop_loop, r.base);
    struct timeval tv = {0, 200 * 1000};
    evtimer_add(stop, &tv);
    event_base_dispatch(r.base);
    event_free(stop);
    /* All but the two cancelled fired once, in deadline order. */
    ASSERT_INT_EQ(r.n_fired, N - 2);
    ASSERT_INT_EQ(r.owners[1].fired, 0);
    ASSERT_INT_EQ(r.owners[N - 1].fired, 0);
    uint64_t last = 0;
    for (int k = 0; k < r.n_fired; k++) {
        int i = r.order[k];
        uint64_t d = i % 3 == 0 ? 80 + (uint64_t)i / 8 : 10 + (uint64_t)((i * 37) % N) / 4;
        ASSERT_TRUE(d >= last);
        last = d;
        ASSERT_INT_EQ(r.owners[i].fired, 1);
        ASSERT_UINT_EQ(r.owners[i].timer, 0);
    }
    ASSERT_UINT_EQ(r.q.n, 0);
    gw_deadlineq_cleanup(&r.q);
    event_base_free(r.base);
}

TEST(cleanup_detaches)
{
    struct event_base *base = event_base_new();
    struct gw_deadlineq q;
    struct run r;
    memset(&r, 0, sizeof(r));
    gw_deadlineq_init(&q, base, CLOCK_REALTIME, 1000, on_fire, &r);
    uint32_t t1 = 0, t2 = 0;
    gw_deadline_set(&q, &t1, gw_deadlineq_now_ms(&q) + 100000);
    gw_deadline_set(&q, &t2, 1);
    ASSERT_UINT_EQ(t2, 1); /* the earliest is the head */
    gw_deadlineq_cleanup(&q);
    ASSERT_UINT_EQ(t1, 0);
    ASSERT_UINT_EQ(t2, 0);
    event_base_free(base);
}

GW_TEST_MAIN(TEST_CASE(expire_in_deadline_order), TEST_CASE(cleanup_detaches))
