/* The node: the engine and the hub wired inside pubsub, one subscriber callback. */
#include "gw_test.h"

#include <string.h>

#include <event2/event.h>

#include "pubsub_node.h"

struct fixture {
    struct event_base *base;
    struct pubsub_node *node;
    struct pubsub_sub sub;
    int got;
};

static void on_message(void *arg, struct pubsub_sub *sub, struct pubsub_message *m)
{
    struct fixture *f = arg;
    ASSERT_TRUE(sub == &f->sub);
    ASSERT_TRUE(memmem(m->json->data, m->json->len, "\"seq\":1}", 8) != NULL);
    f->got++;
    event_base_loopbreak(f->base);
}

static struct pubsub_node_settings settings_of(const char *const *engines, size_t n)
{
    struct pubsub_node_settings s = {.engines = engines, .n_engines = n, .slice_us = 250};
    pubsub_limits_defaults(&s.limits);
    return s;
}

TEST(publish_reaches_the_subscriber_through_engine_and_hub)
{
    static const char *const local[] = {"local"};
    struct fixture f = {0};
    f.base = event_base_new();
    struct pubsub_node_settings s = settings_of(local, 1);
    const char *error = "unset";
    f.node = pubsub_node_new(f.base, &s, &error);
    ASSERT_TRUE(f.node != NULL);
    ASSERT_TRUE(error == NULL);
    ASSERT_STR_EQ(pubsub_node_engine(f.node)->ops->name, "local");
    pubsub_node_set_subscriber(f.node, on_message, &f);
    pubsub_sub_init(&f.sub);
    pubsub_hub_subscribe(pubsub_node_hub(f.node), &f.sub, "user:S:1");
    json_error_t err;
    json_t *j = json_loads("{\"scope\":\"user\",\"site\":\"S\",\"ids\":[\"1\"],\"event\":\"e\","
                           "\"data\":0}",
                           0, &err);
    struct pubsub_publish *p;
    const char *why;
    ASSERT_INT_EQ(pubsub_publish_from_json(j, &s.limits, &p, &why), 0);
    json_decref(j);
    ASSERT_TRUE(pubsub_node_available(f.node));
    ASSERT_INT_EQ(pubsub_node_publish(f.node, p), 0);
    ASSERT_INT_EQ(f.got, 0); /* never inside publish() */
    event_base_dispatch(f.base);
    ASSERT_INT_EQ(f.got, 1);
    ASSERT_INT_EQ((int)pubsub_node_engine(f.node)->stats.delivered, 1);
    pubsub_publish_unref(p);
    pubsub_hub_unsubscribe(pubsub_node_hub(f.node), &f.sub);
    pubsub_node_free(f.node);
    event_base_free(f.base);
}

TEST(invalid_engines_are_refused)
{
    struct event_base *base = event_base_new();
    static const char *const other[] = {"memcached://127.0.0.1:1"};
    static const char *const mixed[] = {"local", "redis://127.0.0.1:6379"};
    static const char *const bad_url[] = {"redis://not an address"};
    const char *const *cases[] = {other, mixed, bad_url};
    size_t counts[] = {1, 2, 1};
    for (size_t i = 0; i < 3; i++) {
        struct pubsub_node_settings s = settings_of(cases[i], counts[i]);
        const char *error = NULL;
        ASSERT_TRUE(pubsub_node_new(base, &s, &error) == NULL);
        ASSERT_TRUE(error != NULL && error[0] != '\0');
    }
    event_base_free(base);
}

GW_TEST_MAIN(TEST_CASE(publish_reaches_the_subscriber_through_engine_and_hub),
             TEST_CASE(invalid_engines_are_refused))
