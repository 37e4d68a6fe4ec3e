/* RFC 6455 frame codec, pure: bytes in, events out; no sockets, no allocation per frame.
 *
 * Decoder states (one frame at a time):
 *
 *   HEADER --(2..14 header bytes complete)--> PAYLOAD --(payload_len bytes)--> HEADER
 *      |                                          |
 *      +--- protocol error ---> ERROR <-----------+  (sticky; ws_decoder_close_code() says why)
 *
 * The decoder enforces the server-side rules: client frames must be masked (1002), reserved
 * bits must be zero without a negotiated extension (1002; with permessage-deflate, RSV1 may be
 * set on the first frame of a data message only), unknown opcodes (1002), control
 * frames at most 125 bytes and never fragmented (1002), continuation frames only inside a
 * fragmented message and a new data frame never inside one (1002), text messages valid UTF-8
 * across fragments (1007, detected as early as possible; for a compressed message the caller
 * checks the inflated text), message size (sum of fragments, compressed as sent) at
 * most max_message_size (1009, detected from the frame header before reading the payload),
 * close frames with a valid code and UTF-8 reason (1002 / 1007). */
#ifndef WEBSOCKET_CODEC_H
#define WEBSOCKET_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_error.h"

enum ws_opcode {
    WS_OP_CONTINUATION = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL_ERROR = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005, /* never on the wire */
    WS_CLOSE_ABNORMAL = 1006,  /* never on the wire */
    WS_CLOSE_INVALID_PAYLOAD = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL_ERROR = 1011,
};

/* Events, delivered synchronously from ws_decoder_feed().
 *
 * on_data: a piece of a data message's payload, already unmasked. `opcode` is the message's
 * opcode (TEXT or BINARY, also for continuation frames); `last` is true on the final piece of
 * the message (FIN frame, all of its payload delivered). A message may arrive in any number of
 * pieces, including empty ones (an empty message is one empty piece with last = true). For
 * text, the bytes delivered so far are valid UTF-8 up to a possibly incomplete last character;
 * when last is true the message is complete, valid UTF-8.
 *
 * on_control: a whole control frame (PING, PONG or CLOSE), payload unmasked, len <= 125. For
 * CLOSE the payload has already been validated (empty, or a valid code + UTF-8 reason); use
 * ws_parse_close() to read it.
 *
 * A callback returns 0 to continue or non-zero to stop; ws_decoder_feed() then returns at
 * once with the bytes consumed so far (the decoder stays usable). */
struct ws_decoder_callbacks {
    int (*on_data)(void *arg, enum ws_opcode opcode, const uint8_t *data, size_t len, bool last);
    int (*on_control)(void *arg, enum ws_opcode opcode, const uint8_t *data, size_t len);
};

enum ws_decoder_state { WS_DEC_HEADER, WS_DEC_PAYLOAD, WS_DEC_ERROR };

/* Lives in every idle connection, so it buffers nothing: a frame header, and a control frame
 * as a whole, are consumed only once all their bytes are available; otherwise feed() returns
 * fewer bytes than given and the caller keeps the rest (at most 14 + 125 bytes) to present again
 * with more input. Data payloads are consumed as they come. */
/* Every websocket session holds one: 32-bit lengths keep it at 28 bytes (a message is at most
 * 4 GiB - 1 whatever the limit). */
struct ws_decoder {
    uint32_t payload_left; /* bytes of the current data frame's payload still to come */
    uint32_t message_len;  /* bytes of the current (possibly fragmented) message so far */
    uint32_t max_message;  /* limit for message_len, 0 = only the 4 GiB - 1 of the format */
    uint32_t utf8_state;   /* gw_utf8 state for the current text message */
    uint8_t mask[4];
    uint8_t mask_pos;       /* offset of the next payload byte modulo 4 */
    uint8_t state;          /* enum ws_decoder_state */
    uint8_t frame_fin;      /* FIN bit of the current data frame */
    uint8_t message_opcode; /* TEXT/BINARY while a data message is in progress, else 0 */
    uint16_t close_code;    /* in ERROR state: the close code to send */
    uint8_t error;          /* in ERROR state: private index of the reason */
    uint8_t flags;          /* WS_DEC_F_* (private) */
};

void ws_decoder_init(struct ws_decoder *d, uint32_t max_message_size);

/* Consumes up to len bytes. `data` is modified in place (unmasked), but only the bytes
 * consumed. Returns the number of bytes consumed: less than len when a callback stopped it or
 * when the bytes left are an incomplete header or control frame (present them again, followed
 * by more input); or GW_EPROTO on a protocol error, and on every call after one: the decoder is
 * then in WS_DEC_ERROR and ws_decoder_close_code() gives 1002, 1007 or 1009. */
long ws_decoder_feed(struct ws_decoder *d, uint8_t *data, size_t len,
                     const struct ws_decoder_callbacks *cb, void *arg);

/* permessage-deflate was negotiated: RSV1 marks a compressed message (RFC 7692 6). */
void ws_decoder_allow_compression(struct ws_decoder *d);
/* During on_data: whether the current message is compressed (its first frame had RSV1). Its
 * pieces are then the compressed bytes, not UTF-8-checked; the caller inflates the message. */
bool ws_decoder_compressed(const struct ws_decoder *d);

/* The close code to send after an error; 0 while there was none. */
uint16_t ws_decoder_close_code(const struct ws_decoder *d);
/* A human-readable reason for the error (static string), for logs and the close frame. */
const char *ws_decoder_error(const struct ws_decoder *d);

/* Server frame header (never masked) for a frame of payload_len bytes into out (>= 10 bytes);
 * returns the header length (2, 4 or 10). For a compressed message, OR WS_RSV1 into out[0] of
 * its first frame. */
#define WS_RSV1 0x40
size_t ws_encode_header(uint8_t out[10], enum ws_opcode opcode, bool fin, uint64_t payload_len);

/* Close frame payload: 2-byte code + reason (UTF-8, may be NULL; truncated to fit 123 bytes on
 * a UTF-8 character boundary). Returns payload length (<= 125). The code is written as given;
 * peers fail the connection on one that ws_close_code_valid() rejects (e.g. SockJS's 2010). */
size_t ws_encode_close_payload(uint8_t out[125], uint16_t code, const char *reason);

/* Parses a validated close payload; code is WS_CLOSE_NO_STATUS when empty. */
void ws_parse_close(const uint8_t *data, size_t len, uint16_t *code, const uint8_t **reason,
                    size_t *reason_len);

/* Whether code may appear in a close frame on the wire (RFC 6455 7.4: 1000-1003, 1007-1011,
 * 3000-4999; also 1012-1014, registered with IANA since and accepted by browsers). */
bool ws_close_code_valid(uint16_t code);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)), NUL-terminated
 * into out (29 bytes). */
void ws_accept_key(const char *key, size_t key_len, char out[29]);

#endif
