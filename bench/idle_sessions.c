/*
 * idle_sessions: opens N idle SockJS websocket sessions against a gateway and holds them.
 *
 * Each connection is `GET <prefix>/000/<session>/websocket` with an RFC 6455 client handshake
 * (the Sec-WebSocket-Accept is checked); the session counts as open once the server's first
 * text frame, `o`, has arrived. When all N are open the program prints `ready N` on stdout and
 * then sends nothing of its own (pings get the pongs RFC 6455 requires; `h` heartbeats are
 * only counted) until stdin reaches EOF or --hold-seconds pass. Then it prints
 * `done HELD LOST HEARTBEATS` and exits 0; it exits 1 with a reason on stderr if the sessions
 * could not all be opened in time.
 *
 * One process can hold only about as many sessions as its fd limit allows (20,000 here), and
 * one source address gives about 28,000 ephemeral ports towards one server port; so large runs
 * use several processes (bench/idle_memory.py starts them) and spread connections round-robin
 * over source addresses 127.0.0.2 ... 127.0.0.(1+K). Traffic stays on 127.0.0.0/8.
 *
 * Connection states:
 *
 *   CONNECTING --writable--> HANDSHAKE --101 + accept ok--> WAIT_OPEN --"o"--> IDLE
 *        \______________________\___________________________\_____________\--> CLOSED
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <netinet/in.h>
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
#include <unistd.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* A handshake response larger than this is not one the gateway would send. */
#define MAX_RESPONSE 4096
#define MAX_CONTROL_PAYLOAD 125

enum conn_state { ST_CONNECTING, ST_HANDSHAKE, ST_WAIT_OPEN, ST_IDLE, ST_CLOSED };

/* Per-connection state is kept small: the handshake buffers are freed once it is done. */
struct conn {
    int fd;
    uint8_t state;
    uint8_t hdr_len;       /* bytes of the current frame header collected */
    uint8_t hdr_need;      /* header size once the length byte is known */
    uint8_t opcode;
    uint8_t hdr[14];
    uint64_t left;         /* payload bytes of the current frame still to come */
    uint64_t frame_len;
    struct event *ev;
    char *resp;            /* handshake: response bytes so far, then the expected accept */
    uint16_t resp_len;
    uint8_t *ctl;          /* payload of a ping being received, for the pong */
    uint8_t ctl_len;
    uint8_t first_byte;    /* first payload byte of the current text frame */
    char key[25];          /* Sec-WebSocket-Key, base64 of 16 random bytes */
};

struct options {
    const char *host;
    int port;
    const char *prefix;
    long sessions;
    int sources;
    int max_inflight;
    double connect_timeout;
    double hold_seconds;   /* < 0: until stdin EOF */
};

static struct options opt = {
    .host = "127.0.0.1",
    .port = 0,
    .prefix = "/sockjs",
    .sessions = 1000,
    .sources = 4,
    .max_inflight = 256,
    .connect_timeout = 300,
    .hold_seconds = -1,
};

static struct event_base *base;
static struct conn *conns;
static long n_started, n_open, n_lost, n_heartbeats, n_inflight;
static int ready_printed;
static struct sockaddr_in server_addr;
static unsigned char scratch[65536];

static void start_more(void);

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "idle_sessions: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
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
    int was_open = c->state == ST_IDLE;

    if (c->state == ST_CLOSED)
        return;
    if (c->state != ST_IDLE)
        n_inflight--;
    c->state = ST_CLOSED;
    event_free(c->ev);
    c->ev = NULL;
    close(c->fd);
    c->fd = -1;
    free(c->resp);
    c->resp = NULL;
    free(c->ctl);
    c->ctl = NULL;
    if (was_open) {
        /* After `ready` a lost session is reported, not fatal: the measurement decides. */
        n_open--;
        n_lost++;
        if (n_lost <= 10)
            fprintf(stderr, "idle_sessions: session %ld lost: %s\n", (long)(c - conns), why);
        return;
    }
    die("session %ld failed before open: %s", (long)(c - conns), why);
}

/* Masked pong with the ping's payload (clients must mask every frame). */
static void send_pong(struct conn *c)
{
    unsigned char f[2 + 4 + MAX_CONTROL_PAYLOAD], mask[4];
    size_t n = 0;

    random_bytes(mask, sizeof(mask));
    f[n++] = 0x8a;
    f[n++] = (unsigned char)(0x80 | c->ctl_len);
    memcpy(f + n, mask, 4);
    n += 4;
    for (unsigned i = 0; i < c->ctl_len; i++)
        f[n++] = (unsigned char)(c->ctl[i] ^ mask[i % 4]);
    if (write(c->fd, f, n) != (ssize_t)n)
        conn_close(c, "pong write failed");
}

/* A complete frame has been consumed. */
static void frame_done(struct conn *c)
{
    switch (c->opcode) {
    case 0x1:
        if (c->state == ST_WAIT_OPEN) {
            if (c->frame_len != 1 || c->first_byte != 'o') {
                conn_close(c, "first frame is not \"o\"");
                return;
            }
            c->state = ST_IDLE;
            n_inflight--;
            n_open++;
            start_more();
        } else if (c->frame_len == 1 && c->first_byte == 'h') {
            n_heartbeats++;
        } else if (c->frame_len >= 1 && c->first_byte == 'c') {
            conn_close(c, "server sent a SockJS close frame");
            return;
        }
        break;
    case 0x8:
        conn_close(c, "server sent a websocket close");
        return;
    case 0x9:
        n_heartbeats++;
        send_pong(c);
        break;
    default:
        break;
    }
    free(c->ctl);
    c->ctl = NULL;
    c->ctl_len = 0;
    c->hdr_len = 0;
}

/* Feeds server frame bytes; the payloads are skipped except what the states need. */
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
            if (c->opcode & 0x8) {
                if (c->frame_len > MAX_CONTROL_PAYLOAD) {
                    conn_close(c, "control frame too long");
                    return;
                }
                if (c->opcode == 0x9 && c->frame_len) {
                    c->ctl = malloc(MAX_CONTROL_PAYLOAD);
                    if (!c->ctl)
                        die("out of memory");
                }
            }
            if (!c->left)
                frame_done(c);
            continue;
        }
        /* Payload bytes. */
        size_t take = n - i < c->left ? n - i : (size_t)c->left;

        if (c->left == c->frame_len)
            c->first_byte = p[i];
        if (c->ctl)
            for (size_t k = 0; k < take; k++)
                c->ctl[c->ctl_len++] = p[i + k];
        i += take;
        c->left -= take;
        if (!c->left)
            frame_done(c);
    }
}

#define HANDSHAKE_INCOMPLETE (-2)

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
        fprintf(stderr, "idle_sessions: handshake refused: %.80s\n", c->resp);
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
        fprintf(stderr, "idle_sessions: missing or wrong Sec-WebSocket-Accept\n");
        return -1;
    }
    return (long)((size_t)(end + 4 - c->resp) - old);
}

static void on_conn_event(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)what;
    if (c->state == ST_CONNECTING) {
        char req[512];
        int err = 0, len;
        socklen_t sl = sizeof(err);

        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0 || err) {
            conn_close(c, strerror(err ? err : errno));
            return;
        }
        len = snprintf(req, sizeof(req),
                       "GET %s/000/%d-%ld/websocket HTTP/1.1\r\n"
                       "Host: %s:%d\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Key: %s\r\n"
                       "Sec-WebSocket-Version: 13\r\n"
                       "\r\n",
                       opt.prefix, (int)getpid(), (long)(c - conns), opt.host, opt.port, c->key);
        /* A fresh socket's send buffer takes a few hundred bytes at once. */
        if (write(fd, req, (size_t)len) != len) {
            conn_close(c, "request write failed");
            return;
        }
        c->resp = malloc(MAX_RESPONSE + 1);
        if (!c->resp)
            die("out of memory");
        c->resp_len = 0;
        c->state = ST_HANDSHAKE;
        event_del(c->ev);
        event_assign(c->ev, base, fd, EV_READ | EV_PERSIST, on_conn_event, c);
        event_add(c->ev, NULL);
        return;
    }

    ssize_t r = read(fd, scratch, sizeof(scratch));

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

static void conn_start(long i)
{
    struct conn *c = &conns[i];
    struct sockaddr_in src;
    unsigned char key[16];
    int fd, one = 1;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    random_bytes(key, sizeof(key));
    base64(key, sizeof(key), c->key);

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s (raise the fd limit or use more processes)", strerror(errno));
    /*
     * Let connect() choose the port for the full 4-tuple instead of reserving one per source
     * address at bind() time.
     */
    (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    memset(&src, 0, sizeof(src));
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(i % opt.sources));
    if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0)
        die("bind 127.0.0.%ld: %s", 2 + i % opt.sources, strerror(errno));
    if (connect(fd, (struct sockaddr *)&server_addr, sizeof(server_addr)) < 0 &&
        errno != EINPROGRESS)
        die("connect from 127.0.0.%ld: %s%s", 2 + i % opt.sources, strerror(errno),
            errno == EADDRNOTAVAIL ? " (out of ports: use more --sources)" : "");
    c->fd = fd;
    c->state = ST_CONNECTING;
    c->ev = event_new(base, fd, EV_WRITE, on_conn_event, c);
    if (!c->ev || event_add(c->ev, NULL) < 0)
        die("event_add failed");
    n_inflight++;
}

/*
 * Keeps at most max_inflight handshakes in flight: opening thousands at once only overflows
 * the server's accept backlog and turns into SYN retransmits, not faster setup.
 */
static void start_more(void)
{
    while (n_started < opt.sessions && n_inflight < opt.max_inflight)
        conn_start(n_started++);
    if (!ready_printed && n_open == opt.sessions) {
        ready_printed = 1;
        printf("ready %ld\n", n_open);
        fflush(stdout);
        if (opt.hold_seconds >= 0) {
            struct timeval tv = { (time_t)opt.hold_seconds,
                                  (suseconds_t)((opt.hold_seconds - (double)(time_t)opt.hold_seconds)
                                                * 1e6) };

            event_base_loopexit(base, &tv);
        }
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
    if (!ready_printed)
        die("only %ld of %ld sessions open after %.0f s", n_open, opt.sessions,
            opt.connect_timeout);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    event_base_loopbreak(base);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --port PORT [--host 127.0.0.1] [--prefix /sockjs] [--sessions N]\n"
            "          [--sources K] [--max-inflight M] [--connect-timeout S]\n"
            "          [--hold-seconds S]\n"
            "Opens N SockJS websocket sessions from 127.0.0.2..127.0.0.(1+K), prints\n"
            "\"ready N\" once all got \"o\", holds them until stdin EOF (or S seconds),\n"
            "then prints \"done HELD LOST HEARTBEATS\".\n",
            argv0);
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "host", required_argument, NULL, 'H' },
        { "port", required_argument, NULL, 'p' },
        { "prefix", required_argument, NULL, 'x' },
        { "sessions", required_argument, NULL, 'n' },
        { "sources", required_argument, NULL, 's' },
        { "max-inflight", required_argument, NULL, 'm' },
        { "connect-timeout", required_argument, NULL, 't' },
        { "hold-seconds", required_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'H': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 'x': opt.prefix = optarg; break;
        case 'n': opt.sessions = atol(optarg); break;
        case 's': opt.sources = atoi(optarg); break;
        case 'm': opt.max_inflight = atoi(optarg); break;
        case 't': opt.connect_timeout = atof(optarg); break;
        case 'h': opt.hold_seconds = atof(optarg); break;
        default: usage(argv[0]);
        }
    }
    if (optind != argc || opt.port <= 0 || opt.port > 65535 || opt.sessions <= 0 ||
        opt.sources < 1 || opt.sources > 250 || opt.max_inflight < 1 ||
        !(opt.connect_timeout > 0))
        usage(argv[0]);
    memset(&server_addr, 0, sizeof(server_addr));
    server_addr.sin_family = AF_INET;
    server_addr.sin_port = htons((uint16_t)opt.port);
    /* Loopback only: this tool must never load a remote host. */
    if (inet_pton(AF_INET, opt.host, &server_addr.sin_addr) != 1 ||
        (ntohl(server_addr.sin_addr.s_addr) >> 24) != 127)
        die("--host must be an IPv4 address in 127.0.0.0/8");
}

int main(int argc, char **argv)
{
    struct rlimit rl;
    struct event *ev_stdin = NULL, *ev_timeout, *ev_int, *ev_term;
    struct timeval tv;

    parse_args(argc, argv);

    /* Use the whole hard limit; the check below says how many processes are needed. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        if ((rlim_t)opt.sessions + 16 > rl.rlim_cur)
            die("%ld sessions need more fds than the limit %llu: split them over processes",
                opt.sessions, (unsigned long long)rl.rlim_cur);
    }
    signal(SIGPIPE, SIG_IGN);

    conns = calloc((size_t)opt.sessions, sizeof(*conns));
    base = event_base_new();
    if (!conns || !base)
        die("out of memory");

    if (opt.hold_seconds < 0) {
        ev_stdin = event_new(base, STDIN_FILENO, EV_READ | EV_PERSIST, on_stdin, NULL);
        if (!ev_stdin || event_add(ev_stdin, NULL) < 0)
            die("cannot watch stdin (a regular file?): use a pipe or --hold-seconds");
    }
    tv.tv_sec = (time_t)opt.connect_timeout;
    tv.tv_usec = 0;
    ev_timeout = evtimer_new(base, on_connect_timeout, NULL);
    evtimer_add(ev_timeout, &tv);
    ev_int = evsignal_new(base, SIGINT, on_signal, NULL);
    ev_term = evsignal_new(base, SIGTERM, on_signal, NULL);
    evsignal_add(ev_int, NULL);
    evsignal_add(ev_term, NULL);

    start_more();
    event_base_dispatch(base);

    printf("done %ld %ld %ld\n", n_open, n_lost, n_heartbeats);
    fflush(stdout);
    for (long i = 0; i < n_started; i++) {
        if (conns[i].state != ST_CLOSED) {
            event_free(conns[i].ev);
            close(conns[i].fd);
            free(conns[i].resp);
            free(conns[i].ctl);
        }
    }
    if (ev_stdin)
        event_free(ev_stdin);
    event_free(ev_timeout);
    event_free(ev_int);
    event_free(ev_term);
    event_base_free(base);
    free(conns);
    return 0;
}
