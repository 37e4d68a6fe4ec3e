/* The gateway process: listeners, connections and the SockJS prefixes they route to. */
#ifndef GATEWAY_H
#define GATEWAY_H

#include <stddef.h>

#include "config.h"
#include "gw_list.h"
#include "gw_timerq.h"
#include "transport.h"

struct event_base;
struct event;
struct evconnlistener;
struct gw_conn;

struct gw_route {
    const char *prefix;
    size_t prefix_len;
    struct sockjs_server *server;
};

#define GW_MAX_ROUTES 16

struct gw_server {
    struct event_base *base;
    const struct gw_config *cfg;
    struct evconnlistener *listeners[GW_MAX_LISTEN];
    size_t n_listeners;
    struct event *accept_resume; /* re-enables accepting after running out of descriptors */
    struct gw_route routes[GW_MAX_ROUTES];
    size_t n_routes;
    struct gw_list conns;        /* every open connection */
    size_t n_conns;
    struct gw_conn *flush_list;  /* connections with output queued this loop turn */
    struct gw_list dead;         /* closed connections, freed at the end of the loop turn */
    struct event *turn_end;      /* low priority: runs after the turn's I/O callbacks */
    struct gw_timerq header_q;
    struct gw_timerq idle_q;
    struct gw_timerq linger_q;
};

/* Listeners (cfg->listen). Logs "listening on ADDR:PORT" for each. Returns 0 or -1. */
int gw_server_listen(struct gw_server *srv);
void gw_server_init(struct gw_server *srv, struct event_base *base, const struct gw_config *cfg);
/* Closes listeners and every connection (their sessions see the receiver go). */
void gw_server_shutdown(struct gw_server *srv);
void gw_server_cleanup(struct gw_server *srv);

/* Adds a SockJS prefix. */
void gw_server_add_route(struct gw_server *srv, const char *prefix, struct sockjs_server *sjs);

/* Routing of one parsed request (router.c). */
void gw_route_request(struct gw_server *srv, struct tp_request *req, const char *path,
                      size_t path_len);

#endif
