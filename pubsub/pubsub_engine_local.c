/* The embedded engine: one process, no broker. Publishes are delivered on the next loop turn
 * (never inside publish(), as the interface promises), with sequence numbers from counters
 * kept here; a counter disappears PUBSUB_SEQ_TTL_MS after its channel's last message.
 *
 * History: a counter keeps its last history.size publishes as references (the publish and the
 * channel's index in it: the message is built again only when replayed), all of them dropped
 * history.ttl_ms after the channel's last message.
 *
 * Epochs: "<nonce>-<generation>", the nonce random per process, the generation the number of
 * counters that had expired when the counter was made. A channel without a counter reports
 * seq 0 in the current generation: if the channel is made later with no expiry in between, it
 * is the same life (nothing of it was lost), and any expiry moves later channels to a new
 * epoch. So channels that were never published to cost nothing, yet no two lives of one channel
 * share an epoch. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <event2/event.h>

#include "gw_alloc.h"
#include "gw_error.h"
#include "gw_hash.h"
#include "gw_htable.h"
#include "gw_timerq.h"
#include "pubsub_channel.h"
#include "pubsub_engine.h"
#include "pubsub_hub.h"

struct history_entry {
    struct pubsub_publish *pub;
    size_t k; /* the channel's index in pub */
};

/* A ring of the channel's last publishes, grown by doubling up to history.size. */
struct history {
    struct gw_timer timer; /* expiry, in local_engine.history_expiry */
    struct counter *counter;
    uint32_t first, n, cap;
    struct history_entry entries[];
};

struct counter {
    struct gw_hnode node;  /* in local_engine.counters */
    struct gw_timer timer; /* expiry */
    int64_t seq;
    uint64_t generation; /* of the epoch */
    struct history *history;
    uint32_t hash;
    char name[];
};

/* A publish, or (pub NULL) a sync whose done() waits for the publishes before it. */
struct queued {
    struct queued *next;
    struct pubsub_publish *pub;
    void (*done)(void *arg);
    void *arg;
};

struct local_engine {
    struct pubsub_engine base;
    struct event *deliver_ev;
    struct queued *head, **tail;
    struct gw_htable counters;
    struct gw_timerq expiry;
    struct pubsub_history_settings history;
    struct gw_timerq history_expiry;
    uint64_t nonce;
    uint64_t generation; /* counters expired so far */
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

static void history_free(struct history *h)
{
    if (!h)
        return;
    gw_timer_stop(&h->timer);
    for (uint32_t i = 0; i < h->n; i++)
        pubsub_publish_unref(h->entries[(h->first + i) % h->cap].pub);
    gw_free(h);
}

static void on_history_expire(struct gw_timer *t, void *arg)
{
    (void)arg;
    struct history *h = GW_CONTAINER_OF(t, struct history, timer);
    h->counter->history = NULL;
    history_free(h);
}

/* Appends channel k of pub to c's history, dropping the oldest entry when full. */
static void history_add(struct local_engine *e, struct counter *c, struct pubsub_publish *pub,
                        size_t k)
{
    struct history *h = c->history;
    if (!h || (h->n == h->cap && h->cap < e->history.size)) {
        uint32_t cap = h ? h->cap * 2 : 4;
        if (cap > e->history.size)
            cap = e->history.size;
        struct history *grown = gw_malloc(sizeof(*grown) + cap * sizeof(grown->entries[0]));
        gw_timer_init(&grown->timer);
        grown->counter = c;
        grown->first = 0;
        grown->n = h ? h->n : 0;
        grown->cap = cap;
        for (uint32_t i = 0; i < grown->n; i++)
            grown->entries[i] = h->entries[(h->first + i) % h->cap];
        if (h) {
            gw_timer_stop(&h->timer);
            gw_free(h);
        }
        c->history = h = grown;
    }
    if (h->n == h->cap) {
        pubsub_publish_unref(h->entries[h->first].pub);
        h->first = (h->first + 1) % h->cap;
        h->n--;
    }
    h->entries[(h->first + h->n) % h->cap] =
        (struct history_entry){.pub = pubsub_publish_ref(pub), .k = k};
    h->n++;
    if (e->history.ttl_ms)
        gw_timer_start(&h->timer, &e->history_expiry);
}

/* The channel's counter, advanced: its seq is the new message's. */
static struct counter *advance(struct local_engine *e, const char *name)
{
    uint32_t h = gw_hash_keyed(name, strlen(name));
    struct counter *c = find_counter(e, name, h);
    if (!c) {
        size_t len = strlen(name);
        c = gw_calloc(1, sizeof(*c) + len + 1);
        memcpy(c->name, name, len);
        c->hash = h;
        c->generation = e->generation;
        gw_timer_init(&c->timer);
        gw_htable_insert(&e->counters, &c->node, h);
    }
    gw_timer_start(&c->timer, &e->expiry);
    c->seq++;
    return c;
}

static void counter_free(struct counter *c)
{
    history_free(c->history);
    gw_free(c);
}

static void on_expire(struct gw_timer *t, void *arg)
{
    struct local_engine *e = arg;
    struct counter *c = GW_CONTAINER_OF(t, struct counter, timer);
    gw_htable_remove(&e->counters, &c->node, c->hash);
    counter_free(c);
    e->generation++;
}

static void format_epoch(const struct local_engine *e, uint64_t generation, char *out)
{
    snprintf(out, PUBSUB_EPOCH_MAX + 1, "%016" PRIx64 "-%" PRIu64, e->nonce, generation);
}

/* One channel's answer, read now. */
static void answer(struct local_engine *e, struct pubsub_sync *s, size_t i)
{
    struct pubsub_sync_channel *ch = &s->ch[i];
    const struct counter *c = find_counter(e, ch->name, gw_hash_keyed(ch->name, strlen(ch->name)));
    ch->at.seq = c ? c->seq : 0;
    format_epoch(e, c ? c->generation : e->generation, ch->at.epoch);
    ch->recovered = false;
    if (!ch->recover || !e->history.size || strcmp(ch->since.epoch, ch->at.epoch) != 0 ||
        ch->since.seq < 0 || ch->since.seq > ch->at.seq)
        return;
    int64_t missed = ch->at.seq - ch->since.seq;
    const struct history *h = c ? c->history : NULL;
    if (missed == 0) {
        ch->recovered = true;
        return;
    }
    /* The ring holds consecutive seqs ending at the counter's: it reaches back far enough or
     * not at all. */
    if (!h || (int64_t)h->n < missed)
        return;
    for (uint32_t j = h->n - (uint32_t)missed; j < h->n; j++) {
        const struct history_entry *en = &h->entries[(h->first + j) % h->cap];
        pubsub_sync_add_missed(s, i, pubsub_message_new(en->pub, en->k));
    }
    ch->recovered = true;
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
        if (q->pub) {
            e->base.stats.delivered++;
            e->base.deliver(e->base.deliver_arg, q->pub);
            pubsub_publish_unref(q->pub);
        } else {
            q->done(q->arg);
        }
        gw_free(q);
        q = next;
    }
}

static void enqueue(struct local_engine *e, struct pubsub_publish *pub, void (*done)(void *arg),
                    void *arg)
{
    struct queued *q = gw_malloc(sizeof(*q));
    *q = (struct queued){.pub = pub, .done = done, .arg = arg};
    *e->tail = q;
    e->tail = &q->next;
    event_active(e->deliver_ev, EV_TIMEOUT, 0);
}

static int local_publish(struct pubsub_engine *base, struct pubsub_publish *pub)
{
    struct local_engine *e = (struct local_engine *)base;
    size_t n = pubsub_publish_channels(pub);
    int64_t *seqs = gw_malloc(n * sizeof(*seqs));
    char name[PUBSUB_CHANNEL_NAME_MAX];
    for (size_t k = 0; k < n; k++) {
        pubsub_channel_name_of(pub, k, name, sizeof(name));
        struct counter *c = advance(e, name);
        seqs[k] = c->seq;
        /* An entry is (pub, k): the seq is read from pub when replayed, set just below. */
        if (e->history.size)
            history_add(e, c, pub, k);
    }
    pubsub_publish_set_seqs(pub, seqs, n);
    gw_free(seqs);
    enqueue(e, pubsub_publish_ref(pub), NULL, NULL);
    e->base.stats.published++;
    return 0;
}

static void local_sync(struct pubsub_engine *base, struct pubsub_sync *s, void (*done)(void *arg),
                       void *arg)
{
    struct local_engine *e = (struct local_engine *)base;
    for (size_t i = 0; i < s->n; i++)
        answer(e, s, i);
    /* Behind the publishes already numbered, which the answer counts. */
    enqueue(e, NULL, done, arg);
}

static bool local_available(const struct pubsub_engine *base)
{
    (void)base;
    return true;
}

static void free_counter(struct gw_hnode *node, void *arg)
{
    (void)arg;
    counter_free(GW_CONTAINER_OF(node, struct counter, node));
}

static void local_free(struct pubsub_engine *base)
{
    struct local_engine *e = (struct local_engine *)base;
    for (struct queued *q = e->head, *next; q; q = next) {
        next = q->next;
        if (q->pub) {
            e->base.stats.dropped++;
            pubsub_publish_unref(q->pub);
        } else {
            q->done(q->arg);
        }
        gw_free(q);
    }
    /* Counters and histories are linked into the expiry queues: detach them before freeing. */
    gw_timerq_cleanup(&e->expiry);
    gw_timerq_cleanup(&e->history_expiry);
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
    .sync = local_sync,
};

struct pubsub_engine *pubsub_engine_local_new(struct event_base *base,
                                              const struct pubsub_history_settings *history,
                                              pubsub_deliver_cb deliver, void *arg)
{
    struct local_engine *e = gw_calloc(1, sizeof(*e));
    e->base.ops = &local_ops;
    e->base.deliver = deliver;
    e->base.deliver_arg = arg;
    e->tail = &e->head;
    if (history)
        e->history = *history;
    /* Another process's epochs must differ: a restart loses every counter. */
    if (getrandom(&e->nonce, sizeof(e->nonce), 0) != (ssize_t)sizeof(e->nonce))
        e->nonce = (uint64_t)gw_now_us() ^ (uint64_t)(uintptr_t)e;
    gw_htable_init(&e->counters, 256, counter_hash);
    gw_timerq_init(&e->expiry, base, PUBSUB_SEQ_TTL_MS, on_expire, e);
    gw_timerq_init(&e->history_expiry, base, e->history.ttl_ms, on_history_expire, e);
    e->deliver_ev = event_new(base, -1, 0, on_deliver, e);
    GW_ASSERT(e->deliver_ev != NULL);
    return &e->base;
}
