/* The hub: channel -> local subscribers. Subscribe and unsubscribe are O(1) after the name
 * lookup; delivering a publish costs one lookup per addressed channel (300 ids, 300 lookups),
 * never a scan of subscribers. A channel exists only while it has subscribers.
 *
 * Per channel, a publish becomes one immutable, refcounted message, encoded once for the browser
 * ({"scope","site","event","data","seq"}) and shared by every subscriber of that channel; upper
 * layers cache their own encodings of it (SockJS frame, websocket frame, compressed) in
 * forms[].
 *
 * A publish can address 10,000 channels or more, too much for one loop turn: the hub delivers
 * within a time budget per turn (slice_us) and continues on the next turn from the channel it
 * stopped at, through a FIFO of publishes being delivered, so that a later publish never
 * overtakes an earlier one. Between slices the loop serves I/O and the connections' end-of-turn
 * flush writes the slice out. Nothing is held across turns but the publish and the index of
 * its next channel: subscribers may come and go meanwhile. A publish that fits in one slice
 * with nothing queued is delivered inside pubsub_hub_deliver(), as before. */
#ifndef PUBSUB_HUB_H
#define PUBSUB_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "gw_list.h"
#include "gw_refbuf.h"
#include "pubsub_publish.h"

struct pubsub_hub;
struct pubsub_channel;

#define PUBSUB_MESSAGE_FORMS 6

struct pubsub_message {
    uint32_t refs;
    enum pubsub_scope scope;
    int64_t seq;       /* in its channel; -1: none (a publish straight into Redis) */
    bool latency_seen; /* the application observed its latency (first recipient) */
    const char *event;
    struct pubsub_publish *pub; /* held: event and names live there */
    struct gw_refbuf *json;     /* the message as the browser gets it */
    /* Encodings that upper layers build at most once per message; the SockJS layer owns the
     * index and hands some slots to transports (sockjs_message_transport_form). */
    struct gw_refbuf *forms[PUBSUB_MESSAGE_FORMS];
};

static inline struct pubsub_message *pubsub_message_ref(struct pubsub_message *m)
{
    m->refs++;
    return m;
}

void pubsub_message_unref(struct pubsub_message *m);

/* Embedded in the subscriber; detached (node points to itself) while not subscribed. */
struct pubsub_sub {
    struct gw_list node;
    struct pubsub_channel *channel;
};

/* Called once per subscriber of each addressed channel. The callback may unsubscribe `sub`
 * (and only `sub`) and may close its owner. */
typedef void (*pubsub_hub_cb)(void *arg, struct pubsub_sub *sub, struct pubsub_message *msg);

struct pubsub_hub_stats {
    uint64_t publishes;
    uint64_t messages;   /* (publish, channel with subscribers) pairs */
    uint64_t deliveries; /* callbacks made */
    uint64_t deferred;   /* publishes not delivered whole inside pubsub_hub_deliver() */
    uint64_t slices;     /* slices delivered on a later loop turn */
    size_t queued;       /* publishes waiting or part-delivered now */
    size_t channels;
    size_t subscriptions;
};

/* base NULL or slice_us 0: every publish is delivered whole inside pubsub_hub_deliver(). */
struct pubsub_hub *pubsub_hub_new(struct event_base *base, uint32_t slice_us, pubsub_hub_cb cb,
                                  void *arg);
/* Sets the callback (and its argument) that pubsub_hub_new was given NULL for: the node makes
 * the hub before the application that subscribes exists. No subscription may exist yet. */
void pubsub_hub_set_callback(struct pubsub_hub *hub, pubsub_hub_cb cb, void *arg);
/* Every subscription must be gone; publishes not yet delivered are dropped. */
void pubsub_hub_free(struct pubsub_hub *hub);

static inline void pubsub_sub_init(struct pubsub_sub *sub)
{
    gw_list_init(&sub->node);
    sub->channel = NULL;
}

void pubsub_hub_subscribe(struct pubsub_hub *hub, struct pubsub_sub *sub, const char *channel);
/* No-op when not subscribed. */
void pubsub_hub_unsubscribe(struct pubsub_hub *hub, struct pubsub_sub *sub);
/* The channel name sub is subscribed to, or NULL. */
const char *pubsub_sub_channel(const struct pubsub_sub *sub);

/* The subscribers of channel `name` (struct pubsub_sub.node links), or NULL when it has none;
 * for reading, before anything subscribes or unsubscribes again. */
const struct gw_list *pubsub_hub_subscribers(const struct pubsub_hub *hub, const char *name);
/* Calls fn for every channel, in no order; fn may not subscribe or unsubscribe. */
void pubsub_hub_foreach(const struct pubsub_hub *hub,
                        void (*fn)(void *arg, const char *name, const struct gw_list *subs),
                        void *arg);

/* Delivers a publish (with its seqs, if any) to local subscribers: now if it fits in the slice
 * and nothing is queued, else (the rest of it) on later loop turns, after the publishes queued
 * before it. Takes a reference when it must keep the publish. */
void pubsub_hub_deliver(struct pubsub_hub *hub, struct pubsub_publish *pub);

/* Calls fn(arg) once every publish handed to pubsub_hub_deliver() before this call has been
 * delivered whole: now when none is waiting, else after the last of them, on a later turn (and
 * from pubsub_hub_free() when the hub goes first). */
void pubsub_hub_after(struct pubsub_hub *hub, void (*fn)(void *arg), void *arg);

/* The message of channel k of pub, as the hub delivers it (for replaying history). */
struct pubsub_message *pubsub_message_new(const struct pubsub_publish *pub, size_t k);

const struct pubsub_hub_stats *pubsub_hub_stats(const struct pubsub_hub *hub);

#endif
