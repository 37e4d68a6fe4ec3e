#include "api.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "gw_alloc.h"
#include "gw_buf.h"
#include "gw_error.h"
#include "gw_log.h"
#include "gw_timerq.h"
#include "gw_url.h"
#include "health.h"
#include "metrics.h"
#include "pubsub_channel.h"

static void respond_json(const struct tp_request *req, int status, const char *reason, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct tp_head h;
    tp_head_start(&h, req, status, reason, "application/json", TP_NO_CACHE);
    tp_respond(req, &h, text, strlen(text));
    free(text);
}

static void respond_error(const struct tp_request *req, int status, const char *reason,
                          const char *error, long index)
{
    json_t *body = json_pack("{s:s}", "error", error);
    if (index >= 0)
        json_object_set_new(body, "index", json_integer(index));
    respond_json(req, status, reason, body);
}

static bool authorized(const struct gw_api *api, const struct tp_request *req)
{
    size_t len;
    const char *auth = tp_request_header(req, "Authorization", &len);
    size_t key_len = strlen(api->cfg->api_key);
    if (!auth || key_len == 0 || len != 7 + key_len || strncasecmp(auth, "Bearer ", 7) != 0)
        return false;
    return CRYPTO_memcmp(auth + 7, api->cfg->api_key, key_len) == 0;
}

/* A random (version 4) UUID, for the caller to correlate its publish in logs. */
static void new_id(char out[37])
{
    uint8_t b[16] = {0};
    if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
        static uint64_t counter;
        counter++;
        memcpy(b, &counter, sizeof(counter));
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* The scope of a publish in the request, for counting a rejected one: GW_API_SCOPE_UNKNOWN when
 * it names none that exists. */
static int scope_of(const json_t *item)
{
    const char *name = json_string_value(json_object_get(item, "scope"));
    for (int s = PUBSUB_SCOPE_USER; name && s <= PUBSUB_SCOPE_GLOBAL; s++)
        if (strcmp(name, pubsub_scope_name((enum pubsub_scope)s)) == 0)
            return s;
    return GW_API_SCOPE_UNKNOWN;
}

/* One info line per publish of a request that got an answer: the id the API returned (so that
 * a caller can find its publish in the logs), or "-" for one that was not published. */
static void log_publish(const struct pubsub_publish *p, const char *id, const char *result)
{
    GW_INFO("publish: id=%s scope=%s site=%s sites=%" PRIu32 " channels=%zu event=%s result=%s", id,
            pubsub_scope_name(p->scope), p->n_sites ? p->sites[0] : "-", p->n_sites,
            pubsub_publish_channels(p), p->event, result);
}

/* Counts every publish of a request that was answered as a whole (not published). */
static void count_all(struct gw_api *api, struct pubsub_publish **pubs, size_t n, int result)
{
    for (size_t i = 0; i < n; i++)
        api->publish_results[pubs[i]->scope][result]++;
}

static void publish(struct gw_api *api, const struct tp_request *req)
{
    json_error_t err;
    json_t *root = json_loadb(req->body, req->body_len, 0, &err);
    if (!root) {
        api->rejected++;
        api->publish_results[GW_API_SCOPE_UNKNOWN][GW_API_REJECTED]++;
        GW_INFO("publish: result=rejected reason=\"malformed JSON: %s\" client=%s", err.text,
                tp_conn_peer(req->conn));
        respond_error(req, 400, "Bad Request", "malformed JSON", -1);
        return;
    }
    bool many = json_is_array(root);
    size_t n = many ? json_array_size(root) : 1;
    if (n == 0) {
        json_decref(root);
        api->rejected++;
        api->publish_results[GW_API_SCOPE_UNKNOWN][GW_API_REJECTED]++;
        GW_INFO("publish: result=rejected reason=\"no publish in the array\" client=%s",
                tp_conn_peer(req->conn));
        respond_error(req, 400, "Bad Request", "no publish in the array", -1);
        return;
    }
    struct pubsub_limits lim;
    gw_config_publish_limits(api->cfg, &lim);
    /* Everything is validated before anything is published: a request is all or nothing. */
    struct pubsub_publish **pubs = gw_calloc(n, sizeof(*pubs));
    size_t parsed = 0;
    for (; parsed < n; parsed++) {
        const char *error;
        json_t *item = many ? json_array_get(root, parsed) : root;
        int rc = pubsub_publish_from_json(item, &lim, &pubs[parsed], &error);
        if (rc != 0) {
            api->rejected++;
            /* The request's publishes before this one were valid: rejected with it. */
            count_all(api, pubs, parsed, GW_API_REJECTED);
            api->publish_results[scope_of(item)][GW_API_REJECTED]++;
            GW_INFO("publish: result=rejected reason=\"%s\" index=%zu client=%s", error, parsed,
                    tp_conn_peer(req->conn));
            bool too_big = rc == GW_ELIMIT;
            respond_error(req, too_big ? 413 : 400, too_big ? "Payload Too Large" : "Bad Request",
                          error, many ? (long)parsed : -1);
            break;
        }
    }
    json_decref(root);
    size_t channels = 0;
    for (size_t i = 0; i < parsed; i++)
        channels += pubsub_publish_channels(pubs[i]);
    if (parsed == n && channels > api->cfg->max_request_channels) {
        api->rejected++;
        count_all(api, pubs, n, GW_API_REJECTED);
        GW_INFO("publish: result=rejected reason=\"too many channels in the request\" "
                "channels=%zu publishes=%zu max=%u client=%s",
                channels, n, api->cfg->max_request_channels, tp_conn_peer(req->conn));
        respond_error(req, 400, "Bad Request", "too many channels in the request", -1);
    } else if (parsed == n) {
        if (!pubsub_node_available(api->node)) {
            api->unavailable++;
            count_all(api, pubs, n, GW_API_UNAVAILABLE);
            for (size_t i = 0; i < n; i++)
                log_publish(pubs[i], "-", "unavailable");
            respond_error(req, 503, "Service Unavailable", "engine unavailable", -1);
        } else {
            json_t *ids = json_array();
            size_t done = 0;
            /* One clock read per request: the start of the publish latency, on the wall clock
             * since other nodes compare it too. */
            uint64_t now = gw_wall_us();
            for (; done < n; done++) {
                pubs[done]->accepted_us = now;
                if (pubsub_node_publish(api->node, pubs[done]) != 0)
                    break;
                api->publish_results[pubs[done]->scope][GW_API_ACCEPTED]++;
                char id[37];
                new_id(id);
                log_publish(pubs[done], id, "accepted");
                json_array_append_new(ids, json_string(id));
                api->publishes++;
            }
            if (done < n) {
                api->unavailable++;
                count_all(api, pubs + done, n - done, GW_API_UNAVAILABLE);
                GW_WARN("api: engine refused publish %zu of %zu", done, n);
                for (size_t i = done; i < n; i++)
                    log_publish(pubs[i], "-", "unavailable");
                json_decref(ids);
                respond_error(req, 503, "Service Unavailable", "engine unavailable", -1);
            } else {
                respond_json(req, 202, "Accepted", json_pack("{s:o}", "ids", ids));
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        pubsub_publish_unref(pubs[i]);
    gw_free(pubs);
}

/* --- GET /api/presence ------------------------------------------------------------------- */

/* A presence query waiting for its answer (from Redis), or being answered now. */
struct api_query {
    struct gw_api *api;
    struct tp_deferred reply;
    struct pubsub_presence_request *req;
    json_t *batch_ids; /* the ids of a batch (the keys of "results"); NULL: one answer */
};

static void respond_deferred_json(const struct tp_deferred *reply, int status, const char *reason,
                                  json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    tp_respond_deferred(reply, status, reason, "application/json", TP_NO_CACHE, text, strlen(text));
    free(text);
}

static void api_query_free(struct api_query *q)
{
    json_decref(q->batch_ids);
    gw_free(q);
}

static void on_api_query_closed(void *handler)
{
    struct api_query *q = handler;
    pubsub_presence_cancel(q->req);
    api_query_free(q);
}

static const struct tp_handler_ops api_query_ops = {.on_close = on_api_query_closed};

static void on_api_answer(void *arg, int rc, json_t *answers)
{
    struct api_query *q = arg;
    tp_conn_set_handler(q->reply.conn, NULL, NULL);
    if (rc != 0) {
        q->api->unavailable++;
        respond_deferred_json(&q->reply, 503, "Service Unavailable",
                              json_pack("{s:s}", "error", "presence unavailable"));
    } else if (!q->batch_ids) {
        respond_deferred_json(&q->reply, 200, "OK", json_incref(json_array_get(answers, 0)));
    } else {
        json_t *results = json_object();
        for (size_t i = 0; i < json_array_size(answers); i++)
            json_object_set(results, json_string_value(json_array_get(q->batch_ids, i)),
                            json_array_get(answers, i));
        respond_deferred_json(&q->reply, 200, "OK", json_pack("{s:o}", "results", results));
    }
    api_query_free(q);
}

/* Reads one decoded parameter into out; the reason it is not acceptable, or NULL. */
static const char *presence_param(const struct tp_request *req, size_t *pos, const char *name,
                                  char *out, size_t cap, bool required, long *len)
{
    *len = req->query ? gw_query_param_next(req->query, req->query_len, pos, name, out, cap)
                      : GW_ENOTFOUND;
    if (*len == GW_ELIMIT)
        return "parameter too long";
    if (*len == GW_ENOTFOUND && required)
        return "missing parameter";
    return NULL;
}

/* site=S&scope=user|client|global[&id=X...][&limit=N][&cursor=C]: the query, or the reason
 * to refuse it (with the parameter's name). ids are copied into *ids. */
static const char *parse_presence(const struct gw_api *api, const struct tp_request *req,
                                  struct pubsub_presence_query *q, char *site, json_t *ids,
                                  char *cursor, const char **param)
{
    size_t max = api->cfg->max_name_bytes;
    char value[PUBSUB_NAME_MAX_BYTES + 1];
    size_t pos = 0;
    long len;
    const char *why;
    *param = "site";
    if ((why = presence_param(req, &pos, "site", site, max + 1, true, &len)))
        return why;
    if (!pubsub_name_valid(site, (size_t)len, max, PUBSUB_NAME_SITE))
        return "invalid site";
    *param = "scope";
    pos = 0;
    if ((why = presence_param(req, &pos, "scope", value, sizeof(value), true, &len)))
        return why;
    if (strcmp(value, "user") == 0)
        q->scope = PUBSUB_SCOPE_USER;
    else if (strcmp(value, "client") == 0)
        q->scope = PUBSUB_SCOPE_CLIENT;
    else if (strcmp(value, "global") == 0)
        q->scope = PUBSUB_SCOPE_GLOBAL;
    else
        return "scope must be user, client or global";
    *param = "id";
    pos = 0;
    while (!(why = presence_param(req, &pos, "id", value, max + 1, false, &len)) && len >= 0) {
        if (!pubsub_name_valid(value, (size_t)len, max, PUBSUB_NAME_ID))
            return "invalid id";
        if (json_array_size(ids) == api->cfg->presence_max_ids)
            return "too many ids";
        json_array_append_new(ids, json_stringn(value, (size_t)len));
    }
    if (why)
        return why;
    if (q->scope == PUBSUB_SCOPE_GLOBAL && json_array_size(ids))
        return "the global scope takes no id";
    if (q->scope != PUBSUB_SCOPE_GLOBAL && !json_array_size(ids))
        return "missing parameter";
    *param = "limit";
    pos = 0;
    q->limit = api->cfg->presence_max_limit < 1000 ? api->cfg->presence_max_limit : 1000;
    if ((why = presence_param(req, &pos, "limit", value, 12, false, &len)))
        return why;
    if (len >= 0) {
        char *end;
        unsigned long limit = strtoul(value, &end, 10);
        if (len == 0 || *end || value[0] == '-' || limit < 1 ||
            limit > api->cfg->presence_max_limit)
            return "limit must be from 1 to the configured maximum";
        q->limit = (uint32_t)limit;
    }
    *param = "cursor";
    pos = 0;
    if ((why = presence_param(req, &pos, "cursor", cursor, max + 1, false, &len)))
        return why;
    if (len >= 0) {
        if (q->scope != PUBSUB_SCOPE_CLIENT)
            return "only the client scope has a cursor";
        if (!pubsub_name_valid(cursor, (size_t)len, max, PUBSUB_NAME_ID))
            return "invalid cursor";
        q->cursor = cursor;
    }
    *param = NULL;
    q->site = site;
    return NULL;
}

static void presence(struct gw_api *api, const struct tp_request *req)
{
    char site[PUBSUB_NAME_MAX_BYTES + 1], cursor[PUBSUB_NAME_MAX_BYTES + 1];
    struct pubsub_presence_query query = {0};
    json_t *ids = json_array();
    const char *param;
    const char *why = parse_presence(api, req, &query, site, ids, cursor, &param);
    if (why) {
        api->rejected++;
        GW_INFO("api: rejected presence query: %s%s%s", why, param ? ": " : "", param ? param : "");
        json_t *body = json_pack("{s:s}", "error", why);
        if (param)
            json_object_set_new(body, "parameter", json_string(param));
        respond_json(req, 400, "Bad Request", body);
        json_decref(ids);
        return;
    }
    size_t n = json_array_size(ids);
    const char **id_values = gw_calloc(n ? n : 1, sizeof(*id_values));
    for (size_t i = 0; i < n; i++)
        id_values[i] = json_string_value(json_array_get(ids, i));
    query.ids = id_values;
    query.n_ids = n;
    struct api_query *q = gw_calloc(1, sizeof(*q));
    q->api = api;
    tp_defer(&q->reply, req);
    q->batch_ids = n > 1 ? json_incref(ids) : NULL;
    /* Until the answer, the connection is the query's: a client gone cancels it. */
    tp_conn_set_handler(req->conn, &api_query_ops, q);
    struct pubsub_presence_request *r =
        pubsub_presence_query(pubsub_node_presence(api->node), &query, on_api_answer, q);
    if (r)
        q->req = r;
    gw_free(id_values);
    json_decref(ids);
}

static void stats(struct gw_api *api, const struct tp_request *req)
{
    const struct gw_delivery_stats *d = gw_delivery_stats(api->delivery);
    const struct pubsub_hub_stats *h = pubsub_hub_stats(pubsub_node_hub(api->node));
    const struct pubsub_engine *engine = pubsub_node_engine(api->node);
    const struct pubsub_engine_stats *e = &engine->stats;
    json_t *body = json_pack(
        "{s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I},"
        "s:{s:s,s:b,s:I,s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I}}",
        "sessions", "connections", (json_int_t)api->sockjs->n_conns, "opened",
        (json_int_t)d->sessions, "authenticated", (json_int_t)d->authenticated, "auth_failures",
        (json_int_t)d->auth_failures, "malformed_messages", (json_int_t)d->malformed_messages,
        "deliveries", (json_int_t)d->deliveries, "filtered", (json_int_t)d->filtered, "hub",
        "channels", (json_int_t)h->channels, "subscriptions", (json_int_t)h->subscriptions,
        "publishes", (json_int_t)h->publishes, "messages", (json_int_t)h->messages, "deliveries",
        (json_int_t)h->deliveries, "deferred", (json_int_t)h->deferred, "slices",
        (json_int_t)h->slices, "queued", (json_int_t)h->queued, "engine", "name", engine->ops->name,
        "available", pubsub_node_available(api->node), "published", (json_int_t)e->published,
        "delivered", (json_int_t)e->delivered, "dropped", (json_int_t)e->dropped, "malformed",
        (json_int_t)e->malformed, "reconnects", (json_int_t)e->reconnects, "api", "requests",
        (json_int_t)api->requests, "publishes", (json_int_t)api->publishes, "rejected",
        (json_int_t)api->rejected, "unauthorized", (json_int_t)api->unauthorized, "unavailable",
        (json_int_t)api->unavailable);
    json_object_set_new(body, "recovery",
                        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "ready", (json_int_t)d->ready,
                                  "ready_unknown", (json_int_t)d->ready_unknown, "recovered",
                                  (json_int_t)d->recovered, "not_recovered",
                                  (json_int_t)d->not_recovered, "replayed", (json_int_t)d->replayed,
                                  "replay_too_large", (json_int_t)d->replay_too_large));
    const struct gw_accept_stats *a = &api->sockjs->accept_stats;
    json_t *listener = json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:b}", "open", (json_int_t)api->sockjs->n_conns, "max",
        (json_int_t)api->sockjs->max_connections, "accepted", (json_int_t)a->accepted,
        "refused_limit", (json_int_t)a->refused_limit, "refused_draining",
        (json_int_t)a->refused_drain, "accept_pauses", (json_int_t)a->paused, "accept_paused",
        api->sockjs->accept_paused, "draining", gw_server_draining(api->sockjs));
    json_object_set_new(listener, "refused_sessions_per_ip",
                        json_integer((json_int_t)gw_server_refused_crowded(api->sockjs)));
    json_object_set_new(body, "listener", listener);
    /* Operators (and the hash-flood test) see a table gone linear here. */
    json_object_set_new(json_object_get(body, "sessions"), "table_longest_chain",
                        json_integer((json_int_t)gw_server_longest_session_chain(api->sockjs)));
    const struct pubsub_presence_stats *p = pubsub_presence_stats(pubsub_node_presence(api->node));
    json_object_set_new(
        body, "presence",
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "joins", (json_int_t)p->joins, "leaves",
                  (json_int_t)p->leaves, "lingering", (json_int_t)p->ghosts, "queries",
                  (json_int_t)p->queries, "redis_commands", (json_int_t)p->redis_commands,
                  "redis_changes", (json_int_t)p->redis_deltas, "replaces", (json_int_t)p->replaces,
                  "dead_nodes", (json_int_t)p->dead_nodes, "lost_events",
                  (json_int_t)p->lost_events));
    respond_json(req, 200, "OK", body);
}

/* GET /metrics, without the key: the API listener is the operator's (docs/PROTOCOL.md). */
static void metrics(struct gw_api *api, const struct tp_request *req)
{
    if (strcmp(req->method, "GET") != 0) {
        struct tp_head h;
        tp_head_start(&h, req, 405, "Method Not Allowed", "text/plain; charset=utf-8", TP_NO_CACHE);
        tp_head_add(&h, "Allow", "GET");
        tp_respond(req, &h, "", 0);
        return;
    }
    struct gw_buf out = GW_BUF_INIT;
    gw_metrics_write(api->metrics, api, &out);
    struct tp_head h;
    tp_head_start(&h, req, 200, "OK", GW_METRICS_CONTENT_TYPE, TP_NO_CACHE);
    tp_respond(req, &h, out.data, out.len);
    gw_buf_release(&out);
}

void gw_api_route(struct gw_server *srv, struct tp_request *req, const char *path, size_t path_len)
{
    struct gw_api *api = srv->route_arg;
    api->requests++;
    if (gw_health_handle(srv->health, req, path, path_len))
        return; /* no key: load balancers and orchestrators ask */
    if (api->metrics && path_len == 8 && memcmp(path, "/metrics", 8) == 0) {
        metrics(api, req);
        return;
    }
    bool is_publish = path_len == 12 && memcmp(path, "/api/publish", 12) == 0;
    bool is_stats = path_len == 10 && memcmp(path, "/api/stats", 10) == 0;
    bool is_presence = path_len == 13 && memcmp(path, "/api/presence", 13) == 0;
    if (!is_publish && !is_stats && !is_presence) {
        respond_error(req, 404, "Not Found", "no such endpoint", -1);
        return;
    }
    if (!authorized(api, req)) {
        api->unauthorized++;
        GW_INFO("api: %s: unauthorized request", tp_conn_peer(req->conn));
        respond_error(req, 401, "Unauthorized",
                      api->cfg->api_key[0] ? "missing or wrong API key" : "no API key configured",
                      -1);
        return;
    }
    const char *want = is_publish ? "POST" : "GET";
    if (strcmp(req->method, want) != 0) {
        json_t *body = json_pack("{s:s}", "error", "method not allowed");
        char *text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        struct tp_head h;
        tp_head_start(&h, req, 405, "Method Not Allowed", "application/json", TP_NO_CACHE);
        tp_head_add(&h, "Allow", "%s", want);
        tp_respond(req, &h, text, strlen(text));
        free(text);
        return;
    }
    if (is_publish)
        publish(api, req);
    else if (is_presence)
        presence(api, req);
    else
        stats(api, req);
}
