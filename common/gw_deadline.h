/* Deadline queues: timers that each have a deadline of their own (unlike gw_timerq, where all
 * share one duration), in one binary min-heap behind one libevent timer.
 *
 * A timer is a uint32_t handle kept by its owner (0: not queued, else its heap position + 1);
 * the heap entry holds the deadline and a pointer to the handle, so a queued timer costs its
 * owner 4 bytes and the queue 16 (plus the array's slack), and an idle one nothing. Setting,
 * moving and cancelling are O(log n); only expiring timers are ever visited.
 *
 * Deadlines are milliseconds of the clock the queue was made with (CLOCK_REALTIME for wall
 * time such as a token's exp). The libevent timer waits at most max_wait_ms at once, so that a
 * wall clock set forward is noticed within that time. */
#ifndef GW_DEADLINE_H
#define GW_DEADLINE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct event_base;
struct event;

/* Called once per expired timer, after it left the queue (*handle is 0); the callback may set
 * or cancel any timer, this one included, and free the handle's owner. */
typedef void (*gw_deadline_cb)(uint32_t *handle, void *arg);

struct gw_deadline_entry {
    uint64_t deadline_ms;
    uint32_t *handle;
};

struct gw_deadlineq {
    struct gw_deadline_entry *heap;
    uint32_t n, cap;
    clockid_t clock;
    uint64_t max_wait_ms;
    struct event *ev;
    gw_deadline_cb cb;
    void *arg;
};

void gw_deadlineq_init(struct gw_deadlineq *q, struct event_base *base, clockid_t clock,
                       uint64_t max_wait_ms, gw_deadline_cb cb, void *arg);
/* Stops the queue; timers still in it get *handle = 0, without their callback. */
void gw_deadlineq_cleanup(struct gw_deadlineq *q);

/* Now, in milliseconds of q's clock. */
uint64_t gw_deadlineq_now_ms(const struct gw_deadlineq *q);

/* (Re)queues the timer *handle to expire at deadline_ms (a deadline already past expires on the
 * next loop turn). */
void gw_deadline_set(struct gw_deadlineq *q, uint32_t *handle, uint64_t deadline_ms);
/* Takes the timer out of the queue, if it is in. */
void gw_deadline_cancel(struct gw_deadlineq *q, uint32_t *handle);

#endif
