/* One client connection: HTTP/1.1 requests in, responses out; or, after an upgrade, raw bytes
 * to the transport that took it over. Implements the tp_conn interface. */
#ifndef HTTP_CONN_H
#define HTTP_CONN_H

#include "gateway.h"

/* The epoll set of srv's connections and the events that drive it. */
void gw_conn_events_init(struct gw_server *srv);
void gw_conn_events_cleanup(struct gw_server *srv);
/* The connection timeout queues of srv (header, idle, linger). */
void gw_conn_timers_init(struct gw_server *srv);
/* Takes ownership of fd (accepted, non-blocking); flags are the listener's GW_LISTEN_*. */
void gw_conn_accept(struct gw_server *srv, int fd, unsigned listen_flags);
/* Drain: tells the next connection not told yet to go away (idle ones close, handlers get
 * going_away); false when every connection has been told. */
bool gw_conn_drain_next(struct gw_server *srv);
/* Whether every connection left has written all it had and only waits for its peer's FIN. */
bool gw_conn_drain_settled(struct gw_server *srv);
/* Closes at once, telling its handler (shutdown). */
void gw_conn_abort(struct gw_conn *c);
/* The connection of a list node of gw_server.conns. */
struct gw_conn *gw_conn_from_node(struct gw_list *node);
/* End of a loop turn: writes what was queued, frees what was closed. */
void gw_conn_turn_end(struct gw_server *srv);

#endif
