/* Connection states:
 *
 *   (PROXY --header parsed-->) IDLE --first byte--> READING --request complete--> BUSY
 *                                ^                                                 |
 *                                +------------------end_response(keep)-------------+
 *     ^                    |                            |  \
 *     |                    +--error: 400/408/413/431----+   +--upgrade--> UPGRADED
 *     |                                     v                                 |
 *     +--(idle timeout: close)         FLUSHING --all written--> LINGER --EOF/timeout--> DEAD
 *                                           ^                                 |
 *                                           +--------close(flush)-------------+
 *
 * PROXY (listeners with ",proxy"): the PROXY protocol header comes first, within the header
 * timeout; anything else closes the connection without an answer.
 * IDLE holds no buffers and no parser: only the struct and a timer link.
 * READING owns a request (parser, header and body storage) until the request is dispatched.
 * BUSY: a transport answers, now or later (long polling, streams); input is kept, bounded.
 * UPGRADED: every byte read goes to the handler (websocket).
 * FLUSHING/LINGER: our last bytes go out, then we half-close and drain the peer's input for
 * a moment, so that the peer reads our final answer instead of a reset.
 * A closed connection is freed at the end of the loop turn, never inside a callback. */
#include "http_conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <event2/event.h>
#include <http_parser.h>

#include "gateway.h"
#include "gw_alloc.h"
#include "gw_buf.h"
#include "gw_error.h"
#include "gw_log.h"
#include "gw_net.h"
#include "gw_outq.h"
#include "gw_pool.h"
#include "gw_slab.h"
#include "proxy_protocol.h"

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

struct header_ref {
    uint32_t name_off, name_len, value_off, value_len;
};

/* Rare (a request split over reads, pipelining), so kept out of the connection. */
struct leftover {
    uint32_t len;
    uint8_t data[];
};

/* Where scan_header_lines is: the start line (after any empty lines before it), then each
 * header line, until the empty line that ends the head. */
enum line_scan {
    SCAN_BEFORE_START_LINE,
    SCAN_IN_LINE,
    SCAN_LINE_START,
    SCAN_EMPTY_LINE_CR,
    SCAN_DONE,
};

/* Where check_chunked is in a chunked body (RFC 9112 7.1). */
enum chunk_scan {
    CHUNK_SIZE_START,
    CHUNK_SIZE,
    CHUNK_SIZE_BWS, /* whitespace after the size: only before an extension */
    CHUNK_EXT,
    CHUNK_SIZE_LF,
    CHUNK_DATA,
    CHUNK_DATA_CR,
    CHUNK_DATA_LF,
    CHUNK_TRAILER_START,
    CHUNK_TRAILER,
    CHUNK_TRAILER_LF,
    CHUNK_END_LF,
    CHUNK_DONE,
};

/* Exists only while a request is being read or dispatched. */
struct http_req {
    http_parser parser;
    struct gw_buf raw;      /* url, then header names and values */
    struct gw_buf body;
    struct header_ref *headers;
    uint32_t n_headers;
    uint32_t url_len;
    uint32_t header_bytes;
    bool in_value;          /* the last header callback was a value */
    bool headers_done;
    bool complete;
    uint8_t line_scan;      /* enum line_scan: where scan_header_lines is in the head */
    uint8_t chunk_scan;     /* enum chunk_scan: where check_chunked is in the body */
    uint64_t chunk_left;    /* bytes of the current chunk's data still to come */
    int error_status;       /* set by a callback that refused the request */
    const char *error_reason; /* with error_status */
};

/* No libevent event per connection: connections live in the server's own epoll set (one
 * libevent event watches that set), which saves the event struct and libevent's per-fd map
 * entry, about 170 bytes of every idle session. */
struct gw_conn {
    struct tp_conn base;
    struct gw_server *srv;
    struct gw_list node;          /* gw_conn_set.live; .dead once closed */
    struct gw_timer timer;        /* header, idle or linger timeout */
    struct gw_outq *out;          /* NULL while nothing is queued */
    struct http_req *req;
    struct leftover *leftover;    /* input not consumed yet, NULL when none */
    int fd;
    uint8_t events;               /* EV_READ/EV_WRITE wanted from the epoll set */
    uint8_t state;
    uint8_t flags;
    const struct tp_handler_ops *h_ops;
    void *h;
    struct conn_client *client;   /* NULL unless a proxy told us the client's address */
};

/* Reads land here; only what is left unconsumed is copied into the connection. */
#define SCRATCH_SIZE (64 * 1024)
static uint8_t scratch[SCRATCH_SIZE];

static const struct tp_conn_ops conn_ops;
static void process_input(struct gw_conn *c, uint8_t *data, size_t len);

/* ---- helpers -------------------------------------------------------------------------------- */

static struct gw_conn *conn_from_node(struct gw_list *node)
{
    return GW_CONTAINER_OF(node, struct gw_conn, node);
}

/* The client for logs: what a trusted proxy said, else the socket's peer. */
static const char *peer_name(const struct gw_conn *c)
{
    static char name[INET6_ADDRSTRLEN + 8];
    if (c->client && c->client->forwarded[0])
        return c->client->forwarded;
    if (c->client && c->client->proxied[0])
        return c->client->proxied;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (c->fd < 0 || getpeername(c->fd, (struct sockaddr *)&ss, &sl) != 0)
        return "?";
    return gw_format_sockaddr(&ss, name, sizeof(name));
}

static void set_events(struct gw_conn *c, unsigned events)
{
    if (c->events == events)
        return;
    c->events = (uint8_t)events;
    struct epoll_event ev = {
        .events = (events & EV_READ ? EPOLLIN | EPOLLRDHUP : 0) | (events & EV_WRITE ? EPOLLOUT : 0),
        .data.ptr = c,
    };
    /* A connection stays in the set with no events rather than being removed and re-added;
     * closing the fd removes it. */
    int op = (c->flags & F_IN_EPOLL) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(c->srv->conns.epfd, op, c->fd, &ev) != 0) {
        GW_ERROR("epoll_ctl on fd %d: %s", c->fd, strerror(errno));
        return;
    }
    c->flags |= F_IN_EPOLL;
}

/* Requests are parked in the server's pool with their buffers, so that parsing a request
 * (an upgrade above all) allocates nothing once the pool is warm; big buffers are not kept. */
#define REQ_POOL_MAX 64
#define REQ_KEEP_BYTES 4096

static void req_destroy(void *obj)
{
    struct http_req *r = obj;
    gw_buf_release(&r->raw);
    gw_buf_release(&r->body);
    gw_free(r->headers);
    gw_free(r);
}

static struct http_req *req_new(struct gw_conn *c)
{
    bool parked = c->srv->conns.req_pool.first != NULL;
    struct http_req *r = gw_pool_get(&c->srv->conns.req_pool, sizeof(*r));
    if (!parked) {
        memset(r, 0, sizeof(*r));
    } else { /* its buffers are kept, emptied */
        r->raw.len = 0;
        r->body.len = 0;
        r->n_headers = 0;
        r->url_len = 0;
        r->header_bytes = 0;
        r->in_value = false;
        r->headers_done = false;
        r->complete = false;
        r->line_scan = SCAN_BEFORE_START_LINE;
        r->chunk_scan = CHUNK_SIZE_START;
        r->chunk_left = 0;
        r->error_status = 0;
        r->error_reason = NULL;
    }
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = c;
    return r;
}

static void req_free(struct gw_conn *c)
{
    struct http_req *r = c->req;
    if (!r)
        return;
    c->req = NULL;
    if (r->raw.cap > REQ_KEEP_BYTES)
        gw_buf_release(&r->raw);
    if (r->body.cap > REQ_KEEP_BYTES)
        gw_buf_release(&r->body);
    gw_pool_put(&c->srv->conns.req_pool, r, req_destroy);
}

static void keep_leftover(struct gw_conn *c, const uint8_t *data, size_t len)
{
    if (len == 0) {
        gw_free(c->leftover);
        c->leftover = NULL;
        return;
    }
    /* data may point into the old leftover (already copied to scratch) or into scratch. */
    struct leftover *copy = gw_malloc(sizeof(*copy) + len);
    copy->len = (uint32_t)len;
    memcpy(copy->data, data, len);
    gw_free(c->leftover);
    c->leftover = copy;
}

static void mark_dead(struct gw_conn *c)
{
    if (c->state == ST_DEAD)
        return;
    gw_timer_stop(&c->timer);
    close(c->fd);
    c->fd = -1;
    c->state = ST_DEAD;
    c->h_ops = NULL;
    gw_list_remove(&c->node);
    c->srv->n_conns--;
    gw_list_insert_tail(&c->srv->conns.dead, &c->node);
    event_active(c->srv->turn_end, EV_TIMEOUT, 0);
}

static void conn_free(struct gw_conn *c)
{
    if (c->flags & F_INPUT_PENDING) {
        struct gw_conn_list *l = &c->srv->conns.input_pending;
        for (size_t i = 0; i < l->n; i++) {
            if (l->items[i] == c)
                l->items[i] = NULL;
        }
    }
    gw_free(c->client);
    req_free(c);
    gw_free(c->leftover);
    gw_outq_free(c->out);
    gw_slab_free(&c->srv->conns.slab, c);
}

/* The handler is told, unless it asked for the close itself. */
static void close_now(struct gw_conn *c)
{
    const struct tp_handler_ops *ops = c->h_ops;
    void *h = c->h;
    c->h_ops = NULL;
    c->h = NULL;
    mark_dead(c);
    if (ops && ops->on_close)
        ops->on_close(h);
}

static void start_linger(struct gw_conn *c)
{
    c->state = ST_LINGER;
    shutdown(c->fd, SHUT_WR);
    gw_timer_start(&c->timer, &c->srv->conns.linger_q);
    set_events(c, EV_READ);
}

/* ---- output --------------------------------------------------------------------------------- */

/* Appends c to a growable list of connections (the server's flush and pending-input lists:
 * arrays rather than a link in every connection). */
static void conn_list_push(struct gw_conn_list *l, struct gw_conn *c)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->items = gw_realloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->n++] = c;
}

static void schedule_flush(struct gw_conn *c)
{
    if (c->flags & F_ON_FLUSH_LIST)
        return;
    c->flags |= F_ON_FLUSH_LIST;
    conn_list_push(&c->srv->conns.flush, c);
    event_active(c->srv->turn_end, EV_TIMEOUT, 0);
}

static struct gw_outq *out_queue(struct gw_conn *c)
{
    if (!c->out)
        c->out = gw_outq_new();
    return c->out;
}

/* Writes what is queued; returns false if the connection died. */
static bool do_write(struct gw_conn *c)
{
    if (c->state == ST_DEAD)
        return false;
    while (c->out && gw_outq_bytes(c->out) > 0) {
        if (gw_outq_write(c->out, c->fd) < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                size_t queued = gw_outq_bytes(c->out);
                if (queued > c->srv->cfg->max_output_bytes) {
                    /* A peer that does not read loses its own connection, not our memory. */
                    GW_WARN("%s: slow consumer: %zu bytes unwritten (limit %u); closing",
                            peer_name(c), queued, c->srv->cfg->max_output_bytes);
                    close_now(c);
                    return false;
                }
                set_events(c, c->events | EV_WRITE);
                return true;
            }
            GW_DEBUG("%s: write failed: %s", peer_name(c), strerror(errno));
            close_now(c);
            return false;
        }
    }
    gw_outq_free(c->out);
    c->out = NULL;
    if (c->events & EV_WRITE)
        set_events(c, c->events & ~EV_WRITE);
    if (c->state == ST_FLUSHING) {
        start_linger(c);
        return true;
    }
    if ((c->flags & F_WANT_DRAIN) && c->h_ops && c->h_ops->on_drain) {
        c->flags &= (uint8_t)~F_WANT_DRAIN;
        c->h_ops->on_drain(c->h);
    }
    return c->state != ST_DEAD;
}

void gw_conn_turn_end(struct gw_server *srv)
{
    /* Writing may schedule more (a drained handler writes again): they are written too. */
    for (size_t i = 0; i < srv->conns.flush.n; i++) {
        struct gw_conn *c = srv->conns.flush.items[i];
        c->flags &= (uint8_t)~F_ON_FLUSH_LIST;
        do_write(c);
    }
    srv->conns.flush.n = 0;
    while (!gw_list_empty(&srv->conns.dead)) {
        struct gw_conn *c = conn_from_node(srv->conns.dead.next);
        gw_list_remove(&c->node);
        conn_free(c);
    }
}

/* ---- tp_conn interface ---------------------------------------------------------------------- */

static bool writable_state(const struct gw_conn *c)
{
    return c->state != ST_DEAD && c->state != ST_LINGER;
}

static void conn_write(struct tp_conn *tc, const void *data, size_t len)
{
    struct gw_conn *c = (struct gw_conn *)tc;
    if (!writable_state(c) || len == 0)
        return;
    gw_outq_add(out_queue(c), data, len);
    schedule_flush(c);
}

static void conn_write_ref(struct tp_conn *tc, struct gw_refbuf *b, size_t off, size_t len)
{
    struct gw_conn *c = (struct gw_conn *)tc;
    if (!writable_state(c) || len == 0)
        return;
    gw_outq_add_ref(out_queue(c), b, off, len);
    schedule_flush(c);
}

static size_t conn_queued(const struct tp_conn *tc)
{
    const struct gw_conn *c = (const struct gw_conn *)tc;
    return c->out ? gw_outq_bytes(c->out) : 0;
}

static void conn_set_handler(struct tp_conn *tc, const struct tp_handler_ops *ops, void *h)
{
    struct gw_conn *c = (struct gw_conn *)tc;
    c->h_ops = ops;
    c->h = h;
}

static void conn_upgrade(struct tp_conn *tc)
{
    struct gw_conn *c = (struct gw_conn *)tc;
    c->state = ST_UPGRADED;
    c->flags &= (uint8_t)~F_UPGRADE_PENDING;
    req_free(c);
    gw_timer_stop(&c->timer);
    set_events(c, c->events | EV_READ);
}

static void conn_want_drain(struct tp_conn *tc)
{
    struct gw_conn *c = (struct gw_conn *)tc;
    c->flags |= F_WANT_DRAIN;
    if (!c->out)
        schedule_flush(c);
}

static void conn_close(struct tp_conn *tc, bool flush)
{
    struct gw_conn *c = (struct gw_conn *)tc;
    c->h_ops = NULL;
    c->h = NULL;
    if (c->state == ST_DEAD || c->state == ST_LINGER || c->state == ST_FLUSHING)
        return;
    req_free(c);
    keep_leftover(c, NULL, 0);
    gw_timer_stop(&c->timer);
    if (!flush) {
        mark_dead(c);
        return;
    }
    c->state = ST_FLUSHING;
    /* A peer that does not read must not keep a closing connection forever. */
    gw_timer_start(&c->timer, &c->srv->conns.linger_q);
    /* Input is no longer wanted; it is drained during the linger. */
    set_events(c, c->events & ~EV_READ);
    schedule_flush(c);
}

static void conn_end_response(struct tp_conn *tc, bool keep_alive)
{
    struct gw_conn *c = (struct gw_conn *)tc;
    if (c->state != ST_BUSY)
        return;
    /* A request that asked to upgrade but was answered otherwise has no defined next byte; a
     * draining server reads no next request. */
    if (!keep_alive || (c->flags & F_UPGRADE_PENDING) || c->srv->drain) {
        conn_close(tc, true);
        return;
    }
    c->h_ops = NULL;
    c->h = NULL;
    req_free(c);
    c->state = ST_IDLE;
    gw_timer_start(&c->timer, &c->srv->conns.idle_q);
    set_events(c, c->events | EV_READ);
    /* Pipelined requests wait in leftover; they are parsed once this response is queued. */
    if (c->leftover && !(c->flags & F_INPUT_PENDING)) {
        c->flags |= F_INPUT_PENDING;
        conn_list_push(&c->srv->conns.input_pending, c);
        event_active(c->srv->conns.input_ev, EV_TIMEOUT, 0);
    }
}

static const char *conn_peer(const struct tp_conn *tc)
{
    return peer_name((const struct gw_conn *)tc);
}

static const struct tp_conn_ops conn_ops = {
    .write = conn_write,
    .write_ref = conn_write_ref,
    .queued = conn_queued,
    .set_handler = conn_set_handler,
    .upgrade = conn_upgrade,
    .want_drain = conn_want_drain,
    .end_response = conn_end_response,
    .close = conn_close,
    .peer = conn_peer,
};

/* ---- HTTP errors ---------------------------------------------------------------------------- */

static const char *status_reason(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 505:
        return "HTTP Version Not Supported";
    }
    return "Error";
}

/* Answers a request we refuse to read further, then closes. */
static void fail_request(struct gw_conn *c, int status, const char *why)
{
    GW_INFO("%s: %d %s: %s", peer_name(c), status, status_reason(status), why);
    char body[256];
    int body_len = c->srv->json_errors ? snprintf(body, sizeof(body), "{\"error\":\"%s\"}", why)
                                       : snprintf(body, sizeof(body), "%s\n", why);
    char buf[512];
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %d\r\n"
                     "Connection: close\r\n"
                     "\r\n"
                     "%s",
                     status, status_reason(status),
                     c->srv->json_errors ? "application/json" : "text/plain; charset=UTF-8",
                     body_len, body);
    c->state = ST_BUSY;
    conn_write(&c->base, buf, (size_t)n);
    conn_close(&c->base, true);
}

/* ---- request parsing ------------------------------------------------------------------------ */

static struct gw_conn *parser_conn(http_parser *p)
{
    return p->data;
}

static int count_header_bytes(struct gw_conn *c, size_t n)
{
    struct http_req *r = c->req;
    r->header_bytes += (uint32_t)n;
    if (r->header_bytes > c->srv->cfg->max_header_bytes) {
        r->error_status = 431;
        r->error_reason = "request header too large";
        return -1;
    }
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct gw_conn *c = parser_conn(p);
    if (count_header_bytes(c, n))
        return -1;
    /* The non-strict http-parser lets tabs and other controls into the target, where other
     * parsers end it (RFC 9112 3.2: no whitespace or controls in a request-target). */
    for (size_t i = 0; i < n; i++) {
        if ((uint8_t)at[i] < 0x21 || at[i] == 0x7f) {
            c->req->error_status = 400;
            c->req->error_reason = "control character in the request target";
            return -1;
        }
    }
    gw_buf_append(&c->req->raw, at, n);
    c->req->url_len += (uint32_t)n;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct gw_conn *c = parser_conn(p);
    struct http_req *r = c->req;
    if (count_header_bytes(c, n + 4))
        return -1;
    /* A chunked body's trailer fields are counted but dropped: merged into the header section
     * they would add fields a proxy in front never saw as headers (RFC 9110 6.5.1). */
    if (r->headers_done)
        return 0;
    if (r->n_headers == 0 || r->in_value) {
        if (r->n_headers == c->srv->cfg->max_headers) {
            r->error_status = 431;
            r->error_reason = "too many header fields";
            return -1;
        }
        if (!r->headers)
            r->headers = gw_malloc(sizeof(*r->headers) * c->srv->cfg->max_headers);
        struct header_ref *h = &r->headers[r->n_headers++];
        h->name_off = (uint32_t)r->raw.len;
        h->name_len = 0;
        h->value_off = 0;
        h->value_len = 0;
        r->in_value = false;
    }
    gw_buf_append(&r->raw, at, n);
    r->headers[r->n_headers - 1].name_len += (uint32_t)n;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct gw_conn *c = parser_conn(p);
    struct http_req *r = c->req;
    if (count_header_bytes(c, n))
        return -1;
    if (r->headers_done)
        return 0; /* a trailer field (on_header_field) */
    struct header_ref *h = &r->headers[r->n_headers - 1];
    if (!r->in_value) {
        h->value_off = (uint32_t)r->raw.len;
        r->in_value = true;
    }
    gw_buf_append(&r->raw, at, n);
    h->value_len += (uint32_t)n;
    return 0;
}

static bool has_header_value(const struct http_req *r, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    for (uint32_t i = 0; i < r->n_headers; i++) {
        const struct header_ref *h = &r->headers[i];
        if (h->name_len == nl && strncasecmp(r->raw.data + h->name_off, name, nl) == 0 &&
            h->value_len == vl && strncasecmp(r->raw.data + h->value_off, value, vl) == 0)
            return true;
    }
    return false;
}

static bool header_name_is(const struct http_req *r, const struct header_ref *h,
                           const char *name, size_t len)
{
    return h->name_len == len && strncasecmp(r->raw.data + h->name_off, name, len) == 0;
}

/* Counts the codings of one Transfer-Encoding line (a comma list, empty elements allowed),
 * noting how many are chunked and whether the last one is. */
static void count_codings(const char *v, size_t len, unsigned *n, unsigned *chunked,
                          bool *last_chunked)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end == start)
            continue;
        bool is_chunked = end - start == 7 && strncasecmp(v + start, "chunked", 7) == 0;
        (*n)++;
        *chunked += is_chunked;
        *last_chunked = is_chunked;
    }
}

/* Header fields that make the message's framing or target ambiguous, which a proxy in front
 * may read differently (request smuggling): refused with 400, or 501 for a transfer coding we
 * do not implement. http-parser itself refuses two Content-Length fields, an invalid one,
 * Content-Length with Transfer-Encoding, a final coding other than chunked, control characters
 * in values and most bad name characters, but it takes spaces as part of a name, and acts on
 * "Transfer-Encoding " or "Content-Length  " spelt so. */
static bool refuse_ambiguous_headers(http_parser *p, struct http_req *r)
{
    unsigned hosts = 0, te_lines = 0, codings = 0, chunked = 0;
    bool last_chunked = false;
    for (uint32_t i = 0; i < r->n_headers; i++) {
        const struct header_ref *h = &r->headers[i];
        const char *name = r->raw.data + h->name_off;
        if (memchr(name, ' ', h->name_len)) { /* a name is a token (RFC 9110 5.1, 9112 5.1) */
            r->error_status = 400;
            r->error_reason = name[h->name_len - 1] == ' '
                                  ? "whitespace between header field name and colon"
                                  : "space in a header field name";
            return true;
        }
        if (header_name_is(r, h, "Host", 4))
            hosts++;
        if (header_name_is(r, h, "Transfer-Encoding", 17)) {
            te_lines++;
            count_codings(r->raw.data + h->value_off, h->value_len, &codings, &chunked,
                          &last_chunked);
        }
    }
    r->error_status = 400;
    if (hosts > 1) { /* RFC 9112 3.2 */
        r->error_reason = "more than one Host header field";
        return true;
    }
    if (te_lines == 0) {
        r->error_status = 0;
        return false;
    }
    /* RFC 9112 6.1: HTTP/1.0 has no transfer codings, so its framing is faulty. */
    if (p->http_major == 1 && p->http_minor == 0) {
        r->error_reason = "Transfer-Encoding in an HTTP/1.0 request";
        return true;
    }
    /* RFC 9112 6.3: a request body's length is only known when chunked comes last, once. */
    if (!last_chunked) {
        r->error_reason = "Transfer-Encoding does not end with chunked";
        return true;
    }
    if (chunked > 1) {
        r->error_reason = "chunked applied more than once";
        return true;
    }
    if (codings > 1) {
        r->error_status = 501;
        r->error_reason = "transfer coding other than chunked";
        return true;
    }
    r->error_status = 0;
    return false;
}

static int on_headers_complete(http_parser *p)
{
    struct gw_conn *c = parser_conn(p);
    struct http_req *r = c->req;
    r->headers_done = true;
    if (refuse_ambiguous_headers(p, r))
        return -1;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > c->srv->max_body_bytes) {
        r->error_status = 413;
        r->error_reason = "request body too large";
        return -1;
    }
    if (has_header_value(r, "Expect", "100-continue"))
        conn_write(&c->base, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    /* The body gets its own period, counted from here. */
    gw_timer_start(&c->timer, &c->srv->conns.header_q);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct gw_conn *c = parser_conn(p);
    struct http_req *r = c->req;
    if (r->body.len + n > c->srv->max_body_bytes) {
        r->error_status = 413;
        r->error_reason = "request body too large";
        return -1;
    }
    gw_buf_append(&r->body, at, n);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct gw_conn *c = parser_conn(p);
    c->req->complete = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* The last X-Forwarded-For entry is the one our trusted proxy added: the client it saw. */
static void note_forwarded_for(struct gw_conn *c, const struct tp_request *req)
{
    c->client->forwarded[0] = '\0';
    /* Several lines are one list (RFC 9110 5.3), and a proxy appends its own line after what
     * the client sent: the entry that counts is the last of the last line. */
    const char *xff = NULL;
    size_t len = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct tp_header *h = &req->headers[i];
        if (h->name_len == 15 && strncasecmp(h->name, "X-Forwarded-For", 15) == 0) {
            xff = h->value;
            len = h->value_len;
        }
    }
    if (!xff)
        return;
    const char *start = xff + len;
    while (start > xff && start[-1] != ',')
        start--;
    const char *end = xff + len;
    while (start < end && (*start == ' ' || *start == '\t'))
        start++;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    char addr[INET6_ADDRSTRLEN];
    size_t n = (size_t)(end - start);
    unsigned char bin[sizeof(struct in6_addr)];
    if (n == 0 || n >= sizeof(addr))
        return;
    memcpy(addr, start, n);
    addr[n] = '\0';
    if (inet_pton(AF_INET, addr, bin) != 1 && inet_pton(AF_INET6, addr, bin) != 1) {
        GW_DEBUG("ignoring X-Forwarded-For entry '%s': not an address", addr);
        return;
    }
    memcpy(c->client->forwarded, addr, n + 1);
}

static void dispatch(struct gw_conn *c)
{
    struct http_req *r = c->req;
    http_parser *p = &r->parser;
    if (p->http_major != 1 || p->http_minor > 1) {
        fail_request(c, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
        return;
    }
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(r->raw.data, r->url_len, 0, &u) != 0 ||
        !(u.field_set & (1 << UF_PATH))) {
        fail_request(c, 400, "malformed request target");
        return;
    }
    struct tp_header headers[r->n_headers ? r->n_headers : 1];
    for (uint32_t i = 0; i < r->n_headers; i++) {
        headers[i].name = r->raw.data + r->headers[i].name_off;
        headers[i].name_len = r->headers[i].name_len;
        headers[i].value = r->raw.data + r->headers[i].value_off;
        headers[i].value_len = r->headers[i].value_len;
    }
    struct tp_request req = {
        .conn = &c->base,
        .method = http_method_str((enum http_method)p->method),
        .headers = headers,
        .n_headers = r->n_headers,
        .body = r->body.data ? r->body.data : "",
        .body_len = r->body.len,
        .http_major = (uint8_t)p->http_major,
        .http_minor = (uint8_t)p->http_minor,
        .keep_alive = http_should_keep_alive(p) != 0,
        .max_message = c->srv->cfg->max_message_bytes,
    };
    if (u.field_set & (1 << UF_QUERY)) {
        req.query = r->raw.data + u.field_data[UF_QUERY].off;
        req.query_len = u.field_data[UF_QUERY].len;
    }
    if (c->flags & F_TRUSTED)
        note_forwarded_for(c, &req);
    if (p->upgrade)
        c->flags |= F_UPGRADE_PENDING;
    c->state = ST_BUSY;
    gw_timer_stop(&c->timer);
    GW_DEBUG("%s: %s %.*s", peer_name(c), req.method, (int)r->url_len, r->raw.data);
    c->srv->route(c->srv, &req, r->raw.data + u.field_data[UF_PATH].off,
                     u.field_data[UF_PATH].len);
    /* The request view ends with this call (transports copy what they keep), so a long poll
     * or a stream waits without a parser and header storage: ~1.5 KB less per such session. */
    if (c->req == r)
        req_free(c);
}

/* http-parser accepts a line that starts with whitespace in the head: as obs-fold, joining it
 * to the previous value (where "Transfer-Encoding:\r\n chunked" is indistinguishable from
 * "Transfer-Encoding: chunked" in the callbacks), or, right after the start line, as part of
 * the first field name. RFC 9112 5.2 and 2.2 let a server reject both; we do, so scan the
 * head's bytes for them as they arrive. Returns false on such a line. */
static bool scan_header_lines(struct http_req *r, const uint8_t *data, size_t len,
                              size_t *head_len)
{
    const uint8_t *p = data, *end = data + len;
    *head_len = len;
    while (p < end && r->line_scan != SCAN_DONE) {
        switch (r->line_scan) {
        case SCAN_BEFORE_START_LINE: /* RFC 9112 2.2: empty lines before a request are ignored */
            if (*p != '\r' && *p != '\n')
                r->line_scan = SCAN_IN_LINE;
            p++;
            break;
        case SCAN_IN_LINE: {
            const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
            if (!lf)
                return true;
            r->line_scan = SCAN_LINE_START;
            p = lf + 1;
            break;
        }
        case SCAN_LINE_START:
            if (*p == ' ' || *p == '\t')
                return false;
            r->line_scan = *p == '\n' ? SCAN_DONE : *p == '\r' ? SCAN_EMPTY_LINE_CR : SCAN_IN_LINE;
            p++;
            break;
        case SCAN_EMPTY_LINE_CR: /* http-parser refuses anything but LF after it */
            r->line_scan = SCAN_DONE;
            p++;
            break;
        }
    }
    if (r->line_scan == SCAN_DONE)
        *head_len = (size_t)(p - data);
    return true;
}

static int hex_value(uint8_t ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
        return (ch | 0x20) - 'a' + 10;
    return -1;
}

/* Debian's http-parser is built non-strict: in a chunked body it takes any two bytes after a
 * chunk's data for its CRLF, any byte after a CR for LF, and whitespace after a chunk size, all
 * of which a proxy in front may frame differently (request smuggling). So the body's framing
 * bytes are checked here as they arrive: chunk-size [BWS ";" ext] CRLF data CRLF ... "0" CRLF
 * trailer-lines CRLF. Returns false on a framing error. */
static bool check_chunked(struct http_req *r, const uint8_t *data, size_t len)
{
    const uint8_t *p = data, *end = data + len;
    while (p < end && r->chunk_scan != CHUNK_DONE) {
        uint8_t ch = *p;
        switch ((enum chunk_scan)r->chunk_scan) {
        case CHUNK_SIZE_START:
        case CHUNK_SIZE: {
            int v = hex_value(ch);
            if (v >= 0) {
                if (r->chunk_left >> 60)
                    return false; /* http-parser refuses it too */
                r->chunk_left = r->chunk_left << 4 | (uint64_t)v;
                r->chunk_scan = CHUNK_SIZE;
            } else if (r->chunk_scan == CHUNK_SIZE_START) {
                return false;
            } else if (ch == ';') {
                r->chunk_scan = CHUNK_EXT;
            } else if (ch == ' ' || ch == '\t') {
                r->chunk_scan = CHUNK_SIZE_BWS;
            } else if (ch == '\r') {
                r->chunk_scan = CHUNK_SIZE_LF;
            } else {
                return false;
            }
            break;
        }
        case CHUNK_SIZE_BWS:
            if (ch == ';')
                r->chunk_scan = CHUNK_EXT;
            else if (ch != ' ' && ch != '\t')
                return false;
            break;
        case CHUNK_EXT:
            if (ch == '\r')
                r->chunk_scan = CHUNK_SIZE_LF;
            else if (ch < 0x20 && ch != '\t')
                return false;
            break;
        case CHUNK_SIZE_LF:
            if (ch != '\n')
                return false;
            r->chunk_scan = r->chunk_left ? CHUNK_DATA : CHUNK_TRAILER_START;
            break;
        case CHUNK_DATA: {
            size_t n = (size_t)(end - p) < r->chunk_left ? (size_t)(end - p) : (size_t)r->chunk_left;
            r->chunk_left -= n;
            p += n;
            if (r->chunk_left == 0)
                r->chunk_scan = CHUNK_DATA_CR;
            continue;
        }
        case CHUNK_DATA_CR:
            if (ch != '\r')
                return false;
            r->chunk_scan = CHUNK_DATA_LF;
            break;
        case CHUNK_DATA_LF:
            if (ch != '\n')
                return false;
            r->chunk_scan = CHUNK_SIZE_START;
            break;
        case CHUNK_TRAILER_START: /* a trailer line, or the empty line that ends the body */
            if (ch == ' ' || ch == '\t')
                return false;
            r->chunk_scan = ch == '\r' ? CHUNK_END_LF : CHUNK_TRAILER;
            break;
        case CHUNK_TRAILER:
            if (ch == '\r')
                r->chunk_scan = CHUNK_TRAILER_LF;
            else if (ch == '\n')
                return false;
            break;
        case CHUNK_TRAILER_LF:
            if (ch != '\n')
                return false;
            r->chunk_scan = CHUNK_TRAILER_START;
            break;
        case CHUNK_END_LF:
            if (ch != '\n')
                return false;
            r->chunk_scan = CHUNK_DONE;
            break;
        case CHUNK_DONE:
            break;
        }
        p++;
    }
    return true;
}

/* Feeds the parser; returns bytes consumed. */
static size_t parse_request(struct gw_conn *c, uint8_t *data, size_t len)
{
    if (!c->req) {
        c->req = req_new(c);
        c->state = ST_READING;
        gw_timer_start(&c->timer, &c->srv->conns.header_q);
    }
    struct http_req *r = c->req;
    size_t head_len = 0;
    if (r->line_scan != SCAN_DONE && !scan_header_lines(r, data, len, &head_len)) {
        fail_request(c, 400, "header line starts with whitespace (obs-fold)");
        return len;
    }
    size_t used = http_parser_execute(&r->parser, &parser_settings, (const char *)data, len);
    enum http_errno err = HTTP_PARSER_ERRNO(&r->parser);
    /* Before the body is acted on: the bytes http-parser took as its chunked framing. */
    if (r->headers_done && !r->error_status && (r->parser.flags & F_CHUNKED) &&
        !r->parser.upgrade && used > head_len && !check_chunked(r, data + head_len, used - head_len)) {
        fail_request(c, 400, "malformed chunked body framing");
        return len;
    }
    if (r->complete) {
        dispatch(c);
        return used;
    }
    if (r->error_status) {
        fail_request(c, r->error_status, r->error_reason);
        return len;
    }
    if (err == HPE_HEADER_OVERFLOW) {
        fail_request(c, 431, "request header too large");
        return len;
    }
    if (err != HPE_OK) {
        fail_request(c, 400, http_errno_description(err));
        return len;
    }
    if (r->parser.upgrade && r->headers_done) {
        /* http-parser stops at the end of an upgrade request's head without completing it. */
        r->complete = true;
        dispatch(c);
    }
    return used;
}

/* Returns false when nothing more is to be done with this input (incomplete or refused). */
static bool parse_proxy_header(struct gw_conn *c, uint8_t *data, size_t len, size_t *used)
{
    struct gw_proxy_info info;
    int rc = gw_proxy_parse(data, len, &info);
    if (rc == GW_EAGAIN) {
        keep_leftover(c, data, len);
        return false;
    }
    if (rc < 0) {
        GW_INFO("%s: no valid PROXY protocol header; closing", peer_name(c));
        close_now(c);
        return false;
    }
    if (!info.local)
        gw_format_sockaddr(&info.src, c->client->proxied, sizeof(c->client->proxied));
    GW_DEBUG("%s: PROXY protocol header accepted", peer_name(c));
    c->state = ST_IDLE;
    gw_timer_start(&c->timer, &c->srv->conns.idle_q);
    *used = (size_t)rc;
    return true;
}

static void process_input(struct gw_conn *c, uint8_t *data, size_t len)
{
    while (len > 0) {
        size_t used;
        switch (c->state) {
        case ST_PROXY:
            if (!parse_proxy_header(c, data, len, &used))
                return;
            break;
        case ST_IDLE:
        case ST_READING:
            used = parse_request(c, data, len);
            break;
        case ST_UPGRADED:
            used = c->h_ops && c->h_ops->on_data ? c->h_ops->on_data(c->h, data, len) : len;
            if (used == 0) {
                keep_leftover(c, data, len);
                if (c->leftover->len > SCRATCH_SIZE / 2) {
                    GW_INFO("%s: unconsumed input over %d bytes", peer_name(c), SCRATCH_SIZE / 2);
                    close_now(c);
                }
                return;
            }
            break;
        case ST_BUSY:
            /* Pipelined input waits for the current response; bounded, then we stop reading
             * (and notice a close only once we read again). */
            keep_leftover(c, data, len);
            if (c->leftover->len >= c->srv->cfg->max_header_bytes)
                set_events(c, c->events & ~EV_READ);
            return;
        default:
            return; /* closing: input is discarded */
        }
        data += used;
        len -= used;
    }
    keep_leftover(c, NULL, 0);
}

static void on_readable(struct gw_conn *c)
{
    size_t have = c->leftover ? c->leftover->len : 0;
    if (have) {
        /* From here on the bytes live in scratch; what stays unconsumed is kept anew. */
        memcpy(scratch, c->leftover->data, have);
        keep_leftover(c, NULL, 0);
    }
    ssize_t n = 0;
    if (have < SCRATCH_SIZE)
        n = recv(c->fd, scratch + have, SCRATCH_SIZE - have, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            if (have == 0)
                return;
            if (c->state == ST_BUSY) {
                keep_leftover(c, scratch, have);
                return;
            }
            n = 0; /* a pipelined request left over from the previous response */
        } else {
            GW_DEBUG("%s: read failed: %s", peer_name(c), strerror(errno));
            close_now(c);
            return;
        }
    } else if (n == 0 && have < SCRATCH_SIZE) {
        if (c->state == ST_LINGER) {
            mark_dead(c);
            return;
        }
        if (c->state == ST_READING)
            GW_INFO("%s: connection closed in the middle of a request", peer_name(c));
        else if (c->state == ST_BUSY || c->state == ST_UPGRADED)
            GW_DEBUG("%s: connection closed by the peer during a response", peer_name(c));
        close_now(c);
        return;
    }
    if (c->state == ST_LINGER)
        return;
    process_input(c, scratch, have + (size_t)n);
}

static void on_conn_event(struct gw_conn *c, uint32_t what)
{
    if (c->state == ST_DEAD)
        return; /* closed earlier in this batch; freed at the end of the turn */
    if ((what & EPOLLOUT) && !do_write(c))
        return;
    /* Errors and hang-ups are found by reading, as for a readable socket. */
    if ((what & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && (c->events & EV_READ) &&
        c->state != ST_DEAD)
        on_readable(c);
    else if ((what & (EPOLLHUP | EPOLLERR)) && !(c->events & EV_READ) && c->state != ST_DEAD) {
        /* Not reading (pipelined input is held back), but the socket is gone. */
        GW_DEBUG("%s: connection reset", peer_name(c));
        close_now(c);
    }
}

/* The epoll set is level-triggered: what is not handled in this batch comes back next turn. */
static void on_epoll(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    struct epoll_event evs[256];
    int n = epoll_wait(fd, evs, 256, 0);
    for (int i = 0; i < n; i++)
        on_conn_event(evs[i].data.ptr, evs[i].events);
}

/* Connections whose leftover input (pipelined requests) waits to be parsed. */
static void on_input_pending(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_server *srv = arg;
    struct gw_conn_list *l = &srv->conns.input_pending;
    /* Parsing may append connections again: those wait for the next round. */
    size_t n = l->n;
    for (size_t i = 0; i < n; i++) {
        struct gw_conn *c = l->items[i];
        if (!c)
            continue;
        l->items[i] = NULL;
        c->flags &= (uint8_t)~F_INPUT_PENDING;
        if (c->state != ST_DEAD && (c->events & EV_READ))
            on_readable(c);
    }
    memmove(l->items, l->items + n, (l->n - n) * sizeof(*l->items));
    l->n -= n;
    if (l->n)
        event_active(srv->conns.input_ev, EV_TIMEOUT, 0);
}

/* ---- timers --------------------------------------------------------------------------------- */

static void on_header_timeout(struct gw_timer *t, void *arg)
{
    (void)arg;
    struct gw_conn *c = GW_CONTAINER_OF(t, struct gw_conn, timer);
    if (c->state == ST_READING) {
        fail_request(c, 408, "request not received in time");
    } else if (c->state == ST_PROXY) {
        GW_INFO("%s: no PROXY protocol header in time; closing", peer_name(c));
        mark_dead(c);
    }
}

static void on_idle_timeout(struct gw_timer *t, void *arg)
{
    (void)arg;
    struct gw_conn *c = GW_CONTAINER_OF(t, struct gw_conn, timer);
    if (c->state == ST_IDLE) {
        GW_DEBUG("%s: idle keep-alive connection closed", peer_name(c));
        mark_dead(c);
    }
}

static void on_linger_timeout(struct gw_timer *t, void *arg)
{
    (void)arg;
    mark_dead(GW_CONTAINER_OF(t, struct gw_conn, timer));
}

void gw_conn_set_init(struct gw_server *srv)
{
    struct gw_conn_set *set = &srv->conns;
    gw_list_init(&set->live);
    gw_list_init(&set->dead);
    set->req_pool = (struct gw_pool)GW_POOL_INIT(REQ_POOL_MAX);
    gw_slab_init(&set->slab, sizeof(struct gw_conn));
    set->epfd = epoll_create1(EPOLL_CLOEXEC);
    GW_ASSERT(set->epfd >= 0);
    set->epoll_ev = event_new(srv->base, set->epfd, EV_READ | EV_PERSIST, on_epoll, srv);
    set->input_ev = event_new(srv->base, -1, 0, on_input_pending, srv);
    GW_ASSERT(set->epoll_ev && set->input_ev);
    /* The middle priority, like other I/O: the end-of-turn flush (lowest) comes after. */
    event_priority_set(set->epoll_ev, 1);
    event_priority_set(set->input_ev, 1);
    event_add(set->epoll_ev, NULL);
    gw_timerq_init(&set->header_q, srv->base, srv->cfg->header_timeout_ms, on_header_timeout, srv);
    gw_timerq_init(&set->idle_q, srv->base, srv->cfg->idle_timeout_ms, on_idle_timeout, srv);
    gw_timerq_init(&set->linger_q, srv->base, srv->cfg->linger_ms, on_linger_timeout, srv);
}

void gw_conn_set_cleanup(struct gw_server *srv)
{
    struct gw_conn_set *set = &srv->conns;
    event_free(set->epoll_ev);
    event_free(set->input_ev);
    gw_pool_release(&set->req_pool, req_destroy);
    gw_slab_release(&set->slab);
    gw_free(set->input_pending.items);
    gw_free(set->flush.items);
    close(set->epfd);
    gw_timerq_cleanup(&set->header_q);
    gw_timerq_cleanup(&set->idle_q);
    gw_timerq_cleanup(&set->linger_q);
}

/* ---- lifetime ------------------------------------------------------------------------------- */

void gw_conn_accept(struct gw_server *srv, int fd, unsigned listen_flags)
{
    /* TCP_NODELAY comes from the listening socket (Linux copies it to accepted sockets). */
    struct gw_conn *c = gw_slab_alloc(&srv->conns.slab);
    c->base.ops = &conn_ops;
    c->srv = srv;
    c->fd = fd;
    c->state = ST_IDLE;
    gw_timer_init(&c->timer);
    gw_list_insert_tail(&srv->conns.live, &c->node);
    srv->n_conns++;
    if (listen_flags & (GW_LISTEN_PROXY | GW_LISTEN_TRUSTED))
        c->client = gw_calloc(1, sizeof(*c->client));
    if (listen_flags & GW_LISTEN_TRUSTED)
        c->flags |= F_TRUSTED;
    if (srv->drain)
        c->flags |= F_DRAINED; /* its requests are answered 503 */
    if (listen_flags & GW_LISTEN_PROXY) {
        c->state = ST_PROXY;
        gw_timer_start(&c->timer, &srv->conns.header_q);
    } else {
        gw_timer_start(&c->timer, &srv->conns.idle_q);
    }
    set_events(c, EV_READ);
}

bool gw_conn_drain_next(struct gw_server *srv)
{
    if (gw_list_empty(&srv->conns.live))
        return false;
    struct gw_conn *c = conn_from_node(srv->conns.live.next);
    if (c->flags & F_DRAINED)
        return false; /* every connection before the told ones has been told */
    c->flags |= F_DRAINED;
    gw_list_remove(&c->node);
    gw_list_insert_tail(&srv->conns.live, &c->node);
    switch (c->state) {
    case ST_PROXY:
    case ST_IDLE:
        /* Nothing in flight but perhaps the end of a response: written, then closed. */
        conn_close(&c->base, true);
        break;
    case ST_BUSY:
    case ST_UPGRADED:
        if (c->h_ops && c->h_ops->going_away)
            c->h_ops->going_away(c->h);
        break;
    default:
        /* READING: its request is answered (503, or its session's close frame), then the
         * connection closes; closing ones are on their way out already. */
        break;
    }
    return true;
}

bool gw_conn_drain_settled(struct gw_server *srv)
{
    bool settled = true;
    struct gw_list *n = srv->conns.live.next;
    while (n != &srv->conns.live) {
        struct gw_conn *c = conn_from_node(n);
        n = n->next; /* closing moves nothing before n: conn_close keeps c in the list */
        if (c->state == ST_IDLE || c->state == ST_PROXY) {
            /* Accepted during the drain and still silent: its request would get 503. */
            conn_close(&c->base, true);
            settled = false;
        } else if (c->state != ST_LINGER) {
            settled = false;
        }
    }
    return settled;
}

void gw_conn_abort_all(struct gw_server *srv)
{
    while (!gw_list_empty(&srv->conns.live))
        close_now(conn_from_node(srv->conns.live.next));
}
