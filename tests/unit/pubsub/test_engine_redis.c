/* Redis engine against real redis-server processes, started on free loopback ports by the test
 * and killed (by PID) at the end of every test, at exit, and by the kernel if the test process
 * dies (PR_SET_PDEATHSIG). Several engines ("nodes") share one event loop; the loop is run in
 * bounded slices until a condition holds or a deadline passes. */
#include "gw_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gw_alloc.h"
#include "gw_error.h"
#include "pubsub_engine.h"

#define REDIS_SERVER "/usr/bin/redis-server"
#define MAX_SERVERS 2
#define MAX_NODES 2
#define WAIT_MS 15000

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- redis-server processes ---- */

struct server {
    pid_t pid;
    int port;
    bool stopped; /* SIGSTOP */
};

/* Every live server, for the exit handler. */
static struct server *live[16];

static void track(struct server *s, bool on)
{
    for (size_t i = 0; i < GW_ARRAY_LEN(live); i++) {
        if (on && !live[i]) {
            live[i] = s;
            return;
        }
        if (!on && live[i] == s) {
            live[i] = NULL;
            return;
        }
    }
}

static void server_kill(struct server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    s->pid = 0;
    s->stopped = false;
    track(s, false);
}

static void kill_all_servers(void)
{
    for (size_t i = 0; i < GW_ARRAY_LEN(live); i++)
        if (live[i])
            server_kill(live[i]);
}

static void process_setup(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    signal(SIGPIPE, SIG_IGN);
    atexit(kill_all_servers);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static redisContext *sync_connect(int port)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200 * 1000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c && c->err) {
        redisFree(c);
        return NULL;
    }
    if (c)
        redisSetTimeout(c, (struct timeval){.tv_sec = 5});
    return c;
}

/* Starts redis-server on s->port (a free one when 0) and waits until it answers PING. */
static int server_start(struct server *s)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        int port = s->port ? s->port : free_port();
        if (port <= 0)
            return -1;
        char port_s[16];
        snprintf(port_s, sizeof(port_s), "%d", port);
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0)
            return -1;
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(1);
            int null = open("/dev/null", O_RDWR);
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
            execl(REDIS_SERVER, "redis-server", "--port", port_s, "--bind", "127.0.0.1", "--save",
                  "", "--appendonly", "no", "--daemonize", "no", (char *)NULL);
            _exit(127);
        }
        s->pid = pid;
        s->port = port;
        track(s, true);
        uint64_t deadline = now_ms() + 10000;
        while (now_ms() < deadline) {
            if (waitpid(pid, NULL, WNOHANG) == pid) {
                /* Exited: the port was taken after all. */
                s->pid = 0;
                track(s, false);
                break;
            }
            redisContext *c = sync_connect(port);
            if (c) {
                redisReply *r = redisCommand(c, "PING");
                bool ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
                if (r)
                    freeReplyObject(r);
                redisFree(c);
                if (ok)
                    return 0;
            }
            usleep(10 * 1000); /* polling interval, not synchronisation */
        }
        server_kill(s);
        if (s->port && attempt > 0)
            return -1;
    }
    return -1;
}

static long long sync_int(int port, const char *cmd, const char *arg)
{
    redisContext *c = sync_connect(port);
    if (!c)
        return -1000;
    redisReply *r = arg ? redisCommand(c, "%s %s", cmd, arg) : redisCommand(c, "%s", cmd);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1000;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return v;
}

static int sync_publish_raw(int port, const char *msg)
{
    redisContext *c = sync_connect(port);
    if (!c)
        return -1;
    redisReply *r = redisCommand(c, "PUBLISH sockjs-gateway:publish %s", msg);
    int rc = r && r->type == REDIS_REPLY_INTEGER ? 0 : -1;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}

static int sync_status(int port, const char *cmd, const char *arg)
{
    redisContext *c = sync_connect(port);
    if (!c)
        return -1;
    redisReply *r = redisCommand(c, "%s %s", cmd, arg);
    int rc = r && r->type == REDIS_REPLY_STATUS ? 0 : -1;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}

/* ---- nodes and the fixture ---- */

struct node {
    struct pubsub_engine *eng;
    struct pubsub_publish **got;
    size_t n_got, cap;
    bool free_in_deliver;
};

struct fx {
    struct event_base *base;
    struct server srv[MAX_SERVERS];
    size_t n_srv;
    struct node nodes[MAX_NODES];
    size_t n_nodes;
};

static void on_deliver(void *arg, struct pubsub_publish *pub)
{
    struct node *n = arg;
    if (n->n_got == n->cap) {
        n->cap = n->cap ? n->cap * 2 : 16;
        n->got = gw_realloc(n->got, n->cap * sizeof(*n->got));
    }
    n->got[n->n_got++] = pubsub_publish_ref(pub);
    if (n->free_in_deliver) {
        pubsub_engine_free(n->eng);
        n->eng = NULL;
    }
}

static void node_clear(struct node *n)
{
    for (size_t i = 0; i < n->n_got; i++)
        pubsub_publish_unref(n->got[i]);
    n->n_got = 0;
}

static void run_for(struct fx *fx, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    event_base_loopexit(fx->base, &tv);
    event_base_dispatch(fx->base);
}

/* Runs the loop in 5 ms slices until cond holds; fails the test after ms. */
#define WAIT_FOR(fx, cond, ms)                                                                     \
    do {                                                                                           \
        uint64_t _deadline = now_ms() + (ms);                                                      \
        while (!(cond) && now_ms() < _deadline)                                                    \
            run_for((fx), 5);                                                                      \
        if (!(cond))                                                                               \
            GW_FAIL_AT("timed out after %d ms waiting for %s", (int)(ms), #cond);                  \
    } while (0)

static struct pubsub_engine *engine_for(struct fx *fx, struct node *n, const struct server *srv,
                                        size_t n_srv)
{
    char bufs[MAX_SERVERS][64];
    const char *urls[MAX_SERVERS];
    for (size_t i = 0; i < n_srv; i++) {
        snprintf(bufs[i], sizeof(bufs[i]), "redis://127.0.0.1:%d", srv[i].port);
        urls[i] = bufs[i];
    }
    const char *error = NULL;
    return pubsub_engine_redis_new(fx->base, urls, n_srv, NULL, NULL, on_deliver, n, &error);
}

static bool all_available(struct fx *fx)
{
    for (size_t i = 0; i < fx->n_nodes; i++)
        if (fx->nodes[i].eng && !pubsub_engine_available(fx->nodes[i].eng))
            return false;
    return true;
}

static bool none_available(struct fx *fx)
{
    for (size_t i = 0; i < fx->n_nodes; i++)
        if (fx->nodes[i].eng && pubsub_engine_available(fx->nodes[i].eng))
            return false;
    return true;
}

static void fx_setup_inner(struct fx *fx, size_t n_srv, size_t n_nodes)
{
    for (size_t i = 0; i < n_srv; i++) {
        if (server_start(&fx->srv[i]) != 0)
            GW_FAIL_AT("cannot start " REDIS_SERVER);
        fx->n_srv++;
    }
    for (size_t i = 0; i < n_nodes; i++) {
        fx->nodes[i].eng = engine_for(fx, &fx->nodes[i], fx->srv, n_srv);
        ASSERT_TRUE(fx->nodes[i].eng != NULL);
        fx->n_nodes++;
    }
    WAIT_FOR(fx, all_available(fx), WAIT_MS);
}

static int fx_setup(struct fx *fx, size_t n_srv, size_t n_nodes)
{
    process_setup();
    memset(fx, 0, sizeof(*fx));
    fx->base = event_base_new();
    int before = gw_test_failures;
    fx_setup_inner(fx, n_srv, n_nodes);
    return gw_test_failures == before ? 0 : -1;
}

static void fx_teardown(struct fx *fx)
{
    for (size_t i = 0; i < fx->n_nodes; i++) {
        struct node *n = &fx->nodes[i];
        if (n->eng)
            pubsub_engine_free(n->eng);
        node_clear(n);
        gw_free(n->got);
    }
    /* Nothing may fire into freed engines. */
    run_for(fx, 20);
    for (size_t i = 0; i < fx->n_srv; i++)
        server_kill(&fx->srv[i]);
    event_base_free(fx->base);
}

/* A test body with a fixture of S servers and N nodes that is torn down even when the body
 * fails half-way. */
#define FX_TEST(name, S, N)                                                                        \
    static void name##_body(struct fx *fx);                                                        \
    TEST(name)                                                                                     \
    {                                                                                              \
        struct fx fx;                                                                              \
        if (fx_setup(&fx, (S), (N)) == 0)                                                          \
            name##_body(&fx);                                                                      \
        fx_teardown(&fx);                                                                          \
    }                                                                                              \
    static void name##_body(struct fx *fx)

/* ---- publishes ---- */

static struct pubsub_publish *make_pub(const char *json)
{
    json_error_t jerr;
    json_t *obj = json_loads(json, 0, &jerr);
    if (!obj)
        return NULL;
    struct pubsub_limits lim;
    pubsub_limits_defaults(&lim);
    struct pubsub_publish *p = NULL;
    const char *error;
    pubsub_publish_from_json(obj, &lim, &p, &error);
    json_decref(obj);
    return p;
}

/* Publishes via a node; returns publish()'s result, or -100 for bad test JSON. */
static int publish(struct node *n, const char *json)
{
    struct pubsub_publish *p = make_pub(json);
    if (!p)
        return -100;
    int rc = pubsub_engine_publish(n->eng, p);
    pubsub_publish_unref(p);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every channel a node has received, "<channel>=<seq>" (seq "null" when absent), sorted and
 * joined by spaces; the caller frees it. */
static char *channels_of(const struct node *n)
{
    size_t count = 0;
    for (size_t i = 0; i < n->n_got; i++)
        count += pubsub_publish_channels(n->got[i]);
    char **items = gw_calloc(count ? count : 1, sizeof(*items));
    size_t k = 0, total = 1;
    for (size_t i = 0; i < n->n_got; i++) {
        const struct pubsub_publish *p = n->got[i];
        uint32_t per = p->n_ids ? p->n_ids : 1;
        for (uint32_t s = 0; s < p->n_sites; s++) {
            for (uint32_t j = 0; j < per; j++) {
                char seq[24] = "null";
                size_t c = (size_t)s * per + j;
                if (p->seqs)
                    snprintf(seq, sizeof(seq), "%" PRId64, p->seqs[c]);
                char buf[600];
                if (p->n_ids)
                    snprintf(buf, sizeof(buf), "%s:%s:%s=%s", pubsub_scope_name(p->scope),
                             p->sites[s], p->ids[j], seq);
                else
                    snprintf(buf, sizeof(buf), "%s:%s=%s", pubsub_scope_name(p->scope), p->sites[s],
                             seq);
                items[k] = gw_strdup(buf);
                total += strlen(buf) + 1;
                k++;
            }
        }
    }
    qsort(items, count, sizeof(*items), cmp_str);
    char *out = gw_malloc(total);
    out[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        if (i)
            strcat(out, " ");
        strcat(out, items[i]);
        gw_free(items[i]);
    }
    gw_free(items);
    return out;
}

/* The expected channel list for scope:site:id over sites x ids, all with one seq. */
static char *expected_channels(const char *scope, const char *const *sites, size_t n_sites,
                               const char *const *ids, size_t n_ids, const char *seq)
{
    size_t count = n_sites * (n_ids ? n_ids : 1);
    char **items = gw_calloc(count, sizeof(*items));
    size_t k = 0, total = 1;
    for (size_t s = 0; s < n_sites; s++) {
        for (size_t j = 0; j < (n_ids ? n_ids : 1); j++) {
            char buf[600];
            if (n_ids)
                snprintf(buf, sizeof(buf), "%s:%s:%s=%s", scope, sites[s], ids[j], seq);
            else
                snprintf(buf, sizeof(buf), "%s:%s=%s", scope, sites[s], seq);
            items[k++] = gw_strdup(buf);
            total += strlen(buf) + 1;
        }
    }
    qsort(items, count, sizeof(*items), cmp_str);
    char *out = gw_malloc(total);
    out[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        if (i)
            strcat(out, " ");
        strcat(out, items[i]);
        gw_free(items[i]);
    }
    gw_free(items);
    return out;
}

static size_t channels_received(const struct node *n)
{
    size_t count = 0;
    for (size_t i = 0; i < n->n_got; i++)
        count += pubsub_publish_channels(n->got[i]);
    return count;
}

/* Checks that node n received exactly the expected channels. */
#define ASSERT_CHANNELS(n, expected)                                                               \
    do {                                                                                           \
        char *_got = channels_of(n);                                                               \
        int _ok = strcmp(_got, (expected)) == 0;                                                   \
        if (!_ok)                                                                                  \
            fprintf(stderr, "  got:      %s\n  expected: %s\n", _got, (expected));                 \
        gw_free(_got);                                                                             \
        ASSERT_TRUE(_ok);                                                                          \
    } while (0)

/* The documented shard function: FNV-1a 32-bit of the channel name. */
static uint32_t fnv1a32(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

/* ---- tests ---- */

FX_TEST(two_nodes_get_each_publish_once_with_seqs, 1, 2)
{
    struct node *a = &fx->nodes[0], *b = &fx->nodes[1];
    const char *msg = "{\"scope\":\"user\",\"site\":\"s1\",\"ids\":[\"u1\"],\"event\":\"ev\","
                      "\"data\":{\"x\":[1,\"two\"]}}";
    ASSERT_INT_EQ(publish(a, msg), 0);
    WAIT_FOR(fx, a->n_got >= 1 && b->n_got >= 1, WAIT_MS);
    for (size_t i = 0; i < 2; i++) {
        struct node *n = &fx->nodes[i];
        ASSERT_UINT_EQ(n->n_got, 1);
        struct pubsub_publish *p = n->got[0];
        ASSERT_TRUE(p->scope == PUBSUB_SCOPE_USER);
        ASSERT_STR_EQ(p->sites[0], "s1");
        ASSERT_UINT_EQ(p->n_ids, 1);
        ASSERT_STR_EQ(p->ids[0], "u1");
        ASSERT_STR_EQ(p->event, "ev");
        ASSERT_MEM_EQ(p->data, p->data_len, "{\"x\":[1,\"two\"]}", 15);
        ASSERT_TRUE(p->seqs != NULL);
        ASSERT_INT_EQ(p->seqs[0], 1);
    }
    ASSERT_INT_EQ(publish(a, msg), 0);
    WAIT_FOR(fx, a->n_got >= 2 && b->n_got >= 2, WAIT_MS);
    run_for(fx, 50); /* room for a duplicate to show up */
    for (size_t i = 0; i < 2; i++) {
        struct node *n = &fx->nodes[i];
        ASSERT_UINT_EQ(n->n_got, 2);
        ASSERT_TRUE(n->got[1]->seqs != NULL);
        ASSERT_INT_EQ(n->got[1]->seqs[0], 2);
        ASSERT_UINT_EQ(n->eng->stats.delivered, 2);
        ASSERT_UINT_EQ(n->eng->stats.malformed, 0);
        ASSERT_UINT_EQ(n->eng->stats.dropped, 0);
    }
    ASSERT_UINT_EQ(a->eng->stats.published, 2);
    ASSERT_UINT_EQ(b->eng->stats.published, 0);
    ASSERT_UINT_EQ(a->eng->stats.reconnects, 0);
}

FX_TEST(multi_site_multi_id_publish_arrives_complete, 1, 2)
{
    static const char *const sites[] = {"a", "b"};
    static const char *const ids[] = {"1", "2", "x:y"};
    const char *msg = "{\"scope\":\"client\",\"sites\":[\"a\",\"b\"],\"ids\":[1,\"2\",\"x:y\"],"
                      "\"event\":\"e\",\"data\":null}";
    ASSERT_INT_EQ(publish(&fx->nodes[1], msg), 0);
    WAIT_FOR(fx, channels_received(&fx->nodes[0]) >= 6 && channels_received(&fx->nodes[1]) >= 6,
             WAIT_MS);
    char *want = expected_channels("client", sites, 2, ids, 3, "1");
    ASSERT_CHANNELS(&fx->nodes[0], want);
    ASSERT_CHANNELS(&fx->nodes[1], want);
    gw_free(want);
    node_clear(&fx->nodes[0]);
    node_clear(&fx->nodes[1]);
    ASSERT_INT_EQ(publish(&fx->nodes[0], msg), 0);
    WAIT_FOR(fx, channels_received(&fx->nodes[0]) >= 6 && channels_received(&fx->nodes[1]) >= 6,
             WAIT_MS);
    want = expected_channels("client", sites, 2, ids, 3, "2");
    ASSERT_CHANNELS(&fx->nodes[0], want);
    ASSERT_CHANNELS(&fx->nodes[1], want);
    gw_free(want);

    /* Global over several sites. */
    node_clear(&fx->nodes[0]);
    node_clear(&fx->nodes[1]);
    ASSERT_INT_EQ(publish(&fx->nodes[0], "{\"scope\":\"global\",\"sites\":[\"a\",\"b\"],"
                                         "\"event\":\"e\",\"data\":1}"),
                  0);
    WAIT_FOR(fx, channels_received(&fx->nodes[0]) >= 2 && channels_received(&fx->nodes[1]) >= 2,
             WAIT_MS);
    want = expected_channels("global", sites, 2, NULL, 0, "1");
    ASSERT_CHANNELS(&fx->nodes[0], want);
    ASSERT_CHANNELS(&fx->nodes[1], want);
    gw_free(want);
}

/* Checks the counter of `channel` lives on its shard only, with the TTL set. */
static void check_key(struct fx *fx, const char *channel)
{
    char key[300];
    snprintf(key, sizeof(key), "sockjs-gateway:chan:%s", channel);
    uint32_t home = fnv1a32(channel) % 2;
    ASSERT_INT_EQ(sync_int(fx->srv[home].port, "EXISTS", key), 1);
    ASSERT_INT_EQ(sync_int(fx->srv[1 - home].port, "EXISTS", key), 0);
    long long ttl = sync_int(fx->srv[home].port, "PTTL", key);
    ASSERT_TRUE(ttl > 0 && ttl <= (long long)PUBSUB_SEQ_TTL_MS);
}

FX_TEST(two_shards_spread_channels_and_every_node_gets_everything, 2, 2)
{
    enum { N_IDS = 20 };
    static const char *const sites[] = {"s1", "s2"};
    char idbuf[N_IDS][8];
    const char *ids[N_IDS];
    char msg[2048] = "{\"scope\":\"user\",\"sites\":[\"s1\",\"s2\"],\"event\":\"e\",\"data\":[],"
                     "\"ids\":[";
    for (int i = 0; i < N_IDS; i++) {
        snprintf(idbuf[i], sizeof(idbuf[i]), "u%d", i);
        ids[i] = idbuf[i];
        snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), "%s\"%s\"", i ? "," : "", ids[i]);
    }
    strcat(msg, "]}");
    for (int round = 1; round <= 2; round++) {
        for (size_t i = 0; i < 2; i++)
            node_clear(&fx->nodes[i]);
        ASSERT_INT_EQ(publish(&fx->nodes[0], msg), 0);
        WAIT_FOR(fx,
                 channels_received(&fx->nodes[0]) >= 2 * N_IDS &&
                     channels_received(&fx->nodes[1]) >= 2 * N_IDS,
                 WAIT_MS);
        char *want = expected_channels("user", sites, 2, ids, N_IDS, round == 1 ? "1" : "2");
        ASSERT_CHANNELS(&fx->nodes[0], want);
        ASSERT_CHANNELS(&fx->nodes[1], want);
        gw_free(want);
        /* Split: more than one sub-publish per site. */
        ASSERT_TRUE(fx->nodes[1].n_got > 2);
    }
    for (size_t s = 0; s < 2; s++) {
        for (int i = 0; i < N_IDS; i++) {
            char channel[64];
            snprintf(channel, sizeof(channel), "user:%s:%s", sites[s], ids[i]);
            check_key(fx, channel);
        }
    }
    ASSERT_TRUE(sync_int(fx->srv[0].port, "DBSIZE", NULL) > 0);
    ASSERT_TRUE(sync_int(fx->srv[1].port, "DBSIZE", NULL) > 0);
    ASSERT_UINT_EQ(fx->nodes[0].eng->stats.published, 2);

    /* Global over sites that fall on both shards. */
    static const char *const gsites[] = {"g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7"};
    for (size_t i = 0; i < 2; i++)
        node_clear(&fx->nodes[i]);
    ASSERT_INT_EQ(publish(&fx->nodes[1], "{\"scope\":\"global\",\"sites\":[\"g0\",\"g1\",\"g2\","
                                         "\"g3\",\"g4\",\"g5\",\"g6\",\"g7\"],\"event\":\"e\","
                                         "\"data\":\"d\"}"),
                  0);
    WAIT_FOR(fx, channels_received(&fx->nodes[0]) >= 8 && channels_received(&fx->nodes[1]) >= 8,
             WAIT_MS);
    char *want = expected_channels("global", gsites, 8, NULL, 0, "1");
    ASSERT_CHANNELS(&fx->nodes[0], want);
    ASSERT_CHANNELS(&fx->nodes[1], want);
    gw_free(want);
    ASSERT_UINT_EQ(fx->nodes[0].n_got, 2); /* one sub-publish per shard */
    bool homes[2] = {false, false};
    for (size_t i = 0; i < GW_ARRAY_LEN(gsites); i++) {
        char channel[64];
        snprintf(channel, sizeof(channel), "global:%s", gsites[i]);
        homes[fnv1a32(channel) % 2] = true;
        check_key(fx, channel);
    }
    ASSERT_TRUE(homes[0] && homes[1]);
}

FX_TEST(raw_publish_from_a_backend_has_no_seqs, 1, 2)
{
    ASSERT_INT_EQ(sync_publish_raw(fx->srv[0].port, "{\"scope\":\"global\",\"site\":\"s\","
                                                    "\"event\":\"news\",\"data\":\"hi\"}"),
                  0);
    WAIT_FOR(fx, fx->nodes[0].n_got >= 1 && fx->nodes[1].n_got >= 1, WAIT_MS);
    for (size_t i = 0; i < 2; i++) {
        struct pubsub_publish *p = fx->nodes[i].got[0];
        ASSERT_TRUE(p->scope == PUBSUB_SCOPE_GLOBAL);
        ASSERT_STR_EQ(p->sites[0], "s");
        ASSERT_STR_EQ(p->event, "news");
        ASSERT_MEM_EQ(p->data, p->data_len, "\"hi\"", 4);
        ASSERT_TRUE(p->seqs == NULL);
        ASSERT_UINT_EQ(fx->nodes[i].eng->stats.delivered, 1);
    }
}

FX_TEST(malformed_messages_are_counted_and_skipped, 1, 2)
{
    static const char *const bad[] = {
        "not json",
        "{}",
        "[1,2]",
        "{\"scope\":\"nope\",\"site\":\"s\",\"event\":\"e\",\"data\":1}",
        "{\"scope\":\"user\",\"site\":\"s\",\"event\":\"e\",\"data\":1}",
        "{\"scope\":\"global\",\"site\":\"s\",\"event\":\"e\",\"data\":1,\"seqs\":[1,2]}",
        "{\"scope\":\"global\",\"site\":7,\"event\":\"e\",\"data\":1}",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++)
        ASSERT_INT_EQ(sync_publish_raw(fx->srv[0].port, bad[i]), 0);
    /* Over a limit: 101 sites. */
    char many[2048] = "{\"scope\":\"global\",\"event\":\"e\",\"data\":1,\"sites\":[";
    for (int i = 0; i < 101; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s\"s%d\"", i ? "," : "", i);
    strcat(many, "]}");
    ASSERT_INT_EQ(sync_publish_raw(fx->srv[0].port, many), 0);
    ASSERT_INT_EQ(publish(&fx->nodes[0], "{\"scope\":\"user\",\"site\":\"s\",\"ids\":[\"u\"],"
                                         "\"event\":\"ok\",\"data\":1}"),
                  0);
    WAIT_FOR(fx, fx->nodes[0].n_got >= 1 && fx->nodes[1].n_got >= 1, WAIT_MS);
    for (size_t i = 0; i < 2; i++) {
        struct node *n = &fx->nodes[i];
        ASSERT_UINT_EQ(n->n_got, 1);
        ASSERT_STR_EQ(n->got[0]->event, "ok");
        ASSERT_INT_EQ(n->got[0]->seqs[0], 1);
        ASSERT_UINT_EQ(n->eng->stats.malformed, GW_ARRAY_LEN(bad) + 1);
        ASSERT_UINT_EQ(n->eng->stats.delivered, 1);
        ASSERT_TRUE(pubsub_engine_available(n->eng));
    }
}

FX_TEST(flushed_script_falls_back_to_eval, 1, 1)
{
    struct node *n = &fx->nodes[0];
    const char *msg =
        "{\"scope\":\"user\",\"site\":\"s\",\"ids\":[\"u\"],\"event\":\"e\",\"data\":1}";
    ASSERT_INT_EQ(publish(n, msg), 0);
    WAIT_FOR(fx, n->n_got >= 1, WAIT_MS);
    ASSERT_INT_EQ(sync_status(fx->srv[0].port, "SCRIPT", "FLUSH"), 0);
    ASSERT_INT_EQ(publish(n, msg), 0);
    ASSERT_INT_EQ(publish(n, msg), 0);
    WAIT_FOR(fx, n->n_got >= 3, WAIT_MS);
    ASSERT_INT_EQ(n->got[1]->seqs[0], 2);
    ASSERT_INT_EQ(n->got[2]->seqs[0], 3);
    ASSERT_UINT_EQ(n->eng->stats.dropped, 0);
}

FX_TEST(redis_restart_refuses_then_resumes, 1, 2)
{
    struct node *a = &fx->nodes[0], *b = &fx->nodes[1];
    const char *msg =
        "{\"scope\":\"user\",\"site\":\"s\",\"ids\":[\"u\"],\"event\":\"e\",\"data\":1}";
    ASSERT_INT_EQ(publish(a, msg), 0);
    WAIT_FOR(fx, a->n_got >= 1 && b->n_got >= 1, WAIT_MS);

    /* Accepted, then the server dies before the loop sends it: dropped. */
    ASSERT_INT_EQ(publish(a, msg), 0);
    server_kill(&fx->srv[0]);
    WAIT_FOR(fx, none_available(fx), WAIT_MS);
    WAIT_FOR(fx, a->eng->stats.dropped >= 1, WAIT_MS);
    ASSERT_UINT_EQ(a->eng->stats.dropped, 1);
    ASSERT_UINT_EQ(a->eng->stats.published, 2);
    ASSERT_INT_EQ(publish(a, msg), GW_EAGAIN);
    ASSERT_INT_EQ(publish(b, msg), GW_EAGAIN);
    ASSERT_UINT_EQ(a->eng->stats.dropped, 2);
    ASSERT_UINT_EQ(b->eng->stats.dropped, 1);
    ASSERT_UINT_EQ(a->eng->stats.published, 2);
    run_for(fx, 300); /* a few reconnect attempts against nothing */
    ASSERT_TRUE(none_available(fx));

    ASSERT_INT_EQ(server_start(&fx->srv[0]), 0); /* same port */
    WAIT_FOR(fx, all_available(fx), WAIT_MS);
    ASSERT_TRUE(a->eng->stats.reconnects >= 1);
    ASSERT_TRUE(b->eng->stats.reconnects >= 1);
    node_clear(a);
    node_clear(b);
    ASSERT_INT_EQ(publish(b, msg), 0);
    WAIT_FOR(fx, a->n_got >= 1 && b->n_got >= 1, WAIT_MS);
    ASSERT_INT_EQ(a->got[0]->seqs[0], 1); /* a new server: counters start again */
    ASSERT_INT_EQ(b->got[0]->seqs[0], 1);
}

/* What a module learns from shard_ready: the instance is there for commands and publishes
 * alike (presence publishes its leaves from the reply of the command it sends then). */
struct ready_calls {
    struct pubsub_engine *eng;
    unsigned calls, calls_while_unavailable;
};

static void on_shard_ready(void *arg, size_t shard)
{
    struct ready_calls *rc = arg;
    (void)shard;
    rc->calls++;
    rc->calls_while_unavailable += !pubsub_engine_available(rc->eng);
}

FX_TEST(shard_ready_comes_once_both_connections_are_up, 1, 0)
{
    struct node n = {0};
    struct ready_calls rc = {0};
    n.eng = engine_for(fx, &n, &fx->srv[0], 1);
    ASSERT_TRUE(n.eng != NULL);
    rc.eng = n.eng;
    n.eng->shard_ready = on_shard_ready;
    n.eng->shard_ready_arg = &rc;
    WAIT_FOR(fx, rc.calls >= 1, WAIT_MS);
    server_kill(&fx->srv[0]);
    WAIT_FOR(fx, !pubsub_engine_available(n.eng), WAIT_MS);
    ASSERT_INT_EQ(server_start(&fx->srv[0]), 0);
    WAIT_FOR(fx, rc.calls >= 2, WAIT_MS);
    ASSERT_UINT_EQ(rc.calls_while_unavailable, 0);
    pubsub_engine_free(n.eng);
    node_clear(&n);
    gw_free(n.got);
}

/* A command's callback that sends another command, as presence's drain steps do. */
struct chained {
    struct pubsub_engine *eng;
    unsigned replies, null_replies;
    int resend_status;
};

static void ignore_reply(void *arg, struct redisReply *reply)
{
    (void)arg;
    (void)reply;
}

static void on_chained_reply(void *arg, struct redisReply *reply)
{
    struct chained *ch = arg;
    ch->replies++;
    ch->null_replies += reply == NULL;
    const char *argv[] = {"PING"};
    const size_t argvlen[] = {4};
    ch->resend_status = pubsub_engine_command(ch->eng, 0, PUBSUB_CONN_PUBLISHES, 1, argv, argvlen,
                                              ignore_reply, NULL);
}

/* Freeing the engine answers a command in flight with NULL; a command its callback sends then is
 * refused (the connection is gone), not sent on the freed context. */
FX_TEST(a_command_sent_from_a_reply_to_free_is_refused, 1, 0)
{
    struct node n = {0};
    n.eng = engine_for(fx, &n, &fx->srv[0], 1);
    ASSERT_TRUE(n.eng != NULL);
    WAIT_FOR(fx, pubsub_engine_available(n.eng), WAIT_MS);
    struct chained ch = {.eng = n.eng, .resend_status = 1};
    /* Blocks in Redis for 5 s: still in flight when the engine is freed. */
    const char *argv[] = {"BLPOP", "no-such-list", "5"};
    const size_t argvlen[] = {5, 12, 1};
    ASSERT_INT_EQ(pubsub_engine_command(n.eng, 0, PUBSUB_CONN_PUBLISHES, 3, argv, argvlen,
                                        on_chained_reply, &ch),
                  0);
    run_for(fx, 50);
    pubsub_engine_free(n.eng);
    ASSERT_UINT_EQ(ch.replies, 1);
    ASSERT_UINT_EQ(ch.null_replies, 1);
    ASSERT_TRUE(ch.resend_status != 0);
    node_clear(&n);
    gw_free(n.got);
}

/* The replies of the side-connection test, in the order they came. */
struct lanes {
    char order[4];
    size_t n;
    bool popped; /* BLPOP's reply is the value the side connection pushed */
};

static void on_blpop_reply(void *arg, struct redisReply *reply)
{
    struct lanes *l = arg;
    l->order[l->n++] = 'B';
    l->popped = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
                strcmp(reply->element[1]->str, "pushed") == 0;
}

static void on_side_reply(void *arg, struct redisReply *reply)
{
    struct lanes *l = arg;
    l->order[l->n++] = reply && reply->type != REDIS_REPLY_ERROR ? 'S' : 'x';
}

/* The publishes' connection of shard 0 waits on a BLPOP (for up to 10 s) ... */
static int hold_publishes_connection(struct pubsub_engine *eng, struct lanes *l)
{
    const char *blpop[] = {"BLPOP", "lanes-list", "10"};
    const size_t blpop_len[] = {5, 10, 2};
    return pubsub_engine_command(eng, 0, PUBSUB_CONN_PUBLISHES, 3, blpop, blpop_len, on_blpop_reply,
                                 l);
}

/* ... until the side connection pushes what it waits for. */
static int release_publishes_connection(struct pubsub_engine *eng, struct lanes *l)
{
    const char *push[] = {"LPUSH", "lanes-list", "pushed"};
    const size_t push_len[] = {5, 10, 6};
    return pubsub_engine_command(eng, 0, PUBSUB_CONN_SIDE, 3, push, push_len, on_side_reply, l);
}

/* A command on the side connection is answered while the publishes' connection waits (here on
 * a BLPOP; in production behind a backlog of syncs and publishes): presence's heartbeats must
 * not wait behind them, or a busy node looks silent to the others. */
FX_TEST(the_side_connection_does_not_wait_behind_the_publishes_one, 1, 0)
{
    struct node n = {0};
    n.eng = engine_for(fx, &n, &fx->srv[0], 1);
    ASSERT_TRUE(n.eng != NULL);
    WAIT_FOR(fx, pubsub_engine_available(n.eng), WAIT_MS);
    struct lanes l = {.n = 0};
    ASSERT_INT_EQ(hold_publishes_connection(n.eng, &l), 0);
    const char *ping[] = {"PING"};
    const size_t ping_len[] = {4};
    ASSERT_INT_EQ(
        pubsub_engine_command(n.eng, 0, PUBSUB_CONN_SIDE, 1, ping, ping_len, on_side_reply, &l), 0);
    WAIT_FOR(fx, l.n >= 1, WAIT_MS);
    ASSERT_INT_EQ(release_publishes_connection(n.eng, &l), 0);
    WAIT_FOR(fx, l.n >= 3, WAIT_MS);
    ASSERT_TRUE(memcmp(l.order, "SSB", 3) == 0 || memcmp(l.order, "SBS", 3) == 0);
    ASSERT_TRUE(l.popped);
    pubsub_engine_free(n.eng);
    node_clear(&n);
    gw_free(n.got);
}

/* Calls of `command` Redis counted since its last CONFIG RESETSTAT (INFO commandstats). */
static long long command_calls(int port, const char *command)
{
    redisContext *c = sync_connect(port);
    if (!c)
        return -1;
    redisReply *r = redisCommand(c, "INFO commandstats");
    char field[64];
    snprintf(field, sizeof(field), "cmdstat_%s:calls=", command);
    const char *at = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, field) : NULL;
    long long calls = !r || r->type != REDIS_REPLY_STRING ? -1
                      : at                                ? strtoll(at + strlen(field), NULL, 10)
                                                          : 0;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return calls;
}

static void count_done(void *arg)
{
    (*(unsigned *)arg)++;
}

/* Syncs asked while a query is in flight wait and go as one query: a Redis slower than the
 * session opens gets fewer, larger queries, not a backlog of one per open. Those cancelled
 * while they wait (their session gave up) are not asked at all. */
FX_TEST(syncs_asked_while_one_is_in_flight_go_as_one_query, 1, 0)
{
    struct node n = {0};
    n.eng = engine_for(fx, &n, &fx->srv[0], 1);
    ASSERT_TRUE(n.eng != NULL);
    WAIT_FOR(fx, pubsub_engine_available(n.eng), WAIT_MS);
    ASSERT_INT_EQ(sync_status(fx->srv[0].port, "CONFIG", "RESETSTAT"), 0);
    struct lanes l = {.n = 0};
    /* The publishes' connection waits on a BLPOP: the first sync's query waits behind it. */
    ASSERT_INT_EQ(hold_publishes_connection(n.eng, &l), 0);
    enum { SYNCS = 5 };
    static char names[SYNCS][32];
    struct pubsub_sync syncs[SYNCS];
    unsigned done = 0;
    for (int i = 0; i < SYNCS; i++) {
        snprintf(names[i], sizeof(names[i]), "user:S:batched-%d", i);
        memset(&syncs[i], 0, sizeof(syncs[i]));
        syncs[i].n = 1;
        syncs[i].ch[0].name = names[i];
        pubsub_sync_unknown(&syncs[i], 0);
        pubsub_engine_sync(n.eng, &syncs[i], count_done, &done);
    }
    run_for(fx, 50);
    ASSERT_UINT_EQ(done, 0);
    syncs[3].cancelled = syncs[4].cancelled = true;
    ASSERT_INT_EQ(release_publishes_connection(n.eng, &l), 0);
    WAIT_FOR(fx, done == SYNCS, WAIT_MS);
    for (int i = 0; i < SYNCS; i++) {
        char key[192];
        snprintf(key, sizeof(key), "sockjs-gateway:chan:%s", names[i]);
        bool asked = i < 3;
        ASSERT_TRUE(syncs[i].ch[0].at.seq == (asked ? 0 : -1));
        ASSERT_INT_EQ(sync_int(fx->srv[0].port, "EXISTS", key), asked ? 1 : 0);
        pubsub_sync_cleanup(&syncs[i]);
    }
    /* The first one alone, the two that waited and were not cancelled together. */
    ASSERT_INT_EQ(command_calls(fx->srv[0].port, "evalsha"), 2);
    pubsub_engine_free(n.eng);
    node_clear(&n);
    gw_free(n.got);
}

struct malformed_at_done {
    struct pubsub_engine *eng;
    bool done;
    uint64_t malformed;
};

static void note_malformed_at_done(void *arg)
{
    struct malformed_at_done *m = arg;
    m->done = true;
    m->malformed = m->eng->stats.malformed;
}

/* An answer that cannot be read still came from a script that ran: its barrier comes, and the
 * sync must end after it, behind every publish the script counted, not as soon as the answer
 * is read. The barrier is held back here by 4 MiB sent before it on the node's subscriber
 * connection (hundreds of reads), while the query's answer comes on the publishes' one. */
FX_TEST(a_sync_whose_answer_is_malformed_still_ends_after_its_barrier, 1, 0)
{
    struct node n = {0};
    n.eng = engine_for(fx, &n, &fx->srv[0], 1);
    ASSERT_TRUE(n.eng != NULL);
    WAIT_FOR(fx, pubsub_engine_available(n.eng), WAIT_MS);
    redisContext *c = sync_connect(fx->srv[0].port);
    ASSERT_TRUE(c != NULL);
    redisReply *r = redisCommand(c, "HSET sockjs-gateway:chan:user:S:corrupt e not-an-epoch!");
    ASSERT_TRUE(r && r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    size_t big_len = (size_t)4 << 20;
    char *big = gw_malloc(big_len);
    memset(big, 'x', big_len);
    r = redisCommand(c, "PUBLISH sockjs-gateway:publish %b", big, big_len);
    ASSERT_TRUE(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    freeReplyObject(r);
    redisFree(c);
    gw_free(big);

    struct pubsub_sync sync = {.n = 1};
    sync.ch[0].name = "user:S:corrupt";
    pubsub_sync_unknown(&sync, 0);
    struct malformed_at_done m = {.eng = n.eng};
    pubsub_engine_sync(n.eng, &sync, note_malformed_at_done, &m);
    WAIT_FOR(fx, m.done, WAIT_MS);
    ASSERT_TRUE(sync.ch[0].at.seq == -1);
    /* The too-large message before the barrier, and the answer. */
    ASSERT_UINT_EQ(m.malformed, 2);
    pubsub_sync_cleanup(&sync);
    pubsub_engine_free(n.eng);
    node_clear(&n);
    gw_free(n.got);
}

/* A reply on a connection that AUTHs with password and SELECTs db first; NULL when any fails. */
static redisReply *authed_command(int port, const char *password, int db, const char *fmt,
                                  const char *arg)
{
    redisContext *c = sync_connect(port);
    if (!c)
        return NULL;
    redisReply *r = redisCommand(c, "AUTH %s", password);
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    r = ok ? redisCommand(c, "SELECT %d", db) : NULL;
    ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    r = ok ? redisCommand(c, fmt, arg) : NULL;
    redisFree(c);
    return r;
}

static struct pubsub_engine *engine_at(struct fx *fx, struct node *n, const char *url,
                                       struct ready_calls *rc)
{
    const char *error = NULL;
    struct pubsub_engine *e =
        pubsub_engine_redis_new(fx->base, &url, 1, NULL, NULL, on_deliver, n, &error);
    if (!e)
        return NULL;
    rc->eng = e;
    e->shard_ready = on_shard_ready;
    e->shard_ready_arg = rc;
    return e;
}

FX_TEST(auth_and_select_come_before_the_shard_is_ready, 1, 0)
{
    int port = fx->srv[0].port;
    redisContext *c = sync_connect(port);
    ASSERT_TRUE(c != NULL);
    redisReply *r = redisCommand(c, "CONFIG SET requirepass %s", "unit-secret");
    ASSERT_TRUE(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
    char url[128];

    /* Refused: never ready, never available, whatever the time given to retry. */
    struct node bad = {0};
    struct ready_calls bad_rc = {0};
    snprintf(url, sizeof(url), "redis://:wrong@127.0.0.1:%d/2", port);
    bad.eng = engine_at(fx, &bad, url, &bad_rc);
    ASSERT_TRUE(bad.eng != NULL);
    run_for(fx, 400);
    bool bad_available = pubsub_engine_available(bad.eng);
    pubsub_engine_free(bad.eng);
    ASSERT_TRUE(!bad_available);
    ASSERT_UINT_EQ(bad_rc.calls, 0);

    /* Accepted: ready once both connections are authenticated, counters in db 2. */
    struct node n = {0};
    struct ready_calls rc = {0};
    snprintf(url, sizeof(url), "redis://:unit-secret@127.0.0.1:%d/2", port);
    n.eng = engine_at(fx, &n, url, &rc);
    ASSERT_TRUE(n.eng != NULL);
    WAIT_FOR(fx, rc.calls >= 1, WAIT_MS);
    ASSERT_UINT_EQ(rc.calls, 1);
    ASSERT_UINT_EQ(rc.calls_while_unavailable, 0);
    ASSERT_INT_EQ(publish(&n, "{\"scope\":\"global\",\"site\":\"db2\",\"event\":\"e\",\"data\":1}"),
                  0);
    WAIT_FOR(fx, n.n_got >= 1, WAIT_MS); /* heard on the authenticated subscriber */
    r = authed_command(port, "unit-secret", 2, "HGET %s s", "sockjs-gateway:chan:global:db2");
    bool in_db2 = r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "1") == 0;
    if (r)
        freeReplyObject(r);
    r = authed_command(port, "unit-secret", 0, "EXISTS %s", "sockjs-gateway:chan:global:db2");
    bool in_db0 = !r || r->type != REDIS_REPLY_INTEGER || r->integer != 0;
    if (r)
        freeReplyObject(r);
    pubsub_engine_free(n.eng);
    node_clear(&n);
    gw_free(n.got);
    ASSERT_TRUE(in_db2);
    ASSERT_TRUE(!in_db0);
}

FX_TEST(free_while_down_connecting_or_busy, 1, 2)
{
    /* Busy: publishes in flight when the engine goes. */
    struct node *a = &fx->nodes[0];
    for (int i = 0; i < 100; i++)
        ASSERT_INT_EQ(publish(a, "{\"scope\":\"global\",\"sites\":[\"a\",\"b\"],\"event\":\"e\","
                                 "\"data\":1}"),
                      0);
    run_for(fx, 1); /* some written, some replies on their way */
    pubsub_engine_free(a->eng);
    a->eng = NULL;
    /* The other node is undisturbed. */
    ASSERT_INT_EQ(publish(&fx->nodes[1], "{\"scope\":\"global\",\"site\":\"z\",\"event\":\"e\","
                                         "\"data\":1}"),
                  0);
    WAIT_FOR(fx,
             fx->nodes[1].n_got >= 1 &&
                 strcmp(fx->nodes[1].got[fx->nodes[1].n_got - 1]->sites[0], "z") == 0,
             WAIT_MS);

    /* Down: the server is gone and a retry timer is pending. */
    server_kill(&fx->srv[0]);
    WAIT_FOR(fx, none_available(fx), WAIT_MS);
    pubsub_engine_free(fx->nodes[1].eng);
    fx->nodes[1].eng = NULL;
    run_for(fx, 200);

    /* Connected but the handshake unanswered: a listener that never accepts. */
    int silent = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sa_len = sizeof(sa);
    ASSERT_TRUE(silent >= 0 && bind(silent, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                listen(silent, 8) == 0 &&
                getsockname(silent, (struct sockaddr *)&sa, &sa_len) == 0);
    struct server mute = {.port = ntohs(sa.sin_port)};
    struct node m = {0};
    m.eng = engine_for(fx, &m, &mute, 1);
    run_for(fx, 100);
    bool up = pubsub_engine_available(m.eng);
    pubsub_engine_free(m.eng);
    close(silent);
    ASSERT_TRUE(!up);

    /* Connecting, and right after the first refusals. */
    struct node n = {0};
    struct server nothing = {.port = free_port()};
    n.eng = engine_for(fx, &n, &nothing, 1);
    ASSERT_TRUE(n.eng != NULL);
    pubsub_engine_free(n.eng);
    n.eng = engine_for(fx, &n, &nothing, 1);
    ASSERT_TRUE(n.eng != NULL);
    run_for(fx, 150);
    ASSERT_TRUE(!pubsub_engine_available(n.eng));
    ASSERT_INT_EQ(publish(&n, "{\"scope\":\"global\",\"site\":\"a\",\"event\":\"e\",\"data\":1}"),
                  GW_EAGAIN);
    ASSERT_UINT_EQ(n.eng->stats.dropped, 1);
    pubsub_engine_free(n.eng);
    run_for(fx, 50);
}

FX_TEST(free_from_inside_the_deliver_callback, 1, 2)
{
    fx->nodes[1].free_in_deliver = true;
    ASSERT_INT_EQ(publish(&fx->nodes[0], "{\"scope\":\"global\",\"site\":\"a\",\"event\":\"e\","
                                         "\"data\":1}"),
                  0);
    ASSERT_INT_EQ(publish(&fx->nodes[0], "{\"scope\":\"global\",\"site\":\"a\",\"event\":\"e\","
                                         "\"data\":2}"),
                  0);
    WAIT_FOR(fx, fx->nodes[0].n_got >= 2 && fx->nodes[1].n_got >= 1, WAIT_MS);
    ASSERT_TRUE(fx->nodes[1].eng == NULL);
    run_for(fx, 50);
    ASSERT_UINT_EQ(fx->nodes[1].n_got, 1);
}

FX_TEST(pending_replies_are_bounded, 1, 1)
{
    struct node *n = &fx->nodes[0];
    const char *msg =
        "{\"scope\":\"user\",\"site\":\"s\",\"ids\":[\"u\"],\"event\":\"e\",\"data\":1}";
    /* A stopped server keeps the connections open and answers nothing. */
    ASSERT_INT_EQ(kill(fx->srv[0].pid, SIGSTOP), 0);
    fx->srv[0].stopped = true;
    for (int i = 0; i < 10000; i++) {
        int rc = publish(n, msg);
        if (rc != 0)
            GW_FAIL_AT("publish %d: %d", i, rc);
        if (i % 1000 == 0)
            run_for(fx, 1); /* let some of it reach the socket */
    }
    ASSERT_INT_EQ(publish(n, msg), GW_EAGAIN);
    ASSERT_UINT_EQ(n->eng->stats.dropped, 1);
    ASSERT_UINT_EQ(n->eng->stats.published, 10000);
    ASSERT_TRUE(pubsub_engine_available(n->eng));
    ASSERT_INT_EQ(kill(fx->srv[0].pid, SIGCONT), 0);
    fx->srv[0].stopped = false;
    WAIT_FOR(fx, n->n_got >= 10000, 60000);
    ASSERT_INT_EQ(n->got[9999]->seqs[0], 10000);
    ASSERT_INT_EQ(publish(n, msg), 0);
    WAIT_FOR(fx, n->n_got >= 10001, WAIT_MS);
    ASSERT_UINT_EQ(n->eng->stats.dropped, 1);
}

/* Whether the URL is accepted (the engine is freed at once). */
static bool try_url(const char *url, const char **error)
{
    struct event_base *base = event_base_new();
    *error = NULL;
    struct pubsub_engine *e =
        pubsub_engine_redis_new(base, &url, 1, NULL, NULL, on_deliver, NULL, error);
    if (e)
        pubsub_engine_free(e);
    event_base_free(base);
    return e != NULL;
}

TEST(urls_are_checked)
{
    /* Every form and refusal is in test_redis_url; here, that the engine uses that parser. */
    static const char *const bad[] = {
        "",
        "redis://",
        "redis://127.0.0.1:0",
        "redis://127.0.0.1:65536",
        "redis://127.0.0.1:6379x",
        "redis://:6379",
        "redis://127.0.0.1:6379/x",
        "http://127.0.0.1:6379",
        "rediss://127.0.0.1:6379",
    };
    const char *error;
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        if (try_url(bad[i], &error))
            GW_FAIL_AT("accepted \"%s\"", bad[i]);
        ASSERT_TRUE(error != NULL);
    }
    /* The message names the URL, masked. */
    ASSERT_TRUE(!try_url("rediss://app:topsecret@127.0.0.1:6379", &error));
    ASSERT_TRUE(strstr(error, "rediss://app:***@127.0.0.1:6379") != NULL);
    ASSERT_TRUE(strstr(error, "topsecret") == NULL);
    process_setup();
    char ok[64];
    snprintf(ok, sizeof(ok), "redis://localhost:%d", free_port());
    ASSERT_TRUE(try_url(ok, &error));
    snprintf(ok, sizeof(ok), "redis://127.0.0.1:%d", free_port());
    ASSERT_TRUE(try_url(ok, &error));
    snprintf(ok, sizeof(ok), "redis://:pw@[::1]:%d/3", free_port());
    ASSERT_TRUE(try_url(ok, &error));
    ASSERT_TRUE(try_url("unix:///nonexistent/redis.sock?db=1", &error));
    /* Freed while its name is being resolved. */
    ASSERT_TRUE(try_url("redis://redis.example.invalid:6379", &error));
    struct event_base *base = event_base_new();
    error = NULL;
    ASSERT_TRUE(pubsub_engine_redis_new(base, NULL, 0, NULL, NULL, on_deliver, NULL, &error) ==
                NULL);
    ASSERT_TRUE(error != NULL);
    event_base_free(base);
}

GW_TEST_MAIN(TEST_CASE(urls_are_checked), TEST_CASE(two_nodes_get_each_publish_once_with_seqs),
             TEST_CASE(multi_site_multi_id_publish_arrives_complete),
             TEST_CASE(two_shards_spread_channels_and_every_node_gets_everything),
             TEST_CASE(raw_publish_from_a_backend_has_no_seqs),
             TEST_CASE(malformed_messages_are_counted_and_skipped),
             TEST_CASE(a_sync_whose_answer_is_malformed_still_ends_after_its_barrier),
             TEST_CASE(flushed_script_falls_back_to_eval),
             TEST_CASE(redis_restart_refuses_then_resumes),
             TEST_CASE(shard_ready_comes_once_both_connections_are_up),
             TEST_CASE(a_command_sent_from_a_reply_to_free_is_refused),
             TEST_CASE(the_side_connection_does_not_wait_behind_the_publishes_one),
             TEST_CASE(syncs_asked_while_one_is_in_flight_go_as_one_query),
             TEST_CASE(auth_and_select_come_before_the_shard_is_ready),
             TEST_CASE(free_while_down_connecting_or_busy),
             TEST_CASE(free_from_inside_the_deliver_callback),
             TEST_CASE(pending_replies_are_bounded))
