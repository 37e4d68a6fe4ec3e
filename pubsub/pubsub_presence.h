/* Presence: who is connected, per user channel, company channel and site.
 *
 * Every authenticated session is a member: its three subscriptions (user, client, global) are
 * one struct pubsub_member, embedded by the application, so the users of a company are read
 * off the hub's subscriber lists (a company subscriber's user is its member's user
 * subscription) and presence costs no byte per session on the embedded engine.
 *
 * A user's last session in a company lingers for leave_delay_ms after it closes (a "ghost"):
 * it still counts in every scope, and a session of the same user and company opening meanwhile
 * takes its place, so that a page reload or a polling client reconnecting is neither a leave
 * nor a join. Answers and join/leave events agree: a user listed is a user no leave was sent
 * for.
 *
 * With the Redis engine each node owns its members' counts and shares them through Redis
 * (pubsub_presence_redis.c): every answer is the whole cluster's, and the joins and leaves are
 * the cluster's (a user's first session in a company on any node, the last one anywhere). */
#ifndef PUBSUB_PRESENCE_H
#define PUBSUB_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "pubsub_engine.h"
#include "pubsub_hub.h"

struct event_base;
struct pubsub_presence;
struct pubsub_presence_request;

/* A session's subscriptions, indexed by enum pubsub_scope. Presence reads the hub's subscriber
 * lists as lists of members: every subscriber of a user, client or global channel must be a
 * member's subs[] entry. A member without a user subscription (an anonymous session) counts
 * nowhere; members count once joined. */
struct pubsub_member {
    struct pubsub_sub subs[3];
};

/* The member whose subscription of `scope` is sub. */
static inline struct pubsub_member *pubsub_member_of(struct pubsub_sub *sub,
                                                     enum pubsub_scope scope)
{
    return (struct pubsub_member *)(void *)(sub - (int)scope);
}

struct pubsub_presence_settings {
    bool events;             /* presence.join / presence.leave on company channels */
    uint32_t leave_delay_ms; /* how long a user's last session in a company lingers */
    /* Redis engine only. */
    uint32_t flush_ms;        /* session changes are sent this often at most (0: every turn) */
    uint32_t node_timeout_ms; /* a node silent this long is gone (dropped by the others) */
    const char *node_id;      /* stable across restarts: a restart drops its earlier entries */
};

struct pubsub_presence_stats {
    uint64_t joins, leaves;  /* events sent (only when events are on) */
    uint64_t ghosts;         /* lingering now */
    uint64_t queries;        /* channels asked about */
    uint64_t redis_commands; /* presence commands sent to Redis (all kinds) */
    uint64_t redis_deltas;   /* (channel, user, change) entries they carried */
    uint64_t replaces;       /* whole-state re-publishes (start, reconnect, Redis restart) */
    uint64_t dead_nodes;     /* other nodes this one found silent and dropped */
    uint64_t lost_events;    /* events the engine refused */
};

struct pubsub_presence *pubsub_presence_new(struct event_base *base, struct pubsub_hub *hub,
                                            struct pubsub_engine *engine,
                                            const struct pubsub_presence_settings *s);
/* After the engine is freed (its callbacks reach presence until then). */
void pubsub_presence_free(struct pubsub_presence *p);

/* A node that stops (drain) takes its sessions out of the cluster's presence at once, instead
 * of leaving that to the others' node timeout: done(arg) once that is done (at once on the
 * embedded engine). Session changes after this are not sent. */
void pubsub_presence_stop(struct pubsub_presence *p, void (*done)(void *arg), void *arg);
/* The stop's done will not be called: its owner is going. */
void pubsub_presence_forget_stop(struct pubsub_presence *p);

/* m has just been subscribed to its user, client and global channels. */
void pubsub_presence_join(struct pubsub_presence *p, struct pubsub_member *m);
/* m is about to be unsubscribed. */
void pubsub_presence_leave(struct pubsub_presence *p, struct pubsub_member *m);

struct pubsub_presence_query {
    enum pubsub_scope scope;
    const char *site;
    const char *const *ids; /* the users or companies asked about; unused for global */
    size_t n_ids;           /* 1 or more for user and client; 0 for global */
    const char *cursor;     /* client scope: only users whose id sorts after it (bytewise) */
    uint32_t limit;         /* client scope: users per answer at most (>= 1) */
};

/* rc 0 with one answer per id (global: one), in order:
 *   client {"sessions": N, "users": {"u1": 2, ...}[, "cursor": "<last id listed>"]}
 *   user   {"sessions": N, "users": {"<id>": N}}   ({} when N is 0)
 *   global {"sessions": N, "users_count": M}
 * "cursor" is there only when more users follow. rc GW_EAGAIN: Redis is not reachable.
 * answers is borrowed. */
typedef void (*pubsub_presence_cb)(void *arg, int rc, json_t *answers);

/* Asks; cb is called exactly once, from inside this call (the embedded engine: the result is
 * NULL) or later (a request that pubsub_presence_cancel() can withdraw). */
struct pubsub_presence_request *pubsub_presence_query(struct pubsub_presence *p,
                                                      const struct pubsub_presence_query *q,
                                                      pubsub_presence_cb cb, void *arg);
/* cb will not be called. */
void pubsub_presence_cancel(struct pubsub_presence_request *r);

const struct pubsub_presence_stats *pubsub_presence_stats(const struct pubsub_presence *p);

#endif
