/* libFuzzer: the websocket decoder fed arbitrary bytes, split where the input says, with the
 * caller's leftover handling; checks the decoder's own promises. */
#include <stdlib.h>
#include <string.h>

#include "gw_alloc.h"
#include "gw_utf8.h"
#include "websocket_codec.h"

struct state {
    size_t message_len;
    uint32_t utf8;
    int text;
};

static int on_data(void *arg, enum ws_opcode opcode, const uint8_t *data, size_t len, bool last)
{
    struct state *st = arg;
    st->text = opcode == WS_OP_TEXT;
    st->message_len += len;
    GW_ASSERT(st->message_len <= 4096);
    if (st->text)
        st->utf8 = gw_utf8_feed(st->utf8, data, len);
    if (last) {
        /* A complete text message is valid UTF-8. */
        GW_ASSERT(!st->text || st->utf8 == GW_UTF8_ACCEPT);
        st->message_len = 0;
        st->utf8 = GW_UTF8_ACCEPT;
    }
    return 0;
}

static int on_control(void *arg, enum ws_opcode opcode, const uint8_t *data, size_t len)
{
    (void)arg;
    (void)data;
    GW_ASSERT(len <= 125);
    GW_ASSERT(opcode == WS_OP_PING || opcode == WS_OP_PONG || opcode == WS_OP_CLOSE);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* The first byte picks the read size, as a socket would cut the stream. */
    size_t chunk = (size_t)data[0] % 32 + 1;
    data++;
    size--;
    struct ws_decoder d;
    ws_decoder_init(&d, 4096);
    struct ws_decoder_callbacks cb = {on_data, on_control};
    struct state st = {0, GW_UTF8_ACCEPT, 0};
    uint8_t *pending = malloc(size + 1);
    size_t have = 0, off = 0;
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk;
        memcpy(pending + have, data + off, n);
        have += n;
        off += n;
        long used = ws_decoder_feed(&d, pending, have, &cb, &st);
        if (used < 0) {
            uint16_t code = ws_decoder_close_code(&d);
            GW_ASSERT(code == 1002 || code == 1007 || code == 1009);
            break;
        }
        GW_ASSERT((size_t)used <= have);
        /* Only a header or a whole control frame may be left over. */
        GW_ASSERT(have - (size_t)used <= 14 + 125);
        memmove(pending, pending + used, have - (size_t)used);
        have -= (size_t)used;
    }
    free(pending);
    return 0;
}
