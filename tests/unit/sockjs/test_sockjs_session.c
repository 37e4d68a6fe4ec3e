/* Session rules with fake receivers: what each receiver is sent, and when it ends. */
#include "gw_test.h"

#include <event2/event.h>

#include "gw_buf.h"
#include "sockjs_session.h"

struct fake_receiver {
    struct sockjs_receiver base;
    bool streaming;
    bool ended;
    bool released;
    struct gw_buf got; /* frames, each followed by '\n' */
};

static bool fake_send(struct sockjs_receiver *r, const struct sockjs_frame *f)
{
    struct fake_receiver *fr = (struct fake_receiver *)r;
    gw_buf_append(&fr->got, f->data, f->len);
    gw_buf_append(&fr->got, "\n", 1);
    if (!fr->streaming)
        fr->ended = true;
    return fr->streaming;
}

static void fake_release(struct sockjs_receiver *r)
{
    struct fake_receiver *fr = (struct fake_receiver *)r;
    fr->released = true;
    fr->ended = true;
}

static const struct sockjs_receiver_ops fake_ops = {"fake", fake_send, fake_release, NULL, NULL};

static void fake_init(struct fake_receiver *fr, bool streaming)
{
    memset(fr, 0, sizeof(*fr));
    fr->base.ops = &fake_ops;
    fr->streaming = streaming;
}

static int got_is(struct fake_receiver *fr, const char *expected)
{
    int ok = fr->got.len == strlen(expected) && memcmp(fr->got.data, expected, fr->got.len) == 0;
    if (!ok)
        fprintf(stderr, "  got \"%.*s\", expected \"%s\"\n", (int)fr->got.len, fr->got.data,
                expected);
    return ok;
}

/* App: echo, and records opens and closes. */
struct app_state {
    int opened, closed;
    struct sockjs_session *last;
};

static void app_open(void *app, struct sockjs_session *s, const struct sockjs_open_info *info)
{
    (void)info;
    struct app_state *st = app;
    st->opened++;
    st->last = s;
}

static void app_message(void *app, struct sockjs_session *s, const char *msg, size_t len)
{
    (void)app;
    if (len == 5 && memcmp(msg, "close", 5) == 0)
        sockjs_session_close(s, 3000, "Go away!");
    else
        sockjs_session_send(s, msg, len);
}

static void app_close(void *app, struct sockjs_session *s)
{
    (void)s;
    ((struct app_state *)app)->closed++;
}

static const struct sockjs_app_ops app_ops = {
    .name = "test", .on_open = app_open, .on_message = app_message, .on_close = app_close};

static void stop_loop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

/* Runs the loop for ms milliseconds (timer queues may keep it busy longer otherwise). */
static void run_for(struct event_base *base, long ms)
{
    struct event *stop = evtimer_new(base, stop_loop, base);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(stop, &tv);
    event_base_dispatch(base);
    event_free(stop);
}

struct fixture {
    struct event_base *base;
    struct sockjs_server *srv;
    struct app_state app;
};

static void fixture_init_opt(struct fixture *f, const struct sockjs_options *opt)
{
    memset(f, 0, sizeof(*f));
    f->base = event_base_new();
    f->srv = sockjs_server_new(f->base, opt, &app_ops, &f->app);
}

static void fixture_init(struct fixture *f, uint32_t heartbeat_ms, uint32_t disconnect_ms)
{
    struct sockjs_options opt;
    sockjs_options_defaults(&opt);
    opt.heartbeat_ms = heartbeat_ms;
    opt.disconnect_ms = disconnect_ms;
    fixture_init_opt(f, &opt);
}

static void fixture_cleanup(struct fixture *f)
{
    sockjs_server_free(f->srv);
    event_base_free(f->base);
}

TEST(new_session_opens_and_polls)
{
    struct fixture f;
    fixture_init(&f, 25000, 5000);
    struct fake_receiver r1, r2;
    fake_init(&r1, false);
    sockjs_session_attach(f.srv, "s1", 2, &r1.base, NULL);
    ASSERT_TRUE(got_is(&r1, "o\n"));
    ASSERT_TRUE(r1.ended);
    ASSERT_INT_EQ(f.app.opened, 1);
    /* Messages while no receiver is attached wait, in order, for the next one. */
    struct sockjs_session *s = sockjs_session_find(f.srv, "s1", 2);
    ASSERT_TRUE(s != NULL);
    sockjs_session_send(s, "a", 1);
    sockjs_session_send(s, "b\"", 2);
    fake_init(&r2, false);
    sockjs_session_attach(f.srv, "s1", 2, &r2.base, NULL);
    ASSERT_TRUE(got_is(&r2, "a[\"a\",\"b\\\"\"]\n"));
    gw_buf_release(&r1.got);
    gw_buf_release(&r2.got);
    fixture_cleanup(&f);
    ASSERT_INT_EQ(f.app.closed, 1);
}

TEST(second_receiver_gets_2010_and_first_keeps_session)
{
    struct fixture f;
    fixture_init(&f, 25000, 5000);
    struct fake_receiver r1, r2;
    fake_init(&r1, true);
    sockjs_session_attach(f.srv, "s", 1, &r1.base, NULL);
    fake_init(&r2, true);
    sockjs_session_attach(f.srv, "s", 1, &r2.base, NULL);
    ASSERT_TRUE(got_is(&r2, "c[2010,\"Another connection still open\"]\n"));
    ASSERT_TRUE(r2.released);
    ASSERT_TRUE(!r1.ended);
    sockjs_session_send(f.app.last, "x", 1);
    ASSERT_TRUE(got_is(&r1, "o\na[\"x\"]\n"));
    gw_buf_release(&r1.got);
    gw_buf_release(&r2.got);
    fixture_cleanup(&f);
    ASSERT_TRUE(r1.released);
}

TEST(close_answers_close_frame_until_expiry)
{
    struct fixture f;
    fixture_init(&f, 25000, 50);
    struct fake_receiver r1, r2, r3;
    fake_init(&r1, true);
    sockjs_session_attach(f.srv, "s", 1, &r1.base, NULL);
    {
        const char *p = "[\"m\",\"close\",\"lost\"]";
        ASSERT_INT_EQ(sockjs_session_receive_payload(f.app.last, p, strlen(p)), 0);
    }
    /* The message before the close goes out, then the close frame; nothing after it. */
    ASSERT_TRUE(got_is(&r1, "o\na[\"m\"]\nc[3000,\"Go away!\"]\n"));
    ASSERT_TRUE(r1.released);
    ASSERT_INT_EQ(f.app.closed, 1);
    fake_init(&r2, false);
    sockjs_session_attach(f.srv, "s", 1, &r2.base, NULL);
    ASSERT_TRUE(got_is(&r2, "c[3000,\"Go away!\"]\n"));
    /* After disconnect_delay the id opens a new session. */
    run_for(f.base, 200);
    ASSERT_INT_EQ(sockjs_server_session_count(f.srv), 0);
    fake_init(&r3, false);
    sockjs_session_attach(f.srv, "s", 1, &r3.base, NULL);
    ASSERT_TRUE(got_is(&r3, "o\n"));
    ASSERT_INT_EQ(f.app.opened, 2);
    gw_buf_release(&r1.got);
    gw_buf_release(&r2.got);
    gw_buf_release(&r3.got);
    fixture_cleanup(&f);
}

TEST(lost_receiver_interrupts_session)
{
    struct fixture f;
    fixture_init(&f, 25000, 5000);
    struct fake_receiver r1, r2;
    fake_init(&r1, true);
    sockjs_session_attach(f.srv, "s", 1, &r1.base, NULL);
    sockjs_session_receiver_lost(r1.base.session, &r1.base);
    ASSERT_INT_EQ(f.app.closed, 1);
    fake_init(&r2, false);
    sockjs_session_attach(f.srv, "s", 1, &r2.base, NULL);
    ASSERT_TRUE(got_is(&r2, "c[1002,\"Connection interrupted\"]\n"));
    gw_buf_release(&r1.got);
    gw_buf_release(&r2.got);
    fixture_cleanup(&f);
}

TEST(heartbeat_on_idle_stream_and_timeout_without_receiver)
{
    struct fixture f;
    fixture_init(&f, 30, 40);
    struct fake_receiver r1;
    fake_init(&r1, true);
    sockjs_session_attach(f.srv, "s", 1, &r1.base, NULL);
    run_for(f.base, 100);
    /* ~100 ms at a 30 ms heartbeat: at least two, and the session is still there. */
    ASSERT_TRUE(r1.got.len >= strlen("o\nh\nh\n"));
    ASSERT_TRUE(memcmp(r1.got.data, "o\nh\nh\n", 6) == 0);
    ASSERT_INT_EQ(sockjs_server_session_count(f.srv), 1);
    /* Without its receiver, the session is gone once the disconnect delay has passed. */
    sockjs_session_receiver_lost(r1.base.session, &r1.base);
    run_for(f.base, 200);
    ASSERT_INT_EQ(sockjs_server_session_count(f.srv), 0);
    gw_buf_release(&r1.got);
    fixture_cleanup(&f);
}

TEST(websocket_sessions_are_separate_and_raw_is_unframed)
{
    struct fixture f;
    fixture_init(&f, 25000, 5000);
    struct fake_receiver r1, r2;
    fake_init(&r1, true);
    fake_init(&r2, true);
    struct sockjs_session *a = sockjs_session_new_attached(f.srv, &r1.base, false, NULL);
    struct sockjs_session *b = sockjs_session_new_attached(f.srv, &r2.base, true, NULL);
    ASSERT_INT_EQ(sockjs_server_session_count(f.srv), 2);
    sockjs_session_receive_payload(a, "[\"x\"]", 5);
    sockjs_session_receive_message(b, "y\"", 2);
    ASSERT_TRUE(got_is(&r1, "o\na[\"x\"]\n"));
    ASSERT_TRUE(got_is(&r2, "y\"\n"));
    sockjs_session_receiver_lost(a, &r1.base);
    sockjs_session_receiver_lost(b, &r2.base);
    ASSERT_INT_EQ(sockjs_server_session_count(f.srv), 0);
    ASSERT_INT_EQ(f.app.closed, 2);
    gw_buf_release(&r1.got);
    gw_buf_release(&r2.got);
    fixture_cleanup(&f);
}

static void bound_fixture_init(struct fixture *f, uint32_t rate, uint32_t burst)
{
    struct sockjs_options opt;
    sockjs_options_defaults(&opt);
    opt.bind_param = "token";
    opt.unknown_session_rate = rate;
    opt.unknown_session_burst = burst;
    fixture_init_opt(f, &opt);
}

static enum sockjs_access access_q(struct fixture *f, const char *id, const char *query,
                                   const char *client, bool opens, struct sockjs_session **out)
{
    struct sockjs_open_info q = {query, query ? strlen(query) : 0, 0, NULL};
    uint32_t retry;
    return sockjs_session_access(f->srv, id, strlen(id), &q, client, opens, out, &retry);
}

TEST(bound_session_serves_only_its_token)
{
    struct fixture f;
    bound_fixture_init(&f, 0, 1);
    struct fake_receiver r1, r2;
    fake_init(&r1, false);
    struct sockjs_open_info open = {"t=1&token=abc", 13, 0, NULL};
    struct sockjs_session *s;
    ASSERT_INT_EQ(access_q(&f, "s", open.query, "10.0.0.1:1", true, &s), SOCKJS_ACCESS_OK);
    ASSERT_TRUE(s == NULL);
    sockjs_session_attach(f.srv, "s", 1, &r1.base, &open);
    struct sockjs_session *opened = f.app.last;
    /* The same raw value, wherever it stands in the query. */
    ASSERT_INT_EQ(access_q(&f, "s", "token=abc&c=x", "10.0.0.2:1", false, &s), SOCKJS_ACCESS_OK);
    ASSERT_TRUE(s == opened);
    const char *wrong[] = {NULL,         "",          "token=",     "token=ab",
                           "token=abcd", "token=ABC", "tokenx=abc", "token=%61bc"};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        s = opened;
        ASSERT_INT_EQ(access_q(&f, "s", wrong[i], "10.0.0.1:1", false, &s), SOCKJS_ACCESS_UNKNOWN);
        ASSERT_TRUE(s == NULL);
        /* A receiver too: it may not open anything under a bound id either. */
        ASSERT_INT_EQ(access_q(&f, "s", wrong[i], "10.0.0.1:1", true, &s), SOCKJS_ACCESS_UNKNOWN);
    }
    ASSERT_INT_EQ(access_q(&f, "other", NULL, "10.0.0.1:1", false, &s), SOCKJS_ACCESS_UNKNOWN);
    /* Unbound sessions (opened without the parameter) serve whoever names them. */
    fake_init(&r2, false);
    sockjs_session_attach(f.srv, "u", 1, &r2.base, &(struct sockjs_open_info){"c=1", 3, 0, NULL});
    ASSERT_INT_EQ(access_q(&f, "u", "token=zzz", "10.0.0.1:1", false, &s), SOCKJS_ACCESS_OK);
    ASSERT_TRUE(s == f.app.last);
    gw_buf_release(&r1.got);
    gw_buf_release(&r2.got);
    fixture_cleanup(&f);
}

TEST(unknown_session_limit_per_client)
{
    struct fixture f;
    bound_fixture_init(&f, 1, 2);
    struct sockjs_session *s;
    struct fake_receiver r1;
    fake_init(&r1, false);
    struct sockjs_open_info open = {"token=abc", 9, 0, NULL};
    sockjs_session_attach(f.srv, "b", 1, &r1.base, &open);
    /* Two failures (ports differ: one client), then everything but the bound token waits. */
    ASSERT_INT_EQ(access_q(&f, "x", NULL, "10.0.0.1:1", false, &s), SOCKJS_ACCESS_UNKNOWN);
    ASSERT_INT_EQ(access_q(&f, "b", NULL, "10.0.0.1:2", false, &s), SOCKJS_ACCESS_UNKNOWN);
    ASSERT_INT_EQ(access_q(&f, "x", NULL, "10.0.0.1:3", false, &s), SOCKJS_ACCESS_LIMITED);
    ASSERT_INT_EQ(access_q(&f, "new", NULL, "10.0.0.1:3", true, &s), SOCKJS_ACCESS_LIMITED);
    ASSERT_INT_EQ(access_q(&f, "b", "token=abc", "10.0.0.1:3", false, &s), SOCKJS_ACCESS_OK);
    uint32_t retry = 0;
    struct sockjs_open_info none = {NULL, 0, 0, NULL};
    ASSERT_INT_EQ(sockjs_session_access(f.srv, "x", 1, &none, "10.0.0.1:4", false, &s, &retry),
                  SOCKJS_ACCESS_LIMITED);
    ASSERT_UINT_EQ(retry, 1);
    /* Another client is not affected. */
    ASSERT_INT_EQ(access_q(&f, "x", NULL, "10.0.0.2:1", false, &s), SOCKJS_ACCESS_UNKNOWN);
    ASSERT_INT_EQ(access_q(&f, "new", NULL, "10.0.0.2:1", true, &s), SOCKJS_ACCESS_OK);
    gw_buf_release(&r1.got);
    fixture_cleanup(&f);
}

static void open_from(struct fixture *f, const char *id, struct fake_receiver *r,
                      const char *client)
{
    fake_init(r, false);
    struct sockjs_open_info info = {NULL, 0, 0, client};
    sockjs_session_attach(f->srv, id, strlen(id), &r->base, &info);
    gw_buf_release(&r->got);
}

TEST(sessions_per_client_count_until_freed)
{
    struct fixture f;
    struct sockjs_options opt;
    sockjs_options_defaults(&opt);
    opt.disconnect_ms = 50;
    opt.max_sessions_per_client = 2;
    fixture_init_opt(&f, &opt);
    struct sockjs_session *s;
    struct fake_receiver r;
    /* Ports differ, the client is one; an IPv6 /64 is one client too. */
    open_from(&f, "a", &r, "10.0.0.1:1");
    open_from(&f, "b", &r, "10.0.0.1:2");
    open_from(&f, "v1", &r, "[2001:db8::1]:1");
    open_from(&f, "v2", &r, "[2001:db8::2]:1");
    ASSERT_INT_EQ(access_q(&f, "c", NULL, "10.0.0.1:3", true, &s), SOCKJS_ACCESS_CROWDED);
    ASSERT_INT_EQ(access_q(&f, "v3", NULL, "[2001:db8::3]:1", true, &s), SOCKJS_ACCESS_CROWDED);
    ASSERT_TRUE(!sockjs_server_admits(f.srv, "10.0.0.1:4"));
    ASSERT_UINT_EQ(sockjs_server_refused_crowded(f.srv), 3);
    /* What it holds stays served; other clients are not affected. */
    ASSERT_INT_EQ(access_q(&f, "a", NULL, "10.0.0.1:3", true, &s), SOCKJS_ACCESS_OK);
    ASSERT_TRUE(s != NULL);
    ASSERT_INT_EQ(access_q(&f, "c", NULL, "10.0.0.2:1", true, &s), SOCKJS_ACCESS_OK);
    ASSERT_INT_EQ(access_q(&f, "v3", NULL, "[2001:db8:0:1::1]:1", true, &s), SOCKJS_ACCESS_OK);
    /* Closed, a session still costs memory until the disconnect delay frees it. */
    sockjs_session_close(sockjs_session_find(f.srv, "a", 1), 3000, "Go away!");
    ASSERT_INT_EQ(access_q(&f, "c", NULL, "10.0.0.1:3", true, &s), SOCKJS_ACCESS_CROWDED);
    run_for(f.base, 150);
    ASSERT_TRUE(sockjs_session_find(f.srv, "a", 1) == NULL);
    ASSERT_INT_EQ(access_q(&f, "c", NULL, "10.0.0.1:3", true, &s), SOCKJS_ACCESS_OK);
    /* Every session freed (here by the timeout): no per-client entry is left behind (the
     * server asserts it, LeakSanitizer would see one). */
    run_for(f.base, 150);
    ASSERT_UINT_EQ(sockjs_server_session_count(f.srv), 0);
    ASSERT_TRUE(sockjs_server_admits(f.srv, "10.0.0.1:5"));
    fixture_cleanup(&f);
}

GW_TEST_MAIN(TEST_CASE(new_session_opens_and_polls),
             TEST_CASE(second_receiver_gets_2010_and_first_keeps_session),
             TEST_CASE(close_answers_close_frame_until_expiry),
             TEST_CASE(lost_receiver_interrupts_session),
             TEST_CASE(heartbeat_on_idle_stream_and_timeout_without_receiver),
             TEST_CASE(websocket_sessions_are_separate_and_raw_is_unframed),
             TEST_CASE(bound_session_serves_only_its_token),
             TEST_CASE(unknown_session_limit_per_client),
             TEST_CASE(sessions_per_client_count_until_freed))
