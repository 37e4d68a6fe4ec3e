#include "pubsub_hub.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_alloc.h"
#include "gw_buf.h"
#include "gw_hash.h"
#include "gw_htable.h"
#include "gw_timerq.h"
#include "pubsub_channel.h"

/* Channels between two reads of the clock. A publish of fewer channels never reads it. Only
 * channels count, not their subscribers: a slice ends only between channels, and what makes
 * fan-out fast is that the end-of-turn flush writes many messages per session at once, so the
 * publishes of a broadcast-heavy turn (100 publishes to a company of 10,000 sessions) stay in
 * one turn as before; what a slice bounds is the work of publishes naming many channels, where
 * each costs a lookup whether anyone listens or not. */
#define CLOCK_EVERY 64

/* A publish waiting for, or part-way through, delivery; or a marker (pub NULL) whose fn runs
 * when every publish queued before it has been delivered (pubsub_hub_after). */
struct pending {
    struct pending *next;
    struct pubsub_publish *pub;
    size_t next_channel;
    void (*fn)(void *arg);
    void *arg;
};

struct pubsub_channel {
    struct gw_hnode node; /* in pubsub_hub.channels */
    struct gw_list subs;
    uint32_t hash;
    bool delivering; /* freed by the delivery loop, not by unsubscribe */
    char name[];
};

struct pubsub_hub {
    struct gw_htable channels;
    pubsub_hub_cb cb;
    void *arg;
    struct pubsub_hub_stats stats;
    struct event *resume; /* zero-delay timer; NULL: no slicing */
    uint32_t slice_us;
    uint32_t work;        /* channels since the clock was last read */
    uint64_t slice_start; /* us; 0: the clock was not read since the slice began */
    struct pending *head, **tail;
};

void pubsub_message_unref(struct pubsub_message *m)
{
    if (!m)
        return;
    GW_ASSERT(m->refs > 0);
    if (--m->refs)
        return;
    for (size_t i = 0; i < PUBSUB_MESSAGE_FORMS; i++)
        gw_refbuf_unref(m->forms[i]);
    gw_refbuf_unref(m->json);
    pubsub_publish_unref(m->pub);
    gw_free(m);
}

static void on_resume(evutil_socket_t fd, short what, void *arg);

static uint32_t channel_hash(const struct gw_hnode *node)
{
    return GW_CONTAINER_OF(node, struct pubsub_channel, node)->hash;
}

struct pubsub_hub *pubsub_hub_new(struct event_base *base, uint32_t slice_us, pubsub_hub_cb cb,
                                  void *arg)
{
    struct pubsub_hub *hub = gw_calloc(1, sizeof(*hub));
    hub->cb = cb;
    hub->arg = arg;
    gw_htable_init(&hub->channels, 1024, channel_hash);
    hub->tail = &hub->head;
    if (base && slice_us) {
        hub->slice_us = slice_us;
        hub->resume = event_new(base, -1, 0, on_resume, hub);
        GW_ASSERT(hub->resume != NULL);
        /* The lowest priority, with the connections' end-of-turn flush: libevent runs a lower
         * priority only in a turn where no higher one had work, so I/O (a request waiting to be
         * answered) always goes before the next slice, and each slice is written out. */
        event_priority_set(hub->resume, event_base_get_npriorities(base) - 1);
    }
    return hub;
}

void pubsub_hub_set_callback(struct pubsub_hub *hub, pubsub_hub_cb cb, void *arg)
{
    GW_ASSERT(hub->stats.subscriptions == 0);
    hub->cb = cb;
    hub->arg = arg;
}

void pubsub_hub_free(struct pubsub_hub *hub)
{
    GW_ASSERT(hub->stats.channels == 0);
    for (struct pending *p = hub->head, *next; p; p = next) {
        next = p->next;
        if (p->fn)
            p->fn(p->arg); /* its owner lets go of what waited for it */
        pubsub_publish_unref(p->pub);
        gw_free(p);
    }
    if (hub->resume)
        event_free(hub->resume);
    gw_htable_cleanup(&hub->channels);
    gw_free(hub);
}

static struct pubsub_channel *find_channel(const struct pubsub_hub *hub, const char *name,
                                           size_t len, uint32_t h)
{
    for (struct gw_hnode *n = gw_htable_chain(&hub->channels, h); n; n = n->next) {
        struct pubsub_channel *c = GW_CONTAINER_OF(n, struct pubsub_channel, node);
        if (c->hash == h && strncmp(c->name, name, len) == 0 && !c->name[len])
            return c;
    }
    return NULL;
}

void pubsub_hub_subscribe(struct pubsub_hub *hub, struct pubsub_sub *sub, const char *name)
{
    GW_ASSERT(sub->channel == NULL);
    size_t len = strlen(name);
    uint32_t h = gw_hash_keyed(name, len);
    struct pubsub_channel *c = find_channel(hub, name, len, h);
    if (!c) {
        c = gw_calloc(1, sizeof(*c) + len + 1);
        memcpy(c->name, name, len);
        c->hash = h;
        gw_list_init(&c->subs);
        gw_htable_insert(&hub->channels, &c->node, h);
        hub->stats.channels++;
    }
    gw_list_insert_tail(&c->subs, &sub->node);
    sub->channel = c;
    hub->stats.subscriptions++;
}

static void channel_remove(struct pubsub_hub *hub, struct pubsub_channel *c)
{
    gw_htable_remove(&hub->channels, &c->node, c->hash);
    hub->stats.channels--;
    gw_free(c);
}

void pubsub_hub_unsubscribe(struct pubsub_hub *hub, struct pubsub_sub *sub)
{
    struct pubsub_channel *c = sub->channel;
    if (!c)
        return;
    gw_list_remove(&sub->node);
    sub->channel = NULL;
    hub->stats.subscriptions--;
    if (gw_list_empty(&c->subs) && !c->delivering)
        channel_remove(hub, c);
}

const char *pubsub_sub_channel(const struct pubsub_sub *sub)
{
    return sub->channel ? sub->channel->name : NULL;
}

const struct gw_list *pubsub_hub_subscribers(const struct pubsub_hub *hub, const char *name)
{
    size_t len = strlen(name);
    const struct pubsub_channel *c = find_channel(hub, name, len, gw_hash_keyed(name, len));
    return c && !gw_list_empty(&c->subs) ? &c->subs : NULL;
}

struct foreach_channel {
    void (*fn)(void *arg, const char *name, const struct gw_list *subs);
    void *arg;
};

static void visit_channel(struct gw_hnode *node, void *arg)
{
    const struct foreach_channel *f = arg;
    const struct pubsub_channel *c = GW_CONTAINER_OF(node, struct pubsub_channel, node);
    if (!gw_list_empty(&c->subs))
        f->fn(f->arg, c->name, &c->subs);
}

void pubsub_hub_foreach(const struct pubsub_hub *hub,
                        void (*fn)(void *arg, const char *name, const struct gw_list *subs),
                        void *arg)
{
    struct foreach_channel f = {fn, arg};
    gw_htable_each(&hub->channels, visit_channel, &f);
}

/* {"scope":..,"site":..,"event":..,"data":..,"seq":..}; names are control-free, so escaping
 * '"' and '\' is all JSON asks of them. */
static void append_json_string(struct gw_buf *b, const char *s)
{
    gw_buf_append(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            gw_buf_append(b, "\\", 1);
        gw_buf_append(b, p, 1);
    }
    gw_buf_append(b, "\"", 1);
}

struct pubsub_message *pubsub_message_new(const struct pubsub_publish *pub, size_t k)
{
    struct gw_buf b = GW_BUF_INIT;
    gw_buf_appendf(&b, "{\"scope\":\"%s\",\"site\":", pubsub_scope_name(pub->scope));
    append_json_string(&b, pub->sites[k / (pub->n_ids ? pub->n_ids : 1)]);
    gw_buf_append_str(&b, ",\"event\":");
    append_json_string(&b, pub->event);
    gw_buf_append_str(&b, ",\"data\":");
    gw_buf_append(&b, pub->data, pub->data_len);
    if (pub->seqs)
        gw_buf_appendf(&b, ",\"seq\":%" PRId64 "}", pub->seqs[k]);
    else
        gw_buf_append_str(&b, ",\"seq\":null}");
    struct pubsub_message *m = gw_calloc(1, sizeof(*m));
    m->refs = 1;
    m->scope = pub->scope;
    m->seq = pub->seqs ? pub->seqs[k] : -1;
    m->event = pub->event;
    m->pub = pubsub_publish_ref((struct pubsub_publish *)pub);
    m->json = gw_refbuf_copy(b.data, b.len);
    gw_buf_release(&b);
    return m;
}

/* A zero-delay timer, not event_active(): an event activated from a callback of its own
 * priority runs again in the same pass, before the loop polls for I/O. */
static void schedule_resume(struct pubsub_hub *hub)
{
    static const struct timeval now = {0, 0};
    if (!event_pending(hub->resume, EV_TIMEOUT, NULL))
        event_add(hub->resume, &now);
}

/* Read every CLOCK_EVERY units. The first read of a turn starts the slice's clock and makes sure
 * the hub runs next turn (which starts a new slice), so that publishes delivered inline in the
 * same turn share one budget. */
static bool slice_over(struct pubsub_hub *hub)
{
    hub->work = 0;
    if (!hub->resume)
        return false;
    uint64_t now = gw_now_us();
    if (!hub->slice_start) {
        hub->slice_start = now;
        schedule_resume(hub);
        return false;
    }
    return now - hub->slice_start >= hub->slice_us;
}

/* Delivers the channels of pub from k on, until done or the slice is over; returns the index of
 * the next channel (the channel count when done). Only names are looked up: nothing is held
 * from one call to the next. */
static size_t deliver_from(struct pubsub_hub *hub, const struct pubsub_publish *pub, size_t k)
{
    size_t n = pubsub_publish_channels(pub);
    char name[PUBSUB_CHANNEL_NAME_MAX];
    for (; k < n; k++) {
        if (hub->work >= CLOCK_EVERY && slice_over(hub))
            break;
        hub->work++;
        size_t len = pubsub_channel_name_of(pub, k, name, sizeof(name));
        struct pubsub_channel *c = find_channel(hub, name, len, gw_hash_keyed(name, len));
        if (!c)
            continue;
        struct pubsub_message *m = pubsub_message_new(pub, k);
        hub->stats.messages++;
        c->delivering = true;
        struct gw_list *node = c->subs.next;
        while (node != &c->subs) {
            struct gw_list *next = node->next;
            hub->stats.deliveries++;
            hub->cb(hub->arg, GW_CONTAINER_OF(node, struct pubsub_sub, node), m);
            node = next;
        }
        c->delivering = false;
        if (gw_list_empty(&c->subs))
            channel_remove(hub, c);
        pubsub_message_unref(m);
    }
    return k;
}

static void enqueue(struct pubsub_hub *hub, struct pubsub_publish *pub, size_t next_channel)
{
    struct pending *p = gw_calloc(1, sizeof(*p));
    p->pub = pubsub_publish_ref(pub);
    p->next_channel = next_channel;
    *hub->tail = p;
    hub->tail = &p->next;
    hub->stats.queued++;
    schedule_resume(hub);
}

void pubsub_hub_deliver(struct pubsub_hub *hub, struct pubsub_publish *pub)
{
    hub->stats.publishes++;
    if (hub->head) {
        hub->stats.deferred++;
        enqueue(hub, pub, 0);
        return;
    }
    size_t k = deliver_from(hub, pub, 0);
    if (k < pubsub_publish_channels(pub)) {
        hub->stats.deferred++;
        enqueue(hub, pub, k);
    }
}

void pubsub_hub_after(struct pubsub_hub *hub, void (*fn)(void *arg), void *arg)
{
    if (!hub->head) {
        fn(arg);
        return;
    }
    struct pending *p = gw_calloc(1, sizeof(*p));
    p->fn = fn;
    p->arg = arg;
    *hub->tail = p;
    hub->tail = &p->next;
}

/* One slice: the queue in order, until it is empty or the budget is spent. */
static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pubsub_hub *hub = arg;
    hub->work = 0;
    hub->slice_start = 0;
    if (!hub->head)
        return;
    hub->stats.slices++;
    /* The slice's clock starts now, not at the first check: a resumed slice is all budget. */
    hub->slice_start = gw_now_us();
    while (hub->head) {
        struct pending *p = hub->head;
        if (p->pub) {
            p->next_channel = deliver_from(hub, p->pub, p->next_channel);
            if (p->next_channel < pubsub_publish_channels(p->pub))
                break;
            hub->stats.queued--;
        }
        hub->head = p->next;
        if (!hub->head)
            hub->tail = &hub->head;
        if (p->fn)
            p->fn(p->arg);
        pubsub_publish_unref(p->pub);
        gw_free(p);
    }
    if (hub->head)
        schedule_resume(hub);
    /* Publishes delivered inline later in this turn start their own slice clock. */
    hub->slice_start = 0;
}

const struct pubsub_hub_stats *pubsub_hub_stats(const struct pubsub_hub *hub)
{
    return &hub->stats;
}
