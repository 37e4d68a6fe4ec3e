/*
 * publisher: drives the gateway's publish API (docs/PROTOCOL.md, "Publish API") with timed
 * events, for loadgen to receive.
 *
 *   publisher --api HOST:PORT --api-key KEY --scope user|client|global [--site bench]
 *             [--ids ID,ID,... | --random-users U] [--event bench] [--data-bytes 64]
 *             [--rate R] [--batch B] [--window W] [--conns K]
 *             [--duration S] [--count N] [--timeout S] [--seed N]
 *
 * Each request is `POST /api/publish` with `Authorization: Bearer KEY` on a keep-alive HTTP/1.1
 * connection (K connections, --window requests in flight over all of them, pipelined). Its
 * body is one publish object, or with --batch B > 1 an array of B. A publish is
 *   {"scope":S,"site":SITE,"ids":[...],"event":E,"data":{"t":<ns>,"p":"xx..."}}
 * with t = CLOCK_REALTIME in nanoseconds taken as the request is written (loadgen's latency
 * reference) and "p" padding the data to --data-bytes (at least 25, the data without padding).
 * ids: the --ids list in every publish (strings), or with --random-users U one random "u<r>",
 * r < U (loadgen's token scheme); none for scope global.
 *
 * Pacing: --rate R publishes per second on a fixed schedule (a late request goes out as soon as
 * the window allows, so the mean rate holds); --rate 0 sends as fast as the gateway answers,
 * i.e. keeps the window full. It stops sending after --count publishes or --duration seconds
 * (default 10 s if neither is given), waits for the outstanding answers and prints one JSON line
 * on stdout:
 *   {"tool":"publisher","scope":..,"publishes":..,"accepted":..,"rejected":{"503":n,...},
 *    "errors":..,"requests":..,"seconds":..,"publish_rate":..,"request_rate":..,"data_bytes":..,
 *    "error":null|"..."}
 * accepted = publishes in requests answered 202; rejected counts publishes by answer status;
 * errors = publishes whose request got no answer (connection closed). seconds runs from the first
 * request to the last answer. --timeout (default: duration + 30 s) bounds everything. Exit status
 * 0 if every publish was accepted, 1 otherwise, 2 for bad usage.
 */
#include <err.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_util.h"

#define MAX_CONNS 64
#define MAX_RESPONSE_HEAD 8192
#define TICK_US 1000

enum scope { SCOPE_USER, SCOPE_CLIENT, SCOPE_GLOBAL };
static const char *const scope_names[] = {"user", "client", "global"};

static struct {
    struct bench_target api;
    const char *key;
    enum scope scope;
    int scope_set;
    const char *site;
    char *ids_json; /* "\"a\",\"b\"" from --ids */
    long random_users;
    const char *event;
    long data_bytes;
    double rate;
    long batch;
    long window;
    int conns;
    double duration;
    long long count;
    double timeout;
    uint64_t seed;
} opt = {
    .site = "bench",
    .event = "bench",
    .data_bytes = 64,
    .batch = 1,
    .window = 4,
    .conns = 1,
    .duration = -1,
    .timeout = -1,
};

struct conn {
    int fd;
    int connected;
    struct event *ev;
    struct evbuffer *in, *out;
    long *ring; /* publishes per outstanding request, oldest at head */
    long head, n_out;
    long cap;
};

static struct {
    struct event_base *base;
    struct conn c[MAX_CONNS];
    struct event *tick, *deadline, *ev_int, *ev_term;
    int64_t start_ns, first_send_ns, last_answer_ns;
    long long sent, accepted, errors, requests, answered_requests;
    long long by_status[600];
    long n_out; /* requests in flight */
    int done_sending;
    const char *error;
    uint64_t rng;
    struct evbuffer *body; /* scratch for one request body */
    char pad[65536];
} S;

static uint64_t rnd(void)
{
    /* xorshift64*: cheap and good enough for picking users. */
    S.rng ^= S.rng >> 12;
    S.rng ^= S.rng << 25;
    S.rng ^= S.rng >> 27;
    return S.rng * 2685821657736338717ull;
}

static void finish(void);

static void conn_fail(struct conn *c, const char *why)
{
    long lost = 0;

    for (long k = 0; k < c->n_out; k++)
        lost += c->ring[(c->head + k) % c->cap];
    if (lost || !S.done_sending)
        warnx("API connection: %s (%ld publishes unanswered)", why, lost);
    S.errors += lost;
    S.n_out -= c->n_out;
    c->n_out = 0;
    event_del(c->ev);
    close(c->fd);
    c->fd = -1;
    c->connected = 0;
    if (!S.error)
        S.error = "API connection failed";
    /* No reconnect: a benchmark whose API connection breaks is broken; report it. */
    S.done_sending = 1;
    finish();
}

static void on_conn(evutil_socket_t fd, short what, void *arg);

static void want_write(struct conn *c, int on)
{
    short ev = (short)(EV_READ | EV_PERSIST | (on ? EV_WRITE : 0));

    if (event_get_events(c->ev) == ev)
        return;
    event_del(c->ev);
    event_assign(c->ev, S.base, c->fd, ev, on_conn, c);
    event_add(c->ev, NULL);
}

static void flush(struct conn *c)
{
    while (evbuffer_get_length(c->out)) {
        int w = evbuffer_write(c->out, c->fd);

        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            conn_fail(c, strerror(errno));
            return;
        }
    }
    want_write(c, evbuffer_get_length(c->out) > 0);
}

/* One publish object, timestamped now. */
static void add_publish(struct evbuffer *b, int64_t t)
{
    char data[96];
    int dl = snprintf(data, sizeof(data), "{\"t\":%lld", (long long)t);
    long pad = opt.data_bytes - dl - 7 - 1; /* ,"p":"" and } */

    evbuffer_add_printf(b, "{\"scope\":\"%s\",\"site\":\"%s\",", scope_names[opt.scope], opt.site);
    if (opt.scope != SCOPE_GLOBAL) {
        if (opt.random_users > 0)
            evbuffer_add_printf(b, "\"ids\":[\"u%llu\"],",
                                (unsigned long long)(rnd() % (uint64_t)opt.random_users));
        else
            evbuffer_add_printf(b, "\"ids\":[%s],", opt.ids_json);
    }
    evbuffer_add_printf(b, "\"event\":\"%s\",\"data\":%s", opt.event, data);
    if (pad >= 0)
        evbuffer_add_printf(b, ",\"p\":\"%.*s\"", (int)pad, S.pad);
    evbuffer_add(b, "}}", 2);
}

static void send_request(struct conn *c, long pubs)
{
    int64_t t = bench_realtime_ns();
    size_t len;

    evbuffer_drain(S.body, evbuffer_get_length(S.body));
    if (opt.batch > 1)
        evbuffer_add(S.body, "[", 1);
    for (long k = 0; k < pubs; k++) {
        if (k)
            evbuffer_add(S.body, ",", 1);
        add_publish(S.body, t);
    }
    if (opt.batch > 1)
        evbuffer_add(S.body, "]", 1);
    len = evbuffer_get_length(S.body);
    evbuffer_add_printf(c->out,
                        "POST /api/publish HTTP/1.1\r\n"
                        "Host: %s:%d\r\n"
                        "Authorization: Bearer %s\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: %zu\r\n"
                        "\r\n",
                        opt.api.host, opt.api.port, opt.key, len);
    evbuffer_add_buffer(c->out, S.body);
    c->ring[(c->head + c->n_out) % c->cap] = pubs;
    c->n_out++;
    S.n_out++;
    S.sent += pubs;
    S.requests++;
    if (!S.first_send_ns)
        S.first_send_ns = bench_monotonic_ns();
    flush(c);
}

/* The publishes the schedule allows now (all of them for --rate 0). */
static long long allowed_now(void)
{
    long long cap = opt.count > 0 ? opt.count : -1, a;

    if (opt.rate <= 0)
        return cap >= 0 ? cap : S.sent + opt.batch;
    a = (long long)(opt.rate * (double)(bench_monotonic_ns() - S.start_ns) / 1e9) + 1;
    return cap >= 0 && a > cap ? cap : a;
}

static void pump(void)
{
    int64_t now = bench_monotonic_ns();

    if (S.done_sending)
        return;
    if (opt.duration > 0 && (double)(now - S.start_ns) / 1e9 >= opt.duration) {
        S.done_sending = 1;
        finish();
        return;
    }
    for (;;) {
        long long allowed = allowed_now();
        long pubs = opt.batch;
        struct conn *best = NULL;

        if (opt.count > 0 && S.sent >= opt.count) {
            S.done_sending = 1;
            finish();
            return;
        }
        if (S.sent >= allowed || S.n_out >= opt.window)
            return;
        if (opt.count > 0 && S.sent + pubs > opt.count)
            pubs = (long)(opt.count - S.sent);
        for (int k = 0; k < opt.conns; k++) {
            struct conn *c = &S.c[k];

            if (c->connected && c->n_out < c->cap && (!best || c->n_out < best->n_out))
                best = c;
        }
        if (!best)
            return;
        send_request(best, pubs);
        if (S.done_sending)
            return;
    }
}

/* Parses one complete response at p (n bytes available); returns its length, 0 if incomplete,
 * -1 if malformed. Sets *status and *close. */
static long parse_response(const char *p, size_t n, int *status, int *close_after)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4), *line;
    long head_len, body = -1;
    int chunked = 0;

    if (!end)
        return n > MAX_RESPONSE_HEAD ? -1 : 0;
    head_len = end + 4 - p;
    if (n < 12 || strncmp(p, "HTTP/1.", 7) != 0)
        return -1;
    *status = (int)bench_parse_uint(p + 9, 3, 10);
    *close_after = p[7] == '0';
    for (line = memchr(p, '\n', (size_t)head_len); line && line < end;
         line = memchr(line + 1, '\n', (size_t)(end - line))) {
        const char *h = line + 1, *eol = memchr(h, '\r', (size_t)(end + 2 - h));
        size_t ll = eol ? (size_t)(eol - h) : 0;

        if (ll > 15 && strncasecmp(h, "Content-Length:", 15) == 0) {
            const char *v = h + 15;

            while (v < eol && *v == ' ')
                v++;
            body = (long)bench_parse_uint(v, (size_t)(eol - v), 10);
        } else if (ll > 18 && strncasecmp(h, "Transfer-Encoding:", 18) == 0) {
            chunked = memmem(h, ll, "chunked", 7) != NULL;
        } else if (ll > 11 && strncasecmp(h, "Connection:", 11) == 0) {
            if (memmem(h, ll, "close", 5))
                *close_after = 1;
        }
    }
    if (chunked) {
        size_t pos = (size_t)head_len;

        for (;;) {
            const char *crlf = memmem(p + pos, n - pos, "\r\n", 2);
            long size;

            if (!crlf)
                return 0;
            size = (long)bench_parse_uint(p + pos, (size_t)(crlf - (p + pos)), 16);
            pos = (size_t)(crlf + 2 - p);
            if (size == 0) {
                /* no trailers expected: the final CRLF */
                return n - pos >= 2 ? (long)pos + 2 : 0;
            }
            if (n - pos < (size_t)size + 2)
                return 0;
            pos += (size_t)size + 2;
        }
    }
    if (body < 0)
        body = 0; /* the API always sends a length; a bodyless answer (e.g. 204) has none */
    return n - (size_t)head_len >= (size_t)body ? head_len + body : 0;
}

static void read_responses(struct conn *c)
{
    for (;;) {
        size_t n = evbuffer_get_length(c->in);
        int status = 0, close_after = 0;
        long len;

        if (!n)
            return;
        len = parse_response((const char *)evbuffer_pullup(c->in, -1), n, &status, &close_after);
        if (len == 0)
            return;
        if (len < 0 || !c->n_out) {
            conn_fail(c, len < 0 ? "malformed response" : "response without a request");
            return;
        }
        evbuffer_drain(c->in, (size_t)len);
        long pubs = c->ring[c->head];

        c->head = (c->head + 1) % c->cap;
        c->n_out--;
        S.n_out--;
        S.answered_requests++;
        S.last_answer_ns = bench_monotonic_ns();
        if (status == 202)
            S.accepted += pubs;
        else if (status >= 100 && status < 600)
            S.by_status[status] += pubs;
        else
            S.errors += pubs;
        if (close_after) {
            conn_fail(c, "the server closed the connection");
            return;
        }
    }
}

static void on_conn(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    if (!c->connected) {
        int e = 0;
        socklen_t sl = sizeof(e);

        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) < 0 || e) {
            conn_fail(c, strerror(e ? e : errno));
            return;
        }
        c->connected = 1;
        want_write(c, 0);
        pump();
        return;
    }
    if (what & EV_WRITE) {
        flush(c);
        if (c->fd < 0)
            return;
    }
    if (what & EV_READ) {
        int r = evbuffer_read(c->in, fd, 65536);

        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r <= 0) {
            conn_fail(c, r == 0 ? "the server closed the connection" : strerror(errno));
            return;
        }
        read_responses(c);
        if (c->fd >= 0) {
            pump();
            finish();
        }
    }
}

/* Ends the loop once sending is over and every answer is in. */
static void finish(void)
{
    if (S.done_sending && S.n_out == 0)
        event_base_loopbreak(S.base);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    pump();
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    if (!S.error)
        S.error = S.done_sending ? "--timeout waiting for answers" : "--timeout while sending";
    event_base_loopbreak(S.base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    S.done_sending = 1;
    finish();
}

static void conn_open(struct conn *c)
{
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        err(1, "socket");
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (const struct sockaddr *)&opt.api.addr, sizeof(opt.api.addr)) < 0 &&
        errno != EINPROGRESS)
        err(1, "connect %s:%d", opt.api.host, opt.api.port);
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->cap = (opt.window + opt.conns - 1) / opt.conns;
    c->ring = calloc((size_t)c->cap, sizeof(*c->ring));
    c->ev = event_new(S.base, c->fd, EV_WRITE, on_conn, c);
    if (!c->in || !c->out || !c->ring || !c->ev || event_add(c->ev, NULL) < 0)
        errx(1, "out of memory");
}

static void print_summary(void)
{
    double secs = S.first_send_ns && S.last_answer_ns > S.first_send_ns
                      ? (double)(S.last_answer_ns - S.first_send_ns) / 1e9
                      : 0;
    int first = 1;
    long long rejected = 0;

    for (long k = 0; k < opt.conns; k++) {
        struct conn *c = &S.c[k];

        for (long j = 0; j < c->n_out; j++)
            S.errors += c->ring[(c->head + j) % c->cap];
    }
    printf("{\"tool\":\"publisher\",\"scope\":\"%s\",\"publishes\":%lld,\"accepted\":%lld,"
           "\"rejected\":{",
           scope_names[opt.scope], S.sent, S.accepted);
    for (int s = 0; s < 600; s++) {
        if (!S.by_status[s])
            continue;
        printf("%s\"%d\":%lld", first ? "" : ",", s, S.by_status[s]);
        rejected += S.by_status[s];
        first = 0;
    }
    printf("},\"errors\":%lld,\"requests\":%lld,\"seconds\":%.3f,\"publish_rate\":%.1f,"
           "\"request_rate\":%.1f,\"data_bytes\":%ld,",
           S.errors, S.requests, secs, secs > 0 ? (double)S.accepted / secs : 0.0,
           secs > 0 ? (double)S.answered_requests / secs : 0.0, opt.data_bytes);
    if (!S.error && (rejected || S.errors))
        S.error = "not every publish was accepted";
    if (S.error)
        printf("\"error\":\"%s\"}\n", S.error);
    else
        printf("\"error\":null}\n");
    fflush(stdout);
}

/* ---- options ------------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: publisher --api HOST:PORT --api-key KEY --scope user|client|global\n"
            "         [--site bench] [--ids ID,ID,... | --random-users U] [--event bench]\n"
            "         [--data-bytes 64] [--rate R] [--batch B] [--window W] [--conns K]\n"
            "         [--duration S] [--count N] [--timeout S] [--seed N]\n"
            "Publishes timed events through the gateway's publish API (127.0.0.0/8 only) and\n"
            "prints one JSON summary line. See bench/README.md.\n");
    exit(2);
}

/* Names go into the JSON bodies unescaped: keep them plain. */
static void check_name(const char *s, const char *what)
{
    if (!*s || strlen(s) > 256)
        errx(2, "%s: 1 to 256 bytes", what);
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\')
            errx(2, "%s: no quotes, backslashes or control characters", what);
}

static char *ids_to_json(const char *list)
{
    size_t cap = strlen(list) * 3 + 3, o = 0;
    char *out = malloc(cap), *copy = strdup(list), *save = NULL;

    if (!out || !copy)
        errx(1, "out of memory");
    for (char *id = strtok_r(copy, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
        check_name(id, "--ids");
        o += (size_t)snprintf(out + o, cap - o, "%s\"%s\"", o ? "," : "", id);
    }
    free(copy);
    if (!o)
        errx(2, "--ids: at least one id");
    return out;
}

static void parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"api", required_argument, NULL, 'a'},
        {"api-key", required_argument, NULL, 'k'},
        {"scope", required_argument, NULL, 's'},
        {"site", required_argument, NULL, 'S'},
        {"ids", required_argument, NULL, 'i'},
        {"random-users", required_argument, NULL, 'u'},
        {"event", required_argument, NULL, 'e'},
        {"data-bytes", required_argument, NULL, 'd'},
        {"rate", required_argument, NULL, 'r'},
        {"batch", required_argument, NULL, 'b'},
        {"window", required_argument, NULL, 'w'},
        {"conns", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'D'},
        {"count", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 't'},
        {"seed", required_argument, NULL, 'z'},
        {NULL, 0, NULL, 0},
    };
    int ch, have_api = 0;

    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'a':
            bench_parse_target(optarg, &opt.api, "--api");
            have_api = 1;
            break;
        case 'k':
            opt.key = optarg;
            break;
        case 's':
            opt.scope_set = 1;
            if (strcmp(optarg, "user") == 0)
                opt.scope = SCOPE_USER;
            else if (strcmp(optarg, "client") == 0)
                opt.scope = SCOPE_CLIENT;
            else if (strcmp(optarg, "global") == 0)
                opt.scope = SCOPE_GLOBAL;
            else
                errx(2, "--scope: user, client or global");
            break;
        case 'S':
            opt.site = optarg;
            break;
        case 'i':
            opt.ids_json = ids_to_json(optarg);
            break;
        case 'u':
            opt.random_users = (long)bench_parse_option_number(optarg, "random-users");
            break;
        case 'e':
            opt.event = optarg;
            break;
        case 'd':
            opt.data_bytes = (long)bench_parse_option_number(optarg, "data-bytes");
            break;
        case 'r':
            opt.rate = bench_parse_option_number(optarg, "rate");
            break;
        case 'b':
            opt.batch = (long)bench_parse_option_number(optarg, "batch");
            break;
        case 'w':
            opt.window = (long)bench_parse_option_number(optarg, "window");
            break;
        case 'c':
            opt.conns = (int)bench_parse_option_number(optarg, "conns");
            break;
        case 'D':
            opt.duration = bench_parse_option_number(optarg, "duration");
            break;
        case 'n':
            opt.count = (long long)bench_parse_option_number(optarg, "count");
            break;
        case 't':
            opt.timeout = bench_parse_option_number(optarg, "timeout");
            break;
        case 'z':
            opt.seed = (uint64_t)bench_parse_option_number(optarg, "seed");
            break;
        default:
            usage();
        }
    }
    if (optind != argc || !have_api || !opt.key || !opt.scope_set || opt.batch < 1 ||
        opt.window < 1 || opt.conns < 1 || opt.conns > MAX_CONNS || opt.conns > opt.window)
        usage();
    check_name(opt.site, "--site");
    check_name(opt.event, "--event");
    check_name(opt.key, "--api-key");
    if (opt.scope == SCOPE_GLOBAL && (opt.ids_json || opt.random_users))
        errx(2, "--scope global takes no ids");
    if (opt.scope != SCOPE_GLOBAL && !opt.ids_json == !opt.random_users)
        errx(2, "--scope %s needs either --ids or --random-users", scope_names[opt.scope]);
    if (opt.random_users && opt.scope != SCOPE_USER)
        errx(2, "--random-users is for --scope user");
    if (opt.data_bytes > (long)sizeof(S.pad))
        errx(2, "--data-bytes: at most %zu", sizeof(S.pad));
    if (opt.duration < 0 && opt.count <= 0)
        opt.duration = 10;
    if (opt.timeout < 0)
        opt.timeout = (opt.duration > 0 ? opt.duration
                       : opt.rate > 0   ? (double)opt.count / opt.rate
                                        : 60) +
                      30;
}

int main(int argc, char **argv)
{
    struct timeval tick = {0, TICK_US};
    struct timeval deadline;
    int status;

    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    memset(S.pad, 'x', sizeof(S.pad));
    S.rng = opt.seed ? opt.seed : (uint64_t)bench_realtime_ns() | 1;
    S.base = event_base_new();
    S.body = evbuffer_new();
    if (!S.base || !S.body)
        errx(1, "out of memory");
    S.start_ns = bench_monotonic_ns();
    for (int k = 0; k < opt.conns; k++)
        conn_open(&S.c[k]);
    deadline.tv_sec = (time_t)opt.timeout;
    deadline.tv_usec = (suseconds_t)((opt.timeout - floor(opt.timeout)) * 1e6);
    S.tick = event_new(S.base, -1, EV_PERSIST, on_tick, NULL);
    S.deadline = evtimer_new(S.base, on_deadline, NULL);
    S.ev_int = evsignal_new(S.base, SIGINT, on_signal, NULL);
    S.ev_term = evsignal_new(S.base, SIGTERM, on_signal, NULL);
    if (!S.tick || !S.deadline || !S.ev_int || !S.ev_term)
        errx(1, "out of memory");
    event_add(S.tick, &tick);
    evtimer_add(S.deadline, &deadline);
    evsignal_add(S.ev_int, NULL);
    evsignal_add(S.ev_term, NULL);

    event_base_dispatch(S.base);

    print_summary();
    status = S.error ? 1 : 0;
    if (S.error)
        warnx("%s", S.error);
    for (int k = 0; k < opt.conns; k++) {
        struct conn *c = &S.c[k];

        if (c->fd >= 0)
            close(c->fd);
        event_free(c->ev);
        evbuffer_free(c->in);
        evbuffer_free(c->out);
        free(c->ring);
    }
    event_free(S.tick);
    event_free(S.deadline);
    event_free(S.ev_int);
    event_free(S.ev_term);
    evbuffer_free(S.body);
    event_base_free(S.base);
    free(opt.ids_json);
    return status;
}
