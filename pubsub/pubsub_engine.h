/* Engines move publishes between nodes. Every node hears every publish and filters locally
 * (no per-user subscriptions in the broker): the engine's job is only "from any node's API (or
 * a backend) to every node's hub", and numbering each channel's messages.
 *
 * Implementations: pubsub_engine_local.c (one process, the embedded default) and
 * pubsub_engine_redis.c (Redis pub/sub, sharded over several instances). */
#ifndef PUBSUB_ENGINE_H
#define PUBSUB_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "pubsub_history.h"
#include "pubsub_publish.h"

struct event_base;
struct pubsub_engine;
struct redisReply;

/* The reply to pubsub_engine_command(): NULL when the connection went away first. */
typedef void (*pubsub_engine_reply_cb)(void *arg, struct redisReply *reply);

/* The connections of a Redis instance that pubsub_engine_command() can use. */
enum pubsub_engine_conn {
    /* The publishes' own: a command sent here comes after the publishes already sent. */
    PUBSUB_CONN_PUBLISHES,
    /* A side connection: its commands never wait behind publishes and syncs, nor they behind
     * its commands (presence's heartbeats and changes). */
    PUBSUB_CONN_SIDE,
};

/* Called for every publish heard, with its seqs set when known. Borrowed: take a reference to
 * keep it. Never called from inside pubsub_engine_publish(). */
typedef void (*pubsub_deliver_cb)(void *arg, struct pubsub_publish *pub);

struct pubsub_engine_stats {
    uint64_t published;  /* accepted by publish() */
    uint64_t delivered;  /* handed to the deliver callback */
    uint64_t dropped;    /* lost: accepted but never confirmed sent, or refused while down */
    uint64_t malformed;  /* messages heard that were not valid publishes */
    uint64_t reconnects; /* connections re-established */
};

struct pubsub_engine_ops {
    const char *name;
    /* Sends pub to every node, this one included. Returns 0, or GW_EAGAIN when the engine
     * cannot take publishes now (the API answers 503). Takes a reference if it keeps pub. */
    int (*publish)(struct pubsub_engine *e, struct pubsub_publish *pub);
    /* Whether publish() would be accepted now. */
    bool (*available)(const struct pubsub_engine *e);
    void (*free)(struct pubsub_engine *e);
    /* Engines that share state through Redis (NULL in the others): how many instances there
     * are, and one command on one of an instance's connections (pubsub_engine_conn). */
    size_t (*shards)(const struct pubsub_engine *e);
    int (*command)(struct pubsub_engine *e, size_t shard, enum pubsub_engine_conn conn, int argc,
                   const char **argv, const size_t *argvlen, pubsub_engine_reply_cb cb, void *arg);
    /* Answers s (pubsub_history.h): the positions of its channels, and what was missed after
     * `since` where asked; unknown positions when the engine cannot be asked. Then calls
     * done(arg) exactly once, never from inside this call, and only once every publish the
     * engine had numbered when it read the positions has been handed to the deliver callback.
     * s stays valid until then. */
    void (*sync)(struct pubsub_engine *e, struct pubsub_sync *s, void (*done)(void *arg),
                 void *arg);
};

struct pubsub_engine {
    const struct pubsub_engine_ops *ops;
    pubsub_deliver_cb deliver;
    void *deliver_arg;
    /* Called when an instance's connections are all up (again): whatever state a module keeps
     * there may be gone with the restart of that instance. Not earlier, when only the command
     * connection is: what the module then publishes (presence leaves) would be refused. */
    void (*shard_ready)(void *arg, size_t shard);
    void *shard_ready_arg;
    struct pubsub_engine_stats stats;
};

static inline int pubsub_engine_publish(struct pubsub_engine *e, struct pubsub_publish *pub)
{
    return e->ops->publish(e, pub);
}

static inline bool pubsub_engine_available(const struct pubsub_engine *e)
{
    return e->ops->available(e);
}

static inline void pubsub_engine_free(struct pubsub_engine *e)
{
    e->ops->free(e);
}

/* 0 for engines without Redis; shard of a channel: pubsub_channel_shard_hash(name) % shards. */
static inline size_t pubsub_engine_shards(const struct pubsub_engine *e)
{
    return e->ops->shards ? e->ops->shards(e) : 0;
}

/* Sends one command (arguments copied) to instance `shard` on connection `conn`. Returns 0,
 * then calls cb exactly once (with NULL if the connection goes away first, also while the
 * engine is freed), or GW_EAGAIN without calling it when that connection is not up or its
 * queue is full. */
static inline int pubsub_engine_command(struct pubsub_engine *e, size_t shard,
                                        enum pubsub_engine_conn conn, int argc, const char **argv,
                                        const size_t *argvlen, pubsub_engine_reply_cb cb, void *arg)
{
    return e->ops->command(e, shard, conn, argc, argv, argvlen, cb, arg);
}

static inline void pubsub_engine_sync(struct pubsub_engine *e, struct pubsub_sync *s,
                                      void (*done)(void *arg), void *arg)
{
    e->ops->sync(e, s, done, arg);
}

/* Sequence counters live this long after a channel's last message, then expire (no orphan
 * state for users who never come back). */
#define PUBSUB_SEQ_TTL_MS (24u * 3600u * 1000u)

/* In-process engine: publish() delivers on the next loop turn. */
struct pubsub_engine *pubsub_engine_local_new(struct event_base *base,
                                              const struct pubsub_history_settings *history,
                                              pubsub_deliver_cb deliver, void *arg);

/* Redis engine over one or more instances (URLs as pubsub_redis_url.h reads them: password,
 * ACL user, database, host name, unix socket); publishes are sharded by
 * channel so that a channel's counter lives on one instance. Messages heard are held to
 * `limits` (NULL: the defaults), which should be the API's, so that every node accepts what any
 * node's API accepted. Returns NULL with *error set for an invalid URL (a static message naming
 * it masked). Connects asynchronously (host names resolved on the loop at each attempt), with
 * AUTH and SELECT before a connection counts; reconnects with backoff. */
struct pubsub_engine *pubsub_engine_redis_new(struct event_base *base, const char *const *urls,
                                              size_t n_urls, const struct pubsub_limits *limits,
                                              const struct pubsub_history_settings *history,
                                              pubsub_deliver_cb deliver, void *arg,
                                              const char **error);

#endif
