/* Presence on the embedded engine: answers from the hub's subscriber lists and the ghosts,
 * paging, the leave delay, and join/leave events published on the company channel. */
#include "gw_test.h"

#include <string.h>

#include <event2/event.h>

#include "pubsub_channel.h"
#include "pubsub_node.h"

struct fixture {
    struct event_base *base;
    struct pubsub_node *node;
    struct pubsub_member members[8];
    /* Subscribers that count nowhere (no user subscription), as anonymous sessions: */
    struct pubsub_member anonymous; /* of the site's global channel */
    struct pubsub_member observer;  /* of company c1 */
    char events[512];               /* "join:u1 leave:u2 " as the observer received them */
};

static void on_message(void *arg, struct pubsub_sub *sub, struct pubsub_message *m)
{
    struct fixture *f = arg;
    if (sub != &f->observer.subs[PUBSUB_SCOPE_CLIENT])
        return;
    const char *join = memmem(m->json->data, m->json->len, "presence.join", 13);
    const char *user = memmem(m->json->data, m->json->len, "{\"user\":\"", 9);
    if (!user)
        return;
    user += 9;
    size_t len = (size_t)((const char *)memchr(user, '"', 8) - user);
    size_t used = strlen(f->events);
    snprintf(f->events + used, sizeof(f->events) - used, "%s:%.*s ", join ? "join" : "leave",
             (int)len, user);
}

static void setup(struct fixture *f, uint32_t leave_delay_ms)
{
    static const char *const local[] = {"local"};
    memset(f, 0, sizeof(*f));
    f->base = event_base_new();
    struct pubsub_node_settings s = {.engines = local, .n_engines = 1, .slice_us = 250};
    pubsub_limits_defaults(&s.limits);
    s.presence =
        (struct pubsub_presence_settings){.events = true, .leave_delay_ms = leave_delay_ms};
    const char *error;
    f->node = pubsub_node_new(f->base, &s, &error);
    pubsub_node_set_subscriber(f->node, on_message, f);
    for (size_t i = 0; i < 8; i++)
        for (int scope = 0; scope < 3; scope++)
            pubsub_sub_init(&f->members[i].subs[scope]);
    for (int scope = 0; scope < 3; scope++) {
        pubsub_sub_init(&f->anonymous.subs[scope]);
        pubsub_sub_init(&f->observer.subs[scope]);
    }
    pubsub_hub_subscribe(pubsub_node_hub(f->node), &f->observer.subs[PUBSUB_SCOPE_CLIENT],
                         "client:S:c1");
}

static void teardown(struct fixture *f)
{
    struct pubsub_hub *hub = pubsub_node_hub(f->node);
    for (size_t i = 0; i < 8; i++)
        for (int scope = 0; scope < 3; scope++)
            pubsub_hub_unsubscribe(hub, &f->members[i].subs[scope]);
    pubsub_hub_unsubscribe(hub, &f->anonymous.subs[PUBSUB_SCOPE_GLOBAL]);
    pubsub_hub_unsubscribe(hub, &f->observer.subs[PUBSUB_SCOPE_CLIENT]);
    pubsub_node_free(f->node);
    event_base_free(f->base);
}

/* Member i opens as user u of company c on site S. */
static void open_member(struct fixture *f, size_t i, const char *u, const char *c)
{
    struct pubsub_hub *hub = pubsub_node_hub(f->node);
    char name[PUBSUB_CHANNEL_NAME_MAX];
    struct pubsub_member *m = &f->members[i];
    pubsub_channel_name(name, sizeof(name), PUBSUB_SCOPE_USER, "S", u);
    pubsub_hub_subscribe(hub, &m->subs[PUBSUB_SCOPE_USER], name);
    pubsub_channel_name(name, sizeof(name), PUBSUB_SCOPE_CLIENT, "S", c);
    pubsub_hub_subscribe(hub, &m->subs[PUBSUB_SCOPE_CLIENT], name);
    pubsub_channel_name(name, sizeof(name), PUBSUB_SCOPE_GLOBAL, "S", NULL);
    pubsub_hub_subscribe(hub, &m->subs[PUBSUB_SCOPE_GLOBAL], name);
    pubsub_presence_join(pubsub_node_presence(f->node), m);
}

static void close_member(struct fixture *f, size_t i)
{
    struct pubsub_member *m = &f->members[i];
    pubsub_presence_leave(pubsub_node_presence(f->node), m);
    for (int scope = 0; scope < 3; scope++)
        pubsub_hub_unsubscribe(pubsub_node_hub(f->node), &m->subs[scope]);
}

static void on_answer(void *arg, int rc, json_t *answers)
{
    char **out = arg;
    *out = rc == 0 && json_array_size(answers) == 1
               ? json_dumps(json_array_get(answers, 0), JSON_COMPACT | JSON_SORT_KEYS)
               : strdup("refused");
}

/* The answer as compact JSON with sorted keys (the caller frees). */
static char *ask(struct fixture *f, enum pubsub_scope scope, const char *id, const char *cursor,
                 uint32_t limit)
{
    char *out = NULL;
    struct pubsub_presence_query q = {.scope = scope,
                                      .site = "S",
                                      .ids = &id,
                                      .n_ids = id ? 1 : 0,
                                      .cursor = cursor,
                                      .limit = limit};
    if (pubsub_presence_query(pubsub_node_presence(f->node), &q, on_answer, &out) != NULL)
        abort(); /* the embedded engine answers at once */
    return out;
}

#define ASSERT_ANSWER(f, scope, id, cursor, limit, want)                                           \
    do {                                                                                           \
        char *got_ = ask(f, scope, id, cursor, limit);                                             \
        ASSERT_TRUE(got_ != NULL);                                                                 \
        int same_ = strcmp(got_, want) == 0;                                                       \
        if (!same_)                                                                                \
            fprintf(stderr, "got %s\n", got_);                                                     \
        free(got_);                                                                                \
        ASSERT_TRUE(same_);                                                                        \
    } while (0)

/* Runs the loop until the events text is `want` (the engine delivers on later turns), for 2 s
 * at most. */
static void await_events(struct fixture *f, const char *want)
{
    for (int i = 0; i < 400 && strcmp(f->events, want) != 0; i++) {
        struct timeval tv = {0, 5000};
        event_base_loopexit(f->base, &tv);
        event_base_dispatch(f->base);
    }
    ASSERT_STR_EQ(f->events, want);
}

TEST(answers_count_sessions_and_page_by_id)
{
    struct fixture f;
    setup(&f, 0);
    open_member(&f, 0, "u1", "c1");
    open_member(&f, 1, "u1", "c1");
    open_member(&f, 2, "u2", "c1");
    open_member(&f, 3, "u3", "c2");
    pubsub_hub_subscribe(pubsub_node_hub(f.node), &f.anonymous.subs[PUBSUB_SCOPE_GLOBAL],
                         "global:S");
    ASSERT_ANSWER(&f, PUBSUB_SCOPE_CLIENT, "c1", NULL, 1000,
                  "{\"sessions\":3,\"users\":{\"u1\":2,\"u2\":1}}");
    ASSERT_ANSWER(&f, PUBSUB_SCOPE_USER, "u1", NULL, 1000, "{\"sessions\":2,\"users\":{\"u1\":2}}");
    ASSERT_ANSWER(&f, PUBSUB_SCOPE_USER, "nobody", NULL, 1000, "{\"sessions\":0,\"users\":{}}");
    /* The anonymous subscriber of the global channel is no member. */
    ASSERT_ANSWER(&f, PUBSUB_SCOPE_GLOBAL, NULL, NULL, 1000, "{\"sessions\":4,\"users_count\":3}");
    ASSERT_ANSWER(&f, PUBSUB_SCOPE_CLIENT, "c1", NULL, 1,
                  "{\"cursor\":\"u1\",\"sessions\":3,\"users\":{\"u1\":2}}");
    ASSERT_ANSWER(&f, PUBSUB_SCOPE_CLIENT, "c1", "u1", 1, "{\"sessions\":3,\"users\":{\"u2\":1}}");
    ASSERT_ANSWER(&f, PUBSUB_SCOPE_CLIENT, "c1", "u2", 1, "{\"sessions\":3,\"users\":{}}");
    await_events(&f, "join:u1 join:u2 "); /* u3 joined c2 */
    teardown(&f);
}

TEST(the_last_session_lingers_for_the_leave_delay)
{
    struct fixture f;
    setup(&f, 30);
    const struct pubsub_presence_stats *st = pubsub_presence_stats(pubsub_node_presence(f.node));
    open_member(&f, 0, "u1", "c1");
    open_member(&f, 1, "u2", "c1");
    await_events(&f, "join:u1 join:u2 ");
    close_member(&f, 1);
    ASSERT_UINT_EQ(st->ghosts, 1);
    ASSERT_ANSWER(&f, PUBSUB_SCOPE_CLIENT, "c1", NULL, 1000,
                  "{\"sessions\":2,\"users\":{\"u1\":1,\"u2\":1}}");
    ASSERT_ANSWER(&f, PUBSUB_SCOPE_USER, "u2", NULL, 1000, "{\"sessions\":1,\"users\":{\"u2\":1}}");
    /* Back within the delay: takes the ghost's place, no event. */
    open_member(&f, 1, "u2", "c1");
    ASSERT_UINT_EQ(st->ghosts, 0);
    ASSERT_ANSWER(&f, PUBSUB_SCOPE_CLIENT, "c1", NULL, 1000,
                  "{\"sessions\":2,\"users\":{\"u1\":1,\"u2\":1}}");
    /* u2 in another company is another presence (a join there), which keeps no session of
     * c1's. */
    open_member(&f, 2, "u2", "c2");
    close_member(&f, 1);
    await_events(&f, "join:u1 join:u2 leave:u2 ");
    ASSERT_UINT_EQ(st->ghosts, 0);
    ASSERT_UINT_EQ(st->joins, 3);
    ASSERT_UINT_EQ(st->leaves, 1);
    ASSERT_ANSWER(&f, PUBSUB_SCOPE_CLIENT, "c1", NULL, 1000,
                  "{\"sessions\":1,\"users\":{\"u1\":1}}");
    ASSERT_ANSWER(&f, PUBSUB_SCOPE_USER, "u2", NULL, 1000, "{\"sessions\":1,\"users\":{\"u2\":1}}");
    /* Closing with ghosts pending frees them with the node. */
    close_member(&f, 0);
    ASSERT_UINT_EQ(st->ghosts, 1);
    teardown(&f);
}

TEST(without_a_delay_the_leave_is_at_once)
{
    struct fixture f;
    setup(&f, 0);
    open_member(&f, 0, "u1", "c1");
    open_member(&f, 1, "u1", "c1");
    close_member(&f, 0);
    close_member(&f, 1);
    await_events(&f, "join:u1 leave:u1 ");
    ASSERT_ANSWER(&f, PUBSUB_SCOPE_CLIENT, "c1", NULL, 1000, "{\"sessions\":0,\"users\":{}}");
    ASSERT_ANSWER(&f, PUBSUB_SCOPE_GLOBAL, NULL, NULL, 1000, "{\"sessions\":0,\"users_count\":0}");
    teardown(&f);
}

GW_TEST_MAIN(TEST_CASE(answers_count_sessions_and_page_by_id),
             TEST_CASE(the_last_session_lingers_for_the_leave_delay),
             TEST_CASE(without_a_delay_the_leave_is_at_once))
