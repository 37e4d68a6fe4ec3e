#include "gw_deadline.h"

#include <event2/event.h>

#include "gw_alloc.h"

uint64_t gw_deadlineq_now_ms(const struct gw_deadlineq *q)
{
    struct timespec ts;
    clock_gettime(q->clock, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void place(struct gw_deadlineq *q, uint32_t i, struct gw_deadline_entry e)
{
    q->heap[i] = e;
    *e.handle = i + 1;
}

static void sift_up(struct gw_deadlineq *q, uint32_t i)
{
    struct gw_deadline_entry e = q->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (q->heap[parent].deadline_ms <= e.deadline_ms)
            break;
        place(q, i, q->heap[parent]);
        i = parent;
    }
    place(q, i, e);
}

static void sift_down(struct gw_deadlineq *q, uint32_t i)
{
    struct gw_deadline_entry e = q->heap[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= q->n)
            break;
        if (child + 1 < q->n && q->heap[child + 1].deadline_ms < q->heap[child].deadline_ms)
            child++;
        if (q->heap[child].deadline_ms >= e.deadline_ms)
            break;
        place(q, i, q->heap[child]);
        i = child;
    }
    place(q, i, e);
}

static void arm(struct gw_deadlineq *q)
{
    if (q->n == 0) {
        event_del(q->ev);
        return;
    }
    uint64_t now = gw_deadlineq_now_ms(q), head = q->heap[0].deadline_ms;
    uint64_t wait = head > now ? head - now : 0;
    if (wait > q->max_wait_ms)
        wait = q->max_wait_ms;
    struct timeval tv = {.tv_sec = (time_t)(wait / 1000),
                         .tv_usec = (suseconds_t)(wait % 1000) * 1000};
    event_add(q->ev, &tv);
}

/* Removes the entry at i; the array shrinks when three quarters of it are unused, so that a
 * burst of sessions leaves no memory behind. */
static void remove_at(struct gw_deadlineq *q, uint32_t i)
{
    *q->heap[i].handle = 0;
    q->n--;
    if (i < q->n) {
        place(q, i, q->heap[q->n]);
        sift_down(q, i);
        sift_up(q, i);
    }
    if (q->cap > 64 && q->n < q->cap / 4) {
        q->cap /= 2;
        q->heap = gw_realloc(q->heap, q->cap * sizeof(*q->heap));
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_deadlineq *q = arg;
    uint64_t now = gw_deadlineq_now_ms(q);
    /* Timers set by the callbacks to now or earlier wait for the next turn: each turn does
     * bounded work even if a callback keeps re-arming. */
    uint32_t budget = q->n;
    while (q->n && q->heap[0].deadline_ms <= now && budget--) {
        uint32_t *handle = q->heap[0].handle;
        remove_at(q, 0);
        q->cb(handle, q->arg);
    }
    arm(q);
}

void gw_deadlineq_init(struct gw_deadlineq *q, struct event_base *base, clockid_t clock,
                       uint64_t max_wait_ms, gw_deadline_cb cb, void *arg)
{
    *q = (struct gw_deadlineq){.clock = clock, .max_wait_ms = max_wait_ms, .cb = cb, .arg = arg};
    q->ev = evtimer_new(base, on_timer, q);
    GW_ASSERT(q->ev != NULL);
}

void gw_deadlineq_cleanup(struct gw_deadlineq *q)
{
    for (uint32_t i = 0; i < q->n; i++)
        *q->heap[i].handle = 0;
    gw_free(q->heap);
    q->heap = NULL;
    q->n = q->cap = 0;
    if (q->ev)
        event_free(q->ev);
    q->ev = NULL;
}

void gw_deadline_set(struct gw_deadlineq *q, uint32_t *handle, uint64_t deadline_ms)
{
    uint32_t i;
    if (*handle) {
        i = *handle - 1;
        q->heap[i].deadline_ms = deadline_ms;
        sift_down(q, i);
        sift_up(q, *handle - 1);
    } else {
        if (q->n == q->cap) {
            q->cap = q->cap ? q->cap * 2 : 16;
            q->heap = gw_realloc(q->heap, q->cap * sizeof(*q->heap));
        }
        i = q->n++;
        q->heap[i] = (struct gw_deadline_entry){deadline_ms, handle};
        sift_up(q, i);
    }
    if (q->heap[0].handle == handle)
        arm(q);
}

void gw_deadline_cancel(struct gw_deadlineq *q, uint32_t *handle)
{
    if (!*handle)
        return;
    bool was_head = *handle == 1;
    remove_at(q, *handle - 1);
    if (was_head)
        arm(q);
}
