/* Presence across nodes, through Redis.
 *
 * Each node owns its sessions' counts and writes them to the instance (shard) of each channel;
 * each Lua script does its changes atomically, so the cluster totals, the join/leave decisions
 * and the removal of a dead node happen once, on the node whose script made them:
 *
 *   <P>nodes             ZSET  node -> its last heartbeat (Redis's clock, ms)
 *   <P>c:<node>          SET   the channels node counts sessions in
 *   <P>n:<node>:<ch>     HASH  user -> node's sessions of user in ch
 *   <P>t:<ch>            HASH  user -> the cluster's sessions of user in ch
 *   <P>s:<ch>            the cluster's sessions in ch
 *   <P>i:<ch>            ZSET  (score 0) the users of company channel ch, for paging by id
 *   <P>g:<node>          HASH  channel -> the replace that last set node's counts in it
 *
 * A node changes its counts with deltas (all the session opens and closes of flush_ms, or of
 * one loop turn when it is 0, in one command per shard, so that a flood of opens costs Redis a
 * command per window, not one per session), and replaces them whole when Redis may have lost them:
 * when the shard's connection comes (back) up, at the next heartbeat after a change could not be
 * sent, and when the script finds the node unknown (Redis restarted, or the others found it
 * silent and dropped it). Everything goes on the engine's side connection (PUBSUB_CONN_SIDE),
 * and that connection's queue is kept short: one replace part at a time, and one apply of at
 * most CHANGES_PER_APPLY changes in flight. A heartbeat then waits behind little, so a busy node
 * does not look silent (behind a backlog of syncs, or of its own whole state, it did: the others
 * dropped it, it replaced again, and Redis spent minutes on replaces). A replace goes in parts of
 * whole channels (each part sets the node's counts in its channels and marks them with the
 * replace's generation), then an end that drops the node's counts in every channel no part marked:
 * no script holds Redis for a node's whole state at once. Replacing sends no joins (everyone would
 * "join" after a Redis restart), only the leaves of users no longer there. Heartbeats every
 * node_timeout_ms/4 keep the node alive and drop the nodes silent for three of those intervals, so
 * that a dead node is gone from every answer within node_timeout_ms of its last heartbeat (its
 * users' leaves go out then, from the node that dropped it). A dropped node's entries are drained a
 * part per script (3,000 entries; 1,000 in every heartbeat), by the node that dropped it, one drain
 * command at a time. A heartbeat drops one node at most, none while another is being drained, and
 * none when its own node's previous heartbeat is over two intervals old: then Redis (or this node)
 * is stalled or overloaded, and every node looks silent. Without these, one stall of Redis longer
 * than the silence had the first heartbeat after it drop every other node in one script (a million
 * sessions' entries: Redis busy for minutes, every node then silent in turn), and under a long
 * overload the drops (334 in one 1M run), each a script over a node's whole state, fed the overload
 * that made nodes look silent. A node that stops drains its own entries the same way ('leave',
 * again until none is left). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "gw_alloc.h"
#include "gw_buf.h"
#include "gw_error.h"
#include "gw_log.h"
#include "gw_sha1.h"
#include "pubsub_channel.h"
#include "pubsub_presence_internal.h"

/* Entries per replace part: 3 arguments each, well under what Redis takes in one. */
#define DELTAS_PER_COMMAND 3000u
/* Session changes per apply command, one in flight: ~16 KB, what Redis reads of a client per
 * event-loop turn. A larger command takes several turns to arrive, and a turn lasts seconds
 * when Redis is overloaded: the heartbeat behind it arrived a minute late, and the others
 * dropped the node as silent. */
#define CHANGES_PER_APPLY 500u
/* The whole of presence in Redis. Its query reads counts with HMGET in chunks of 1,000:
 * Lua's unpack() stops near 8,000 values. */
static const char PRESENCE_SCRIPT[] =
    "local P = 'sockjs-gateway:presence:'\n"
    "local NODES = P .. 'nodes'\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local mode = ARGV[1]\n"
    "local out = {0, 0, 0}\n"
    "local quiet = ARGV[3] == '0'\n"
    "local function event(kind, ch, user)\n"
    "  if quiet then return end\n"
    "  out[#out + 1] = kind; out[#out + 1] = ch; out[#out + 1] = user\n"
    "end\n"
    "local function change(nd, ch, user, d, joins)\n"
    "  local nkey = P .. 'n:' .. nd .. ':' .. ch\n"
    "  local own = redis.call('HINCRBY', nkey, user, d)\n"
    "  if own < 0 then d = d - own; own = 0 end\n"
    "  if own == 0 then\n"
    "    redis.call('HDEL', nkey, user)\n"
    "    if redis.call('EXISTS', nkey) == 0 then redis.call('SREM', P .. 'c:' .. nd, ch) end\n"
    "  elseif own == d then\n"
    "    redis.call('SADD', P .. 'c:' .. nd, ch)\n"
    "  end\n"
    "  if d == 0 then return end\n"
    "  local company = string.sub(ch, 1, 7) == 'client:'\n"
    "  local tkey = P .. 't:' .. ch\n"
    "  local total = redis.call('HINCRBY', tkey, user, d)\n"
    "  if redis.call('INCRBY', P .. 's:' .. ch, d) <= 0 then redis.call('DEL', P .. 's:' .. ch) "
    "end\n"
    "  if total <= 0 then\n"
    "    redis.call('HDEL', tkey, user)\n"
    "    if company then redis.call('ZREM', P .. 'i:' .. ch, user); event('l', ch, user) end\n"
    "  elseif total == d and company then\n"
    "    redis.call('ZADD', P .. 'i:' .. ch, 0, user)\n"
    "    if joins then event('j', ch, user) end\n"
    "  end\n"
    "end\n"
    "local DEAD = P .. 'dead'\n"
    "local function drop(nd)\n"
    "  redis.call('ZREM', NODES, nd)\n"
    "  redis.call('SADD', DEAD, nd)\n"
    "end\n"
    "local function drain(nd, budget)\n"
    "  nd = nd or redis.call('SRANDMEMBER', DEAD)\n"
    "  if not nd then return 0 end\n"
    "  local ckey = P .. 'c:' .. nd\n"
    "  while budget > 0 do\n"
    "    local ch = redis.call('SRANDMEMBER', ckey)\n"
    "    if not ch then\n"
    "      redis.call('DEL', P .. 'g:' .. nd)\n"
    "      redis.call('SREM', DEAD, nd)\n"
    "      break\n"
    "    end\n"
    "    local h = redis.call('HRANDFIELD', P .. 'n:' .. nd .. ':' .. ch, budget, 'WITHVALUES')\n"
    "    if #h == 0 then redis.call('SREM', ckey, ch) end\n"
    "    for i = 1, #h, 2 do change(nd, ch, h[i], -tonumber(h[i + 1]), false) end\n"
    "    budget = budget - #h / 2\n"
    "  end\n"
    "  return redis.call('SCARD', DEAD)\n"
    "end\n"
    "if mode == 'query' then\n"
    "  local scope, cursor, limit, res = ARGV[2], ARGV[3], tonumber(ARGV[4]), {}\n"
    "  for i = 5, #ARGV do\n"
    "    local ch = ARGV[i]\n"
    "    local entry = {tonumber(redis.call('GET', P .. 's:' .. ch) or '0')}\n"
    "    if scope == 'global' then\n"
    "      entry[2] = redis.call('HLEN', P .. 't:' .. ch)\n"
    "    elseif scope == 'client' then\n"
    "      local from = cursor == '' and '-' or '(' .. cursor\n"
    "      local users = redis.call('ZRANGEBYLEX', P .. 'i:' .. ch, from, '+', 'LIMIT', 0, limit + "
    "1)\n"
    "      entry[2] = 0\n"
    "      if #users > limit then users[#users] = nil; entry[2] = 1 end\n"
    "      for j = 1, #users, 1000 do\n"
    "        local chunk = {}\n"
    "        for k = j, math.min(j + 999, #users) do chunk[#chunk + 1] = users[k] end\n"
    "        local counts = redis.call('HMGET', P .. 't:' .. ch, unpack(chunk))\n"
    "        for k = 1, #chunk do\n"
    "          entry[#entry + 1] = chunk[k]; entry[#entry + 1] = tonumber(counts[k]) or 0\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "    res[#res + 1] = entry\n"
    "  end\n"
    "  return res\n"
    "end\n"
    "local node = ARGV[2]\n"
    "if mode == 'part' then\n"
    "  redis.call('SREM', DEAD, node)\n"
    "  local gen, want = ARGV[4], {}\n"
    "  for i = 5, #ARGV, 3 do\n"
    "    want[ARGV[i]] = want[ARGV[i]] or {}\n"
    "    want[ARGV[i]][ARGV[i + 1]] = tonumber(ARGV[i + 2])\n"
    "  end\n"
    "  for ch, w in pairs(want) do\n"
    "    local h = redis.call('HGETALL', P .. 'n:' .. node .. ':' .. ch)\n"
    "    for i = 1, #h, 2 do\n"
    "      local have, target = tonumber(h[i + 1]), w[h[i]] or 0\n"
    "      if target ~= have then change(node, ch, h[i], target - have, false) end\n"
    "      w[h[i]] = nil\n"
    "    end\n"
    "    for user, n in pairs(w) do change(node, ch, user, n, false) end\n"
    "    redis.call('HSET', P .. 'g:' .. node, ch, gen)\n"
    "  end\n"
    "  redis.call('ZADD', NODES, now, node)\n"
    "  return out\n"
    "end\n"
    "if mode == 'end' then\n"
    "  redis.call('SREM', DEAD, node)\n"
    "  local gen, gkey = ARGV[4], P .. 'g:' .. node\n"
    "  for _, ch in ipairs(redis.call('SMEMBERS', P .. 'c:' .. node)) do\n"
    "    if redis.call('HGET', gkey, ch) ~= gen then\n"
    "      local h = redis.call('HGETALL', P .. 'n:' .. node .. ':' .. ch)\n"
    "      for i = 1, #h, 2 do change(node, ch, h[i], -tonumber(h[i + 1]), false) end\n"
    "    end\n"
    "  end\n"
    "  redis.call('DEL', gkey)\n"
    "  redis.call('ZADD', NODES, now, node)\n"
    "  return out\n"
    "end\n"
    "if mode == 'leave' then\n"
    "  if redis.call('ZREM', NODES, node) == 1 then redis.call('SADD', DEAD, node) end\n"
    "  if redis.call('SISMEMBER', DEAD, node) == 1 then drain(node, 3000) end\n"
    "  out[3] = redis.call('SISMEMBER', DEAD, node)\n"
    "  return out\n"
    "end\n"
    "if mode == 'drain' then\n"
    "  out[3] = drain(nil, 3000)\n"
    "  return out\n"
    "end\n"
    "local mine = redis.call('ZSCORE', NODES, node)\n"
    "if not mine then return {1, 0, 0} end\n"
    "redis.call('ZADD', NODES, now, node)\n"
    "if mode == 'apply' then\n"
    "  for i = 4, #ARGV, 3 do change(node, ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), true) end\n"
    "elseif mode == 'heartbeat' then\n"
    "  local silence = tonumber(ARGV[4])\n"
    "  if now - tonumber(mine) <= silence * 2 / 3 and redis.call('EXISTS', DEAD) == 0 then\n"
    "    local dead = redis.call('ZRANGEBYSCORE', NODES, '-inf', '(' .. (now - silence),\n"
    "      'LIMIT', 0, 1, 'WITHSCORES')\n"
    "    for i = 1, #dead, 2 do\n"
    "      out[#out + 1] = 'd'; out[#out + 1] = dead[i]\n"
    "      out[#out + 1] = tostring(now - dead[i + 1])\n"
    "      drop(dead[i])\n"
    "    end\n"
    "    out[2] = #dead / 2\n"
    "  end\n"
    "  out[3] = drain(nil, 1000)\n"
    "end\n"
    "return out\n";

/* One session more or less of a user in a channel, waiting for the end of the loop turn. */
struct delta {
    uint32_t channel; /* offsets of NUL-terminated names in delta_set.names */
    uint32_t user;
    int32_t change;
};

/* A shard's changes: those waiting for the next flush, or those being sent, in order. */
struct delta_set {
    struct gw_buf names;
    struct delta *d;
    size_t n, cap;
    size_t sent; /* being sent: the first one not sent yet */
};

/* A replace being sent, one part at a time: each part goes once the previous one is answered,
 * so that the shard's connection never holds more than one (a heartbeat waits behind one part
 * at most, not behind a node's whole state, which Redis under load takes seconds to read). */
struct replace_job {
    char *names;              /* the channels and users, copied, NUL-terminated */
    struct replace_triple *t; /* sorted by channel, then user */
    size_t n, next;           /* triples; the first one not sent yet */
    const char *why;          /* for the log line of its first part */
    char gen[24];
};

struct replace_triple {
    uint32_t channel, user; /* offsets in replace_job.names */
    uint32_t sessions;
};

struct presence_shard {
    struct presence_redis *r;
    size_t index;
    struct delta_set waiting, sending;
    size_t entries;              /* this node's (session, channel) pairs on the shard */
    uint64_t generation;         /* replaces started: a reply from before the last one is stale */
    struct replace_job *replace; /* NULL unless a replace is being sent */
    uint32_t changes_in_flight;  /* apply commands awaiting their reply */
    bool heartbeating;
    bool draining; /* a drain command awaits its reply */
    /* Why Redis may lack changes (NULL: it has them all): the next chance replaces the whole
     * state. */
    const char *dirty;
    bool script_sent; /* this connection sent the script's text: EVALSHA from now on */
};

struct presence_redis {
    struct pubsub_presence *p;
    struct pubsub_engine *engine;
    const struct pubsub_presence_settings *settings;
    struct pubsub_presence_stats *stats;
    struct event *flush_ev; /* the deltas go out flush_ms after the first one */
    bool flush_armed;
    struct event *heartbeat_ev;
    struct presence_shard *shards;
    size_t n_shards;
    char script_sha[41]; /* SHA-1 of PRESENCE_SCRIPT, hex */
    /* Once stopping, changes and heartbeats are over: the node's entries go whole. */
    enum { RUNNING, STOP_LEAVES, STOP_BARRIERS, STOPPED } stop_phase;
    size_t stop_waiting; /* replies awaited in this phase */
    void (*stopped)(void *arg);
    void *stopped_arg;
};

/* What a reply belongs to. */
enum command_kind { CMD_CHANGE, CMD_PART, CMD_HEARTBEAT, CMD_DRAIN, CMD_LEAVE };

struct command_ctx {
    struct presence_shard *shard;
    uint64_t generation;
    enum command_kind kind;
};

static size_t shard_of(const struct presence_redis *r, const char *channel)
{
    return pubsub_channel_shard_hash(channel, strlen(channel)) % r->n_shards;
}

static void send_replace(struct presence_shard *sh, const char *why);
static void send_next_part(struct presence_shard *sh);
static void flush_shard(struct presence_shard *sh, bool now);
static bool handle_change_reply(struct presence_shard *sh, struct redisReply *reply, bool stale,
                                bool changes);

static void replace_free(struct presence_shard *sh)
{
    if (!sh->replace)
        return;
    gw_free(sh->replace->names);
    gw_free(sh->replace->t);
    gw_free(sh->replace);
    sh->replace = NULL;
}

static void delta_set_release(struct delta_set *ds)
{
    gw_free(ds->d);
    gw_buf_release(&ds->names);
    *ds = (struct delta_set){.n = 0};
}

/* Nothing is kept between windows: an idle node holds no buffer for presence. */
static void drop_deltas(struct presence_shard *sh)
{
    delta_set_release(&sh->waiting);
    delta_set_release(&sh->sending);
}

/* Whether sh has changes not sent yet. */
static bool deltas_pending(const struct presence_shard *sh)
{
    return sh->waiting.n || sh->sending.sent < sh->sending.n;
}

/* Every command is the script: argv[0..EVAL_ARGS) are left for EVAL <script> 0, or EVALSHA
 * <sha> 0 once the connection has sent the text (Redis caches it; later commands follow it on
 * the same connection). */
#define EVAL_ARGS 3

static void set_eval(struct presence_shard *sh, const char **argv, size_t *argvlen)
{
    argv[0] = sh->script_sent ? "EVALSHA" : "EVAL";
    argvlen[0] = strlen(argv[0]);
    argv[1] = sh->script_sent ? sh->r->script_sha : PRESENCE_SCRIPT;
    argvlen[1] = sh->script_sent ? 40 : sizeof(PRESENCE_SCRIPT) - 1;
    argv[2] = "0";
    argvlen[2] = 1;
}

/* The node's arguments of every mode but query: mode, node, whether to return events. */
static size_t set_node_args(struct presence_shard *sh, const char *mode, const char **argv,
                            size_t *argvlen)
{
    const struct pubsub_presence_settings *s = sh->r->settings;
    argv[EVAL_ARGS] = mode;
    argvlen[EVAL_ARGS] = strlen(mode);
    argv[EVAL_ARGS + 1] = s->node_id;
    argvlen[EVAL_ARGS + 1] = strlen(s->node_id);
    argv[EVAL_ARGS + 2] = s->events ? "1" : "0";
    argvlen[EVAL_ARGS + 2] = 1;
    return EVAL_ARGS + 3;
}

/* A script error that says Redis lost the script (SCRIPT FLUSH, a restart behind a proxy):
 * the next command sends its text again. */
static void check_noscript(struct presence_shard *sh, const struct redisReply *reply)
{
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0)
        sh->script_sent = false;
}

/* Sends argv (EVAL_ARGS slots first) on sh's connection, counted. */
static int send_command(struct presence_shard *sh, enum command_kind kind, size_t argc,
                        const char **argv, size_t *argvlen, pubsub_engine_reply_cb cb)
{
    struct presence_redis *r = sh->r;
    struct command_ctx *ctx = gw_malloc(sizeof(*ctx));
    *ctx = (struct command_ctx){.shard = sh, .generation = sh->generation, .kind = kind};
    set_eval(sh, argv, argvlen);
    int rc = pubsub_engine_command(r->engine, sh->index, PUBSUB_CONN_SIDE, (int)argc, argv, argvlen,
                                   cb, ctx);
    if (rc != 0) {
        gw_free(ctx);
        return rc;
    }
    sh->script_sent = true;
    if (kind == CMD_CHANGE)
        sh->changes_in_flight++;
    r->stats->redis_commands++;
    return 0;
}

/* {missing, dead nodes, kind, channel, user, ...}: publishes the events, replaces when the
 * node was unknown. */
static void stop_step(struct presence_redis *r);
static void on_change_reply(void *arg, struct redisReply *reply);

/* The script's modes that take no argument but the node's: a drain step, a leave (step). */
static int send_plain(struct presence_shard *sh, enum command_kind kind, const char *mode)
{
    const char *argv[EVAL_ARGS + 3];
    size_t argvlen[EVAL_ARGS + 3];
    size_t argc = set_node_args(sh, mode, argv, argvlen);
    return send_command(sh, kind, argc, argv, argvlen, on_change_reply);
}

static void on_change_reply(void *arg, struct redisReply *reply)
{
    struct command_ctx *ctx = arg;
    struct presence_shard *sh = ctx->shard;
    struct presence_redis *r = sh->r;
    bool stale = ctx->generation != sh->generation || r->stop_phase != RUNNING;
    enum command_kind kind = ctx->kind;
    if (kind == CMD_HEARTBEAT)
        sh->heartbeating = false;
    if (kind == CMD_CHANGE)
        sh->changes_in_flight--;
    if (kind == CMD_DRAIN)
        sh->draining = false;
    gw_free(ctx);
    /* A heartbeat, drain or leave that failed lost no change: no replace for it. */
    bool ok = handle_change_reply(sh, reply, stale, kind == CMD_CHANGE || kind == CMD_PART);
    long long dropped =
        ok && reply->element[1]->type == REDIS_REPLY_INTEGER ? reply->element[1]->integer : 0;
    long long dead_left = ok ? reply->element[2]->integer : 0;
    if (kind == CMD_LEAVE) {
        /* This node's entries go a part at a time too: again until none is left. */
        if (!(dead_left && r->stop_phase == STOP_LEAVES && send_plain(sh, CMD_LEAVE, "leave") == 0))
            stop_step(r);
        return;
    }
    /* A dropped node's entries go a part per script: drained one command at a time by the node
     * that dropped it (every heartbeat takes a smaller part too, should that node die), so
     * that no script holds Redis for a node's whole state. Not by every node at once: 52
     * drains in flight delayed heartbeats by seconds, and more nodes looked silent. */
    if (((kind == CMD_HEARTBEAT && dropped > 0) || kind == CMD_DRAIN) && dead_left > 0 &&
        !sh->draining && r->stop_phase == RUNNING && send_plain(sh, CMD_DRAIN, "drain") == 0)
        sh->draining = true;
    if (stale)
        return;
    if (kind == CMD_PART && sh->replace) {
        if (ok)
            send_next_part(sh);
        else
            replace_free(sh); /* dirty: the next heartbeat starts again */
        return;
    }
    /* Changes that waited for this reply go now. */
    if (kind == CMD_CHANGE && sh->changes_in_flight == 0 && deltas_pending(sh))
        flush_shard(sh, false);
}

/* Whether the reply is a valid one ({missing, dead nodes dropped, dead nodes left, events...}).
 * A failed command that carried changes makes the shard dirty, unless stale. */
static bool handle_change_reply(struct presence_shard *sh, struct redisReply *reply, bool stale,
                                bool changes)
{
    struct presence_redis *r = sh->r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[2]->type != REDIS_REPLY_INTEGER) {
        check_noscript(sh, reply);
        if (reply)
            GW_WARN("presence: unexpected reply from Redis shard %zu%s%s", sh->index,
                    reply->type == REDIS_REPLY_ERROR ? ": " : "",
                    reply->type == REDIS_REPLY_ERROR ? reply->str : "");
        /* Did it apply? The next heartbeat or reconnection replaces. */
        if (!stale && changes)
            sh->dirty = reply ? "a command failed" : "a reply was lost";
        return false;
    }
    if (reply->element[0]->integer == 1) {
        if (!stale)
            send_replace(sh, "Redis did not know this node: restarted, or dropped it as silent");
        return true;
    }
    if (reply->element[1]->type == REDIS_REPLY_INTEGER)
        r->stats->dead_nodes += (uint64_t)reply->element[1]->integer;
    for (size_t i = 3; i + 2 < reply->elements; i += 3) {
        const redisReply *kind = reply->element[i], *ch = reply->element[i + 1],
                         *user = reply->element[i + 2];
        if (kind->type != REDIS_REPLY_STRING || ch->type != REDIS_REPLY_STRING ||
            user->type != REDIS_REPLY_STRING)
            continue;
        if (kind->str[0] == 'd') { /* a node dropped, and how long it had been silent (ms) */
            GW_WARN("presence: dropped node %s from Redis shard %zu, silent for %s ms", ch->str,
                    sh->index, user->str);
            continue;
        }
        presence_event(r->p, kind->str[0] == 'j', ch->str, user->str);
    }
    return true;
}

/* --- This node's whole state ------------------------------------------------------------- */

struct snapshot_entry {
    const char *channel, *user;
};

struct snapshot {
    const struct presence_redis *r;
    size_t shard;
    struct snapshot_entry *items;
    size_t n, cap;
};

static void snapshot_add(void *arg, const struct presence_names *names)
{
    struct snapshot *s = arg;
    for (int scope = 0; scope < 3; scope++) {
        if (shard_of(s->r, names->channels[scope]) != s->shard)
            continue;
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 256;
            s->items = gw_realloc(s->items, s->cap * sizeof(*s->items));
        }
        s->items[s->n++] = (struct snapshot_entry){names->channels[scope], names->user_id};
    }
}

static int compare_entries(const void *a, const void *b)
{
    const struct snapshot_entry *x = a, *y = b;
    int c = strcmp(x->channel, y->channel);
    return c ? c : strcmp(x->user, y->user);
}

/* Sends the job's next part (whole channels, about DELTAS_PER_COMMAND triples), or its end
 * once every part is answered; after the end, the changes that waited for it. */
static void send_next_part(struct presence_shard *sh)
{
    struct presence_redis *r = sh->r;
    struct replace_job *job = sh->replace;
    size_t first = job->next, last = first;
    while (last < job->n) {
        /* The next channel's triples, whole: the end drops every channel no part named. */
        size_t ch_end = last + 1;
        while (ch_end < job->n && job->t[ch_end].channel == job->t[last].channel)
            ch_end++;
        if (last > first && ch_end - first > DELTAS_PER_COMMAND)
            break;
        last = ch_end;
    }
    const char *mode = last > first ? "part" : "end";
    size_t cap = EVAL_ARGS + 4 + 3 * (last - first);
    const char **argv = gw_malloc(cap * sizeof(*argv));
    size_t *argvlen = gw_malloc(cap * sizeof(*argvlen));
    char(*counts)[12] = gw_malloc((last > first ? last - first : 1) * sizeof(*counts));
    size_t argc = set_node_args(sh, mode, argv, argvlen);
    argv[argc] = job->gen;
    argvlen[argc++] = strlen(job->gen);
    for (size_t i = first; i < last; i++) {
        const struct replace_triple *t = &job->t[i];
        argv[argc] = job->names + t->channel;
        argvlen[argc] = strlen(argv[argc]);
        argc++;
        argv[argc] = job->names + t->user;
        argvlen[argc] = strlen(argv[argc]);
        argc++;
        argvlen[argc] =
            (size_t)snprintf(counts[i - first], sizeof(counts[0]), "%" PRIu32, t->sessions);
        argv[argc] = counts[i - first];
        argc++;
    }
    bool is_end = last == first;
    int rc = send_command(sh, is_end ? CMD_CHANGE : CMD_PART, argc, argv, argvlen, on_change_reply);
    gw_free(counts);
    gw_free(argvlen);
    gw_free(argv);
    if (rc != 0) {
        /* The next chance sends it all again, under a new generation. */
        sh->dirty = "a part of a replace could not be sent";
        replace_free(sh);
        return;
    }
    if (first == 0) /* rare when healthy (a connection coming up): worth a line each */
        GW_INFO("presence: sending this node's whole state (%zu entries) to Redis shard %zu (%s)",
                job->n, sh->index, job->why);
    job->next = last;
    r->stats->redis_deltas += last - first;
    if (!is_end)
        return;
    /* The changes made meanwhile go with the end's reply (flush_shard). */
    replace_free(sh);
    r->stats->replaces++;
}

static uint32_t names_add(struct gw_buf *b, const char *s)
{
    uint32_t off = (uint32_t)b->len;
    gw_buf_append(b, s, strlen(s) + 1);
    return off;
}

/* Replaces this node's counts on sh's instance with every (channel, user, sessions) it has,
 * in parts of whole channels of about DELTAS_PER_COMMAND entries each, then an end that drops
 * the channels no part named. One script per part keeps each short: a whole node's state in
 * one script (tens of thousands of sessions) held Redis for seconds, past its busy threshold,
 * and the BUSY errors it caused made other nodes replace too. The parts go one at a time (see
 * struct replace_job); the state is copied now, and changes made meanwhile wait for the end. */
static void send_replace(struct presence_shard *sh, const char *why)
{
    struct presence_redis *r = sh->r;
    if (r->stop_phase != RUNNING)
        return;
    replace_free(sh);
    drop_deltas(sh); /* the state copied includes them */
    sh->dirty = NULL;
    struct snapshot s = {.r = r, .shard = sh->index};
    presence_each_session(r->p, snapshot_add, &s);
    sh->entries = s.n;
    if (s.n)
        qsort(s.items, s.n, sizeof(*s.items), compare_entries);
    struct replace_job *job = gw_calloc(1, sizeof(*job));
    sh->replace = job;
    job->why = why;
    sh->generation++;
    snprintf(job->gen, sizeof(job->gen), "%" PRIu64, sh->generation);
    job->t = gw_malloc((s.n ? s.n : 1) * sizeof(*job->t));
    struct gw_buf names = {0};
    for (size_t i = 0; i < s.n;) {
        /* Each (channel, user) once, with its session count; a channel's name once. */
        uint32_t channel = i && strcmp(s.items[i].channel, s.items[i - 1].channel) == 0
                               ? job->t[job->n - 1].channel
                               : names_add(&names, s.items[i].channel);
        size_t j = i + 1;
        while (j < s.n && strcmp(s.items[j].channel, s.items[i].channel) == 0 &&
               strcmp(s.items[j].user, s.items[i].user) == 0)
            j++;
        job->t[job->n++] = (struct replace_triple){.channel = channel,
                                                   .user = names_add(&names, s.items[i].user),
                                                   .sessions = (uint32_t)(j - i)};
        i = j;
    }
    job->names = names.data ? names.data : gw_calloc(1, 1);
    gw_free(s.items);
    send_next_part(sh);
}

/* --- Deltas ------------------------------------------------------------------------------ */

/* Sends sh's changes, CHANGES_PER_APPLY per command, one command in flight: the others wait
 * for its reply, so that a slow Redis gets fewer, fuller commands and the connection's queue
 * stays short. Unless `now` (a query must come after them): then all of them go. They all
 * wait while a replace is being sent (they go after its end). */
static void flush_shard(struct presence_shard *sh, bool now)
{
    struct presence_redis *r = sh->r;
    if (sh->dirty) {
        drop_deltas(sh); /* the next replace carries them */
        return;
    }
    if (sh->replace || (sh->changes_in_flight && !now))
        return;
    const char *argv[EVAL_ARGS + 3 + 3 * CHANGES_PER_APPLY];
    size_t argvlen[EVAL_ARGS + 3 + 3 * CHANGES_PER_APPLY];
    do {
        struct delta_set *ds = &sh->sending;
        if (ds->sent == ds->n) {
            delta_set_release(ds);
            if (!sh->waiting.n)
                return;
            *ds = sh->waiting;
            sh->waiting = (struct delta_set){.n = 0};
        }
        size_t first = ds->sent;
        size_t end = first + CHANGES_PER_APPLY < ds->n ? first + CHANGES_PER_APPLY : ds->n;
        size_t argc = set_node_args(sh, "apply", argv, argvlen);
        for (size_t i = first; i < end; i++) {
            const struct delta *d = &ds->d[i];
            argv[argc] = ds->names.data + d->channel;
            argvlen[argc] = strlen(argv[argc]);
            argc++;
            argv[argc] = ds->names.data + d->user;
            argvlen[argc] = strlen(argv[argc]);
            argc++;
            argv[argc] = d->change > 0 ? "1" : "-1";
            argvlen[argc++] = d->change > 0 ? 1 : 2;
        }
        if (send_command(sh, CMD_CHANGE, argc, argv, argvlen, on_change_reply) != 0) {
            /* Redis down or its queue full: what it lacks goes with the next replace. */
            sh->dirty = "changes could not be sent";
            drop_deltas(sh);
            return;
        }
        ds->sent = end;
        r->stats->redis_deltas += end - first;
        if (ds->sent == ds->n)
            delta_set_release(ds); /* the command has its own copy: an idle node keeps none */
    } while (now);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct presence_redis *r = arg;
    r->flush_armed = false;
    for (size_t i = 0; i < r->n_shards; i++)
        if (deltas_pending(&r->shards[i]))
            flush_shard(&r->shards[i], false);
}

void presence_redis_change(struct presence_redis *r, const struct presence_names *names, int delta)
{
    if (r->stop_phase != RUNNING)
        return; /* the node's entries are going whole */
    for (int scope = 0; scope < 3; scope++) {
        struct presence_shard *sh = &r->shards[shard_of(r, names->channels[scope])];
        if (delta > 0)
            sh->entries++;
        else if (sh->entries)
            sh->entries--;
        if (sh->dirty)
            continue; /* the next replace carries it */
        struct delta_set *ds = &sh->waiting;
        /* Changes held for a Redis that does not answer (a replace or an apply in flight):
         * sessions that come and go meanwhile would add without end. Past what a replace of
         * the whole state carries, that replace is the cheaper way, and the memory held stays
         * bounded by the node's own state. */
        size_t held = ds->n + sh->sending.n - sh->sending.sent;
        if (held > (sh->entries > CHANGES_PER_APPLY ? sh->entries : CHANGES_PER_APPLY)) {
            sh->dirty = "more changes waited for Redis than the whole state has";
            drop_deltas(sh);
            continue;
        }
        if (ds->n == ds->cap) {
            ds->cap = ds->cap ? ds->cap * 2 : 64;
            ds->d = gw_realloc(ds->d, ds->cap * sizeof(*ds->d));
        }
        struct delta *d = &ds->d[ds->n++];
        d->channel = names_add(&ds->names, names->channels[scope]);
        d->user = names_add(&ds->names, names->user_id);
        d->change = delta;
    }
    if (r->flush_armed)
        return;
    r->flush_armed = true;
    uint32_t ms = r->settings->flush_ms;
    if (ms == 0) {
        event_active(r->flush_ev, EV_TIMEOUT, 0); /* the end of this loop turn */
        return;
    }
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(r->flush_ev, &tv);
}

/* --- Heartbeats -------------------------------------------------------------------------- */

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct presence_redis *r = arg;
    /* Silent for three heartbeats: dropped. Checked every heartbeat, so a dead node goes at
     * the latest node_timeout_ms after its last one. */
    uint32_t silence_ms = r->settings->node_timeout_ms - r->settings->node_timeout_ms / 4;
    char timeout[16];
    size_t timeout_len = (size_t)snprintf(timeout, sizeof(timeout), "%u", (unsigned)silence_ms);
    for (size_t i = 0; i < r->n_shards; i++) {
        struct presence_shard *sh = &r->shards[i];
        if (sh->dirty) {
            send_replace(sh, sh->dirty);
            continue;
        }
        if (sh->heartbeating)
            continue;
        const char *argv[EVAL_ARGS + 4];
        size_t argvlen[EVAL_ARGS + 4];
        size_t argc = set_node_args(sh, "heartbeat", argv, argvlen);
        argv[argc] = timeout;
        argvlen[argc++] = timeout_len;
        if (send_command(sh, CMD_HEARTBEAT, argc, argv, argvlen, on_change_reply) == 0)
            sh->heartbeating = true;
    }
}

static void on_shard_ready(void *arg, size_t shard)
{
    struct presence_redis *r = arg;
    r->shards[shard].script_sent = false; /* perhaps a new instance: it has no script */
    /* A new connection: the instance may have restarted empty, or be our previous life's. */
    send_replace(&r->shards[shard], "the connection came up");
}

/* --- Queries ----------------------------------------------------------------------------- */

struct pubsub_presence_request {
    struct presence_redis *r;
    pubsub_presence_cb cb; /* NULL once cancelled */
    void *arg;
    enum pubsub_scope scope;
    json_t *ids;      /* the ids asked about (user scope: the key of "users") */
    json_t *channels; /* their channels */
    char *cursor;
    uint32_t limit;
    json_t *answers; /* null until answered */
    size_t *shard_of_answer;
    size_t outstanding;
    int rc;
};

struct query_part {
    struct pubsub_presence_request *req;
    size_t shard;
    bool retry; /* sent again after NOSCRIPT */
};

static int send_query_part(struct pubsub_presence_request *req, size_t shard, bool retry);

static void request_free(struct pubsub_presence_request *req)
{
    json_decref(req->ids);
    json_decref(req->channels);
    json_decref(req->answers);
    gw_free(req->cursor);
    gw_free(req->shard_of_answer);
    gw_free(req);
}

static void request_finish(struct pubsub_presence_request *req)
{
    if (req->cb)
        req->cb(req->arg, req->rc, req->rc == 0 ? req->answers : NULL);
    request_free(req);
}

static json_t *answer_of(enum pubsub_scope scope, const char *id, const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
        e->element[0]->type != REDIS_REPLY_INTEGER)
        return NULL;
    long long sessions = e->element[0]->integer;
    json_t *answer = json_pack("{s:I}", "sessions", (json_int_t)sessions);
    if (scope == PUBSUB_SCOPE_GLOBAL) {
        long long users = e->elements > 1 && e->element[1]->type == REDIS_REPLY_INTEGER
                              ? e->element[1]->integer
                              : 0;
        json_object_set_new(answer, "users_count", json_integer((json_int_t)users));
        return answer;
    }
    json_t *users = json_object();
    json_object_set_new(answer, "users", users);
    if (scope == PUBSUB_SCOPE_USER) {
        if (sessions > 0)
            json_object_set_new(users, id, json_integer((json_int_t)sessions));
        return answer;
    }
    const char *last = NULL;
    for (size_t i = 2; i + 1 < e->elements; i += 2) {
        const redisReply *user = e->element[i], *count = e->element[i + 1];
        if (user->type != REDIS_REPLY_STRING || count->type != REDIS_REPLY_INTEGER)
            continue;
        json_object_set_new(users, user->str, json_integer((json_int_t)count->integer));
        last = user->str;
    }
    bool more = e->elements > 1 && e->element[1]->type == REDIS_REPLY_INTEGER &&
                e->element[1]->integer == 1;
    if (more && last)
        json_object_set_new(answer, "cursor", json_string(last));
    return answer;
}

static void on_query_reply(void *arg, struct redisReply *reply)
{
    struct query_part *part = arg;
    struct pubsub_presence_request *req = part->req;
    size_t shard = part->shard;
    bool retried = part->retry;
    gw_free(part);
    if (reply && reply->type == REDIS_REPLY_ERROR && !retried &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        /* The script's text goes with the second try; that try's reply finishes this part. */
        check_noscript(&req->r->shards[shard], reply);
        if (send_query_part(req, shard, true) == 0) {
            req->outstanding--;
            return;
        }
    }
    size_t k = 0;
    for (size_t i = 0; req->rc == 0 && i < json_array_size(req->answers); i++) {
        if (req->shard_of_answer[i] != shard)
            continue;
        json_t *answer = NULL;
        if (reply && reply->type == REDIS_REPLY_ARRAY && k < reply->elements)
            answer = answer_of(req->scope, json_string_value(json_array_get(req->ids, i)),
                               reply->element[k++]);
        if (!answer)
            req->rc = reply ? GW_EPROTO : GW_EAGAIN;
        else
            json_array_set_new(req->answers, i, answer);
    }
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        GW_WARN("presence: query refused by Redis shard %zu: %s", shard, reply->str);
        check_noscript(&req->r->shards[shard], reply);
    }
    if (--req->outstanding == 0)
        request_finish(req);
}

/* The query's channels of `shard`, as one command. */
static int send_query_part(struct pubsub_presence_request *req, size_t shard, bool retry)
{
    static const char *const scope_names[] = {"user", "client", "global"};
    struct presence_redis *r = req->r;
    size_t n = json_array_size(req->channels);
    const size_t first = EVAL_ARGS + 4; /* then the channels */
    const char **argv = gw_malloc((first + n) * sizeof(*argv));
    size_t *argvlen = gw_malloc((first + n) * sizeof(*argvlen));
    size_t argc = first;
    for (size_t i = 0; i < n; i++) {
        if (req->shard_of_answer[i] != shard)
            continue;
        json_t *channel = json_array_get(req->channels, i);
        argv[argc] = json_string_value(channel);
        argvlen[argc++] = json_string_length(channel);
    }
    /* This node's changes still waiting for the flush go first (one connection, in order):
     * an answer always counts the node's own sessions, the asking one included. */
    if (argc > first && deltas_pending(&r->shards[shard]))
        flush_shard(&r->shards[shard], true);
    char limit[16];
    set_eval(&r->shards[shard], argv, argvlen);
    argv[EVAL_ARGS] = "query";
    argv[EVAL_ARGS + 1] = scope_names[req->scope];
    argv[EVAL_ARGS + 2] = req->cursor ? req->cursor : "";
    argv[EVAL_ARGS + 3] = limit;
    argvlen[EVAL_ARGS + 3] = (size_t)snprintf(limit, sizeof(limit), "%u", (unsigned)req->limit);
    for (size_t i = EVAL_ARGS; i < EVAL_ARGS + 3; i++)
        argvlen[i] = strlen(argv[i]);
    struct query_part *part = gw_malloc(sizeof(*part));
    *part = (struct query_part){req, shard, retry};
    int rc = argc == first ? 0
                           : pubsub_engine_command(r->engine, shard, PUBSUB_CONN_SIDE, (int)argc,
                                                   argv, argvlen, on_query_reply, part);
    if (rc != 0 || argc == first) {
        gw_free(part);
    } else {
        r->shards[shard].script_sent = true;
        r->stats->redis_commands++;
        req->outstanding++;
    }
    gw_free(argvlen);
    gw_free(argv);
    return rc;
}

struct pubsub_presence_request *presence_redis_query(struct presence_redis *r,
                                                     const struct pubsub_presence_query *q,
                                                     pubsub_presence_cb cb, void *arg)
{
    size_t n = q->scope == PUBSUB_SCOPE_GLOBAL ? 1 : q->n_ids;
    struct pubsub_presence_request *req = gw_calloc(1, sizeof(*req));
    *req = (struct pubsub_presence_request){
        .r = r, .cb = cb, .arg = arg, .scope = q->scope, .limit = q->limit};
    req->cursor = q->cursor ? gw_strdup(q->cursor) : NULL;
    req->ids = json_array();
    req->channels = json_array();
    req->answers = json_array();
    req->shard_of_answer = gw_malloc(n * sizeof(*req->shard_of_answer));
    char channel[PUBSUB_CHANNEL_NAME_MAX];
    for (size_t i = 0; i < n; i++) {
        const char *id = q->scope == PUBSUB_SCOPE_GLOBAL ? NULL : q->ids[i];
        pubsub_channel_name(channel, sizeof(channel), q->scope, q->site, id);
        req->shard_of_answer[i] = shard_of(r, channel);
        json_array_append_new(req->ids, json_string(id ? id : ""));
        json_array_append_new(req->channels, json_string(channel));
        json_array_append_new(req->answers, json_null());
    }
    req->outstanding = 1; /* held while sending, so no reply can finish it early */
    for (size_t shard = 0; shard < r->n_shards && req->rc == 0; shard++)
        if (send_query_part(req, shard, false) != 0)
            req->rc = GW_EAGAIN;
    if (--req->outstanding == 0) {
        request_finish(req);
        return NULL;
    }
    return req;
}

void presence_redis_cancel(struct pubsub_presence_request *req)
{
    req->cb = NULL;
}

/* --- Stop ------------------------------------------------------------------------------- */

static void on_barrier_reply(void *arg, struct redisReply *reply)
{
    (void)reply;
    stop_step(arg);
}

/* One reply of the phase came (or the hold of its sending is dropped). After the leaves, a
 * PING per shard: its reply comes after those of everything sent before it on that
 * connection, the publishes of the leave events included. */
static void stop_step(struct presence_redis *r)
{
    if (--r->stop_waiting > 0)
        return;
    if (r->stop_phase == STOP_LEAVES) {
        const char *ping[] = {"PING"};
        size_t ping_len[] = {4};
        r->stop_phase = STOP_BARRIERS;
        r->stop_waiting = 1; /* held while sending */
        for (size_t i = 0; i < r->n_shards; i++)
            if (pubsub_engine_command(r->engine, i, PUBSUB_CONN_PUBLISHES, 1, ping, ping_len,
                                      on_barrier_reply, r) == 0)
                r->stop_waiting++;
        stop_step(r);
        return;
    }
    r->stop_phase = STOPPED;
    if (r->stopped)
        r->stopped(r->stopped_arg);
}

void presence_redis_forget_stop(struct presence_redis *r)
{
    r->stopped = NULL;
}

void presence_redis_stop(struct presence_redis *r, void (*done)(void *arg), void *arg)
{
    if (r->stop_phase != RUNNING)
        return;
    r->stop_phase = STOP_LEAVES;
    event_del(r->heartbeat_ev);
    event_del(r->flush_ev);
    r->stopped = done;
    r->stopped_arg = arg;
    r->stop_waiting = 1; /* held while sending */
    for (size_t i = 0; i < r->n_shards; i++) {
        struct presence_shard *sh = &r->shards[i];
        drop_deltas(sh);
        replace_free(sh);
        if (send_plain(sh, CMD_LEAVE, "leave") == 0)
            r->stop_waiting++;
    }
    stop_step(r);
}

/* --- Life -------------------------------------------------------------------------------- */

struct presence_redis *presence_redis_new(struct pubsub_presence *p, struct event_base *base,
                                          struct pubsub_engine *engine,
                                          const struct pubsub_presence_settings *s,
                                          struct pubsub_presence_stats *stats)
{
    struct presence_redis *r = gw_calloc(1, sizeof(*r));
    r->p = p;
    r->engine = engine;
    r->settings = s;
    r->stats = stats;
    r->n_shards = pubsub_engine_shards(engine);
    struct gw_sha1 sha;
    uint8_t digest[GW_SHA1_LEN];
    gw_sha1_init(&sha);
    gw_sha1_update(&sha, PRESENCE_SCRIPT, sizeof(PRESENCE_SCRIPT) - 1);
    gw_sha1_final(&sha, digest);
    for (size_t i = 0; i < GW_SHA1_LEN; i++)
        snprintf(r->script_sha + 2 * i, 3, "%02x", digest[i]);
    r->shards = gw_calloc(r->n_shards, sizeof(*r->shards));
    for (size_t i = 0; i < r->n_shards; i++) {
        r->shards[i].r = r;
        r->shards[i].index = i;
        r->shards[i].dirty = "starting"; /* nothing of this life is there yet */
    }
    r->flush_ev = event_new(base, -1, 0, on_flush, r);
    r->heartbeat_ev = event_new(base, -1, EV_PERSIST, on_heartbeat, r);
    uint32_t every_ms = s->node_timeout_ms / 4 ? s->node_timeout_ms / 4 : 1;
    struct timeval tv = {(time_t)(every_ms / 1000), (suseconds_t)(every_ms % 1000) * 1000};
    event_add(r->heartbeat_ev, &tv);
    engine->shard_ready = on_shard_ready;
    engine->shard_ready_arg = r;
    return r;
}

void presence_redis_free(struct presence_redis *r)
{
    event_free(r->flush_ev);
    event_free(r->heartbeat_ev);
    for (size_t i = 0; i < r->n_shards; i++) {
        drop_deltas(&r->shards[i]);
        replace_free(&r->shards[i]);
    }
    gw_free(r->shards);
    gw_free(r);
}
