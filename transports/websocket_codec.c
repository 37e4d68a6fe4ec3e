/* RFC 6455 frame codec (state diagram in websocket_codec.h).
 *
 * The decoder keeps no input: a header is parsed from the caller's bytes each time they are
 * presented, and only committed (consumed) once complete, so an idle connection costs just
 * struct ws_decoder. Header checks run in wire order, each as soon as the bytes it needs are
 * present, so a bad frame fails at the same point however the input is split, and without
 * waiting for bytes the check does not need. */
#include "websocket_codec.h"

#include <limits.h>
#include <string.h>

#include <openssl/evp.h>

#include "gw_alloc.h"
#include "gw_sha1.h"
#include "gw_utf8.h"

#define WS_FIN 0x80
#define WS_RSV_MASK 0x70
/* ws_decoder.flags */
#define WS_DEC_F_DEFLATE 0x01    /* permessage-deflate negotiated: RSV1 allowed */
#define WS_DEC_F_COMPRESSED 0x02 /* the current data message has RSV1 */
#define WS_OPCODE_MASK 0x0F
#define WS_MASKED 0x80
#define WS_LEN7_MASK 0x7F
#define WS_LEN7_16BIT 126
#define WS_LEN7_64BIT 127
#define WS_CONTROL_MAX 125
#define WS_CLOSE_REASON_MAX (WS_CONTROL_MAX - 2)

/* Private error indexes stored in ws_decoder.error; each fixes its close code. */
enum ws_error {
    WS_ERR_NONE,
    WS_ERR_RSV,
    WS_ERR_RSV1_CONTROL,
    WS_ERR_RSV1_CONTINUATION,
    WS_ERR_OPCODE,
    WS_ERR_CONTROL_FRAGMENTED,
    WS_ERR_CONTINUATION,
    WS_ERR_INTERLEAVED,
    WS_ERR_UNMASKED,
    WS_ERR_CONTROL_TOO_LONG,
    WS_ERR_LENGTH,
    WS_ERR_TOO_BIG,
    WS_ERR_UTF8,
    WS_ERR_CLOSE_LENGTH,
    WS_ERR_CLOSE_CODE,
    WS_ERR_CLOSE_UTF8,
};

static const struct {
    uint16_t close_code;
    const char *reason;
} ws_errors[] = {
    [WS_ERR_NONE] = {0, "no error"},
    [WS_ERR_RSV] = {WS_CLOSE_PROTOCOL_ERROR, "reserved bits set"},
    [WS_ERR_RSV1_CONTROL] = {WS_CLOSE_PROTOCOL_ERROR, "compressed control frame"},
    [WS_ERR_RSV1_CONTINUATION] = {WS_CLOSE_PROTOCOL_ERROR, "RSV1 on a continuation frame"},
    [WS_ERR_OPCODE] = {WS_CLOSE_PROTOCOL_ERROR, "unknown opcode"},
    [WS_ERR_CONTROL_FRAGMENTED] = {WS_CLOSE_PROTOCOL_ERROR, "fragmented control frame"},
    [WS_ERR_CONTINUATION] = {WS_CLOSE_PROTOCOL_ERROR, "continuation frame outside a message"},
    [WS_ERR_INTERLEAVED] = {WS_CLOSE_PROTOCOL_ERROR, "new message inside a fragmented message"},
    [WS_ERR_UNMASKED] = {WS_CLOSE_PROTOCOL_ERROR, "unmasked client frame"},
    [WS_ERR_CONTROL_TOO_LONG] = {WS_CLOSE_PROTOCOL_ERROR, "control frame too long"},
    [WS_ERR_LENGTH] = {WS_CLOSE_PROTOCOL_ERROR, "invalid frame length"},
    [WS_ERR_TOO_BIG] = {WS_CLOSE_TOO_BIG, "message too big"},
    [WS_ERR_UTF8] = {WS_CLOSE_INVALID_PAYLOAD, "invalid UTF-8 in text message"},
    [WS_ERR_CLOSE_LENGTH] = {WS_CLOSE_PROTOCOL_ERROR, "close frame with 1-byte payload"},
    [WS_ERR_CLOSE_CODE] = {WS_CLOSE_PROTOCOL_ERROR, "invalid close code"},
    [WS_ERR_CLOSE_UTF8] = {WS_CLOSE_INVALID_PAYLOAD, "invalid UTF-8 in close reason"},
};

/* A parsed frame header; mask points into the caller's bytes. */
struct ws_frame {
    uint64_t len;
    const uint8_t *mask;
    uint8_t opcode;
    bool fin;
    bool rsv1;
};

static long fail(struct ws_decoder *d, enum ws_error err)
{
    d->state = WS_DEC_ERROR;
    d->error = (uint8_t)err;
    d->close_code = ws_errors[err].close_code;
    return GW_EPROTO;
}

static bool is_control(uint8_t opcode)
{
    return (opcode & 0x08) != 0;
}

void ws_decoder_init(struct ws_decoder *d, uint32_t max_message_size)
{
    memset(d, 0, sizeof(*d));
    d->max_message = max_message_size;
    d->state = WS_DEC_HEADER;
    d->utf8_state = GW_UTF8_ACCEPT;
}

/* Parses the header at p (avail bytes). Returns its length once complete, 0 while more bytes
 * are needed, or -1 after fail(). */
static long parse_header(struct ws_decoder *d, const uint8_t *p, size_t avail, struct ws_frame *f)
{
    if (avail < 1)
        return 0;
    uint8_t rsv = p[0] & WS_RSV_MASK;
    if (rsv && (rsv != WS_RSV1 || !(d->flags & WS_DEC_F_DEFLATE)))
        return fail(d, WS_ERR_RSV);
    f->fin = (p[0] & WS_FIN) != 0;
    f->opcode = p[0] & WS_OPCODE_MASK;
    f->rsv1 = rsv != 0;
    /* RFC 7692 6.1: RSV1 marks a message, on its first frame; control frames are never
     * compressed. */
    if (f->rsv1 && is_control(f->opcode))
        return fail(d, WS_ERR_RSV1_CONTROL);
    if (f->rsv1 && f->opcode == WS_OP_CONTINUATION)
        return fail(d, WS_ERR_RSV1_CONTINUATION);
    switch (f->opcode) {
    case WS_OP_CONTINUATION:
        if (!d->message_opcode)
            return fail(d, WS_ERR_CONTINUATION);
        break;
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        if (d->message_opcode)
            return fail(d, WS_ERR_INTERLEAVED);
        break;
    case WS_OP_CLOSE:
    case WS_OP_PING:
    case WS_OP_PONG:
        if (!f->fin)
            return fail(d, WS_ERR_CONTROL_FRAGMENTED);
        break;
    default:
        return fail(d, WS_ERR_OPCODE);
    }

    if (avail < 2)
        return 0;
    if (!(p[1] & WS_MASKED))
        return fail(d, WS_ERR_UNMASKED);
    uint8_t len7 = p[1] & WS_LEN7_MASK;
    if (is_control(f->opcode) && len7 > WS_CONTROL_MAX)
        return fail(d, WS_ERR_CONTROL_TOO_LONG);
    size_t len_bytes = len7 == WS_LEN7_64BIT ? 8 : len7 == WS_LEN7_16BIT ? 2 : 0;
    if (avail < 2 + len_bytes)
        return 0;
    if (len_bytes == 0) {
        f->len = len7;
    } else {
        f->len = 0;
        for (size_t i = 0; i < len_bytes; i++)
            f->len = f->len << 8 | p[2 + i];
    }
    /* Non-minimal encodings are accepted: RFC 6455 requires senders to use the minimal form
     * but rejecting them protects nothing. */
    if (f->len >> 63)
        return fail(d, WS_ERR_LENGTH);
    if (!is_control(f->opcode)) {
        /* A continuation adds to the message so far; TEXT/BINARY starts a new one. */
        uint32_t so_far = f->opcode == WS_OP_CONTINUATION ? d->message_len : 0;
        uint32_t limit = d->max_message ? d->max_message : UINT32_MAX;
        if (f->len > limit - so_far)
            return fail(d, WS_ERR_TOO_BIG);
    }

    size_t header_len = 2 + len_bytes + 4;
    if (avail < header_len)
        return 0;
    f->mask = p + header_len - 4;
    return (long)header_len;
}

/* XORs n bytes with the mask, the first byte being at payload offset `offset` (mod 4). Works
 * a word at a time: an 8-byte key repeats the 4-byte mask, so it stays in phase. */
static void unmask(uint8_t *p, size_t n, const uint8_t mask[4], unsigned offset)
{
    uint8_t key[8];
    for (unsigned i = 0; i < 8; i++)
        key[i] = mask[(offset + i) & 3];
    uint64_t k, w;
    memcpy(&k, key, 8);
    size_t i = 0;
    for (; n - i >= 8; i += 8) {
        memcpy(&w, p + i, 8);
        w ^= k;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++)
        p[i] ^= key[i & 7];
}

static long check_close(struct ws_decoder *d, const uint8_t *p, size_t len)
{
    if (len == 0)
        return 0;
    if (len == 1)
        return fail(d, WS_ERR_CLOSE_LENGTH);
    if (!ws_close_code_valid((uint16_t)(p[0] << 8 | p[1])))
        return fail(d, WS_ERR_CLOSE_CODE);
    if (!gw_utf8_valid(p + 2, len - 2))
        return fail(d, WS_ERR_CLOSE_UTF8);
    return 0;
}

/* Consumes as much of the current data frame's payload as is present (at least one byte) and
 * delivers it. Returns 0 to go on, 1 if the callback stopped the feed, or -1 after fail().
 * *pos advances past the bytes consumed, also when the callback stops the feed. */
static long deliver_payload(struct ws_decoder *d, uint8_t *data, size_t len, size_t *pos,
                            const struct ws_decoder_callbacks *cb, void *arg)
{
    uint8_t *p = data + *pos;
    size_t n = len - *pos;
    if (n > d->payload_left)
        n = (size_t)d->payload_left;
    unmask(p, n, d->mask, d->mask_pos);
    d->mask_pos = (uint8_t)((d->mask_pos + n) & 3);
    d->payload_left -= n;
    bool last = d->payload_left == 0 && d->frame_fin;
    enum ws_opcode opcode = d->message_opcode;
    /* Validate before delivering, so the callback never sees invalid text; a character cut by
     * the end of a piece (or of a non-final frame) is fine until the message's last piece. */
    if (opcode == WS_OP_TEXT && !(d->flags & WS_DEC_F_COMPRESSED)) {
        d->utf8_state = gw_utf8_feed(d->utf8_state, p, n);
        if (d->utf8_state == GW_UTF8_REJECT || (last && d->utf8_state != GW_UTF8_ACCEPT))
            return fail(d, WS_ERR_UTF8);
    }
    if (d->payload_left == 0) {
        d->state = WS_DEC_HEADER;
        if (last)
            d->message_opcode = 0;
    }
    *pos += n;
    return cb->on_data(arg, opcode, p, n, last) ? 1 : 0;
}

long ws_decoder_feed(struct ws_decoder *d, uint8_t *data, size_t len,
                     const struct ws_decoder_callbacks *cb, void *arg)
{
    GW_ASSERT(len <= LONG_MAX);
    size_t pos = 0;
    if (d->state == WS_DEC_ERROR)
        return GW_EPROTO;
    while (pos < len) {
        if (d->state == WS_DEC_PAYLOAD) {
            long rc = deliver_payload(d, data, len, &pos, cb, arg);
            if (rc < 0)
                return GW_EPROTO;
            if (rc > 0)
                break;
            continue;
        }

        struct ws_frame f;
        long header_len = parse_header(d, data + pos, len - pos, &f);
        if (header_len < 0)
            return GW_EPROTO;
        if (header_len == 0)
            break;
        uint8_t *payload = data + pos + header_len;

        if (is_control(f.opcode)) {
            /* Control frames are delivered whole (they are at most 125 bytes). */
            if (len - pos - (size_t)header_len < f.len)
                break;
            size_t n = (size_t)f.len;
            unmask(payload, n, f.mask, 0);
            if (f.opcode == WS_OP_CLOSE && check_close(d, payload, n) < 0)
                return GW_EPROTO;
            pos += (size_t)header_len + n;
            if (cb->on_control(arg, f.opcode, payload, n))
                break;
            continue;
        }

        pos += (size_t)header_len;
        if (f.opcode != WS_OP_CONTINUATION) {
            /* No reset needed: a text message only ends on a character boundary. */
            GW_ASSERT(d->utf8_state == GW_UTF8_ACCEPT);
            d->message_opcode = f.opcode;
            d->message_len = 0;
            d->flags =
                (uint8_t)((d->flags & ~WS_DEC_F_COMPRESSED) | (f.rsv1 ? WS_DEC_F_COMPRESSED : 0));
        }
        d->message_len += (uint32_t)f.len; /* bounded by the limit checked above */
        if (f.len > 0) {
            d->state = WS_DEC_PAYLOAD;
            d->payload_left = (uint32_t)f.len;
            d->frame_fin = f.fin;
            memcpy(d->mask, f.mask, 4);
            d->mask_pos = 0;
            continue;
        }
        /* An empty final frame ends the message with an empty last piece, since no payload
         * byte will come to carry last = true; an empty non-final frame delivers nothing. */
        if (!f.fin)
            continue;
        enum ws_opcode opcode = d->message_opcode;
        if (opcode == WS_OP_TEXT && d->utf8_state != GW_UTF8_ACCEPT)
            return fail(d, WS_ERR_UTF8);
        d->message_opcode = 0;
        if (cb->on_data(arg, opcode, payload, 0, true))
            break;
    }
    return (long)pos;
}

void ws_decoder_allow_compression(struct ws_decoder *d)
{
    d->flags |= WS_DEC_F_DEFLATE;
}

bool ws_decoder_compressed(const struct ws_decoder *d)
{
    return (d->flags & WS_DEC_F_COMPRESSED) != 0;
}

uint16_t ws_decoder_close_code(const struct ws_decoder *d)
{
    return d->close_code;
}

const char *ws_decoder_error(const struct ws_decoder *d)
{
    return ws_errors[d->error].reason;
}

size_t ws_encode_header(uint8_t out[10], enum ws_opcode opcode, bool fin, uint64_t payload_len)
{
    GW_ASSERT(payload_len >> 63 == 0);
    out[0] = (uint8_t)((fin ? WS_FIN : 0) | opcode);
    if (payload_len < WS_LEN7_16BIT) {
        out[1] = (uint8_t)payload_len;
        return 2;
    }
    if (payload_len <= UINT16_MAX) {
        out[1] = WS_LEN7_16BIT;
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
        return 4;
    }
    out[1] = WS_LEN7_64BIT;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
    return 10;
}

size_t ws_encode_close_payload(uint8_t out[125], uint16_t code, const char *reason)
{
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    if (!reason)
        return 2;
    /* Look one byte past the limit: if it continues a character, that character would be cut,
     * so back off to its first byte. */
    size_t n = strnlen(reason, WS_CLOSE_REASON_MAX + 1);
    if (n > WS_CLOSE_REASON_MAX) {
        n = WS_CLOSE_REASON_MAX;
        while (n > 0 && ((uint8_t)reason[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out + 2, reason, n);
    return 2 + n;
}

void ws_parse_close(const uint8_t *data, size_t len, uint16_t *code, const uint8_t **reason,
                    size_t *reason_len)
{
    if (len < 2) {
        *code = WS_CLOSE_NO_STATUS;
        *reason = data;
        *reason_len = 0;
        return;
    }
    *code = (uint16_t)(data[0] << 8 | data[1]);
    *reason = data + 2;
    *reason_len = len - 2;
}

bool ws_close_code_valid(uint16_t code)
{
    /* 1012-1014 were registered with IANA after RFC 6455 (service restart, try again later,
     * bad gateway); browsers and common servers accept them, so do we. */
    if (code >= 1000 && code <= 1014)
        return code != 1004 && code != WS_CLOSE_NO_STATUS && code != WS_CLOSE_ABNORMAL;
    return code >= 3000 && code <= 4999;
}

void ws_accept_key(const char *key, size_t key_len, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    uint8_t digest[GW_SHA1_LEN];
    struct gw_sha1 sha;
    gw_sha1_init(&sha);
    gw_sha1_update(&sha, key, key_len);
    gw_sha1_update(&sha, guid, sizeof(guid) - 1);
    gw_sha1_final(&sha, digest);
    /* 20 bytes encode to 28 base64 characters; EVP_EncodeBlock adds the NUL. */
    EVP_EncodeBlock((unsigned char *)out, digest, GW_SHA1_LEN);
}
