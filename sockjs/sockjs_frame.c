#include "sockjs_frame.h"

#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "gw_alloc.h"
#include "gw_utf8.h"

static const char hex_digits[] = "0123456789abcdef";

static void append_u_escape(struct gw_buf *out, uint32_t cp)
{
    char *p = gw_buf_reserve(out, 6);
    p[0] = '\\';
    p[1] = 'u';
    p[2] = hex_digits[(cp >> 12) & 0xf];
    p[3] = hex_digits[(cp >> 8) & 0xf];
    p[4] = hex_digits[(cp >> 4) & 0xf];
    p[5] = hex_digits[cp & 0xf];
    out->len += 6;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3
                                : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || n > avail)
        return 0;
    return gw_utf8_valid(s, n) ? n : 0;
}

static uint32_t decode3(const unsigned char *s)
{
    return ((uint32_t)(s[0] & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
}

static int needs_escape_bmp(uint32_t cp)
{
    return (cp >= 0x200c && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) ||
           (cp >= 0x2060 && cp <= 0x206f) || cp >= 0xfff0;
}

void sockjs_quote(struct gw_buf *out, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    /* Worst case: every byte becomes a 6-byte escape. */
    gw_buf_reserve(out, len + 2);
    out->data[out->len++] = '"';
    size_t i = 0;
    while (i < len) {
        size_t run = i;
        while (run < len && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
            run++;
        gw_buf_append(out, s + i, run - i);
        i = run;
        if (i >= len)
            break;
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            gw_buf_append(out, esc, 2);
            i++;
        } else if (c < 0x20) {
            append_u_escape(out, c);
            i++;
        } else {
            size_t n = utf8_seq_len(s + i, len - i);
            if (n == 0) {
                append_u_escape(out, 0xfffd);
                i++;
            } else if (n == 3 && needs_escape_bmp(decode3(s + i))) {
                append_u_escape(out, decode3(s + i));
                i += 3;
            } else {
                gw_buf_append(out, s + i, n);
                i += n;
            }
        }
    }
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
        return SOCKJS_PAYLOAD_EMPTY;
    json_error_t error;
    json_t *root = json_loadb(data, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    if (!root)
        return SOCKJS_PAYLOAD_BROKEN;
    int rc = SOCKJS_PAYLOAD_OK;
    if (!json_is_array(root)) {
        rc = SOCKJS_PAYLOAD_NOT_ARRAY;
    } else {
        size_t i;
        json_t *item;
        json_array_foreach(root, i, item)
        {
            if (!json_is_string(item)) {
                rc = SOCKJS_PAYLOAD_NOT_ARRAY;
                break;
            }
        }
        if (rc == SOCKJS_PAYLOAD_OK) {
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
    case SOCKJS_PAYLOAD_EMPTY:
    case SOCKJS_PAYLOAD_NOT_ARRAY:
        return "Payload expected.";
    case SOCKJS_PAYLOAD_BROKEN:
        return "Broken JSON encoding.";
    }
    return "";
}
