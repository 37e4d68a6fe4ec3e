/* websocket_codec: every decoder input is fed whole, byte by byte and at random split points,
 * each like a real caller (unconsumed bytes kept and presented again with the next chunk), with
 * and without callbacks stopping the feed. The events are merged back into whole messages and
 * compared with what was sent; errors must carry the expected close code and be detected in
 * the very chunk that completes the offending bytes. */
#include "gw_test.h"

#include <stdbool.h>

#include "gw_alloc.h"
#include "gw_utf8.h"
#include "websocket_codec.h"

/* ---- input building ---- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

struct buf {
    uint8_t *p;
    size_t len, cap;
};

static void buf_put(struct buf *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
}

static void buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

enum { LEN_MINIMAL = -1 };

static uint64_t mask_rng = 42;

/* Appends a client frame with first byte byte0 (FIN, RSV, opcode as given) and `declared_len`
 * in the length field, encoded minimally or with len_bytes (0, 2 or 8) extra bytes; the payload
 * (len bytes, may differ from declared_len to build broken frames) is masked unless !masked. */
static void put_frame_ex(struct buf *b, uint8_t byte0, bool masked, int len_bytes,
                         uint64_t declared_len, const void *payload, size_t len)
{
    uint8_t h[14];
    size_t n = 0;
    if (len_bytes == LEN_MINIMAL)
        len_bytes = declared_len < 126 ? 0 : declared_len <= 0xFFFF ? 2 : 8;
    h[n++] = byte0;
    uint8_t mask_bit = masked ? 0x80 : 0;
    if (len_bytes == 0) {
        h[n++] = (uint8_t)(mask_bit | declared_len);
    } else {
        h[n++] = (uint8_t)(mask_bit | (len_bytes == 2 ? 126 : 127));
        for (int i = len_bytes - 1; i >= 0; i--)
            h[n++] = (uint8_t)(declared_len >> (8 * i));
    }
    uint8_t key[4] = {0};
    if (masked) {
        uint64_t r = rng_next(&mask_rng);
        memcpy(key, &r, 4);
        memcpy(h + n, key, 4);
        n += 4;
    }
    buf_put(b, h, n);
    size_t start = b->len;
    buf_put(b, payload, len);
    for (size_t i = 0; i < len; i++)
        b->p[start + i] ^= key[i & 3];
}

static void put_frame(struct buf *b, bool fin, uint8_t opcode, const void *payload, size_t len)
{
    put_frame_ex(b, (uint8_t)((fin ? 0x80 : 0) | opcode), true, LEN_MINIMAL, len, payload, len);
}

static void put_str_frame(struct buf *b, bool fin, uint8_t opcode, const char *s)
{
    put_frame(b, fin, opcode, s, strlen(s));
}

/* ---- event recording ---- */

/* A whole data message or control frame, as sent or as reassembled from events. */
struct msg {
    bool control;
    bool compressed; /* RSV1 (permessage-deflate) on the message */
    uint8_t opcode;
    uint8_t *data;
    size_t len;
};

struct msgs {
    struct msg *v;
    size_t n;
};

static void msgs_add(struct msgs *m, bool control, uint8_t opcode, const void *data, size_t len)
{
    m->v = realloc(m->v, (m->n + 1) * sizeof(*m->v));
    struct msg *x = &m->v[m->n++];
    x->control = control;
    x->compressed = false;
    x->opcode = opcode;
    x->len = len;
    x->data = malloc(len ? len : 1);
    if (len)
        memcpy(x->data, data, len);
}

static void msgs_free(struct msgs *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i].data);
    free(m->v);
    memset(m, 0, sizeof(*m));
}

enum stop_mode { STOP_NEVER, STOP_ALWAYS, STOP_RANDOM };

struct rec {
    struct msgs msgs;
    struct buf cur; /* the data message in progress */
    bool in_msg;
    bool cur_compressed;
    uint8_t cur_opcode;
    const struct ws_decoder *d;
    uint32_t utf8;
    enum stop_mode stop_mode;
    uint64_t rng;
    bool stopped;          /* the last callback asked to stop */
    const char *violation; /* first broken event contract seen */
};

static int stop_now(struct rec *r)
{
    r->stopped =
        r->stop_mode == STOP_ALWAYS || (r->stop_mode == STOP_RANDOM && rng_next(&r->rng) % 2 == 0);
    return r->stopped;
}

static int on_data(void *arg, enum ws_opcode opcode, const uint8_t *data, size_t len, bool last)
{
    struct rec *r = arg;
    if (opcode != WS_OP_TEXT && opcode != WS_OP_BINARY)
        r->violation = r->violation ? r->violation : "data opcode not TEXT or BINARY";
    if (!r->in_msg) {
        r->in_msg = true;
        r->cur_opcode = (uint8_t)opcode;
        r->cur_compressed = ws_decoder_compressed(r->d);
        r->cur.len = 0;
        r->utf8 = GW_UTF8_ACCEPT;
    } else if (r->cur_opcode != opcode) {
        r->violation = r->violation ? r->violation : "opcode changed within a message";
    } else if (r->cur_compressed != ws_decoder_compressed(r->d)) {
        r->violation = r->violation ? r->violation : "compression changed within a message";
    }
    buf_put(&r->cur, data, len);
    /* Compressed text is checked by the caller after inflating. */
    if (opcode == WS_OP_TEXT && !r->cur_compressed) {
        r->utf8 = gw_utf8_feed(r->utf8, data, len);
        if (r->utf8 == GW_UTF8_REJECT || (last && r->utf8 != GW_UTF8_ACCEPT))
            r->violation = r->violation ? r->violation : "invalid UTF-8 delivered";
    }
    if (last) {
        msgs_add(&r->msgs, false, r->cur_opcode, r->cur.p, r->cur.len);
        r->msgs.v[r->msgs.n - 1].compressed = r->cur_compressed;
        r->in_msg = false;
    }
    return stop_now(r);
}

static int on_control(void *arg, enum ws_opcode opcode, const uint8_t *data, size_t len)
{
    struct rec *r = arg;
    if (opcode != WS_OP_PING && opcode != WS_OP_PONG && opcode != WS_OP_CLOSE)
        r->violation = r->violation ? r->violation : "control opcode not PING, PONG or CLOSE";
    if (len > 125)
        r->violation = r->violation ? r->violation : "control payload over 125 bytes";
    msgs_add(&r->msgs, true, (uint8_t)opcode, data, len);
    return stop_now(r);
}

static const struct ws_decoder_callbacks callbacks = {on_data, on_control};

/* ---- feeding ---- */

enum split { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_RANDOM };
static const char *const split_names[] = {"whole", "bytes", "random"};

struct run {
    uint16_t close_code; /* 0 if the input was accepted */
    size_t fed_before;   /* input bytes given before the chunk that failed */
    size_t fed;          /* input bytes given, including that chunk */
    size_t pending;      /* bytes left unconsumed at the end */
};

/* Feeds input in chunks as chosen by `split`, keeping unconsumed bytes in a pending buffer
 * like a real caller. After a callback stopped the decoder, the rest is presented again at
 * once; otherwise fewer bytes consumed than given means more input is needed. */
static struct run feed_input(struct ws_decoder *d, const uint8_t *in, size_t len, enum split split,
                             uint64_t *rng, struct rec *r)
{
    struct run res = {0};
    uint8_t *pending = malloc(len ? len : 1);
    size_t plen = 0;
    while (res.fed < len) {
        size_t chunk = len - res.fed;
        if (split == SPLIT_BYTES) {
            chunk = 1;
        } else if (split == SPLIT_RANDOM) {
            uint64_t x = rng_next(rng);
            size_t max = x % 8 == 0 ? chunk : 20;
            chunk = 1 + (size_t)(x >> 8) % max;
            if (chunk > len - res.fed)
                chunk = len - res.fed;
        }
        memcpy(pending + plen, in + res.fed, chunk);
        plen += chunk;
        res.fed_before = res.fed;
        res.fed += chunk;
        for (;;) {
            r->stopped = false;
            long used = ws_decoder_feed(d, pending, plen, &callbacks, r);
            if (used < 0) {
                res.close_code = ws_decoder_close_code(d);
                /* The error is sticky. */
                if (ws_decoder_feed(d, pending, plen, &callbacks, r) != GW_EPROTO)
                    res.close_code = 1;
                free(pending);
                return res;
            }
            if ((size_t)used > plen) {
                res.close_code = 2; /* consumed more than it was given */
                free(pending);
                return res;
            }
            memmove(pending, pending + used, plen - (size_t)used);
            plen -= (size_t)used;
            if (!r->stopped || plen == 0)
                break;
        }
    }
    res.pending = plen;
    free(pending);
    return res;
}

struct expect {
    struct msgs msgs;    /* completed messages and control frames, in delivery order */
    uint16_t close_code; /* 0 = no error */
    size_t error_at;     /* with close_code: input bytes that make the error detectable */
    uint32_t max_message;
    bool deflate; /* permessage-deflate negotiated */
};

static void check_run(const struct expect *e, const struct run *res, const struct rec *r,
                      size_t input_len)
{
    if (r->violation)
        GW_FAIL_AT("event contract broken: %s", r->violation);
    ASSERT_UINT_EQ(res->close_code, e->close_code);
    if (e->close_code) {
        /* Detected in the chunk that supplied byte error_at, not before and not later. */
        if (!(res->fed_before < e->error_at && e->error_at <= res->fed))
            GW_FAIL_AT("error at %zu detected with bytes %zu..%zu", e->error_at, res->fed_before,
                       res->fed);
    } else {
        ASSERT_UINT_EQ(res->fed, input_len);
        ASSERT_UINT_EQ(res->pending, 0);
        ASSERT_TRUE(!r->in_msg);
    }
    ASSERT_UINT_EQ(r->msgs.n, e->msgs.n);
    for (size_t i = 0; i < e->msgs.n; i++) {
        const struct msg *got = &r->msgs.v[i], *want = &e->msgs.v[i];
        ASSERT_INT_EQ(got->control, want->control);
        ASSERT_INT_EQ(got->compressed, want->compressed);
        ASSERT_UINT_EQ(got->opcode, want->opcode);
        ASSERT_MEM_EQ(got->data, got->len, want->data, want->len);
    }
}

static void run_once(const struct buf *in, const struct expect *e, enum split split,
                     enum stop_mode stop, uint64_t seed)
{
    int failures = gw_test_failures;
    struct ws_decoder d;
    ws_decoder_init(&d, e->max_message);
    if (e->deflate)
        ws_decoder_allow_compression(&d);
    struct rec r = {.stop_mode = stop, .rng = seed ^ 0x5555, .d = &d};
    uint64_t rng = seed;
    /* The decoder unmasks in place; keep the input intact for the other runs. */
    uint8_t *copy = malloc(in->len ? in->len : 1);
    if (in->len)
        memcpy(copy, in->p, in->len);
    struct run res = feed_input(&d, copy, in->len, split, &rng, &r);
    check_run(e, &res, &r, in->len);
    if (gw_test_failures != failures)
        fprintf(stderr, "  (split %s, stop mode %d, seed %llu, error \"%s\")\n", split_names[split],
                (int)stop, (unsigned long long)seed, ws_decoder_error(&d));
    free(copy);
    msgs_free(&r.msgs);
    buf_free(&r.cur);
}

/* Runs the input every way; random splits get fewer iterations as inputs grow. */
static void run_case(const struct buf *in, const struct expect *e)
{
    int failures = gw_test_failures;
    for (int stop = STOP_NEVER; stop <= STOP_ALWAYS; stop++) {
        run_once(in, e, SPLIT_WHOLE, stop, 1);
        run_once(in, e, SPLIT_BYTES, stop, 1);
    }
    size_t iterations = in->len > 100000 ? 4 : in->len > 1000 ? 30 : 300;
    for (uint64_t seed = 1; seed <= iterations && gw_test_failures == failures; seed++)
        run_once(in, e, SPLIT_RANDOM, STOP_RANDOM, seed * 0x9E3779B97F4A7C15u);
}

static void expect_msg(struct expect *e, uint8_t opcode, const void *data, size_t len)
{
    msgs_add(&e->msgs, false, opcode, data, len);
}

static void expect_str(struct expect *e, uint8_t opcode, const char *s)
{
    msgs_add(&e->msgs, (opcode & 8) != 0, opcode, s, strlen(s));
}

static void expect_control(struct expect *e, uint8_t opcode, const void *data, size_t len)
{
    msgs_add(&e->msgs, true, opcode, data, len);
}

/* Runs `in` expecting `code` once byte error_at has arrived, then frees both. */
static void run_error_case(struct buf *in, struct expect *e, uint16_t code, size_t error_at)
{
    e->close_code = code;
    e->error_at = error_at;
    run_case(in, e);
    buf_free(in);
    msgs_free(&e->msgs);
}

/* Text of exactly n bytes, valid UTF-8 mixing 1- to 4-byte characters. */
static void fill_text(uint8_t *p, size_t n)
{
    static const char unit[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e"; /* a é € 𝄞 */
    size_t i = 0;
    for (; i + 10 <= n; i += 10)
        memcpy(p + i, unit, 10);
    for (; i < n; i++)
        p[i] = 'z';
}

/* A compressed (RSV1) data message: the decoder delivers its bytes as they are. */
static void expect_compressed(struct expect *e, uint8_t opcode, const void *data, size_t len)
{
    msgs_add(&e->msgs, false, opcode, data, len);
    e->msgs.v[e->msgs.n - 1].compressed = true;
}

/* ---- decoding valid input ---- */

TEST(test_frame_lengths)
{
    static const size_t lengths[] = {0, 1, 125, 126, 127, 65535, 65536, (1 << 20) + 3};
    uint64_t rng = 7;
    for (size_t li = 0; li < GW_ARRAY_LEN(lengths); li++) {
        size_t n = lengths[li];
        uint8_t *payload = malloc(n ? n : 1);
        for (int opcode = WS_OP_TEXT; opcode <= WS_OP_BINARY; opcode++) {
            if (opcode == WS_OP_TEXT)
                fill_text(payload, n);
            else
                for (size_t i = 0; i < n; i++)
                    payload[i] = (uint8_t)rng_next(&rng);
            struct buf in = {0};
            struct expect e = {0};
            put_frame(&in, true, (uint8_t)opcode, payload, n);
            expect_msg(&e, (uint8_t)opcode, payload, n);
            run_case(&in, &e);
            buf_free(&in);
            msgs_free(&e.msgs);
        }
        free(payload);
    }
}

/* Senders must use the minimal length encoding, but accepting longer ones is harmless. */
TEST(test_non_minimal_lengths)
{
    struct buf in = {0};
    struct expect e = {0};
    put_frame_ex(&in, 0x80 | WS_OP_TEXT, true, 2, 5, "hello", 5);
    put_frame_ex(&in, 0x80 | WS_OP_BINARY, true, 8, 3, "abc", 3);
    put_frame_ex(&in, 0x80 | WS_OP_TEXT, true, 8, 0, "", 0);
    expect_str(&e, WS_OP_TEXT, "hello");
    expect_str(&e, WS_OP_BINARY, "abc");
    expect_str(&e, WS_OP_TEXT, "");
    run_case(&in, &e);
    buf_free(&in);
    msgs_free(&e.msgs);
}

TEST(test_control_frames)
{
    struct buf in = {0};
    struct expect e = {0};
    uint8_t big[125];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    put_frame(&in, true, WS_OP_PING, "", 0);
    put_frame(&in, true, WS_OP_PING, big, sizeof(big));
    put_str_frame(&in, true, WS_OP_PONG, "pong");
    put_frame(&in, true, WS_OP_CLOSE, "", 0);
    put_str_frame(&in, true, WS_OP_CLOSE, "\x03\xe8");
    put_str_frame(&in, true, WS_OP_CLOSE,
                  "\x0f\xa0"
                  "bye \xe2\x82\xac");
    expect_control(&e, WS_OP_PING, "", 0);
    expect_control(&e, WS_OP_PING, big, sizeof(big));
    expect_str(&e, WS_OP_PONG, "pong");
    expect_control(&e, WS_OP_CLOSE, "", 0);
    expect_str(&e, WS_OP_CLOSE, "\x03\xe8");
    expect_str(&e, WS_OP_CLOSE,
               "\x0f\xa0"
               "bye \xe2\x82\xac");
    run_case(&in, &e);
    buf_free(&in);
    msgs_free(&e.msgs);
}

TEST(test_fragmentation_with_controls)
{
    struct buf in = {0};
    struct expect e = {0};
    put_str_frame(&in, false, WS_OP_TEXT, "Hel");
    put_str_frame(&in, true, WS_OP_PING, "p1");
    put_str_frame(&in, false, WS_OP_CONTINUATION, "lo, ");
    put_frame(&in, false, WS_OP_CONTINUATION, "", 0);
    put_str_frame(&in, true, WS_OP_PONG, "p2");
    put_str_frame(&in, true, WS_OP_PING, "");
    put_str_frame(&in, true, WS_OP_CONTINUATION, "world");
    put_frame(&in, false, WS_OP_BINARY, "\x00\xff", 2);
    put_str_frame(&in, true, WS_OP_CONTINUATION, "\x80");
    put_frame(&in, false, WS_OP_BINARY, "", 0);
    put_frame(&in, true, WS_OP_CONTINUATION, "", 0);
    put_str_frame(&in, true, WS_OP_TEXT, "single");
    put_str_frame(&in, true, WS_OP_CLOSE,
                  "\x03\xe8"
                  "done");
    expect_str(&e, WS_OP_PING, "p1");
    expect_str(&e, WS_OP_PONG, "p2");
    expect_str(&e, WS_OP_PING, "");
    expect_str(&e, WS_OP_TEXT, "Hello, world");
    expect_msg(&e, WS_OP_BINARY, "\x00\xff\x80", 3);
    expect_msg(&e, WS_OP_BINARY, "", 0);
    expect_str(&e, WS_OP_TEXT, "single");
    expect_str(&e, WS_OP_CLOSE,
               "\x03\xe8"
               "done");
    run_case(&in, &e);
    buf_free(&in);
    msgs_free(&e.msgs);
}

/* Characters cut at fragment boundaries are fine as long as the message ends whole. */
TEST(test_utf8_across_fragments)
{
    struct buf in = {0};
    struct expect e = {0};
    put_str_frame(&in, false, WS_OP_TEXT, "\xe2");
    put_str_frame(&in, false, WS_OP_CONTINUATION, "\x82");
    put_str_frame(&in, true, WS_OP_PING, "mid-character");
    put_str_frame(&in, false, WS_OP_CONTINUATION, "\xac\xf0");
    put_frame(&in, false, WS_OP_CONTINUATION, "", 0);
    put_str_frame(&in, false, WS_OP_CONTINUATION, "\x9d");
    put_str_frame(&in, true, WS_OP_CONTINUATION, "\x84\x9e!");
    expect_str(&e, WS_OP_PING, "mid-character");
    expect_str(&e, WS_OP_TEXT, "\xe2\x82\xac\xf0\x9d\x84\x9e!");
    run_case(&in, &e);
    buf_free(&in);
    msgs_free(&e.msgs);
}

/* Random valid streams: random messages, randomly fragmented, control frames interleaved. */
TEST(test_random_streams)
{
    uint64_t rng = 12345;
    for (int iter = 0; iter < 40; iter++) {
        struct buf in = {0};
        struct expect e = {0};
        int messages = 1 + (int)(rng_next(&rng) % 6);
        for (int m = 0; m < messages; m++) {
            uint8_t opcode = rng_next(&rng) % 2 ? WS_OP_TEXT : WS_OP_BINARY;
            size_t n = rng_next(&rng) % 3000;
            uint8_t *payload = malloc(n ? n : 1);
            if (opcode == WS_OP_TEXT)
                fill_text(payload, n);
            else
                for (size_t i = 0; i < n; i++)
                    payload[i] = (uint8_t)rng_next(&rng);
            size_t off = 0;
            bool first = true;
            do {
                size_t piece = n - off;
                if (rng_next(&rng) % 3)
                    piece = (size_t)(rng_next(&rng) % (n - off + 1));
                bool fin = off + piece == n && rng_next(&rng) % 4;
                put_frame(&in, fin, first ? opcode : WS_OP_CONTINUATION, payload + off, piece);
                off += piece;
                first = false;
                if (fin)
                    break;
                if (rng_next(&rng) % 4 == 0) {
                    uint8_t ping[125];
                    size_t pn = (size_t)(rng_next(&rng) % 126);
                    for (size_t i = 0; i < pn; i++)
                        ping[i] = (uint8_t)rng_next(&rng);
                    uint8_t cop = rng_next(&rng) % 2 ? WS_OP_PING : WS_OP_PONG;
                    put_frame(&in, true, cop, ping, pn);
                    expect_control(&e, cop, ping, pn);
                }
            } while (true);
            expect_msg(&e, opcode, payload, n);
            free(payload);
        }
        run_case(&in, &e);
        buf_free(&in);
        msgs_free(&e.msgs);
    }
}

/* ---- protocol errors ---- */

TEST(test_error_unmasked)
{
    struct buf in = {0};
    struct expect e = {0};
    put_frame_ex(&in, 0x80 | WS_OP_TEXT, false, LEN_MINIMAL, 2, "hi", 2);
    run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, 2);
    /* Also after a good frame, and for control frames. */
    put_str_frame(&in, true, WS_OP_TEXT, "ok");
    size_t at = in.len;
    put_frame_ex(&in, 0x80 | WS_OP_PING, false, LEN_MINIMAL, 0, "", 0);
    expect_str(&e, WS_OP_TEXT, "ok");
    run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, at + 2);
}

TEST(test_error_reserved_bits)
{
    static const uint8_t rsv[] = {0x40, 0x20, 0x10};
    for (size_t i = 0; i < sizeof(rsv); i++) {
        struct buf in = {0};
        struct expect e = {0};
        put_frame_ex(&in, 0x80 | rsv[i] | WS_OP_TEXT, true, LEN_MINIMAL, 1, "x", 1);
        run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, 1);
        put_frame_ex(&in, 0x80 | rsv[i] | WS_OP_PING, true, LEN_MINIMAL, 0, "", 0);
        run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, 1);
    }
}

/* With permessage-deflate, RSV1 on a message's first frame marks it compressed: its bytes are
 * delivered unchecked (not UTF-8 until inflated), the flag holds for the whole message, and the
 * next message starts without it. */
TEST(test_compressed_messages)
{
    struct buf in = {0};
    struct expect e = {.deflate = true};
    static const uint8_t deflated[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xff};
    put_frame_ex(&in, 0x80 | WS_RSV1 | WS_OP_TEXT, true, LEN_MINIMAL, sizeof(deflated), deflated,
                 sizeof(deflated));
    expect_compressed(&e, WS_OP_TEXT, deflated, sizeof(deflated));
    put_str_frame(&in, true, WS_OP_TEXT, "plain");
    expect_str(&e, WS_OP_TEXT, "plain");
    /* Fragmented: RSV1 on the first frame only, a control frame in between. */
    put_frame_ex(&in, WS_RSV1 | WS_OP_BINARY, true, LEN_MINIMAL, 3, deflated, 3);
    put_str_frame(&in, true, WS_OP_PING, "p");
    put_frame(&in, false, WS_OP_CONTINUATION, deflated + 3, 0);
    put_frame(&in, true, WS_OP_CONTINUATION, deflated + 3, sizeof(deflated) - 3);
    expect_str(&e, WS_OP_PING, "p");
    expect_compressed(&e, WS_OP_BINARY, deflated, sizeof(deflated));
    /* An empty compressed message. */
    put_frame_ex(&in, 0x80 | WS_RSV1 | WS_OP_TEXT, true, LEN_MINIMAL, 0, "", 0);
    expect_compressed(&e, WS_OP_TEXT, "", 0);
    put_str_frame(&in, true, WS_OP_TEXT, "\xc3\xa9");
    expect_str(&e, WS_OP_TEXT, "\xc3\xa9");
    run_case(&in, &e);
    buf_free(&in);
    msgs_free(&e.msgs);
}

/* RSV1 is refused on control frames and continuation frames even with permessage-deflate, RSV2
 * and RSV3 always, RSV1 without the extension (test_error_reserved_bits). */
TEST(test_error_rsv1)
{
    struct buf in = {0};
    struct expect e = {.deflate = true};
    put_frame_ex(&in, 0x80 | WS_RSV1 | WS_OP_PING, true, LEN_MINIMAL, 0, "", 0);
    run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, 1);
    put_frame_ex(&in, 0x80 | WS_RSV1 | WS_OP_CLOSE, true, LEN_MINIMAL, 0, "", 0);
    run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, 1);
    put_frame_ex(&in, WS_RSV1 | WS_OP_TEXT, true, LEN_MINIMAL, 1, "x", 1);
    size_t at = in.len;
    put_frame_ex(&in, 0x80 | WS_RSV1 | WS_OP_CONTINUATION, true, LEN_MINIMAL, 1, "y", 1);
    run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, at + 1);
    static const uint8_t others[] = {0x20, 0x10, 0x60};
    for (size_t i = 0; i < sizeof(others); i++) {
        put_frame_ex(&in, 0x80 | others[i] | WS_OP_TEXT, true, LEN_MINIMAL, 1, "x", 1);
        run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, 1);
    }
}

TEST(test_error_unknown_opcodes)
{
    static const uint8_t ops[] = {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF};
    for (size_t i = 0; i < sizeof(ops); i++) {
        struct buf in = {0};
        struct expect e = {0};
        put_frame_ex(&in, 0x80 | ops[i], true, LEN_MINIMAL, 1, "x", 1);
        run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, 1);
    }
}

TEST(test_error_control_frames)
{
    static const uint8_t ops[] = {WS_OP_PING, WS_OP_PONG, WS_OP_CLOSE};
    uint8_t payload[126] = {0};
    payload[0] = 0x03, payload[1] = 0xe8;
    for (size_t i = 0; i < sizeof(ops); i++) {
        struct buf in = {0};
        struct expect e = {0};
        /* Over 125 bytes: known from the second byte. */
        put_frame_ex(&in, 0x80 | ops[i], true, LEN_MINIMAL, 126, payload, 126);
        run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, 2);
        /* Fragmented: known from the first. */
        put_frame_ex(&in, ops[i], true, LEN_MINIMAL, 2, payload, 2);
        run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, 1);
        /* Also inside a fragmented message. */
        put_str_frame(&in, false, WS_OP_TEXT, "a");
        size_t at = in.len;
        put_frame_ex(&in, ops[i], true, LEN_MINIMAL, 2, payload, 2);
        run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, at + 1);
    }
}

TEST(test_error_continuation_without_message)
{
    struct buf in = {0};
    struct expect e = {0};
    put_str_frame(&in, true, WS_OP_CONTINUATION, "x");
    run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, 1);

    put_str_frame(&in, true, WS_OP_TEXT, "done");
    size_t at = in.len;
    put_str_frame(&in, false, WS_OP_CONTINUATION, "x");
    expect_str(&e, WS_OP_TEXT, "done");
    run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, at + 1);

    put_frame(&in, false, WS_OP_BINARY, "", 0);
    put_frame(&in, true, WS_OP_CONTINUATION, "", 0);
    at = in.len;
    put_frame(&in, true, WS_OP_CONTINUATION, "", 0);
    expect_msg(&e, WS_OP_BINARY, "", 0);
    run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, at + 1);
}

TEST(test_error_new_message_inside_fragmented)
{
    static const uint8_t ops[] = {WS_OP_TEXT, WS_OP_BINARY};
    for (size_t i = 0; i < 2; i++) {
        for (size_t j = 0; j < 2; j++) {
            struct buf in = {0};
            struct expect e = {0};
            put_str_frame(&in, false, ops[i], "first");
            put_str_frame(&in, true, WS_OP_PING, "");
            size_t at = in.len;
            put_str_frame(&in, true, ops[j], "second");
            expect_str(&e, WS_OP_PING, "");
            run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, at + 1);
        }
    }
}

TEST(test_error_length_msb)
{
    struct buf in = {0};
    struct expect e = {0};
    put_frame_ex(&in, 0x80 | WS_OP_BINARY, true, 8, UINT64_C(1) << 63, "", 0);
    run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, 10);
    put_frame_ex(&in, 0x80 | WS_OP_BINARY, true, 8, UINT64_MAX, "", 0);
    run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, 10);
    /* Largest legal length: too big for a limit, but not a protocol error. */
    put_frame_ex(&in, 0x80 | WS_OP_BINARY, true, 8, INT64_MAX, "", 0);
    e.max_message = 1000;
    run_error_case(&in, &e, WS_CLOSE_TOO_BIG, 10);
}

TEST(test_error_close_payload)
{
    static const uint16_t bad_codes[] = {0,    999,  1004, 1005, 1006, 1015,
                                         1016, 2000, 2999, 5000, 65535};
    struct buf in = {0};
    struct expect e = {0};
    put_str_frame(&in, true, WS_OP_CLOSE, "\x03");
    run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, in.len);
    for (size_t i = 0; i < GW_ARRAY_LEN(bad_codes); i++) {
        uint8_t p[2] = {(uint8_t)(bad_codes[i] >> 8), (uint8_t)bad_codes[i]};
        put_frame(&in, true, WS_OP_CLOSE, p, 2);
        run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, in.len);
    }
    put_str_frame(&in, true, WS_OP_CLOSE,
                  "\x03\xe8"
                  "bad \xed\xa0\x80");
    run_error_case(&in, &e, WS_CLOSE_INVALID_PAYLOAD, in.len);
    put_str_frame(&in, true, WS_OP_CLOSE,
                  "\x03\xe8"
                  "cut \xe2\x82");
    run_error_case(&in, &e, WS_CLOSE_INVALID_PAYLOAD, in.len);
    /* A bad code wins over a bad reason: the code comes first. */
    put_str_frame(&in, true, WS_OP_CLOSE, "\x03\xed\xff");
    run_error_case(&in, &e, WS_CLOSE_PROTOCOL_ERROR, in.len);
}

/* Invalid text fails at the first byte that proves it, even inside a frame or message. */
TEST(test_error_invalid_utf8)
{
    static const struct {
        const char *frames[3];        /* fragments of one text message, the last one FIN */
        size_t bad_frame, bad_offset; /* where the proof lies */
    } cases[] = {
        {{"abc\xff"
          "def"},
         0,
         3},
        {{"ok", "\xc0\xaf"}, 1, 0},          /* overlong '/' */
        {{"\xe0", "\x80\x80"}, 1, 0},        /* overlong 3-byte form */
        {{"x\xed", "\xa0\x80"}, 1, 0},       /* surrogate U+D800 */
        {{"\xf4\x90", "\x80\x80"}, 0, 1},    /* above U+10FFFF */
        {{"\xf0\x9d", "\x84", "!"}, 2, 0},   /* character cut short */
        {{"\xe2\x82\xac", "\x80"}, 1, 0},    /* stray continuation */
        {{"ok", "\xe2\x82"}, 1, 1},          /* truncated at the final fragment */
        {{"\xce"}, 0, 0},                    /* truncated, single frame */
        {{"\xf0\x9d\x84", ""}, 1, SIZE_MAX}, /* truncated, empty final fragment */
    };
    for (size_t c = 0; c < GW_ARRAY_LEN(cases); c++) {
        int failures = gw_test_failures;
        struct buf in = {0};
        struct expect e = {0};
        size_t nframes = 0, error_at = 0;
        while (nframes < 3 && cases[c].frames[nframes])
            nframes++;
        for (size_t f = 0; f < nframes; f++) {
            const char *s = cases[c].frames[f];
            if (f == cases[c].bad_frame) {
                /* The header is 6 bytes here; an empty final frame fails once it is whole. */
                error_at =
                    in.len + 6 + (cases[c].bad_offset == SIZE_MAX ? 0 : cases[c].bad_offset + 1);
            }
            put_str_frame(&in, f == nframes - 1, f ? WS_OP_CONTINUATION : WS_OP_TEXT, s);
            if (f == 0)
                put_str_frame(&in, true, WS_OP_PONG, "between");
        }
        /* The pong follows the first fragment: delivered unless that fragment fails. */
        if (cases[c].bad_frame > 0)
            expect_str(&e, WS_OP_PONG, "between");
        run_error_case(&in, &e, WS_CLOSE_INVALID_PAYLOAD, error_at);
        if (gw_test_failures != failures)
            fprintf(stderr, "  (case %zu)\n", c);
    }
}

/* The message limit counts all fragments, is checked from each header before its payload, and
 * allows a message of exactly the limit. Control frames do not count. */
TEST(test_message_size_limit)
{
    struct buf in = {0};
    struct expect e = {.max_message = 10};
    put_str_frame(&in, false, WS_OP_TEXT, "1234");
    put_str_frame(&in, true, WS_OP_PING, "a ping well over the message limit");
    put_str_frame(&in, false, WS_OP_CONTINUATION, "5678");
    put_str_frame(&in, true, WS_OP_CONTINUATION, "90");
    put_str_frame(&in, true, WS_OP_BINARY, "0123456789");
    put_str_frame(&in, true, WS_OP_TEXT, "");
    expect_str(&e, WS_OP_PING, "a ping well over the message limit");
    expect_str(&e, WS_OP_TEXT, "1234567890");
    expect_str(&e, WS_OP_BINARY, "0123456789");
    expect_str(&e, WS_OP_TEXT, "");
    run_case(&in, &e);
    buf_free(&in);
    msgs_free(&e.msgs);

    /* One byte over across three fragments: fails at the third header's length byte. */
    put_str_frame(&in, false, WS_OP_BINARY, "1234");
    put_str_frame(&in, false, WS_OP_CONTINUATION, "5678");
    size_t at = in.len;
    put_str_frame(&in, true, WS_OP_CONTINUATION, "901");
    run_error_case(&in, &e, WS_CLOSE_TOO_BIG, at + 2);

    /* Known from a 16-bit length, before any payload byte. */
    e.max_message = 1000;
    put_frame_ex(&in, 0x80 | WS_OP_TEXT, true, 2, 1001, "", 0);
    run_error_case(&in, &e, WS_CLOSE_TOO_BIG, 4);

    /* An empty frame at the limit is fine, the next byte is not. */
    e.max_message = 3;
    put_str_frame(&in, false, WS_OP_TEXT, "abc");
    put_frame(&in, false, WS_OP_CONTINUATION, "", 0);
    at = in.len;
    put_str_frame(&in, true, WS_OP_CONTINUATION, "d");
    run_error_case(&in, &e, WS_CLOSE_TOO_BIG, at + 2);

    /* A new message starts counting from zero. */
    e = (struct expect){.max_message = 10};
    put_str_frame(&in, true, WS_OP_TEXT, "abcd");
    put_str_frame(&in, false, WS_OP_BINARY, "e");
    put_str_frame(&in, true, WS_OP_CONTINUATION, "fghijk");
    put_str_frame(&in, false, WS_OP_TEXT, "lmn");
    put_str_frame(&in, true, WS_OP_CONTINUATION, "opqrstu");
    expect_str(&e, WS_OP_TEXT, "abcd");
    expect_str(&e, WS_OP_BINARY, "efghijk");
    expect_str(&e, WS_OP_TEXT, "lmnopqrstu");
    run_case(&in, &e);
    buf_free(&in);
    msgs_free(&e.msgs);
}

/* ---- the feed contract, step by step ---- */

struct counter {
    int events;
    int stop_at; /* stop when events reaches this */
    size_t bytes;
};

static int count_data(void *arg, enum ws_opcode opcode, const uint8_t *data, size_t len, bool last)
{
    struct counter *c = arg;
    c->bytes += len;
    return ++c->events == c->stop_at;
}

static int count_control(void *arg, enum ws_opcode opcode, const uint8_t *data, size_t len)
{
    struct counter *c = arg;
    return ++c->events == c->stop_at;
}

static const struct ws_decoder_callbacks counting = {count_data, count_control};

TEST(test_incomplete_input_not_consumed)
{
    struct ws_decoder d;
    struct counter c = {0};
    struct buf in = {0};
    put_frame_ex(&in, 0x80 | WS_OP_BINARY, true, 8, 3, "abc", 3); /* 14-byte header */
    ws_decoder_init(&d, 0);
    for (size_t n = 0; n < 14; n++)
        ASSERT_INT_EQ(ws_decoder_feed(&d, in.p, n, &counting, &c), 0);
    ASSERT_INT_EQ(c.events, 0);
    /* Header and one payload byte. */
    ASSERT_INT_EQ(ws_decoder_feed(&d, in.p, 15, &counting, &c), 15);
    ASSERT_INT_EQ(d.state, WS_DEC_PAYLOAD);
    ASSERT_INT_EQ(ws_decoder_feed(&d, in.p + 15, 2, &counting, &c), 2);
    ASSERT_INT_EQ(c.events, 2);
    ASSERT_UINT_EQ(c.bytes, 3);
    ASSERT_MEM_EQ(in.p + 14, 3, "abc", 3);
    buf_free(&in);

    /* A control frame is taken only whole, and its bytes are left untouched until then. */
    put_str_frame(&in, true, WS_OP_PING, "12345");
    struct buf copy = {0};
    buf_put(&copy, in.p, in.len);
    for (size_t n = 0; n < in.len; n++)
        ASSERT_INT_EQ(ws_decoder_feed(&d, in.p, n, &counting, &c), 0);
    ASSERT_MEM_EQ(in.p, in.len, copy.p, copy.len);
    ASSERT_INT_EQ(ws_decoder_feed(&d, in.p, in.len, &counting, &c), (long)in.len);
    ASSERT_INT_EQ(c.events, 3);
    ASSERT_MEM_EQ(in.p + 6, 5, "12345", 5);
    ASSERT_INT_EQ(ws_decoder_feed(&d, in.p, 0, &counting, &c), 0);
    buf_free(&in);
    buf_free(&copy);
}

TEST(test_callback_stop_and_resume)
{
    struct ws_decoder d;
    struct buf in = {0};
    put_str_frame(&in, true, WS_OP_PING, "a");  /* 7 bytes */
    put_str_frame(&in, true, WS_OP_TEXT, "bc"); /* 8 bytes */
    put_frame(&in, true, WS_OP_BINARY, "", 0);  /* 6 bytes */
    ws_decoder_init(&d, 0);
    struct counter c = {.stop_at = 1};
    ASSERT_INT_EQ(ws_decoder_feed(&d, in.p, in.len, &counting, &c), 7);
    c.stop_at = 2;
    ASSERT_INT_EQ(ws_decoder_feed(&d, in.p + 7, in.len - 7, &counting, &c), 8);
    c.stop_at = 3;
    ASSERT_INT_EQ(ws_decoder_feed(&d, in.p + 15, in.len - 15, &counting, &c), 6);
    ASSERT_INT_EQ(c.events, 3);
    ASSERT_INT_EQ(d.state, WS_DEC_HEADER);
    ASSERT_INT_EQ(d.message_opcode, 0);
    buf_free(&in);
}

TEST(test_error_reasons)
{
    struct ws_decoder d;
    struct counter c = {0};
    struct buf in = {0};
    ws_decoder_init(&d, 4);
    ASSERT_UINT_EQ(ws_decoder_close_code(&d), 0);
    put_frame_ex(&in, 0x80 | WS_OP_TEXT, false, LEN_MINIMAL, 0, "", 0);
    ASSERT_INT_EQ(ws_decoder_feed(&d, in.p, in.len, &counting, &c), GW_EPROTO);
    ASSERT_INT_EQ(d.state, WS_DEC_ERROR);
    ASSERT_UINT_EQ(ws_decoder_close_code(&d), WS_CLOSE_PROTOCOL_ERROR);
    ASSERT_STR_EQ(ws_decoder_error(&d), "unmasked client frame");
    buf_free(&in);

    ws_decoder_init(&d, 4);
    put_str_frame(&in, true, WS_OP_TEXT, "\xff");
    ASSERT_INT_EQ(ws_decoder_feed(&d, in.p, in.len, &counting, &c), GW_EPROTO);
    ASSERT_UINT_EQ(ws_decoder_close_code(&d), WS_CLOSE_INVALID_PAYLOAD);
    ASSERT_STR_EQ(ws_decoder_error(&d), "invalid UTF-8 in text message");
    buf_free(&in);

    ws_decoder_init(&d, 4);
    put_str_frame(&in, true, WS_OP_TEXT, "12345");
    ASSERT_INT_EQ(ws_decoder_feed(&d, in.p, in.len, &counting, &c), GW_EPROTO);
    ASSERT_UINT_EQ(ws_decoder_close_code(&d), WS_CLOSE_TOO_BIG);
    ASSERT_STR_EQ(ws_decoder_error(&d), "message too big");
    buf_free(&in);
    ASSERT_INT_EQ(c.events, 0);
}

/* ---- encoders and helpers ---- */

TEST(test_encode_header)
{
    uint8_t h[10];
    ASSERT_UINT_EQ(ws_encode_header(h, WS_OP_TEXT, true, 0), 2);
    ASSERT_MEM_EQ(h, 2, "\x81\x00", 2);
    ASSERT_UINT_EQ(ws_encode_header(h, WS_OP_BINARY, false, 125), 2);
    ASSERT_MEM_EQ(h, 2, "\x02\x7d", 2);
    ASSERT_UINT_EQ(ws_encode_header(h, WS_OP_CONTINUATION, true, 126), 4);
    ASSERT_MEM_EQ(h, 4, "\x80\x7e\x00\x7e", 4);
    ASSERT_UINT_EQ(ws_encode_header(h, WS_OP_TEXT, true, 65535), 4);
    ASSERT_MEM_EQ(h, 4, "\x81\x7e\xff\xff", 4);
    ASSERT_UINT_EQ(ws_encode_header(h, WS_OP_TEXT, true, 65536), 10);
    ASSERT_MEM_EQ(h, 10, "\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    ASSERT_UINT_EQ(ws_encode_header(h, WS_OP_BINARY, true, UINT64_C(0x0102030405060708)), 10);
    ASSERT_MEM_EQ(h, 10, "\x82\x7f\x01\x02\x03\x04\x05\x06\x07\x08", 10);
    ASSERT_UINT_EQ(ws_encode_header(h, WS_OP_CLOSE, true, 2), 2);
    ASSERT_MEM_EQ(h, 2, "\x88\x02", 2);
    ASSERT_UINT_EQ(ws_encode_header(h, WS_OP_PING, true, 0), 2);
    ASSERT_MEM_EQ(h, 2, "\x89\x00", 2);
    ASSERT_UINT_EQ(ws_encode_header(h, WS_OP_PONG, true, 5), 2);
    ASSERT_MEM_EQ(h, 2, "\x8a\x05", 2);
}

TEST(test_encode_close_payload)
{
    uint8_t out[125];
    char reason[200];
    ASSERT_UINT_EQ(ws_encode_close_payload(out, 1000, NULL), 2);
    ASSERT_MEM_EQ(out, 2, "\x03\xe8", 2);
    ASSERT_UINT_EQ(ws_encode_close_payload(out, 1011, ""), 2);
    ASSERT_MEM_EQ(out, 2, "\x03\xf3", 2);
    ASSERT_UINT_EQ(ws_encode_close_payload(out, 4999, "bye"), 5);
    ASSERT_MEM_EQ(out, 5,
                  "\x13\x87"
                  "bye",
                  5);

    /* ASCII: exactly 123 fits, more is cut to 123. */
    memset(reason, 'r', sizeof(reason));
    reason[123] = 0;
    ASSERT_UINT_EQ(ws_encode_close_payload(out, 1000, reason), 125);
    ASSERT_MEM_EQ(out + 2, 123, reason, 123);
    reason[123] = 'r';
    reason[150] = 0;
    ASSERT_UINT_EQ(ws_encode_close_payload(out, 1000, reason), 125);

    /* A 3- or 4-byte character across the limit is dropped whole; one that ends at it stays. */
    static const struct {
        size_t prefix;
        const char *ch;
        size_t want;
    } cut[] = {
        {120, "\xe2\x82\xac", 123},     {121, "\xe2\x82\xac", 121},
        {122, "\xe2\x82\xac", 122},     {119, "\xf0\x9d\x84\x9e", 123},
        {120, "\xf0\x9d\x84\x9e", 120}, {122, "\xf0\x9d\x84\x9e", 122},
        {121, "\xc3\xa9", 123},         {122, "\xc3\xa9", 122},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cut); i++) {
        memset(reason, 'r', cut[i].prefix);
        size_t chl = strlen(cut[i].ch);
        memcpy(reason + cut[i].prefix, cut[i].ch, chl);
        strcpy(reason + cut[i].prefix + chl, "tail");
        size_t n = ws_encode_close_payload(out, 1001, reason);
        ASSERT_UINT_EQ(n, 2 + cut[i].want);
        ASSERT_MEM_EQ(out + 2, n - 2, reason, cut[i].want);
        ASSERT_TRUE(gw_utf8_valid(out + 2, n - 2));
    }
}

TEST(test_parse_close)
{
    uint16_t code;
    const uint8_t *reason;
    size_t reason_len;
    ws_parse_close((const uint8_t *)"", 0, &code, &reason, &reason_len);
    ASSERT_UINT_EQ(code, WS_CLOSE_NO_STATUS);
    ASSERT_UINT_EQ(reason_len, 0);
    ws_parse_close((const uint8_t *)"\x0b\xb8", 2, &code, &reason, &reason_len);
    ASSERT_UINT_EQ(code, 3000);
    ASSERT_UINT_EQ(reason_len, 0);
    ws_parse_close((const uint8_t *)"\x03\xe9going", 7, &code, &reason, &reason_len);
    ASSERT_UINT_EQ(code, 1001);
    ASSERT_MEM_EQ(reason, reason_len, "going", 5);
}

TEST(test_close_code_valid)
{
    for (uint32_t code = 0; code <= 0xFFFF; code++) {
        bool want = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                    (code >= 3000 && code <= 4999);
        if (ws_close_code_valid((uint16_t)code) != want)
            GW_FAIL_AT("code %u: expected %d", (unsigned)code, want);
    }
}

TEST(test_accept_key)
{
    char out[29];
    memset(out, 'x', sizeof(out));
    ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out); /* RFC 6455 section 1.3 */
    ASSERT_STR_EQ(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    ASSERT_UINT_EQ(strlen(out), 28);
    /* key_len bounds the key: trailing bytes are not hashed. */
    ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==garbage", 24, out);
    ASSERT_STR_EQ(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

GW_TEST_MAIN(TEST_CASE(test_frame_lengths), TEST_CASE(test_non_minimal_lengths),
             TEST_CASE(test_control_frames), TEST_CASE(test_fragmentation_with_controls),
             TEST_CASE(test_utf8_across_fragments), TEST_CASE(test_random_streams),
             TEST_CASE(test_error_unmasked), TEST_CASE(test_error_reserved_bits),
             TEST_CASE(test_compressed_messages), TEST_CASE(test_error_rsv1),
             TEST_CASE(test_error_unknown_opcodes), TEST_CASE(test_error_control_frames),
             TEST_CASE(test_error_continuation_without_message),
             TEST_CASE(test_error_new_message_inside_fragmented), TEST_CASE(test_error_length_msb),
             TEST_CASE(test_error_close_payload), TEST_CASE(test_error_invalid_utf8),
             TEST_CASE(test_message_size_limit), TEST_CASE(test_incomplete_input_not_consumed),
             TEST_CASE(test_callback_stop_and_resume), TEST_CASE(test_error_reasons),
             TEST_CASE(test_encode_header), TEST_CASE(test_encode_close_payload),
             TEST_CASE(test_parse_close), TEST_CASE(test_close_code_valid),
             TEST_CASE(test_accept_key))
