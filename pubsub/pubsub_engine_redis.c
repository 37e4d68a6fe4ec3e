/* Redis engine: every node hears every publish and filters locally.
 *
 * Each node keeps three hiredis async connections per Redis instance ("shard"): one for publishes
 * and syncs, one that SUBSCRIBEs to PUBSUB_REDIS_CHANNEL, and a side one for other modules'
 * commands (presence), so that those never wait behind a backlog of publishes and syncs, nor
 * a broadcast behind theirs. A publish addresses channels
 * (`<scope>:<site>:<id>`, or `global:<site>`); each channel belongs to shard
 * gw_fnv32(channel name) % n_shards, so that its sequence counter lives on one instance.
 * A publish whose channels fall on several shards is split: for global, one sub-publish per
 * shard holding that shard's sites; for user and client, one per (shard, site) holding that
 * site's ids on the shard. Within a channel, order is kept (one connection per shard, replies
 * in order); across shards it is not.
 *
 * Every sub-publish is one EVALSHA of SCRIPT (loaded with SCRIPT LOAD when the command
 * connection comes up; EVAL when Redis answers NOSCRIPT) in its publish mode:
 *   KEYS    = "sockjs-gateway:chan:<channel>" for each channel of the sub-publish, site-major:
 *             a hash of the channel's counter `s` and epoch `e`
 *   ARGV    = "p", the sub-publish as pubsub_publish_to_json() writes it without "seqs",
 *             PUBSUB_SEQ_TTL_MS, the history size and TTL (ms), an epoch for counters made
 *             now, and the history entry "<event>\n<data>"
 * The script advances every counter (a new one gets the epoch given and loses any history
 * left of an earlier life), appends "<seq>\n<event>\n<data>" to the channel's history list
 * "sockjs-gateway:history:<channel>" (trimmed to the size, expiring after the TTL), and
 * PUBLISHes `{"seqs":[s1,...],` followed by the publish without its leading `{`, so the message
 * heard is the same object with "seqs" first. Backends may PUBLISH a publish object directly
 * (no seqs, no history; delivered with seqs == NULL).
 *
 * A sync is the same script in its query mode, one command per shard of its channels: it reads
 * each counter (making one, with a new epoch, when there is none, so that a later first
 * message is not taken for a lost one), the history after each `since` asked, and then
 * PUBLISHes a barrier number to this engine's own channel "sockjs-gateway:sync:<nonce>", which
 * the subscriber connection of the shard also listens to. Every publish the script's answer
 * counts was published on the shard before the barrier, so once the barrier is heard they have
 * all been handed to the deliver callback: the sync is done when both its answer and its
 * barrier are in, for every shard it asked. A shard has one query in flight at most: the syncs
 * asked meanwhile wait, and go together as the next query (one script and one barrier for many
 * session opens), so that a Redis slower than the opens gets fewer, larger queries instead of
 * a growing backlog (in a 1M run, a backlog of single syncs took minutes to drain, and an
 * answer 180,000 sessions gave up waiting for came anyway).
 *
 * Connection states (one machine per connection, three per shard):
 *
 *        new / retry timer              handshake reply (SCRIPT LOAD, SUBSCRIBE or PING)
 *   IDLE ------------------> CONNECTING ------------------------------------> READY
 *    ^  (backoff timer)       |  lookup, connect or handshake error, timeout   |
 *    +------------------------+<-----------------------------------------------+
 *                                            connection lost (onDisconnect)
 *
 * CONNECTING first resolves a host name when the URL has one (pubsub_redis_url.h; evdns, at
 * every attempt, see dns_evbase), then connects and queues the handshake: AUTH when the URL has
 * a password (every connection), SELECT when it has a database (not the subscriber: pub/sub
 * ignores databases), then SCRIPT LOAD, SUBSCRIBE or PING. An error reply to AUTH or SELECT ends
 * the attempt like any handshake error: one WARN line per new reason, backoff, retry. Logs name a
 * shard by its masked URL (password as ***).
 *
 * The engine is available while every connection of every shard is READY. Retries back off
 * from 100 ms, doubling to 5 s, with ±25 % jitter; the backoff is reset only once a connection
 * has stayed up for BACKOFF_RESET_MS, so a server that accepts and then drops connections is
 * not hammered and the log gets one WARN/INFO pair per cycle at most.
 *
 * hiredis teardown rules followed here: a context is never freed from inside its own
 * onConnect/onDisconnect callback (hiredis frees it after they return); redisAsyncFree() from
 * inside a reply callback is deferred by hiredis until the callback returns. Before the engine
 * lets go of a context it sets ac->data = NULL, and every callback ignores contexts without
 * data, so callbacks that hiredis runs later (NULL replies, onDisconnect) never reach freed
 * engine memory. Per-command state (struct inflight) is owned by the reply callback, which
 * hiredis always calls exactly once (with NULL when the context goes away). */
#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "gw_alloc.h"
#include "gw_error.h"
#include "gw_log.h"
#include "gw_timerq.h"
#include "pubsub_channel.h"
#include "pubsub_engine.h"
#include "pubsub_hub.h"
#include "pubsub_redis_url.h"

/* The channel every node subscribes to on every shard. */
#define PUBSUB_REDIS_CHANNEL "sockjs-gateway:publish"
/* Prefix of the per-channel counters (hashes of seq and epoch), and of their histories. */
#define PUBSUB_REDIS_SEQ_PREFIX "sockjs-gateway:chan:"
#define PUBSUB_REDIS_HISTORY_PREFIX "sockjs-gateway:history:"
#define PUBSUB_REDIS_SYNC_PREFIX "sockjs-gateway:sync:"

/* Bounded memory: a publish is refused (GW_EAGAIN, counted as dropped) when the shard's command
 * connection already awaits this many replies, or when the commands awaiting a reply (their
 * arguments, an upper bound of what sits unwritten in hiredis' output buffer) plus the new one
 * would pass this many bytes. A single publish larger than the byte limit is always refused. */
#define PUBSUB_REDIS_MAX_PENDING 10000u
#define PUBSUB_REDIS_MAX_PENDING_BYTES ((size_t)64 * 1024 * 1024)

/* The most channels one sync query carries (those of ~200 session opens): more wait for the
 * next one. */
#define SYNC_BATCH_MAX_CHANNELS 600u

/* How long a counter made by a query lives without a message when history never expires. */
#define PUBSUB_QUERY_COUNTER_TTL_MS (300u * 1000u)

#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 5000u
#define BACKOFF_RESET_MS 5000u
/* From redisAsyncConnect() to the handshake reply. */
#define CONNECT_TIMEOUT_MS 5000u
/* At most one line per interval for each kind of repeated warning. */
#define LOG_INTERVAL_MS 1000u
/* How often pending host name lookups are driven. */
#define DNS_POLL_MS 5u

/* Lua numbers print as integers up to 1e14 (%.14g), far beyond any counter here. */
static const char SCRIPT[] =
    "local P = '" PUBSUB_REDIS_SEQ_PREFIX "'\n"
    "local function hist(k) return '" PUBSUB_REDIS_HISTORY_PREFIX "' .. string.sub(k, #P + 1) end\n"
    "local function create(k, epoch, ttl)\n"
    "  redis.call('HSET', k, 'e', epoch)\n"
    "  redis.call('PEXPIRE', k, ttl)\n"
    "  redis.call('DEL', hist(k))\n"
    "end\n"
    "if ARGV[1] == 'p' then\n"
    "  local size, seqs = tonumber(ARGV[4]), {}\n"
    "  for i = 1, #KEYS do\n"
    "    local k = KEYS[i]\n"
    "    local s = redis.call('HINCRBY', k, 's', 1)\n"
    "    if s == 1 and redis.call('HEXISTS', k, 'e') == 0 then create(k, ARGV[6], ARGV[3]) end\n"
    "    redis.call('PEXPIRE', k, ARGV[3])\n"
    "    if size > 0 then\n"
    "      local h = hist(k)\n"
    "      redis.call('RPUSH', h, s .. '\\n' .. ARGV[7])\n"
    "      redis.call('LTRIM', h, -size, -1)\n"
    "      redis.call('PEXPIRE', h, ARGV[5])\n"
    "    end\n"
    "    seqs[i] = s\n"
    "  end\n"
    "  redis.call('PUBLISH', '" PUBSUB_REDIS_CHANNEL "',\n"
    "    '{\"seqs\":[' .. table.concat(seqs, ',') .. '],' .. string.sub(ARGV[2], 2))\n"
    "  return #KEYS\n"
    "end\n"
    "local out = {}\n"
    "for i = 1, #KEYS do\n"
    "  local k = KEYS[i]\n"
    "  local v = redis.call('HMGET', k, 's', 'e')\n"
    "  local s, e = tonumber(v[1]) or 0, v[2]\n"
    "  if not e then create(k, ARGV[3], ARGV[2]); e = ARGV[3] end\n"
    "  local since, flag, missed = tonumber(ARGV[4 + 2 * i]), -1, {}\n"
    "  if since >= 0 then\n"
    "    flag = 0\n"
    "    if ARGV[5 + 2 * i] == e and since <= s then\n"
    "      local n = s - since\n"
    "      if n > 0 then missed = redis.call('LRANGE', hist(k), -n, -1) end\n"
    "      if #missed == n and (n == 0 or tonumber(string.match(missed[1], '^%d+')) == since + 1)"
    " then\n"
    "        flag = 1\n"
    "      else\n"
    "        missed = {}\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  out[i] = {s, e, flag, missed}\n"
    "end\n"
    "redis.call('PUBLISH', ARGV[4], ARGV[5])\n"
    "return out\n";

enum conn_kind { CONN_CMD, CONN_SUB, CONN_SIDE };
enum conn_state { CONN_IDLE, CONN_CONNECTING, CONN_READY };
enum shard_logged { SHARD_LOGGED_NONE, SHARD_LOGGED_UP, SHARD_LOGGED_DOWN };

struct redis_shard;
struct redis_conn;

/* A host name being resolved for a connection; freed by its callback, which evdns always runs
 * (with EVUTIL_EAI_CANCEL when cancelled). conn is NULL once the connection let go of it. */
struct dns_wait {
    struct redis_engine *e;
    struct redis_conn *conn;
    struct evdns_getaddrinfo_request *req;
};

struct redis_conn {
    struct redis_shard *shard;
    redisAsyncContext *ac; /* NULL in IDLE and while resolving */
    struct dns_wait *dns;  /* the host name being resolved (CONNECTING, no ac yet) */
    struct event *timer;   /* retry in IDLE, handshake deadline in CONNECTING */
    enum conn_kind kind;
    enum conn_state state;
    bool ever_ready;
    uint32_t backoff_ms;
    uint64_t ready_at_ms;
    uint32_t pending;     /* replies awaited (command connection) */
    size_t pending_bytes; /* argument bytes of those commands */
};

struct redis_shard {
    struct redis_engine *e;
    struct gw_list barrier_waits; /* struct sync_part, by barrier number */
    struct gw_list sync_waiting;  /* struct sync_part, for the query in flight to be answered */
    bool querying;                /* a sync query is in flight */
    uint64_t barriers;            /* the last barrier number sent */
    struct pubsub_redis_url url;
    const char *name; /* url.masked: for logs, never the password */
    struct redis_conn cmd, sub, side;
    enum shard_logged logged;
    char logged_reason[160]; /* of the last "cannot connect" line */
};

struct redis_engine {
    struct pubsub_engine base;
    struct event_base *evbase;
    /* Host names are resolved by evdns on a private event base, run from the loop by a timer
     * while lookups are pending (they are rare: connection attempts). Private so that freeing
     * the engine can run the callbacks of the lookups it cancels, which evdns defers, without
     * running anything else of the process: otherwise they would leak. NULL until a shard
     * names its host. */
    struct event_base *dns_evbase;
    struct evdns_base *dns;
    struct event *dns_poll;
    uint32_t dns_pending; /* lookups whose callback has not run */
    struct redis_shard *shards;
    size_t n_shards;
    struct pubsub_limits limits;
    size_t max_message_bytes;
    char sha[41]; /* of SCRIPT, from SCRIPT LOAD */
    struct gw_log_gate malformed_log, error_log;
    uint32_t rng;
    uint64_t epoch_rng;
    struct pubsub_history_settings history;
    /* This engine's barrier channel, PUBSUB_REDIS_SYNC_PREFIX + a random nonce. */
    char sync_channel[sizeof(PUBSUB_REDIS_SYNC_PREFIX) + 16];
    struct gw_list deferred; /* struct sync_op answered without Redis, done on the next turn */
    struct event *deferred_ev;
    bool in_deliver; /* inside the deliver callback */
    bool freed;      /* free() was called from inside it: free the struct on return */
};

/* Counts a publish as dropped once, however many sub-publishes it was split into. */
struct pub_track {
    uint32_t outstanding;
    bool lost;
};

/* A sync (pubsub_engine_ops.sync) being answered. */
struct sync_op {
    struct gw_list link; /* in redis_engine.deferred when no part reached Redis */
    struct pubsub_sync *s;
    void (*done)(void *arg);
    void *arg;
    uint32_t parts; /* outstanding */
};

/* The channels of a sync on one shard: one query, then its barrier. */
struct sync_part {
    /* In redis_shard.sync_waiting until sent, then in barrier_waits until the barrier is
     * heard. */
    struct gw_list link;
    struct sync_part *next_in_query; /* the parts one query carries */
    struct sync_op *op;
    uint64_t barrier;
    bool answered, barrier_heard;
    uint8_t n;
    uint8_t index[PUBSUB_SYNC_MAX_CHANNELS]; /* of op->s->ch */
};

struct inflight;
/* The end of a command: reply NULL when it was lost, c NULL when the engine let go of the
 * connection. */
typedef void (*inflight_done)(struct redis_conn *c, struct inflight *f, redisReply *reply);

/* One EVALSHA in flight; owned by its reply callback. argv[0..1] become EVAL + script text on
 * NOSCRIPT. */
struct inflight {
    inflight_done done;
    struct pub_track *track; /* publish: NULL when the publish was not split */
    struct sync_part *part;  /* query: the first of its parts */
    struct redis_shard *sync_shard;
    size_t bytes;
    int argc;
    const char **argv;
    size_t *argvlen;
};

static void conn_connect(struct redis_conn *c);
static void dns_abandon(struct redis_conn *c);
static void release_barriers(struct redis_shard *s, uint64_t barrier);

/* "" or " (N similar warnings suppressed)", for log lines. */
static const char *suppressed_note(uint64_t suppressed, char *buf, size_t cap)
{
    if (!suppressed)
        return "";
    snprintf(buf, cap, " (%" PRIu64 " similar warnings suppressed)", suppressed);
    return buf;
}

static uint32_t rng_next(struct redis_engine *e)
{
    /* xorshift32: jitter only. */
    uint32_t x = e->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    e->rng = x;
    return x;
}

static bool conn_ready(const struct redis_conn *c)
{
    return c->state == CONN_READY;
}

static bool shard_up(const struct redis_shard *s)
{
    return conn_ready(&s->cmd) && conn_ready(&s->sub) && conn_ready(&s->side);
}

/* One log line per change of a shard's state (both connections READY or not). */
static void shard_log_state(struct redis_shard *s, const char *reason)
{
    if (shard_up(s)) {
        if (s->logged != SHARD_LOGGED_UP)
            GW_INFO("redis %s: connected", s->name);
        s->logged = SHARD_LOGGED_UP;
        return;
    }
    if (!reason)
        return;
    /* While down, a line only when the reason changes (refused, then a wrong password): each
     * retry would otherwise log one. */
    if (s->logged == SHARD_LOGGED_UP)
        GW_WARN("redis %s: connection lost (%s); publishes refused until it is back", s->name,
                reason);
    else if (s->logged == SHARD_LOGGED_NONE || strcmp(s->logged_reason, reason) != 0)
        GW_WARN("redis %s: cannot connect (%s); retrying with backoff", s->name, reason);
    snprintf(s->logged_reason, sizeof(s->logged_reason), "%s", reason);
    s->logged = SHARD_LOGGED_DOWN;
}

static void timer_add_ms(struct event *ev, uint32_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000u, .tv_usec = (ms % 1000u) * 1000u};
    event_add(ev, &tv);
}

/* The connection is gone (its context freed or about to be freed by hiredis): back to IDLE,
 * retry after the backoff. */
static void conn_lost(struct redis_conn *c, const char *reason)
{
    struct redis_engine *e = c->shard->e;
    if (c->state == CONN_READY && gw_now_ms() - c->ready_at_ms >= BACKOFF_RESET_MS)
        c->backoff_ms = BACKOFF_MIN_MS;
    c->ac = NULL;
    c->state = CONN_IDLE;
    c->pending = 0;
    c->pending_bytes = 0;
    uint32_t d = c->backoff_ms;
    uint32_t delay = d - d / 4 + rng_next(e) % (d / 2 + 1);
    c->backoff_ms = d * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d * 2;
    timer_add_ms(c->timer, delay);
    /* What was published while it was down is lost to this node: no barrier to wait for. */
    if (c->kind == CONN_SUB)
        release_barriers(c->shard, UINT64_MAX);
    GW_DEBUG("redis %s: %s connection down (%s), retry in %" PRIu32 " ms", c->shard->name,
             c->kind == CONN_CMD   ? "command"
             : c->kind == CONN_SUB ? "subscriber"
                                   : "side",
             reason, delay);
    shard_log_state(c->shard, reason);
}

/* Lets go of the context from our side (handshake failure or timeout): callbacks that hiredis
 * still runs for it find no data and do nothing. */
static void conn_abandon(struct redis_conn *c, const char *reason)
{
    redisAsyncContext *ac = c->ac;
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac); /* deferred by hiredis when inside one of ac's reply callbacks */
    }
    dns_abandon(c);
    conn_lost(c, reason);
}

static void conn_set_ready(struct redis_conn *c)
{
    struct redis_engine *e = c->shard->e;
    event_del(c->timer);
    c->state = CONN_READY;
    c->ready_at_ms = gw_now_ms();
    if (c->ever_ready)
        e->base.stats.reconnects++;
    c->ever_ready = true;
    shard_log_state(c->shard, NULL);
    if (shard_up(c->shard) && e->base.shard_ready)
        e->base.shard_ready(e->base.shard_ready_arg, (size_t)(c->shard - e->shards));
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    struct redis_conn *c = cac->data;
    if (!c || status == REDIS_OK)
        return; /* wait for the handshake reply */
    /* hiredis frees the context when this returns, running the handshake callback with NULL
     * first: detach it. */
    redisAsyncContext *ac = c->ac;
    ac->data = NULL;
    conn_lost(c, cac->c.errstr[0] ? cac->c.errstr : "connect failed");
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    struct redis_conn *c = cac->data;
    if (!c)
        return;
    const char *reason = cac->c.err && cac->c.errstr[0] ? cac->c.errstr : "connection closed";
    conn_lost(c, reason);
}

/* The last handshake step got a reply that is not the one expected: this attempt ends. */
static void handshake_failed(struct redis_conn *c, const char *what, const redisReply *reply)
{
    char reason[160];
    snprintf(reason, sizeof(reason), "%s failed: %.120s", what,
             reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    conn_abandon(c, reason);
}

static void script_load_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct redis_conn *c = ac->data;
    redisReply *reply = r;
    if (!c || !reply)
        return; /* on_disconnect follows, or the context was abandoned */
    if (reply->type == REDIS_REPLY_STRING && reply->len == 40) {
        memcpy(c->shard->e->sha, reply->str, 40);
        c->shard->e->sha[40] = '\0';
        conn_set_ready(c);
        return;
    }
    handshake_failed(c, "SCRIPT LOAD", reply);
}

static void deliver_message(struct redis_engine *e, const char *msg, size_t len);

static void sub_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct redis_conn *c = ac->data;
    redisReply *reply = r;
    if (!c || !reply)
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING) {
        if (c->state != CONN_READY)
            handshake_failed(c, "SUBSCRIBE", reply);
        return;
    }
    const char *kind = reply->element[0]->str;
    if (strcmp(kind, "subscribe") == 0) {
        if (c->state == CONN_CONNECTING)
            conn_set_ready(c);
        return;
    }
    if (strcmp(kind, "message") != 0 || reply->element[2]->type != REDIS_REPLY_STRING)
        return;
    if (reply->element[1]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[1]->str, c->shard->e->sync_channel) == 0) {
        release_barriers(c->shard, strtoull(reply->element[2]->str, NULL, 10));
        return;
    }
    /* After this call, c may be freed (free() from inside the deliver callback). */
    deliver_message(c->shard->e, reply->element[2]->str, reply->element[2]->len);
}

#define NOT_A_PUBLISH "a message on " PUBSUB_REDIS_CHANNEL " that is not a valid publish"

static void count_malformed(struct redis_engine *e, const char *what, const char *why)
{
    e->base.stats.malformed++;
    uint64_t suppressed;
    char note[64];
    if (gw_log_gate_open(&e->malformed_log, LOG_INTERVAL_MS, &suppressed))
        GW_WARN("redis: ignored %s (%s)%s", what, why,
                suppressed_note(suppressed, note, sizeof(note)));
}

static void deliver_message(struct redis_engine *e, const char *msg, size_t len)
{
    if (len > e->max_message_bytes) {
        count_malformed(e, NOT_A_PUBLISH, "too large");
        return;
    }
    json_error_t jerr;
    json_t *obj = json_loadb(msg, len, 0, &jerr);
    if (!obj) {
        count_malformed(e, NOT_A_PUBLISH, "not JSON");
        return;
    }
    struct pubsub_publish *pub;
    const char *error = NULL;
    int rc = pubsub_publish_from_json(obj, &e->limits, &pub, &error);
    json_decref(obj);
    if (rc != 0) {
        count_malformed(e, NOT_A_PUBLISH, error);
        return;
    }
    e->base.stats.delivered++;
    e->in_deliver = true;
    e->base.deliver(e->base.deliver_arg, pub);
    e->in_deliver = false;
    pubsub_publish_unref(pub);
    if (e->freed)
        gw_free(e);
}

static void inflight_free(struct inflight *f)
{
    gw_free(f);
}

static void eval_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct redis_conn *c = ac->data;
    struct inflight *f = priv;
    redisReply *reply = r;
    if (c) {
        c->pending--;
        c->pending_bytes -= f->bytes;
    }
    if (c && reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0 &&
        strcmp(f->argv[0], "EVALSHA") == 0) {
        /* The script cache was flushed: send the script itself. */
        f->bytes -= f->argvlen[0] + f->argvlen[1];
        f->argv[0] = "EVAL";
        f->argv[1] = SCRIPT;
        f->argvlen[0] = 4;
        f->argvlen[1] = sizeof(SCRIPT) - 1;
        f->bytes += f->argvlen[0] + f->argvlen[1];
        if (redisAsyncCommandArgv(ac, eval_cb, f, f->argc, f->argv, f->argvlen) == REDIS_OK) {
            c->pending++;
            c->pending_bytes += f->bytes;
            return;
        }
        reply = NULL;
    }
    f->done(c, f, reply);
    inflight_free(f);
}

/* An error reply of the script, logged once per interval. */
static void log_script_error(struct redis_conn *c, const char *what, const redisReply *reply)
{
    uint64_t suppressed;
    char note[64];
    if (gw_log_gate_open(&c->shard->e->error_log, LOG_INTERVAL_MS, &suppressed))
        GW_WARN("redis %s: %s failed: %.200s%s", c->shard->name, what, reply->str,
                suppressed_note(suppressed, note, sizeof(note)));
}

static void publish_done(struct redis_conn *c, struct inflight *f, redisReply *reply)
{
    bool lost = !reply || reply->type == REDIS_REPLY_ERROR;
    if (c && reply && reply->type == REDIS_REPLY_ERROR)
        log_script_error(c, "publish", reply);
    struct pub_track *t = f->track;
    if (t) {
        t->lost |= lost;
        if (--t->outstanding)
            return;
        lost = t->lost;
        gw_free(t);
    }
    if (lost && c)
        c->shard->e->base.stats.dropped++;
}

/* An EVALSHA of argc arguments, the first three (EVALSHA, sha, numkeys) set here, and room for
 * `strings` bytes of the others, which the caller adds with inflight_put(). */
static struct inflight *inflight_alloc(struct redis_engine *e, size_t argc, size_t n_keys,
                                       size_t strings, inflight_done done, char **next)
{
    strings += 24;
    struct inflight *f = gw_malloc(sizeof(*f) + argc * (sizeof(char *) + sizeof(size_t)) + strings);
    *f = (struct inflight){.done = done, .argc = (int)argc};
    f->argv = (const char **)(f + 1);
    f->argvlen = (size_t *)(f->argv + argc);
    char *p = (char *)(f->argvlen + argc);
    f->argv[0] = "EVALSHA";
    f->argvlen[0] = 7;
    f->argv[1] = e->sha;
    f->argvlen[1] = 40;
    f->argv[2] = p;
    f->argvlen[2] = (size_t)snprintf(p, 24, "%zu", n_keys);
    *next = p + f->argvlen[2] + 1;
    return f;
}

/* Argument k: len bytes of str, NUL-terminated, at *next. */
static void inflight_put(struct inflight *f, size_t k, char **next, const char *str, size_t len)
{
    memcpy(*next, str, len);
    (*next)[len] = '\0';
    f->argv[k] = *next;
    f->argvlen[k] = len;
    *next += len + 1;
}

/* Argument k: the key of a channel, its prefix and then its name. */
static void inflight_put_key(struct inflight *f, size_t k, char **next, const char *name,
                             size_t len)
{
    size_t prefix = sizeof(PUBSUB_REDIS_SEQ_PREFIX) - 1;
    memcpy(*next, PUBSUB_REDIS_SEQ_PREFIX, prefix);
    memcpy(*next + prefix, name, len);
    (*next)[prefix + len] = '\0';
    f->argv[k] = *next;
    f->argvlen[k] = prefix + len;
    *next += prefix + len + 1;
}

/* The bytes a channel's key takes among the arguments, NUL included. */
static size_t key_bytes(size_t name_len)
{
    return sizeof(PUBSUB_REDIS_SEQ_PREFIX) + name_len;
}

static void inflight_count_bytes(struct inflight *f)
{
    f->bytes = 0;
    for (int i = 0; i < f->argc; i++)
        f->bytes += f->argvlen[i];
}

/* A new epoch: 16 hex digits from a per-process random sequence (xorshift64*, seeded by
 * getrandom), unique across the nodes of a cluster in practice. */
static void new_epoch(struct redis_engine *e, char out[17])
{
    uint64_t x = e->epoch_rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    e->epoch_rng = x;
    snprintf(out, 17, "%016" PRIx64, (uint64_t)(x * 0x2545F4914F6CDD1DULL));
}

/* Builds the EVALSHA of one sub-publish: the channels of `sub` (all of them on one shard). */
static struct inflight *inflight_new(struct redis_engine *e, const struct pubsub_publish *sub)
{
    size_t n_keys = pubsub_publish_channels(sub);
    size_t json_len;
    char *json = pubsub_publish_to_json(sub, &json_len);
    char ttl[24], size[24], history_ttl[24], epoch[17];
    int ttl_len = snprintf(ttl, sizeof(ttl), "%u", PUBSUB_SEQ_TTL_MS);
    int size_len = snprintf(size, sizeof(size), "%u", e->history.size);
    int history_ttl_len = snprintf(history_ttl, sizeof(history_ttl), "%u", e->history.ttl_ms);
    new_epoch(e, epoch);
    /* The history entry after its seq: "<event>\n<data>" (neither holds a raw newline). */
    size_t event_len = strlen(sub->event);
    size_t entry_len = e->history.size ? event_len + 1 + sub->data_len : 0;
    size_t strings = 2 + json_len + 1 + (size_t)ttl_len + 1 + (size_t)size_len + 1 +
                     (size_t)history_ttl_len + 1 + 17 + entry_len + 1;
    char name[PUBSUB_CHANNEL_NAME_MAX];
    for (size_t i = 0; i < n_keys; i++)
        strings += key_bytes(pubsub_channel_name_of(sub, i, name, sizeof(name)));
    size_t argc = 3 + n_keys + 7;
    char *p;
    struct inflight *f = inflight_alloc(e, argc, n_keys, strings, publish_done, &p);
    size_t k = 3;
    /* The keys, site-major like the channels. */
    for (size_t i = 0; i < n_keys; i++)
        inflight_put_key(f, k++, &p, name, pubsub_channel_name_of(sub, i, name, sizeof(name)));
    inflight_put(f, k++, &p, "p", 1);
    inflight_put(f, k++, &p, json, json_len);
    inflight_put(f, k++, &p, ttl, (size_t)ttl_len);
    inflight_put(f, k++, &p, size, (size_t)size_len);
    inflight_put(f, k++, &p, history_ttl, (size_t)history_ttl_len);
    inflight_put(f, k++, &p, epoch, 16);
    f->argv[k] = p;
    f->argvlen[k++] = entry_len;
    if (entry_len) {
        memcpy(p, sub->event, event_len);
        p[event_len] = '\n';
        memcpy(p + event_len + 1, sub->data, sub->data_len);
    }
    p[entry_len] = '\0';
    GW_ASSERT(k == argc);
    free(json);
    inflight_count_bytes(f);
    return f;
}

static void send_sub(struct redis_engine *e, struct redis_shard *s,
                     const struct pubsub_publish *sub, struct pub_track *t)
{
    struct redis_conn *c = &s->cmd;
    struct inflight *f = inflight_new(e, sub);
    f->track = t;
    c->pending++;
    c->pending_bytes += f->bytes;
    if (redisAsyncCommandArgv(c->ac, eval_cb, f, f->argc, f->argv, f->argvlen) != REDIS_OK) {
        /* Not expected while READY (hiredis refuses only when disconnecting): the callback
         * undoes the counts and accounts the publish as lost. */
        eval_cb(c->ac, NULL, f);
    }
}

/* Which shard each channel of a publish falls on, and the key bytes each shard gets. */
struct publish_plan {
    uint32_t *shard_of; /* per channel, site-major like pubsub_channel_name_of */
    size_t *key_bytes;  /* per shard */
    size_t shards_used;
};

static void plan_publish(const struct redis_engine *e, const struct pubsub_publish *pub,
                         struct publish_plan *plan)
{
    size_t n_ch = pubsub_publish_channels(pub);
    plan->shard_of = gw_malloc(n_ch * sizeof(*plan->shard_of));
    plan->key_bytes = gw_calloc(e->n_shards, sizeof(*plan->key_bytes));
    plan->shards_used = 0;
    char name[PUBSUB_CHANNEL_NAME_MAX];
    for (size_t k = 0; k < n_ch; k++) {
        size_t len = pubsub_channel_name_of(pub, k, name, sizeof(name));
        uint32_t sh = (uint32_t)(pubsub_channel_shard_hash(name, len) % e->n_shards);
        plan->shard_of[k] = sh;
        if (!plan->key_bytes[sh])
            plan->shards_used++;
        plan->key_bytes[sh] += sizeof(PUBSUB_REDIS_SEQ_PREFIX) + len;
    }
}

static void plan_cleanup(struct publish_plan *plan)
{
    gw_free(plan->shard_of);
    gw_free(plan->key_bytes);
}

/* Whether every shard the publish falls on can take its part now: a publish goes out whole or
 * not at all. The JSON is estimated by the data's bytes, once per sub-publish that can fall on
 * the shard (names are counted in the keys). */
static bool admit_publish(struct redis_engine *e, const struct pubsub_publish *pub,
                          const struct publish_plan *plan)
{
    for (size_t sh = 0; sh < e->n_shards; sh++) {
        if (!plan->key_bytes[sh])
            continue;
        const struct redis_conn *c = &e->shards[sh].cmd;
        size_t estimate = plan->key_bytes[sh] +
                          pub->data_len * (pub->scope == PUBSUB_SCOPE_GLOBAL ? 1 : pub->n_sites);
        if (c->pending >= PUBSUB_REDIS_MAX_PENDING ||
            c->pending_bytes > PUBSUB_REDIS_MAX_PENDING_BYTES ||
            estimate > PUBSUB_REDIS_MAX_PENDING_BYTES - c->pending_bytes) {
            uint64_t suppressed;
            char note[64];
            if (gw_log_gate_open(&e->error_log, LOG_INTERVAL_MS, &suppressed))
                GW_WARN("redis: publish refused, too many commands awaiting a reply (%u max, "
                        "%zu bytes max)%s",
                        PUBSUB_REDIS_MAX_PENDING, PUBSUB_REDIS_MAX_PENDING_BYTES,
                        suppressed_note(suppressed, note, sizeof(note)));
            return false;
        }
    }
    return true;
}

/* A publish over several shards: one sub-publish per shard (per site and shard for user and
 * client scopes), borrowing the publish's strings; only the pointer arrays are built. */
static void send_split(struct redis_engine *e, const struct pubsub_publish *pub,
                       const uint32_t *shard_of)
{
    struct pub_track *t = gw_calloc(1, sizeof(*t));
    t->outstanding = 1; /* held while sending, so that no callback can free it early */
    const char **names =
        gw_malloc((pub->n_ids > pub->n_sites ? pub->n_ids : pub->n_sites) * sizeof(*names));
    struct pubsub_publish sub = *pub;
    sub.refs = 1;
    sub.seqs = NULL;
    if (pub->scope == PUBSUB_SCOPE_GLOBAL) {
        for (size_t sh = 0; sh < e->n_shards; sh++) {
            uint32_t n = 0;
            for (uint32_t s = 0; s < pub->n_sites; s++)
                if (shard_of[s] == sh)
                    names[n++] = pub->sites[s];
            if (!n)
                continue;
            sub.sites = names;
            sub.n_sites = n;
            t->outstanding++;
            send_sub(e, &e->shards[sh], &sub, t);
        }
    } else {
        for (uint32_t s = 0; s < pub->n_sites; s++) {
            for (size_t sh = 0; sh < e->n_shards; sh++) {
                uint32_t n = 0;
                for (uint32_t i = 0; i < pub->n_ids; i++)
                    if (shard_of[(size_t)s * pub->n_ids + i] == sh)
                        names[n++] = pub->ids[i];
                if (!n)
                    continue;
                sub.sites = &pub->sites[s];
                sub.n_sites = 1;
                sub.ids = names;
                sub.n_ids = n;
                t->outstanding++;
                send_sub(e, &e->shards[sh], &sub, t);
            }
        }
    }
    gw_free(names);
    if (--t->outstanding == 0) {
        /* Every command already failed (not expected while READY). */
        if (t->lost)
            e->base.stats.dropped++;
        gw_free(t);
    }
}

static int redis_publish(struct pubsub_engine *base, struct pubsub_publish *pub)
{
    struct redis_engine *e = GW_CONTAINER_OF(base, struct redis_engine, base);
    if (!base->ops->available(base)) {
        base->stats.dropped++;
        return GW_EAGAIN;
    }
    struct publish_plan plan;
    plan_publish(e, pub, &plan);
    if (!admit_publish(e, pub, &plan)) {
        plan_cleanup(&plan);
        base->stats.dropped++;
        return GW_EAGAIN;
    }
    base->stats.published++;
    if (plan.shards_used == 1)
        send_sub(e, &e->shards[plan.shard_of[0]], pub, NULL);
    else
        send_split(e, pub, plan.shard_of);
    plan_cleanup(&plan);
    return 0;
}

static bool redis_available(const struct pubsub_engine *base)
{
    const struct redis_engine *e = GW_CONTAINER_OF(base, const struct redis_engine, base);
    for (size_t i = 0; i < e->n_shards; i++)
        if (!shard_up(&e->shards[i]))
            return false;
    return true;
}

static size_t redis_shards(const struct pubsub_engine *base)
{
    return GW_CONTAINER_OF(base, struct redis_engine, base)->n_shards;
}

/* A command of another module, on the command connection. */
struct command {
    pubsub_engine_reply_cb cb;
    void *arg;
    size_t bytes;
};

static void command_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct redis_conn *c = ac->data;
    struct command *cmd = priv;
    if (c) {
        c->pending--;
        c->pending_bytes -= cmd->bytes;
    }
    cmd->cb(cmd->arg, r);
    gw_free(cmd);
}

static int redis_command(struct pubsub_engine *base, size_t shard, enum pubsub_engine_conn conn,
                         int argc, const char **argv, const size_t *argvlen,
                         pubsub_engine_reply_cb cb, void *arg)
{
    struct redis_engine *e = GW_CONTAINER_OF(base, struct redis_engine, base);
    if (shard >= e->n_shards)
        return GW_EINVAL;
    struct redis_shard *s = &e->shards[shard];
    struct redis_conn *c = conn == PUBSUB_CONN_SIDE ? &s->side : &s->cmd;
    size_t bytes = 0;
    for (int i = 0; i < argc; i++)
        bytes += argvlen[i];
    if (!conn_ready(c) || c->pending >= PUBSUB_REDIS_MAX_PENDING ||
        c->pending_bytes > PUBSUB_REDIS_MAX_PENDING_BYTES ||
        bytes > PUBSUB_REDIS_MAX_PENDING_BYTES - c->pending_bytes)
        return GW_EAGAIN;
    struct command *cmd = gw_malloc(sizeof(*cmd));
    *cmd = (struct command){.cb = cb, .arg = arg, .bytes = bytes};
    if (redisAsyncCommandArgv(c->ac, command_cb, cmd, argc, argv, argvlen) != REDIS_OK) {
        gw_free(cmd);
        return GW_EAGAIN;
    }
    c->pending++;
    c->pending_bytes += bytes;
    return 0;
}

/* --- Syncs: positions, history, barriers ------------------------------------------------- */

/* The op is done on the next loop turn: never from inside a call of its asker (or of another
 * sync's, whose query failed with this one's). */
static void sync_op_part_done(struct redis_engine *e, struct sync_op *op)
{
    if (--op->parts == 0) {
        gw_list_insert_tail(&e->deferred, &op->link);
        event_active(e->deferred_ev, EV_TIMEOUT, 0);
    }
}

static void sync_part_check(struct redis_engine *e, struct sync_part *part)
{
    if (!part->answered || !part->barrier_heard)
        return;
    struct sync_op *op = part->op;
    gw_free(part);
    sync_op_part_done(e, op);
}

/* Forgets what an answer gave the part's channels: their positions are unknown. */
static void sync_part_unknown(struct sync_part *part)
{
    struct pubsub_sync *s = part->op->s;
    for (size_t j = 0; j < part->n; j++) {
        struct pubsub_sync_channel *ch = &s->ch[part->index[j]];
        for (size_t k = 0; k < ch->n_missed; k++)
            pubsub_message_unref(ch->missed[k]);
        ch->n_missed = 0;
        pubsub_sync_unknown(s, part->index[j]);
    }
}

/* A part whose positions stay unknown: no answer, no barrier to wait for (it leaves whichever
 * list it is in, waiting or barrier_waits). */
static void sync_part_fail(struct redis_engine *e, struct sync_part *part)
{
    sync_part_unknown(part);
    if (!part->barrier_heard) {
        gw_list_remove(&part->link);
        part->barrier_heard = true;
    }
    part->answered = true;
    sync_part_check(e, part);
}

/* The barrier of every part up to `barrier` has been heard on shard s (or never will be: the
 * subscriber connection went away, and with it whatever was published meanwhile). */
static void release_barriers(struct redis_shard *s, uint64_t barrier)
{
    while (!gw_list_empty(&s->barrier_waits)) {
        struct sync_part *part = GW_CONTAINER_OF(s->barrier_waits.next, struct sync_part, link);
        if (part->barrier > barrier)
            break;
        gw_list_remove(&part->link);
        part->barrier_heard = true;
        sync_part_check(s->e, part);
    }
}

/* Parses "<seq>\n<event>\n<data>" of channel i into a message; NULL when it is not one. */
static struct pubsub_message *history_message(struct redis_engine *e, const char *channel,
                                              const char *entry, size_t len)
{
    const char *end = entry + len;
    const char *nl1 = memchr(entry, '\n', len);
    const char *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1)) : NULL;
    if (!nl2 || nl1 == entry || nl1 - entry > 18)
        return NULL;
    int64_t seq = 0;
    for (const char *q = entry; q < nl1; q++) {
        if (*q < '0' || *q > '9')
            return NULL;
        seq = seq * 10 + (*q - '0');
    }
    const char *event = nl1 + 1;
    size_t event_len = (size_t)(nl2 - event);
    const char *data = nl2 + 1;
    size_t data_len = (size_t)(end - data);
    json_error_t jerr;
    json_t *check = data_len <= e->limits.max_data_bytes
                        ? json_loadb(data, data_len, JSON_DECODE_ANY, &jerr)
                        : NULL;
    if (!check || !pubsub_name_valid(event, event_len, e->limits.max_name_bytes, PUBSUB_NAME_ID)) {
        json_decref(check);
        return NULL;
    }
    json_decref(check);
    enum pubsub_scope scope = strncmp(channel, "user:", 5) == 0     ? PUBSUB_SCOPE_USER
                              : strncmp(channel, "client:", 7) == 0 ? PUBSUB_SCOPE_CLIENT
                                                                    : PUBSUB_SCOPE_GLOBAL;
    size_t site_len;
    const char *id;
    const char *site = pubsub_channel_parts(channel, &site_len, &id);
    struct pubsub_publish *pub = pubsub_publish_one(scope, site, site_len, id, id ? strlen(id) : 0,
                                                    event, event_len, data, data_len, seq);
    struct pubsub_message *m = pubsub_message_new(pub, 0);
    pubsub_publish_unref(pub);
    return m;
}

/* One channel's answer: [seq, epoch, recovered (-1 not asked, 0, 1), [entries...]]. */
static bool read_answer(struct redis_engine *e, struct pubsub_sync *s, size_t i,
                        const redisReply *r)
{
    struct pubsub_sync_channel *ch = &s->ch[i];
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[2]->type != REDIS_REPLY_INTEGER || r->element[3]->type != REDIS_REPLY_ARRAY ||
        !pubsub_epoch_valid(r->element[1]->str, r->element[1]->len))
        return false;
    ch->at.seq = r->element[0]->integer;
    memcpy(ch->at.epoch, r->element[1]->str, r->element[1]->len);
    ch->at.epoch[r->element[1]->len] = '\0';
    const redisReply *entries = r->element[3];
    if (r->element[2]->integer != 1 || !ch->recover)
        return true;
    for (size_t k = 0; k < entries->elements; k++) {
        const redisReply *en = entries->element[k];
        struct pubsub_message *m =
            en->type == REDIS_REPLY_STRING ? history_message(e, ch->name, en->str, en->len) : NULL;
        if (!m || m->seq != ch->since.seq + 1 + (int64_t)k) {
            pubsub_message_unref(m);
            count_malformed(e, "part of a sync answer", "a history entry is not a message");
            return true; /* not recovered: what is missing cannot be given */
        }
        pubsub_sync_add_missed(s, i, m);
    }
    ch->recovered = true;
    return true;
}

static void send_queries(struct redis_engine *e, struct redis_shard *s);

/* The answer of one query: each part's channels in turn. Then the syncs that waited for it go. */
static void query_done(struct redis_conn *c, struct inflight *f, redisReply *reply)
{
    struct redis_shard *shard = f->sync_shard;
    struct redis_engine *e = shard->e;
    size_t channels = 0;
    for (struct sync_part *p = f->part; p; p = p->next_in_query)
        channels += p->n;
    bool ok = c && reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == channels;
    if (c && reply && reply->type == REDIS_REPLY_ERROR)
        log_script_error(c, "sync", reply);
    size_t k = 0;
    for (struct sync_part *p = f->part, *next; p; p = next) {
        next = p->next_in_query;
        if (!ok) {
            sync_part_fail(e, p); /* the script did not run: no barrier will come */
            continue;
        }
        bool read = true;
        for (size_t j = 0; read && j < p->n; j++)
            read = read_answer(e, p->op->s, p->index[j], reply->element[k + j]);
        k += p->n;
        /* The script ran, so its barrier comes and still orders the publishes it counted
         * before this part's end, whatever the answer held. */
        if (!read) {
            count_malformed(e, "a sync answer",
                            "a channel's is not [seq, epoch, recovered, entries]");
            sync_part_unknown(p);
        }
        p->answered = true;
        sync_part_check(e, p);
    }
    shard->querying = false;
    send_queries(e, shard);
}

/* The query of the channels of every part from `first` on (their barrier number set). */
static struct inflight *query_new(struct redis_engine *e, struct sync_part *first, size_t channels)
{
    char ttl[24], barrier[24], epoch[17];
    /* A counter made by a query, for a channel without messages, lives only as long as a history:
     * subscribers of channels that never get a message (anonymous sessions of made-up sites)
     * cannot fill Redis. Should a message come later, its new epoch is an honest "false". */
    uint32_t create_ttl_ms = e->history.ttl_ms ? e->history.ttl_ms : PUBSUB_QUERY_COUNTER_TTL_MS;
    int ttl_len = snprintf(ttl, sizeof(ttl), "%u", create_ttl_ms);
    int barrier_len = snprintf(barrier, sizeof(barrier), "%" PRIu64, first->barrier);
    new_epoch(e, epoch);
    size_t channel_len = strlen(e->sync_channel);
    size_t strings = 2 + (size_t)ttl_len + 1 + 17 + channel_len + 1 + (size_t)barrier_len + 1;
    for (const struct sync_part *p = first; p; p = p->next_in_query) {
        for (size_t j = 0; j < p->n; j++) {
            const struct pubsub_sync_channel *ch = &p->op->s->ch[p->index[j]];
            bool recover = ch->recover && e->history.size;
            strings +=
                key_bytes(strlen(ch->name)) + 24 + (recover ? strlen(ch->since.epoch) : 0) + 1;
        }
    }
    size_t argc = 3 + channels + 5 + 2 * channels;
    char *next;
    struct inflight *f = inflight_alloc(e, argc, channels, strings, query_done, &next);
    f->part = first;
    size_t k = 3, v = 3 + channels + 5;
    for (const struct sync_part *p = first; p; p = p->next_in_query) {
        for (size_t j = 0; j < p->n; j++) {
            const struct pubsub_sync_channel *ch = &p->op->s->ch[p->index[j]];
            bool recover = ch->recover && e->history.size;
            char since[24];
            int since_len =
                snprintf(since, sizeof(since), "%" PRId64, recover ? ch->since.seq : (int64_t)-1);
            inflight_put_key(f, k++, &next, ch->name, strlen(ch->name));
            inflight_put(f, v++, &next, since, (size_t)since_len);
            inflight_put(f, v++, &next, recover ? ch->since.epoch : "",
                         recover ? strlen(ch->since.epoch) : 0);
        }
    }
    inflight_put(f, k++, &next, "q", 1);
    inflight_put(f, k++, &next, ttl, (size_t)ttl_len);
    inflight_put(f, k++, &next, epoch, 16);
    inflight_put(f, k++, &next, e->sync_channel, channel_len);
    inflight_put(f, k++, &next, barrier, (size_t)barrier_len);
    GW_ASSERT(k == 3 + channels + 5 && v == argc);
    inflight_count_bytes(f);
    return f;
}

static void on_deferred(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis_engine *e = arg;
    while (!gw_list_empty(&e->deferred)) {
        struct sync_op *op = GW_CONTAINER_OF(e->deferred.next, struct sync_op, link);
        gw_list_remove(&op->link);
        op->done(op->arg);
        gw_free(op);
    }
}

/* Sends the waiting syncs of shard s as one query (up to SYNC_BATCH_MAX_CHANNELS channels),
 * unless one is in flight: its answer sends them. Those that cannot be sent stay unknown. */
static void send_queries(struct redis_engine *e, struct redis_shard *s)
{
    if (s->querying || gw_list_empty(&s->sync_waiting))
        return;
    struct sync_part *first = NULL, **tail = &first;
    size_t channels = 0;
    uint64_t barrier = s->barriers + 1;
    while (!gw_list_empty(&s->sync_waiting)) {
        struct sync_part *p = GW_CONTAINER_OF(s->sync_waiting.next, struct sync_part, link);
        if (p->op->s->cancelled) {
            sync_part_fail(e, p); /* its session gave up waiting (or closed): no work for Redis */
            continue;
        }
        if (first && channels + p->n > SYNC_BATCH_MAX_CHANNELS)
            break;
        gw_list_remove(&p->link);
        gw_list_insert_tail(&s->barrier_waits, &p->link);
        p->barrier = barrier;
        p->next_in_query = NULL;
        *tail = p;
        tail = &p->next_in_query;
        channels += p->n;
    }
    if (!first)
        return; /* every waiting one was cancelled: no barrier number used */
    s->barriers = barrier;
    struct redis_conn *c = &s->cmd;
    if (shard_up(s) && c->pending < PUBSUB_REDIS_MAX_PENDING &&
        c->pending_bytes <= PUBSUB_REDIS_MAX_PENDING_BYTES) {
        struct inflight *f = query_new(e, first, channels);
        f->sync_shard = s;
        if (redisAsyncCommandArgv(c->ac, eval_cb, f, f->argc, f->argv, f->argvlen) == REDIS_OK) {
            c->pending++;
            c->pending_bytes += f->bytes;
            s->querying = true;
            return;
        }
        inflight_free(f);
    }
    for (struct sync_part *p = first, *next; p; p = next) {
        next = p->next_in_query;
        sync_part_fail(e, p);
    }
    /* Not sent: the rest cannot be either. */
    while (!gw_list_empty(&s->sync_waiting))
        sync_part_fail(e, GW_CONTAINER_OF(s->sync_waiting.next, struct sync_part, link));
}

static void redis_sync(struct pubsub_engine *base, struct pubsub_sync *s, void (*done)(void *arg),
                       void *arg)
{
    struct redis_engine *e = GW_CONTAINER_OF(base, struct redis_engine, base);
    struct sync_op *op = gw_calloc(1, sizeof(*op));
    *op = (struct sync_op){.s = s, .done = done, .arg = arg, .parts = 1};
    gw_list_init(&op->link);
    bool asked[PUBSUB_SYNC_MAX_CHANNELS] = {false};
    for (size_t i = 0; i < s->n; i++) {
        if (asked[i])
            continue;
        size_t shard =
            pubsub_channel_shard_hash(s->ch[i].name, strlen(s->ch[i].name)) % e->n_shards;
        struct sync_part *part = gw_calloc(1, sizeof(*part));
        part->op = op;
        /* The channels of the sync on the same shard go in one query. */
        for (size_t j = i; j < s->n; j++) {
            if (!asked[j] &&
                pubsub_channel_shard_hash(s->ch[j].name, strlen(s->ch[j].name)) % e->n_shards ==
                    shard) {
                asked[j] = true;
                part->index[part->n++] = (uint8_t)j;
            }
        }
        op->parts++;
        gw_list_insert_tail(&e->shards[shard].sync_waiting, &part->link);
        send_queries(e, &e->shards[shard]);
    }
    /* Held while sending, so that done() never runs inside this call. */
    sync_op_part_done(e, op);
}

static void conn_teardown(struct redis_conn *c)
{
    event_free(c->timer);
    c->timer = NULL;
    dns_abandon(c);
    /* Not ready any more before the pending callbacks run: one of them may send a command
     * (presence's drain steps do), which must be refused, not sent on a freed context. */
    c->state = CONN_IDLE;
    if (c->ac) {
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac); /* runs the pending callbacks, which find no data */
    }
}

static void redis_free(struct pubsub_engine *base)
{
    struct redis_engine *e = GW_CONTAINER_OF(base, struct redis_engine, base);
    for (size_t i = 0; i < e->n_shards; i++) {
        conn_teardown(&e->shards[i].cmd); /* answers the queries in flight as lost */
        conn_teardown(&e->shards[i].sub);
        conn_teardown(&e->shards[i].side);
        send_queries(e, &e->shards[i]); /* the waiting ones: down now, unknown */
        release_barriers(&e->shards[i], UINT64_MAX);
    }
    on_deferred(-1, 0, e);
    event_free(e->deferred_ev);
    if (e->dns) {
        /* The cancelled lookups' callbacks, deferred by evdns, free what they hold. */
        for (int i = 0; i < 100 && e->dns_pending; i++)
            event_base_loop(e->dns_evbase, EVLOOP_NONBLOCK);
        evdns_base_free(e->dns, 1);
        event_base_free(e->dns_evbase);
        event_free(e->dns_poll);
        e->dns = NULL;
    }
    gw_free(e->shards);
    e->shards = NULL;
    e->n_shards = 0;
    if (e->in_deliver)
        e->freed = true; /* deliver_message() frees the struct when the callback returns */
    else
        gw_free(e);
}

static const struct pubsub_engine_ops redis_ops = {
    .name = "redis",
    .publish = redis_publish,
    .available = redis_available,
    .free = redis_free,
    .shards = redis_shards,
    .command = redis_command,
    .sync = redis_sync,
};

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct redis_conn *c = arg;
    if (c->state == CONN_IDLE)
        conn_connect(c);
    else if (c->state == CONN_CONNECTING)
        conn_abandon(c, c->dns ? "timed out resolving the host name" : "timed out");
}

/* A handshake step before the last one (AUTH, SELECT): an error reply ends the attempt; the
 * steps queued after it then fail too, on a context nobody reads any more. */
static void handshake_step(redisAsyncContext *ac, redisReply *reply, const char *what)
{
    struct redis_conn *c = ac->data;
    if (!c || !reply || reply->type != REDIS_REPLY_ERROR)
        return; /* success: the last step's reply makes the connection ready */
    char reason[160];
    snprintf(reason, sizeof(reason), "%s refused: %.120s", what, reply->str);
    conn_abandon(c, reason);
}

static void auth_cb(redisAsyncContext *ac, void *r, void *priv)
{
    (void)priv;
    handshake_step(ac, r, "AUTH");
}

static void select_cb(redisAsyncContext *ac, void *r, void *priv)
{
    (void)priv;
    handshake_step(ac, r, "SELECT");
}

static void ping_cb(redisAsyncContext *ac, void *r, void *priv)
{
    (void)priv;
    struct redis_conn *c = ac->data;
    redisReply *reply = r;
    if (!c || !reply)
        return;
    if (reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0) {
        conn_set_ready(c);
        return;
    }
    handshake_failed(c, "PING", reply);
}

/* Queues the handshake: AUTH when the URL has a password (on every connection: each
 * authenticates itself), SELECT on the command and side connections (pub/sub ignores
 * databases), then SCRIPT LOAD, SUBSCRIBE or PING, whose reply makes the connection ready. */
static int queue_handshake(struct redis_conn *c, redisAsyncContext *ac)
{
    const struct redis_shard *s = c->shard;
    const struct pubsub_redis_url *u = &s->url;
    if (u->has_password) {
        const char *argv[3] = {"AUTH", u->user, u->password};
        size_t argvlen[3] = {4, strlen(u->user), strlen(u->password)};
        /* AUTH PASSWORD for the default user, AUTH USER PASSWORD for an ACL user. */
        int first = u->user[0] ? 0 : 1;
        argv[first] = "AUTH";
        argvlen[first] = 4;
        if (redisAsyncCommandArgv(ac, auth_cb, NULL, 3 - first, argv + first, argvlen + first) !=
            REDIS_OK)
            return -1;
    }
    if (c->kind != CONN_SUB && u->db >= 0 &&
        redisAsyncCommand(ac, select_cb, NULL, "SELECT %d", u->db) != REDIS_OK)
        return -1;
    int rc = c->kind == CONN_CMD
                 ? redisAsyncCommand(ac, script_load_cb, NULL, "SCRIPT LOAD %s", SCRIPT)
             : c->kind == CONN_SUB ? redisAsyncCommand(ac, sub_cb, NULL, "SUBSCRIBE %s %s",
                                                       PUBSUB_REDIS_CHANNEL, s->e->sync_channel)
                                   : redisAsyncCommand(ac, ping_cb, NULL, "PING");
    return rc == REDIS_OK ? 0 : -1;
}

/* Connects to addr (a numeric address; ignored for a unix socket). */
static void conn_open(struct redis_conn *c, const char *addr)
{
    struct redis_shard *s = c->shard;
    redisAsyncContext *ac = s->url.unix_socket ? redisAsyncConnectUnix(s->url.path)
                                               : redisAsyncConnect(addr, s->url.port);
    if (!ac) {
        conn_lost(c, "out of memory");
        return;
    }
    if (ac->err) {
        char reason[128];
        snprintf(reason, sizeof(reason), "%s", ac->errstr);
        redisAsyncFree(ac);
        conn_lost(c, reason);
        return;
    }
    if (redisLibeventAttach(ac, s->e->evbase) != REDIS_OK) {
        redisAsyncFree(ac);
        conn_lost(c, "cannot attach to the event loop");
        return;
    }
    ac->data = c;
    c->ac = ac;
    c->state = CONN_CONNECTING;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* Queued now, written once connected. */
    if (queue_handshake(c, ac) != 0) {
        conn_abandon(c, "cannot queue the handshake");
        return;
    }
    timer_add_ms(c->timer, CONNECT_TIMEOUT_MS);
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct dns_wait *w = arg;
    struct redis_conn *c = w->conn;
    w->e->dns_pending--;
    gw_free(w);
    /* IPv4 first: "localhost" and dual-stack names then reach a server bound to 127.0.0.1 or
     * 0.0.0.0, Redis' usual setups. */
    const struct evutil_addrinfo *pick = NULL;
    for (const struct evutil_addrinfo *a = res; a; a = a->ai_next) {
        if (a->ai_family == AF_INET) {
            pick = a;
            break;
        }
        if (a->ai_family == AF_INET6 && !pick)
            pick = a;
    }
    char addr[INET6_ADDRSTRLEN] = "";
    if (pick && pick->ai_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)pick->ai_addr)->sin_addr, addr,
                  sizeof(addr));
    else if (pick)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)pick->ai_addr)->sin6_addr, addr,
                  sizeof(addr));
    if (res)
        evutil_freeaddrinfo(res);
    if (!c)
        return; /* abandoned (timeout, engine freed) */
    c->dns = NULL;
    if (result != 0 || !addr[0]) {
        char reason[160];
        snprintf(reason, sizeof(reason), "cannot resolve %.64s: %s", c->shard->url.host,
                 result != 0 ? evutil_gai_strerror(result) : "no address");
        conn_lost(c, reason);
        return;
    }
    conn_open(c, addr);
}

/* Stops resolving c's host name, if it is; the callback still runs, and finds no connection. */
static void dns_abandon(struct redis_conn *c)
{
    struct dns_wait *w = c->dns;
    if (!w)
        return;
    c->dns = NULL;
    w->conn = NULL;
    if (w->req)
        evdns_getaddrinfo_cancel(w->req); /* may free w */
}

static bool is_numeric_address(const char *host)
{
    unsigned char addr[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

/* Each attempt resolves a host name anew (the address may move between restarts), on the
 * loop: evdns, never a blocking getaddrinfo. The handshake deadline covers the resolution. */
static void conn_connect(struct redis_conn *c)
{
    struct redis_shard *s = c->shard;
    if (s->url.unix_socket || is_numeric_address(s->url.host)) {
        conn_open(c, s->url.host);
        return;
    }
    struct dns_wait *w = gw_calloc(1, sizeof(*w));
    w->e = s->e;
    w->conn = c;
    c->dns = w;
    s->e->dns_pending++;
    c->state = CONN_CONNECTING;
    timer_add_ms(c->timer, CONNECT_TIMEOUT_MS);
    struct evutil_addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
    /* Answered at once (hosts file, cache) when it returns NULL: w is gone then. */
    struct evdns_getaddrinfo_request *req =
        evdns_getaddrinfo(s->e->dns, s->url.host, NULL, &hints, on_resolved, w);
    if (req) {
        w->req = req;
        if (!evtimer_pending(s->e->dns_poll, NULL))
            timer_add_ms(s->e->dns_poll, DNS_POLL_MS);
    }
}

static void dns_poll_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis_engine *e = arg;
    event_base_loop(e->dns_evbase, EVLOOP_NONBLOCK);
    if (e->dns_pending)
        timer_add_ms(e->dns_poll, DNS_POLL_MS);
}

static void conn_init(struct redis_engine *e, struct redis_shard *s, struct redis_conn *c,
                      enum conn_kind kind)
{
    c->shard = s;
    c->kind = kind;
    c->state = CONN_IDLE;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->timer = evtimer_new(e->evbase, conn_timer_cb, c);
    GW_ASSERT(c->timer != NULL);
}

struct pubsub_engine *pubsub_engine_redis_new(struct event_base *base, const char *const *urls,
                                              size_t n_urls, const struct pubsub_limits *limits,
                                              const struct pubsub_history_settings *history,
                                              pubsub_deliver_cb deliver, void *arg,
                                              const char **error)
{
    if (n_urls == 0) {
        *error = "no Redis URL";
        return NULL;
    }
    if (n_urls > 1024) {
        *error = "too many Redis URLs (1024 max)";
        return NULL;
    }
    struct redis_shard *shards = gw_calloc(n_urls, sizeof(*shards));
    bool names = false;
    for (size_t i = 0; i < n_urls; i++) {
        const char *reason;
        if (pubsub_redis_url_parse(urls[i], &shards[i].url, &reason) != 0) {
            /* Static: the error outlives this call, and the process is single-threaded. */
            static char message[PUBSUB_REDIS_MASKED_MAX + 400];
            snprintf(message, sizeof(message), "invalid Redis URL %s: %s", shards[i].url.masked,
                     reason);
            gw_free(shards);
            *error = message;
            return NULL;
        }
        shards[i].name = shards[i].url.masked;
        names |= !shards[i].url.unix_socket && !is_numeric_address(shards[i].url.host);
    }
    struct redis_engine *e = gw_calloc(1, sizeof(*e));
    e->base.ops = &redis_ops;
    e->base.deliver = deliver;
    e->base.deliver_arg = arg;
    e->evbase = base;
    if (names) {
        e->dns_evbase = event_base_new();
        GW_ASSERT(e->dns_evbase != NULL);
        e->dns = evdns_base_new(e->dns_evbase, EVDNS_BASE_INITIALIZE_NAMESERVERS);
        if (!e->dns) { /* without a usable resolv.conf, still the hosts file */
            e->dns = evdns_base_new(e->dns_evbase, 0);
            GW_ASSERT(e->dns != NULL);
            evdns_base_load_hosts(e->dns, NULL);
        }
        e->dns_poll = evtimer_new(base, dns_poll_cb, e);
        GW_ASSERT(e->dns_poll != NULL);
    }
    e->shards = shards;
    e->n_shards = n_urls;
    if (limits)
        e->limits = *limits;
    else
        pubsub_limits_defaults(&e->limits);
    /* The longest valid publish, escaping every name as \uXXXX and counting a seq of 20
     * digits for every channel: longer messages are rejected before parsing. */
    const struct pubsub_limits *l = &e->limits;
    e->max_message_bytes = 4096 + (size_t)l->max_data_bytes +
                           ((size_t)l->max_ids + l->max_sites + 1) * (l->max_name_bytes * 6 + 4) +
                           (size_t)l->max_channels * 21;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    e->rng = (uint32_t)ts.tv_nsec ^ (uint32_t)(uintptr_t)e ^ 0x9e3779b9u;
    if (!e->rng)
        e->rng = 1;
    if (history)
        e->history = *history;
    uint64_t nonce;
    if (getrandom(&nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
        nonce = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)e;
    e->epoch_rng = nonce | 1;
    snprintf(e->sync_channel, sizeof(e->sync_channel), PUBSUB_REDIS_SYNC_PREFIX "%016" PRIx64,
             nonce);
    gw_list_init(&e->deferred);
    e->deferred_ev = event_new(base, -1, 0, on_deferred, e);
    GW_ASSERT(e->deferred_ev != NULL);
    for (size_t i = 0; i < n_urls; i++) {
        struct redis_shard *s = &shards[i];
        s->e = e;
        gw_list_init(&s->barrier_waits);
        gw_list_init(&s->sync_waiting);
        conn_init(e, s, &s->cmd, CONN_CMD);
        conn_init(e, s, &s->sub, CONN_SUB);
        conn_init(e, s, &s->side, CONN_SIDE);
    }
    for (size_t i = 0; i < n_urls; i++) {
        conn_connect(&shards[i].cmd);
        conn_connect(&shards[i].sub);
        conn_connect(&shards[i].side);
    }
    return &e->base;
}
