/* One client connection: HTTP/1.1 requests in, responses out; or, after an upgrade, raw bytes
 * to the transport that took it over. Implements the tp_conn interface. The connection module
 * is http_conn.c (lifetime, I/O, epoll, timers) and http_request.c (request parsing and
 * dispatch); what they share is in http_conn_internal.h. */
#ifndef HTTP_CONN_H
#define HTTP_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include "gw_list.h"
#include "gw_pool.h"
#include "gw_slab.h"
#include "gw_timerq.h"

struct event;
struct gw_conn;
struct gw_sendbatch;
struct gw_server;

/* A growable array of connections (rather than a link in every connection). */
struct gw_conn_list {
    struct gw_conn **items;
    size_t n, cap;
};

/* A server's connections and what drives them. Embedded in gw_server (no pointer to follow on
 * the hot path) but owned by the connection module: only http_conn.c and http_request.c touch
 * its fields. */
struct gw_conn_set {
    struct gw_list live;               /* every open connection */
    struct gw_list dead;               /* closed connections, freed at the end of the loop turn */
    struct gw_conn_list flush;         /* connections with output queued this loop turn */
    struct gw_sendbatch *sends;        /* writes the flush list; NULL without io_uring */
    int epfd;                          /* the connections' epoll set */
    struct event *epoll_ev;            /* libevent's watch on epfd */
    struct event *input_ev;            /* runs input_pending */
    struct gw_conn_list input_pending; /* connections with pipelined input to parse */
    struct gw_pool req_pool;           /* parked request parsers (http_request.c) */
    struct gw_slab slab;               /* the connections */
    struct gw_timerq header_q;
    struct gw_timerq idle_q;
    struct gw_timerq linger_q;
};

/* srv->conns: the epoll set, the events that drive it and the timeout queues (header, idle,
 * linger); srv->base and srv->cfg must be set. */
void gw_conn_set_init(struct gw_server *srv);
void gw_conn_set_cleanup(struct gw_server *srv);
/* Takes ownership of fd (accepted, non-blocking); flags are the listener's GW_LISTEN_*. */
void gw_conn_accept(struct gw_server *srv, int fd, unsigned listen_flags);
/* Drain: tells the next connection not told yet to go away (idle ones close, handlers get
 * going_away); false when every connection has been told. */
bool gw_conn_drain_next(struct gw_server *srv);
/* Whether every connection left has written all it had and only waits for its peer's FIN. */
bool gw_conn_drain_settled(struct gw_server *srv);
/* Closes every connection at once, telling their handlers (shutdown). */
void gw_conn_abort_all(struct gw_server *srv);
/* End of a loop turn: writes what was queued, frees what was closed. */
void gw_conn_turn_end(struct gw_server *srv);

#endif
