/*
 * bench_ws: see bench_ws.h. One process, one client, thousands of connections: per-connection
 * state is kept small, and the handshake buffer is freed once the handshake is done.
 */
#include "bench_ws.h"

#include <arpa/inet.h>
#include <err.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* A handshake response larger than this is not one the gateway would send. */
#define MAX_RESPONSE 4096
#define MAX_CONTROL_PAYLOAD 125
#define HANDSHAKE_INCOMPLETE (-2)

enum conn_state { ST_CONNECTING, ST_HANDSHAKE, ST_WAIT_OPEN, ST_OPEN, ST_CLOSED };

struct conn {
    struct bench_ws_client *client;
    struct event *ev;
    char *resp;             /* handshake response so far */
    unsigned char *payload; /* kept bytes of the current frame, allocated when first needed */
    uint64_t left;          /* payload bytes of the current frame still to come */
    uint64_t frame_len;
    size_t payload_len;
    int fd;
    uint16_t resp_len;
    uint8_t state;
    uint8_t hdr_len;  /* bytes of the current frame header collected */
    uint8_t hdr_need; /* header size once the length byte is known */
    uint8_t opcode;
    uint8_t first_byte; /* first payload byte of the current frame */
    uint8_t hdr[14];
    char key[25]; /* Sec-WebSocket-Key, base64 of 16 random bytes */
};

struct bench_ws_client {
    struct bench_ws_settings s;
    struct sockaddr_in server;
    const struct bench_ws_ops *ops;
    void *arg;
    struct event_base *base;
    struct event *connect_timer;
    struct conn *conns;
    long n_started, n_open, n_lost, n_inflight;
    int ready;
    int64_t read_ns;
};

/* Every connection reads into this; only a handshake in progress keeps bytes of its own. */
static unsigned char scratch[262144];

static void start_more(struct bench_ws_client *cl);

int bench_ws_parse_option(struct bench_ws_settings *s, int c, const char *arg)
{
    switch (c) {
    case 'H': s->host = arg; return 1;
    case 'p': s->port = atoi(arg); return 1;
    case 'x': s->prefix = arg; return 1;
    case 'n': s->sessions = atol(arg); return 1;
    case 'm': s->max_inflight = atoi(arg); return 1;
    case 't': s->connect_timeout = atof(arg); return 1;
    default: return 0;
    }
}

int bench_ws_settings_ok(const struct bench_ws_settings *s)
{
    return s->port > 0 && s->port <= 65535 && s->sessions > 0 && s->sources >= 0 &&
           s->sources <= 250 && s->max_inflight >= 1 && s->connect_timeout > 0;
}

/* The server's address; exits unless it is a loopback one. */
static void server_addr(const struct bench_ws_settings *s, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)s->port);
    if (inet_pton(AF_INET, s->host, &sa->sin_addr) != 1 ||
        (ntohl(sa->sin_addr.s_addr) >> 24) != 127)
        errx(1, "--host must be an IPv4 address in 127.0.0.0/8");
}

void bench_ws_check_host(const struct bench_ws_settings *s)
{
    struct sockaddr_in sa;

    server_addr(s, &sa);
}

rlim_t bench_raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return RLIM_INFINITY;
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur;
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
    char buf[256];

    if (read(fd, buf, sizeof(buf)) <= 0)
        event_base_loopbreak(arg);
}

struct event *bench_watch_stdin(struct event_base *base)
{
    struct event *ev = event_new(base, STDIN_FILENO, EV_READ | EV_PERSIST, on_stdin, base);

    if (ev && event_add(ev, NULL) < 0) {
        event_free(ev);
        return NULL;
    }
    return ev;
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

/* The Sec-WebSocket-Accept value RFC 6455 derives from a key. */
static void ws_accept(const char *key, char out[29])
{
    char in[64];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;

    snprintf(in, sizeof(in), "%s%s", key, WS_GUID);
    if (!EVP_Digest(in, strlen(in), md, &md_len, EVP_sha1(), NULL) || md_len != 20)
        errx(1, "SHA-1 failed");
    base64(md, 20, out);
}

static void random_bytes(unsigned char *p, size_t n)
{
    FILE *f = fopen("/dev/urandom", "rb");

    if (!f || fread(p, 1, n, f) != n)
        errx(1, "cannot read /dev/urandom");
    fclose(f);
}

static void conn_release(struct conn *c)
{
    event_free(c->ev);
    c->ev = NULL;
    close(c->fd);
    c->fd = -1;
    free(c->resp);
    c->resp = NULL;
    free(c->payload);
    c->payload = NULL;
    c->state = ST_CLOSED;
}

static void conn_close(struct conn *c, const char *why)
{
    struct bench_ws_client *cl = c->client;
    long i = (long)(c - cl->conns);

    if (c->state == ST_CLOSED)
        return;
    if (c->state != ST_OPEN)
        errx(1, "session %ld failed before open: %s", i, why);
    conn_release(c);
    cl->n_open--;
    cl->n_lost++;
    if (cl->n_lost <= 10)
        warnx("session %ld lost: %s", i, why);
}

/* Masked pong with the ping's payload (clients must mask every frame). */
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

/* How many payload bytes of the current frame are worth keeping. */
static size_t keep_limit(const struct conn *c)
{
    switch (c->opcode) {
    case 0x1: return c->client->s.keep;
    case 0x9: return MAX_CONTROL_PAYLOAD;
    default: return 0;
    }
}

/* A complete frame has been consumed. */
static void frame_done(struct conn *c)
{
    struct bench_ws_client *cl = c->client;

    switch (c->opcode) {
    case 0x1:
        if (c->state == ST_WAIT_OPEN) {
            if (c->frame_len != 1 || c->first_byte != 'o') {
                conn_close(c, "first frame is not \"o\"");
                return;
            }
            c->state = ST_OPEN;
            cl->n_inflight--;
            cl->n_open++;
            start_more(cl);
        } else if (c->frame_len >= 1 && c->first_byte == 'c') {
            conn_close(c, "server sent a SockJS close frame");
            return;
        } else {
            struct bench_ws_text t = {
                .len = c->frame_len,
                .first = c->first_byte,
                .kept = c->payload,
                .kept_len = c->payload_len,
                .read_ns = cl->read_ns,
            };

            cl->ops->text(cl->arg, &t);
        }
        break;
    case 0x8:
        conn_close(c, "server sent a websocket close");
        return;
    case 0x9:
        send_pong(c);
        if (cl->ops->ping)
            cl->ops->ping(cl->arg);
        break;
    default:
        break;
    }
    c->payload_len = 0;
    c->hdr_len = 0;
}

/* A frame header is complete: checks it and makes room for the payload bytes to keep. */
static int frame_start(struct conn *c)
{
    size_t cap;

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
        return -1;
    }
    if (!(c->hdr[0] & 0x80) || c->opcode == 0x0) {
        conn_close(c, "fragmented frame (not expected from the gateway)");
        return -1;
    }
    if (c->frame_len && keep_limit(c) && !c->payload) {
        /* One buffer serves pings and the kept text, so it lives as long as the connection. */
        cap = c->client->s.keep > MAX_CONTROL_PAYLOAD ? c->client->s.keep : MAX_CONTROL_PAYLOAD;
        c->payload = malloc(cap);
        if (!c->payload)
            errx(1, "out of memory");
    }
    return 0;
}

/* Feeds server frame bytes; payloads are dropped past what keep_limit() asks for. */
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
            if (frame_start(c) < 0)
                return;
            if (!c->left)
                frame_done(c);
            continue;
        }
        size_t take = n - i < c->left ? n - i : (size_t)c->left;
        size_t limit = keep_limit(c);
        size_t keep = c->payload_len < limit ? limit - c->payload_len : 0;

        if (keep > take)
            keep = take;
        if (c->left == c->frame_len)
            c->first_byte = p[i];
        if (keep) {
            memcpy(c->payload + c->payload_len, p + i, keep);
            c->payload_len += keep;
        }
        i += take;
        c->left -= take;
        if (!c->left)
            frame_done(c);
    }
}

/*
 * Adds n new bytes to the handshake response and checks it once complete. Returns how many of
 * the n bytes belong to the response head (the rest are already frames), HANDSHAKE_INCOMPLETE,
 * or -1 if the server refused or answered wrongly.
 */
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
        warnx("handshake refused: %.200s", c->resp);
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
    if (!accept_ok) {
        warnx("missing or wrong Sec-WebSocket-Accept");
        return -1;
    }
    return (long)((size_t)(end + 4 - c->resp) - old);
}

static void on_conn_event(evutil_socket_t fd, short what, void *arg);

/* The socket is writable: connect() has finished, so the upgrade request goes out. */
static void send_request(struct conn *c)
{
    struct bench_ws_client *cl = c->client;
    long i = (long)(c - cl->conns);
    const char *token = cl->s.tokens ? cl->s.tokens[i] : NULL;
    size_t cap = 256 + strlen(cl->s.prefix) + strlen(cl->s.host) + (token ? strlen(token) : 0);
    char *req;
    int err = 0, len;
    ssize_t written;
    socklen_t sl = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0 || err) {
        conn_close(c, strerror(err ? err : errno));
        return;
    }
    req = malloc(cap);
    if (!req)
        errx(1, "out of memory");
    len = snprintf(req, cap,
                   "GET %s/000/%d-%ld/websocket%s%s HTTP/1.1\r\n"
                   "Host: %s:%d\r\n"
                   "Upgrade: websocket\r\n"
                   "Connection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n"
                   "\r\n",
                   cl->s.prefix, (int)getpid(), i, token ? "?token=" : "", token ? token : "",
                   cl->s.host, cl->s.port, c->key);
    /* A fresh socket's send buffer takes a few hundred bytes at once. */
    written = write(c->fd, req, (size_t)len);
    free(req);
    if (written != len) {
        conn_close(c, "request write failed");
        return;
    }
    c->resp = malloc(MAX_RESPONSE + 1);
    if (!c->resp)
        errx(1, "out of memory");
    c->resp_len = 0;
    c->state = ST_HANDSHAKE;
    event_del(c->ev);
    event_assign(c->ev, cl->base, c->fd, EV_READ | EV_PERSIST, on_conn_event, c);
    event_add(c->ev, NULL);
}

static void on_conn_event(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct bench_ws_client *cl = c->client;

    if (c->state == ST_CONNECTING) {
        send_request(c);
        return;
    }

    ssize_t r = read(fd, scratch, sizeof(scratch));

    cl->read_ns = realtime_ns();
    if (r <= 0) {
        conn_close(c, r == 0 ? "server closed the connection" : strerror(errno));
        return;
    }
    size_t off = 0;

    if (c->state == ST_HANDSHAKE) {
        long used = on_handshake(c, scratch, (size_t)r);

        if (used == HANDSHAKE_INCOMPLETE)
            return;
        if (used < 0) {
            conn_close(c, "bad handshake response");
            return;
        }
        free(c->resp);
        c->resp = NULL;
        c->state = ST_WAIT_OPEN;
        off = (size_t)used;
    }
    on_frames(c, scratch + off, (size_t)r - off);
}

static void conn_start(struct bench_ws_client *cl, long i)
{
    struct conn *c = &cl->conns[i];
    unsigned char key[16];
    int fd, one = 1;

    memset(c, 0, sizeof(*c));
    c->client = cl;
    c->fd = -1;
    random_bytes(key, sizeof(key));
    base64(key, sizeof(key), c->key);

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        errx(1, "socket: %s (raise the fd limit or use more processes)", strerror(errno));
    /* A pong must leave at once, not wait for the ACK of earlier bytes (Nagle). */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (cl->s.sources > 0) {
        struct sockaddr_in src = { .sin_family = AF_INET };

        /*
         * Let connect() choose the port for the full 4-tuple instead of reserving one per
         * source address at bind() time.
         */
        (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(i % cl->s.sources));
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0)
            errx(1, "bind 127.0.0.%ld: %s", 2 + i % cl->s.sources, strerror(errno));
    }
    if (connect(fd, (struct sockaddr *)&cl->server, sizeof(cl->server)) < 0 &&
        errno != EINPROGRESS) {
        int e = errno;

        if (cl->s.sources > 0)
            errx(1, "connect from 127.0.0.%ld: %s%s", 2 + i % cl->s.sources, strerror(e),
                 e == EADDRNOTAVAIL ? " (out of ports: use more --sources)" : "");
        errx(1, "connect: %s", strerror(e));
    }
    c->fd = fd;
    c->state = ST_CONNECTING;
    c->ev = event_new(cl->base, fd, EV_WRITE, on_conn_event, c);
    if (!c->ev || event_add(c->ev, NULL) < 0)
        errx(1, "event_add failed");
    cl->n_inflight++;
}

/*
 * Keeps at most max_inflight handshakes in flight: opening thousands at once only overflows
 * the server's accept backlog and turns into SYN retransmits, not faster setup.
 */
static void start_more(struct bench_ws_client *cl)
{
    while (cl->n_started < cl->s.sessions && cl->n_inflight < cl->s.max_inflight)
        conn_start(cl, cl->n_started++);
    if (!cl->ready && cl->n_open == cl->s.sessions) {
        cl->ready = 1;
        cl->ops->ready(cl->arg);
    }
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct bench_ws_client *cl = arg;

    if (!cl->ready)
        errx(1, "only %ld of %ld sessions open after %.0f s", cl->n_open, cl->s.sessions,
             cl->s.connect_timeout);
}

struct bench_ws_client *bench_ws_client_new(struct event_base *base,
                                            const struct bench_ws_settings *s,
                                            const struct bench_ws_ops *ops, void *arg)
{
    struct bench_ws_client *cl = calloc(1, sizeof(*cl));
    struct timeval tv = { (time_t)s->connect_timeout, 0 };

    if (!cl)
        errx(1, "out of memory");
    cl->s = *s;
    cl->ops = ops;
    cl->arg = arg;
    cl->base = base;
    server_addr(s, &cl->server);
    cl->conns = calloc((size_t)s->sessions, sizeof(*cl->conns));
    cl->connect_timer = evtimer_new(base, on_connect_timeout, cl);
    if (!cl->conns || !cl->connect_timer)
        errx(1, "out of memory");
    evtimer_add(cl->connect_timer, &tv);
    start_more(cl);
    return cl;
}

void bench_ws_client_free(struct bench_ws_client *cl)
{
    for (long i = 0; i < cl->n_started; i++)
        if (cl->conns[i].state != ST_CLOSED)
            conn_release(&cl->conns[i]);
    event_free(cl->connect_timer);
    free(cl->conns);
    free(cl);
}

long bench_ws_client_open(const struct bench_ws_client *cl)
{
    return cl->n_open;
}

long bench_ws_client_lost(const struct bench_ws_client *cl)
{
    return cl->n_lost;
}

void bench_ws_load_tokens(struct bench_ws_settings *s, const char *tokens_path)
{
    FILE *f = fopen(tokens_path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long n = 0;
    char **tokens;

    if (!f)
        errx(1, "%s: %s", tokens_path, strerror(errno));
    tokens = calloc((size_t)s->sessions, sizeof(*tokens));
    if (!tokens)
        errx(1, "out of memory");
    while (n < s->sessions && (len = getline(&line, &cap, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        tokens[n] = strdup(line);
        if (!tokens[n++])
            errx(1, "out of memory");
    }
    free(line);
    fclose(f);
    if (n < s->sessions)
        errx(1, "%s has %ld tokens, %ld sessions asked for", tokens_path, n, s->sessions);
    s->tokens = tokens;
}
