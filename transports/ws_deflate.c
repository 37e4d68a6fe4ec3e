/* permessage-deflate: offer parsing and the per-message deflate/inflate (contract in
 * ws_deflate.h). */
#include "ws_deflate.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "gw_alloc.h"
#include "gw_buf.h"
#include "gw_error.h"

#define EXTENSION_NAME "permessage-deflate"
#define WINDOW_BITS 15
/* zlib's default memLevel: 64 KiB of hash table, cleared by every deflateReset(). */
#define MEM_LEVEL 8
/* Inflate output grows by at most this much per step, so a bomb stops at its limit. */
#define INFLATE_CHUNK 16384

static const uint8_t sync_tail[4] = {0x00, 0x00, 0xff, 0xff};

/* ---- Sec-WebSocket-Extensions (RFC 6455 9.1, quoted-string of RFC 7230 3.2.6) ---- */

struct cursor {
    const char *p;
    const char *end;
};

static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static void skip_ows(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

/* A token at the cursor: its length (0 if none). */
static size_t take_token(struct cursor *c, const char **start)
{
    *start = c->p;
    while (c->p < c->end && is_tchar((unsigned char)*c->p))
        c->p++;
    return (size_t)(c->p - *start);
}

/* A value (token or quoted-string) into val: its unescaped length (values longer than cap are
 * cut, with *len = cap + 1 so that no valid value matches them); false on a syntax error. */
static bool take_value(struct cursor *c, char *val, size_t cap, size_t *len)
{
    size_t n = 0;
    if (c->p < c->end && *c->p == '"') {
        c->p++;
        for (;;) {
            if (c->p >= c->end)
                return false;
            unsigned char ch = (unsigned char)*c->p++;
            if (ch == '"')
                break;
            if (ch == '\\') {
                if (c->p >= c->end)
                    return false;
                ch = (unsigned char)*c->p++;
            }
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return false;
            if (n < cap)
                val[n] = (char)ch;
            n++;
        }
    } else {
        const char *start;
        n = take_token(c, &start);
        if (n == 0)
            return false;
        memcpy(val, start, n < cap ? n : cap);
    }
    *len = n > cap ? cap + 1 : n;
    return true;
}

static bool name_is(const char *name, size_t len, const char *want)
{
    return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

/* RFC 7692 7.1.2: a decimal integer from 8 to 15, without leading zeros. */
static int window_bits(const char *v, size_t len)
{
    if (len == 1 && v[0] >= '8' && v[0] <= '9')
        return v[0] - '0';
    if (len == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
        return 10 + v[1] - '0';
    return -1;
}

enum { SEEN_SNCT = 1, SEEN_CNCT = 2, SEEN_SMWB = 4, SEEN_CMWB = 8 };

/* Checks one parameter of a permessage-deflate offer; NULL if we can honour it, else why not. */
static const char *check_param(unsigned *seen, const char *name, size_t name_len, bool has_value,
                               const char *v, size_t v_len)
{
    unsigned bit;
    if (name_is(name, name_len, "server_no_context_takeover"))
        bit = SEEN_SNCT;
    else if (name_is(name, name_len, "client_no_context_takeover"))
        bit = SEEN_CNCT;
    else if (name_is(name, name_len, "server_max_window_bits"))
        bit = SEEN_SMWB;
    else if (name_is(name, name_len, "client_max_window_bits"))
        bit = SEEN_CMWB;
    else
        return "unknown permessage-deflate parameter";
    if (*seen & bit)
        return "repeated permessage-deflate parameter";
    *seen |= bit;
    switch (bit) {
    case SEEN_SNCT:
    case SEEN_CNCT:
        return has_value ? "no_context_takeover parameter with a value" : NULL;
    case SEEN_SMWB: {
        int bits = has_value ? window_bits(v, v_len) : -1;
        if (bits < 0)
            return "invalid server_max_window_bits";
        /* Shared frames are compressed once with a 32 KiB window: a peer with a smaller one
         * could not read back-references that far. */
        return bits < WINDOW_BITS ? "server_max_window_bits below 15 not supported" : NULL;
    }
    default:
        return has_value && window_bits(v, v_len) < 0 ? "invalid client_max_window_bits" : NULL;
    }
}

enum ws_deflate_offer ws_deflate_parse_offers(const char *value, size_t len, const char **why)
{
    struct cursor c = {value, value + len};
    enum ws_deflate_offer result = WS_DEFLATE_NOT_OFFERED;
    const char *declined = NULL;
    for (;;) {
        skip_ows(&c);
        /* Empty list elements (", ,") are allowed by the #rule. */
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            continue;
        }
        if (c.p >= c.end)
            break;
        const char *name;
        size_t name_len = take_token(&c, &name);
        if (name_len == 0)
            goto malformed;
        bool ours = name_is(name, name_len, EXTENSION_NAME);
        unsigned seen = 0;
        const char *offer_why = NULL;
        skip_ows(&c);
        while (c.p < c.end && *c.p == ';') {
            c.p++;
            skip_ows(&c);
            const char *param;
            size_t param_len = take_token(&c, &param);
            if (param_len == 0)
                goto malformed;
            skip_ows(&c);
            char v[8];
            size_t v_len = 0;
            bool has_value = c.p < c.end && *c.p == '=';
            if (has_value) {
                c.p++;
                skip_ows(&c);
                if (!take_value(&c, v, sizeof(v), &v_len))
                    goto malformed;
                skip_ows(&c);
            }
            if (ours && !offer_why)
                offer_why = check_param(&seen, param, param_len, has_value, v, v_len);
        }
        if (c.p < c.end && *c.p != ',')
            goto malformed;
        if (ours) {
            if (!offer_why)
                return WS_DEFLATE_ACCEPTED;
            result = WS_DEFLATE_DECLINED;
            declined = offer_why;
        }
    }
    if (why)
        *why = declined;
    return result;
malformed:
    if (why)
        *why = "malformed Sec-WebSocket-Extensions";
    return WS_DEFLATE_MALFORMED;
}

/* ---- compression ---- */

void ws_deflate_cleanup(struct ws_deflate *z)
{
    if (z->def_ready)
        deflateEnd(&z->def);
    if (z->inf_ready)
        inflateEnd(&z->inf);
    z->def_ready = z->inf_ready = false;
}

void ws_deflate_compress(struct ws_deflate *z, const void *data, size_t len, struct gw_buf *out)
{
    GW_ASSERT(len <= UINT32_MAX);
    if (!z->def_ready) {
        memset(&z->def, 0, sizeof(z->def));
        int rc = deflateInit2(&z->def, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -WINDOW_BITS, MEM_LEVEL,
                              Z_DEFAULT_STRATEGY);
        /* Fails only when out of memory, which aborts by policy. */
        GW_ASSERT(rc == Z_OK);
        z->def_ready = true;
    } else {
        deflateReset(&z->def);
    }
    z->def.next_in = (Bytef *)data;
    z->def.avail_in = (uInt)len;
    size_t start = out->len;
    /* A sync flush adds at most a few bytes to deflateBound(); loop in case it does not fit. */
    size_t room = deflateBound(&z->def, (uLong)len) + 16;
    do {
        char *p = gw_buf_reserve(out, room);
        z->def.next_out = (Bytef *)p;
        z->def.avail_out = (uInt)room;
        int rc = deflate(&z->def, Z_SYNC_FLUSH);
        GW_ASSERT(rc == Z_OK || rc == Z_BUF_ERROR);
        out->len += room - z->def.avail_out;
        room = 256;
    } while (z->def.avail_out == 0);
    GW_ASSERT(out->len - start >= sizeof(sync_tail) &&
              memcmp(out->data + out->len - sizeof(sync_tail), sync_tail, sizeof(sync_tail)) == 0);
    out->len -= sizeof(sync_tail);
}

enum { RUN_MORE = 0, RUN_END = 1 };

/* Inflates the input set in z->inf with `flush`, appending to out; *produced counts this
 * message's output. Returns RUN_MORE once the input is used up (or, with Z_BLOCK, at a block
 * boundary), RUN_END at the end of a final block, or GW_ELIMIT / GW_EINVAL. */
static int run_inflate(struct ws_deflate *z, int flush, size_t limit, size_t *produced,
                       struct gw_buf *out)
{
    for (;;) {
        size_t left = limit - *produced;
        size_t room = left < INFLATE_CHUNK ? left + 1 : INFLATE_CHUNK;
        char *p = gw_buf_reserve(out, room);
        z->inf.next_out = (Bytef *)p;
        z->inf.avail_out = (uInt)room;
        int rc = inflate(&z->inf, flush);
        size_t got = room - z->inf.avail_out;
        out->len += got;
        *produced += got;
        if (*produced > limit)
            return GW_ELIMIT;
        if (rc == Z_STREAM_END)
            return RUN_END;
        if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT)
            return GW_EINVAL;
        GW_ASSERT(rc == Z_OK || rc == Z_BUF_ERROR);
        if (z->inf.avail_out > 0)
            return RUN_MORE;
    }
}

int ws_deflate_inflate(struct ws_deflate *z, const void *data, size_t len, size_t limit,
                       struct gw_buf *out)
{
    GW_ASSERT(len <= UINT32_MAX);
    /* RFC 7692 7.2.3.6: an empty message may be sent as an empty compressed payload. */
    if (len == 0)
        return 0;
    if (!z->inf_ready) {
        memset(&z->inf, 0, sizeof(z->inf));
        int rc = inflateInit2(&z->inf, -WINDOW_BITS);
        GW_ASSERT(rc == Z_OK);
        z->inf_ready = true;
    } else {
        inflateReset(&z->inf);
    }
    size_t produced = 0;
    z->inf.next_in = (Bytef *)data;
    z->inf.avail_in = (uInt)len;
    int rc = run_inflate(z, Z_SYNC_FLUSH, limit, &produced, out);
    if (rc < 0)
        return rc;
    /* A final block may end the message (then nothing may follow it). */
    if (rc == RUN_END || z->inf.avail_in > 0)
        return z->inf.avail_in > 0 ? GW_EINVAL : 0;
    /* The removed tail is an empty stored block: with Z_BLOCK, inflate stops right after it,
     * at a block boundary (data_type bit 128) with no bits left over (low bits), if the
     * message ended between blocks; data cut inside a block rarely decodes to that. */
    z->inf.next_in = (Bytef *)sync_tail;
    z->inf.avail_in = sizeof(sync_tail);
    rc = run_inflate(z, Z_BLOCK, limit, &produced, out);
    if (rc < 0)
        return rc;
    if (rc == RUN_END || z->inf.avail_in > 0 || (z->inf.data_type & (128 | 7)) != 128)
        return GW_EINVAL;
    return 0;
}
