/* Between presence's core (pubsub_presence.c: members, ghosts, answers from the hub, events)
 * and its Redis side (pubsub_presence_redis.c: this node's counts in Redis, the cluster's
 * answers, heartbeats and dead nodes). Not for other modules. */
#ifndef PUBSUB_PRESENCE_INTERNAL_H
#define PUBSUB_PRESENCE_INTERNAL_H

#include "pubsub_presence.h"

struct presence_redis;

/* The three channels a member (or a ghost) counts in, and its user id (inside `user`). */
struct presence_names {
    const char *channels[3]; /* by enum pubsub_scope */
    const char *user_id;
};

/* Core -> Redis side. */
struct presence_redis *presence_redis_new(struct pubsub_presence *p, struct event_base *base,
                                          struct pubsub_engine *engine,
                                          const struct pubsub_presence_settings *s,
                                          struct pubsub_presence_stats *stats);
void presence_redis_free(struct presence_redis *r);
/* Removes this node's entries (leaves for its users with no session elsewhere); done(arg)
 * once Redis has them and their events' publishes, or the connections went. */
void presence_redis_stop(struct presence_redis *r, void (*done)(void *arg), void *arg);
/* done will not be called (the engine is being freed). */
void presence_redis_forget_stop(struct presence_redis *r);
/* One session more (+1) or less (-1) for names, in every channel; sent with the loop turn's
 * other changes. */
void presence_redis_change(struct presence_redis *r, const struct presence_names *names, int delta);
struct pubsub_presence_request *presence_redis_query(struct presence_redis *r,
                                                     const struct pubsub_presence_query *q,
                                                     pubsub_presence_cb cb, void *arg);
void presence_redis_cancel(struct pubsub_presence_request *req);

/* Redis side -> core. */
/* A user's first session in a company (join) or last one (leave), cluster-wide. */
void presence_event(struct pubsub_presence *p, bool join, const char *client_channel,
                    const char *user_id);
/* Calls emit once per session this node counts (members and ghosts). */
void presence_each_session(struct pubsub_presence *p,
                           void (*emit)(void *arg, const struct presence_names *names), void *arg);

#endif
