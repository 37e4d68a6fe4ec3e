/*
 * bench_client: see bench_client.h.
 *
 * One struct conn per session, kept small (the 1,000,000-session demo multiplies it): the
 * libevent event is embedded, the websocket key is derived from the session index instead of
 * stored, and the only heap bytes a connection owns are `buf` while something is incomplete.
 *
 * Session states: IDLE (not started) -> OPENING -> OPEN -> LOST, or OPENING -> FAILED.
 * Connection phases, input is fed to the current one and each consumes what it can:
 *
 *   CONNECTING --writable--> HEAD --101/200--> WS (websocket frames) or BODY (HTTP body)
 *   BODY --response ends--> HEAD (next POST on the same connection) or CONNECTING (new one)
 *
 * Below the transports, one SockJS frame scanner (sj_*) sees each frame's bytes (a websocket
 * text payload, inflated if it was compressed, or one line of an xhr body) and its end.
 */
#include "bench_client.h"

#include <arpa/inet.h>
#include <err.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define MAX_HEAD 8192 /* a response head larger than this is an error */
#define MAX_CONTROL 125
#define MAX_COMPRESSED (64u << 20) /* one compressed websocket message */
#define SCRATCH_BYTES (256 * 1024) /* big reads: a fan-out run moves ~100 MB/s */
#define INFLATE_CHUNK 65536
#define MAX_REPORTED 10 /* failures/losses described on stderr, per client */
#define FIRST_PORT 1024

enum sess_state { SS_IDLE, SS_OPENING, SS_OPEN, SS_FAILED, SS_LOST };
enum phase { PH_NONE, PH_CONNECTING, PH_HEAD, PH_WS, PH_BODY };
enum body_mode { BM_LENGTH, BM_CHUNKED, BM_EOF };
enum chunk_state {
    CK_SIZE, /* hex digits */
    CK_EXT,  /* chunk extension, up to LF */
    CK_DATA,
    CK_DATA_END,      /* CRLF after the data, up to LF */
    CK_TRAILER_START, /* start of a trailer line: an empty one ends the body */
    CK_TRAILER_CR,
    CK_TRAILER_LINE,
};

struct conn {
    struct event ev; /* fd's event while fd >= 0 */
    struct bench_client *cl;
    unsigned char *buf; /* incomplete bytes: response head, ping payload, compressed msg */
    uint64_t left;      /* websocket payload, Content-Length or chunk bytes still to come */
    uint32_t buf_len;
    int fd;
    uint8_t state; /* enum sess_state */
    uint8_t phase; /* enum phase */
    /* websocket */
    uint8_t hdr[10];
    uint8_t hdr_len, hdr_need;
    uint8_t ws_op;   /* opcode of the current frame */
    uint8_t ws_rsv1; /* current frame is compressed */
    uint8_t deflate; /* permessage-deflate negotiated */
    /* HTTP body */
    uint8_t body_mode, chunk_state, keep_alive;
    uint8_t skip_line; /* dropping the xhr_streaming prelude line */
    uint8_t retried;   /* resent a request after the server closed an idle connection */
    /* SockJS frame scanner */
    uint8_t kind; /* first byte of the current frame, 0 before it */
    uint8_t in_str, esc, t_done, code_done;
    uint8_t ready_pos; /* bytes of READY_PREFIX matched at the message's start; 0xff: not one */
    uint8_t is_ready;  /* the current message is a ready message */
    uint16_t close_code;
};

struct bench_client {
    struct bench_client_settings s;
    const struct bench_client_ops *ops;
    void *arg;
    struct event_base *base;
    struct lat_hist *hist;
    struct event *connect_timer, *rate_timer, *start_timer;
    struct conn *conns;
    uint16_t *next_port; /* per source address: where the port walk goes on */
    struct bench_counters ctr;
    long n_started, n_opening;
    double tokens;
    int64_t tokens_at;
    int64_t read_ns; /* CLOCK_REALTIME right after the current read() */
    uint64_t key_seed;
    int pid;
    int resolved;
    int self_test; /* no sockets: requests are not written */
    int n_failed_reported, n_lost_reported;
    z_stream z;
    int z_ready;
    unsigned char scratch[SCRATCH_BYTES];
    unsigned char zout[INFLATE_CHUNK];
};

static void conn_connect(struct conn *c);
static void start_more(struct bench_client *cl);

static long conn_index(const struct conn *c)
{
    return c->cl->s.first + (long)(c - c->cl->conns);
}

static int alive(const struct conn *c)
{
    return c->state == SS_OPENING || c->state == SS_OPEN;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Sec-WebSocket-Key of session i: 16 pseudo-random bytes from a per-client seed. */
static void ws_key(uint64_t seed, long i, char out[25])
{
    uint64_t x = seed ^ ((uint64_t)i * 0x2545f4914f6cdd1dull), w[2];

    w[0] = splitmix64(&x);
    w[1] = splitmix64(&x);
    bench_base64((const unsigned char *)w, 16, out, 0);
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
    bench_base64(md, 20, out, 0);
}

static void check_resolved(struct bench_client *cl)
{
    if (!cl->resolved && cl->n_started == cl->s.count && cl->n_opening == 0) {
        cl->resolved = 1;
        if (cl->ops && cl->ops->resolved)
            cl->ops->resolved(cl->arg);
    }
}

/* Closes the socket (RST: a benchmark should not leave TIME_WAIT ports behind) and drops
 * leftovers; the session state is the caller's. */
static void conn_release(struct conn *c)
{
    if (c->fd >= 0) {
        struct linger lg = {1, 0};

        event_del(&c->ev);
        (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(c->fd);
        c->fd = -1;
    }
    free(c->buf);
    c->buf = NULL;
    c->buf_len = 0;
    c->phase = PH_NONE;
}

/* The session is over: failed if it was not open yet, lost if it was. */
static void conn_end(struct conn *c, const char *why)
{
    struct bench_client *cl = c->cl;

    if (!alive(c))
        return;
    conn_release(c);
    if (c->state == SS_OPENING) {
        c->state = SS_FAILED;
        cl->ctr.failed++;
        cl->n_opening--;
        if (cl->n_failed_reported++ < MAX_REPORTED)
            warnx("session %ld failed: %s", conn_index(c), why);
        start_more(cl);
    } else {
        c->state = SS_LOST;
        cl->ctr.lost++;
        if (cl->n_lost_reported++ < MAX_REPORTED)
            warnx("session %ld lost: %s", conn_index(c), why);
    }
}

/* ---- SockJS frames ------------------------------------------------------------------------ */

static void sj_reset(struct conn *c)
{
    c->kind = 0;
    c->in_str = c->esc = c->t_done = c->code_done = 0;
    c->ready_pos = 0xff;
    c->close_code = 0;
}

/* `\"t\":` at p (p[0] is the backslash): the publish time follows; records a latency if its
 * digits end inside the n bytes at p. */
static void sj_timestamp(struct conn *c, const unsigned char *p, size_t n)
{
    size_t k = 6;
    int64_t t = 0;
    int digits = 0;

    while (k < n && p[k] == ' ')
        k++;
    while (k < n && p[k] >= '0' && p[k] <= '9' && digits < 19) {
        t = t * 10 + (p[k++] - '0');
        digits++;
    }
    if (digits && k < n)
        lat_hist_record(c->cl->hist, c->cl->read_ns - t);
}

/* The gateway's first message of a session, as it appears inside the frame's string: not an
 * event, so not counted as a message. */
static const char READY_PREFIX[] = "{\\\"ready\\\":";

/* Matches the start of the current message against READY_PREFIX, byte by byte (a frame may be
 * split anywhere); uncounts the message once it matched whole. */
static void match_ready(struct conn *c, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n && c->ready_pos < sizeof(READY_PREFIX) - 1; i++) {
        if (p[i] != (unsigned char)READY_PREFIX[c->ready_pos]) {
            c->ready_pos = 0xff;
            return;
        }
        if (++c->ready_pos == sizeof(READY_PREFIX) - 1) {
            c->cl->ctr.messages--;
            c->cl->ctr.ready++;
            c->ready_pos = 0xff;
            c->is_ready = 1;
            return;
        }
    }
}

/*
 * Bytes of the current frame. In an `a[...]` frame every string at array level is one message.
 * Inside a string only `"` (its end) and `\` (an escape: skip the next byte) matter, and the
 * first `\"t\":` of each message is its timestamp.
 */
static void sj_feed(struct conn *c, const unsigned char *p, size_t n)
{
    struct bench_client *cl = c->cl;
    size_t i = 0;

    cl->ctr.payload_bytes += (int64_t)n;
    if (!n)
        return;
    if (!c->kind)
        c->kind = p[0];
    if (c->kind == 'c') {
        /* c[CODE,"reason"]: keep the code for the report. */
        for (; i < n && !c->code_done; i++) {
            if (p[i] >= '0' && p[i] <= '9')
                c->close_code = (uint16_t)(c->close_code * 10 + (p[i] - '0'));
            else if (p[i] == ',')
                c->code_done = 1;
        }
        return;
    }
    if (c->kind != 'a')
        return;
    while (i < n) {
        if (!c->in_str) {
            const unsigned char *q = memchr(p + i, '"', n - i);

            if (!q)
                return;
            c->in_str = 1;
            c->t_done = 0;
            cl->ctr.messages++;
            i = (size_t)(q - p) + 1;
            c->ready_pos = 0;
            c->is_ready = 0;
            continue;
        }
        if (c->ready_pos != 0xff)
            match_ready(c, p + i, n - i);
        if (c->esc) {
            c->esc = 0;
            i++;
            continue;
        }
        size_t j = i;

        while (j < n && p[j] != '"' && p[j] != '\\')
            j++;
        if (j == n)
            return;
        if (p[j] == '"') {
            /* The message ends: it times message_seconds unless it was a ready message (sent
             * at the session's open, not a delivery). */
            c->in_str = 0;
            if (!c->is_ready) {
                if (!cl->ctr.first_message_ns)
                    cl->ctr.first_message_ns = cl->read_ns;
                cl->ctr.last_message_ns = cl->read_ns;
            }
            i = j + 1;
            continue;
        }
        if (!c->t_done && j + 5 < n && p[j + 1] == '"' && p[j + 2] == 't' && p[j + 3] == '\\' &&
            p[j + 4] == '"' && p[j + 5] == ':') {
            c->t_done = 1;
            sj_timestamp(c, p + j, n - j);
        }
        if (j + 1 < n) {
            i = j + 2;
        } else {
            c->esc = 1;
            return;
        }
    }
}

/* The current frame is complete. */
static void sj_end(struct conn *c)
{
    struct bench_client *cl = c->cl;
    char why[48];

    if (!c->kind)
        return; /* an empty line */
    cl->ctr.frames++;
    switch (c->kind) {
    case 'o':
        if (c->state == SS_OPENING) {
            c->state = SS_OPEN;
            cl->n_opening--;
            cl->ctr.opened++;
            cl->ctr.last_open_ns = cl->read_ns;
            if (c->deflate)
                cl->ctr.deflate++;
            start_more(cl);
        }
        break;
    case 'h':
        cl->ctr.heartbeats++;
        break;
    case 'c':
        snprintf(why, sizeof(why), "SockJS close frame, code %u", c->close_code);
        conn_end(c, why);
        return;
    default:
        break;
    }
    sj_reset(c);
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

static void conn_send(struct conn *c, const char *data, size_t len)
{
    if (c->cl->self_test)
        return;
    /* Requests and pongs are small, and a connected socket's send buffer takes them whole. */
    if (write(c->fd, data, len) != (ssize_t)len)
        conn_end(c, "write failed");
}

static const char *const transport_path[] = {"websocket", "xhr_streaming", "xhr"};

/* The session's request; on the connection's first one, also switches the event to reads. */
static void send_request(struct conn *c)
{
    struct bench_client *cl = c->cl;
    const struct bench_target *t = &cl->s.targets[conn_index(c) % cl->s.n_targets];
    long i = conn_index(c);
    char token[512] = "", req[1536], key[25];
    int len;

    if (cl->s.jwt && !bench_jwt_mint(cl->s.jwt, i, token, sizeof(token)))
        errx(1, "token too long (site name?)");
    if (cl->s.transport == BENCH_WEBSOCKET) {
        ws_key(cl->key_seed, i, key);
        len = snprintf(req, sizeof(req),
                       "GET %s/%03ld/%d-%ld/websocket%s%s HTTP/1.1\r\n"
                       "Host: %s:%d\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Key: %s\r\n"
                       "Sec-WebSocket-Version: 13\r\n"
                       "%s"
                       "\r\n",
                       cl->s.prefix, i % 1000, cl->pid, i, *token ? "?token=" : "", token, t->host,
                       t->port, key,
                       cl->s.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                                       "client_no_context_takeover; "
                                       "server_no_context_takeover\r\n"
                                     : "");
    } else {
        len = snprintf(req, sizeof(req),
                       "POST %s/%03ld/%d-%ld/%s%s%s HTTP/1.1\r\n"
                       "Host: %s:%d\r\n"
                       "Content-Length: 0\r\n"
                       "\r\n",
                       cl->s.prefix, i % 1000, cl->pid, i, transport_path[cl->s.transport],
                       *token ? "?token=" : "", token, t->host, t->port);
    }
    if (len < 0 || (size_t)len >= sizeof(req))
        errx(1, "request too long (prefix?)");
    c->phase = PH_HEAD;
    c->buf_len = 0;
    conn_send(c, req, (size_t)len);
}

/* Next header line of a head: name/value trimmed; returns 0 at the end. */
static int next_header(const char **pos, const char *end, const char **name, size_t *name_len,
                       const char **val, size_t *val_len)
{
    const char *p = *pos, *eol, *colon;

    for (;;) {
        if (p >= end)
            return 0;
        eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        colon = memchr(p, ':', (size_t)(eol - p));
        *pos = eol + 1;
        if (!colon) {
            p = eol + 1;
            continue;
        }
        *name = p;
        *name_len = (size_t)(colon - p);
        p = colon + 1;
        while (p < eol && (*p == ' ' || *p == '\t'))
            p++;
        const char *v_end = eol;

        while (v_end > p && (v_end[-1] == '\r' || v_end[-1] == ' ' || v_end[-1] == '\t'))
            v_end--;
        *val = p;
        *val_len = (size_t)(v_end - p);
        return 1;
    }
}

static int header_is(const char *name, size_t len, const char *want)
{
    return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

/* Does the comma/semicolon separated `val` contain `token` (case-insensitive)? */
static int value_has(const char *val, size_t len, const char *token)
{
    size_t tl = strlen(token);

    for (size_t i = 0; i + tl <= len; i++)
        if (strncasecmp(val + i, token, tl) == 0 &&
            (i == 0 || val[i - 1] == ' ' || val[i - 1] == ',' || val[i - 1] == ';') &&
            (i + tl == len || val[i + tl] == ' ' || val[i + tl] == ',' || val[i + tl] == ';'))
            return 1;
    return 0;
}

/*
 * The server's permessage-deflate answer (RFC 7692 §7): we offered no context takeover both
 * ways, so an acceptance must carry server_no_context_takeover (each message then inflates from
 * a fresh context, which is what lets one inflater serve every connection); client parameters
 * we did not offer (client_max_window_bits) or unknown ones are errors. 1 ok, 0 bad.
 */
static int deflate_params_ok(const char *v, size_t len)
{
    const char *end = v + len, *p = v;
    int first = 1, server_nct = 0;

    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *e = semi ? semi : end;

        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        const char *te = e;

        while (te > p && (te[-1] == ' ' || te[-1] == '\t'))
            te--;
        size_t tl = (size_t)(te - p);

        if (first) {
            if (!(tl == 18 && strncasecmp(p, "permessage-deflate", 18) == 0))
                return 0;
            first = 0;
        } else if (tl == 26 && strncasecmp(p, "server_no_context_takeover", 26) == 0) {
            server_nct = 1;
        } else if (tl == 26 && strncasecmp(p, "client_no_context_takeover", 26) == 0) {
            /* we do not compress anything anyway */
        } else if (tl >= 22 && strncasecmp(p, "server_max_window_bits", 22) == 0) {
            /* a smaller window inflates with the default 15 bits */
        } else {
            return 0;
        }
        p = semi ? semi + 1 : end;
    }
    return !first && server_nct;
}

/* A complete response head (len bytes, ending with the blank line). 0 ok, -1 ended. */
static int head_done(struct conn *c, const char *head, size_t len)
{
    struct bench_client *cl = c->cl;
    const char *end = head + len, *pos, *name, *val;
    size_t nl, vl;
    int status, http11, chunked = 0, conn_close = 0, have_length = 0, accept_ok = 0, ext = 0;
    uint64_t length = 0;
    char why[160];

    if (len < 12 || strncmp(head, "HTTP/1.", 7) != 0 || head[8] != ' ') {
        conn_end(c, "malformed response");
        return -1;
    }
    http11 = head[7] == '1';
    status = (int)bench_parse_uint(head + 9, 3, 10);
    pos = memchr(head, '\n', len);
    pos = pos ? pos + 1 : end;
    c->retried = 0;
    if (cl->s.transport == BENCH_WEBSOCKET) {
        char key[25], accept[29];

        if (status != 101) {
            size_t line = (size_t)(pos - head);

            while (line && (head[line - 1] == '\r' || head[line - 1] == '\n'))
                line--;
            snprintf(why, sizeof(why), "handshake refused: %.*s", (int)(line < 100 ? line : 100),
                     head);
            conn_end(c, why);
            return -1;
        }
        ws_key(cl->key_seed, conn_index(c), key);
        ws_accept(key, accept);
        while (next_header(&pos, end, &name, &nl, &val, &vl)) {
            if (header_is(name, nl, "Sec-WebSocket-Accept"))
                accept_ok = vl == 28 && memcmp(val, accept, 28) == 0;
            else if (header_is(name, nl, "Sec-WebSocket-Extensions")) {
                if (!cl->s.deflate || ext || !deflate_params_ok(val, vl)) {
                    conn_end(c, "unexpected Sec-WebSocket-Extensions");
                    return -1;
                }
                ext = 1;
            }
        }
        if (!accept_ok) {
            conn_end(c, "missing or wrong Sec-WebSocket-Accept");
            return -1;
        }
        c->deflate = (uint8_t)ext;
        c->phase = PH_WS;
        c->hdr_len = c->hdr_need = 0;
        sj_reset(c);
        return 0;
    }
    if (status != 200) {
        snprintf(why, sizeof(why), "HTTP status %d", status);
        conn_end(c, why);
        return -1;
    }
    while (next_header(&pos, end, &name, &nl, &val, &vl)) {
        if (header_is(name, nl, "Transfer-Encoding"))
            chunked = value_has(val, vl, "chunked");
        else if (header_is(name, nl, "Content-Length")) {
            have_length = 1;
            length = bench_parse_uint(val, vl, 10);
        } else if (header_is(name, nl, "Connection"))
            conn_close = value_has(val, vl, "close");
    }
    c->body_mode = chunked ? BM_CHUNKED : have_length ? BM_LENGTH : BM_EOF;
    c->chunk_state = CK_SIZE;
    c->left = chunked ? 0 : length;
    c->keep_alive = http11 && !conn_close && c->body_mode != BM_EOF;
    c->skip_line = cl->s.transport == BENCH_XHR_STREAMING;
    c->phase = PH_BODY;
    sj_reset(c);
    return 0;
}

/* Response head bytes; returns how many of the n bytes it used, or -1 if the session ended. */
static long head_input(struct conn *c, const unsigned char *p, size_t n)
{
    size_t old = c->buf_len, take, start;
    const unsigned char *e;

    if (!old) {
        /* The usual case: the whole head is in this read; parse it where it is. */
        e = memmem(p, n, "\r\n\r\n", 4);
        if (e) {
            size_t used = (size_t)(e + 4 - p);

            return head_done(c, (const char *)p, used) < 0 ? -1 : (long)used;
        }
        c->buf = malloc(MAX_HEAD);
        if (!c->buf)
            errx(1, "out of memory");
    }
    take = n < MAX_HEAD - old ? n : MAX_HEAD - old;
    memcpy(c->buf + old, p, take);
    c->buf_len = (uint32_t)(old + take);
    start = old > 3 ? old - 3 : 0;
    e = memmem(c->buf + start, c->buf_len - start, "\r\n\r\n", 4);
    if (!e) {
        if (c->buf_len >= MAX_HEAD) {
            conn_end(c, "response head too large");
            return -1;
        }
        return (long)take;
    }
    size_t used = (size_t)(e + 4 - c->buf);
    unsigned char *head = c->buf;

    c->buf = NULL;
    c->buf_len = 0;
    int r = head_done(c, (const char *)head, used);

    free(head);
    return r < 0 ? -1 : (long)(used - old);
}

/* The response is complete: the next request goes out (xhr transports). */
static void response_end(struct conn *c)
{
    if (!alive(c))
        return;
    if (c->state == SS_OPENING) {
        conn_end(c, "response without an open frame");
        return;
    }
    if (c->keep_alive) {
        send_request(c);
        return;
    }
    conn_release(c);
    c->cl->ctr.reconnects++;
    conn_connect(c);
}

/* Body bytes: one SockJS frame per line (the xhr_streaming prelude line skipped). */
static void body_bytes(struct conn *c, const unsigned char *p, size_t n)
{
    while (n && alive(c)) {
        const unsigned char *nl = memchr(p, '\n', n);
        size_t len = nl ? (size_t)(nl - p) : n;

        if (!c->skip_line)
            sj_feed(c, p, len);
        if (!nl)
            return;
        if (c->skip_line)
            c->skip_line = 0;
        else
            sj_end(c);
        p += len + 1;
        n -= len + 1;
    }
}

static int hex_value(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* HTTP body bytes; returns how many it used (it stops when the response ends), -1 if ended. */
static long body_input(struct conn *c, const unsigned char *p, size_t n)
{
    size_t i = 0;

    while (i < n && c->phase == PH_BODY && alive(c)) {
        if (c->body_mode != BM_CHUNKED) {
            size_t take = n - i;

            if (c->body_mode == BM_LENGTH && take > c->left)
                take = (size_t)c->left;
            body_bytes(c, p + i, take);
            i += take;
            if (c->body_mode == BM_LENGTH && !(c->left -= take))
                response_end(c);
            continue;
        }
        unsigned char ch = p[i];

        switch (c->chunk_state) {
        case CK_SIZE: {
            int v = hex_value(ch);

            i++;
            if (v >= 0) {
                if (c->left >> 56) {
                    conn_end(c, "chunk size too large");
                    return -1;
                }
                c->left = c->left << 4 | (unsigned)v;
            } else if (ch == ';' || ch == '\r' || ch == '\n') {
                c->chunk_state = CK_EXT;
                i -= ch == '\n'; /* let CK_EXT see it */
            } else {
                conn_end(c, "bad chunk size");
                return -1;
            }
            break;
        }
        case CK_EXT:
            i++;
            if (ch == '\n')
                c->chunk_state = c->left ? CK_DATA : CK_TRAILER_START;
            break;
        case CK_DATA: {
            size_t take = n - i < c->left ? n - i : (size_t)c->left;

            body_bytes(c, p + i, take);
            i += take;
            if (!(c->left -= take))
                c->chunk_state = CK_DATA_END;
            break;
        }
        case CK_DATA_END:
            i++;
            if (ch == '\n') {
                c->chunk_state = CK_SIZE;
                c->left = 0;
            }
            break;
        case CK_TRAILER_START:
        case CK_TRAILER_CR:
            i++;
            if (ch == '\n')
                response_end(c);
            else if (ch == '\r' && c->chunk_state == CK_TRAILER_START)
                c->chunk_state = CK_TRAILER_CR;
            else
                c->chunk_state = CK_TRAILER_LINE;
            break;
        case CK_TRAILER_LINE:
            i++;
            if (ch == '\n')
                c->chunk_state = CK_TRAILER_START;
            break;
        }
    }
    return alive(c) ? (long)i : -1;
}

/* ---- websocket ----------------------------------------------------------------------------- */

static void buf_append(struct conn *c, const unsigned char *p, size_t n, size_t cap)
{
    unsigned char *nb;

    if (!n)
        return;
    nb = realloc(c->buf, c->buf_len + n);
    if (!nb || c->buf_len + n > cap)
        errx(1, "out of memory");
    c->buf = nb;
    memcpy(c->buf + c->buf_len, p, n);
    c->buf_len += (uint32_t)n;
}

/* Inflates part of a compressed message into the frame scanner. 0 ok, -1 bad data. */
static int inflate_some(struct conn *c, const unsigned char *in, size_t n)
{
    struct bench_client *cl = c->cl;
    z_stream *z = &cl->z;

    z->next_in = (Bytef *)(uintptr_t)in;
    z->avail_in = (uInt)n;
    for (;;) {
        z->next_out = cl->zout;
        z->avail_out = sizeof(cl->zout);
        int r = inflate(z, Z_SYNC_FLUSH);
        size_t got = sizeof(cl->zout) - z->avail_out;

        if (got) {
            cl->ctr.inflated_bytes += (int64_t)got;
            sj_feed(c, cl->zout, got);
        }
        if (r == Z_STREAM_END || (z->avail_in == 0 && z->avail_out != 0))
            return 0;
        if (r != Z_OK && !(r == Z_BUF_ERROR && got))
            return -1;
    }
}

/* One whole compressed message (RFC 7692 §7.2.2: append 00 00 ff ff, inflate). Every message
 * starts from a fresh context (server_no_context_takeover), so one inflater serves all. */
static int inflate_message(struct conn *c, const unsigned char *p, size_t n)
{
    static const unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
    struct bench_client *cl = c->cl;

    if (!cl->z_ready) {
        if (inflateInit2(&cl->z, -15) != Z_OK)
            errx(1, "inflateInit2 failed");
        cl->z_ready = 1;
    } else if (inflateReset(&cl->z) != Z_OK) {
        return -1;
    }
    if (inflate_some(c, p, n) < 0 || inflate_some(c, tail, sizeof(tail)) < 0)
        return -1;
    return 0;
}

static void send_pong(struct conn *c)
{
    unsigned char f[2 + 4 + MAX_CONTROL];
    uint64_t x = (uint64_t)bench_monotonic_ns();
    uint32_t mask = (uint32_t)splitmix64(&x);
    unsigned char m[4];
    size_t n = 0;

    memcpy(m, &mask, 4);
    f[n++] = 0x8a;
    f[n++] = (unsigned char)(0x80 | c->buf_len);
    memcpy(f + n, m, 4);
    n += 4;
    for (size_t i = 0; i < c->buf_len; i++)
        f[n++] = (unsigned char)(c->buf[i] ^ m[i % 4]);
    conn_send(c, (const char *)f, n);
}

/* A frame header is complete: checks it. 0 ok, -1 ended. */
static int ws_frame_start(struct conn *c)
{
    unsigned h0 = c->hdr[0];
    uint64_t len = c->hdr[1] & 0x7f;

    if (c->hdr_need == 4)
        len = (uint64_t)c->hdr[2] << 8 | c->hdr[3];
    else if (c->hdr_need == 10)
        for (int k = 2; k < 10; k++)
            len = len << 8 | c->hdr[k];
    c->ws_op = h0 & 0x0f;
    c->ws_rsv1 = (h0 & 0x40) != 0;
    c->left = len;
    if (h0 & 0x30) {
        conn_end(c, "RSV2/RSV3 set");
        return -1;
    }
    if (c->ws_rsv1 && (!c->deflate || (c->ws_op != 0x1 && c->ws_op != 0x2))) {
        conn_end(c, "RSV1 set without permessage-deflate");
        return -1;
    }
    if ((c->ws_op & 0x8) && len > MAX_CONTROL) {
        conn_end(c, "control frame too long");
        return -1;
    }
    if (!(h0 & 0x80) || c->ws_op == 0x0) {
        /* Neither the gateway nor sockjs-node fragments messages. */
        conn_end(c, "fragmented message");
        return -1;
    }
    if (c->ws_rsv1 && len > MAX_COMPRESSED) {
        conn_end(c, "compressed message too large");
        return -1;
    }
    if (c->ws_op == 0x1)
        sj_reset(c);
    return 0;
}

/* Payload bytes of the current frame; `last` if they complete it. */
static void ws_payload(struct conn *c, const unsigned char *p, size_t n, int last)
{
    switch (c->ws_op) {
    case 0x1:
        if (!c->ws_rsv1) {
            sj_feed(c, p, n);
        } else if (last && !c->buf_len) {
            if (inflate_message(c, p, n) < 0)
                conn_end(c, "bad compressed data");
        } else {
            /* A compressed message split across reads waits for its end (leftover bytes). */
            buf_append(c, p, n, MAX_COMPRESSED);
            if (last) {
                int r = inflate_message(c, c->buf, c->buf_len);

                free(c->buf);
                c->buf = NULL;
                c->buf_len = 0;
                if (r < 0)
                    conn_end(c, "bad compressed data");
            }
        }
        break;
    case 0x9:
        buf_append(c, p, n, MAX_CONTROL);
        break;
    default:
        break; /* binary, pong, close: not needed */
    }
}

static void ws_frame_done(struct conn *c)
{
    switch (c->ws_op) {
    case 0x1:
        sj_end(c);
        break;
    case 0x8:
        conn_end(c, "websocket close");
        return;
    case 0x9:
        c->cl->ctr.heartbeats++;
        send_pong(c);
        free(c->buf);
        c->buf = NULL;
        c->buf_len = 0;
        break;
    default:
        break;
    }
    c->hdr_len = c->hdr_need = 0;
}

static long ws_input(struct conn *c, const unsigned char *p, size_t n)
{
    size_t i = 0;

    while (i < n && alive(c)) {
        if (c->hdr_len < 2 || c->hdr_len < c->hdr_need) {
            c->hdr[c->hdr_len++] = p[i++];
            if (c->hdr_len == 2) {
                unsigned l7 = c->hdr[1] & 0x7f;

                if (c->hdr[1] & 0x80) {
                    conn_end(c, "server frame is masked");
                    return -1;
                }
                c->hdr_need = (uint8_t)(2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0));
            }
            if (c->hdr_len < 2 || c->hdr_len < c->hdr_need)
                continue;
            if (ws_frame_start(c) < 0)
                return -1;
            if (!c->left) {
                ws_payload(c, p + i, 0, 1);
                if (alive(c))
                    ws_frame_done(c);
            }
            continue;
        }
        size_t take = n - i < c->left ? n - i : (size_t)c->left;

        c->left -= take;
        ws_payload(c, p + i, take, c->left == 0);
        i += take;
        if (!c->left && alive(c))
            ws_frame_done(c);
    }
    return alive(c) ? (long)i : -1;
}

/* ---- connections --------------------------------------------------------------------------- */

/* Bytes read from the connection, handed to the current phase until used up. */
static void conn_input(struct conn *c, const unsigned char *p, size_t n)
{
    while (n > 0) {
        long used;

        switch (c->phase) {
        case PH_HEAD:
            used = head_input(c, p, n);
            break;
        case PH_WS:
            used = ws_input(c, p, n);
            break;
        case PH_BODY:
            used = body_input(c, p, n);
            break;
        default:
            return; /* ended, or reconnecting: the rest belongs to no request */
        }
        if (used < 0)
            return;
        p += used;
        n -= (size_t)used;
    }
}

static void on_eof(struct conn *c)
{
    if (c->phase == PH_BODY && c->body_mode == BM_EOF) {
        response_end(c);
    } else if (c->phase == PH_HEAD && c->state == SS_OPEN && !c->buf_len && !c->retried &&
               c->cl->s.transport != BENCH_WEBSOCKET) {
        /* The server closed a kept-alive connection as our next request went out: resend
         * once on a new connection, as a browser would. */
        conn_release(c);
        c->retried = 1;
        c->cl->ctr.reconnects++;
        conn_connect(c);
    } else {
        conn_end(c, "server closed the connection");
    }
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct bench_client *cl = c->cl;
    ssize_t r;

    if (c->phase == PH_CONNECTING) {
        int err = 0;
        socklen_t sl = sizeof(err);

        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0 || err) {
            conn_end(c, strerror(err ? err : errno));
            return;
        }
        event_del(&c->ev);
        event_assign(&c->ev, cl->base, fd, EV_READ | EV_PERSIST, on_event, c);
        event_add(&c->ev, NULL);
        send_request(c);
        return;
    }
    r = read(fd, cl->scratch, sizeof(cl->scratch));
    cl->read_ns = bench_realtime_ns();
    if (r < 0) {
        if (errno != EAGAIN && errno != EINTR)
            conn_end(c, strerror(errno));
        return;
    }
    if (r == 0) {
        on_eof(c);
        return;
    }
    cl->ctr.wire_bytes += r;
    conn_input(c, cl->scratch, (size_t)r);
}

/* Binds fd to source address `src` and the next free port there; 0 or a negative errno. */
static int bind_source(struct bench_client *cl, int fd, int src)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};

    sa.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)src);
    for (int tries = 0; tries < 65536 - FIRST_PORT; tries++) {
        uint16_t port = cl->next_port[src];

        cl->next_port[src] = port == 65535 ? FIRST_PORT : (uint16_t)(port + 1);
        sa.sin_port = htons(port);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return 0;
        if (errno != EADDRINUSE && errno != EACCES)
            return -errno;
    }
    return -EADDRNOTAVAIL;
}

/* A new connection for session c (first, or after the server closed an xhr connection). */
static void conn_connect(struct conn *c)
{
    struct bench_client *cl = c->cl;
    long i = conn_index(c);
    const struct bench_target *t = &cl->s.targets[i % cl->s.n_targets];
    int fd, one = 1;
    char why[96];

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, sizeof(why), "socket: %s (fd limit: use more --procs)", strerror(errno));
        conn_end(c, why);
        return;
    }
    /* A pong or the next poll must leave at once, not wait for the ACK of earlier bytes. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (cl->s.sources > 0) {
        int src = (int)(i % cl->s.sources), e = bind_source(cl, fd, src);

        if (e < 0) {
            close(fd);
            snprintf(why, sizeof(why), "bind 127.0.0.%d: %s%s", 2 + src, strerror(-e),
                     e == -EADDRNOTAVAIL ? " (out of ports: use more --sources)" : "");
            conn_end(c, why);
            return;
        }
    }
    if (connect(fd, (const struct sockaddr *)&t->addr, sizeof(t->addr)) < 0 &&
        errno != EINPROGRESS) {
        snprintf(why, sizeof(why), "connect: %s", strerror(errno));
        close(fd);
        conn_end(c, why);
        return;
    }
    c->fd = fd;
    c->phase = PH_CONNECTING;
    event_assign(&c->ev, cl->base, fd, EV_WRITE, on_event, c);
    if (event_add(&c->ev, NULL) < 0)
        errx(1, "event_add failed");
}

static void conn_start(struct bench_client *cl, long k)
{
    struct conn *c = &cl->conns[k];

    c->state = SS_OPENING;
    cl->n_opening++;
    if (!cl->ctr.first_connect_ns)
        cl->ctr.first_connect_ns = bench_realtime_ns();
    conn_connect(c);
}

/*
 * Starts sessions while the token bucket (--rate) and max_inflight allow: thousands of
 * handshakes at once only overflow the server's accept backlog and turn into SYN retransmits.
 * conn_start() can end a session at once (no ports), which calls back here: the loop condition
 * is re-read every time, so that is harmless.
 */
static void start_more(struct bench_client *cl)
{
    while (cl->n_started < cl->s.count && cl->n_opening < cl->s.max_inflight) {
        if (cl->s.rate > 0) {
            if (cl->tokens < 1)
                break;
            cl->tokens -= 1;
        }
        conn_start(cl, cl->n_started++);
    }
    check_resolved(cl);
}

static void on_rate_tick(evutil_socket_t fd, short what, void *arg)
{
    struct bench_client *cl = arg;
    int64_t now = bench_monotonic_ns();
    /* Burst: 10 ms worth of connects, at least one. */
    double cap = cl->s.rate / 100 > 1 ? cl->s.rate / 100 : 1;

    cl->tokens += cl->s.rate * (double)(now - cl->tokens_at) / 1e9;
    if (cl->tokens > cap)
        cl->tokens = cap;
    cl->tokens_at = now;
    start_more(cl);
    if (cl->n_started == cl->s.count)
        event_del(cl->rate_timer);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct bench_client *cl = arg;
    long unstarted = cl->s.count - cl->n_started;

    if (cl->resolved)
        return;
    warnx("connect timeout: %ld sessions not open, %ld not started", cl->n_opening, unstarted);
    cl->n_started = cl->s.count; /* no more starts */
    cl->ctr.failed += unstarted;
    for (long k = 0; k < cl->s.count; k++)
        if (cl->conns[k].state == SS_OPENING)
            conn_end(&cl->conns[k], "not open within the connect timeout");
    check_resolved(cl);
}

static void on_first_start(evutil_socket_t fd, short what, void *arg)
{
    start_more(arg);
}

static struct bench_client *client_alloc(const struct bench_client_settings *s)
{
    struct bench_client *cl = calloc(1, sizeof(*cl));

    if (!cl)
        errx(1, "out of memory");
    cl->s = *s;
    cl->pid = (int)getpid();
    cl->key_seed = (uint64_t)bench_realtime_ns() ^ ((uint64_t)cl->pid << 32);
    cl->conns = calloc((size_t)(s->count > 0 ? s->count : 1), sizeof(*cl->conns));
    cl->next_port = calloc((size_t)(s->sources > 0 ? s->sources : 1), sizeof(*cl->next_port));
    if (!cl->conns || !cl->next_port)
        errx(1, "out of memory");
    for (long k = 0; k < s->count; k++) {
        cl->conns[k].cl = cl;
        cl->conns[k].fd = -1;
    }
    for (int j = 0; j < (s->sources > 0 ? s->sources : 1); j++)
        cl->next_port[j] =
            (uint16_t)(s->port_start >= FIRST_PORT && s->port_start <= 65535 ? s->port_start
                                                                             : FIRST_PORT);
    return cl;
}

struct bench_client *bench_client_new(struct event_base *base,
                                      const struct bench_client_settings *s, struct lat_hist *hist,
                                      const struct bench_client_ops *ops, void *arg)
{
    struct bench_client *cl = client_alloc(s);
    struct timeval tv = {
        (time_t)s->connect_timeout,
        (suseconds_t)((s->connect_timeout - (double)(time_t)s->connect_timeout) * 1e6)};

    cl->base = base;
    cl->hist = hist;
    cl->ops = ops;
    cl->arg = arg;
    cl->connect_timer = evtimer_new(base, on_connect_timeout, cl);
    if (!cl->connect_timer || evtimer_add(cl->connect_timer, &tv) < 0)
        errx(1, "out of memory");
    if (s->rate > 0) {
        struct timeval tick = {0, 2000};

        cl->tokens = 1;
        cl->tokens_at = bench_monotonic_ns();
        cl->rate_timer = event_new(base, -1, EV_PERSIST, on_rate_tick, cl);
        if (!cl->rate_timer || event_add(cl->rate_timer, &tick) < 0)
            errx(1, "out of memory");
    }
    /* The first starts happen in the loop, so that ops->resolved never runs from here. */
    struct timeval now = {0, 0};

    cl->start_timer = evtimer_new(base, on_first_start, cl);
    if (!cl->start_timer || evtimer_add(cl->start_timer, &now) < 0)
        errx(1, "out of memory");
    return cl;
}

static void client_release(struct bench_client *cl)
{
    for (long k = 0; k < cl->s.count; k++)
        conn_release(&cl->conns[k]);
    if (cl->z_ready)
        inflateEnd(&cl->z);
    free(cl->conns);
    free(cl->next_port);
    free(cl);
}

void bench_client_free(struct bench_client *cl)
{
    event_free(cl->connect_timer);
    event_free(cl->start_timer);
    if (cl->rate_timer)
        event_free(cl->rate_timer);
    client_release(cl);
}

void bench_client_counters(const struct bench_client *cl, struct bench_counters *out)
{
    *out = cl->ctr;
}

/* ---- self-test ----------------------------------------------------------------------------- */

#define ST_KEY_SEED 42

struct st_buf {
    unsigned char *p;
    size_t n, cap;
};

static void st_put(struct st_buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            errx(1, "out of memory");
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void st_str(struct st_buf *b, const char *s)
{
    st_put(b, s, strlen(s));
}

/* An unmasked server frame. */
static void st_ws_frame(struct st_buf *b, unsigned first, const unsigned char *p, size_t n)
{
    unsigned char h[10];
    size_t hl = 2;

    h[0] = (unsigned char)first;
    if (n < 126) {
        h[1] = (unsigned char)n;
    } else if (n < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(n >> 8);
        h[3] = (unsigned char)n;
        hl = 4;
    } else {
        h[1] = 127;
        for (int k = 0; k < 8; k++)
            h[2 + k] = (unsigned char)((uint64_t)n >> (56 - 8 * k));
        hl = 10;
    }
    st_put(b, h, hl);
    st_put(b, p, n);
}

/* Raw deflate of one message from a fresh context, without the final 00 00 ff ff (RFC 7692). */
static size_t st_deflate(const char *in, unsigned char *out, size_t cap)
{
    z_stream z;
    size_t n;

    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        errx(1, "deflateInit2 failed");
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)strlen(in);
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_SYNC_FLUSH) != Z_OK)
        errx(1, "deflate failed");
    n = cap - z.avail_out;
    deflateEnd(&z);
    if (n < 4 || memcmp(out + n - 4, "\x00\x00\xff\xff", 4) != 0)
        errx(1, "deflate output does not end with 00 00 ff ff");
    return n - 4;
}

struct st_expect {
    int64_t opened, lost, messages, heartbeats, frames, latencies_min;
};

/*
 * Feeds `in` to a fresh client's session 0 as `split`-byte reads (0: one read) and checks the
 * counters; returns the number of failed checks.
 */
static int st_run(const char *name, enum bench_transport tr, int deflate, const struct st_buf *in,
                  size_t split, const struct st_expect *want)
{
    static const struct bench_target target = {.host = "127.0.0.1", .port = 1};
    struct bench_client_settings s = {
        .targets = &target,
        .n_targets = 1,
        .prefix = "/sockjs",
        .transport = tr,
        .count = 1,
        .max_inflight = 1,
        .deflate = deflate,
    };
    struct lat_hist *h = calloc(1, sizeof(*h));
    struct bench_client *cl = client_alloc(&s);
    struct conn *c = &cl->conns[0];
    int bad = 0;

    if (!h)
        errx(1, "out of memory");
    cl->self_test = 1;
    cl->n_failed_reported = cl->n_lost_reported = MAX_REPORTED; /* the checks below say it */
    cl->key_seed = ST_KEY_SEED;
    cl->hist = h;
    c->state = SS_OPENING;
    cl->n_opening = 1;
    cl->n_started = 1;
    send_request(c);
    for (size_t off = 0; off < in->n;) {
        size_t n = split && in->n - off > split ? split : in->n - off;

        cl->read_ns = bench_realtime_ns();
        memcpy(cl->scratch, in->p + off, n); /* as a read() would */
        conn_input(c, cl->scratch, n);
        off += n;
    }
#define ST_CHECK(field, val)                                                                       \
    do {                                                                                           \
        if ((int64_t)(field) != (int64_t)(val)) {                                                  \
            warnx("self-test %s (reads of %zu): %s = %lld, expected %lld", name, split, #field,    \
                  (long long)(field), (long long)(val));                                           \
            bad++;                                                                                 \
        }                                                                                          \
    } while (0)
    ST_CHECK(cl->ctr.opened, want->opened);
    ST_CHECK(cl->ctr.lost, want->lost);
    ST_CHECK(cl->ctr.failed, 0);
    ST_CHECK(cl->ctr.messages, want->messages);
    ST_CHECK(cl->ctr.heartbeats, want->heartbeats);
    ST_CHECK(cl->ctr.frames, want->frames);
    ST_CHECK(cl->ctr.deflate, deflate ? want->opened : 0);
    if ((int64_t)h->n < want->latencies_min) {
        warnx("self-test %s (reads of %zu): %llu latencies, expected at least %lld", name, split,
              (unsigned long long)h->n, (long long)want->latencies_min);
        bad++;
    }
    if (h->n && (h->max_ns > 60000000000ull || h->negative)) {
        warnx("self-test %s: implausible latency %llu ns", name, (unsigned long long)h->max_ns);
        bad++;
    }
#undef ST_CHECK
    client_release(cl);
    free(h);
    return bad;
}

/* Both the whole input at once, and every read size from 1 to 64 bytes. */
static int st_all_splits(const char *name, enum bench_transport tr, int deflate,
                         const struct st_buf *in, const struct st_expect *want,
                         const struct st_expect *split_want)
{
    int bad = st_run(name, tr, deflate, in, 0, want);

    for (size_t split = 1; split <= 64; split++)
        bad += st_run(name, tr, deflate, in, split, split_want);
    return bad;
}

static double pow10_approx(double e)
{
    return exp(e * 2.302585092994046);
}

static int st_hist(void)
{
    struct lat_hist *h = calloc(1, sizeof(*h)), *h2 = calloc(1, sizeof(*h2));
    int bad = 0;

    if (!h || !h2)
        errx(1, "out of memory");
    /* 1 us .. 100 s, log-spaced: every percentile within 1 % of the exact one. */
    for (int k = 0; k <= 800; k++) {
        int64_t v = (int64_t)(1000.0 * pow10_approx(k / 100.0));

        lat_hist_record(k % 2 ? h : h2, v);
    }
    lat_hist_merge(h, h2);
    for (int q = 1; q <= 100; q++) {
        /* nearest rank q% of 801 values: index ceil(q * 801 / 100) - 1 */
        int idx = (q * 801 + 99) / 100 - 1;
        double exact = 1000.0 * pow10_approx(idx / 100.0), got = lat_hist_percentile(h, q);

        if (got < exact * 0.99 || got > exact * 1.01) {
            warnx("self-test histogram: p%d = %.0f, exact %.0f", q, got, exact);
            bad++;
        }
    }
    if (h->n != 801) {
        warnx("self-test histogram: n = %llu", (unsigned long long)h->n);
        bad++;
    }
    free(h);
    free(h2);
    return bad;
}

static void st_chunk(struct st_buf *b, const char *data, size_t n)
{
    char size[32];

    snprintf(size, sizeof(size), "%zx\r\n", n);
    st_str(b, size);
    st_put(b, data, n);
    st_str(b, "\r\n");
}

/* A message frame whose first message carries a timestamp 1 ms old. */
static void st_message_frame(char *out, size_t cap, const char *more)
{
    snprintf(out, cap,
             "a[\"{\\\"scope\\\":\\\"client\\\","
             "\\\"data\\\":{\\\"t\\\":%lld,\\\"p\\\":\\\"q\\\\\\\"\\\"}"
             ",\\\"seq\\\":1}\"%s]",
             (long long)(bench_realtime_ns() - 1000000), more);
}

int bench_client_self_test(void)
{
    char key[25], accept[29], frame[1024], big[400];
    unsigned char z[1024];
    int bad = st_hist();

    ws_key(ST_KEY_SEED, 0, key);
    ws_accept(key, accept);
    for (int deflate = 0; deflate <= 1; deflate++) {
        struct st_buf b = {0};
        struct st_expect want = {.opened = 1,
                                 .lost = 1,
                                 .messages = 3 + 2,
                                 .heartbeats = 2,
                                 .frames = 5,
                                 .latencies_min = 1};

        st_str(&b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: ");
        st_str(&b, accept);
        st_str(&b, deflate ? "\r\nSec-WebSocket-Extensions: permessage-deflate; "
                             "server_no_context_takeover; client_no_context_takeover\r\n\r\n"
                           : "\r\n\r\n");
        st_ws_frame(&b, 0x81, (const unsigned char *)"o", 1);
        st_ws_frame(&b, 0x81, (const unsigned char *)"h", 1);
        st_ws_frame(&b, 0x89, (const unsigned char *)"hi", 2);
        st_message_frame(frame, sizeof(frame), ",\"x\\\\\\\"y\",\"\\\\\"");
        st_ws_frame(&b, 0x81, (const unsigned char *)frame, strlen(frame));
        memset(big, 'p', sizeof(big));
        big[0] = 'a';
        big[1] = '[';
        big[2] = '"';
        memcpy(big + sizeof(big) - 7, "\",\"\"]", 5);
        st_ws_frame(&b, 0x81, (const unsigned char *)big, sizeof(big) - 2);
        if (deflate) {
            st_message_frame(frame, sizeof(frame), ",\"second\"");
            size_t n = st_deflate(frame, z, sizeof(z));

            st_ws_frame(&b, 0xc1, z, n);
            want.messages += 2;
            want.frames++;
            want.latencies_min++;
        }
        st_ws_frame(&b, 0x81, (const unsigned char *)"c[3000,\"Go away!\"]", 18);
        struct st_expect split_want = want;

        split_want.latencies_min = 0;
        bad += st_all_splits(deflate ? "websocket+deflate" : "websocket", BENCH_WEBSOCKET, deflate,
                             &b, &want, &split_want);
        free(b.p);
    }
    {
        struct st_buf b = {0}, body = {0};
        char prelude[2049], head[128];
        struct st_expect want = {.opened = 1,
                                 .lost = 1,
                                 .messages = 3,
                                 .heartbeats = 1,
                                 .frames = 5,
                                 .latencies_min = 1};
        struct st_expect split_want = want;

        memset(prelude, 'h', 2048);
        prelude[2048] = '\n';
        st_str(&b, "HTTP/1.1 200 OK\r\nContent-Type: application/javascript; charset=UTF-8\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n");
        st_chunk(&b, prelude, sizeof(prelude));
        st_chunk(&b, "o\n", 2);
        st_message_frame(frame, sizeof(frame), ",\"b\"");
        strcat(frame, "\n");
        st_chunk(&b, frame, 10);
        st_chunk(&b, frame + 10, strlen(frame) - 10);
        st_chunk(&b, "h\n", 2);
        st_str(&b, "0\r\n\r\n");
        /* The next POST's response (after response_limit), with a Content-Length. */
        st_put(&body, prelude, sizeof(prelude));
        st_str(&body, "a[\"x\"]\nc[3000,\"Go away!\"]\n");
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", body.n);
        st_str(&b, head);
        st_put(&b, body.p, body.n);
        split_want.latencies_min = 0;
        bad += st_all_splits("xhr-streaming", BENCH_XHR_STREAMING, 0, &b, &want, &split_want);
        free(b.p);
        free(body.p);
    }
    {
        struct st_buf b = {0};
        struct st_expect want = {.opened = 1,
                                 .lost = 1,
                                 .messages = 2,
                                 .heartbeats = 1,
                                 .frames = 4,
                                 .latencies_min = 0};

        st_str(&b, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\no\n");
        st_str(&b, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        st_str(&b, "b\r\na[\"1\",\"2\"]\n\r\n");
        st_str(&b, "0\r\n\r\n");
        st_str(&b, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nh\n");
        st_str(&b, "HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\nc[3000,\"Go away!\"]\n");
        bad += st_all_splits("xhr-polling", BENCH_XHR_POLLING, 0, &b, &want, &want);
        free(b.p);
    }
    return bad;
}
