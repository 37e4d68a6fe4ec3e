#include "pubsub_presence.h"

#include <stdlib.h>
#include <string.h>

#include "gw_alloc.h"
#include "gw_error.h"
#include "gw_hash.h"
#include "gw_htable.h"
#include "gw_log.h"
#include "gw_timerq.h"
#include "pubsub_channel.h"
#include "pubsub_presence_internal.h"

/* A user's last session in a company, closed less than leave_delay_ms ago. */
struct ghost {
    struct gw_hnode node; /* in pubsub_presence.ghosts, by ghost_key() */
    struct gw_timer timer;
    uint32_t hash;
    uint32_t offsets[3]; /* of each channel's name in names[], by scope */
    char names[];
};

struct pubsub_presence {
    struct pubsub_hub *hub;
    struct pubsub_engine *engine;
    struct pubsub_presence_settings settings;
    struct gw_htable ghosts;
    struct gw_timerq leave_q;
    struct presence_redis *redis; /* NULL on the embedded engine */
    struct pubsub_presence_stats stats;
};

static const char *ghost_channel(const struct ghost *g, enum pubsub_scope scope)
{
    return g->names + g->offsets[scope];
}

static uint32_t ghost_key(const char *user_channel, const char *client_channel)
{
    return gw_hash_keyed(user_channel, strlen(user_channel)) * 31u ^
           gw_hash_keyed(client_channel, strlen(client_channel));
}

static uint32_t ghost_hash(const struct gw_hnode *node)
{
    return GW_CONTAINER_OF(node, struct ghost, node)->hash;
}

static const char *member_channel(const struct pubsub_member *m, enum pubsub_scope scope)
{
    return pubsub_sub_channel(&m->subs[scope]);
}

/* The user id inside a user channel's name. */
static const char *user_id_of(const char *user_channel)
{
    size_t site_len;
    const char *id;
    pubsub_channel_parts(user_channel, &site_len, &id);
    return id;
}

static void names_of_member(const struct pubsub_member *m, struct presence_names *out)
{
    for (int s = 0; s < 3; s++)
        out->channels[s] = member_channel(m, (enum pubsub_scope)s);
    out->user_id = user_id_of(out->channels[PUBSUB_SCOPE_USER]);
}

static void names_of_ghost(const struct ghost *g, struct presence_names *out)
{
    for (int s = 0; s < 3; s++)
        out->channels[s] = ghost_channel(g, (enum pubsub_scope)s);
    out->user_id = user_id_of(out->channels[PUBSUB_SCOPE_USER]);
}

static struct ghost *find_ghost(const struct pubsub_presence *p, const char *user_channel,
                                const char *client_channel)
{
    uint32_t h = ghost_key(user_channel, client_channel);
    for (struct gw_hnode *n = gw_htable_chain(&p->ghosts, h); n; n = n->next) {
        struct ghost *g = GW_CONTAINER_OF(n, struct ghost, node);
        if (g->hash == h && strcmp(ghost_channel(g, PUBSUB_SCOPE_USER), user_channel) == 0 &&
            strcmp(ghost_channel(g, PUBSUB_SCOPE_CLIENT), client_channel) == 0)
            return g;
    }
    return NULL;
}

static void ghost_free(struct pubsub_presence *p, struct ghost *g)
{
    gw_timer_stop(&g->timer);
    gw_htable_remove(&p->ghosts, &g->node, g->hash);
    p->stats.ghosts--;
    gw_free(g);
}

struct each_ghost {
    void (*fn)(void *, const struct ghost *);
    void *arg;
};

static void visit_ghost(struct gw_hnode *node, void *arg)
{
    const struct each_ghost *e = arg;
    e->fn(e->arg, GW_CONTAINER_OF(node, struct ghost, node));
}

/* Calls fn for every ghost; fn may not add or remove ghosts. */
static void each_ghost(const struct pubsub_presence *p, void (*fn)(void *, const struct ghost *),
                       void *arg)
{
    struct each_ghost e = {fn, arg};
    gw_htable_each(&p->ghosts, visit_ghost, &e);
}

/* --- Events ------------------------------------------------------------------------------ */

void presence_event(struct pubsub_presence *p, bool join, const char *client_channel,
                    const char *user_id)
{
    if (!p->settings.events)
        return;
    if (join)
        p->stats.joins++;
    else
        p->stats.leaves++;
    size_t site_len;
    const char *company;
    const char *site = pubsub_channel_parts(client_channel, &site_len, &company);
    json_t *obj = json_pack("{s:s,s:s%,s:[s],s:s,s:{s:s}}", "scope", "client", "site", site,
                            site_len, "ids", company, "event",
                            join ? "presence.join" : "presence.leave", "data", "user", user_id);
    struct pubsub_limits lim;
    pubsub_limits_defaults(&lim);
    lim.max_name_bytes = PUBSUB_NAME_MAX_BYTES;
    struct pubsub_publish *pub = NULL;
    const char *error = NULL;
    if (!obj || pubsub_publish_from_json(obj, &lim, &pub, &error) != 0 ||
        pubsub_engine_publish(p->engine, pub) != 0) {
        p->stats.lost_events++;
        GW_DEBUG("presence: %s of a user in %s not sent%s%s", join ? "join" : "leave",
                 client_channel, error ? ": " : "", error ? error : "");
    }
    pubsub_publish_unref(pub);
    json_decref(obj);
}

/* Live sessions of m's user in m's company, m included. */
static size_t sessions_in_company(struct pubsub_presence *p, const struct pubsub_member *m)
{
    const struct gw_list *subs =
        pubsub_hub_subscribers(p->hub, member_channel(m, PUBSUB_SCOPE_USER));
    size_t n = 0;
    for (const struct gw_list *l = subs ? subs->next : NULL; l && l != subs; l = l->next) {
        const struct pubsub_member *other =
            pubsub_member_of(GW_CONTAINER_OF(l, struct pubsub_sub, node), PUBSUB_SCOPE_USER);
        n += other->subs[PUBSUB_SCOPE_CLIENT].channel == m->subs[PUBSUB_SCOPE_CLIENT].channel;
    }
    return n;
}

/* --- Members ----------------------------------------------------------------------------- */

void pubsub_presence_join(struct pubsub_presence *p, struct pubsub_member *m)
{
    struct presence_names names;
    names_of_member(m, &names);
    struct ghost *g =
        find_ghost(p, names.channels[PUBSUB_SCOPE_USER], names.channels[PUBSUB_SCOPE_CLIENT]);
    if (g) {
        /* Back within the delay: the new session takes the lingering one's place. */
        ghost_free(p, g);
        return;
    }
    if (p->redis)
        presence_redis_change(p->redis, &names, +1);
    else if (sessions_in_company(p, m) == 1)
        presence_event(p, true, names.channels[PUBSUB_SCOPE_CLIENT], names.user_id);
}

static void ghost_new(struct pubsub_presence *p, const struct presence_names *names)
{
    size_t lens[3], total = 0;
    for (int s = 0; s < 3; s++) {
        lens[s] = strlen(names->channels[s]) + 1;
        total += lens[s];
    }
    struct ghost *g = gw_calloc(1, sizeof(*g) + total);
    size_t off = 0;
    for (int s = 0; s < 3; s++) {
        g->offsets[s] = (uint32_t)off;
        memcpy(g->names + off, names->channels[s], lens[s]);
        off += lens[s];
    }
    g->hash = ghost_key(names->channels[PUBSUB_SCOPE_USER], names->channels[PUBSUB_SCOPE_CLIENT]);
    gw_htable_insert(&p->ghosts, &g->node, g->hash);
    gw_timer_init(&g->timer);
    gw_timer_start(&g->timer, &p->leave_q);
    p->stats.ghosts++;
}

void pubsub_presence_leave(struct pubsub_presence *p, struct pubsub_member *m)
{
    struct presence_names names;
    names_of_member(m, &names);
    bool last = sessions_in_company(p, m) == 1;
    if (last && p->settings.leave_delay_ms) {
        ghost_new(p, &names);
        return;
    }
    if (p->redis)
        presence_redis_change(p->redis, &names, -1);
    else if (last)
        presence_event(p, false, names.channels[PUBSUB_SCOPE_CLIENT], names.user_id);
}

static void on_ghost_expired(struct gw_timer *t, void *arg)
{
    struct pubsub_presence *p = arg;
    struct ghost *g = GW_CONTAINER_OF(t, struct ghost, timer);
    struct presence_names names;
    names_of_ghost(g, &names);
    if (p->redis)
        presence_redis_change(p->redis, &names, -1);
    else
        presence_event(p, false, names.channels[PUBSUB_SCOPE_CLIENT], names.user_id);
    ghost_free(p, g);
}

struct each_session {
    void (*emit)(void *arg, const struct presence_names *names);
    void *arg;
};

static void emit_user_channel(void *arg, const char *name, const struct gw_list *subs)
{
    struct each_session *e = arg;
    if (strncmp(name, "user:", 5) != 0)
        return;
    for (const struct gw_list *l = subs->next; l != subs; l = l->next) {
        struct presence_names names;
        names_of_member(
            pubsub_member_of(GW_CONTAINER_OF(l, struct pubsub_sub, node), PUBSUB_SCOPE_USER),
            &names);
        e->emit(e->arg, &names);
    }
}

static void emit_ghost(void *arg, const struct ghost *g)
{
    struct each_session *e = arg;
    struct presence_names names;
    names_of_ghost(g, &names);
    e->emit(e->arg, &names);
}

void presence_each_session(struct pubsub_presence *p,
                           void (*emit)(void *arg, const struct presence_names *names), void *arg)
{
    struct each_session e = {emit, arg};
    pubsub_hub_foreach(p->hub, emit_user_channel, &e);
    each_ghost(p, emit_ghost, &e);
}

/* --- Answers from this node alone (the embedded engine) ---------------------------------- */

/* Ids (user ids, or user channel names for global), sorted to count them. */
struct id_list {
    const char **items;
    size_t n, cap;
    const char *channel;   /* the channel asked about */
    enum pubsub_scope via; /* which ghost channel must equal it */
    bool whole_name;       /* collect user channel names, not user ids */
};

static void id_push(struct id_list *l, const char *id)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->items = gw_realloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->n++] = id;
}

static void collect_ghost(void *arg, const struct ghost *g)
{
    struct id_list *l = arg;
    if (strcmp(ghost_channel(g, l->via), l->channel) != 0)
        return;
    const char *user_channel = ghost_channel(g, PUBSUB_SCOPE_USER);
    id_push(l, l->whole_name ? user_channel : user_id_of(user_channel));
}

/* Every session counted in `channel` (of scope `scope`): members, then ghosts. */
static void collect(struct pubsub_presence *p, struct id_list *l, const char *channel,
                    enum pubsub_scope scope, bool whole_name)
{
    *l = (struct id_list){.channel = channel, .via = scope, .whole_name = whole_name};
    const struct gw_list *subs = pubsub_hub_subscribers(p->hub, channel);
    for (const struct gw_list *s = subs ? subs->next : NULL; s && s != subs; s = s->next) {
        const struct pubsub_member *m =
            pubsub_member_of(GW_CONTAINER_OF(s, struct pubsub_sub, node), scope);
        const char *user_channel = member_channel(m, PUBSUB_SCOPE_USER);
        if (!user_channel)
            continue; /* an anonymous session, on the global channel */
        id_push(l, whole_name ? user_channel : user_id_of(user_channel));
    }
    each_ghost(p, collect_ghost, l);
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *local_answer(struct pubsub_presence *p, const struct pubsub_presence_query *q,
                            const char *id)
{
    char channel[PUBSUB_CHANNEL_NAME_MAX];
    pubsub_channel_name(channel, sizeof(channel), q->scope, q->site, id);
    struct id_list l;
    collect(p, &l, channel, q->scope, q->scope == PUBSUB_SCOPE_GLOBAL);
    json_t *answer = json_pack("{s:I}", "sessions", (json_int_t)l.n);
    if (q->scope == PUBSUB_SCOPE_USER) {
        json_t *users = json_object();
        if (l.n)
            json_object_set_new(users, id, json_integer((json_int_t)l.n));
        json_object_set_new(answer, "users", users);
        gw_free(l.items);
        return answer;
    }
    if (l.n)
        qsort(l.items, l.n, sizeof(*l.items), compare_ids);
    json_t *users = q->scope == PUBSUB_SCOPE_CLIENT ? json_object() : NULL;
    size_t distinct = 0, listed = 0;
    const char *last = NULL;
    for (size_t i = 0; i < l.n;) {
        size_t j = i + 1;
        while (j < l.n && strcmp(l.items[j], l.items[i]) == 0)
            j++;
        distinct++;
        bool after_cursor = !q->cursor || strcmp(l.items[i], q->cursor) > 0;
        if (users && after_cursor) {
            if (listed == q->limit) {
                json_object_set_new(answer, "cursor", json_string(last));
                break;
            }
            json_object_set_new(users, l.items[i], json_integer((json_int_t)(j - i)));
            last = l.items[i];
            listed++;
        }
        i = j;
    }
    if (users)
        json_object_set_new(answer, "users", users);
    else
        json_object_set_new(answer, "users_count", json_integer((json_int_t)distinct));
    gw_free(l.items);
    return answer;
}

struct pubsub_presence_request *pubsub_presence_query(struct pubsub_presence *p,
                                                      const struct pubsub_presence_query *q,
                                                      pubsub_presence_cb cb, void *arg)
{
    size_t n = q->scope == PUBSUB_SCOPE_GLOBAL ? 1 : q->n_ids;
    p->stats.queries += n;
    if (p->redis)
        return presence_redis_query(p->redis, q, cb, arg);
    json_t *answers = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            answers, local_answer(p, q, q->scope == PUBSUB_SCOPE_GLOBAL ? NULL : q->ids[i]));
    cb(arg, 0, answers);
    json_decref(answers);
    return NULL;
}

void pubsub_presence_cancel(struct pubsub_presence_request *r)
{
    if (r)
        presence_redis_cancel(r);
}

void pubsub_presence_stop(struct pubsub_presence *p, void (*done)(void *arg), void *arg)
{
    if (p->redis)
        presence_redis_stop(p->redis, done, arg);
    else
        done(arg);
}

void pubsub_presence_forget_stop(struct pubsub_presence *p)
{
    if (p->redis)
        presence_redis_forget_stop(p->redis);
}

const struct pubsub_presence_stats *pubsub_presence_stats(const struct pubsub_presence *p)
{
    return &p->stats;
}

/* --- Life -------------------------------------------------------------------------------- */

struct pubsub_presence *pubsub_presence_new(struct event_base *base, struct pubsub_hub *hub,
                                            struct pubsub_engine *engine,
                                            const struct pubsub_presence_settings *s)
{
    struct pubsub_presence *p = gw_calloc(1, sizeof(*p));
    p->hub = hub;
    p->engine = engine;
    p->settings = *s;
    gw_htable_init(&p->ghosts, 64, ghost_hash);
    gw_timerq_init(&p->leave_q, base, s->leave_delay_ms, on_ghost_expired, p);
    if (pubsub_engine_shards(engine))
        p->redis = presence_redis_new(p, base, engine, &p->settings, &p->stats);
    return p;
}

static void free_ghost_node(struct gw_hnode *node, void *arg)
{
    (void)arg;
    gw_free(GW_CONTAINER_OF(node, struct ghost, node));
}

void pubsub_presence_free(struct pubsub_presence *p)
{
    if (!p)
        return;
    if (p->redis)
        presence_redis_free(p->redis);
    gw_timerq_cleanup(&p->leave_q);
    gw_htable_each(&p->ghosts, free_ghost_node, NULL); /* dropped whole: nothing unlinked */
    gw_htable_cleanup(&p->ghosts);
    gw_free(p);
}
