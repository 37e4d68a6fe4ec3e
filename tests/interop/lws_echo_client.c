/*
 * libwebsockets as an independent websocket peer for the gateway.
 *
 * Our websocket code is written in-house (DESIGN.md), so its own tests could share its
 * misreadings of RFC 6455. This client uses libwebsockets' implementation instead: it connects
 * to a running `sockjs-gateway --test-app` and runs these scenarios one after the other, first
 * without and then with permessage-deflate offered:
 *
 *   raw-echo     /echo/websocket              no SockJS framing: each text message is echoed
 *                                             byte for byte; then a client-initiated close.
 *   sockjs-echo  /echo/000/<random>/websocket expects `o`, sends `["msg"]`, expects `a["msg"]`
 *                                             (decoded, so the server may escape as it likes);
 *                                             then a client-initiated close.
 *   raw-close    /close/websocket             expects a close frame 3000 "Go away!".
 *   sockjs-close /close/000/<random>/websocket expects `o`, `c[3000,"Go away!"]`, then the end.
 *
 * Per connection:
 *
 *   CONNECTING -> WAIT_OPEN (sockjs) -> EXCHANGE -> CLOSE_REQUESTED -> CLOSING -> done
 *        \                  \-> WAIT_CLOSE_FRAME (sockjs-close) -> WAIT_END -> done
 *         \-> WAIT_PEER_CLOSE (raw-close) -> WAIT_END -> done
 *
 * Usage: lws_echo_client PORT [TIMEOUT_SECONDS]. Exit 0 on success; otherwise 1 with the
 * scenario and the reason on stderr. Talks to 127.0.0.1 only.
 */
#include <libwebsockets.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A received message larger than this is a server bug, not something to buffer. */
#define MAX_MESSAGE_BYTES (4u * 1024u * 1024u)
/* Size of the big message; DESIGN.md's default limits must let it through. */
#define BIG_MESSAGE_BYTES 100000u
/*
 * lws waits 5 s for the peer's close frame before giving up on its own; a close that takes
 * longer than this means the server ignored ours.
 */
#define CLOSE_HANDSHAKE_SECONDS 3.0

enum framing { FRAMING_RAW, FRAMING_SOCKJS };
enum app { APP_ECHO, APP_CLOSE };

enum conn_state {
    CONN_CONNECTING,
    CONN_WAIT_OPEN,
    CONN_EXCHANGE,
    CONN_CLOSE_REQUESTED,
    CONN_CLOSING,
    CONN_WAIT_PEER_CLOSE,
    CONN_WAIT_CLOSE_FRAME,
    CONN_WAIT_END,
    CONN_DONE
};

static const char *const state_names[] = {
    "connecting",       "wait-open", "exchange", "close-requested", "closing", "wait-peer-close",
    "wait-close-frame", "wait-end",  "done",
};

struct message {
    const char *text; /* UTF-8 payload the application sends and must get back */
    const char *json; /* SockJS only: JSON string literal to send instead of quoting text */
    size_t len;       /* bytes of text (text may contain NUL) */
};

struct scenario {
    const char *name;
    const char *prefix;
    enum framing framing;
    enum app app;
};

struct run {
    const struct scenario *sc;
    int deflate;
    enum conn_state state;
    struct lws *wsi;
    const struct message *msgs;
    size_t n_msgs;
    size_t next_send;   /* index of the next message to send */
    size_t next_expect; /* index of the next echo expected */
    int send_pending;   /* a message is sent and its echo not yet complete */
    unsigned char *rx;  /* the message being reassembled from fragments */
    size_t rx_len, rx_cap;
    double close_started;
    char extensions[128]; /* Sec-WebSocket-Extensions the server accepted, for the report */
    int failed;
    char reason[512];
};

static struct run run;

/*
 * lws 4.1 ignores lws_service()'s timeout and may sleep for days when nothing is scheduled, so
 * a periodic timer wakes the loop for the deadline check.
 */
#define TICK_US (200 * LWS_US_PER_MS)
static lws_sorted_usec_list_t tick;
static struct lws_context *tick_ctx;

static void on_tick(lws_sorted_usec_list_t *sul)
{
    lws_sul_schedule(tick_ctx, 0, sul, on_tick, TICK_US);
}

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Records the first failure only: later ones are usually its consequences. */
static void fail(const char *fmt, ...)
{
    va_list ap;

    if (run.failed)
        return;
    run.failed = 1;
    va_start(ap, fmt);
    vsnprintf(run.reason, sizeof(run.reason), fmt, ap);
    va_end(ap);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (!p) {
        fprintf(stderr, "lws_echo_client: out of memory\n");
        exit(2);
    }
    return p;
}

/* Printable excerpt of a byte string for failure messages: invisible bytes as \xNN. */
static const char *excerpt(const unsigned char *p, size_t len)
{
    static char buf[200];
    size_t o = 0;

    for (size_t i = 0; i < len && o + 8 < sizeof(buf); i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f)
            buf[o++] = (char)p[i];
        else
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\\x%02x", p[i]);
    }
    if (o + 8 >= sizeof(buf))
        memcpy(buf + o, "...", 4);
    else
        buf[o] = '\0';
    return buf;
}

/* Appends the UTF-8 encoding of code point cp to out; out has room for 4 more bytes. */
static size_t utf8_put(unsigned char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xc0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xe0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (unsigned char)(0xf0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

static int hex4(const unsigned char *p, unsigned long *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d;

        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        *v = *v * 16 + (unsigned long)d;
    }
    return 0;
}

/*
 * Decodes the JSON string starting at p[*pos] (the opening quote) into out, which must hold
 * at least the input's length. The decoder is strict, since what the server sends must be
 * valid JSON for every client: raw control characters and lone surrogates are errors.
 * Returns the decoded length, or -1.
 */
static long json_string(const unsigned char *p, size_t len, size_t *pos, unsigned char *out)
{
    size_t i = *pos, o = 0;

    if (i >= len || p[i] != '"')
        return -1;
    for (i++; i < len; i++) {
        unsigned long cp, lo;

        if (p[i] == '"') {
            *pos = i + 1;
            return (long)o;
        }
        if (p[i] < 0x20)
            return -1;
        if (p[i] != '\\') {
            out[o++] = p[i];
            continue;
        }
        if (++i >= len)
            return -1;
        switch (p[i]) {
        case '"':
            out[o++] = '"';
            break;
        case '\\':
            out[o++] = '\\';
            break;
        case '/':
            out[o++] = '/';
            break;
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u':
            if (i + 4 >= len || hex4(p + i + 1, &cp))
                return -1;
            i += 4;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return -1;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                /* A high surrogate needs its low half: "\uD83D\uDE00". */
                if (i + 6 >= len || p[i + 1] != '\\' || p[i + 2] != 'u' || hex4(p + i + 3, &lo) ||
                    lo < 0xdc00 || lo > 0xdfff)
                    return -1;
                i += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            /* Escapes never expand: 6 or 12 input bytes give at most 4 output bytes. */
            o += utf8_put(out + o, cp);
            break;
        default:
            return -1;
        }
    }
    return -1;
}

/* Checks one echoed application message against the next expected one. */
static void expect_echo(const unsigned char *p, size_t len)
{
    const struct message *m;

    if (run.next_expect >= run.n_msgs) {
        fail("unexpected extra message (%zu bytes): %s", len, excerpt(p, len));
        return;
    }
    m = &run.msgs[run.next_expect];
    if (len != m->len || memcmp(p, m->text, len) != 0) {
        size_t i = 0;

        while (i < len && i < m->len && p[i] == (unsigned char)m->text[i])
            i++;
        fail("echo #%zu differs: got %zu bytes, expected %zu; first difference at byte %zu: "
             "got \"%s\"",
             run.next_expect, len, m->len, i, excerpt(p + i, len - i < 24 ? len - i : 24));
        return;
    }
    run.next_expect++;
    if (run.next_expect == run.next_send)
        run.send_pending = 0;
}

/* Handles `a[...]`: every string in the array is one echoed message, in order. */
static void sockjs_array(const unsigned char *p, size_t len)
{
    unsigned char *buf = xmalloc(len);
    size_t pos = 1;

    if (len < 3 || p[0] != '[') {
        fail("bad a-frame payload: %s", excerpt(p, len));
        goto out;
    }
    for (;;) {
        long n = json_string(p, len, &pos, buf);

        if (n < 0) {
            fail("a-frame with invalid JSON string near byte %zu: %s", pos,
                 excerpt(p + pos, len - pos < 40 ? len - pos : 40));
            goto out;
        }
        expect_echo(buf, (size_t)n);
        if (run.failed)
            goto out;
        if (pos < len && p[pos] == ',') {
            pos++;
            continue;
        }
        if (pos + 1 == len && p[pos] == ']')
            goto out;
        fail("a-frame not a JSON array of strings near byte %zu: %s", pos,
             excerpt(p + pos, len - pos < 40 ? len - pos : 40));
        goto out;
    }
out:
    free(buf);
}

/* One complete websocket text message from the server. */
static void on_message(const unsigned char *p, size_t len)
{
    const struct scenario *sc = run.sc;

    if (sc->framing == FRAMING_RAW) {
        if (run.state != CONN_EXCHANGE) {
            fail("unexpected message in state %s: %s", state_names[run.state], excerpt(p, len));
            return;
        }
        expect_echo(p, len);
        return;
    }

    /* Each SockJS websocket message carries exactly one frame. */
    if (len == 1 && p[0] == 'h')
        return;
    switch (run.state) {
    case CONN_WAIT_OPEN:
        if (len != 1 || p[0] != 'o') {
            fail("first frame is not \"o\": %s", excerpt(p, len));
            return;
        }
        run.state = sc->app == APP_ECHO ? CONN_EXCHANGE : CONN_WAIT_CLOSE_FRAME;
        lws_callback_on_writable(run.wsi);
        return;
    case CONN_EXCHANGE:
        if (len >= 1 && p[0] == 'a') {
            sockjs_array(p + 1, len - 1);
            return;
        }
        fail("expected an a-frame, got: %s", excerpt(p, len));
        return;
    case CONN_WAIT_CLOSE_FRAME: {
        static const char want[] = "c[3000,\"Go away!\"]";

        if (len != sizeof(want) - 1 || memcmp(p, want, len) != 0) {
            fail("expected %s, got: %s", want, excerpt(p, len));
            return;
        }
        run.state = CONN_WAIT_END;
        return;
    }
    default:
        fail("unexpected frame in state %s: %s", state_names[run.state], excerpt(p, len));
        return;
    }
}

/* Frames the next message (SockJS: as a one-element JSON array) and writes it. */
static int send_next(struct lws *wsi)
{
    const struct message *m = &run.msgs[run.next_send];
    size_t cap = m->len * 6 + (m->json ? strlen(m->json) : 0) + 8, n = 0;
    unsigned char *buf = xmalloc(LWS_PRE + cap), *out = buf + LWS_PRE;
    int rc;

    if (run.sc->framing == FRAMING_RAW) {
        memcpy(out, m->text, m->len);
        n = m->len;
    } else if (m->json) {
        n = (size_t)snprintf((char *)out, cap, "[%s]", m->json);
    } else {
        /*
         * Quote only what JSON requires; everything else goes as raw UTF-8, the way
         * browsers' JSON.stringify does.
         */
        out[n++] = '[';
        out[n++] = '"';
        for (size_t i = 0; i < m->len; i++) {
            unsigned char c = (unsigned char)m->text[i];

            if (c == '"' || c == '\\') {
                out[n++] = '\\';
                out[n++] = c;
            } else if (c < 0x20) {
                n += (size_t)snprintf((char *)out + n, cap - n, "\\u%04x", c);
            } else {
                out[n++] = c;
            }
        }
        out[n++] = '"';
        out[n++] = ']';
    }
    /* lws buffers whatever the socket does not take and reports writable when done. */
    rc = lws_write(wsi, out, n, LWS_WRITE_TEXT);
    free(buf);
    if (rc < (int)n) {
        fail("lws_write of message #%zu (%zu bytes) failed", run.next_send, n);
        return -1;
    }
    run.next_send++;
    run.send_pending = 1;
    return 0;
}

static int on_writeable(struct lws *wsi)
{
    if (run.state == CONN_EXCHANGE) {
        if (run.send_pending)
            return 0;
        if (run.next_send < run.n_msgs)
            return send_next(wsi);
        run.state = CONN_CLOSE_REQUESTED;
    }
    if (run.state == CONN_CLOSE_REQUESTED) {
        /* Returning -1 after setting a reason makes lws send the close frame and await ack. */
        static unsigned char bye[] = "bye";

        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, bye, sizeof(bye) - 1);
        run.state = CONN_CLOSING;
        run.close_started = now_seconds();
        return -1;
    }
    return 0;
}

static int on_receive(struct lws *wsi, const unsigned char *in, size_t len)
{
    if (lws_frame_is_binary(wsi)) {
        fail("server sent a binary frame; SockJS uses text frames only");
        return -1;
    }
    if (run.rx_len + len > MAX_MESSAGE_BYTES) {
        fail("server message exceeds %u bytes", MAX_MESSAGE_BYTES);
        return -1;
    }
    if (run.rx_len + len > run.rx_cap) {
        size_t cap = run.rx_cap ? run.rx_cap : 4096;
        unsigned char *p;

        while (cap < run.rx_len + len)
            cap *= 2;
        p = realloc(run.rx, cap);
        if (!p) {
            fprintf(stderr, "lws_echo_client: out of memory\n");
            exit(2);
        }
        run.rx = p;
        run.rx_cap = cap;
    }
    memcpy(run.rx + run.rx_len, in, len);
    run.rx_len += len;
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
        return 0;

    on_message(run.rx, run.rx_len);
    run.rx_len = 0;
    if (run.failed)
        return -1;
    if (run.state == CONN_EXCHANGE && !run.send_pending)
        lws_callback_on_writable(wsi);
    return 0;
}

/* The peer's close frame: payload is the 2-byte code (network order) and the reason. */
static int on_peer_close(const unsigned char *in, size_t len)
{
    static const char want_reason[] = "Go away!";
    unsigned code = len >= 2 ? (unsigned)in[0] << 8 | in[1] : 0;

    if (run.state != CONN_WAIT_PEER_CLOSE) {
        if (run.state != CONN_WAIT_END)
            fail("server closed the websocket in state %s (code %u, reason \"%s\")",
                 state_names[run.state], code, len > 2 ? excerpt(in + 2, len - 2) : "");
        return 0;
    }
    if (code != 3000 || len - 2 != sizeof(want_reason) - 1 ||
        memcmp(in + 2, want_reason, len - 2) != 0) {
        fail("close frame: got code %u reason \"%s\", expected 3000 \"Go away!\"", code,
             len > 2 ? excerpt(in + 2, len - 2) : "");
        return -1;
    }
    /* Returning 0 lets lws answer with its own close frame, completing the handshake. */
    run.state = CONN_WAIT_END;
    return 0;
}

static void on_closed(void)
{
    switch (run.state) {
    case CONN_CLOSING:
        /*
         * lws consumes the server's answering close frame without a callback, so the check is
         * on time: an answered close (frame, or at least TCP close) ends well before lws's own
         * 5 s give-up.
         */
        if (now_seconds() - run.close_started > CLOSE_HANDSHAKE_SECONDS)
            fail("close handshake took %.1f s: the server did not answer our close frame",
                 now_seconds() - run.close_started);
        break;
    case CONN_WAIT_END:
        break;
    default:
        fail("connection closed unexpectedly in state %s after %zu of %zu echoes",
             state_names[run.state], run.next_expect, run.n_msgs);
        break;
    }
    run.state = CONN_DONE;
    run.wsi = NULL;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    (void)user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        fail("connection error: %s", in ? (const char *)in : "(no detail)");
        run.state = CONN_DONE;
        run.wsi = NULL;
        return 0;
    case LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH:
        /* The response headers are only available here, before lws drops them. */
        if (lws_hdr_copy(wsi, run.extensions, sizeof(run.extensions), WSI_TOKEN_EXTENSIONS) < 0)
            run.extensions[0] = '\0';
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (run.sc->framing == FRAMING_SOCKJS)
            run.state = CONN_WAIT_OPEN;
        else
            run.state = run.sc->app == APP_ECHO ? CONN_EXCHANGE : CONN_WAIT_PEER_CLOSE;
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return on_receive(wsi, in, len);
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (run.failed)
            return -1;
        return on_writeable(wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        return on_peer_close(in, len);
    case LWS_CALLBACK_CLIENT_CLOSED:
        on_closed();
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"gw-interop", callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Offered only in the second pass; the server may accept or decline it. */
static const struct lws_extension deflate_extensions[] = {
    {"permessage-deflate", lws_extension_callback_pm_deflate,
     "permessage-deflate; client_no_context_takeover; client_max_window_bits"},
    {NULL, NULL, NULL},
};

static void random_session_id(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

    if (fd < 0 || read(fd, raw, sizeof(raw)) != (ssize_t)sizeof(raw)) {
        fprintf(stderr, "lws_echo_client: /dev/urandom: %s\n", strerror(errno));
        exit(2);
    }
    close(fd);
    for (size_t i = 0; i + 1 < n && i < 2 * sizeof(raw); i++) {
        out[i] = hex[(raw[i / 2] >> (i % 2 ? 0 : 4)) & 0xf];
        out[i + 1] = '\0';
    }
}

/* Runs one scenario to completion or deadline. Returns 0 on success. */
static int run_scenario(const struct scenario *sc, int deflate, int port, double deadline,
                        const struct message *msgs, size_t n_msgs)
{
    struct lws_context_creation_info info;
    struct lws_client_connect_info ci;
    struct lws_context *ctx;
    char path[128], host[64], sid[33];
    unsigned long loops = 0;

    memset(&run, 0, sizeof(run));
    run.sc = sc;
    run.deflate = deflate;
    run.state = CONN_CONNECTING;
    run.msgs = sc->app == APP_ECHO ? msgs : NULL;
    run.n_msgs = sc->app == APP_ECHO ? n_msgs : 0;

    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    /* Make lws reject invalid UTF-8 from the server, which browsers would reject too. */
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.extensions = deflate ? deflate_extensions : NULL;
    ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "lws_echo_client: lws_create_context failed\n");
        return -1;
    }

    random_session_id(sid, sizeof(sid));
    if (sc->framing == FRAMING_RAW)
        snprintf(path, sizeof(path), "%s/websocket", sc->prefix);
    else
        snprintf(path, sizeof(path), "%s/000/%s/websocket", sc->prefix, sid);
    snprintf(host, sizeof(host), "127.0.0.1:%d", port);

    memset(&ci, 0, sizeof(ci));
    ci.context = ctx;
    ci.address = "127.0.0.1";
    ci.port = port;
    ci.path = path;
    ci.host = host;
    ci.origin = host;
    ci.ietf_version_or_minus_one = -1;
    ci.pwsi = &run.wsi;
    if (!lws_client_connect_via_info(&ci) && run.state != CONN_DONE)
        fail("lws_client_connect_via_info failed");

    /* lws_service() returns at least every tick, so the deadline check bounds this loop. */
    memset(&tick, 0, sizeof(tick));
    tick_ctx = ctx;
    lws_sul_schedule(ctx, 0, &tick, on_tick, TICK_US);
    while (run.state != CONN_DONE && !(run.failed && !run.wsi)) {
        if (now_seconds() > deadline) {
            fail("timed out in state %s after %zu of %zu echoes", state_names[run.state],
                 run.next_expect, run.n_msgs);
            break;
        }
        if (lws_service(ctx, 0) < 0) {
            fail("lws_service failed");
            break;
        }
        loops++;
    }
    lws_sul_cancel(&tick);
    lws_context_destroy(ctx);
    free(run.rx);
    run.rx = NULL;

    if (run.failed) {
        fprintf(stderr, "FAIL %s%s %s: %s\n", sc->name, deflate ? " (deflate offered)" : "", path,
                run.reason);
        return -1;
    }
    if (run.next_expect != run.n_msgs) {
        fprintf(stderr, "FAIL %s%s %s: only %zu of %zu echoes\n", sc->name,
                deflate ? " (deflate offered)" : "", path, run.next_expect, run.n_msgs);
        return -1;
    }
    printf("ok %s%s %s (%zu messages, extensions: %s, %lu loop turns)\n", sc->name,
           deflate ? " (deflate offered)" : "", path, run.n_msgs,
           run.extensions[0] ? run.extensions : "none", loops);
    return 0;
}

/*
 * 100,000 bytes of mixed 1- to 4-byte UTF-8, so that fragment and buffer boundaries on both
 * sides fall inside multi-byte characters.
 */
static char *big_message(void)
{
    static const char unit[] = "The quick brown fox 0123456789 \xc5\xbc\xc3\xb3\xc5\x82\xc4\x87 "
                               "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 ";
    char *p = xmalloc(BIG_MESSAGE_BYTES + 1);
    size_t n = 0;

    while (n + sizeof(unit) - 1 <= BIG_MESSAGE_BYTES) {
        memcpy(p + n, unit, sizeof(unit) - 1);
        n += sizeof(unit) - 1;
    }
    memset(p + n, 'x', BIG_MESSAGE_BYTES - n);
    p[BIG_MESSAGE_BYTES] = '\0';
    return p;
}

#define TEXT(s) s, NULL, sizeof(s) - 1

int main(int argc, char **argv)
{
    static const struct scenario scenarios[] = {
        {"raw-echo", "/echo", FRAMING_RAW, APP_ECHO},
        {"sockjs-echo", "/echo", FRAMING_SOCKJS, APP_ECHO},
        {"raw-close", "/close", FRAMING_RAW, APP_CLOSE},
        {"sockjs-close", "/close", FRAMING_SOCKJS, APP_CLOSE},
    };
    struct message msgs[] = {
        {TEXT("hello")},
        {TEXT("a")},
        {TEXT("with \"quotes\", \\backslashes\\, /slashes/ and [\"json\"]")},
        {TEXT("tab\tnewline\ncr\rbell\x07 and NUL:\0:end")},
        {TEXT("UTF-8: \xc5\xbc\xc3\xb3\xc5\x82\xc4\x87 \xe6\x97\xa5\xe6\x9c\xac "
              "\xd7\xa2\xd7\x91\xd7\xa8\xd7\x99\xd7\xaa \xf0\x9f\x98\x80 \xf0\x9d\x84\x9e")},
        {TEXT("SockJS-escaped: \xe2\x80\xa8 \xe2\x80\xa9 \xe2\x80\x8c \xe2\x81\xa0 "
              "\xef\xbb\xbf \xef\xbf\xb0 \xef\xbf\xbf")},
        /* Sent with escapes, surrogate pair included; only the SockJS scenario uses json. */
        {"escaped: \xf0\x9f\x98\x80 \xe2\x80\xa8 A \xef\xbf\xbe",
         "\"escaped: \\ud83d\\ude00 \\u2028 \\u0041 \\ufffe\"",
         sizeof("escaped: \xf0\x9f\x98\x80 \xe2\x80\xa8 A \xef\xbf\xbe") - 1},
        {NULL, NULL, BIG_MESSAGE_BYTES},
        {TEXT("after the big one")},
    };
    size_t n_msgs = sizeof(msgs) / sizeof(msgs[0]);
    char *big = big_message();
    double timeout = 30, deadline;
    int port, failures = 0;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s PORT [TIMEOUT_SECONDS]\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "lws_echo_client: bad port %s\n", argv[1]);
        return 2;
    }
    if (argc == 3)
        timeout = atof(argv[2]);
    if (!(timeout > 0)) {
        fprintf(stderr, "lws_echo_client: bad timeout %s\n", argv[2]);
        return 2;
    }
    msgs[7].text = big;
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);

    /* One overall deadline: the whole run is bounded, not each step. */
    deadline = now_seconds() + timeout;
    for (int deflate = 0; deflate <= 1; deflate++)
        for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
            if (run_scenario(&scenarios[i], deflate, port, deadline, msgs, n_msgs) != 0)
                failures++;
    free(big);
    if (failures) {
        fprintf(stderr, "lws_echo_client: %d scenario(s) failed\n", failures);
        return 1;
    }
    printf("lws_echo_client: all scenarios passed\n");
    return 0;
}
