/* The hub and the embedded engine: who gets what, encoded once, with per-channel sequences. */
#include "gw_test.h"

#include <event2/event.h>

#include "gw_alloc.h"
#include "gw_buf.h"
#include "pubsub_channel.h"
#include "pubsub_engine.h"
#include "pubsub_hub.h"

struct subscriber {
    struct pubsub_sub sub;
    int got;
    struct pubsub_message *last;
    bool leave_on_delivery;
};

struct hub_fixture {
    struct pubsub_hub *hub;
};

static void on_message(void *arg, struct pubsub_sub *sub, struct pubsub_message *m)
{
    struct hub_fixture *f = arg;
    struct subscriber *s = GW_CONTAINER_OF(sub, struct subscriber, sub);
    s->got++;
    pubsub_message_unref(s->last);
    s->last = pubsub_message_ref(m);
    if (s->leave_on_delivery)
        pubsub_hub_unsubscribe(f->hub, sub);
}

static struct pubsub_publish *parse(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    struct pubsub_limits lim;
    pubsub_limits_defaults(&lim);
    struct pubsub_publish *p = NULL;
    const char *error = NULL;
    int rc = pubsub_publish_from_json(j, &lim, &p, &error);
    json_decref(j);
    if (rc != 0)
        fprintf(stderr, "parse failed: %s\n", error);
    return p;
}

static void sub_init(struct subscriber *s)
{
    memset(s, 0, sizeof(*s));
    pubsub_sub_init(&s->sub);
}

TEST(delivers_to_the_addressed_channels_only)
{
    struct hub_fixture f;
    f.hub = pubsub_hub_new(NULL, 0, on_message, &f);
    struct subscriber a, b, company, other_site;
    sub_init(&a);
    sub_init(&b);
    sub_init(&company);
    sub_init(&other_site);
    pubsub_hub_subscribe(f.hub, &a.sub, "user:S:1");
    pubsub_hub_subscribe(f.hub, &b.sub, "user:S:2");
    pubsub_hub_subscribe(f.hub, &company.sub, "client:S:7");
    pubsub_hub_subscribe(f.hub, &other_site.sub, "user:T:1");
    struct pubsub_publish *p =
        parse("{\"scope\":\"user\",\"site\":\"S\",\"ids\":[\"1\",3],\"event\":\"e.x\","
              "\"data\":{\"k\":[1,2]}}");
    ASSERT_TRUE(p != NULL);
    pubsub_hub_deliver(f.hub, p);
    ASSERT_INT_EQ(a.got, 1);
    ASSERT_INT_EQ(b.got, 0);
    ASSERT_INT_EQ(company.got, 0);
    ASSERT_INT_EQ(other_site.got, 0);
    const char *want =
        "{\"scope\":\"user\",\"site\":\"S\",\"event\":\"e.x\",\"data\":{\"k\":[1,2]},"
        "\"seq\":null}";
    ASSERT_MEM_EQ(a.last->json->data, a.last->json->len, want, strlen(want));
    ASSERT_UINT_EQ(pubsub_hub_stats(f.hub)->messages, 1);
    pubsub_publish_unref(p);
    pubsub_message_unref(a.last);
    pubsub_hub_unsubscribe(f.hub, &a.sub);
    pubsub_hub_unsubscribe(f.hub, &b.sub);
    pubsub_hub_unsubscribe(f.hub, &company.sub);
    pubsub_hub_unsubscribe(f.hub, &other_site.sub);
    ASSERT_UINT_EQ(pubsub_hub_stats(f.hub)->channels, 0);
    pubsub_hub_free(f.hub);
}

TEST(one_message_per_channel_shared_by_its_subscribers)
{
    struct hub_fixture f;
    f.hub = pubsub_hub_new(NULL, 0, on_message, &f);
    struct subscriber s1, s2;
    sub_init(&s1);
    sub_init(&s2);
    pubsub_hub_subscribe(f.hub, &s1.sub, "global:S");
    pubsub_hub_subscribe(f.hub, &s2.sub, "global:S");
    /* The first leaves during delivery; the second still gets the message. */
    s1.leave_on_delivery = true;
    struct pubsub_publish *p =
        parse("{\"scope\":\"global\",\"sites\":[\"S\",\"T\"],\"event\":\"m\",\"data\":null}");
    pubsub_hub_deliver(f.hub, p);
    ASSERT_INT_EQ(s1.got, 1);
    ASSERT_INT_EQ(s2.got, 1);
    ASSERT_TRUE(s1.last == s2.last);
    ASSERT_TRUE(pubsub_sub_channel(&s1.sub) == NULL);
    s2.leave_on_delivery = true;
    pubsub_hub_deliver(f.hub, p);
    ASSERT_INT_EQ(s2.got, 2);
    /* The channel went with its last subscriber, during delivery. */
    ASSERT_UINT_EQ(pubsub_hub_stats(f.hub)->channels, 0);
    pubsub_publish_unref(p);
    pubsub_message_unref(s1.last);
    pubsub_message_unref(s2.last);
    pubsub_hub_free(f.hub);
}

TEST(rejects_malformed_publishes)
{
    static const char *const bad[] = {
        "[]",
        "{\"scope\":\"team\",\"site\":\"S\",\"ids\":[\"1\"],\"event\":\"e\",\"data\":1}",
        "{\"scope\":\"user\",\"site\":\"S\",\"event\":\"e\",\"data\":1}",
        "{\"scope\":\"user\",\"site\":\"S\",\"ids\":[],\"event\":\"e\",\"data\":1}",
        "{\"scope\":\"global\",\"site\":\"S\",\"ids\":[\"1\"],\"event\":\"e\",\"data\":1}",
        /* Parenthesised: one literal split over two lines, not two elements. */
        ("{\"scope\":\"user\",\"site\":\"S\",\"sites\":[\"T\"],\"ids\":[\"1\"],"
         "\"event\":\"e\",\"data\":1}"),
        "{\"scope\":\"user\",\"site\":\"S:1\",\"ids\":[\"1\"],\"event\":\"e\",\"data\":1}",
        "{\"scope\":\"user\",\"site\":\"S\",\"ids\":[{}],\"event\":\"e\",\"data\":1}",
        "{\"scope\":\"user\",\"site\":\"S\",\"ids\":[\"1\"],\"event\":5,\"data\":1}",
        "{\"scope\":\"user\",\"site\":\"S\",\"ids\":[\"1\"],\"event\":\"e\"}",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        json_error_t err;
        json_t *j = json_loads(bad[i], 0, &err);
        struct pubsub_limits lim;
        pubsub_limits_defaults(&lim);
        struct pubsub_publish *p = NULL;
        const char *error = NULL;
        int rc = pubsub_publish_from_json(j, &lim, &p, &error);
        json_decref(j);
        if (rc != GW_EINVAL || p != NULL || error == NULL)
            GW_FAIL_AT("accepted: %s", bad[i]);
    }
}

TEST(round_trips_through_json)
{
    struct pubsub_publish *p = parse(
        "{\"scope\":\"client\",\"sites\":[\"a\",\"b\"],\"ids\":[7,\"x\\\"y\"],\"event\":\"e\","
        "\"data\":\"\\u2028\"}");
    int64_t seqs[4] = {1, 2, 3, 4};
    pubsub_publish_set_seqs(p, seqs, 4);
    size_t len;
    char *text = pubsub_publish_to_json(p, &len);
    struct pubsub_publish *q = parse(text);
    ASSERT_TRUE(q != NULL);
    ASSERT_INT_EQ(q->n_sites, 2);
    ASSERT_INT_EQ(q->n_ids, 2);
    ASSERT_STR_EQ(q->ids[0], "7");
    ASSERT_STR_EQ(q->ids[1], "x\"y");
    ASSERT_TRUE(q->seqs != NULL && q->seqs[3] == 4);
    char name[PUBSUB_CHANNEL_NAME_MAX];
    pubsub_channel_name_of(q, 3, name, sizeof(name));
    ASSERT_STR_EQ(name, "client:b:x\"y");
    free(text);
    pubsub_publish_unref(p);
    pubsub_publish_unref(q);
}

struct engine_fixture {
    struct pubsub_hub *hub;
    struct event_base *base;
    int delivered;
};

static void engine_deliver(void *arg, struct pubsub_publish *pub)
{
    struct engine_fixture *f = arg;
    f->delivered++;
    pubsub_hub_deliver(f->hub, pub);
    event_base_loopbreak(f->base);
}

TEST(local_engine_numbers_each_channel)
{
    struct hub_fixture hf;
    struct engine_fixture f = {0};
    f.base = event_base_new();
    f.hub = hf.hub = pubsub_hub_new(NULL, 0, on_message, &hf);
    struct pubsub_engine *e = pubsub_engine_local_new(f.base, NULL, engine_deliver, &f);
    struct subscriber u1, u2;
    sub_init(&u1);
    sub_init(&u2);
    pubsub_hub_subscribe(f.hub, &u1.sub, "user:S:1");
    pubsub_hub_subscribe(f.hub, &u2.sub, "user:S:2");
    struct pubsub_publish *both = parse(
        "{\"scope\":\"user\",\"site\":\"S\",\"ids\":[\"1\",\"2\"],\"event\":\"e\",\"data\":0}");
    struct pubsub_publish *one =
        parse("{\"scope\":\"user\",\"site\":\"S\",\"ids\":[\"1\"],\"event\":\"e\",\"data\":0}");
    ASSERT_INT_EQ(pubsub_engine_publish(e, one), 0);
    /* Never delivered inside publish(). */
    ASSERT_INT_EQ(f.delivered, 0);
    event_base_dispatch(f.base);
    ASSERT_INT_EQ(pubsub_engine_publish(e, both), 0);
    event_base_dispatch(f.base);
    ASSERT_INT_EQ(f.delivered, 2);
    ASSERT_INT_EQ(u1.got, 2);
    ASSERT_INT_EQ(u2.got, 1);
    /* The JSON is not NUL-terminated. */
    ASSERT_TRUE(memmem(u1.last->json->data, u1.last->json->len, "\"seq\":2}", 8) != NULL);
    ASSERT_TRUE(memmem(u2.last->json->data, u2.last->json->len, "\"seq\":1}", 8) != NULL);
    pubsub_publish_unref(both);
    pubsub_publish_unref(one);
    pubsub_message_unref(u1.last);
    pubsub_message_unref(u2.last);
    pubsub_hub_unsubscribe(f.hub, &u1.sub);
    pubsub_hub_unsubscribe(f.hub, &u2.sub);
    pubsub_engine_free(e);
    pubsub_hub_free(f.hub);
    event_base_free(f.base);
}

/* Slicing: a publish of many channels is delivered over several loop turns, in order with the
 * publishes after it, with subscribers leaving meanwhile, and dropped cleanly at shutdown. */
#define SLICED_CHANNELS 3000

struct sliced_fixture {
    struct pubsub_hub *hub;
    struct subscriber subs[SLICED_CHANNELS];
    char last_event[SLICED_CHANNELS][4];
    int order_errors;
};

static void on_sliced(void *arg, struct pubsub_sub *sub, struct pubsub_message *m)
{
    struct sliced_fixture *f = arg;
    struct subscriber *s = GW_CONTAINER_OF(sub, struct subscriber, sub);
    size_t i = (size_t)(s - f->subs);
    /* Events are "p1", "p2", ...: each subscriber must see them in that order. */
    if (strcmp(m->event, f->last_event[i]) <= 0)
        f->order_errors++;
    snprintf(f->last_event[i], sizeof(f->last_event[i]), "%s", m->event);
    s->got++;
}

static struct pubsub_publish *publish_to_all(const char *event)
{
    struct gw_buf b = GW_BUF_INIT;
    gw_buf_appendf(&b,
                   "{\"scope\":\"user\",\"site\":\"S\",\"event\":\"%s\",\"data\":0,"
                   "\"ids\":[",
                   event);
    for (int i = 0; i < SLICED_CHANNELS; i++)
        gw_buf_appendf(&b, "%s%d", i ? "," : "", i);
    gw_buf_append_str(&b, "]}");
    gw_buf_append(&b, "", 1);
    struct pubsub_publish *p = parse(b.data);
    gw_buf_release(&b);
    return p;
}

static struct sliced_fixture *sliced_new(struct event_base *base)
{
    struct sliced_fixture *f = gw_calloc(1, sizeof(*f));
    f->hub = pubsub_hub_new(base, 1, on_sliced, f);
    for (int i = 0; i < SLICED_CHANNELS; i++) {
        char name[32];
        snprintf(name, sizeof(name), "user:S:%d", i);
        sub_init(&f->subs[i]);
        pubsub_hub_subscribe(f->hub, &f->subs[i].sub, name);
    }
    return f;
}

static void sliced_free(struct sliced_fixture *f)
{
    for (int i = 0; i < SLICED_CHANNELS; i++)
        pubsub_hub_unsubscribe(f->hub, &f->subs[i].sub);
    pubsub_hub_free(f->hub);
    gw_free(f);
}

TEST(large_publishes_are_delivered_in_order_over_several_turns)
{
    struct event_base *base = event_base_new();
    struct sliced_fixture *f = sliced_new(base);
    struct pubsub_publish *p1 = publish_to_all("p1"), *p2 = publish_to_all("p2");
    struct pubsub_publish *p3 = parse("{\"scope\":\"user\",\"site\":\"S\",\"ids\":[0],"
                                      "\"event\":\"p3\",\"data\":0}");
    pubsub_hub_deliver(f->hub, p1);
    /* A 1 us slice: the first slice ends at the second clock read. */
    ASSERT_TRUE(f->subs[SLICED_CHANNELS - 1].got == 0);
    ASSERT_UINT_EQ(pubsub_hub_stats(f->hub)->queued, 1);
    pubsub_hub_deliver(f->hub, p2);
    pubsub_hub_deliver(f->hub, p3);
    ASSERT_UINT_EQ(pubsub_hub_stats(f->hub)->queued, 3);
    /* The hub holds what it still has to deliver. */
    pubsub_publish_unref(p1);
    pubsub_publish_unref(p2);
    pubsub_publish_unref(p3);
    /* A subscriber p1 has not reached yet leaves; one already served leaves too. */
    pubsub_hub_unsubscribe(f->hub, &f->subs[SLICED_CHANNELS - 1].sub);
    pubsub_hub_unsubscribe(f->hub, &f->subs[0].sub);
    int turns = 0;
    while (pubsub_hub_stats(f->hub)->queued && turns < 100000) {
        event_base_loop(base, EVLOOP_ONCE);
        turns++;
    }
    ASSERT_UINT_EQ(pubsub_hub_stats(f->hub)->queued, 0);
    ASSERT_TRUE(turns > 1);
    ASSERT_UINT_EQ(pubsub_hub_stats(f->hub)->slices, (uint64_t)turns);
    ASSERT_UINT_EQ(pubsub_hub_stats(f->hub)->deferred, 3);
    ASSERT_INT_EQ(f->order_errors, 0);
    ASSERT_INT_EQ(f->subs[0].got, 1);
    ASSERT_INT_EQ(f->subs[SLICED_CHANNELS - 1].got, 0);
    for (int i = 1; i < SLICED_CHANNELS - 1; i++) {
        if (f->subs[i].got != 2)
            GW_FAIL_AT("subscriber %d got %d messages, not 2", i, f->subs[i].got);
    }
    ASSERT_UINT_EQ(pubsub_hub_stats(f->hub)->deliveries, 1 + 2 * (SLICED_CHANNELS - 2));
    /* Nothing queued: a small publish is delivered at once again. */
    struct pubsub_publish *p4 = parse("{\"scope\":\"user\",\"site\":\"S\",\"ids\":[1],"
                                      "\"event\":\"p4\",\"data\":0}");
    pubsub_hub_deliver(f->hub, p4);
    ASSERT_INT_EQ(f->subs[1].got, 3);
    pubsub_publish_unref(p4);
    sliced_free(f);
    event_base_free(base);
}

TEST(queued_publishes_are_dropped_at_shutdown)
{
    struct event_base *base = event_base_new();
    struct sliced_fixture *f = sliced_new(base);
    struct pubsub_publish *p1 = publish_to_all("p1"), *p2 = publish_to_all("p2");
    pubsub_hub_deliver(f->hub, p1);
    pubsub_hub_deliver(f->hub, p2);
    pubsub_publish_unref(p1);
    pubsub_publish_unref(p2);
    ASSERT_UINT_EQ(pubsub_hub_stats(f->hub)->queued, 2);
    /* Freed with the hub (ASan reports the leak otherwise); the timer goes with it. */
    sliced_free(f);
    event_base_free(base);
}

GW_TEST_MAIN(TEST_CASE(delivers_to_the_addressed_channels_only),
             TEST_CASE(one_message_per_channel_shared_by_its_subscribers),
             TEST_CASE(rejects_malformed_publishes), TEST_CASE(round_trips_through_json),
             TEST_CASE(local_engine_numbers_each_channel),
             TEST_CASE(large_publishes_are_delivered_in_order_over_several_turns),
             TEST_CASE(queued_publishes_are_dropped_at_shutdown))
