#include "apps.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "gw_alloc.h"
#include "gw_log.h"
#include "gw_timerq.h"

/* ---- echo ----------------------------------------------------------------------------------- */

static void echo_open(void *app, struct sockjs_session *s, const struct sockjs_open_info *info)
{
    (void)app;
    (void)s;
    (void)info;
}

static void echo_message(void *app, struct sockjs_session *s, const char *msg, size_t len)
{
    (void)app;
    sockjs_session_send(s, msg, len);
}

static void nothing_on_close(void *app, struct sockjs_session *s)
{
    (void)app;
    (void)s;
}

static const struct sockjs_app_ops echo_app = {
    .name = "echo",
    .on_open = echo_open,
    .on_message = echo_message,
    .on_close = nothing_on_close,
};

/* ---- close ---------------------------------------------------------------------------------- */

static void close_open(void *app, struct sockjs_session *s, const struct sockjs_open_info *info)
{
    (void)app;
    (void)info;
    sockjs_session_close(s, 3000, "Go away!");
}

static const struct sockjs_app_ops close_app = {
    .name = "close",
    .on_open = close_open,
    .on_message = echo_message,
    .on_close = nothing_on_close,
};

/* ---- amplify -------------------------------------------------------------------------------- */

static void amplify_message(void *app, struct sockjs_session *s, const char *msg, size_t len)
{
    (void)app;
    char num[32];
    size_t n = len < sizeof(num) - 1 ? len : sizeof(num) - 1;
    memcpy(num, msg, n);
    num[n] = '\0';
    /* Number(m) as JavaScript reads it: surrounding space allowed, anything else is NaN. */
    char *end;
    double v = strtod(num, &end);
    while (*end == ' ' || *end == '\t' || *end == '\n')
        end++;
    long k = (end != num && *end == '\0' && len < sizeof(num) && isfinite(v)) ? (long)floor(v) : 0;
    if (k <= 0 || k >= 19)
        k = 1;
    size_t size = (size_t)1 << k;
    char *out = gw_malloc(size);
    memset(out, 'x', size);
    sockjs_session_send(s, out, size);
    gw_free(out);
}

static const struct sockjs_app_ops amplify_app = {
    .name = "amplify",
    .on_open = echo_open,
    .on_message = amplify_message,
    .on_close = nothing_on_close,
};

/* ---- broadcast ------------------------------------------------------------------------------ */

/* Open sessions in an array; each session's app data is its index + 1. */
struct broadcast {
    struct sockjs_session **sessions;
    size_t count, cap;
};

static void broadcast_open(void *app, struct sockjs_session *s, const struct sockjs_open_info *info)
{
    (void)info;
    struct broadcast *b = app;
    if (b->count == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->sessions = gw_realloc(b->sessions, b->cap * sizeof(*b->sessions));
    }
    b->sessions[b->count++] = s;
    *(size_t *)sockjs_session_app_data(s) = b->count;
}

static void broadcast_message(void *app, struct sockjs_session *s, const char *msg, size_t len)
{
    (void)s;
    struct broadcast *b = app;
    for (size_t i = 0; i < b->count; i++)
        sockjs_session_send(b->sessions[i], msg, len);
}

static void broadcast_close(void *app, struct sockjs_session *s)
{
    struct broadcast *b = app;
    /* Its index in b->sessions, plus one (0: not listed). */
    size_t *slot = sockjs_session_app_data(s);
    if (*slot == 0)
        return;
    size_t i = *slot - 1;
    b->sessions[i] = b->sessions[--b->count];
    if (i < b->count)
        *(size_t *)sockjs_session_app_data(b->sessions[i]) = i + 1;
    *slot = 0;
}

static const struct sockjs_app_ops broadcast_app = {
    .name = "broadcast",
    .on_open = broadcast_open,
    .on_message = broadcast_message,
    .on_close = broadcast_close,
    .session_data_size = sizeof(size_t),
};

/* ---- ticker --------------------------------------------------------------------------------- */

struct ticker {
    struct gw_timerq q; /* one second */
};

struct ticker_session {
    struct gw_timer timer;
    struct sockjs_session *session;
};

static void ticker_open(void *app, struct sockjs_session *s, const struct sockjs_open_info *info)
{
    (void)info;
    struct ticker *t = app;
    struct ticker_session *ts = sockjs_session_app_data(s);
    gw_timer_init(&ts->timer);
    ts->session = s;
    gw_timer_start(&ts->timer, &t->q);
}

static void ticker_tick(struct gw_timer *timer, void *arg)
{
    struct ticker *t = arg;
    struct ticker_session *ts = GW_CONTAINER_OF(timer, struct ticker_session, timer);
    gw_timer_start(&ts->timer, &t->q);
    sockjs_session_send(ts->session, "tick!", 5);
}

static void ticker_close(void *app, struct sockjs_session *s)
{
    (void)app;
    struct ticker_session *ts = sockjs_session_app_data(s);
    gw_timer_stop(&ts->timer);
}

static const struct sockjs_app_ops ticker_app = {
    .name = "ticker",
    .on_open = ticker_open,
    .on_message = echo_message,
    .on_close = ticker_close,
    .session_data_size = sizeof(struct ticker_session),
};

/* ---- prefixes ------------------------------------------------------------------------------- */

#define MAX_PREFIXES 16

struct gw_apps {
    struct sockjs_server *servers[MAX_PREFIXES];
    size_t n;
    struct broadcast broadcast;
    struct ticker ticker;
    bool ticker_ready;
};

static void add(struct gw_apps *apps, struct gw_server *srv, const struct sockjs_options *opt,
                const struct sockjs_app_ops *ops, void *arg)
{
    struct sockjs_server *sjs = sockjs_server_new(srv->base, opt, ops, arg);
    apps->servers[apps->n++] = sjs;
    gw_server_add_route(srv, opt->prefix, sjs);
}

struct gw_apps *gw_apps_new(struct gw_server *srv, const struct gw_config *cfg,
                            struct gw_delivery *delivery)
{
    struct gw_apps *apps = gw_calloc(1, sizeof(*apps));
    struct sockjs_options base;
    sockjs_options_defaults(&base);
    base.heartbeat_ms = cfg->heartbeat_ms;
    base.heartbeat_window_ms = cfg->heartbeat_window_ms;
    base.disconnect_ms = cfg->disconnect_ms;
    base.response_limit = cfg->response_limit;
    base.websocket = !cfg->no_websocket;
    base.max_queued_bytes = cfg->max_queued_bytes;
    base.cookie_needed = cfg->cookie_needed;
    base.sockjs_url = cfg->sockjs_url;
    if (!cfg->test_app) {
        base.prefix = cfg->prefix;
        base.max_sessions_per_client = cfg->max_sessions_per_ip;
        /* A session opened with a URL token belongs to that token. */
        base.bind_param = "token";
        base.unknown_session_rate = cfg->unknown_session_rate;
        base.unknown_session_burst = cfg->unknown_session_burst;
        add(apps, srv, &base, &gw_delivery_app_ops, delivery);
        return apps;
    }
    /* The SockJS test application: the defaults of the reference test server, but the client
     * library that iframe.html loads is the one --sockjs-url names (the gateway's own copy
     * unless told otherwise), so that iframe transports work in real browsers. */
    sockjs_options_defaults(&base);
    base.sockjs_url = cfg->sockjs_url;
    struct sockjs_options o = base;
    o.prefix = "/echo";
    o.response_limit = 4096;
    add(apps, srv, &o, &echo_app, NULL);
    o = base;
    o.prefix = "/close";
    add(apps, srv, &o, &close_app, NULL);
    o = base;
    o.prefix = "/disabled_websocket_echo";
    o.websocket = false;
    add(apps, srv, &o, &echo_app, NULL);
    o = base;
    o.prefix = "/cookie_needed_echo";
    o.cookie_needed = true;
    add(apps, srv, &o, &echo_app, NULL);
    gw_timerq_init(&apps->ticker.q, srv->base, 1000, ticker_tick, &apps->ticker);
    apps->ticker_ready = true;
    o = base;
    o.prefix = "/ticker";
    add(apps, srv, &o, &ticker_app, &apps->ticker);
    o = base;
    o.prefix = "/amplify";
    add(apps, srv, &o, &amplify_app, NULL);
    o = base;
    o.prefix = "/broadcast";
    add(apps, srv, &o, &broadcast_app, &apps->broadcast);
    o = base;
    o.prefix = "/short_timers_echo";
    o.heartbeat_ms = 1000;
    o.disconnect_ms = 1000;
    add(apps, srv, &o, &echo_app, NULL);
    o = base;
    o.prefix = "/short_timers_close";
    o.heartbeat_ms = 1000;
    o.disconnect_ms = 1000;
    add(apps, srv, &o, &close_app, NULL);
    return apps;
}

void gw_apps_free(struct gw_apps *apps)
{
    for (size_t i = 0; i < apps->n; i++)
        sockjs_server_free(apps->servers[i]);
    if (apps->ticker_ready)
        gw_timerq_cleanup(&apps->ticker.q);
    gw_free(apps->broadcast.sessions);
    gw_free(apps);
}
