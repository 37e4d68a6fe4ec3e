#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "api.h"
#include "apps.h"
#include "config.h"
#include "delivery.h"
#include "gateway.h"
#include "gw_hash.h"
#include "gw_log.h"
#include "gw_outq.h"
#include "health.h"
#include "jwt.h"
#include "metrics.h"
#include "pubsub_node.h"
#include "pubsub_redis_url.h"
#include "static.h"
#include "websocket.h"

struct shutdown {
    struct event_base *base;
    struct gw_server *srv;
    struct pubsub_node *node;
    uint32_t drain_ms;
};

/* How long a stopping node waits for Redis to take its sessions out of presence. */
#define PRESENCE_STOP_MAX_MS 2000

static void on_presence_stopped(void *arg)
{
    struct shutdown *sd = arg;
    event_base_loopbreak(sd->base);
}

static void on_presence_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    GW_WARN("presence: Redis did not confirm this node's leave within %d ms; the other nodes "
            "drop it after --node-timeout-ms",
            PRESENCE_STOP_MAX_MS);
    on_presence_stopped(arg);
}

/* Sessions are closed: take them out of the cluster's presence, then stop the loop. */
static void on_drained(void *arg)
{
    struct shutdown *sd = arg;
    struct timeval tv = {PRESENCE_STOP_MAX_MS / 1000, (PRESENCE_STOP_MAX_MS % 1000) * 1000};
    event_base_once(sd->base, -1, EV_TIMEOUT, on_presence_stop_timeout, sd, &tv);
    pubsub_node_stop(sd->node, on_presence_stopped, sd);
}

/* The first SIGTERM/SIGINT drains (sessions closed with c[1001], spread over --drain-ms), the
 * second stops at once. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct shutdown *sd = arg;
    if (gw_server_draining(sd->srv)) {
        GW_INFO("signal %d again: stopping without finishing the drain", (int)sig);
        event_base_loopbreak(sd->base);
        return;
    }
    GW_INFO("signal %d: draining, then stopping", (int)sig);
    gw_server_drain(sd->srv, sd->drain_ms, on_drained, sd);
}

/* SIGHUP: the configuration again, from the same command line (the --config file and the
 * environment may have changed); what can change live is applied, the rest is logged as
 * needing a restart. A configuration that does not load is refused whole. */
struct reload {
    struct gw_config *cfg;
    struct gw_server *api_srv;
    int argc;
    char **argv;
    unsigned applied, restart;
};

static void report_change(void *arg, const char *name, bool applied)
{
    struct reload *r = arg;
    if (applied) {
        r->applied++;
        GW_INFO("reload: %s changed", name);
    } else {
        r->restart++;
        GW_WARN("reload: %s changed, but needs a restart: still the running value", name);
    }
}

/* RFC 7518 3.2: an HS256 key of at least 256 bits; a shorter (typed) one can be guessed offline
 * from a single token. */
#define MIN_SECRET_BYTES 32

/* One line per short secret, named by its position: the secret itself never reaches the log. */
static void warn_short_secrets(const struct gw_config *cfg)
{
    for (size_t i = 0; i < cfg->jwt_secrets.n; i++) {
        size_t len = strlen(cfg->jwt_secrets.items[i]);
        if (len < MIN_SECRET_BYTES)
            GW_WARN("--jwt-secret #%zu is %zu bytes: use at least %d random bytes, a shorter "
                    "one can be guessed from a token",
                    i + 1, len, MIN_SECRET_BYTES);
    }
}

static void on_reload(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct reload *r = arg;
    struct gw_config fresh;
    gw_config_defaults(&fresh);
    int rc = gw_config_load(&fresh, r->argc, r->argv);
    if (rc != 0) {
        GW_WARN("reload: the configuration was refused (the reason above); nothing changed");
        gw_config_cleanup(&fresh);
        return;
    }
    r->applied = r->restart = 0;
    gw_config_reload(r->cfg, &fresh, report_change, r);
    gw_log_threshold = fresh.log_threshold;
    gw_log_json = fresh.log_json;
    gw_config_cleanup(&fresh);
    r->api_srv->max_body_bytes = r->cfg->api_max_body_bytes;
    warn_short_secrets(r->cfg);
    GW_INFO("reload: done, %u options changed, %u more need a restart", r->applied, r->restart);
}

/* --node-id, or HOST/first listen address: stable across restarts of the same service, so
 * that a restarted node replaces its earlier presence entries. An ephemeral port (":0") names
 * no service: the process id is added, so that two such nodes are not one. */
static void node_id(const struct gw_config *cfg, char *out, size_t cap)
{
    if (cfg->node_id[0]) {
        snprintf(out, cap, "%s", cfg->node_id);
        return;
    }
    char host[256] = "localhost";
    gethostname(host, sizeof(host) - 1);
    const char *listen = cfg->listen.n ? cfg->listen.items[0] : "";
    size_t len = strcspn(listen, ",");
    bool ephemeral = len >= 2 && memcmp(listen + len - 2, ":0", 2) == 0;
    if (ephemeral)
        snprintf(out, cap, "%s/%.*s/%ld", host, (int)len, listen, (long)getpid());
    else
        snprintf(out, cap, "%s/%.*s", host, (int)len, listen);
}

/* The engine and hub of this process; in test mode always the embedded engine. */
static struct pubsub_node *node_new(struct event_base *base, const struct gw_config *cfg, char *id,
                                    size_t id_cap)
{
    static const char *const local[] = {"local"};
    node_id(cfg, id, id_cap);
    struct pubsub_node_settings settings = {
        .engines = cfg->test_app ? local : cfg->engines.items,
        .n_engines = cfg->test_app ? 1 : cfg->engines.n,
        .slice_us = cfg->publish_slice_us,
        .presence = {.events = cfg->presence_events,
                     .leave_delay_ms = cfg->presence_leave_delay_ms,
                     .flush_ms = cfg->presence_flush_ms,
                     .node_timeout_ms = cfg->node_timeout_ms,
                     .node_id = id},
        .history = {.size = cfg->history_size, .ttl_ms = cfg->history_ttl_s * 1000u},
    };
    gw_config_publish_limits(cfg, &settings.limits);
    const char *error;
    struct pubsub_node *node = pubsub_node_new(base, &settings, &error);
    if (!node) {
        char masked[PUBSUB_REDIS_MASKED_MAX]; /* the value may hold a password */
        GW_ERROR("--engine %s%s: %s",
                 pubsub_redis_url_mask(settings.engines[0], masked, sizeof(masked)),
                 settings.n_engines > 1 ? " ..." : "", error);
    }
    return node;
}

int main(int argc, char **argv)
{
    struct gw_config cfg;
    gw_config_defaults(&cfg);
    int rc = gw_config_load(&cfg, argc, argv);
    if (rc != 0 || cfg.help_printed) {
        gw_config_cleanup(&cfg);
        return rc != 0 ? 2 : 0;
    }
    gw_log_threshold = cfg.log_threshold;
    gw_log_json = cfg.log_json;
    if (gw_static_init(cfg.static_dir) != 0) {
        gw_config_cleanup(&cfg);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    gw_hash_init();
    websocket_configure(&(struct ws_settings){.deflate = cfg.ws_deflate,
                                              .deflate_min_bytes = cfg.ws_deflate_min_bytes});

    struct event_base *base = event_base_new();
    if (!base || event_base_priority_init(base, 3) != 0) {
        GW_ERROR("cannot create the event loop");
        return 1;
    }
    char id[512];
    struct pubsub_node *node = node_new(base, &cfg, id, sizeof(id));
    if (!node) {
        event_base_free(base);
        gw_static_cleanup();
        gw_config_cleanup(&cfg);
        return 2;
    }
    struct gw_delivery *delivery = gw_delivery_new(base, &cfg, node);
    struct gw_server srv, api_srv;
    gw_server_init(&srv, base, &cfg, gw_route_request, NULL);
    struct gw_metrics *metrics = gw_metrics_new(base);
    struct gw_api api = {
        .cfg = &cfg, .node = node, .delivery = delivery, .sockjs = &srv, .metrics = metrics};
    gw_server_init(&api_srv, base, &cfg, gw_api_route, &api);
    api_srv.max_body_bytes = cfg.api_max_body_bytes;
    api_srv.json_errors = true;
    struct gw_health health = {.sockjs = &srv, .node = node};
    srv.health = &health;
    api_srv.health = &health;
    struct gw_apps *apps = gw_apps_new(&srv, &cfg, delivery);
    /* The handlers go in before the listeners: a supervisor (or a test) that sees "listening on"
     * may send SIGHUP or SIGTERM at once, and the default action of either would kill us. */
    struct shutdown sd = {.base = base, .srv = &srv, .node = node, .drain_ms = cfg.drain_ms};
    struct reload reload = {.cfg = &cfg, .api_srv = &api_srv, .argc = argc, .argv = argv};
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, &sd);
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, &sd);
    struct event *sighup = evsignal_new(base, SIGHUP, on_reload, &reload);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    event_add(sighup, NULL);
    int status = 0;
    if (gw_server_listen(&srv, &cfg.listen, "listening on") != 0 ||
        (!cfg.test_app && gw_server_listen(&api_srv, &cfg.api_listen, "publish API on") != 0)) {
        status = 1;
    } else {
        if (!cfg.test_app && !cfg.api_key[0])
            GW_WARN("no --api-key: the publish API refuses every request");
        if (!cfg.test_app && cfg.jwt_secrets.n == 0)
            GW_WARN("no --jwt-secret: every session token is refused, anonymous sessions only");
        warn_short_secrets(&cfg);
        event_base_dispatch(base);
    }
    event_free(sigterm);
    event_free(sigint);
    event_free(sighup);
    gw_server_shutdown(&api_srv);
    gw_server_shutdown(&srv);
    gw_apps_free(apps);
    gw_metrics_free(metrics);
    gw_delivery_free(delivery);
    pubsub_node_free(node);
    gw_server_cleanup(&api_srv);
    gw_server_cleanup(&srv);
    event_base_free(base);
    websocket_cleanup();
    gw_outq_pool_release();
    gw_jwt_cleanup();
    gw_static_cleanup();
    gw_config_cleanup(&cfg);
    GW_INFO("stopped");
    return status;
}
