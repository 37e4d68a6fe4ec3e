/*
 * latency_client: opens N SockJS websocket sessions on a gateway, each with its own JWT in the
 * URL query, and measures how long published events take to arrive.
 *
 * Session i connects as `GET <prefix>/000/<pid>-<i>/websocket?token=<line i of --tokens>` with
 * an RFC 6455 client handshake (Sec-WebSocket-Accept checked) and counts as open once its first
 * text frame, `o`, has arrived. When all are open it prints `ready N`. From then on, every
 * SockJS message frame (`a[...]`) is searched for the publish time the driver embedded in the
 * event's data as `"t": <CLOCK_REALTIME nanoseconds>` (escaped inside the SockJS string as
 * `\"t\":`); the latency is the CLOCK_REALTIME read right after the read() that completed the
 * frame minus that time. Same machine, same clock: no skew to correct.
 *
 * It stops when --expect latencies are collected, at stdin EOF, or --timeout seconds after
 * `ready`, and prints one line:
 *   done RECEIVED LOST_SESSIONS P50_US P90_US P99_US P999_US MAX_US
 * (microseconds; percentiles by nearest rank). Exit 1 with a reason on stderr if the sessions
 * could not all be opened. Loopback only.
 *
 * Connection states:
 *
 *   CONNECTING --writable--> HANDSHAKE --101 + accept ok--> WAIT_OPEN --"o"--> OPEN
 *        \______________________\___________________________\_____________\--> CLOSED
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define MAX_RESPONSE 4096
#define MAX_CONTROL_PAYLOAD 125
/* Text frames up to this size are kept to look for the timestamp; events here are small. */
#define MAX_TEXT 8192

enum conn_state { ST_CONNECTING, ST_HANDSHAKE, ST_WAIT_OPEN, ST_OPEN, ST_CLOSED };

struct conn {
    int fd;
    uint8_t state;
    uint8_t hdr_len;
    uint8_t hdr_need;
    uint8_t opcode;
    uint8_t hdr[14];
    uint64_t left;
    uint64_t frame_len;
    struct event *ev;
    char *resp;          /* handshake response so far */
    uint16_t resp_len;
    unsigned char *payload; /* current text or ping frame's payload (up to MAX_TEXT) */
    size_t payload_len;
    char key[25];
};

struct options {
    const char *host;
    int port;
    const char *prefix;
    const char *tokens;
    long sessions;
    long expect;
    int max_inflight;
    double connect_timeout;
    double timeout;
};

static struct options opt = {
    .host = "127.0.0.1",
    .prefix = "/sockjs",
    .sessions = 1000,
    .max_inflight = 256,
    .connect_timeout = 120,
    .timeout = 120,
};

static struct event_base *base;
static struct conn *conns;
static char **tokens;
static long n_started, n_open, n_lost, n_inflight;
static int ready;
static int64_t now_ns;    /* CLOCK_REALTIME of the last read() */
static int64_t *lat;      /* latencies in ns */
static size_t n_lat, cap_lat;
static unsigned char scratch[262144];

static void start_more(void);

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "latency_client: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static int64_t realtime_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void base64(const unsigned char *in, size_t n, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;

    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;

        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
}

static void ws_accept(const char *key, char out[29])
{
    char in[64];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;

    snprintf(in, sizeof(in), "%s%s", key, WS_GUID);
    if (!EVP_Digest(in, strlen(in), md, &md_len, EVP_sha1(), NULL) || md_len != 20)
        die("SHA-1 failed");
    base64(md, 20, out);
}

static void random_bytes(unsigned char *p, size_t n)
{
    FILE *f = fopen("/dev/urandom", "rb");

    if (!f || fread(p, 1, n, f) != n)
        die("cannot read /dev/urandom");
    fclose(f);
}

static void conn_close(struct conn *c, const char *why)
{
    int was_open = c->state == ST_OPEN;

    if (c->state == ST_CLOSED)
        return;
    if (!was_open)
        die("session %ld failed before open: %s", (long)(c - conns), why);
    c->state = ST_CLOSED;
    event_free(c->ev);
    c->ev = NULL;
    close(c->fd);
    c->fd = -1;
    free(c->payload);
    c->payload = NULL;
    n_open--;
    n_lost++;
    if (n_lost <= 10)
        fprintf(stderr, "latency_client: session %ld lost: %s\n", (long)(c - conns), why);
}

static void record(int64_t ns)
{
    if (n_lat == cap_lat) {
        cap_lat = cap_lat ? cap_lat * 2 : 65536;
        lat = realloc(lat, cap_lat * sizeof(*lat));
        if (!lat)
            die("out of memory");
    }
    lat[n_lat++] = ns;
    if (opt.expect > 0 && (long)n_lat >= opt.expect)
        event_base_loopbreak(base);
}

/* Every `\"t\":<digits>` in a SockJS message frame is one event's publish time. */
static void scan_frame(const unsigned char *p, size_t n)
{
    static const char pat[] = "\\\"t\\\":";
    const size_t plen = sizeof(pat) - 1;

    for (size_t i = 0; i + plen < n; i++) {
        if (p[i] != '\\' || memcmp(p + i, pat, plen) != 0)
            continue;
        int64_t t = 0;
        size_t k = i + plen;

        while (k < n && p[k] >= '0' && p[k] <= '9')
            t = t * 10 + (p[k++] - '0');
        if (k > i + plen)
            record(now_ns - t);
        i = k;
    }
}

static void send_pong(struct conn *c)
{
    unsigned char f[2 + 4 + MAX_CONTROL_PAYLOAD], mask[4];
    size_t n = 0;

    random_bytes(mask, sizeof(mask));
    f[n++] = 0x8a;
    f[n++] = (unsigned char)(0x80 | c->payload_len);
    memcpy(f + n, mask, 4);
    n += 4;
    for (size_t i = 0; i < c->payload_len; i++)
        f[n++] = (unsigned char)(c->payload[i] ^ mask[i % 4]);
    if (write(c->fd, f, n) != (ssize_t)n)
        conn_close(c, "pong write failed");
}

static void frame_done(struct conn *c)
{
    switch (c->opcode) {
    case 0x1:
        if (c->state == ST_WAIT_OPEN) {
            if (c->payload_len != 1 || c->payload[0] != 'o') {
                conn_close(c, "first frame is not \"o\"");
                return;
            }
            c->state = ST_OPEN;
            n_inflight--;
            n_open++;
            start_more();
        } else if (c->payload_len >= 1 && c->payload[0] == 'a') {
            scan_frame(c->payload, c->payload_len);
        } else if (c->payload_len >= 1 && c->payload[0] == 'c') {
            conn_close(c, "server sent a SockJS close frame");
            return;
        }
        break;
    case 0x8:
        conn_close(c, "server sent a websocket close");
        return;
    case 0x9:
        send_pong(c);
        break;
    default:
        break;
    }
    c->payload_len = 0;
    c->hdr_len = 0;
}

static void on_frames(struct conn *c, const unsigned char *p, size_t n)
{
    size_t i = 0;

    while (i < n && c->state != ST_CLOSED) {
        if (c->hdr_len < 2 || c->hdr_len < c->hdr_need) {
            c->hdr[c->hdr_len++] = p[i++];
            if (c->hdr_len == 2) {
                unsigned l7 = c->hdr[1] & 0x7f;

                if (c->hdr[1] & 0x80) {
                    conn_close(c, "server frame is masked");
                    return;
                }
                c->hdr_need = (uint8_t)(2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0));
            }
            if (c->hdr_len < 2 || c->hdr_len < c->hdr_need)
                continue;
            c->opcode = c->hdr[0] & 0x0f;
            c->frame_len = c->hdr[1] & 0x7f;
            if (c->hdr_need == 4)
                c->frame_len = (uint64_t)c->hdr[2] << 8 | c->hdr[3];
            else if (c->hdr_need == 10)
                for (int k = 2; k < 10; k++)
                    c->frame_len = c->frame_len << 8 | c->hdr[k];
            c->left = c->frame_len;
            c->payload_len = 0;
            if ((c->opcode & 0x8) && c->frame_len > MAX_CONTROL_PAYLOAD) {
                conn_close(c, "control frame too long");
                return;
            }
            if (!(c->hdr[0] & 0x80) || c->opcode == 0x0) {
                conn_close(c, "fragmented frame (not expected from the gateway)");
                return;
            }
            if (!c->left)
                frame_done(c);
            continue;
        }
        size_t take = n - i < c->left ? n - i : (size_t)c->left;
        size_t keep = c->payload_len < MAX_TEXT ? MAX_TEXT - c->payload_len : 0;

        if (keep > take)
            keep = take;
        memcpy(c->payload + c->payload_len, p + i, keep);
        c->payload_len += keep;
        i += take;
        c->left -= take;
        if (!c->left)
            frame_done(c);
    }
}

#define HANDSHAKE_INCOMPLETE (-2)

static long on_handshake(struct conn *c, const unsigned char *p, size_t n)
{
    size_t old = c->resp_len, take = n < (size_t)(MAX_RESPONSE - old) ? n : MAX_RESPONSE - old;
    char *end, *line, accept[29];
    int accept_ok = 0;

    memcpy(c->resp + old, p, take);
    c->resp_len = (uint16_t)(old + take);
    c->resp[c->resp_len] = '\0';
    end = strstr(c->resp, "\r\n\r\n");
    if (!end)
        return c->resp_len >= MAX_RESPONSE ? -1 : HANDSHAKE_INCOMPLETE;
    *end = '\0';
    if (strncmp(c->resp, "HTTP/1.1 101 ", 13) != 0) {
        fprintf(stderr, "latency_client: handshake refused: %.200s\n", c->resp);
        return -1;
    }
    ws_accept(c->key, accept);
    for (line = strstr(c->resp, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, "Sec-WebSocket-Accept:", 21) == 0) {
            char *v = line + 21;

            while (*v == ' ' || *v == '\t')
                v++;
            accept_ok = strncmp(v, accept, 28) == 0 &&
                        (v[28] == '\0' || v[28] == '\r' || v[28] == ' ' || v[28] == '\t');
        }
    }
    if (!accept_ok)
        return -1;
    return (long)((size_t)(end + 4 - c->resp) - old);
}

static void on_conn_event(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)what;
    if (c->state == ST_CONNECTING) {
        size_t cap = 512 + strlen(tokens[c - conns]);
        char *req = malloc(cap);
        int err = 0, len;
        socklen_t sl = sizeof(err);

        if (!req)
            die("out of memory");
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0 || err)
            die("connect: %s", strerror(err ? err : errno));
        len = snprintf(req, cap,
                       "GET %s/000/%d-%ld/websocket?token=%s HTTP/1.1\r\n"
                       "Host: %s:%d\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Key: %s\r\n"
                       "Sec-WebSocket-Version: 13\r\n"
                       "\r\n",
                       opt.prefix, (int)getpid(), (long)(c - conns), tokens[c - conns], opt.host,
                       opt.port, c->key);
        if (write(fd, req, (size_t)len) != len)
            die("request write failed");
        free(req);
        c->resp = malloc(MAX_RESPONSE + 1);
        c->payload = malloc(MAX_TEXT);
        if (!c->resp || !c->payload)
            die("out of memory");
        c->resp_len = 0;
        c->state = ST_HANDSHAKE;
        event_del(c->ev);
        event_assign(c->ev, base, fd, EV_READ | EV_PERSIST, on_conn_event, c);
        event_add(c->ev, NULL);
        return;
    }

    ssize_t r = read(fd, scratch, sizeof(scratch));

    now_ns = realtime_ns();
    if (r <= 0) {
        conn_close(c, r == 0 ? "server closed the connection" : strerror(errno));
        return;
    }
    size_t off = 0;

    if (c->state == ST_HANDSHAKE) {
        long used = on_handshake(c, scratch, (size_t)r);

        if (used == HANDSHAKE_INCOMPLETE)
            return;
        if (used < 0)
            die("session %ld: bad handshake response", (long)(c - conns));
        free(c->resp);
        c->resp = NULL;
        c->state = ST_WAIT_OPEN;
        off = (size_t)used;
    }
    on_frames(c, scratch + off, (size_t)r - off);
}

static void conn_start(long i)
{
    struct conn *c = &conns[i];
    struct sockaddr_in sa;
    unsigned char key[16];
    int fd, one = 1;

    memset(c, 0, sizeof(*c));
    random_bytes(key, sizeof(key));
    base64(key, sizeof(key), c->key);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)opt.port);
    if (inet_pton(AF_INET, opt.host, &sa.sin_addr) != 1)
        die("bad --host");
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
        die("connect: %s", strerror(errno));
    c->fd = fd;
    c->state = ST_CONNECTING;
    c->ev = event_new(base, fd, EV_WRITE, on_conn_event, c);
    if (!c->ev || event_add(c->ev, NULL) < 0)
        die("event_add failed");
    n_inflight++;
}

static void on_run_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    fprintf(stderr, "latency_client: --timeout reached with %zu of %ld latencies\n", n_lat,
            opt.expect);
    event_base_loopbreak(base);
}

static void start_more(void)
{
    while (n_started < opt.sessions && n_inflight < opt.max_inflight)
        conn_start(n_started++);
    if (!ready && n_open == opt.sessions) {
        struct event *ev = evtimer_new(base, on_run_timeout, NULL);
        struct timeval tv = { (time_t)opt.timeout, 0 };

        ready = 1;
        evtimer_add(ev, &tv);
        printf("ready %ld\n", n_open);
        fflush(stdout);
    }
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
    char buf[256];
    ssize_t r = read(fd, buf, sizeof(buf));

    (void)what;
    (void)arg;
    if (r <= 0)
        event_base_loopbreak(base);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (!ready)
        die("only %ld of %ld sessions open after %.0f s", n_open, opt.sessions,
            opt.connect_timeout);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile in microseconds. */
static double pct_us(double p)
{
    size_t rank;

    if (!n_lat)
        return -1;
    rank = (size_t)(p / 100.0 * (double)n_lat + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n_lat)
        rank = n_lat;
    return (double)lat[rank - 1] / 1000.0;
}

static void load_tokens(void)
{
    FILE *f = fopen(opt.tokens, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long n = 0;

    if (!f)
        die("%s: %s", opt.tokens, strerror(errno));
    tokens = calloc((size_t)opt.sessions, sizeof(*tokens));
    if (!tokens)
        die("out of memory");
    while (n < opt.sessions && (len = getline(&line, &cap, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        tokens[n] = strdup(line);
        if (!tokens[n++])
            die("out of memory");
    }
    free(line);
    fclose(f);
    if (n < opt.sessions)
        die("%s has %ld tokens, %ld sessions asked for", opt.tokens, n, opt.sessions);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --port PORT --tokens FILE [--host 127.0.0.1] [--prefix /sockjs]\n"
            "          [--sessions N] [--expect M] [--timeout S] [--max-inflight K]\n"
            "          [--connect-timeout S]\n",
            argv0);
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "host", required_argument, NULL, 'H' },
        { "port", required_argument, NULL, 'p' },
        { "prefix", required_argument, NULL, 'x' },
        { "tokens", required_argument, NULL, 'k' },
        { "sessions", required_argument, NULL, 'n' },
        { "expect", required_argument, NULL, 'e' },
        { "timeout", required_argument, NULL, 'T' },
        { "max-inflight", required_argument, NULL, 'm' },
        { "connect-timeout", required_argument, NULL, 't' },
        { NULL, 0, NULL, 0 },
    };
    struct in_addr a;
    int ch;

    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'H': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 'x': opt.prefix = optarg; break;
        case 'k': opt.tokens = optarg; break;
        case 'n': opt.sessions = atol(optarg); break;
        case 'e': opt.expect = atol(optarg); break;
        case 'T': opt.timeout = atof(optarg); break;
        case 'm': opt.max_inflight = atoi(optarg); break;
        case 't': opt.connect_timeout = atof(optarg); break;
        default: usage(argv[0]);
        }
    }
    if (optind != argc || opt.port <= 0 || opt.port > 65535 || opt.sessions <= 0 ||
        !opt.tokens || opt.max_inflight < 1 || !(opt.connect_timeout > 0) || !(opt.timeout > 0))
        usage(argv[0]);
    if (inet_pton(AF_INET, opt.host, &a) != 1 || (ntohl(a.s_addr) >> 24) != 127)
        die("--host must be an IPv4 address in 127.0.0.0/8");
}

int main(int argc, char **argv)
{
    struct rlimit rl;
    struct event *ev_stdin, *ev_timeout;
    struct timeval tv;

    parse_args(argc, argv);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        if ((rlim_t)opt.sessions + 16 > rl.rlim_cur)
            die("%ld sessions need more fds than the limit %llu", opt.sessions,
                (unsigned long long)rl.rlim_cur);
    }
    signal(SIGPIPE, SIG_IGN);
    load_tokens();
    conns = calloc((size_t)opt.sessions, sizeof(*conns));
    base = event_base_new();
    if (!conns || !base)
        die("out of memory");
    ev_stdin = event_new(base, STDIN_FILENO, EV_READ | EV_PERSIST, on_stdin, NULL);
    if (!ev_stdin || event_add(ev_stdin, NULL) < 0)
        die("cannot watch stdin: use a pipe");
    tv.tv_sec = (time_t)opt.connect_timeout;
    tv.tv_usec = 0;
    ev_timeout = evtimer_new(base, on_connect_timeout, NULL);
    evtimer_add(ev_timeout, &tv);

    start_more();
    event_base_dispatch(base);

    qsort(lat, n_lat, sizeof(*lat), cmp_i64);
    printf("done %zu %ld %.1f %.1f %.1f %.1f %.1f\n", n_lat, n_lost, pct_us(50), pct_us(90),
           pct_us(99), pct_us(99.9), n_lat ? (double)lat[n_lat - 1] / 1000.0 : -1.0);
    fflush(stdout);
    return 0;
}
