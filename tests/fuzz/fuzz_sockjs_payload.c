/* libFuzzer: client payloads (JSON arrays of strings) and the quoting of whatever they carry:
 * every quoted string is valid JSON that decodes back to the (valid UTF-8) message. */
#include <jansson.h>
#include <string.h>

#include "gw_alloc.h"
#include "gw_buf.h"
#include "gw_utf8.h"
#include "sockjs_frame.h"

static void check_message(void *arg, const char *msg, size_t len)
{
    (void)arg;
    struct gw_buf quoted = GW_BUF_INIT;
    sockjs_quote(&quoted, msg, len);
    json_error_t err;
    json_t *back = json_loadb(quoted.data, quoted.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    GW_ASSERT(back && json_is_string(back));
    if (gw_utf8_valid(msg, len)) {
        GW_ASSERT(json_string_length(back) == len);
        GW_ASSERT(memcmp(json_string_value(back), msg, len) == 0);
    }
    json_decref(back);
    gw_buf_release(&quoted);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sockjs_parse_payload((const char *)data, size, check_message, NULL);
    /* Quoting raw bytes never produces anything but a JSON string either. */
    check_message(NULL, (const char *)data, size);
    return 0;
}
