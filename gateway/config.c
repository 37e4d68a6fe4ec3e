#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gw_config_defaults(struct gw_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->prefix = "/sockjs";
    cfg->sockjs_url = "https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js";
    cfg->heartbeat_ms = 25000;
    cfg->disconnect_ms = 5000;
    cfg->response_limit = 128 * 1024;
    cfg->websocket = true;
    cfg->max_header_bytes = 8192;
    cfg->max_headers = 64;
    cfg->max_body_bytes = 2 * 1024 * 1024;
    cfg->max_message_bytes = 2 * 1024 * 1024;
    cfg->max_output_bytes = 4 * 1024 * 1024;
    cfg->header_timeout_ms = 10000;
    cfg->idle_timeout_ms = 60000;
    cfg->linger_ms = 2000;
    cfg->backlog = 4096;
    cfg->log_level = "info";
}

enum {
    OPT_LISTEN = 256,
    OPT_TEST_APP,
    OPT_PREFIX,
    OPT_SOCKJS_URL,
    OPT_HEARTBEAT,
    OPT_DISCONNECT,
    OPT_RESPONSE_LIMIT,
    OPT_COOKIE_NEEDED,
    OPT_NO_WEBSOCKET,
    OPT_MAX_HEADER,
    OPT_MAX_HEADERS,
    OPT_MAX_BODY,
    OPT_MAX_MESSAGE,
    OPT_MAX_OUTPUT,
    OPT_HEADER_TIMEOUT,
    OPT_IDLE_TIMEOUT,
    OPT_LINGER,
    OPT_BACKLOG,
    OPT_LOG_LEVEL,
    OPT_HELP,
};

static const struct option long_options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"test-app", no_argument, NULL, OPT_TEST_APP},
    {"prefix", required_argument, NULL, OPT_PREFIX},
    {"sockjs-url", required_argument, NULL, OPT_SOCKJS_URL},
    {"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT},
    {"disconnect-delay-ms", required_argument, NULL, OPT_DISCONNECT},
    {"response-limit", required_argument, NULL, OPT_RESPONSE_LIMIT},
    {"cookie-needed", no_argument, NULL, OPT_COOKIE_NEEDED},
    {"no-websocket", no_argument, NULL, OPT_NO_WEBSOCKET},
    {"max-header-bytes", required_argument, NULL, OPT_MAX_HEADER},
    {"max-headers", required_argument, NULL, OPT_MAX_HEADERS},
    {"max-body-bytes", required_argument, NULL, OPT_MAX_BODY},
    {"max-message-bytes", required_argument, NULL, OPT_MAX_MESSAGE},
    {"max-output-bytes", required_argument, NULL, OPT_MAX_OUTPUT},
    {"header-timeout-ms", required_argument, NULL, OPT_HEADER_TIMEOUT},
    {"idle-timeout-ms", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"linger-ms", required_argument, NULL, OPT_LINGER},
    {"backlog", required_argument, NULL, OPT_BACKLOG},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *out)
{
    struct gw_config d;
    gw_config_defaults(&d);
    fprintf(out,
            "Usage: sockjs-gateway [options]\n"
            "\n"
            "  --listen ADDR:PORT         listen here (repeatable; IPv6 as [::1]:PORT)"
            " [127.0.0.1:8080]\n"
            "  --test-app                 serve the SockJS test application's prefixes\n"
            "                             (/echo, /close, ...) instead of the gateway's\n"
            "  --prefix PATH              the SockJS prefix of the gateway [%s]\n"
            "  --sockjs-url URL           client library URL in iframe.html [%s]\n"
            "  --heartbeat-ms N           heartbeat delay [%u]\n"
            "  --disconnect-delay-ms N    session lifetime without a receiver [%u]\n"
            "  --response-limit N         bytes after which a stream is ended [%u]\n"
            "  --cookie-needed            JSESSIONID cookie handling [off]\n"
            "  --no-websocket             disable the websocket transports [on]\n"
            "  --max-header-bytes N       request line + header block limit, 431 [%u]\n"
            "  --max-headers N            header count limit, 431 [%u]\n"
            "  --max-body-bytes N         request body limit, 413 [%u]\n"
            "  --max-message-bytes N      websocket message limit, close 1009 [%u]\n"
            "  --max-output-bytes N       unwritten bytes before a non-reading peer is\n"
            "                             disconnected [%u]\n"
            "  --header-timeout-ms N      time to receive a request, 408 [%u]\n"
            "  --idle-timeout-ms N        keep-alive connection idle limit [%u]\n"
            "  --linger-ms N              wait for the peer's FIN after closing [%u]\n"
            "  --backlog N                listen backlog [%u]\n"
            "  --log-level LEVEL          error, warn, info or debug [%s]\n"
            "  --help                     this text\n",
            d.prefix, d.sockjs_url, d.heartbeat_ms, d.disconnect_ms, d.response_limit,
            d.max_header_bytes, d.max_headers, d.max_body_bytes, d.max_message_bytes, d.max_output_bytes,
            d.header_timeout_ms, d.idle_timeout_ms, d.linger_ms, d.backlog, d.log_level);
}

static int parse_u32(const char *name, const char *s, uint32_t min, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v > UINT32_MAX || v < min || s[0] == '-') {
        fprintf(stderr, "sockjs-gateway: --%s: expected a number >= %u, got '%s'\n", name, min,
                s);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

int gw_config_parse_args(struct gw_config *cfg, int argc, char **argv)
{
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        const char *name = c >= OPT_LISTEN && c < OPT_HELP ? long_options[c - OPT_LISTEN].name : "";
        int rc = 0;
        switch (c) {
        case OPT_LISTEN:
            if (cfg->n_listen == GW_MAX_LISTEN) {
                fprintf(stderr, "sockjs-gateway: at most %d --listen\n", GW_MAX_LISTEN);
                return -1;
            }
            cfg->listen[cfg->n_listen++] = optarg;
            break;
        case OPT_TEST_APP:
            cfg->test_app = true;
            break;
        case OPT_PREFIX:
            if (optarg[0] != '/' || optarg[strlen(optarg) - 1] == '/') {
                fprintf(stderr, "sockjs-gateway: --prefix must start with '/' and not end "
                                "with one\n");
                return -1;
            }
            cfg->prefix = optarg;
            break;
        case OPT_SOCKJS_URL:
            cfg->sockjs_url = optarg;
            break;
        case OPT_HEARTBEAT:
            rc = parse_u32(name, optarg, 1, &cfg->heartbeat_ms);
            break;
        case OPT_DISCONNECT:
            rc = parse_u32(name, optarg, 1, &cfg->disconnect_ms);
            break;
        case OPT_RESPONSE_LIMIT:
            rc = parse_u32(name, optarg, 1, &cfg->response_limit);
            break;
        case OPT_COOKIE_NEEDED:
            cfg->cookie_needed = true;
            break;
        case OPT_NO_WEBSOCKET:
            cfg->websocket = false;
            break;
        case OPT_MAX_HEADER:
            rc = parse_u32(name, optarg, 256, &cfg->max_header_bytes);
            break;
        case OPT_MAX_HEADERS:
            rc = parse_u32(name, optarg, 8, &cfg->max_headers);
            if (rc == 0 && cfg->max_headers > 1024) {
                fprintf(stderr, "sockjs-gateway: --max-headers: at most 1024\n");
                rc = -1;
            }
            break;
        case OPT_MAX_BODY:
            rc = parse_u32(name, optarg, 0, &cfg->max_body_bytes);
            break;
        case OPT_MAX_MESSAGE:
            rc = parse_u32(name, optarg, 1, &cfg->max_message_bytes);
            break;
        case OPT_MAX_OUTPUT:
            rc = parse_u32(name, optarg, 1024, &cfg->max_output_bytes);
            break;
        case OPT_HEADER_TIMEOUT:
            rc = parse_u32(name, optarg, 1, &cfg->header_timeout_ms);
            break;
        case OPT_IDLE_TIMEOUT:
            rc = parse_u32(name, optarg, 1, &cfg->idle_timeout_ms);
            break;
        case OPT_LINGER:
            rc = parse_u32(name, optarg, 1, &cfg->linger_ms);
            break;
        case OPT_BACKLOG:
            rc = parse_u32(name, optarg, 1, &cfg->backlog);
            break;
        case OPT_LOG_LEVEL:
            cfg->log_level = optarg;
            break;
        case OPT_HELP:
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
        if (rc)
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "sockjs-gateway: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (cfg->n_listen == 0)
        cfg->listen[cfg->n_listen++] = "127.0.0.1:8080";
    return 0;
}
