/* Timer queues: many timers of one fixed duration share one libevent timer.
 *
 * Every timer of a queue has the same duration, so appending keeps the queue sorted by
 * deadline and start/stop are O(1). A timer costs 24 bytes instead of a 128-byte struct event,
 * which matters with a heartbeat timer per idle session. */
#ifndef GW_TIMERQ_H
#define GW_TIMERQ_H

#include <stdbool.h>
#include <stdint.h>

#include "gw_list.h"

struct event_base;
struct event;
struct gw_timer;

/* Called once per expired timer, after the timer was removed from its queue; the callback may
 * start or stop any timer, this one included, and free the timer's owner. */
typedef void (*gw_timer_cb)(struct gw_timer *timer, void *arg);

struct gw_timerq {
    struct gw_list timers;
    uint64_t duration_ms;
    uint64_t slack_ms; /* gw_timerq_set_slack */
    struct event *ev;
    gw_timer_cb cb;
    void *arg;
};

struct gw_timer {
    struct gw_list node; /* detached when inactive */
    uint64_t deadline_ms;
};

void gw_timerq_init(struct gw_timerq *q, struct event_base *base, uint64_t duration_ms,
                    gw_timer_cb cb, void *arg);
/* Lets the queue fire up to slack_ms after a deadline, with every timer due by then in the same
 * callback pass: with many timers spread over the duration (a heartbeat per session), that is
 * one loop wakeup per slack_ms instead of one per timer. 0 (the default): fire at each deadline. */
static inline void gw_timerq_set_slack(struct gw_timerq *q, uint64_t slack_ms)
{
    q->slack_ms = slack_ms;
}

/* Stops the queue; timers still in it are detached without their callback. */
void gw_timerq_cleanup(struct gw_timerq *q);

static inline void gw_timer_init(struct gw_timer *t)
{
    gw_list_init(&t->node);
    t->deadline_ms = 0;
}

/* (Re)starts t on q: it expires q->duration_ms from now, whichever queue it was on before. */
void gw_timer_start(struct gw_timer *t, struct gw_timerq *q);

static inline void gw_timer_stop(struct gw_timer *t)
{
    gw_list_remove(&t->node);
}

static inline bool gw_timer_active(const struct gw_timer *t)
{
    return !gw_list_empty(&t->node);
}

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t gw_now_ms(void);
/* Microseconds of CLOCK_MONOTONIC (a vDSO call, ~20 ns: cheap, not free). */
uint64_t gw_now_us(void);
/* Microseconds of CLOCK_REALTIME: for times that other processes compare (may step). */
uint64_t gw_wall_us(void);

#endif
