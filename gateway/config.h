/* Gateway configuration: every limit with its default; parsed from the command line. */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_MAX_LISTEN 16

struct gw_config {
    const char *listen[GW_MAX_LISTEN];
    size_t n_listen;
    bool test_app;
    const char *prefix;
    const char *sockjs_url;
    uint32_t heartbeat_ms;
    uint32_t disconnect_ms;
    uint32_t response_limit;
    bool cookie_needed;
    bool websocket;
    uint32_t max_header_bytes;
    uint32_t max_headers;
    uint32_t max_body_bytes;
    uint32_t max_message_bytes;
    uint32_t max_output_bytes;
    uint32_t header_timeout_ms;
    uint32_t idle_timeout_ms;
    uint32_t linger_ms;
    uint32_t backlog;
    const char *log_level;
};

void gw_config_defaults(struct gw_config *cfg);
/* Returns 0, 1 when --help was printed, or -1 after printing an error. */
int gw_config_parse_args(struct gw_config *cfg, int argc, char **argv);

#endif
