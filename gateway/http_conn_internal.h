/* What the two files of the connection module share: http_conn.c (the connection: lifetime,
 * I/O, epoll, timers, the tp_conn ops) and http_request.c (one request: parsing, the strict
 * RFC 9112 checks, dispatch, refusals). Not for other files. */
#ifndef HTTP_CONN_INTERNAL_H
#define HTTP_CONN_INTERNAL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway.h"
#include "gw_timerq.h"
#include "http_conn.h"
#include "transport.h"

struct gw_outq;
struct http_req;
struct leftover;

enum conn_state {
    ST_PROXY,
    ST_IDLE,
    ST_READING,
    ST_BUSY,
    ST_UPGRADED,
    ST_FLUSHING,
    ST_LINGER,
    ST_DEAD
};

enum conn_flags {
    F_ON_FLUSH_LIST = 1,
    F_WANT_DRAIN = 2,
    F_UPGRADE_PENDING = 4, /* the request asked to upgrade */
    F_TRUSTED = 8,         /* X-Forwarded-For names the client */
    F_IN_EPOLL = 16,       /* fd is in the server's epoll set */
    F_INPUT_PENDING = 32,  /* in gw_conn_set.input_pending: leftover input to parse */
    F_DRAINED = 64,        /* told to go away by the drain (or accepted during it) */
};

/* Who the client really is, when a proxy in front says so; only on such listeners. */
struct conn_client {
    char proxied[INET6_ADDRSTRLEN + 8];   /* from the PROXY protocol header */
    char forwarded[INET6_ADDRSTRLEN + 8]; /* from the current request's X-Forwarded-For */
};

/* No libevent event per connection: connections live in the server's own epoll set (one
 * libevent event watches that set), which saves the event struct and libevent's per-fd map
 * entry, about 170 bytes of every idle session. */
struct gw_conn {
    struct tp_conn base;
    struct gw_server *srv;
    struct gw_list node;   /* gw_conn_set.live; .dead once closed */
    struct gw_timer timer; /* header, idle or linger timeout */
    struct gw_outq *out;   /* NULL while nothing is queued */
    struct http_req *req;
    struct leftover *leftover; /* input not consumed yet, NULL when none */
    int fd;
    uint8_t events; /* EV_READ/EV_WRITE wanted from the epoll set */
    uint8_t state;
    uint8_t flags;
    const struct tp_handler_ops *h_ops;
    void *h;
    struct conn_client *client; /* NULL unless a proxy told us the client's address */
};

/* ---- http_conn.c --------------------------------------------------------------------------- */

/* The client for logs: what a trusted proxy said, else the socket's peer. */
const char *gw_conn__peer_name(const struct gw_conn *c);
/* The tp_conn write and close ops. */
void gw_conn__write(struct tp_conn *tc, const void *data, size_t len);
void gw_conn__close(struct tp_conn *tc, bool flush);

/* ---- http_request.c ------------------------------------------------------------------------ */

/* The pool of parked requests in gw_conn_set.req_pool. */
void gw_conn__req_pool_init(struct gw_pool *pool);
void gw_conn__req_pool_cleanup(struct gw_pool *pool);
/* Feeds c's request parser (starting a request if none is being read), dispatching the request
 * once complete or refusing it; returns the bytes consumed. */
size_t gw_conn__parse_request(struct gw_conn *c, uint8_t *data, size_t len);
/* Answers a request we refuse to read further (status, reason, `why` in the body), then
 * closes. */
void gw_conn__fail_request(struct gw_conn *c, int status, const char *why);
/* Returns c's request, if any, to the pool. */
void gw_conn__req_free(struct gw_conn *c);

#endif
