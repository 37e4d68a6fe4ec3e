#include "gw_timerq.h"

#include <time.h>

#include <event2/event.h>

#include "gw_alloc.h"

uint64_t gw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t clock_us(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t gw_now_us(void)
{
    return clock_us(CLOCK_MONOTONIC);
}

uint64_t gw_wall_us(void)
{
    return clock_us(CLOCK_REALTIME);
}

static void arm(struct gw_timerq *q, uint64_t now)
{
    struct gw_timer *head = GW_CONTAINER_OF(q->timers.next, struct gw_timer, node);
    uint64_t due = head->deadline_ms + q->slack_ms;
    uint64_t wait = due > now ? due - now : 0;
    struct timeval tv = {.tv_sec = (time_t)(wait / 1000),
                         .tv_usec = (suseconds_t)(wait % 1000) * 1000};
    event_add(q->ev, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_timerq *q = arg;
    uint64_t now = gw_now_ms();
    /* Stopped timers leave the queue without touching the event, so this may fire early; it
     * then just re-arms for the current head. */
    while (!gw_list_empty(&q->timers)) {
        struct gw_timer *t = GW_CONTAINER_OF(q->timers.next, struct gw_timer, node);
        if (t->deadline_ms > now)
            break;
        gw_list_remove(&t->node);
        q->cb(t, q->arg);
    }
    if (!gw_list_empty(&q->timers) && !event_pending(q->ev, EV_TIMEOUT, NULL))
        arm(q, gw_now_ms());
}

void gw_timerq_init(struct gw_timerq *q, struct event_base *base, uint64_t duration_ms,
                    gw_timer_cb cb, void *arg)
{
    gw_list_init(&q->timers);
    q->duration_ms = duration_ms;
    q->slack_ms = 0;
    q->cb = cb;
    q->arg = arg;
    q->ev = evtimer_new(base, on_timer, q);
    GW_ASSERT(q->ev != NULL);
}

void gw_timerq_cleanup(struct gw_timerq *q)
{
    while (!gw_list_empty(&q->timers))
        gw_list_remove(q->timers.next);
    if (q->ev)
        event_free(q->ev);
    q->ev = NULL;
}

void gw_timer_start(struct gw_timer *t, struct gw_timerq *q)
{
    uint64_t now = gw_now_ms();
    gw_list_remove(&t->node);
    t->deadline_ms = now + q->duration_ms;
    gw_list_insert_tail(&q->timers, &t->node);
    if (!event_pending(q->ev, EV_TIMEOUT, NULL))
        arm(q, now);
}
