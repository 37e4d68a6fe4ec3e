#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "gw_alloc.h"
#include "gw_error.h"
#include "jwt.h"
#include "pubsub_channel.h"
#include "pubsub_publish.h"
#include "static.h"

/* OPT_HELP, OPT_VERSION and OPT_PRINT_CONFIG print and end: command line only. */
enum opt_type { OPT_U32, OPT_STR, OPT_FLAG, OPT_LIST, OPT_HELP, OPT_VERSION, OPT_PRINT_CONFIG };

/* Sources, in increasing precedence. */
enum { SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_ARGS };

struct opt {
    const char *name;
    enum opt_type type;
    size_t offset;
    uint32_t min;
    uint32_t max;    /* OPT_LIST: capacity */
    const char *arg; /* placeholder in --help */
    const char *help;
};

#define U32(n, field, lo, hi, h)                                                                   \
    {                                                                                              \
        n, OPT_U32, offsetof(struct gw_config, field), lo, hi, "N", h                              \
    }
#define STR(n, field, a, h)                                                                        \
    {                                                                                              \
        n, OPT_STR, offsetof(struct gw_config, field), 0, 0, a, h                                  \
    }
#define FLAG(n, field, h)                                                                          \
    {                                                                                              \
        n, OPT_FLAG, offsetof(struct gw_config, field), 0, 0, NULL, h                              \
    }
#define LIST(n, field, cap, a, h)                                                                  \
    {                                                                                              \
        n, OPT_LIST, offsetof(struct gw_config, field), 0, cap, a, h                               \
    }

static const struct opt options[] = {
    LIST("listen", listen, GW_MAX_LISTEN, "ADDR:PORT[,proxy][,trusted]",
         "SockJS listener, repeatable; IPv6 as [::1]:PORT; ,proxy: connections start with a "
         "PROXY protocol v1/v2 header; ,trusted: X-Forwarded-For names the client"),
    FLAG("test-app", test_app, "serve the SockJS test application's prefixes (/echo, ...)"),
    STR("prefix", prefix, "PATH", "the SockJS prefix"),
    STR("sockjs-url", sockjs_url, "URL",
        "client library URL in iframe.html (default: the gateway's own copy)"),
    U32("heartbeat-ms", heartbeat_ms, 1, UINT32_MAX, "heartbeat delay"),
    U32("heartbeat-window-ms", heartbeat_window_ms, 0, UINT32_MAX,
        "a heartbeat may come this much late (at most a tenth of --heartbeat-ms), so that those "
        "due together go out in one loop turn"),
    U32("disconnect-delay-ms", disconnect_ms, 1, UINT32_MAX, "session lifetime without a receiver"),
    U32("response-limit", response_limit, 1, UINT32_MAX, "bytes after which a stream ends"),
    FLAG("cookie-needed", cookie_needed, "JSESSIONID cookie handling"),
    FLAG("no-websocket", no_websocket, "disable the websocket transports"),
    U32("max-header-bytes", max_header_bytes, 256, UINT32_MAX,
        "request line + header block limit (431)"),
    U32("max-headers", max_headers, 8, 1024, "header count limit (431)"),
    U32("max-body-bytes", max_body_bytes, 0, UINT32_MAX, "request body limit (413)"),
    U32("max-message-bytes", max_message_bytes, 1, UINT32_MAX,
        "websocket message limit (close 1009)"),
    FLAG("ws-deflate", ws_deflate,
         "accept permessage-deflate (RFC 7692) on websockets: published messages are "
         "compressed once for all such recipients; client messages inflate up to "
         "--max-message-bytes (close 1009)"),
    U32("ws-deflate-min-bytes", ws_deflate_min_bytes, 0, UINT32_MAX,
        "websocket messages shorter than this are sent uncompressed"),
    U32("max-output-bytes", max_output_bytes, 1024, UINT32_MAX,
        "unwritten bytes before a non-reading connection is dropped"),
    U32("max-queued-bytes", max_queued_bytes, 0, UINT32_MAX,
        "unsent bytes before a session is closed as a slow consumer (4008); 0: no limit"),
    FLAG("no-io-uring", no_io_uring,
         "write a loop turn's output with one writev per connection instead of one io_uring "
         "submission for all of them (used anyway where io_uring is unavailable)"),
    U32("header-timeout-ms", header_timeout_ms, 1, UINT32_MAX, "time to receive a request (408)"),
    U32("idle-timeout-ms", idle_timeout_ms, 1, UINT32_MAX, "keep-alive connection idle limit"),
    U32("linger-ms", linger_ms, 1, UINT32_MAX,
        "bound on the final flush and the wait for the peer's FIN after closing"),
    U32("backlog", backlog, 1, UINT32_MAX, "listen backlog"),
    U32("max-connections", max_connections, 0, UINT32_MAX,
        "client connections at once; past it a new connection gets 503 and is closed; 0: the "
        "open-files limit less 64 (kept for Redis, the API and logs)"),
    U32("max-sessions-per-ip", max_sessions_per_ip, 0, UINT32_MAX,
        "sessions one client address (an IPv6 /64) may hold at once, closed ones until the "
        "disconnect delay frees them; past it a new session gets 429; 0: no limit"),
    U32("drain-ms", drain_ms, 0, UINT32_MAX,
        "on SIGTERM/SIGINT, close every session (c[1001,\"Going away\"]) spread over this "
        "long, then exit; a second signal exits at once"),
    STR("log-level", log_level, "LEVEL", "error, warn, info or debug"),
    STR("log-format", log_format, "FORMAT",
        "text (\"<time> <LEVEL> <message>\") or json (one {\"ts\",\"level\",\"msg\"} object "
        "per line)"),
    STR("static-dir", static_dir, "DIR",
        "web files (sockjs-gateway.js, demo.html, vendor/sockjs-client-1.6.1.min.js) read once "
        "at start from DIR instead of the built-in copies; auto: an install's "
        "share/sockjs-gateway/web next to the binary if any; embedded: the built-in copies"),
    LIST("jwt-secret", jwt_secrets, GW_MAX_SECRETS, "SECRET",
         "HS256 secret for session tokens; give two while rotating"),
    FLAG("allow-anonymous", allow_anonymous,
         "let sessions without a token receive their site's global scope"),
    U32("auth-timeout-ms", auth_timeout_ms, 1, UINT32_MAX,
        "time for a session to send its token (4003)"),
    U32("token-grace-ms", token_grace_ms, 0, UINT32_MAX,
        "time a session whose token expired has to send a fresh one (else 4002)"),
    U32("max-token-lifetime-s", max_token_lifetime_s, 0, UINT32_MAX,
        "a token whose exp is further ahead is refused (4001); 0: no limit"),
    U32("unknown-session-rate", unknown_session_rate, 0, UINT32_MAX,
        "requests per second and client address naming no session (or a session without its "
        "token) before 429; 0: no limit"),
    U32("unknown-session-burst", unknown_session_burst, 1, UINT32_MAX,
        "such requests a client address may make at once"),
    LIST("api-listen", api_listen, GW_MAX_LISTEN, "ADDR:PORT", "publish API listener"),
    STR("api-key", api_key, "KEY", "key the publish API expects (Authorization: Bearer KEY)"),
    U32("api-max-body-bytes", api_max_body_bytes, 256, UINT32_MAX, "publish request limit (413)"),
    U32("max-ids", max_ids, 1, UINT32_MAX, "ids in one publish (400)"),
    U32("max-sites", max_sites, 1, UINT32_MAX, "sites in one publish (400)"),
    U32("max-publish-channels", max_publish_channels, 1, UINT32_MAX,
        "channels of one publish, sites x max(1, ids) (400)"),
    U32("max-request-channels", max_request_channels, 1, UINT32_MAX,
        "channels of all the publishes of one API request (400)"),
    U32("publish-slice-us", publish_slice_us, 0, UINT32_MAX,
        "delivery time per loop turn for publishes of many channels; the rest continues on "
        "the next turn, after pending I/O; 0: every publish delivered at once"),
    U32("max-name-bytes", max_name_bytes, 1, PUBSUB_NAME_MAX_BYTES,
        "one site, id or event name (400)"),
    U32("max-data-bytes", max_data_bytes, 1, UINT32_MAX, "data of one publish (413)"),
    LIST("engine", engines, GW_MAX_ENGINES, "URL",
         "local, or Redis: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] (HOST a name, IPv4 or "
         "[IPv6]; USER:PASSWORD percent-encoded) or unix://[[USER]:PASSWORD@]/PATH[?db=N]; no "
         "rediss:// (TLS: tunnel on loopback). Repeatable: shards"),
    FLAG("presence-events", presence_events,
         "presence.join / presence.leave events on company channels"),
    U32("presence-leave-delay-ms", presence_leave_delay_ms, 0, UINT32_MAX,
        "a user's last session in a company counts this long after it closes (a reload or a "
        "polling reconnect is no leave and join)"),
    U32("presence-max-ids", presence_max_ids, 1, UINT32_MAX, "ids in one presence query (400)"),
    U32("presence-max-limit", presence_max_limit, 1, UINT32_MAX,
        "users in one presence answer, the most a query's limit may ask (400)"),
    U32("presence-query-interval-ms", presence_query_interval_ms, 0, 3600000,
        "a browser session may ask for presence once per interval (else an error message); 0: "
        "no limit"),
    U32("presence-flush-ms", presence_flush_ms, 0, 60000,
        "Redis engine: session opens and closes go to Redis together this often (0: at the end "
        "of each loop turn)"),
    U32("node-timeout-ms", node_timeout_ms, 100, UINT32_MAX,
        "Redis engine: a node silent this long is dropped from presence by the others"),
    STR("node-id", node_id, "ID",
        "Redis engine: this node's presence id, stable across restarts (default HOST/LISTEN)"),
    U32("history-size", history_size, 0, 100000,
        "messages each channel keeps for recovery (0: no history, recovery always fails)"),
    U32("history-ttl-s", history_ttl_s, 0, 30u * 24 * 3600,
        "a channel's history goes this long after its last message (0: never)"),
    U32("ready-wait-ms", ready_wait_ms, 1, 3600000,
        "how long a new session's ready message waits for the engine's answer, holding live "
        "messages back; then it is sent without positions"),
    U32("ready-max-held", ready_max_held, 0, 1000000,
        "live messages a session holds back while its ready message waits; one more and it is "
        "sent without positions"),
    STR("config", config_file, "FILE",
        "read options from FILE: \"name = value\" lines, # comments, \"...\" (with \\ escapes) "
        "or '...' quoting (docs/CONFIGURATION.md)"),
    {"print-config", OPT_PRINT_CONFIG, 0, 0, 0, NULL,
     "print the effective configuration as a --config file, secrets masked, and exit"},
    {"help", OPT_HELP, 0, 0, 0, NULL, "this text"},
    {"version", OPT_VERSION, 0, 0, 0, NULL, "print \"sockjs-gateway <version>\" and exit"},
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

void gw_config_defaults(struct gw_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->prefix = "/sockjs";
    cfg->sockjs_url = GW_STATIC_SOCKJS_PATH;
    cfg->heartbeat_ms = 25000;
    cfg->heartbeat_window_ms = 1000;
    cfg->disconnect_ms = 5000;
    cfg->response_limit = 128 * 1024;
    cfg->max_header_bytes = 8192;
    cfg->max_headers = 64;
    cfg->max_body_bytes = 2 * 1024 * 1024;
    cfg->max_message_bytes = 2 * 1024 * 1024;
    /* Below ~64 bytes deflate without context saves a few bytes at best (less than a TCP
     * header); every published message's envelope alone is longer. */
    cfg->ws_deflate_min_bytes = 64;
    cfg->max_output_bytes = 4 * 1024 * 1024;
    cfg->max_queued_bytes = 1024 * 1024;
    cfg->header_timeout_ms = 10000;
    cfg->idle_timeout_ms = 60000;
    cfg->linger_ms = 2000;
    cfg->backlog = 4096;
    /* Generous: behind NAT (an office, a carrier-grade NAT address) every browser tab is a
     * session, and behind a proxy that names no client (no ,proxy or ,trusted listener) every
     * client counts under the proxy's address, where 1,000 would refuse a modest site. One
     * address still cannot hold more than some MiB of sessions, instead of any number. */
    cfg->max_sessions_per_ip = 10000;
    cfg->drain_ms = 5000;
    cfg->log_level = "info";
    cfg->log_format = "text";
    cfg->static_dir = "auto";
    cfg->auth_timeout_ms = 10000;
    cfg->token_grace_ms = 30000;
    cfg->max_token_lifetime_s = GW_JWT_DEFAULT_MAX_LIFETIME_S;
    cfg->unknown_session_rate = 5;
    cfg->unknown_session_burst = 20;
    cfg->api_key = "";
    cfg->api_max_body_bytes = 1024 * 1024;
    cfg->max_ids = 10000;
    cfg->max_sites = 100;
    cfg->max_name_bytes = 256;
    cfg->max_publish_channels = 10000;
    /* Ten of the largest publishes: an array stays one request, the memory it pins bounded. */
    cfg->max_request_channels = 10000;
    cfg->presence_leave_delay_ms = 5000;
    cfg->history_size = 100;
    cfg->history_ttl_s = 300;
    cfg->ready_wait_ms = 5000;
    cfg->ready_max_held = 1000;
    cfg->presence_max_ids = 100;
    cfg->presence_max_limit = 10000;
    cfg->presence_flush_ms = 10;
    cfg->presence_query_interval_ms = 1000;
    cfg->node_timeout_ms = 15000;
    cfg->node_id = "";
    /* Each slice is followed by the end-of-turn flush of the sessions it reached, which costs
     * several times the slice itself when every message goes to a different session (one
     * write each): 250 us keeps a turn under ~10 ms during a 10,000-session publish
     * (bench/publish_stall.py). */
    cfg->publish_slice_us = 250;
    cfg->max_data_bytes = 64 * 1024;
    cfg->listen.items[cfg->listen.n++] = "127.0.0.1:8080";
    cfg->api_listen.items[cfg->api_listen.n++] = "127.0.0.1:8081";
    cfg->engines.items[cfg->engines.n++] = "local";
}

uint32_t gw_config_max_connections(const struct gw_config *cfg)
{
    if (cfg->max_connections)
        return cfg->max_connections;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur > UINT32_MAX)
        return UINT32_MAX;
    /* A tiny limit still leaves room for a few clients rather than none. */
    return rl.rlim_cur > 2 * GW_FD_RESERVE ? (uint32_t)rl.rlim_cur - GW_FD_RESERVE
                                           : (uint32_t)rl.rlim_cur / 2;
}

void gw_config_cleanup(struct gw_config *cfg)
{
    for (size_t i = 0; i < cfg->n_owned; i++)
        gw_free(cfg->owned[i]);
    gw_free(cfg->owned);
    cfg->owned = NULL;
    cfg->n_owned = 0;
}

static const char *keep(struct gw_config *cfg, const char *s, size_t len)
{
    cfg->owned = gw_realloc(cfg->owned, (cfg->n_owned + 1) * sizeof(*cfg->owned));
    return cfg->owned[cfg->n_owned++] = gw_strndup(s, len);
}

static void print_default(FILE *out, const struct opt *o, const struct gw_config *d)
{
    const void *field = (const char *)d + o->offset;
    switch (o->type) {
    case OPT_U32:
        fprintf(out, " [%u]", *(const uint32_t *)field);
        break;
    case OPT_STR: {
        const char *v = *(const char *const *)field;
        if (v && *v)
            fprintf(out, " [%s]", v);
        break;
    }
    case OPT_LIST: {
        const struct gw_str_list *l = field;
        for (size_t i = 0; i < l->n; i++)
            fprintf(out, "%s%s", i ? " " : " [", l->items[i]);
        if (l->n)
            fputc(']', out);
        break;
    }
    default:
        break;
    }
}

static void usage(FILE *out)
{
    struct gw_config d;
    gw_config_defaults(&d);
    fprintf(out, "Usage: sockjs-gateway [options]\n\nEvery option can also be set in the "
                 "environment as SOCKJS_GATEWAY_<NAME> (e.g.\nSOCKJS_GATEWAY_MAX_IDS=500; "
                 "repeatable ones separated by spaces or commas, a\nlistener's ,proxy and "
                 ",trusted stay with its address) or in a --config file\n(\"name = value\" "
                 "lines); the command line wins over the environment, which wins over\nthe "
                 "file. A --jwt-secret is required unless --allow-anonymous or --test-app is "
                 "given.\n\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct opt *o = &options[i];
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(out, "  %-28s %s", left, o->help);
        print_default(out, o, &d);
        fputc('\n', out);
    }
}

static const struct opt *find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0)
            return &options[i];
    }
    return NULL;
}

/* Applies one value from a source; `value` must outlive cfg (argv, or kept). */
static int apply(struct gw_config *cfg, const struct opt *o, const char *value, int source,
                 const char *where)
{
    void *field = (char *)cfg + o->offset;
    switch (o->type) {
    case OPT_U32: {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value || *end || value[0] == '-' || v < o->min || v > o->max) {
            fprintf(stderr, "sockjs-gateway: %s: %s: expected a number from %u to %u, got '%s'\n",
                    where, o->name, o->min, o->max, value);
            return GW_EINVAL;
        }
        *(uint32_t *)field = (uint32_t)v;
        return 0;
    }
    case OPT_STR:
        *(const char **)field = value;
        return 0;
    case OPT_FLAG:
        if (strcmp(value, "") == 0 || strcmp(value, "1") == 0 || strcmp(value, "true") == 0 ||
            strcmp(value, "yes") == 0) {
            *(bool *)field = true;
        } else if (strcmp(value, "0") == 0 || strcmp(value, "false") == 0 ||
                   strcmp(value, "no") == 0) {
            *(bool *)field = false;
        } else {
            fprintf(stderr, "sockjs-gateway: %s: %s: expected true or false, got '%s'\n", where,
                    o->name, value);
            return GW_EINVAL;
        }
        return 0;
    case OPT_LIST: {
        struct gw_str_list *l = field;
        /* A source replaces what a lower one (or the default) set, and adds to its own. */
        if (l->source < source) {
            l->n = 0;
            l->source = (uint8_t)source;
        }
        if (l->n == o->max) {
            fprintf(stderr, "sockjs-gateway: %s: %s: at most %u values\n", where, o->name, o->max);
            return GW_EINVAL;
        }
        l->items[l->n++] = value;
        return 0;
    }
    case OPT_HELP:
    case OPT_VERSION:
    case OPT_PRINT_CONFIG:
        break;
    }
    return GW_EINVAL;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* What may follow a value: blanks, then the end of the line or a comment. */
static bool only_comment_left(const char *s)
{
    while (is_blank(*s))
        s++;
    return *s == '\0' || *s == '#';
}

/* "..." in place: the escapes \\ \" \n \t \# are replaced by what they stand for. */
static int unquote_double(char *s, char **value, const char **reason)
{
    char *out = s++;
    *value = out;
    for (;;) {
        char c = *s++;
        if (c == '\0' || c == '\n') {
            *reason = "no closing '\"'";
            return GW_EINVAL;
        }
        if (c == '"')
            break;
        if (c == '\\') {
            switch (c = *s++) {
            case '\\':
            case '"':
            case '#':
                break;
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            default:
                *reason = "unknown escape in \"...\" (known: \\\\ \\\" \\n \\t \\#)";
                return GW_EINVAL;
            }
        }
        *out++ = c;
    }
    if (!only_comment_left(s)) {
        *reason = "text after the closing '\"'";
        return GW_EINVAL;
    }
    *out = '\0';
    return 1;
}

int gw_config_parse_line(char *line, char **name, char **value, const char **reason)
{
    char *s = line;
    while (is_blank(*s))
        s++;
    if (*s == '\0' || *s == '#')
        return 0;
    *name = s;
    while (*s && *s != '=' && !is_blank(*s))
        s++;
    char *name_end = s;
    while (is_blank(*s))
        s++;
    if (*s == '\0' || *s == '#') {
        /* A name alone: a flag, set. */
        *name_end = '\0';
        *value = name_end;
        return 1;
    }
    if (*s != '=' || name_end == *name) {
        *reason = name_end == *name ? "no option name before '='" : "expected '=' after the name";
        return GW_EINVAL;
    }
    *name_end = '\0';
    s++;
    while (is_blank(*s))
        s++;
    if (*s == '"')
        return unquote_double(s, value, reason);
    if (*s == '\'') {
        char *close = strchr(s + 1, '\'');
        if (!close || memchr(s + 1, '\n', (size_t)(close - s - 1))) {
            *reason = "no closing \"'\"";
            return GW_EINVAL;
        }
        if (!only_comment_left(close + 1)) {
            *reason = "text after the closing \"'\"";
            return GW_EINVAL;
        }
        *close = '\0';
        *value = s + 1;
        return 1;
    }
    /* Unquoted: up to a '#' that starts the value or follows a blank, less trailing blanks. */
    char *end = s;
    while (*end && !(*end == '#' && (end == s || is_blank(end[-1]))))
        end++;
    while (end > s && is_blank(end[-1]))
        end--;
    *end = '\0';
    *value = s;
    return 1;
}

static bool command_line_only(const struct opt *o)
{
    return o->type >= OPT_HELP || strcmp(o->name, "config") == 0;
}

static int load_file(struct gw_config *cfg, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "sockjs-gateway: --config %s: %s\n", path, strerror(errno));
        return GW_EIO;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        lineno++;
        char *name, *value;
        const char *reason = NULL;
        int found = gw_config_parse_line(line, &name, &value, &reason);
        if (found == 0)
            continue;
        char where[320];
        snprintf(where, sizeof(where), "%.256s:%d", path, lineno);
        if (found < 0) {
            fprintf(stderr, "sockjs-gateway: %s: %s\n", where, reason);
            rc = GW_EINVAL;
            break;
        }
        const struct opt *o = find_option(name, strlen(name));
        if (!o || command_line_only(o)) {
            fprintf(stderr, "sockjs-gateway: %s: unknown option '%s'\n", where, name);
            rc = GW_EINVAL;
            break;
        }
        rc = apply(cfg, o, keep(cfg, value, strlen(value)), SRC_FILE, where);
    }
    free(line);
    fclose(f);
    return rc;
}

static bool is_listener_flag(const char *s, size_t len)
{
    return (len == 5 && memcmp(s, "proxy", 5) == 0) || (len == 7 && memcmp(s, "trusted", 7) == 0);
}

/* A repeatable option from the environment: values separated by blanks or commas. A listener's
 * ",proxy" and ",trusted" are no values of their own: they stay with the address before them
 * ("127.0.0.1:9312,proxy 127.0.0.1:9313" is two listeners, the first with PROXY protocol). */
static int load_env_list(struct gw_config *cfg, const struct opt *o, const char *v, const char *var)
{
    bool listener = o->offset == offsetof(struct gw_config, listen) ||
                    o->offset == offsetof(struct gw_config, api_listen);
    const char *item = NULL;
    size_t item_len = 0;
    for (const char *p = v;;) {
        size_t len = strcspn(p, " \t\r\n,");
        if (listener && item && p == item + item_len + 1 && p[-1] == ',' &&
            is_listener_flag(p, len)) {
            item_len += 1 + len;
        } else if (len) {
            if (item && apply(cfg, o, keep(cfg, item, item_len), SRC_ENV, var) != 0)
                return GW_EINVAL;
            item = p;
            item_len = len;
        }
        if (!p[len])
            break;
        p += len + 1;
    }
    if (item && apply(cfg, o, keep(cfg, item, item_len), SRC_ENV, var) != 0)
        return GW_EINVAL;
    return 0;
}

static int load_env(struct gw_config *cfg)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct opt *o = &options[i];
        if (command_line_only(o))
            continue;
        char var[64] = "SOCKJS_GATEWAY_";
        size_t n = strlen(var);
        for (const char *p = o->name; *p && n < sizeof(var) - 1; p++)
            var[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        var[n] = '\0';
        const char *v = getenv(var);
        if (!v)
            continue;
        int rc = o->type == OPT_LIST ? load_env_list(cfg, o, v, var)
                                     : apply(cfg, o, keep(cfg, v, strlen(v)), SRC_ENV, var);
        if (rc != 0)
            return GW_EINVAL;
    }
    return 0;
}

/* Options whose values --print-config never shows. */
static bool is_secret(const struct opt *o)
{
    return strcmp(o->name, "jwt-secret") == 0 || strcmp(o->name, "api-key") == 0;
}

/* A value as the file syntax reads it back: bare when that is unambiguous, else "..." with
 * escapes. */
static void print_value(FILE *out, const char *name, const char *v)
{
    bool bare = v[0] != '\0' && v[0] != '"' && v[0] != '\'';
    for (const char *p = v; *p && bare; p++)
        bare = !is_blank(*p) && *p != '#' && (unsigned char)*p >= 0x20;
    if (bare) {
        fprintf(out, "%s = %s\n", name, v);
        return;
    }
    fprintf(out, "%s = \"", name);
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else
            fputc(*p, out);
    }
    fputs("\"\n", out);
}

/* "redis://user:password@host" without its user information. */
static void print_engine(FILE *out, const char *name, const char *url)
{
    const char *scheme_end = strstr(url, "://");
    const char *host = scheme_end ? scheme_end + 3 : NULL;
    const char *at = host ? strchr(host, '@') : NULL;
    if (!at || memchr(host, '/', (size_t)(at - host))) {
        print_value(out, name, url);
        return;
    }
    char *masked = gw_malloc(strlen(url) + 4);
    sprintf(masked, "%.*s***%s", (int)(host - url), url, at);
    print_value(out, name, masked);
    gw_free(masked);
}

void gw_config_print(const struct gw_config *cfg, FILE *out)
{
    fprintf(out,
            "# sockjs-gateway %s: the effective configuration (defaults, --config file, "
            "environment, command line); secrets shown as ***\n",
            gw_version());
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct opt *o = &options[i];
        if (command_line_only(o))
            continue;
        const void *field = (const char *)cfg + o->offset;
        switch (o->type) {
        case OPT_U32:
            fprintf(out, "%s = %u\n", o->name, *(const uint32_t *)field);
            break;
        case OPT_FLAG:
            fprintf(out, "%s = %s\n", o->name, *(const bool *)field ? "true" : "false");
            break;
        case OPT_STR: {
            const char *v = *(const char *const *)field;
            print_value(out, o->name, is_secret(o) && v && *v ? "***" : v ? v : "");
            break;
        }
        case OPT_LIST: {
            const struct gw_str_list *l = field;
            if (l->n == 0)
                fprintf(out, "# %s: none\n", o->name);
            for (size_t k = 0; k < l->n; k++) {
                if (is_secret(o))
                    print_value(out, o->name, "***");
                else if (o->offset == offsetof(struct gw_config, engines))
                    print_engine(out, o->name, l->items[k]);
                else
                    print_value(out, o->name, l->items[k]);
            }
            break;
        }
        case OPT_HELP:
        case OPT_VERSION:
        case OPT_PRINT_CONFIG:
            break;
        }
    }
}

int gw_config_load(struct gw_config *cfg, int argc, char **argv)
{
    struct option long_options[N_OPTIONS + 1];
    for (size_t i = 0; i < N_OPTIONS; i++) {
        long_options[i] = (struct option){options[i].name,
                                          options[i].type == OPT_FLAG || options[i].type >= OPT_HELP
                                              ? no_argument
                                              : required_argument,
                                          NULL, (int)i + 256};
    }
    long_options[N_OPTIONS] = (struct option){NULL, 0, NULL, 0};

    /* The file comes first (lowest precedence), so find --config before anything else. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            cfg->config_file = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            cfg->config_file = argv[i] + 9;
    }
    if (!cfg->config_file)
        cfg->config_file = getenv("SOCKJS_GATEWAY_CONFIG");
    int rc = cfg->config_file ? load_file(cfg, cfg->config_file) : 0;
    if (rc == 0)
        rc = load_env(cfg);
    if (rc != 0)
        return rc;

    int c;
    bool print_config = false;
    optind = 1;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            cfg->help_printed = true;
            return 0;
        }
        if (c < 256 || c >= 256 + (int)N_OPTIONS) {
            /* getopt has named the option: one line more, not the whole help. */
            fprintf(stderr, "sockjs-gateway: see 'sockjs-gateway --help' for the options\n");
            return GW_EINVAL;
        }
        const struct opt *o = &options[c - 256];
        if (o->type == OPT_HELP) {
            usage(stdout);
            cfg->help_printed = true;
            return 0;
        }
        if (o->type == OPT_VERSION) {
            printf("sockjs-gateway %s\n", gw_version());
            cfg->help_printed = true;
            return 0;
        }
        if (o->type == OPT_PRINT_CONFIG) {
            /* Printed once every option is read: later ones count too. */
            print_config = true;
            continue;
        }
        char where[64];
        snprintf(where, sizeof(where), "--%s", o->name);
        if (apply(cfg, o, o->type == OPT_FLAG ? "" : optarg, SRC_ARGS, where) != 0)
            return GW_EINVAL;
    }
    if (optind < argc) {
        fprintf(stderr, "sockjs-gateway: unexpected argument '%s'\n", argv[optind]);
        return GW_EINVAL;
    }
    if (cfg->prefix[0] != '/' || cfg->prefix[strlen(cfg->prefix) - 1] == '/') {
        fprintf(stderr, "sockjs-gateway: prefix must start with '/' and not end with one\n");
        return GW_EINVAL;
    }
    if (gw_log_parse_level(cfg->log_level, &cfg->log_threshold) != 0) {
        fprintf(stderr, "sockjs-gateway: --log-level: unknown level '%s'\n", cfg->log_level);
        return GW_EINVAL;
    }
    if (gw_log_parse_format(cfg->log_format, &cfg->log_json) != 0) {
        fprintf(stderr, "sockjs-gateway: --log-format: expected text or json, got '%s'\n",
                cfg->log_format);
        return GW_EINVAL;
    }
    if (print_config) {
        gw_config_print(cfg, stdout);
        cfg->help_printed = true;
        return 0;
    }
    /* Without a secret every token is refused: a gateway that silently serves nobody is a
     * configuration mistake, unless anonymous sessions are what is wanted. */
    if (!cfg->test_app && cfg->jwt_secrets.n == 0 && !cfg->allow_anonymous) {
        fprintf(stderr, "sockjs-gateway: no --jwt-secret (or SOCKJS_GATEWAY_JWT_SECRET, or "
                        "jwt-secret in the --config file): give one, or --allow-anonymous to "
                        "serve sessions without tokens only\n");
        return GW_EINVAL;
    }
    return 0;
}

/* What a reload (SIGHUP) applies: options read from the configuration at each use, or applied
 * by the caller after gw_config_reload (log-level, log-format, api-max-body-bytes). Everything else
 * is copied into the running parts at start and needs a restart: listeners, engines, the timer
 * queues' durations, and the publish limits (every node of a cluster must agree on them). */
/* One name per line (clang-format would pack them): branches that add names then merge. */
/* clang-format off */
static const char *const live_options[] = {
    "jwt-secret",
    "api-key",
    "log-level",
    "log-format",
    "api-max-body-bytes",
    "allow-anonymous",
    "token-grace-ms",
    "max-token-lifetime-s",
    "max-request-channels",
    "presence-max-ids",
    "presence-max-limit",
    "presence-query-interval-ms",
    "ready-max-held",
};
/* clang-format on */

static bool is_live(const struct opt *o)
{
    for (size_t i = 0; i < sizeof(live_options) / sizeof(live_options[0]); i++)
        if (strcmp(live_options[i], o->name) == 0)
            return true;
    return false;
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_value(const struct opt *o, const struct gw_config *a, const struct gw_config *b)
{
    const void *x = (const char *)a + o->offset, *y = (const char *)b + o->offset;
    switch (o->type) {
    case OPT_U32:
        return *(const uint32_t *)x == *(const uint32_t *)y;
    case OPT_FLAG:
        return *(const bool *)x == *(const bool *)y;
    case OPT_STR:
        return same_str(*(const char *const *)x, *(const char *const *)y);
    case OPT_LIST: {
        const struct gw_str_list *l = x, *m = y;
        if (l->n != m->n)
            return false;
        for (size_t i = 0; i < l->n; i++)
            if (!same_str(l->items[i], m->items[i]))
                return false;
        return true;
    }
    case OPT_HELP:
    case OPT_VERSION:
    case OPT_PRINT_CONFIG:
        break;
    }
    return true;
}

void gw_config_reload(struct gw_config *cfg, struct gw_config *fresh,
                      void (*report)(void *arg, const char *name, bool applied), void *arg)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct opt *o = &options[i];
        if (command_line_only(o) || same_value(o, cfg, fresh))
            continue;
        bool live = is_live(o);
        if (live) {
            size_t size = o->type == OPT_U32    ? sizeof(uint32_t)
                          : o->type == OPT_FLAG ? sizeof(bool)
                          : o->type == OPT_STR  ? sizeof(const char *)
                                                : sizeof(struct gw_str_list);
            memcpy((char *)cfg + o->offset, (const char *)fresh + o->offset, size);
        }
        report(arg, o->name, live);
    }
    /* The running configuration may now point into fresh's strings: it keeps them all (a few
     * bytes per reload). */
    cfg->owned = gw_realloc(cfg->owned, (cfg->n_owned + fresh->n_owned) * sizeof(*cfg->owned));
    memcpy(cfg->owned + cfg->n_owned, fresh->owned, fresh->n_owned * sizeof(*cfg->owned));
    cfg->n_owned += fresh->n_owned;
    gw_free(fresh->owned);
    fresh->owned = NULL;
    fresh->n_owned = 0;
}

void gw_config_publish_limits(const struct gw_config *cfg, struct pubsub_limits *lim)
{
    pubsub_limits_defaults(lim);
    lim->max_ids = cfg->max_ids;
    lim->max_sites = cfg->max_sites;
    lim->max_name_bytes = cfg->max_name_bytes;
    lim->max_data_bytes = cfg->max_data_bytes;
    lim->max_channels = cfg->max_publish_channels;
}
