/* A node: this process's engine and hub, the one owner of the publish path inside pubsub.
 *
 *   pubsub_node_publish (the API) --> engine --> (every node, this one included) --> hub
 *                                                                     |
 *   a backend PUBLISHing into Redis --> engine ----------------------+
 *                                                                     v
 *                                  the subscriber callback, once per subscriber of each
 *                                  addressed channel (the application: scoped delivery)
 *
 * The gateway only wires it at start: it creates the node from its options, then names the
 * subscriber callback. Presence (pubsub_presence.h) lives here, next to the engine. */
#ifndef PUBSUB_NODE_H
#define PUBSUB_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pubsub_engine.h"
#include "pubsub_history.h"
#include "pubsub_hub.h"
#include "pubsub_presence.h"
#include "pubsub_publish.h"

struct event_base;
struct pubsub_node;

struct pubsub_node_settings {
    const char *const *engines; /* {"local"}, or one or more "redis://HOST:PORT" (shards) */
    size_t n_engines;
    struct pubsub_limits limits; /* what every node accepts from Redis, as the API does */
    uint32_t slice_us;           /* the hub's delivery time per loop turn (0: no slicing) */
    struct pubsub_presence_settings presence;
    struct pubsub_history_settings history;
};

/* Returns NULL with *error set (a static reason) when the engines are not valid. */
struct pubsub_node *pubsub_node_new(struct event_base *base, const struct pubsub_node_settings *s,
                                    const char **error);
/* The subscriber callback the hub calls for each subscriber of each addressed channel; set
 * once, before the loop runs (publishes heard before are delivered to nobody). */
void pubsub_node_set_subscriber(struct pubsub_node *n, pubsub_hub_cb cb, void *arg);
/* Every subscription must be gone. */
void pubsub_node_free(struct pubsub_node *n);

/* Sends pub to every node through the engine: 0, or GW_EAGAIN while the engine cannot take
 * publishes (Redis down or its queue full). Takes a reference if it keeps pub. */
int pubsub_node_publish(struct pubsub_node *n, struct pubsub_publish *pub);
bool pubsub_node_available(const struct pubsub_node *n);

/* Where subscribers subscribe. */
struct pubsub_hub *pubsub_node_hub(struct pubsub_node *n);
/* Before stopping, after the sessions are closed: done(arg) once the node's sessions are out
 * of the cluster's presence (pubsub_presence_stop). */
void pubsub_node_stop(struct pubsub_node *n, void (*done)(void *arg), void *arg);
/* Who is connected: members join and leave it, queries ask it. */
struct pubsub_presence *pubsub_node_presence(struct pubsub_node *n);
/* A sync in progress (pubsub_history.h). */
struct pubsub_sync_request;
/* The answer: `s` is the sync asked, its answers filled; read it there (take references to keep
 * missed messages). */
typedef void (*pubsub_sync_cb)(void *arg, struct pubsub_sync *s);

/* Asks for the positions of ask's channels (names copied) and what each missed after its
 * `since` where asked. cb is called once, on a later loop turn, after every message the engine
 * had numbered when it read the positions has been delivered to the subscribers; unless
 * cancelled first. */
struct pubsub_sync_request *pubsub_node_sync(struct pubsub_node *n, const struct pubsub_sync *ask,
                                             pubsub_sync_cb cb, void *arg);
/* cb will not be called. */
void pubsub_node_sync_cancel(struct pubsub_sync_request *r);

/* For stats: the engine's name and counters. */
const struct pubsub_engine *pubsub_node_engine(const struct pubsub_node *n);

#endif
