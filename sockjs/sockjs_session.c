#include "sockjs_session.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "gw_alloc.h"
#include "gw_buf.h"
#include "gw_digest.h"
#include "gw_hash.h"
#include "gw_htable.h"
#include "gw_log.h"
#include "gw_net.h"
#include "gw_ratelimit.h"
#include "gw_refbuf.h"
#include "gw_slab.h"
#include "gw_timerq.h"
#include "gw_url.h"
#include "pubsub_hub.h"
#include "sockjs_frame.h"

enum session_state { SESSION_OPEN, SESSION_CLOSED };

enum session_flags {
    SESSION_IN_TABLE = 1, /* addressed by id (HTTP transports) */
    SESSION_RAW = 2,      /* raw websocket: messages unframed */
    SESSION_REAPED = 4,   /* waiting to be freed at the end of the loop turn */
    SESSION_BOUND = 8,    /* opened with opt.bind_param: its digest follows the id */
};
/* The transport that opened the session (enum sockjs_transport) in the flags' upper bits: a
 * field of its own would cost 8 bytes with padding. */
#define SESSION_TRANSPORT_SHIFT 4
_Static_assert(SOCKJS_TRANSPORT_COUNT <= 16, "transport index beyond the flags' upper bits");

struct sockjs_session {
    struct sockjs_server *server;
    struct sockjs_receiver *receiver;
    struct client_sessions *client; /* what it counts under (max_sessions_per_client), or NULL */
    struct gw_timer timer;          /* heartbeat while attached, disconnect delay while not */
    struct gw_buf *pending;         /* "a[" and the quoted messages waiting; NULL when none */
    union {
        struct gw_hnode node;               /* in the table while SESSION_IN_TABLE */
        struct sockjs_session *next_reaped; /* on the reap list once SESSION_REAPED */
    };
    /* Open: when it opened (gw_now_ms()), for the close's log line; closed: the reason. */
    union {
        uint64_t opened_ms;
        const char *close_reason;
    };
    uint16_t close_code;
    uint8_t state;
    uint8_t flags;
    uint32_t id_len;
    /* One allocation per session: then the app's per-session data (app->session_data_size
     * bytes, sockjs_session_app_data()), then the id (tabled sessions only) and its NUL, then
     * for SESSION_BOUND the keyed digest of the bound parameter's value, then (tabled sessions
     * only) the address of the client that opened it and its NUL: a polling session outlives
     * its requests, and its close is logged with no request at hand. */
    uint64_t tail[]; /* 8-byte alignment: enough for pointers and 64-bit integers */
};

struct sockjs_server {
    struct sockjs_options opt;
    const struct sockjs_app_ops *app;
    void *app_arg;
    struct gw_timerq heartbeat_q;
    struct gw_timerq disconnect_q;
    size_t app_data_size;         /* app->session_data_size rounded up for the id after it */
    struct gw_slab untabled_slab; /* websocket sessions (no id): all of one size */
    struct gw_htable table;
    size_t untabled_count;
    size_t open_sessions[SOCKJS_TRANSPORT_COUNT]; /* by the transport that opened them */
    struct sockjs_session *reap_list;
    struct event *reap_ev;
    bool draining;
    /* Requests naming no session (or a bound one without its value), per client address. */
    struct gw_ratelimit unknown_limit;
    /* An attacker may cause any number of refusals: one log line a second at most. */
    struct gw_log_gate refusal_log;
    /* Client addresses holding sessions (struct client_sessions), while the limit is on. */
    struct gw_htable clients;
    uint64_t refused_crowded;
    struct gw_log_gate crowded_log;
};

/* The sessions of one client address: an entry exists while the count is non-zero, so that
 * memory follows the addresses holding sessions, not every address ever seen. */
struct client_sessions {
    struct gw_hnode node; /* in sockjs_server.clients */
    uint32_t hash;
    uint32_t count;
    char key[]; /* gw_client_key() of the address */
};

/* Clients the unknown-session limit keeps track of at once (24 bytes each, allocated on the
 * first unknown session). */
#define UNKNOWN_LIMIT_CLIENTS 4096

void sockjs_options_defaults(struct sockjs_options *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->prefix = "/sockjs";
    opt->heartbeat_ms = 25000;
    opt->heartbeat_window_ms = 1000;
    opt->disconnect_ms = 5000;
    opt->response_limit = 128 * 1024;
    opt->websocket = true;
    opt->cookie_needed = false;
    opt->sockjs_url = "/static/sockjs.min.js";
}

/* ---- table ---------------------------------------------------------------------------------- */

/* Keyed: clients choose the ids, and must not be able to choose ids that share a bucket. */
static uint32_t hash_id(const char *id, size_t len)
{
    return gw_hash_keyed(id, len);
}

static char *session_id(const struct sockjs_session *s)
{
    return (char *)s->tail + s->server->app_data_size;
}

/* Recomputed rather than stored (ids are a few dozen bytes at most): the field would cost
 * every session, websocket ones included, which have no id. */
static uint32_t session_hash(const struct sockjs_session *s)
{
    return hash_id(session_id(s), s->id_len);
}

static uint32_t node_hash(const struct gw_hnode *node)
{
    return session_hash(GW_CONTAINER_OF(node, struct sockjs_session, node));
}

static uint8_t *session_binding(const struct sockjs_session *s)
{
    return (uint8_t *)session_id(s) + s->id_len + 1;
}

/* Tabled sessions only. */
static char *session_opener(const struct sockjs_session *s)
{
    return (char *)session_binding(s) + ((s->flags & SESSION_BOUND) ? GW_DIGEST_LEN : 0);
}

static void table_insert(struct sockjs_server *srv, struct sockjs_session *s)
{
    gw_htable_insert(&srv->table, &s->node, session_hash(s));
    s->flags |= SESSION_IN_TABLE;
}

static void table_remove(struct sockjs_server *srv, struct sockjs_session *s)
{
    gw_htable_remove(&srv->table, &s->node, session_hash(s));
    s->flags &= (uint8_t)~SESSION_IN_TABLE;
}

struct sockjs_session *sockjs_session_find(struct sockjs_server *srv, const char *id, size_t len)
{
    uint32_t h = hash_id(id, len);
    for (struct gw_hnode *n = gw_htable_chain(&srv->table, h); n; n = n->next) {
        struct sockjs_session *s = GW_CONTAINER_OF(n, struct sockjs_session, node);
        if (s->id_len == len && memcmp(session_id(s), id, len) == 0)
            return s;
    }
    return NULL;
}

bool sockjs_valid_id(const char *id, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (id[i] == '/' || id[i] == '.')
            return false;
    }
    return true;
}

/* ---- sessions per client address ------------------------------------------------------------ */

static uint32_t client_node_hash(const struct gw_hnode *node)
{
    return GW_CONTAINER_OF(node, struct client_sessions, node)->hash;
}

/* The key a client address counts under (gw_client_key), truncated to fit; its length. */
#define CLIENT_KEY_MAX 96
static size_t client_key(const char *client, char buf[CLIENT_KEY_MAX])
{
    size_t n = gw_client_key(client, buf, CLIENT_KEY_MAX);
    return n < CLIENT_KEY_MAX ? n : CLIENT_KEY_MAX - 1;
}

static struct client_sessions *find_client(const struct sockjs_server *srv, const char *key,
                                           size_t len, uint32_t h)
{
    for (struct gw_hnode *n = gw_htable_chain(&srv->clients, h); n; n = n->next) {
        struct client_sessions *c = GW_CONTAINER_OF(n, struct client_sessions, node);
        if (c->hash == h && strncmp(c->key, key, len) == 0 && !c->key[len])
            return c;
    }
    return NULL;
}

bool sockjs_server_admits(struct sockjs_server *srv, const char *client)
{
    uint32_t max = srv->opt.max_sessions_per_client;
    if (!max || !client)
        return true;
    char key[CLIENT_KEY_MAX];
    size_t len = client_key(client, key);
    const struct client_sessions *c = find_client(srv, key, len, gw_hash_keyed(key, len));
    if (!c || c->count < max)
        return true;
    srv->refused_crowded++;
    uint64_t held;
    if (gw_log_gate_open(&srv->crowded_log, 1000, &held))
        GW_INFO("%s: new session refused (429): the address holds %u sessions "
                "(--max-sessions-per-ip; %" PRIu64 " more refusals not logged)",
                key, c->count, held);
    return false;
}

/* s counts under client's address from now until it is reaped. */
static void client_count(struct sockjs_session *s, const char *client)
{
    struct sockjs_server *srv = s->server;
    if (!srv->opt.max_sessions_per_client || !client)
        return;
    char key[CLIENT_KEY_MAX];
    size_t len = client_key(client, key);
    uint32_t h = gw_hash_keyed(key, len);
    struct client_sessions *c = find_client(srv, key, len, h);
    if (!c) {
        c = gw_calloc(1, sizeof(*c) + len + 1);
        memcpy(c->key, key, len);
        c->hash = h;
        gw_htable_insert(&srv->clients, &c->node, h);
    }
    c->count++;
    s->client = c;
}

static void client_uncount(struct sockjs_session *s)
{
    struct client_sessions *c = s->client;
    if (!c)
        return;
    s->client = NULL;
    if (--c->count == 0) {
        gw_htable_remove(&s->server->clients, &c->node, c->hash);
        gw_free(c);
    }
}

/* ---- lifetime ------------------------------------------------------------------------------- */

static void free_session(struct sockjs_session *s)
{
    gw_buf_free(&s->pending);
    if (s->id_len == 0)
        gw_slab_free(&s->server->untabled_slab, s);
    else
        gw_free(s);
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sockjs_server *srv = arg;
    while (srv->reap_list) {
        struct sockjs_session *s = srv->reap_list;
        srv->reap_list = s->next_reaped;
        free_session(s);
    }
}

/* Freed at the end of the loop turn, so that whoever is on the stack with a pointer to s (a
 * transport delivering a payload, an app callback) finds it intact until it returns. */
static void reap(struct sockjs_session *s)
{
    struct sockjs_server *srv = s->server;
    GW_ASSERT(!(s->flags & SESSION_REAPED) && !s->receiver);
    if (s->flags & SESSION_IN_TABLE)
        table_remove(srv, s);
    else
        srv->untabled_count--;
    client_uncount(s);
    gw_timer_stop(&s->timer);
    s->flags |= SESSION_REAPED;
    s->next_reaped = srv->reap_list;
    srv->reap_list = s;
    event_active(srv->reap_ev, EV_TIMEOUT, 0);
}

/* The bound parameter's value in req (raw, as the URL has it), or NULL. */
static const char *bound_value(const struct sockjs_server *srv, const struct sockjs_open_info *req,
                               size_t *len)
{
    if (!srv->opt.bind_param || !req || !req->query)
        return NULL;
    return gw_query_param_raw(req->query, req->query_len, srv->opt.bind_param, len);
}

/* client: the opening request's client address, may be NULL: kept with tabled sessions (for
 * their close line) and counted under for max_sessions_per_client. */
static struct sockjs_session *session_new(struct sockjs_server *srv, const char *id, size_t len,
                                          const struct sockjs_open_info *info,
                                          enum sockjs_transport transport, const char *client)
{
    /* Websocket sessions have no id to keep (len 0): not even a NUL, nor a binding (nobody
     * can name them), nor an address (their connection has it). Only bound sessions pay for
     * the digest. */
    size_t bound_len = 0;
    const char *bound = len ? bound_value(srv, info, &bound_len) : NULL;
    size_t peer_len = client ? strnlen(client, SOCKJS_PEER_MAX - 1) : 0;
    struct sockjs_session *s = len ? gw_calloc(1, sizeof(*s) + srv->app_data_size + len + 1 +
                                                      (bound ? GW_DIGEST_LEN : 0) + peer_len + 1)
                                   : gw_slab_alloc(&srv->untabled_slab);
    s->server = srv;
    gw_timer_init(&s->timer);
    s->state = SESSION_OPEN;
    GW_ASSERT(transport < SOCKJS_TRANSPORT_COUNT);
    s->flags = (uint8_t)(transport << SESSION_TRANSPORT_SHIFT);
    srv->open_sessions[transport]++;
    s->opened_ms = gw_now_ms();
    s->id_len = (uint32_t)len;
    memcpy(session_id(s), id, len);
    if (bound) {
        gw_keyed_digest(bound, bound_len, session_binding(s));
        s->flags |= SESSION_BOUND;
    }
    if (len && peer_len)
        memcpy(session_opener(s), client, peer_len); /* NUL from calloc */
    client_count(s, client);
    return s;
}

/* ---- access --------------------------------------------------------------------------------- */

static bool presents_binding(const struct sockjs_session *s, const struct sockjs_open_info *req)
{
    size_t len;
    const char *value = bound_value(s->server, req, &len);
    if (!value)
        return false;
    uint8_t digest[GW_DIGEST_LEN];
    gw_keyed_digest(value, len, digest);
    return gw_ct_equal(digest, session_binding(s), GW_DIGEST_LEN);
}

enum sockjs_access sockjs_session_access(struct sockjs_server *srv, const char *id, size_t len,
                                         const struct sockjs_open_info *req, const char *client,
                                         bool opens, struct sockjs_session **out,
                                         uint32_t *retry_after_s)
{
    *out = NULL;
    *retry_after_s = 0;
    struct sockjs_session *s = sockjs_session_find(srv, id, len);
    bool bound = s && (s->flags & SESSION_BOUND);
    if (bound && presents_binding(s, req)) {
        *out = s;
        return SOCKJS_ACCESS_OK;
    }
    struct gw_ratelimit *rl = &srv->unknown_limit;
    /* The client's key is computed only when it can matter: a table exists (someone failed
     * before), or this request fails. */
    bool fails = bound || (!s && !opens);
    uint64_t key = 0, now = 0;
    char addr[CLIENT_KEY_MAX];
    if (rl->rate && (rl->entries || fails)) {
        key = gw_ratelimit_key(addr, client_key(client ? client : "?", addr));
        now = gw_now_ms();
        uint64_t wait = gw_ratelimit_wait_ms(rl, key, now);
        if (wait) {
            *retry_after_s = (uint32_t)((wait + 999) / 1000);
            uint64_t held;
            if (gw_log_gate_open(&srv->refusal_log, 1000, &held))
                GW_INFO("%s: refused (429): over %u unknown-session requests/s (%" PRIu64
                        " more refusals not logged)",
                        addr, rl->rate, held);
            return SOCKJS_ACCESS_LIMITED;
        }
    }
    if (!fails) {
        if (!s && !sockjs_server_admits(srv, client))
            return SOCKJS_ACCESS_CROWDED;
        *out = s;
        return SOCKJS_ACCESS_OK;
    }
    bool emptied = key && gw_ratelimit_charge(rl, key, now);
    uint64_t held;
    if ((emptied || bound) && gw_log_gate_open(&srv->refusal_log, 1000, &held)) {
        if (emptied)
            GW_INFO("%s: %u unknown-session requests in a burst: its session requests are "
                    "refused (429) for now (%" PRIu64 " more not logged)",
                    addr, rl->burst, held);
        else
            GW_INFO("%s: request for a session bound to another %s: answered as for an "
                    "unknown session (%" PRIu64 " more not logged)",
                    client ? client : "?", srv->opt.bind_param, held);
    }
    return SOCKJS_ACCESS_UNKNOWN;
}

/* ---- sending -------------------------------------------------------------------------------- */

static void attach(struct sockjs_session *s, struct sockjs_receiver *r)
{
    s->receiver = r;
    r->session = s;
}

/* Writes f to the attached receiver and keeps the timers right. */
static void send_frame(struct sockjs_session *s, const struct sockjs_frame *f)
{
    struct sockjs_receiver *r = s->receiver;
    if (sockjs_receiver_send_frame(r, f)) {
        gw_timer_start(&s->timer, &s->server->heartbeat_q);
    } else {
        /* r has ended and may be gone: forget it without touching it. */
        s->receiver = NULL;
        if (s->flags & SESSION_IN_TABLE)
            gw_timer_start(&s->timer, &s->server->disconnect_q);
    }
}

static void send_simple(struct sockjs_session *s, enum sockjs_frame_type type, const char *data)
{
    struct sockjs_frame f = {.type = type, .data = data, .len = strlen(data)};
    send_frame(s, &f);
}

/* The queued messages as one "a[...]" frame, to the attached receiver. */
static void flush_pending(struct sockjs_session *s)
{
    if (!s->receiver || !s->pending)
        return;
    /* Detached first: sending may end the receiver, never touch the queue again. */
    struct gw_buf *frame = s->pending;
    s->pending = NULL;
    gw_buf_append(frame, "]", 1);
    struct sockjs_frame f = {.type = SOCKJS_FRAME_MESSAGES, .data = frame->data, .len = frame->len};
    send_frame(s, &f);
    gw_buf_free(&frame);
}

static void close_frame_to(struct sockjs_receiver *r, int code, const char *reason, bool *stays)
{
    struct gw_buf frame = GW_BUF_INIT;
    sockjs_close_frame(&frame, code, reason);
    struct sockjs_frame f = {.type = SOCKJS_FRAME_CLOSE,
                             .data = frame.data,
                             .len = frame.len,
                             .close_code = code,
                             .close_reason = reason};
    *stays = sockjs_receiver_send_frame(r, &f);
    gw_buf_release(&frame);
}

/* Answers a receiver that cannot attach with one close frame, and lets it go. */
static void refuse(struct sockjs_receiver *r, int code, const char *reason)
{
    bool stays;
    close_frame_to(r, code, reason, &stays);
    if (stays)
        sockjs_receiver_release(r);
}

/* Appends one message to the queue, quoting it unless it already is. */
static void queue_quoted(struct sockjs_session *s, const char *msg, size_t len, bool quote)
{
    if (s->pending) {
        gw_buf_append(s->pending, ",", 1);
    } else {
        s->pending = gw_buf_new();
        gw_buf_append(s->pending, "a[", 2);
    }
    if (quote)
        sockjs_quote(s->pending, msg, len);
    else
        gw_buf_append(s->pending, msg, len);
}

/* Room for an app's description: three names of up to 256 bytes and their keys. */
#define DESCRIBE_MAX 832

/* The app's description of s after a space (" user=u1 company=acme site=main"), or "" when
 * the app gives none. */
static void describe(const struct sockjs_session *s, char *out, size_t cap)
{
    const struct sockjs_server *srv = s->server;
    out[0] = ' ';
    out[1] = '\0';
    if (srv->app->describe)
        srv->app->describe(srv->app_arg, s, out + 1, cap - 1);
    if (!out[1])
        out[0] = '\0';
}

/* A reader that falls behind loses its own session, not the process's memory. */
static bool over_queue_limit(struct sockjs_session *s)
{
    uint32_t limit = s->server->opt.max_queued_bytes;
    if (!limit)
        return false;
    size_t queued = s->pending ? s->pending->len : 0;
    if (s->receiver)
        queued += sockjs_receiver_queued(s->receiver);
    if (queued <= limit)
        return false;
    if (gw_log_threshold >= GW_LOG_WARN) {
        char who[DESCRIBE_MAX], peer[SOCKJS_PEER_MAX];
        describe(s, who, sizeof(who));
        GW_WARN("session closed: slow consumer: transport=%s session=%s%s queued=%zu limit=%u "
                "client=%s",
                sockjs_transport_name(sockjs_session_transport(s)), s->id_len ? session_id(s) : "-",
                who, queued, limit, sockjs_session_peer(s, peer));
    }
    sockjs_session_close(s, SOCKJS_CLOSE_SLOW_CONSUMER, "Slow consumer");
    return true;
}

struct gw_refbuf *sockjs_message_form(struct pubsub_message *m, enum sockjs_message_form form)
{
    if (!m->forms[SOCKJS_FORM_QUOTED]) {
        struct gw_buf b = GW_BUF_INIT;
        sockjs_quote(&b, m->json->data, m->json->len);
        m->forms[SOCKJS_FORM_QUOTED] = gw_refbuf_copy(b.data, b.len);
        gw_buf_release(&b);
    }
    if (form == SOCKJS_FORM_FRAME && !m->forms[SOCKJS_FORM_FRAME]) {
        struct gw_refbuf *q = m->forms[SOCKJS_FORM_QUOTED];
        struct gw_refbuf *f = gw_refbuf_new(q->len + 3);
        f->data[0] = 'a';
        f->data[1] = '[';
        memcpy(f->data + 2, q->data, q->len);
        f->data[q->len + 2] = ']';
        m->forms[SOCKJS_FORM_FRAME] = f;
    }
    return m->forms[form];
}

/* The message's cache: SockJS's own forms first, then the transports' slots. */
_Static_assert(SOCKJS_FORM_END + SOCKJS_TRANSPORT_FORMS <= PUBSUB_MESSAGE_FORMS,
               "pubsub_message.forms[] too small");

struct gw_refbuf *sockjs_message_transport_form(const struct pubsub_message *m, unsigned slot)
{
    GW_ASSERT(slot < SOCKJS_TRANSPORT_FORMS);
    return m->forms[SOCKJS_FORM_END + slot];
}

struct gw_refbuf *sockjs_message_set_transport_form(struct pubsub_message *m, unsigned slot,
                                                    struct gw_refbuf *form)
{
    GW_ASSERT(slot < SOCKJS_TRANSPORT_FORMS && !m->forms[SOCKJS_FORM_END + slot]);
    m->forms[SOCKJS_FORM_END + slot] = form;
    return form;
}

void sockjs_session_send_message(struct sockjs_session *s, struct pubsub_message *m)
{
    if (s->state != SESSION_OPEN)
        return;
    if (s->flags & SESSION_RAW) {
        if (s->receiver) {
            struct sockjs_frame f = {
                .type = SOCKJS_FRAME_RAW, .data = m->json->data, .len = m->json->len, .msg = m};
            send_frame(s, &f);
            over_queue_limit(s);
        }
        return;
    }
    if (s->receiver && !s->pending) {
        struct gw_refbuf *frame = sockjs_message_form(m, SOCKJS_FORM_FRAME);
        struct sockjs_frame f = {
            .type = SOCKJS_FRAME_MESSAGES, .data = frame->data, .len = frame->len, .msg = m};
        send_frame(s, &f);
    } else {
        struct gw_refbuf *quoted = sockjs_message_form(m, SOCKJS_FORM_QUOTED);
        queue_quoted(s, quoted->data, quoted->len, false);
        flush_pending(s);
    }
    over_queue_limit(s);
}

void sockjs_session_send(struct sockjs_session *s, const char *msg, size_t len)
{
    if (s->state != SESSION_OPEN)
        return;
    if (s->flags & SESSION_RAW) {
        if (s->receiver) {
            struct sockjs_frame f = {.type = SOCKJS_FRAME_RAW, .data = msg, .len = len};
            send_frame(s, &f);
            over_queue_limit(s);
        }
        return;
    }
    queue_quoted(s, msg, len, true);
    flush_pending(s);
    over_queue_limit(s);
}

/* s's client address (sockjs_session_peer), r being the receiver that carries it (or NULL). */
static const char *peer_from(const struct sockjs_session *s, const struct sockjs_receiver *r,
                             char out[SOCKJS_PEER_MAX])
{
    const char *peer = NULL;
    if (s->id_len)
        peer = session_opener(s);
    else if (r && r->ops->peer)
        peer = r->ops->peer(r);
    snprintf(out, SOCKJS_PEER_MAX, "%s", peer && peer[0] ? peer : "-");
    return out;
}

/* The client's address for s's close line, copied while the receiver r that carried it last
 * (may be NULL) is alive; only when the line is logged. */
static void peer_of(const struct sockjs_session *s, const struct sockjs_receiver *r,
                    char out[SOCKJS_PEER_MAX])
{
    if (gw_log_threshold >= GW_LOG_INFO)
        peer_from(s, r, out);
    else
        snprintf(out, SOCKJS_PEER_MAX, "-");
}

/* Open to closed: counted, logged (one info line per session), then the app's on_close. */
static void mark_closed(struct sockjs_session *s, int code, const char *reason, const char *peer)
{
    struct sockjs_server *srv = s->server;
    enum sockjs_transport t = sockjs_session_transport(s);
    uint64_t opened = s->opened_ms;
    if (gw_log_threshold >= GW_LOG_INFO) {
        /* Described while the app still knows the session: on_close forgets it. */
        char who[DESCRIBE_MAX];
        describe(s, who, sizeof(who));
        GW_INFO("session closed: transport=%s%s%s duration_ms=%" PRIu64
                " code=%d reason=\"%s\" client=%s",
                sockjs_transport_name(t), (s->flags & SESSION_RAW) ? "_raw" : "", who,
                gw_now_ms() - opened, code, reason, peer ? peer : "-");
    }
    s->state = SESSION_CLOSED;
    s->close_code = (uint16_t)code;
    s->close_reason = reason;
    srv->open_sessions[t]--;
    srv->app->on_close(srv->app_arg, s);
}

static void enter_closed(struct sockjs_session *s, int code, const char *reason, const char *peer)
{
    struct sockjs_server *srv = s->server;
    mark_closed(s, code, reason, peer);
    if (s->flags & SESSION_IN_TABLE) {
        if (!s->receiver)
            gw_timer_start(&s->timer, &srv->disconnect_q);
    } else if (!s->receiver) {
        reap(s);
    }
}

void sockjs_session_close(struct sockjs_session *s, int code, const char *reason)
{
    if (s->state != SESSION_OPEN)
        return;
    flush_pending(s);
    struct sockjs_receiver *r = s->receiver;
    char peer[SOCKJS_PEER_MAX];
    peer_of(s, r, peer);
    if (r) {
        s->receiver = NULL;
        r->session = NULL;
        refuse(r, code, reason);
    }
    enter_closed(s, code, reason, peer);
}

/* ---- receivers ------------------------------------------------------------------------------ */

static void open_session(struct sockjs_session *s, const struct sockjs_open_info *info)
{
    struct sockjs_server *srv = s->server;
    /* Sending "o" may end the request that info points into (a poll ends with its frame). */
    char buf[SOCKJS_OPEN_INFO_BUF];
    struct sockjs_open_info copy = {NULL, 0, 0, NULL};
    char *heap = info ? sockjs_open_info_copy(info, buf, &copy) : NULL;
    if (!(s->flags & SESSION_RAW))
        send_simple(s, SOCKJS_FRAME_OPEN, "o");
    else
        gw_timer_start(&s->timer, &srv->heartbeat_q);
    srv->app->on_open(srv->app_arg, s, &copy);
    gw_free(heap);
}

char *sockjs_open_info_copy(const struct sockjs_open_info *in, char buf[SOCKJS_OPEN_INFO_BUF],
                            struct sockjs_open_info *out)
{
    *out = (struct sockjs_open_info){NULL, 0, in->transport, NULL};
    if (!in->query)
        return NULL;
    char *heap = in->query_len < SOCKJS_OPEN_INFO_BUF ? NULL : gw_malloc(in->query_len + 1);
    char *copy = heap ? heap : buf;
    memcpy(copy, in->query, in->query_len);
    copy[in->query_len] = '\0';
    out->query = copy;
    out->query_len = in->query_len;
    return heap;
}

void sockjs_session_attach(struct sockjs_server *srv, const char *id, size_t len,
                           struct sockjs_receiver *r, const struct sockjs_open_info *info)
{
    struct sockjs_session *s = sockjs_session_find(srv, id, len);
    if (!s && srv->draining) {
        refuse(r, SOCKJS_CLOSE_GOING_AWAY, SOCKJS_CLOSE_GOING_AWAY_REASON);
        return;
    }
    if (!s) {
        s = session_new(srv, id, len, info,
                        info ? (enum sockjs_transport)info->transport
                             : SOCKJS_TRANSPORT_XHR_POLLING,
                        info ? info->client : NULL);
        table_insert(srv, s);
        attach(s, r);
        open_session(s, info);
        return;
    }
    if (s->receiver) {
        refuse(r, 2010, "Another connection still open");
        return;
    }
    attach(s, r);
    gw_timer_start(&s->timer, &srv->heartbeat_q);
    if (s->state == SESSION_CLOSED) {
        /* Messages queued before the close still go first. */
        flush_pending(s);
        if (s->receiver) {
            s->receiver = NULL;
            r->session = NULL;
            refuse(r, s->close_code, s->close_reason);
        }
        gw_timer_start(&s->timer, &srv->disconnect_q);
        return;
    }
    if (srv->draining) {
        sockjs_session_close(s, SOCKJS_CLOSE_GOING_AWAY, SOCKJS_CLOSE_GOING_AWAY_REASON);
        return;
    }
    flush_pending(s);
}

struct sockjs_session *sockjs_session_new_attached(struct sockjs_server *srv,
                                                   struct sockjs_receiver *r, bool raw,
                                                   const struct sockjs_open_info *info)
{
    struct sockjs_session *s =
        session_new(srv, "", 0, NULL, SOCKJS_TRANSPORT_WEBSOCKET, info ? info->client : NULL);
    if (raw)
        s->flags |= SESSION_RAW;
    srv->untabled_count++;
    attach(s, r);
    open_session(s, info);
    return s;
}

void sockjs_session_receiver_lost(struct sockjs_session *s, struct sockjs_receiver *r)
{
    GW_ASSERT(s->receiver == r);
    char peer[SOCKJS_PEER_MAX];
    peer_of(s, r, peer);
    s->receiver = NULL;
    r->session = NULL;
    if (s->state == SESSION_OPEN) {
        enter_closed(s, 1002, "Connection interrupted", peer);
    } else if (!(s->flags & SESSION_IN_TABLE)) {
        reap(s);
    } else {
        gw_timer_start(&s->timer, &s->server->disconnect_q);
    }
}

struct deliver_ctx {
    struct sockjs_session *session;
};

static void deliver(void *arg, const char *msg, size_t len)
{
    struct sockjs_session *s = ((struct deliver_ctx *)arg)->session;
    /* The app may have closed the session on an earlier message of the same payload. */
    if (s->state == SESSION_OPEN)
        s->server->app->on_message(s->server->app_arg, s, msg, len);
}

int sockjs_session_receive_payload(struct sockjs_session *s, const char *data, size_t len)
{
    struct deliver_ctx ctx = {s};
    return sockjs_parse_payload(data, len, deliver, &ctx);
}

void sockjs_session_receive_message(struct sockjs_session *s, const char *msg, size_t len)
{
    if (s->state == SESSION_OPEN)
        s->server->app->on_message(s->server->app_arg, s, msg, len);
}

bool sockjs_session_is_open(const struct sockjs_session *s)
{
    return s->state == SESSION_OPEN;
}

void *sockjs_session_app_data(const struct sockjs_session *s)
{
    return (void *)s->tail;
}

struct sockjs_session *sockjs_session_of_app_data(void *data)
{
    return (struct sockjs_session *)((char *)data - offsetof(struct sockjs_session, tail));
}

struct sockjs_server *sockjs_session_server(const struct sockjs_session *s)
{
    return s->server;
}

const char *sockjs_session_peer(const struct sockjs_session *s, char out[SOCKJS_PEER_MAX])
{
    return peer_from(s, s->receiver, out);
}

enum sockjs_transport sockjs_session_transport(const struct sockjs_session *s)
{
    return (enum sockjs_transport)(s->flags >> SESSION_TRANSPORT_SHIFT);
}

int sockjs_session_close_code(const struct sockjs_session *s)
{
    return s->state == SESSION_CLOSED ? s->close_code : 0;
}

const char *sockjs_session_close_reason(const struct sockjs_session *s)
{
    return s->state == SESSION_CLOSED ? s->close_reason : NULL;
}

const char *sockjs_transport_name(enum sockjs_transport t)
{
    static const char *const names[SOCKJS_TRANSPORT_COUNT] = {
        "websocket", "xhr_streaming", "xhr_polling", "eventsource", "htmlfile", "jsonp",
    };
    return t < SOCKJS_TRANSPORT_COUNT ? names[t] : "unknown";
}

/* ---- timers --------------------------------------------------------------------------------- */

static void on_heartbeat(struct gw_timer *t, void *arg)
{
    (void)arg;
    struct sockjs_session *s = GW_CONTAINER_OF(t, struct sockjs_session, timer);
    if (s->receiver)
        send_simple(s, SOCKJS_FRAME_HEARTBEAT, "h");
}

static void on_disconnect(struct gw_timer *t, void *arg)
{
    (void)arg;
    struct sockjs_session *s = GW_CONTAINER_OF(t, struct sockjs_session, timer);
    if (s->receiver)
        return;
    if (s->state == SESSION_OPEN) {
        char peer[SOCKJS_PEER_MAX];
        peer_of(s, NULL, peer);
        mark_closed(s, 0, "Timed out", peer);
    }
    reap(s);
}

/* ---- server --------------------------------------------------------------------------------- */

struct sockjs_server *sockjs_server_new(struct event_base *base, const struct sockjs_options *opt,
                                        const struct sockjs_app_ops *app, void *app_arg)
{
    struct sockjs_server *srv = gw_calloc(1, sizeof(*srv));
    srv->opt = *opt;
    srv->app = app;
    srv->app_arg = app_arg;
    srv->app_data_size = (app->session_data_size + 7) & ~(size_t)7;
    gw_slab_init(&srv->untabled_slab, sizeof(struct sockjs_session) + srv->app_data_size);
    gw_timerq_init(&srv->heartbeat_q, base, opt->heartbeat_ms, on_heartbeat, srv);
    gw_timerq_set_slack(&srv->heartbeat_q, sockjs_heartbeat_window_ms(opt));
    gw_timerq_init(&srv->disconnect_q, base, opt->disconnect_ms, on_disconnect, srv);
    gw_htable_init(&srv->table, 64, node_hash);
    gw_htable_init(&srv->clients, 16, client_node_hash);
    srv->reap_ev = event_new(base, -1, 0, on_reap, srv);
    GW_ASSERT(srv->reap_ev != NULL);
    gw_ratelimit_init(&srv->unknown_limit, opt->unknown_session_rate, opt->unknown_session_burst,
                      UNKNOWN_LIMIT_CLIENTS);
    return srv;
}

void sockjs_server_free(struct sockjs_server *srv)
{
    /* Held: reaping removes each session, and the buckets must stay put while walked. */
    gw_htable_hold(&srv->table);
    for (size_t i = 0; i <= srv->table.mask; i++) {
        while (srv->table.buckets[i]) {
            struct sockjs_session *s =
                GW_CONTAINER_OF(srv->table.buckets[i], struct sockjs_session, node);
            struct sockjs_receiver *r = s->receiver;
            char peer[SOCKJS_PEER_MAX];
            peer_of(s, r, peer);
            s->receiver = NULL;
            if (r) {
                r->session = NULL;
                sockjs_receiver_release(r);
            }
            if (s->state == SESSION_OPEN)
                mark_closed(s, 0, "Timed out", peer);
            reap(s);
        }
    }
    gw_htable_release(&srv->table);
    /* Websocket sessions belong to their connections, which the gateway closes first. */
    GW_ASSERT(srv->untabled_count == 0);
    on_reap(-1, 0, srv);
    gw_timerq_cleanup(&srv->heartbeat_q);
    gw_timerq_cleanup(&srv->disconnect_q);
    event_free(srv->reap_ev);
    gw_htable_cleanup(&srv->table);
    /* Every session was reaped above (websocket ones by their connections): no address holds
     * any. */
    GW_ASSERT(srv->clients.count == 0);
    gw_htable_cleanup(&srv->clients);
    gw_slab_release(&srv->untabled_slab);
    gw_ratelimit_cleanup(&srv->unknown_limit);
    gw_free(srv);
}

const struct sockjs_options *sockjs_server_options(const struct sockjs_server *srv)
{
    return &srv->opt;
}

void sockjs_server_drain(struct sockjs_server *srv)
{
    srv->draining = true;
}

size_t sockjs_server_session_count(const struct sockjs_server *srv)
{
    return srv->table.count + srv->untabled_count;
}

size_t sockjs_server_open_sessions(const struct sockjs_server *srv, enum sockjs_transport t)
{
    return t < SOCKJS_TRANSPORT_COUNT ? srv->open_sessions[t] : 0;
}

size_t sockjs_server_longest_chain(const struct sockjs_server *srv)
{
    return gw_htable_longest_chain(&srv->table);
}

uint64_t sockjs_server_refused_crowded(const struct sockjs_server *srv)
{
    return srv->refused_crowded;
}
