#include "sockjs_info.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

void sockjs_info_body(const struct sockjs_options *opt, struct gw_buf *out)
{
    uint32_t entropy = 0;
    /* The client uses entropy to seed ids; a short read still leaves a usable value. */
    if (getrandom(&entropy, sizeof(entropy), GRND_NONBLOCK) < 0)
        entropy = (uint32_t)(uintptr_t)out ^ 0x9e3779b9u;
    gw_buf_appendf(out,
                   "{\"websocket\": %s, \"origins\": [\"*:*\"], \"cookie_needed\": %s, "
                   "\"entropy\": %" PRIu32 "}",
                   opt->websocket ? "true" : "false", opt->cookie_needed ? "true" : "false",
                   entropy);
}

void sockjs_iframe_body(const char *sockjs_url, struct gw_buf *out)
{
    gw_buf_appendf(out,
                   "<!DOCTYPE html>\n"
                   "<html>\n"
                   "<head>\n"
                   "  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n"
                   "  <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n"
                   "  <script src=\"%s\"></script>\n"
                   "  <script>\n"
                   "    document.domain = document.domain;\n"
                   "    SockJS.bootstrap_iframe();\n"
                   "  </script>\n"
                   "</head>\n"
                   "<body>\n"
                   "  <h2>Don't panic!</h2>\n"
                   "  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>\n"
                   "</body>\n"
                   "</html>\n",
                   sockjs_url);
}
