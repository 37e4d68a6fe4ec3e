/* The embedded engine: one process, no broker. Publishes are delivered on the next loop turn
 * (never inside publish(), as the interface promises), with sequence numbers from counters
 * kept here; a counter disappears PUBSUB_SEQ_TTL_MS after its channel's last message. */
#include <string.h>

#include <event2/event.h>

#include "gw_alloc.h"
#include "gw_error.h"
#include "gw_htable.h"
#include "gw_timerq.h"
#include "pubsub_channel.h"
#include "pubsub_engine.h"

struct counter {
    struct gw_hnode node;  /* in local_engine.counters */
    struct gw_timer timer; /* expiry */
    int64_t seq;
    uint32_t hash;
    char name[];
};

struct queued {
    struct queued *next;
    struct pubsub_publish *pub;
};

struct local_engine {
    struct pubsub_engine base;
    struct event *deliver_ev;
    struct queued *head, **tail;
    struct gw_htable counters;
    struct gw_timerq expiry;
};

static uint32_t counter_hash(const struct gw_hnode *node)
{
    return GW_CONTAINER_OF(node, struct counter, node)->hash;
}

static struct counter *find_counter(const struct local_engine *e, const char *name, uint32_t h)
{
    for (struct gw_hnode *n = gw_htable_chain(&e->counters, h); n; n = n->next) {
        struct counter *c = GW_CONTAINER_OF(n, struct counter, node);
        if (c->hash == h && strcmp(c->name, name) == 0)
            return c;
    }
    return NULL;
}

static int64_t next_seq(struct local_engine *e, const char *name)
{
    uint32_t h = pubsub_channel_hash(name, strlen(name));
    struct counter *c = find_counter(e, name, h);
    if (!c) {
        size_t len = strlen(name);
        c = gw_calloc(1, sizeof(*c) + len + 1);
        memcpy(c->name, name, len);
        c->hash = h;
        gw_timer_init(&c->timer);
        gw_htable_insert(&e->counters, &c->node, h);
    }
    gw_timer_start(&c->timer, &e->expiry);
    return ++c->seq;
}

static void on_expire(struct gw_timer *t, void *arg)
{
    struct local_engine *e = arg;
    struct counter *c = GW_CONTAINER_OF(t, struct counter, timer);
    gw_htable_remove(&e->counters, &c->node, c->hash);
    gw_free(c);
}

static void on_deliver(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct local_engine *e = arg;
    /* Publishes made by the deliveries below wait for the next turn. */
    struct queued *q = e->head;
    e->head = NULL;
    e->tail = &e->head;
    while (q) {
        struct queued *next = q->next;
        e->base.stats.delivered++;
        e->base.deliver(e->base.deliver_arg, q->pub);
        pubsub_publish_unref(q->pub);
        gw_free(q);
        q = next;
    }
}

static int local_publish(struct pubsub_engine *base, struct pubsub_publish *pub)
{
    struct local_engine *e = (struct local_engine *)base;
    size_t n = pubsub_publish_channels(pub);
    int64_t *seqs = gw_malloc(n * sizeof(*seqs));
    char name[PUBSUB_CHANNEL_NAME_MAX];
    for (size_t k = 0; k < n; k++) {
        pubsub_channel_name_of(pub, k, name, sizeof(name));
        seqs[k] = next_seq(e, name);
    }
    pubsub_publish_set_seqs(pub, seqs, n);
    gw_free(seqs);
    struct queued *q = gw_malloc(sizeof(*q));
    q->next = NULL;
    q->pub = pubsub_publish_ref(pub);
    *e->tail = q;
    e->tail = &q->next;
    event_active(e->deliver_ev, EV_TIMEOUT, 0);
    e->base.stats.published++;
    return 0;
}

static bool local_available(const struct pubsub_engine *base)
{
    (void)base;
    return true;
}

static void free_counter(struct gw_hnode *node, void *arg)
{
    (void)arg;
    gw_free(GW_CONTAINER_OF(node, struct counter, node));
}

static void local_free(struct pubsub_engine *base)
{
    struct local_engine *e = (struct local_engine *)base;
    for (struct queued *q = e->head, *next; q; q = next) {
        next = q->next;
        e->base.stats.dropped++;
        pubsub_publish_unref(q->pub);
        gw_free(q);
    }
    /* Counters are linked into the expiry queue: detach them before freeing. */
    gw_timerq_cleanup(&e->expiry);
    gw_htable_each(&e->counters, free_counter, NULL);
    gw_htable_cleanup(&e->counters);
    event_free(e->deliver_ev);
    gw_free(e);
}

static const struct pubsub_engine_ops local_ops = {
    .name = "local",
    .publish = local_publish,
    .available = local_available,
    .free = local_free,
};

struct pubsub_engine *pubsub_engine_local_new(struct event_base *base, pubsub_deliver_cb deliver,
                                              void *arg)
{
    struct local_engine *e = gw_calloc(1, sizeof(*e));
    e->base.ops = &local_ops;
    e->base.deliver = deliver;
    e->base.deliver_arg = arg;
    e->tail = &e->head;
    gw_htable_init(&e->counters, 256, counter_hash);
    gw_timerq_init(&e->expiry, base, PUBSUB_SEQ_TTL_MS, on_expire, e);
    e->deliver_ev = event_new(base, -1, 0, on_deliver, e);
    GW_ASSERT(e->deliver_ev != NULL);
    return &e->base;
}
