#include "sockjs_frame.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "gw_alloc.h"
#include "gw_error.h"
#include "gw_utf8.h"

static const char hex_digits[] = "0123456789abcdef";

/* 1 for a byte written as it is, whatever follows: printable ASCII but '"' and '\'. A table,
 * because the scan over such bytes is most of the work (JSON text is mostly ASCII). */
static const uint8_t plain_ascii[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x70 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x80 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x90 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xa0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xb0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xc0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xd0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xe0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xf0 */
};

/* Appends \uXXXX, lowercase, for one UTF-16 code unit. */
static void append_u_escape(struct gw_buf *out, uint32_t unit)
{
    char *p = gw_buf_reserve(out, 6);
    p[0] = '\\';
    p[1] = 'u';
    p[2] = hex_digits[(unit >> 12) & 0xf];
    p[3] = hex_digits[(unit >> 8) & 0xf];
    p[4] = hex_digits[(unit >> 4) & 0xf];
    p[5] = hex_digits[unit & 0xf];
    out->len += 6;
}

/* The letter of JSON.stringify's two-character escape for c, or 0 where it writes \u00xx. */
static char short_escape(unsigned char c)
{
    switch (c) {
    case '"':
        return '"';
    case '\\':
        return '\\';
    case '\b':
        return 'b';
    case '\f':
        return 'f';
    case '\n':
        return 'n';
    case '\r':
        return 'r';
    case '\t':
        return 't';
    }
    return 0;
}

/* Length of the valid UTF-8 sequence at s (2-4; s[0] >= 0x80), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    size_t n = (s[0] & 0xe0) == 0xc0   ? 2
               : (s[0] & 0xf0) == 0xe0 ? 3
               : (s[0] & 0xf8) == 0xf0 ? 4
                                       : 0;
    if (n == 0 || n > avail)
        return 0;
    return gw_utf8_valid(s, n) ? n : 0;
}

static uint32_t decode3(const unsigned char *s)
{
    return ((uint32_t)(s[0] & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
}

static uint32_t decode4(const unsigned char *s)
{
    return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) |
           ((uint32_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
}

/* SockJS's ranges in the BMP (sockjs-node's `escapable`, less the controls and surrogates). */
static bool escaped_in_bmp(uint32_t cp)
{
    return (cp >= 0x200c && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) ||
           (cp >= 0x2060 && cp <= 0x206f) || cp >= 0xfff0;
}

void sockjs_quote(struct gw_buf *out, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    /* Room for the common case, nothing escaped: the string and its two quotes. Escapes are
     * longer than their bytes (up to 6 for one); the appends grow the buffer for those. */
    gw_buf_reserve(out, len + 2);
    out->data[out->len++] = '"';
    /* s[copy..i) is written as is when something to escape (or the end) comes. */
    size_t copy = 0, i = 0;
    while (i < len) {
        while (i < len && plain_ascii[s[i]])
            i++;
        if (i >= len)
            break;
        size_t n = s[i] < 0x80 ? 1 : utf8_seq_len(s + i, len - i);
        if (n == 2 || (n == 3 && !escaped_in_bmp(decode3(s + i)))) {
            i += n;
            continue;
        }
        gw_buf_append(out, s + copy, i - copy);
        if (n == 1) {
            char letter = short_escape(s[i]);
            if (letter) {
                char esc[2] = {'\\', letter};
                gw_buf_append(out, esc, 2);
            } else {
                append_u_escape(out, s[i]);
            }
        } else if (n == 3) {
            append_u_escape(out, decode3(s + i));
        } else if (n == 4) {
            /* As JavaScript sees it: a surrogate pair, both halves in SockJS's ranges. */
            uint32_t v = decode4(s + i) - 0x10000;
            append_u_escape(out, 0xd800 | (v >> 10));
            append_u_escape(out, 0xdc00 | (v & 0x3ff));
        } else {
            /* Not UTF-8 (cannot come from parsed JSON): one U+FFFD per byte, never raw. */
            append_u_escape(out, 0xfffd);
            n = 1;
        }
        i += n;
        copy = i;
    }
    gw_buf_append(out, s + copy, len - copy);
    gw_buf_append(out, "\"", 1);
}

void sockjs_close_frame(struct gw_buf *out, int code, const char *reason)
{
    gw_buf_appendf(out, "c[%d,", code);
    sockjs_quote(out, reason, strlen(reason));
    gw_buf_append(out, "]", 1);
}

int sockjs_parse_payload(const char *data, size_t len, sockjs_message_cb cb, void *arg)
{
    if (len == 0)
        return GW_EEMPTY;
    json_error_t error;
    json_t *root = json_loadb(data, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    if (!root)
        return GW_EPROTO;
    int rc = GW_OK;
    if (!json_is_array(root)) {
        rc = GW_EINVAL;
    } else {
        size_t i;
        json_t *item;
        json_array_foreach(root, i, item)
        {
            if (!json_is_string(item)) {
                rc = GW_EINVAL;
                break;
            }
        }
        if (rc == GW_OK) {
            json_array_foreach(root, i, item)
            {
                cb(arg, json_string_value(item), json_string_length(item));
            }
        }
    }
    json_decref(root);
    return rc;
}

const char *sockjs_payload_error_text(int err)
{
    switch (err) {
    case GW_EEMPTY:
    case GW_EINVAL:
        return "Payload expected.";
    case GW_EPROTO:
        return "Broken JSON encoding.";
    }
    return "";
}
