#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "gateway.h"
#include "gw_alloc.h"
#include "gw_log.h"
#include "gw_net.h"
#include "http_conn.h"

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
    gw_list_init(&srv->conns);
    gw_list_init(&srv->dead);
    srv->turn_end = event_new(base, -1, 0, on_turn_end, srv);
    GW_ASSERT(srv->turn_end != NULL);
    /* Lowest priority (main sets up three; I/O gets the middle one): queued output is written once, after every I/O callback of the
     * loop turn has added to it. */
    event_priority_set(srv->turn_end, 2);
    gw_conn_events_init(srv);
    gw_conn_timers_init(srv);
}

void gw_server_add_route(struct gw_server *srv, const char *prefix, struct sockjs_server *sjs)
{
    GW_ASSERT(srv->n_routes < GW_MAX_ROUTES);
    struct gw_route *r = &srv->routes[srv->n_routes++];
    r->prefix = prefix;
    r->prefix_len = strlen(prefix);
    r->server = sjs;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr,
                      int socklen, void *arg)
{
    (void)l;
    (void)addr;
    (void)socklen;
    struct gw_listener *listener = arg;
    gw_conn_accept(listener->srv, fd, listener->flags);
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_server *srv = arg;
    for (size_t i = 0; i < srv->n_listeners; i++)
        evconnlistener_enable(srv->listeners[i].l);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    struct gw_server *srv = arg;
    int err = EVUTIL_SOCKET_ERROR();
    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
        GW_WARN("accept failed: %s", strerror(err));
        return;
    }
    /* Out of descriptors: retrying at once would spin; pause accepting briefly instead, and
     * let the kernel's backlog hold the queue. */
    GW_WARN("accept failed: %s (%zu connections); pausing accepts for 100 ms", strerror(err),
            srv->n_conns);
    for (size_t i = 0; i < srv->n_listeners; i++)
        evconnlistener_disable(srv->listeners[i].l);
    struct timeval tv = {0, 100 * 1000};
    event_add(srv->accept_resume, &tv);
}

/* "127.0.0.1:8080", "[::1]:8080", ":8080" (all IPv4 interfaces). */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[128];
    const char *colon = strrchr(spec, ':');
    if (!colon || colon[1] == '\0')
        return -1;
    size_t host_len = (size_t)(colon - spec);
    if (host_len >= sizeof(host))
        return -1;
    memcpy(host, spec, host_len);
    host[host_len] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return -1;
    memset(ss, 0, sizeof(*ss));
    if (host[0] == '[' && host_len > 2 && host[host_len - 1] == ']') {
        host[host_len - 1] = '\0';
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
            return -1;
        *len = sizeof(*a);
        return 0;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (host_len == 0)
        a->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
        return -1;
    *len = sizeof(*a);
    return 0;
}

/* "ADDR:PORT[,proxy][,trusted]": splits off the options. */
static int parse_listen_options(const char *spec, char *addr, size_t cap, unsigned *flags)
{
    const char *comma = strchr(spec, ',');
    size_t len = comma ? (size_t)(comma - spec) : strlen(spec);
    if (len >= cap)
        return -1;
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
            return -1;
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
            return -1;
        }
        struct gw_listener *listener = &srv->listeners[srv->n_listeners];
        listener->srv = srv;
        listener->flags = flags;
        struct evconnlistener *l = evconnlistener_new_bind(
            srv->base, on_accept, listener, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
            (int)srv->cfg->backlog, (struct sockaddr *)&ss, (int)len);
        if (!l) {
            GW_ERROR("cannot listen on %s: %s", spec, strerror(errno));
            return -1;
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

void gw_server_shutdown(struct gw_server *srv)
{
    for (size_t i = 0; i < srv->n_listeners; i++)
        evconnlistener_free(srv->listeners[i].l);
    srv->n_listeners = 0;
    while (!gw_list_empty(&srv->conns))
        gw_conn_abort(gw_conn_from_node(srv->conns.next));
    gw_conn_turn_end(srv);
}

void gw_server_cleanup(struct gw_server *srv)
{
    gw_conn_turn_end(srv);
    if (srv->accept_resume)
        event_free(srv->accept_resume);
    event_free(srv->turn_end);
    gw_conn_events_cleanup(srv);
    gw_timerq_cleanup(&srv->header_q);
    gw_timerq_cleanup(&srv->idle_q);
    gw_timerq_cleanup(&srv->linger_q);
}
