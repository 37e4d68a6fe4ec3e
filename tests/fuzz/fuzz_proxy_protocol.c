/* libFuzzer: PROXY protocol headers (v1 and v2). Checks the promises of proxy_protocol.h: a
 * complete header is found whatever follows it, every prefix of a header is GW_EAGAIN, bad
 * bytes are refused no later than once the caller holds GW_PROXY_MAX_LEN bytes, and the
 * addresses are of the promised families. */
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include "gw_alloc.h"
#include "gw_error.h"
#include "proxy_protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gw_proxy_info info;
    int rc = gw_proxy_parse(data, size, &info);
    GW_ASSERT(rc > 0 || rc == GW_EAGAIN || rc == GW_EPROTO);
    if (rc == GW_EAGAIN)
        GW_ASSERT(size < GW_PROXY_MAX_LEN);
    if (rc > 0) {
        GW_ASSERT((size_t)rc <= size && rc <= GW_PROXY_MAX_LEN);
        if (info.local) {
            GW_ASSERT(info.src.ss_family == AF_UNSPEC && info.dst.ss_family == AF_UNSPEC);
        } else {
            GW_ASSERT(info.src.ss_family == AF_INET || info.src.ss_family == AF_INET6);
            GW_ASSERT(info.dst.ss_family == info.src.ss_family);
        }
        /* The header alone gives the same answer. */
        struct gw_proxy_info again;
        GW_ASSERT(gw_proxy_parse(data, (size_t)rc, &again) == rc);
        GW_ASSERT(again.local == info.local);
        GW_ASSERT(memcmp(&again.src, &info.src, sizeof(info.src)) == 0);
    }
    /* Each prefix is incomplete, or already refused when the whole is refused. */
    size_t limit = rc > 0 ? (size_t)rc : size;
    bool refused = false;
    for (size_t n = 0; n < limit; n++) {
        int part = gw_proxy_parse(data, n, &info);
        if (rc > 0)
            GW_ASSERT(part == GW_EAGAIN);
        else
            GW_ASSERT(part == GW_EAGAIN || part == GW_EPROTO);
        /* Once refused, more bytes do not make it valid. */
        GW_ASSERT(!refused || part == GW_EPROTO);
        refused = part == GW_EPROTO;
    }
    return 0;
}
