/* Gateway configuration: every option with its default, from the command line, the
 * environment (SOCKJS_GATEWAY_<NAME>) and a config file (--config), in that order of
 * precedence. One table (config.c) describes each option once. */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gw_error.h"
#include "gw_log.h"

#define GW_MAX_LISTEN 16
#define GW_MAX_SECRETS 2
#define GW_MAX_ENGINES 16

struct gw_str_list {
    const char *items[GW_MAX_LISTEN];
    size_t n;
    uint8_t source; /* precedence of the source that set the items */
};

struct gw_config {
    struct gw_str_list listen;
    bool test_app;
    const char *prefix;
    const char *sockjs_url;
    uint32_t heartbeat_ms;
    uint32_t heartbeat_window_ms;
    uint32_t disconnect_ms;
    uint32_t response_limit;
    bool cookie_needed;
    bool no_websocket;
    bool no_io_uring;
    uint32_t max_header_bytes;
    uint32_t max_headers;
    uint32_t max_body_bytes;
    uint32_t max_message_bytes;
    bool ws_deflate;
    uint32_t ws_deflate_min_bytes;
    uint32_t max_output_bytes;
    uint32_t max_queued_bytes;
    uint32_t header_timeout_ms;
    uint32_t idle_timeout_ms;
    uint32_t linger_ms;
    uint32_t backlog;
    uint32_t max_connections;     /* 0: the open-files limit less GW_FD_RESERVE */
    uint32_t max_sessions_per_ip; /* 0: no limit */
    uint32_t drain_ms;
    const char *log_level;
    const char *log_format;          /* "text" or "json" */
    enum gw_log_level log_threshold; /* log_level and log_format parsed by gw_config_load */
    bool log_json;
    const char *static_dir;
    /* Scoped delivery. */
    struct gw_str_list jwt_secrets;
    bool allow_anonymous;
    uint32_t auth_timeout_ms;
    uint32_t token_grace_ms;
    uint32_t max_token_lifetime_s; /* 0: no limit */
    uint32_t unknown_session_rate;
    uint32_t unknown_session_burst;
    struct gw_str_list api_listen;
    const char *api_key;
    uint32_t api_max_body_bytes;
    uint32_t max_ids;
    uint32_t max_sites;
    uint32_t max_name_bytes;
    uint32_t max_data_bytes;
    uint32_t max_publish_channels;
    uint32_t max_request_channels;
    uint32_t publish_slice_us;
    struct gw_str_list engines;
    uint32_t history_size;
    uint32_t history_ttl_s;
    uint32_t ready_wait_ms;
    uint32_t ready_max_held;
    bool presence_events;
    uint32_t presence_leave_delay_ms;
    uint32_t presence_max_ids;
    uint32_t presence_max_limit;
    uint32_t presence_query_interval_ms;
    uint32_t presence_flush_ms;
    uint32_t node_timeout_ms;
    const char *node_id;
    const char *config_file;
    bool help_printed; /* --help or --version was given and printed */
    /* Strings read from the file or the environment, freed by gw_config_cleanup. */
    char **owned;
    size_t n_owned;
};

/* Descriptors kept back from --max-connections's default for what is not a client connection:
 * the API listener and its clients, Redis connections, the epoll sets, logs. */
#define GW_FD_RESERVE 64

/* "0.1.0 (g1d0e180)": the project's version, with `git describe --always --dirty` when built
 * from a git checkout (version.c, generated header). */
const char *gw_version(void);

void gw_config_defaults(struct gw_config *cfg);
/* --max-connections, with its default (0) resolved against the process's open-files limit. */
uint32_t gw_config_max_connections(const struct gw_config *cfg);
/* Reads --config FILE (if given), the environment, then the command line. Returns 0 (with
 * help_printed set when --help, --version or --print-config was given and printed: nothing else
 * to do), or after printing an error GW_EIO (the file cannot be read) or GW_EINVAL (a bad value,
 * log level or format, or no --jwt-secret without --allow-anonymous or --test-app). */
int gw_config_load(struct gw_config *cfg, int argc, char **argv);
void gw_config_cleanup(struct gw_config *cfg);
/* One line of a --config file, parsed in place (docs/CONFIGURATION.md): `name = value`, a name
 * alone (a flag: set), blank, or a comment (`#` first, or after a blank in a bare value). A value
 * is bare (trailing blanks dropped), "..." with the escapes \ "
         \#, or '...' taken as is.
 * Returns 1 with *name and *value pointing into `line`, 0 for a line without an option, or
 * GW_EINVAL with *reason (a static string) saying what is wrong. */
int gw_config_parse_line(char *line, char **name, char **value, const char **reason);
/* The configuration as a --config file that reads back to it, the --jwt-secret values, a set
 * --api-key and an engine URL's user information shown as ***. */
void gw_config_print(const struct gw_config *cfg, FILE *out);
/* A reload: `fresh` was loaded anew (gw_config_load) from the same command line. Every option
 * whose value differs is reported, with whether it was applied to cfg (the options that take
 * effect without a restart) or needs a restart (left as it runs). cfg takes over fresh's
 * strings; clean fresh up after. */
void gw_config_reload(struct gw_config *cfg, struct gw_config *fresh,
                      void (*report)(void *arg, const char *name, bool applied), void *arg);

struct pubsub_limits;
/* The limits of one publish (API and engine alike). */
void gw_config_publish_limits(const struct gw_config *cfg, struct pubsub_limits *lim);

#endif
