/* SockJS framing, pure: JSON string quoting by SockJS's rule, close frames, and the parsing of
 * client payloads (a JSON array of strings). */
#ifndef SOCKJS_FRAME_H
#define SOCKJS_FRAME_H

#include <stddef.h>

#include "gw_buf.h"
#include "gw_error.h"

/* Appends s (UTF-8, may contain NUL) to out as a JSON string literal, byte for byte as
 * sockjs-node 0.3.24 quotes it (JSON.stringify, then its `escapable` set as lowercase \uxxxx):
 * '"' '\' and \b \f \n \r \t as two-character escapes, the other controls as \u00xx;
 * U+200C-U+200F, U+2028-U+202F, U+2060-U+206F and U+FFF0-U+FFFF as \uxxxx (browsers and
 * proxies mangle those when raw); a character beyond the BMP as its UTF-16 surrogate pair, two
 * \uxxxx; everything else raw ('/' and DEL included). A byte that is not part of valid UTF-8
 * becomes \ufffd. A frame of quoted strings holds no control character and nothing beyond the
 * BMP, so quoting it again escapes only '"' and '\', as sockjs-node's JSON.stringify(frame)
 * does for htmlfile and jsonp. */
void sockjs_quote(struct gw_buf *out, const char *s, size_t len);

/* Appends `c[code,"reason"]`. */
void sockjs_close_frame(struct gw_buf *out, int code, const char *reason);

typedef void (*sockjs_message_cb)(void *arg, const char *msg, size_t len);

/* Parses a client payload: a JSON array of strings. Calls cb once per string, in order, only if
 * the whole payload is valid (nothing is delivered from a broken payload). Returns 0,
 * GW_EEMPTY (no payload), GW_EPROTO (not JSON) or GW_EINVAL (JSON, but not an array of
 * strings). */
int sockjs_parse_payload(const char *data, size_t len, sockjs_message_cb cb, void *arg);

/* The text for a payload error of sockjs_parse_payload, as the reference server words it. */
const char *sockjs_payload_error_text(int err);

#endif
