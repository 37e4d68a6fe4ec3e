#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "gateway.h"
#include "gw_alloc.h"
#include "gw_error.h"
#include "gw_log.h"
#include "gw_net.h"
#include "gw_timerq.h"
#include "http_conn.h"
#include "sockjs_session.h"

static void on_turn_end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_conn_turn_end(arg);
}

void gw_server_init(struct gw_server *srv, struct event_base *base, const struct gw_config *cfg,
                    gw_route_fn route, void *route_arg)
{
    memset(srv, 0, sizeof(*srv));
    srv->base = base;
    srv->cfg = cfg;
    srv->route = route;
    srv->route_arg = route_arg;
    srv->max_body_bytes = cfg->max_body_bytes;
    srv->max_connections = gw_config_max_connections(cfg);
    srv->turn_end = event_new(base, -1, 0, on_turn_end, srv);
    GW_ASSERT(srv->turn_end != NULL);
    /* Lowest priority (main sets up three; I/O gets the middle one): queued output is written once,
     * after every I/O callback of the loop turn has added to it. */
    event_priority_set(srv->turn_end, 2);
    gw_conn_set_init(srv);
}

void gw_server_add_route(struct gw_server *srv, const char *prefix, struct sockjs_server *sjs)
{
    GW_ASSERT(srv->n_routes < GW_MAX_ROUTES);
    struct gw_route *r = &srv->routes[srv->n_routes++];
    r->prefix = prefix;
    r->prefix_len = strlen(prefix);
    r->server = sjs;
}

/* Past --max-connections a connection costs an accept, one send and a close: no state, no
 * read. The answer is best effort (a client that already sent its request may see a reset). */
static void refuse_over_limit(struct gw_server *srv, int fd)
{
    static const char answer[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                 "Content-Type: text/plain; charset=UTF-8\r\n"
                                 "Content-Length: 21\r\n"
                                 "Retry-After: 1\r\n"
                                 "Connection: close\r\n"
                                 "\r\n"
                                 "Too many connections\n";
    ssize_t sent = send(fd, answer, sizeof(answer) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)sent;
    close(fd);
    srv->accept_stats.refused_limit++;
    uint64_t held;
    if (gw_log_gate_open(&srv->refuse_log, 10000, &held))
        GW_WARN("connection refused: %zu connections open (--max-connections %u); %" PRIu64
                " more refused since the last such line",
                srv->n_conns, srv->max_connections, held);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr,
                      int socklen, void *arg)
{
    (void)l;
    (void)addr;
    (void)socklen;
    struct gw_listener *listener = arg;
    struct gw_server *srv = listener->srv;
    /* Accepting works again: the next shortage starts with a short pause. */
    srv->accept_backoff_ms = 0;
    if (srv->n_conns >= srv->max_connections) {
        refuse_over_limit(srv, fd);
        return;
    }
    srv->accept_stats.accepted++;
    gw_conn_accept(srv, fd, listener->flags);
}

static void set_accepting(struct gw_server *srv, bool on)
{
    for (size_t i = 0; i < srv->n_listeners; i++) {
        if (on)
            evconnlistener_enable(srv->listeners[i].l);
        else
            evconnlistener_disable(srv->listeners[i].l);
    }
    srv->accept_paused = !on;
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    set_accepting(arg, true);
}

#define ACCEPT_BACKOFF_FIRST_MS 10
#define ACCEPT_BACKOFF_MAX_MS 500

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    struct gw_listener *listener = arg;
    struct gw_server *srv = listener->srv;
    int err = EVUTIL_SOCKET_ERROR();
    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
        GW_WARN("accept failed: %s", strerror(err));
        return;
    }
    /* Out of descriptors (or kernel memory): retrying at once would spin. The listeners
     * pause, the kernel's backlog holds new connections, and a timer retries, backing off
     * while the shortage lasts; open connections are served as before. */
    srv->accept_backoff_ms =
        srv->accept_backoff_ms
            ? (srv->accept_backoff_ms * 2 > ACCEPT_BACKOFF_MAX_MS ? ACCEPT_BACKOFF_MAX_MS
                                                                  : srv->accept_backoff_ms * 2)
            : ACCEPT_BACKOFF_FIRST_MS;
    srv->accept_stats.paused++;
    set_accepting(srv, false);
    struct timeval tv = {.tv_sec = srv->accept_backoff_ms / 1000,
                         .tv_usec = (suseconds_t)(srv->accept_backoff_ms % 1000) * 1000};
    event_add(srv->accept_resume, &tv);
    uint64_t held;
    if (gw_log_gate_open(&srv->accept_log, 10000, &held))
        GW_WARN("accept failed: %s (%zu connections); accepting paused, retried in %u ms; %" PRIu64
                " more such pauses since the last such line",
                strerror(err), srv->n_conns, srv->accept_backoff_ms, held);
}

/* "127.0.0.1:8080", "[::1]:8080", ":8080" (all IPv4 interfaces): 0 or GW_EINVAL. */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[128];
    const char *colon = strrchr(spec, ':');
    if (!colon || colon[1] == '\0')
        return GW_EINVAL;
    size_t host_len = (size_t)(colon - spec);
    if (host_len >= sizeof(host))
        return GW_EINVAL;
    memcpy(host, spec, host_len);
    host[host_len] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return GW_EINVAL;
    memset(ss, 0, sizeof(*ss));
    if (host[0] == '[' && host_len > 2 && host[host_len - 1] == ']') {
        host[host_len - 1] = '\0';
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
            return GW_EINVAL;
        *len = sizeof(*a);
        return 0;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (host_len == 0)
        a->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
        return GW_EINVAL;
    *len = sizeof(*a);
    return 0;
}

/* "ADDR:PORT[,proxy][,trusted]": splits off the options; 0 or GW_EINVAL. */
static int parse_listen_options(const char *spec, char *addr, size_t cap, unsigned *flags)
{
    const char *comma = strchr(spec, ',');
    size_t len = comma ? (size_t)(comma - spec) : strlen(spec);
    if (len >= cap)
        return GW_EINVAL;
    memcpy(addr, spec, len);
    addr[len] = '\0';
    *flags = 0;
    while (comma) {
        const char *opt = comma + 1;
        comma = strchr(opt, ',');
        size_t n = comma ? (size_t)(comma - opt) : strlen(opt);
        if (n == 5 && strncmp(opt, "proxy", 5) == 0)
            *flags |= GW_LISTEN_PROXY;
        else if (n == 7 && strncmp(opt, "trusted", 7) == 0)
            *flags |= GW_LISTEN_TRUSTED;
        else
            return GW_EINVAL;
    }
    return 0;
}

int gw_server_listen(struct gw_server *srv, const struct gw_str_list *specs, const char *label)
{
    srv->accept_resume = evtimer_new(srv->base, on_accept_resume, srv);
    for (size_t i = 0; i < specs->n; i++) {
        const char *spec = specs->items[i];
        char addr[160];
        unsigned flags;
        struct sockaddr_storage ss;
        socklen_t len;
        if (parse_listen_options(spec, addr, sizeof(addr), &flags) != 0 ||
            parse_listen(addr, &ss, &len) != 0) {
            GW_ERROR("invalid listen address '%s': expected ADDR:PORT or [ADDR6]:PORT, then "
                     "optionally ,proxy and/or ,trusted",
                     spec);
            return GW_EINVAL;
        }
        struct gw_listener *listener = &srv->listeners[srv->n_listeners];
        listener->srv = srv;
        listener->flags = flags;
        struct evconnlistener *l = evconnlistener_new_bind(
            srv->base, on_accept, listener, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
            (int)srv->cfg->backlog, (struct sockaddr *)&ss, (int)len);
        if (!l) {
            GW_ERROR("cannot listen on %s: %s", spec, strerror(errno));
            return GW_EIO;
        }
        evconnlistener_set_error_cb(l, on_accept_error);
        /* Set once here, inherited by every accepted socket: a syscall less per connection.
         * Each frame is written once per loop turn, already coalesced: Nagle would only delay. */
        int one = 1;
        setsockopt(evconnlistener_get_fd(l), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        listener->l = l;
        srv->n_listeners++;
        /* Report the real port (the configured one may be 0). */
        struct sockaddr_storage bound;
        socklen_t blen = sizeof(bound);
        getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&bound, &blen);
        char name[INET6_ADDRSTRLEN + 8];
        GW_INFO("%s %s%s%s", label, gw_format_sockaddr(&bound, name, sizeof(name)),
                flags & GW_LISTEN_PROXY ? " (PROXY protocol required)" : "",
                flags & GW_LISTEN_TRUSTED ? " (X-Forwarded-For trusted)" : "");
    }
    return 0;
}

/* ---- drain ------------------------------------------------------------------------------- */

struct gw_drain {
    struct gw_server *srv;
    struct event *tick;
    uint64_t start_ms;
    uint32_t window_ms; /* --drain-ms: closes are spread over this */
    uint32_t grace_ms;  /* then the last bytes get this long (--linger-ms) */
    size_t total;       /* connections open when the drain began */
    size_t told;
    uint64_t first_told_ms, last_told_ms;
    void (*done)(void *arg);
    void *done_arg;
    unsigned seed;
};

/* 5 to 15 ms: ticks at fixed intervals would make every node of a fleet stopped at once send
 * its closes in step. */
static void drain_arm(struct gw_drain *d)
{
    struct timeval tv = {0, (suseconds_t)(5000 + rand_r(&d->seed) % 10001)};
    event_add(d->tick, &tv);
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_drain *d = arg;
    struct gw_server *srv = d->srv;
    uint64_t elapsed = gw_now_ms() - d->start_ms;
    /* Connections are told in their list order, an even share per tick: which client gets its
     * close early or late is arbitrary, so reconnects spread over the window. */
    size_t due = d->window_ms == 0 || elapsed >= d->window_ms
                     ? d->total
                     : (size_t)((double)d->total * (double)elapsed / d->window_ms);
    while (d->told < due && gw_conn_drain_next(srv)) {
        if (d->told == 0)
            d->first_told_ms = elapsed;
        d->last_told_ms = elapsed;
        d->told++;
    }
    if (d->told < due)
        d->told = due; /* the rest closed by themselves meanwhile */
    bool all_told = d->told >= d->total;
    bool deadline_passed = elapsed >= (uint64_t)d->window_ms + d->grace_ms;
    if (all_told && (gw_conn_drain_settled(srv) || deadline_passed)) {
        GW_INFO("drain: %zu connections told to go away between +%" PRIu64 " and +%" PRIu64
                " ms; %zu left at +%" PRIu64 " ms",
                d->total, d->first_told_ms, d->last_told_ms, srv->n_conns, elapsed);
        d->done(d->done_arg);
        return;
    }
    drain_arm(d);
}

void gw_server_drain(struct gw_server *srv, uint32_t drain_ms, void (*done)(void *arg), void *arg)
{
    if (srv->drain)
        return;
    struct gw_drain *d = gw_calloc(1, sizeof(*d));
    d->srv = srv;
    d->start_ms = gw_now_ms();
    d->window_ms = drain_ms;
    d->grace_ms = srv->cfg->linger_ms;
    d->total = srv->n_conns;
    d->done = done;
    d->done_arg = arg;
    d->seed = (unsigned)getpid() ^ (unsigned)d->start_ms;
    d->tick = evtimer_new(srv->base, on_drain_tick, d);
    GW_ASSERT(d->tick != NULL);
    srv->drain = d;
    for (size_t i = 0; i < srv->n_routes; i++)
        sockjs_server_drain(srv->routes[i].server);
    GW_INFO("draining: %zu connections, %zu sessions, closed over %u ms", d->total,
            gw_server_session_count(srv), drain_ms);
    /* The first share goes out at once (all of it with --drain-ms 0). */
    event_active(d->tick, EV_TIMEOUT, 0);
}

bool gw_server_draining(const struct gw_server *srv)
{
    return srv->drain != NULL;
}

size_t gw_server_session_count(const struct gw_server *srv)
{
    size_t n = 0;
    for (size_t i = 0; i < srv->n_routes; i++)
        n += sockjs_server_session_count(srv->routes[i].server);
    return n;
}

size_t gw_server_open_sessions(const struct gw_server *srv, enum sockjs_transport t)
{
    size_t n = 0;
    for (size_t i = 0; i < srv->n_routes; i++)
        n += sockjs_server_open_sessions(srv->routes[i].server, t);
    return n;
}

size_t gw_server_longest_session_chain(const struct gw_server *srv)
{
    size_t longest = 0;
    for (size_t i = 0; i < srv->n_routes; i++) {
        size_t n = sockjs_server_longest_chain(srv->routes[i].server);
        longest = n > longest ? n : longest;
    }
    return longest;
}

uint64_t gw_server_refused_crowded(const struct gw_server *srv)
{
    uint64_t n = 0;
    for (size_t i = 0; i < srv->n_routes; i++)
        n += sockjs_server_refused_crowded(srv->routes[i].server);
    return n;
}

void gw_server_shutdown(struct gw_server *srv)
{
    for (size_t i = 0; i < srv->n_listeners; i++)
        evconnlistener_free(srv->listeners[i].l);
    srv->n_listeners = 0;
    gw_conn_abort_all(srv);
    gw_conn_turn_end(srv);
}

void gw_server_cleanup(struct gw_server *srv)
{
    gw_conn_turn_end(srv);
    if (srv->drain) {
        event_free(srv->drain->tick);
        gw_free(srv->drain);
        srv->drain = NULL;
    }
    if (srv->accept_resume)
        event_free(srv->accept_resume);
    event_free(srv->turn_end);
    gw_conn_set_cleanup(srv);
}
