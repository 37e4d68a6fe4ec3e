#include "pubsub_node.h"

#include <string.h>

#include "gw_alloc.h"
#include "pubsub_redis_url.h"

struct pubsub_node {
    struct pubsub_engine *engine;
    struct pubsub_hub *hub;
    struct pubsub_presence *presence;
};

/* Every publish the engine hears goes to this node's hub, without leaving pubsub. */
static void deliver_to_hub(void *arg, struct pubsub_publish *pub)
{
    struct pubsub_node *n = arg;
    pubsub_hub_deliver(n->hub, pub);
}

static struct pubsub_engine *engine_new(struct event_base *base,
                                        const struct pubsub_node_settings *s, struct pubsub_node *n,
                                        const char **error)
{
    if (s->n_engines == 1 && strcmp(s->engines[0], "local") == 0)
        return pubsub_engine_local_new(base, &s->history, deliver_to_hub, n);
    for (size_t i = 0; i < s->n_engines; i++) {
        if (!pubsub_redis_url_scheme(s->engines[i])) {
            *error = "expected 'local', redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or "
                     "unix://[[USER]:PASSWORD@]/PATH[?db=N] (only Redis ones may be combined)";
            return NULL;
        }
    }
    struct pubsub_engine *e = pubsub_engine_redis_new(base, s->engines, s->n_engines, &s->limits,
                                                      &s->history, deliver_to_hub, n, error);
    if (!e && !*error)
        *error = "cannot create the Redis engine";
    return e;
}

struct pubsub_node *pubsub_node_new(struct event_base *base, const struct pubsub_node_settings *s,
                                    const char **error)
{
    *error = NULL;
    struct pubsub_node *n = gw_calloc(1, sizeof(*n));
    n->hub = pubsub_hub_new(base, s->slice_us, NULL, NULL);
    n->engine = engine_new(base, s, n, error);
    if (!n->engine) {
        pubsub_hub_free(n->hub);
        gw_free(n);
        return NULL;
    }
    n->presence = pubsub_presence_new(base, n->hub, n->engine, &s->presence);
    return n;
}

void pubsub_node_set_subscriber(struct pubsub_node *n, pubsub_hub_cb cb, void *arg)
{
    pubsub_hub_set_callback(n->hub, cb, arg);
}

void pubsub_node_free(struct pubsub_node *n)
{
    if (!n)
        return;
    pubsub_presence_forget_stop(n->presence);
    pubsub_engine_free(n->engine); /* its last callbacks may still reach presence */
    pubsub_presence_free(n->presence);
    pubsub_hub_free(n->hub);
    gw_free(n);
}

int pubsub_node_publish(struct pubsub_node *n, struct pubsub_publish *pub)
{
    return pubsub_engine_publish(n->engine, pub);
}

bool pubsub_node_available(const struct pubsub_node *n)
{
    return pubsub_engine_available(n->engine);
}

struct pubsub_hub *pubsub_node_hub(struct pubsub_node *n)
{
    return n->hub;
}

const struct pubsub_engine *pubsub_node_engine(const struct pubsub_node *n)
{
    return n->engine;
}

void pubsub_node_stop(struct pubsub_node *n, void (*done)(void *arg), void *arg)
{
    pubsub_presence_stop(n->presence, done, arg);
}

struct pubsub_presence *pubsub_node_presence(struct pubsub_node *n)
{
    return n->presence;
}

struct pubsub_sync_request {
    struct pubsub_sync sync;
    struct pubsub_hub *hub;
    pubsub_sync_cb cb; /* NULL once cancelled */
    void *arg;
};

/* The hub has delivered what the engine numbered before answering. */
static void sync_finish(void *arg)
{
    struct pubsub_sync_request *r = arg;
    if (r->cb)
        r->cb(r->arg, &r->sync);
    pubsub_sync_cleanup(&r->sync);
    gw_free(r);
}

/* The engine has answered and handed over every publish it numbered before: they may still be
 * waiting in the hub's queue (sliced delivery). */
static void sync_answered(void *arg)
{
    struct pubsub_sync_request *r = arg;
    pubsub_hub_after(r->hub, sync_finish, r);
}

struct pubsub_sync_request *pubsub_node_sync(struct pubsub_node *n, const struct pubsub_sync *ask,
                                             pubsub_sync_cb cb, void *arg)
{
    GW_ASSERT(ask->n <= PUBSUB_SYNC_MAX_CHANNELS);
    /* One block, the names after the struct: one allocation per session open. */
    size_t names = 0;
    for (size_t i = 0; i < ask->n; i++)
        names += strlen(ask->ch[i].name) + 1;
    struct pubsub_sync_request *r = gw_calloc(1, sizeof(*r) + names);
    char *name = (char *)(r + 1);
    r->hub = n->hub;
    r->cb = cb;
    r->arg = arg;
    r->sync.n = ask->n;
    for (size_t i = 0; i < ask->n; i++) {
        struct pubsub_sync_channel *c = &r->sync.ch[i];
        size_t len = strlen(ask->ch[i].name) + 1;
        c->name = memcpy(name, ask->ch[i].name, len);
        name += len;
        c->recover = ask->ch[i].recover;
        c->since = ask->ch[i].since;
        pubsub_sync_unknown(&r->sync, i);
    }
    pubsub_engine_sync(n->engine, &r->sync, sync_answered, r);
    return r;
}

void pubsub_node_sync_cancel(struct pubsub_sync_request *r)
{
    r->cb = NULL;
    r->sync.cancelled = true; /* not sent to Redis if it still waits */
}
