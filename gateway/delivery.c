/* Session states:
 *
 *   WAITING --token (URL or first message)--> AUTHENTICATED
 *      |  \--?site= and anonymous allowed--> ANONYMOUS --token--> AUTHENTICATED
 *      +--no token within auth_timeout: close 4003;  bad token anywhere: close 4001/4002
 *
 * Entering ANONYMOUS or AUTHENTICATED subscribes the session, then asks the node where its
 * channels stand (and, with "recover", for what it missed): the first message it gets is
 * {"ready": ...} with those positions, then the missed messages, then the live messages that
 * arrived meanwhile (held back, those the answer already counts dropped by seq).
 *
 * AUTHENTICATED has a deadline, the token's exp: then the session is told {"error": "token
 * expired"} and has token_grace_ms to send a fresh token for its identity (which moves the
 * deadline to the new exp), else it is closed with 4002. Deliveries go on meanwhile.
 */
#include "delivery.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "gw_alloc.h"
#include "gw_deadline.h"
#include "gw_error.h"
#include "gw_log.h"
#include "gw_timerq.h"
#include "gw_url.h"
#include "jwt.h"
#include "pubsub_channel.h"

enum { ST_WAITING, ST_ANONYMOUS, ST_AUTHENTICATED };
/* A member's subscriptions are indexed by scope. */
enum {
    SUB_USER = PUBSUB_SCOPE_USER,
    SUB_CLIENT = PUBSUB_SCOPE_CLIENT,
    SUB_GLOBAL = PUBSUB_SCOPE_GLOBAL,
    N_SUBS
};

/* A browser's presence answer is its company's first users, by id. */
#define BROWSER_PRESENCE_LIMIT 1000
/* Browser queries waiting for Redis at once, over all sessions. */
#define MAX_BROWSER_QUERIES 10000
#define ASKED_DS_MASK ((1u << 30) - 1)

#define MAX_FILTERS 64
#define MAX_FILTER_LEN 128

struct delivery_session;

/* Exists only while a session waits for its token: most sessions never need it. */
struct auth_wait {
    struct gw_timer timer;
    struct delivery_session *ds;
};

/* A session's ready message being prepared: live messages are held until it is sent. */
struct ready_wait {
    struct gw_timer timer; /* in gw_delivery.ready_q: give up, positions unknown */
    struct gw_delivery *d;
    struct delivery_session *ds;
    struct pubsub_sync_request *req;
    /* The sync's channels: their scopes, and whether the session asked to recover them. */
    uint8_t n;
    enum pubsub_scope scopes[PUBSUB_SYNC_MAX_CHANNELS];
    bool asked[PUBSUB_SYNC_MAX_CHANNELS];
    bool bad_recover; /* an error message follows the ready message */
    uint32_t n_held, cap_held;
    struct pubsub_message **held;
};

/* What few sessions need, behind the one pointer that every session pays for: an event filter
 * (n patterns when filtering), and the ready message while it is prepared. */
struct extra {
    struct ready_wait *ready;
    bool filtering;
    uint32_t n;
    char *patterns[];
};

/* Every idle session carries one of these, so it holds no pointer it can compute: the hub
 * callback finds the session from the subscription and the message's scope (member.subs[] is
 * indexed by scope), and the gw_delivery comes with every callback. The member is also what
 * presence counts: it costs no byte more. */
struct delivery_session {
    struct pubsub_member member;
    /* Which member is in use follows from the state (state_of()): a session waits for its
     * token or has one that expires, never both, so both fit in the bytes of one pointer. */
    union {
        struct auth_wait *auth; /* ST_WAITING: NULL unless the auth timer runs */
        struct {
            uint32_t timer;        /* ST_AUTHENTICATED: in gw_delivery.expiry (gw_deadline.h) */
            uint32_t in_grace : 1; /* the deadline is the grace period's end, not exp */
            uint32_t querying : 1; /* a presence query of its own is in gw_delivery.queries */
            /* When it last asked for presence: (gw_now_ms() / 100) + 1, wrapping; 0: never. */
            uint32_t asked_ds : 30;
        } expiry;
    };
    struct extra *extra; /* NULL: no filter, no ready message waiting */
};

/* The state follows from the subscriptions (a byte for it would cost 8 with padding):
 * authenticated sessions have their user channel, anonymous ones only the global one. */
static int state_of(const struct delivery_session *ds)
{
    if (pubsub_sub_channel(&ds->member.subs[SUB_USER]))
        return ST_AUTHENTICATED;
    return pubsub_sub_channel(&ds->member.subs[SUB_GLOBAL]) ? ST_ANONYMOUS : ST_WAITING;
}

/* The session holding ds as its app data (sockjs_session_app_data()). */
static struct sockjs_session *session_of(struct delivery_session *ds)
{
    return sockjs_session_of_app_data(ds);
}

struct gw_delivery {
    const struct gw_config *cfg;
    struct pubsub_node *node;
    struct pubsub_hub *hub;
    struct pubsub_presence *presence;
    struct gw_list queries; /* struct browser_query, waiting for Redis */
    size_t n_queries;
    struct gw_timerq auth_q;
    struct gw_timerq ready_q;
    struct gw_deadlineq expiry; /* authenticated sessions by exp (wall clock) or grace end */
    struct gw_delivery_stats stats;
    struct gw_log_gate ready_unknown_log;
};

/* {"error": reason} to the session. */
static void send_notice(struct delivery_session *ds, const char *reason)
{
    json_t *obj = json_pack("{s:s}", "error", reason);
    char *text = json_dumps(obj, JSON_COMPACT);
    sockjs_session_send(session_of(ds), text, strlen(text));
    free(text);
    json_decref(obj);
}

/* The answer to a client message the session cannot act on. */
static void send_error(struct gw_delivery *d, struct delivery_session *ds, const char *reason)
{
    d->stats.malformed_messages++;
    send_notice(ds, reason);
}

static void unsubscribe_all(struct gw_delivery *d, struct delivery_session *ds)
{
    for (int i = 0; i < N_SUBS; i++)
        pubsub_hub_unsubscribe(d->hub, &ds->member.subs[i]);
}

/* Only in ST_WAITING or ST_ANONYMOUS (where the union is zero). */
static void stop_auth_wait(struct delivery_session *ds)
{
    if (!ds->auth)
        return;
    gw_timer_stop(&ds->auth->timer);
    gw_free(ds->auth);
    ds->auth = NULL;
}

/* Frees ds->extra once it holds nothing. */
static void trim_extra(struct delivery_session *ds)
{
    if (ds->extra && !ds->extra->ready && !ds->extra->filtering) {
        gw_free(ds->extra);
        ds->extra = NULL;
    }
}

static void drop_patterns(struct extra *x)
{
    for (uint32_t i = 0; x && i < x->n; i++)
        gw_free(x->patterns[i]);
}

static void clear_filters(struct delivery_session *ds)
{
    if (!ds->extra)
        return;
    drop_patterns(ds->extra);
    ds->extra->n = 0;
    ds->extra->filtering = false;
    trim_extra(ds);
}

/* Sets the filter from an array of strings; returns NULL or a reason. */
static const char *set_filters(struct delivery_session *ds, char *const *names, size_t n)
{
    if (n > MAX_FILTERS)
        return "too many event patterns";
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (len == 0 || len > MAX_FILTER_LEN)
            return "invalid event pattern";
    }
    drop_patterns(ds->extra);
    /* Even an empty filter is a filter: it lets nothing through. */
    struct extra *x = gw_realloc(ds->extra, sizeof(*x) + n * sizeof(x->patterns[0]));
    if (!ds->extra)
        x->ready = NULL;
    x->filtering = true;
    x->n = (uint32_t)n;
    for (size_t i = 0; i < n; i++)
        x->patterns[i] = gw_strdup(names[i]);
    ds->extra = x;
    return NULL;
}

static bool pattern_matches(const char *pattern, const char *event)
{
    size_t len = strlen(pattern);
    if (len && pattern[len - 1] == '*')
        return strncmp(pattern, event, len - 1) == 0;
    return strcmp(pattern, event) == 0;
}

static bool wanted(const struct delivery_session *ds, const char *event)
{
    const struct extra *x = ds->extra;
    if (!x || !x->filtering)
        return true;
    for (uint32_t i = 0; i < x->n; i++) {
        if (pattern_matches(x->patterns[i], event))
            return true;
    }
    return false;
}

static bool hold(struct gw_delivery *d, struct ready_wait *w, struct pubsub_message *msg);

static void on_hub_message(void *arg, struct pubsub_sub *sub, struct pubsub_message *msg)
{
    struct gw_delivery *d = arg;
    struct delivery_session *ds =
        GW_CONTAINER_OF(pubsub_member_of(sub, msg->scope), struct delivery_session, member);
    if (ds->extra && ds->extra->ready &&
        (hold(d, ds->extra->ready, msg) || !sockjs_session_is_open(session_of(ds))))
        return;
    if (!wanted(ds, msg->event)) {
        d->stats.filtered++;
        return;
    }
    d->stats.deliveries++;
    /* Publish latency, once per (publish, channel) message, at its first recipient: one clock
     * read per message, none per further recipient. The frame is queued on the connection
     * here and written by the end-of-turn flush of this same loop turn, so this leaves out
     * only that flush (observing at the write would need the message's time carried per
     * connection write, on the fan-out's hot path). */
    if (!msg->latency_seen && msg->pub->accepted_us) {
        msg->latency_seen = true;
        uint64_t now = gw_wall_us();
        uint64_t t = msg->pub->accepted_us;
        gw_histogram_observe(&d->stats.publish_latency, now > t ? (double)(now - t) / 1e6 : 0);
    }
    /* May close the session (slow consumer), which unsubscribes this sub: the hub allows it. */
    sockjs_session_send_message(session_of(ds), msg);
}

static void subscribe(struct gw_delivery *d, struct delivery_session *ds, enum pubsub_scope scope,
                      const char *site, const char *id)
{
    char name[PUBSUB_CHANNEL_NAME_MAX];
    pubsub_channel_name(name, sizeof(name), scope, site, id);
    pubsub_hub_subscribe(d->hub, &ds->member.subs[scope], name);
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* Until a token's exp (seconds), then for the grace period. */
static void set_expiry(struct gw_delivery *d, struct delivery_session *ds, int64_t exp)
{
    ds->expiry.in_grace = 0;
    uint64_t ms = exp <= 0                              ? 0
                  : (uint64_t)exp >= UINT64_MAX / 1000u ? UINT64_MAX
                                                        : (uint64_t)exp * 1000u;
    gw_deadline_set(&d->expiry, &ds->expiry.timer, ms);
}

static void on_expiry(uint32_t *timer, void *arg)
{
    struct gw_delivery *d = arg;
    struct delivery_session *ds =
        (struct delivery_session *)((char *)timer - offsetof(struct delivery_session, expiry));
    if (ds->expiry.in_grace || d->cfg->token_grace_ms == 0) {
        d->stats.auth_failures++;
        GW_INFO("session closed: token expired%s", ds->expiry.in_grace ? ", none renewed it" : "");
        if (!ds->expiry.in_grace)
            send_notice(ds, "token expired");
        sockjs_session_close(session_of(ds), 4002, "Token expired");
        return;
    }
    ds->expiry.in_grace = 1;
    gw_deadline_set(&d->expiry, &ds->expiry.timer,
                    gw_deadlineq_now_ms(&d->expiry) + d->cfg->token_grace_ms);
    /* May close the session (slow consumer), which takes it out of the queue. */
    send_notice(ds, "token expired");
}

/* Whether the user and client channels of id are the session's. */
static bool same_identity(const struct delivery_session *ds, const struct gw_identity *id)
{
    char name[PUBSUB_CHANNEL_NAME_MAX];
    pubsub_channel_name(name, sizeof(name), PUBSUB_SCOPE_USER, id->site, id->user);
    if (strcmp(name, pubsub_sub_channel(&ds->member.subs[SUB_USER])) != 0)
        return false;
    pubsub_channel_name(name, sizeof(name), PUBSUB_SCOPE_CLIENT, id->site, id->client);
    return strcmp(name, pubsub_sub_channel(&ds->member.subs[SUB_CLIENT])) == 0;
}

/* --- The ready message, recovery ------------------------------------------------------ */

/* What a session asked to recover: per scope, the position it saw last. */
struct recover {
    bool asked[N_SUBS];
    struct pubsub_position since[N_SUBS];
    bool bad; /* not a valid recover object: nothing is recovered, an error follows */
};

static const char *const scope_keys[N_SUBS] = {"user", "client", "global"};

/* {"user": {"seq": 17, "epoch": "..."}, ...}: any subset of the scopes. */
static void parse_recover(const json_t *obj, struct recover *rec)
{
    memset(rec, 0, sizeof(*rec));
    if (!json_is_object(obj)) {
        rec->bad = true;
        return;
    }
    size_t known = 0;
    for (int i = 0; i < N_SUBS; i++) {
        const json_t *pos = json_object_get(obj, scope_keys[i]);
        if (!pos)
            continue;
        known++;
        const json_t *seq = json_object_get(pos, "seq");
        const json_t *epoch = json_object_get(pos, "epoch");
        if (!json_is_object(pos) || !json_is_integer(seq) || json_integer_value(seq) < 0 ||
            !json_is_string(epoch) ||
            !pubsub_epoch_valid(json_string_value(epoch), json_string_length(epoch))) {
            rec->bad = true;
            continue;
        }
        rec->asked[i] = true;
        rec->since[i].seq = json_integer_value(seq);
        memcpy(rec->since[i].epoch, json_string_value(epoch), json_string_length(epoch) + 1);
    }
    if (known != json_object_size(obj))
        rec->bad = true;
}

/* The recover query parameter: URL-encoded JSON of the same object. */
static void parse_recover_param(const struct sockjs_open_info *info, struct recover *rec)
{
    memset(rec, 0, sizeof(*rec));
    char value[1024];
    long n = info->query
                 ? gw_query_param(info->query, info->query_len, "recover", value, sizeof(value))
                 : GW_ENOTFOUND;
    if (n == GW_ENOTFOUND)
        return;
    json_error_t err;
    json_t *obj = n >= 0 ? json_loadb(value, (size_t)n, 0, &err) : NULL;
    parse_recover(obj, rec);
    json_decref(obj);
}

static void ready_free(struct ready_wait *w)
{
    gw_timer_stop(&w->timer);
    for (uint32_t i = 0; i < w->n_held; i++)
        pubsub_message_unref(w->held[i]);
    gw_free(w->held);
    gw_free(w);
}

/* Forgets ds's ready message (its session closes or subscribes anew): what it held is counted
 * by the next answer, or never to be sent. */
static void cancel_ready(struct delivery_session *ds)
{
    struct ready_wait *w = ds->extra ? ds->extra->ready : NULL;
    if (!w)
        return;
    if (w->req)
        pubsub_node_sync_cancel(w->req);
    ds->extra->ready = NULL;
    trim_extra(ds);
    ready_free(w);
}

/* "user":{"seq":17,"epoch":"e","recovered":true} at out (room for READY_POSITION_MAX bytes);
 * returns its length. */
#define READY_POSITION_MAX (48 + 20 + PUBSUB_EPOCH_MAX)
static size_t format_position(char *out, enum pubsub_scope scope, const struct pubsub_position *at,
                              bool asked, bool recovered)
{
    int n = at->seq >= 0
                ? snprintf(out, READY_POSITION_MAX, "\"%s\":{\"seq\":%" PRId64 ",\"epoch\":\"%s\"",
                           scope_keys[scope], at->seq, at->epoch)
                : snprintf(out, READY_POSITION_MAX, "\"%s\":{\"seq\":null,\"epoch\":null",
                           scope_keys[scope]);
    n += snprintf(out + n, READY_POSITION_MAX - (size_t)n, "%s}",
                  !asked      ? ""
                  : recovered ? ",\"recovered\":true"
                              : ",\"recovered\":false");
    return (size_t)n;
}

/* Which recovered channels of s to replay: all of them, unless their replay would fill more
 * than half of the session's queue limit (--max-queued-bytes), which would close the session
 * as a slow consumer, and the client would come back for the same replay. Those that do not fit
 * are reported as not recovered: the application refetches instead. */
static void plan_replay(const struct ready_wait *w, const struct pubsub_sync *s, bool *replay)
{
    uint32_t limit = w->d->cfg->max_queued_bytes;
    size_t budget = limit ? limit / 2 : SIZE_MAX, used = 0;
    for (size_t i = 0; i < w->n; i++) {
        replay[i] = s && s->ch[i].recovered;
        if (!replay[i] || !limit)
            continue;
        size_t bytes = 0;
        for (size_t k = 0; k < s->ch[i].n_missed; k++) {
            struct pubsub_message *m = s->ch[i].missed[k];
            if (wanted(w->ds, m->event))
                bytes += sockjs_message_form(m, SOCKJS_FORM_QUOTED)->len + 1;
        }
        if (bytes > budget - used) {
            replay[i] = false;
            w->d->stats.replay_too_large++;
            GW_INFO("session: not recovered, %zu missed messages (%zu bytes) would pass half of "
                    "--max-queued-bytes %" PRIu32,
                    s->ch[i].n_missed, bytes, limit);
            continue;
        }
        used += bytes;
    }
}

/* Sends what ds was waiting for: the ready message (positions from s, or unknown when s is
 * NULL), the missed messages, the held ones the answer does not count; then it is live. */
static void send_ready(struct ready_wait *w, const struct pubsub_sync *s)
{
    static const struct pubsub_position unknown = {.seq = -1};
    struct gw_delivery *d = w->d;
    struct delivery_session *ds = w->ds;
    struct sockjs_session *session = session_of(ds);
    /* Detached first: a send may close the session, which must not free w under us. */
    ds->extra->ready = NULL;
    trim_extra(ds);
    int64_t top[N_SUBS] = {-1, -1, -1};
    bool replay[PUBSUB_SYNC_MAX_CHANNELS];
    plan_replay(w, s, replay);
    /* On the stack: one allocation fewer per session open. */
    char ready[16 + PUBSUB_SYNC_MAX_CHANNELS * (READY_POSITION_MAX + 1)];
    size_t len = (size_t)snprintf(ready, sizeof(ready), "{\"ready\":{");
    for (size_t i = 0; i < w->n; i++) {
        enum pubsub_scope scope = w->scopes[i];
        bool recovered = replay[i];
        top[scope] = s ? s->ch[i].at.seq : -1;
        if (i)
            ready[len++] = ',';
        len += format_position(ready + len, scope, s ? &s->ch[i].at : &unknown, w->asked[i],
                               recovered);
        if (w->asked[i])
            recovered ? d->stats.recovered++ : d->stats.not_recovered++;
    }
    memcpy(ready + len, "}}", 2);
    len += 2;
    d->stats.ready++;
    sockjs_session_send(session, ready, len);
    if (w->bad_recover && sockjs_session_is_open(session))
        send_error(d, ds, "invalid recover");
    for (size_t i = 0; s && i < s->n; i++) {
        for (size_t k = 0; replay[i] && k < s->ch[i].n_missed && sockjs_session_is_open(session);
             k++) {
            struct pubsub_message *m = s->ch[i].missed[k];
            if (!wanted(ds, m->event))
                continue;
            d->stats.replayed++;
            sockjs_session_send_message(session, m);
        }
    }
    for (uint32_t i = 0; i < w->n_held && sockjs_session_is_open(session); i++) {
        struct pubsub_message *m = w->held[i];
        /* Counted by the answer: sent above, or published before the session subscribed. */
        if (m->seq >= 0 && m->seq <= top[m->scope])
            continue;
        if (!wanted(ds, m->event)) {
            d->stats.filtered++;
            continue;
        }
        d->stats.deliveries++;
        sockjs_session_send_message(session, m);
    }
    ready_free(w);
}

static void on_synced(void *arg, struct pubsub_sync *s)
{
    struct ready_wait *w = arg;
    w->req = NULL;
    send_ready(w, s);
}

/* The answer is late or too much was held: the ready message says the positions are unknown,
 * and nothing is recovered. */
static void give_up_ready(struct ready_wait *w, const char *why)
{
    /* One line per session would be one per open while Redis is slow: a million at once. */
    uint64_t held;
    if (gw_log_gate_open(&w->d->ready_unknown_log, 1000, &held))
        GW_INFO("session: ready message sent without positions (%s); %" PRIu64
                " more since the last such line",
                why, held);
    w->d->stats.ready_unknown++;
    if (w->req)
        pubsub_node_sync_cancel(w->req);
    w->req = NULL;
    send_ready(w, NULL);
}

static void on_ready_timeout(struct gw_timer *t, void *arg)
{
    (void)arg;
    give_up_ready(GW_CONTAINER_OF(t, struct ready_wait, timer), "no answer in time");
}

/* Holds msg until the ready message is sent; false when it gave up instead (the session is
 * live now, or closed). */
static bool hold(struct gw_delivery *d, struct ready_wait *w, struct pubsub_message *msg)
{
    if (w->n_held >= d->cfg->ready_max_held) {
        give_up_ready(w, "too many messages held back");
        return false;
    }
    if (w->n_held == w->cap_held) {
        w->cap_held = w->cap_held ? 2 * w->cap_held : 8;
        w->held = gw_realloc(w->held, w->cap_held * sizeof(*w->held));
    }
    w->held[w->n_held++] = pubsub_message_ref(msg);
    return true;
}

/* Subscribed anew: asks where the channels stand (and for what rec asked to recover). */
static void start_ready(struct gw_delivery *d, struct delivery_session *ds,
                        const struct recover *rec)
{
    cancel_ready(ds);
    struct ready_wait *w = gw_calloc(1, sizeof(*w));
    w->d = d;
    w->ds = ds;
    w->bad_recover = rec && rec->bad;
    gw_timer_init(&w->timer);
    struct pubsub_sync ask = {.n = 0};
    for (int i = 0; i < N_SUBS; i++) {
        const char *name = pubsub_sub_channel(&ds->member.subs[i]);
        if (!name)
            continue;
        struct pubsub_sync_channel *c = &ask.ch[ask.n];
        c->name = (char *)name;
        c->recover = rec && rec->asked[i];
        if (c->recover)
            c->since = rec->since[i];
        w->scopes[ask.n] = (enum pubsub_scope)i;
        w->asked[ask.n] = c->recover || w->bad_recover;
        ask.n++;
    }
    w->n = (uint8_t)ask.n;
    if (!ds->extra) {
        ds->extra = gw_malloc(sizeof(*ds->extra));
        *ds->extra = (struct extra){.ready = NULL};
    }
    ds->extra->ready = w;
    gw_timer_start(&w->timer, &d->ready_q);
    w->req = pubsub_node_sync(d->node, &ask, on_synced, w);
}

/* Closes a session whose token is refused, with one log line naming the failing claim and the
 * client; the token itself is never logged. */
static void refuse_token(struct gw_delivery *d, struct delivery_session *ds, int rc,
                         const struct gw_jwt_refusal *why)
{
    struct sockjs_session *s = session_of(ds);
    bool expired = rc == GW_EEXPIRED || rc == GW_ENOTYET;
    int code = expired ? 4002 : 4001;
    d->stats.auth_failures++;
    char text[128], peer[SOCKJS_PEER_MAX];
    GW_INFO("session refused: code=%d %s transport=%s client=%s", code,
            gw_jwt_describe(why, text, sizeof(text)),
            sockjs_transport_name(sockjs_session_transport(s)), sockjs_session_peer(s, peer));
    sockjs_session_close(s, code, expired ? "Token expired" : "Invalid token");
}

/* Verifies a token and subscribes the session; closes it when the token is bad. Returns
 * whether the session is still open. */
static bool authenticate(struct gw_delivery *d, struct delivery_session *ds, const char *token,
                         size_t len, const struct recover *rec)
{
    const struct gw_str_list *secrets = &d->cfg->jwt_secrets;
    /* Read at each token: a reload may change the lifetime limit. */
    const struct gw_jwt_policy policy = {
        .now = now_s(), .leeway_s = 0, .max_lifetime_s = d->cfg->max_token_lifetime_s};
    struct gw_identity id;
    struct gw_jwt_refusal why;
    int rc = gw_jwt_verify(token, len, secrets->items, secrets->n, &policy, &id, &why);
    if (rc != GW_OK) {
        refuse_token(d, ds, rc, &why);
        return false;
    }
    if (state_of(ds) == ST_AUTHENTICATED) {
        /* A fresh token for the same identity (site, user and company: the channels the
         * session has) renews the session, ending a grace period; another identity does not. */
        bool same = same_identity(ds, &id);
        if (same)
            set_expiry(d, ds, id.exp);
        gw_identity_cleanup(&id);
        if (!same)
            send_error(d, ds, "token for another identity");
        else if (rec)
            send_error(d, ds, "recover only with the first token");
        return true;
    }
    if (state_of(ds) == ST_ANONYMOUS)
        d->stats.open_anonymous--;
    d->stats.open_authenticated++;
    cancel_ready(ds);
    unsubscribe_all(d, ds);
    stop_auth_wait(ds);
    subscribe(d, ds, PUBSUB_SCOPE_USER, id.site, id.user);
    subscribe(d, ds, PUBSUB_SCOPE_CLIENT, id.site, id.client);
    subscribe(d, ds, PUBSUB_SCOPE_GLOBAL, id.site, NULL);
    /* Positions read before the join: the session's own presence.join comes after its ready
     * message, like everything published after it subscribed. */
    start_ready(d, ds, rec);
    pubsub_presence_join(d->presence, &ds->member);
    ds->expiry.querying = 0;
    ds->expiry.asked_ds = 0;
    if (id.events)
        set_filters(ds, id.events, id.n_events);
    set_expiry(d, ds, id.exp);
    d->stats.authenticated++;
    gw_identity_cleanup(&id);
    return true;
}

static void on_auth_timeout(struct gw_timer *t, void *arg)
{
    struct gw_delivery *d = arg;
    struct delivery_session *ds = GW_CONTAINER_OF(t, struct auth_wait, timer)->ds;
    stop_auth_wait(ds);
    if (state_of(ds) != ST_WAITING)
        return;
    GW_INFO("session closed: no token within %u ms", d->cfg->auth_timeout_ms);
    sockjs_session_close(session_of(ds), 4003, "Authentication required");
}

static void on_open(void *app, struct sockjs_session *s, const struct sockjs_open_info *info)
{
    struct gw_delivery *d = app;
    struct delivery_session *ds = sockjs_session_app_data(s);
    for (int i = 0; i < N_SUBS; i++)
        pubsub_sub_init(&ds->member.subs[i]);
    d->stats.sessions++;

    char value[GW_JWT_MAX_LEN + 1];
    long n = info->query
                 ? gw_query_param(info->query, info->query_len, "token", value, sizeof(value))
                 : GW_ENOTFOUND;
    if (n == GW_ELIMIT) {
        /* Longer than any token we accept: refused like any other bad token. */
        static const struct gw_jwt_refusal too_long = {"token", "too long"};
        refuse_token(d, ds, GW_ELIMIT, &too_long);
        return;
    }
    struct recover rec;
    if (n >= 0) {
        parse_recover_param(info, &rec);
        authenticate(d, ds, value, (size_t)n, &rec);
        return;
    }
    n = info->query ? gw_query_param(info->query, info->query_len, "site", value, sizeof(value))
                    : GW_ENOTFOUND;
    /* The same rule as a token's site claim: an invalid one is refused like a missing one. */
    if (n > 0 && d->cfg->allow_anonymous &&
        pubsub_name_valid(value, (size_t)n, GW_JWT_MAX_CLAIM_LEN, PUBSUB_NAME_SITE)) {
        subscribe(d, ds, PUBSUB_SCOPE_GLOBAL, value, NULL);
        d->stats.open_anonymous++;
        parse_recover_param(info, &rec);
        start_ready(d, ds, &rec);
        return;
    }
    ds->auth = gw_malloc(sizeof(*ds->auth));
    ds->auth->ds = ds;
    gw_timer_init(&ds->auth->timer);
    gw_timer_start(&ds->auth->timer, &d->auth_q);
}

/* --- Presence queries of the browser: its own company or its own user, nothing else ------ */

struct browser_query {
    struct gw_list link; /* in gw_delivery.queries while waiting */
    struct gw_delivery *d;
    struct delivery_session *ds;
    struct pubsub_presence_request *req;
    enum pubsub_scope scope;
};

static void on_presence_answer(void *arg, int rc, json_t *answers)
{
    struct browser_query *q = arg;
    struct gw_delivery *d = q->d;
    struct delivery_session *ds = q->ds;
    enum pubsub_scope scope = q->scope;
    if (!gw_list_empty(&q->link)) {
        gw_list_remove(&q->link);
        d->n_queries--;
    }
    gw_free(q);
    ds->expiry.querying = 0;
    if (rc != 0) {
        send_notice(ds, "presence unavailable");
        return;
    }
    json_t *answer = json_deep_copy(json_array_get(answers, 0));
    json_object_set_new(answer, "scope",
                        json_string(scope == PUBSUB_SCOPE_USER ? "user" : "client"));
    json_t *msg = json_pack("{s:o}", "presence", answer);
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    /* May close the session (slow consumer): nothing of it is used after. */
    sockjs_session_send(session_of(ds), text, strlen(text));
    free(text);
}

/* The reason to refuse, or NULL once asked. */
static const char *ask_presence(struct gw_delivery *d, struct delivery_session *ds,
                                const json_t *what)
{
    const char *scope_name = json_string_value(what);
    enum pubsub_scope scope;
    if (scope_name && strcmp(scope_name, "client") == 0)
        scope = PUBSUB_SCOPE_CLIENT;
    else if (scope_name && strcmp(scope_name, "user") == 0)
        scope = PUBSUB_SCOPE_USER;
    else
        return "presence scope must be client or user";
    if (state_of(ds) != ST_AUTHENTICATED)
        return "authenticate first";
    if (ds->expiry.querying)
        return "presence query in progress";
    /* A query costs the loop far more than the message asking it: at most one per interval
     * and session (deciseconds, in the session's spare bits). */
    uint32_t now_ds = (uint32_t)((gw_now_ms() / 100 + 1) & ASKED_DS_MASK);
    uint32_t interval_ds = (d->cfg->presence_query_interval_ms + 99) / 100;
    if (ds->expiry.asked_ds && ((now_ds - ds->expiry.asked_ds) & ASKED_DS_MASK) < interval_ds)
        return "presence queries too frequent";
    ds->expiry.asked_ds = now_ds ? now_ds : 1;
    if (d->n_queries >= MAX_BROWSER_QUERIES)
        return "presence busy";
    /* The session's own channel: "<scope>:<site>:<id>". */
    size_t site_len;
    const char *id;
    const char *site =
        pubsub_channel_parts(pubsub_sub_channel(&ds->member.subs[scope]), &site_len, &id);
    char site_copy[PUBSUB_NAME_MAX_BYTES + 1];
    memcpy(site_copy, site, site_len);
    site_copy[site_len] = '\0';
    struct browser_query *q = gw_malloc(sizeof(*q));
    *q = (struct browser_query){.d = d, .ds = ds, .scope = scope};
    gw_list_init(&q->link);
    ds->expiry.querying = 1;
    struct pubsub_presence_query query = {
        .scope = scope, .site = site_copy, .ids = &id, .n_ids = 1, .limit = BROWSER_PRESENCE_LIMIT};
    struct pubsub_presence_request *req =
        pubsub_presence_query(d->presence, &query, on_presence_answer, q);
    if (req) {
        q->req = req;
        gw_list_insert_tail(&d->queries, &q->link);
        d->n_queries++;
    }
    return NULL;
}

/* Withdraws ds's waiting query (its session closes). */
static void cancel_query(struct gw_delivery *d, struct delivery_session *ds)
{
    for (struct gw_list *l = d->queries.next; l != &d->queries; l = l->next) {
        struct browser_query *q = GW_CONTAINER_OF(l, struct browser_query, link);
        if (q->ds != ds)
            continue;
        pubsub_presence_cancel(q->req);
        gw_list_remove(&q->link);
        d->n_queries--;
        gw_free(q);
        break;
    }
    ds->expiry.querying = 0;
}

/* Why {"events": [...]} cannot be a filter, or NULL. */
static const char *filter_json_reason(const json_t *events)
{
    if (!json_is_array(events))
        return "events must be an array of strings";
    if (json_array_size(events) > MAX_FILTERS)
        return "too many event patterns";
    for (size_t i = 0; i < json_array_size(events); i++) {
        const json_t *v = json_array_get(events, i);
        if (!json_is_string(v))
            return "events must be an array of strings";
        if (json_string_length(v) == 0 || json_string_length(v) > MAX_FILTER_LEN)
            return "invalid event pattern";
    }
    return NULL;
}

/* Sets the session's filter from {"events": [...]} that filter_json_reason() accepted. */
static void set_filters_from_json(struct delivery_session *ds, const json_t *events)
{
    size_t n = json_array_size(events);
    char **names = gw_calloc(n ? n : 1, sizeof(*names));
    for (size_t i = 0; i < n; i++)
        names[i] = (char *)json_string_value(json_array_get(events, i));
    set_filters(ds, names, n);
    gw_free(names);
}

static void on_client_message(void *app, struct sockjs_session *s, const char *msg, size_t len)
{
    struct gw_delivery *d = app;
    struct delivery_session *ds = sockjs_session_app_data(s);
    json_error_t err;
    json_t *obj = json_loadb(msg, len, 0, &err);
    json_t *token = json_object_get(obj, "token");
    json_t *recover = json_object_get(obj, "recover");
    json_t *events = json_object_get(obj, "events");
    /* A token may come with what to recover and the filter, so that both apply to the
     * messages replayed after it. */
    size_t keys = json_object_size(obj) - (token ? (recover != NULL) + (events != NULL) : 0);
    if (!json_is_object(obj) || keys != 1) {
        send_error(d, ds, "expected one JSON object with one key");
        json_decref(obj);
        return;
    }
    json_t *presence = json_object_get(obj, "presence");
    const char *reason = NULL;
    if (presence) {
        reason = ask_presence(d, ds, presence);
    } else if (token) {
        struct recover rec;
        if (recover)
            parse_recover(recover, &rec);
        if (!json_is_string(token))
            reason = "token must be a string";
        else if (events)
            reason = filter_json_reason(events); /* refused whole, before authenticating */
        /* The replay goes out on a later turn: a filter set now applies to it. */
        if (!reason &&
            authenticate(d, ds, json_string_value(token), json_string_length(token),
                         recover ? &rec : NULL) &&
            events)
            set_filters_from_json(ds, events);
    } else if (events) {
        reason = filter_json_reason(events);
        if (!reason && state_of(ds) == ST_WAITING)
            reason = "authenticate first";
        if (!reason)
            set_filters_from_json(ds, events);
    } else {
        reason = "unknown message";
    }
    if (reason)
        send_error(d, ds, reason);
    json_decref(obj);
}

static const int close_codes[GW_CLOSE_KINDS - 2] = {1001, 1002, 4001, 4002, 4003, 4008};

const char *gw_delivery_close_label(unsigned i)
{
    static const char *const labels[GW_CLOSE_KINDS] = {"1001", "1002", "4001",    "4002",
                                                       "4003", "4008", "timeout", "other"};
    return i < GW_CLOSE_KINDS ? labels[i] : "other";
}

static void count_close(struct gw_delivery *d, int code)
{
    unsigned i = 0;
    while (i < GW_CLOSE_KINDS - 2 && close_codes[i] != code)
        i++;
    if (i == GW_CLOSE_KINDS - 2 && code == 0)
        i = GW_CLOSE_KINDS - 2; /* timeout */
    else if (i == GW_CLOSE_KINDS - 2)
        i = GW_CLOSE_KINDS - 1;
    d->stats.closes[i]++;
}

static void on_close(void *app, struct sockjs_session *s)
{
    struct gw_delivery *d = app;
    struct delivery_session *ds = sockjs_session_app_data(s);
    count_close(d, sockjs_session_close_code(s));
    cancel_ready(ds);
    int state = state_of(ds);
    if (state == ST_AUTHENTICATED)
        d->stats.open_authenticated--;
    else if (state == ST_ANONYMOUS)
        d->stats.open_anonymous--;
    if (state == ST_AUTHENTICATED) {
        gw_deadline_cancel(&d->expiry, &ds->expiry.timer);
        if (ds->expiry.querying)
            cancel_query(d, ds);
        pubsub_presence_leave(d->presence, &ds->member);
    } else {
        stop_auth_wait(ds);
    }
    unsubscribe_all(d, ds);
    clear_filters(ds);
}

/* "user=<sub> company=<client> site=<site>", read back from the session's channels (a copy of
 * the identity would cost every session); "-" for what the session does not have (anonymous
 * sessions only have a site, those waiting for their token nothing). */
static void describe(void *app, const struct sockjs_session *s, char *out, size_t cap)
{
    (void)app;
    const struct delivery_session *ds = sockjs_session_app_data(s);
    const char *user = pubsub_sub_channel(&ds->member.subs[SUB_USER]);
    const char *company = pubsub_sub_channel(&ds->member.subs[SUB_CLIENT]);
    const char *global = pubsub_sub_channel(&ds->member.subs[SUB_GLOBAL]);
    const char *user_id = "-", *company_id = "-", *site = "-", *no_id;
    size_t site_len = 1, ignored;
    if (global)
        site = pubsub_channel_parts(global, &site_len, &no_id);
    if (user)
        pubsub_channel_parts(user, &ignored, &user_id);
    if (company)
        pubsub_channel_parts(company, &ignored, &company_id);
    snprintf(out, cap, "user=%s company=%s site=%.*s", user_id, company_id, (int)site_len, site);
}

const struct sockjs_app_ops gw_delivery_app_ops = {
    .name = "delivery",
    .on_open = on_open,
    .on_message = on_client_message,
    .on_close = on_close,
    .session_data_size = sizeof(struct delivery_session),
    .describe = describe,
};

struct gw_delivery *gw_delivery_new(struct event_base *base, const struct gw_config *cfg,
                                    struct pubsub_node *node)
{
    struct gw_delivery *d = gw_calloc(1, sizeof(*d));
    d->cfg = cfg;
    d->node = node;
    d->hub = pubsub_node_hub(node);
    d->presence = pubsub_node_presence(node);
    gw_list_init(&d->queries);
    gw_histogram_init(&d->stats.publish_latency, gw_latency_bounds, gw_latency_n_bounds);
    pubsub_node_set_subscriber(node, on_hub_message, d);
    gw_timerq_init(&d->auth_q, base, cfg->auth_timeout_ms, on_auth_timeout, d);
    gw_timerq_init(&d->ready_q, base, cfg->ready_wait_ms, on_ready_timeout, d);
    /* Wall clock (exp is), looked at least once a minute in case it was set forward. */
    gw_deadlineq_init(&d->expiry, base, CLOCK_REALTIME, 60000, on_expiry, d);
    return d;
}

const struct gw_delivery_stats *gw_delivery_stats(const struct gw_delivery *d)
{
    return &d->stats;
}

void gw_delivery_free(struct gw_delivery *d)
{
    gw_timerq_cleanup(&d->auth_q);
    gw_timerq_cleanup(&d->ready_q);
    gw_deadlineq_cleanup(&d->expiry);
    gw_free(d);
}
