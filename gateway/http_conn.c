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
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "gw_alloc.h"
#include "gw_error.h"
#include "gw_log.h"
#include "gw_net.h"
#include "gw_outq.h"
#include "gw_sendbatch.h"
#include "gw_slab.h"
#include "http_conn_internal.h"
#include "proxy_protocol.h"

/* Rare (a request split over reads, pipelining), so kept out of the connection. */
struct leftover {
    uint32_t len;
    uint8_t data[];
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

const char *gw_conn__peer_name(const struct gw_conn *c)
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
        .events =
            (events & EV_READ ? EPOLLIN | EPOLLRDHUP : 0) | (events & EV_WRITE ? EPOLLOUT : 0),
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

/* Dead, its descriptor still open (the caller closes it). */
static void enter_dead(struct gw_conn *c)
{
    gw_timer_stop(&c->timer);
    c->state = ST_DEAD;
    c->h_ops = NULL;
    gw_list_remove(&c->node);
    c->srv->n_conns--;
    gw_list_insert_tail(&c->srv->conns.dead, &c->node);
    event_active(c->srv->turn_end, EV_TIMEOUT, 0);
}

static void mark_dead(struct gw_conn *c)
{
    if (c->state == ST_DEAD)
        return;
    enter_dead(c);
    close(c->fd);
    c->fd = -1;
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
    gw_conn__req_free(c);
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
    if (c->state == ST_DEAD)
        return;
    /* The descriptor is closed after the handler hears of the close: its session's close
     * line names the client (gw_conn__peer_name asks the descriptor). */
    enter_dead(c);
    if (ops && ops->on_close)
        ops->on_close(h);
    close(c->fd);
    c->fd = -1;
}

static void start_linger(struct gw_conn *c)
{
    c->state = ST_LINGER;
    shutdown(c->fd, SHUT_WR);
    gw_timer_start(&c->timer, &c->srv->conns.linger_q);
    set_events(c, EV_READ);
}

/* ---- output --------------------------------------------------------------------------------- */

/* A loop turn that has output for at least CONN_SEND_BATCH_MIN connections writes it with one
 * io_uring submission per CONN_SEND_BATCH of them (gw_sendbatch.h); below that, writev each. */
#define CONN_SEND_BATCH 256
#define CONN_SEND_BATCH_MIN 4

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

/* A write that wrote nothing: GW_EAGAIN (the socket is full) or GW_EIO with err; returns false
 * if the connection died. */
static bool write_refused(struct gw_conn *c, ssize_t rc, int err)
{
    if (rc == GW_EAGAIN) {
        size_t queued = gw_outq_bytes(c->out);
        if (queued > c->srv->cfg->max_output_bytes) {
            /* A peer that does not read loses its own connection, not our memory. */
            GW_WARN("%s: slow consumer: %zu bytes unwritten (limit %u); closing",
                    gw_conn__peer_name(c), queued, c->srv->cfg->max_output_bytes);
            close_now(c);
            return false;
        }
        set_events(c, c->events | EV_WRITE);
        return true;
    }
    GW_DEBUG("%s: write failed: %s", gw_conn__peer_name(c), strerror(err));
    close_now(c);
    return false;
}

/* Writes what is queued; returns false if the connection died. */
static bool do_write(struct gw_conn *c)
{
    if (c->state == ST_DEAD)
        return false;
    while (c->out && gw_outq_bytes(c->out) > 0) {
        ssize_t rc = gw_outq_write(c->out, c->fd);
        if (rc < 0)
            return write_refused(c, rc, errno);
        c->srv->accept_stats.bytes_written += (uint64_t)rc;
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

/* Whether c's queued output goes into the turn's batch: not when it waits for the socket to
 * have room (its EV_WRITE event writes it). */
static bool batchable(const struct gw_conn *c)
{
    return c->state != ST_DEAD && c->out && gw_outq_bytes(c->out) > 0 && !(c->events & EV_WRITE);
}

/* Writes the flush list's connections from `from` on (at most one batch of them) with one
 * submission, then finishes each with do_write (the rest of a long queue, or what a full
 * socket means); returns the index after the last one. */
static size_t flush_batch(struct gw_server *srv, size_t from)
{
    struct gw_conn_set *set = &srv->conns;
    struct gw_conn *batch[CONN_SEND_BATCH];
    size_t n = 0, i = from;
    for (; i < set->flush.n && n < CONN_SEND_BATCH; i++) {
        struct gw_conn *c = set->flush.items[i];
        if (!batchable(c))
            continue;
        if (!gw_sendbatch_add(set->sends, c->out, c->fd))
            break; /* full (long queues use up its byte ranges first): the next batch's */
        batch[n++] = c;
    }
    gw_sendbatch_send(set->sends);
    for (size_t k = 0; k < n; k++) {
        struct gw_conn *c = batch[k];
        int err = 0;
        ssize_t rc = gw_sendbatch_result(set->sends, k, &err);
        if (rc >= 0)
            srv->accept_stats.bytes_written += (uint64_t)rc;
        else
            write_refused(c, rc, err);
    }
    /* Everything from `from` to i, batched or not, in list order: the batch's leftovers and
     * endings, and the connections it did not take. */
    for (size_t k = from; k < i; k++) {
        struct gw_conn *c = set->flush.items[k];
        c->flags &= (uint8_t)~F_ON_FLUSH_LIST;
        if (!(c->events & EV_WRITE))
            do_write(c);
    }
    return i;
}

void gw_conn_turn_end(struct gw_server *srv)
{
    struct gw_conn_set *set = &srv->conns;
    /* Writing may schedule more (a drained handler writes again): they are written too. */
    for (size_t i = 0; i < set->flush.n;) {
        if (set->sends && set->flush.n - i >= CONN_SEND_BATCH_MIN) {
            i = flush_batch(srv, i);
            continue;
        }
        struct gw_conn *c = set->flush.items[i++];
        c->flags &= (uint8_t)~F_ON_FLUSH_LIST;
        do_write(c);
    }
    set->flush.n = 0;
    while (!gw_list_empty(&set->dead)) {
        struct gw_conn *c = conn_from_node(set->dead.next);
        gw_list_remove(&c->node);
        conn_free(c);
    }
}

/* ---- tp_conn interface ---------------------------------------------------------------------- */

static bool writable_state(const struct gw_conn *c)
{
    return c->state != ST_DEAD && c->state != ST_LINGER;
}

void gw_conn__write(struct tp_conn *tc, const void *data, size_t len)
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
    gw_conn__req_free(c);
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

void gw_conn__close(struct tp_conn *tc, bool flush)
{
    struct gw_conn *c = (struct gw_conn *)tc;
    c->h_ops = NULL;
    c->h = NULL;
    if (c->state == ST_DEAD || c->state == ST_LINGER || c->state == ST_FLUSHING)
        return;
    gw_conn__req_free(c);
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
        gw_conn__close(tc, true);
        return;
    }
    c->h_ops = NULL;
    c->h = NULL;
    gw_conn__req_free(c);
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
    return gw_conn__peer_name((const struct gw_conn *)tc);
}

static const struct tp_conn_ops conn_ops = {
    .write = gw_conn__write,
    .write_ref = conn_write_ref,
    .queued = conn_queued,
    .set_handler = conn_set_handler,
    .upgrade = conn_upgrade,
    .want_drain = conn_want_drain,
    .end_response = conn_end_response,
    .close = gw_conn__close,
    .peer = conn_peer,
};

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
        GW_INFO("%s: no valid PROXY protocol header; closing", gw_conn__peer_name(c));
        c->srv->accept_stats.refused_proxy++;
        close_now(c);
        return false;
    }
    if (!info.local)
        gw_format_sockaddr(&info.src, c->client->proxied, sizeof(c->client->proxied));
    GW_DEBUG("%s: PROXY protocol header accepted", gw_conn__peer_name(c));
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
            used = gw_conn__parse_request(c, data, len);
            break;
        case ST_UPGRADED:
            used = c->h_ops && c->h_ops->on_data ? c->h_ops->on_data(c->h, data, len) : len;
            if (used == 0) {
                keep_leftover(c, data, len);
                if (c->leftover->len > SCRATCH_SIZE / 2) {
                    GW_INFO("%s: unconsumed input over %d bytes", gw_conn__peer_name(c),
                            SCRATCH_SIZE / 2);
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
            GW_DEBUG("%s: read failed: %s", gw_conn__peer_name(c), strerror(errno));
            close_now(c);
            return;
        }
    } else if (n == 0 && have < SCRATCH_SIZE) {
        if (c->state == ST_LINGER) {
            mark_dead(c);
            return;
        }
        if (c->state == ST_READING)
            GW_INFO("%s: connection closed in the middle of a request", gw_conn__peer_name(c));
        else if (c->state == ST_BUSY || c->state == ST_UPGRADED)
            GW_DEBUG("%s: connection closed by the peer during a response", gw_conn__peer_name(c));
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
        GW_DEBUG("%s: connection reset", gw_conn__peer_name(c));
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
    /* The batch's log lines (session closes, publishes) go out in one write. */
    gw_log_hold();
    for (int i = 0; i < n; i++)
        on_conn_event(evs[i].data.ptr, evs[i].events);
    gw_log_release();
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
        gw_conn__fail_request(c, 408, "request not received in time");
    } else if (c->state == ST_PROXY) {
        GW_INFO("%s: no PROXY protocol header in time; closing", gw_conn__peer_name(c));
        c->srv->accept_stats.refused_proxy++;
        mark_dead(c);
    }
}

static void on_idle_timeout(struct gw_timer *t, void *arg)
{
    (void)arg;
    struct gw_conn *c = GW_CONTAINER_OF(t, struct gw_conn, timer);
    if (c->state == ST_IDLE) {
        GW_DEBUG("%s: idle keep-alive connection closed", gw_conn__peer_name(c));
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
    if (!srv->cfg->no_io_uring) {
        set->sends = gw_sendbatch_new(CONN_SEND_BATCH);
        static bool told; /* once per process, not per server (the API has its own) */
        if (!set->sends && !told) {
            told = true;
            GW_INFO("io_uring unavailable (%s): output is written one connection at a time",
                    strerror(errno));
        }
    }
    gw_list_init(&set->live);
    gw_list_init(&set->dead);
    gw_conn__req_pool_init(&set->req_pool);
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
    gw_conn__req_pool_cleanup(&set->req_pool);
    gw_slab_release(&set->slab);
    gw_free(set->input_pending.items);
    gw_free(set->flush.items);
    gw_sendbatch_free(set->sends);
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
        gw_conn__close(&c->base, true);
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
        n = n->next; /* closing moves nothing before n: gw_conn__close keeps c in the list */
        if (c->state == ST_IDLE || c->state == ST_PROXY) {
            /* Accepted during the drain and still silent: its request would get 503. */
            gw_conn__close(&c->base, true);
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
