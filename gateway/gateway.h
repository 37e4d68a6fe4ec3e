/* The gateway process: listeners, connections and the SockJS prefixes they route to. */
#ifndef GATEWAY_H
#define GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "gw_error.h"
#include "gw_log.h"
#include "http_conn.h"
#include "transport.h"

struct event_base;
struct event;
struct evconnlistener;

/* Listener options, after the address: "127.0.0.1:8080,proxy,trusted". */
enum gw_listener_flags {
    GW_LISTEN_PROXY = 1,   /* every connection starts with a PROXY protocol header (v1 or v2) */
    GW_LISTEN_TRUSTED = 2, /* X-Forwarded-For names the client (a proxy we trust is in front) */
};

struct gw_listener {
    struct gw_server *srv;
    struct evconnlistener *l;
    unsigned flags;
};

struct gw_route {
    const char *prefix;
    size_t prefix_len;
    struct sockjs_server *server;
};

#define GW_MAX_ROUTES 16

struct gw_server;

/* Answers one parsed request: the SockJS router, or the publish API. */
typedef void (*gw_route_fn)(struct gw_server *srv, struct tp_request *req, const char *path,
                            size_t path_len);

/* What the listeners did with connections, for /api/stats and /metrics. */
struct gw_accept_stats {
    uint64_t accepted;
    uint64_t refused_limit; /* over --max-connections: answered 503 and closed */
    uint64_t refused_drain; /* requests answered 503 while draining */
    uint64_t refused_proxy; /* ,proxy listeners: no valid PROXY header (in time) */
    uint64_t paused;        /* times accepting paused for lack of descriptors */
    uint64_t bytes_written; /* to the connections' sockets */
};

struct gw_drain;
struct gw_health;

struct gw_server {
    struct event_base *base;
    const struct gw_config *cfg;
    gw_route_fn route;
    void *route_arg;
    uint32_t max_body_bytes;        /* cfg->max_body_bytes unless set otherwise after init */
    bool json_errors;               /* refusals (400, 408, 413, 431) as {"error": ...} */
    const struct gw_health *health; /* /healthz and /readyz (health.h); NULL: not answered */
    struct gw_listener listeners[GW_MAX_LISTEN];
    size_t n_listeners;
    struct event *accept_resume; /* re-enables accepting after running out of descriptors */
    uint32_t accept_backoff_ms;  /* pause after the last EMFILE; 0 while accepting */
    bool accept_paused;
    uint32_t max_connections; /* gw_config_max_connections() */
    struct gw_log_gate accept_log;
    struct gw_log_gate refuse_log;
    struct gw_accept_stats accept_stats;
    struct gw_drain *drain; /* non-NULL once draining (SIGTERM) */
    struct gw_route routes[GW_MAX_ROUTES];
    size_t n_routes;
    size_t n_conns;           /* open connections */
    struct event *turn_end;   /* low priority: runs after the turn's I/O callbacks */
    struct gw_conn_set conns; /* the connection module's own (http_conn.h) */
};

/* Listens on every address of `specs`, logging "<label> ADDR:PORT" for each (the real port
 * when the configured one is 0). Returns 0, GW_EINVAL (a bad address) or GW_EIO (bind or
 * listen failed), after logging why. */
int gw_server_listen(struct gw_server *srv, const struct gw_str_list *specs, const char *label);
/* A server answering with `route` (gw_route_request for SockJS). */
void gw_server_init(struct gw_server *srv, struct event_base *base, const struct gw_config *cfg,
                    gw_route_fn route, void *route_arg);
/* Starts a drain: new requests get 503 (requests naming a live session get its going-away close
 * frame), and every connection is told to go away (gw_conn_going_away), spread over drain_ms
 * with jitter. done(arg) runs once every connection is closed, or drain_ms + linger later. */
void gw_server_drain(struct gw_server *srv, uint32_t drain_ms, void (*done)(void *arg), void *arg);
bool gw_server_draining(const struct gw_server *srv);
/* Sessions of every prefix of srv. */
size_t gw_server_session_count(const struct gw_server *srv);
/* Open sessions of every prefix of srv that transport t opened. */
size_t gw_server_open_sessions(const struct gw_server *srv, enum sockjs_transport t);
/* The longest chain of the session tables of srv's prefixes (sockjs_server_longest_chain). */
size_t gw_server_longest_session_chain(const struct gw_server *srv);
/* New sessions refused over --max-sessions-per-ip, every prefix of srv. */
uint64_t gw_server_refused_crowded(const struct gw_server *srv);
/* Closes listeners and every connection (their sessions see the receiver go). */
void gw_server_shutdown(struct gw_server *srv);
void gw_server_cleanup(struct gw_server *srv);

/* Adds a SockJS prefix. */
void gw_server_add_route(struct gw_server *srv, const char *prefix, struct sockjs_server *sjs);

/* Routing of one parsed request (router.c). */
void gw_route_request(struct gw_server *srv, struct tp_request *req, const char *path,
                      size_t path_len);

#endif
