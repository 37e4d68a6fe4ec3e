/* History and syncs on the embedded engine, through the node: what a sync answers, what it
 * recovers, and that it answers only after the publishes it counted were delivered. */
#include "gw_test.h"

#include <string.h>

#include <event2/event.h>

#include "gw_alloc.h"
#include "pubsub_channel.h"
#include "pubsub_node.h"

#define CHANNEL "user:S:1"

struct fixture {
    struct event_base *base;
    struct pubsub_node *node;
    struct pubsub_sub sub;
    int64_t delivered[64]; /* seqs, in order */
    int n_delivered;
    int delivered_at_answer; /* how many were delivered when the sync answered */
    bool answered;
    struct pubsub_sync answer; /* copied, missed seqs in missed_seqs */
    int64_t missed_seqs[64];
};

static void on_message(void *arg, struct pubsub_sub *sub, struct pubsub_message *m)
{
    struct fixture *f = arg;
    ASSERT_TRUE(sub == &f->sub);
    f->delivered[f->n_delivered++] = m->seq;
}

static void on_answer(void *arg, struct pubsub_sync *s)
{
    struct fixture *f = arg;
    ASSERT_TRUE(!f->answered);
    f->answered = true;
    f->delivered_at_answer = f->n_delivered;
    f->answer = *s;
    for (size_t k = 0; k < s->ch[0].n_missed; k++)
        f->missed_seqs[k] = s->ch[0].missed[k]->seq;
    /* Borrowed: the node releases them after this returns. */
    f->answer.ch[0].missed = NULL;
    f->answer.ch[0].name = NULL;
    event_base_loopbreak(f->base);
}

static void setup(struct fixture *f, uint32_t history_size)
{
    static const char *const local[] = {"local"};
    memset(f, 0, sizeof(*f));
    f->base = event_base_new();
    struct pubsub_node_settings s = {.engines = local, .n_engines = 1, .slice_us = 250};
    pubsub_limits_defaults(&s.limits);
    s.history.size = history_size;
    s.history.ttl_ms = 60000;
    const char *error = NULL;
    f->node = pubsub_node_new(f->base, &s, &error);
    ASSERT_TRUE(f->node != NULL);
    pubsub_node_set_subscriber(f->node, on_message, f);
    pubsub_sub_init(&f->sub);
    pubsub_hub_subscribe(pubsub_node_hub(f->node), &f->sub, CHANNEL);
}

static void teardown(struct fixture *f)
{
    pubsub_hub_unsubscribe(pubsub_node_hub(f->node), &f->sub);
    pubsub_node_free(f->node);
    event_base_free(f->base);
}

static void publish(struct fixture *f, int n)
{
    for (int i = 0; i < n; i++) {
        /* A publish of its own each time, as from the API: history keeps references to it. */
        struct pubsub_publish *p =
            pubsub_publish_one(PUBSUB_SCOPE_USER, "S", 1, "1", 1, "e", 1, "0", 1, 0);
        gw_free(p->seqs); /* the engine numbers it */
        p->seqs = NULL;
        ASSERT_INT_EQ(pubsub_node_publish(f->node, p), 0);
        pubsub_publish_unref(p);
    }
}

/* Asks for CHANNEL's position (and what came after `since` when recover) and waits. */
static void sync_channel(struct fixture *f, bool recover, int64_t since, const char *epoch)
{
    struct pubsub_sync ask = {.n = 1};
    ask.ch[0].name = (char *)CHANNEL;
    ask.ch[0].recover = recover;
    ask.ch[0].since.seq = since;
    snprintf(ask.ch[0].since.epoch, sizeof(ask.ch[0].since.epoch), "%s", epoch ? epoch : "");
    f->answered = false;
    pubsub_node_sync(f->node, &ask, on_answer, f);
    ASSERT_TRUE(!f->answered); /* never inside the call */
    event_base_dispatch(f->base);
    ASSERT_TRUE(f->answered);
}

TEST(a_sync_answers_after_the_publishes_it_counts)
{
    struct fixture f;
    setup(&f, 4);
    sync_channel(&f, false, 0, NULL);
    ASSERT_INT_EQ(f.answer.ch[0].at.seq, 0);
    char epoch[PUBSUB_EPOCH_MAX + 1];
    strcpy(epoch, f.answer.ch[0].at.epoch);
    ASSERT_TRUE(pubsub_epoch_valid(epoch, strlen(epoch)));
    /* Numbered now, delivered on the next turn: the answer counts them, so it comes after. */
    publish(&f, 3);
    sync_channel(&f, false, 0, NULL);
    ASSERT_INT_EQ(f.answer.ch[0].at.seq, 3);
    ASSERT_INT_EQ(f.delivered_at_answer, 3);
    ASSERT_INT_EQ(f.delivered[2], 3);
    /* A channel's first message keeps the epoch its empty position had. */
    ASSERT_STR_EQ(f.answer.ch[0].at.epoch, epoch);
    teardown(&f);
}

TEST(recovery_gives_exactly_what_the_history_still_holds)
{
    struct fixture f;
    setup(&f, 4);
    sync_channel(&f, false, 0, NULL);
    char epoch[PUBSUB_EPOCH_MAX + 1];
    strcpy(epoch, f.answer.ch[0].at.epoch);
    publish(&f, 6); /* the ring keeps 3..6 */
    sync_channel(&f, true, 2, epoch);
    ASSERT_TRUE(f.answer.ch[0].recovered);
    ASSERT_UINT_EQ(f.answer.ch[0].n_missed, 4);
    for (int k = 0; k < 4; k++)
        ASSERT_INT_EQ(f.missed_seqs[k], 3 + k);
    sync_channel(&f, true, 6, epoch);
    ASSERT_TRUE(f.answer.ch[0].recovered);
    ASSERT_UINT_EQ(f.answer.ch[0].n_missed, 0);
    struct {
        int64_t since;
        const char *epoch;
    } refused[] = {{1, epoch}, {7, epoch}, {-1, epoch}, {3, "other"}};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        sync_channel(&f, true, refused[i].since, refused[i].epoch);
        ASSERT_TRUE(!f.answer.ch[0].recovered);
        ASSERT_UINT_EQ(f.answer.ch[0].n_missed, 0);
        ASSERT_INT_EQ(f.answer.ch[0].at.seq, 6);
    }
    teardown(&f);
}

TEST(history_off_recovers_nothing_but_positions_stay)
{
    struct fixture f;
    setup(&f, 0);
    sync_channel(&f, false, 0, NULL);
    char epoch[PUBSUB_EPOCH_MAX + 1];
    strcpy(epoch, f.answer.ch[0].at.epoch);
    publish(&f, 2);
    sync_channel(&f, true, 2, epoch);
    ASSERT_INT_EQ(f.answer.ch[0].at.seq, 2);
    ASSERT_TRUE(!f.answer.ch[0].recovered);
    teardown(&f);
}

TEST(a_cancelled_sync_is_never_answered_and_leaks_nothing)
{
    struct fixture f;
    setup(&f, 4);
    publish(&f, 1);
    struct pubsub_sync ask = {.n = 1};
    ask.ch[0].name = (char *)CHANNEL;
    pubsub_node_sync_cancel(pubsub_node_sync(f.node, &ask, on_answer, &f));
    /* Its request is freed when the engine answers: here, when the node goes. */
    pubsub_hub_unsubscribe(pubsub_node_hub(f.node), &f.sub);
    pubsub_node_free(f.node);
    ASSERT_TRUE(!f.answered);
    event_base_free(f.base);
}

/* pubsub_hub_after: after a sliced publish of many channels, not before. */
struct after_fixture {
    int channels_delivered;
    int at_after;
};

static void count_delivery(void *arg, struct pubsub_sub *sub, struct pubsub_message *m)
{
    (void)sub;
    (void)m;
    ((struct after_fixture *)arg)->channels_delivered++;
}

static void on_after(void *arg)
{
    struct after_fixture *a = arg;
    a->at_after = a->channels_delivered;
}

TEST(hub_after_waits_for_a_sliced_publish)
{
    enum { N = 3000 };
    struct event_base *base = event_base_new();
    struct after_fixture a = {0, -1};
    struct pubsub_hub *hub = pubsub_hub_new(base, 1, count_delivery, &a);
    static struct pubsub_sub subs[N];
    char name[32];
    json_t *ids = json_array();
    for (int i = 0; i < N; i++) {
        pubsub_sub_init(&subs[i]);
        snprintf(name, sizeof(name), "user:S:%d", i);
        pubsub_hub_subscribe(hub, &subs[i], name);
        json_array_append_new(ids, json_integer(i));
    }
    json_t *obj = json_pack("{s:s,s:s,s:o,s:s,s:i}", "scope", "user", "site", "S", "ids", ids,
                            "event", "e", "data", 0);
    struct pubsub_limits lim;
    pubsub_limits_defaults(&lim);
    struct pubsub_publish *p = NULL;
    const char *error = NULL;
    ASSERT_INT_EQ(pubsub_publish_from_json(obj, &lim, &p, &error), 0);
    json_decref(obj);
    int64_t seqs[N] = {0};
    pubsub_publish_set_seqs(p, seqs, N);
    pubsub_hub_deliver(hub, p);
    ASSERT_TRUE(a.channels_delivered < N); /* a 1 µs slice cannot hold 3,000 channels */
    pubsub_hub_after(hub, on_after, &a);
    ASSERT_INT_EQ(a.at_after, -1);
    event_base_dispatch(base);
    ASSERT_INT_EQ(a.at_after, N);
    /* With nothing queued it runs at once. */
    a.at_after = -1;
    pubsub_hub_after(hub, on_after, &a);
    ASSERT_INT_EQ(a.at_after, N);
    pubsub_publish_unref(p);
    for (int i = 0; i < N; i++)
        pubsub_hub_unsubscribe(hub, &subs[i]);
    pubsub_hub_free(hub);
    event_base_free(base);
}

GW_TEST_MAIN(TEST_CASE(a_sync_answers_after_the_publishes_it_counts),
             TEST_CASE(recovery_gives_exactly_what_the_history_still_holds),
             TEST_CASE(history_off_recovers_nothing_but_positions_stay),
             TEST_CASE(a_cancelled_sync_is_never_answered_and_leaks_nothing),
             TEST_CASE(hub_after_waits_for_a_sliced_publish))
