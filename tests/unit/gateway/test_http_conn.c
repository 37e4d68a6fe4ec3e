/* HTTP connections and routing over a socketpair: requests in, the exact answers out. */
#include "gw_test.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "apps.h"
#include "gateway.h"
#include "gw_alloc.h"
#include "gw_buf.h"
#include "http_conn.h"

struct fixture {
    struct event_base *base;
    struct gw_config cfg;
    struct gw_server srv;
    struct gw_apps *apps;
    int client;
    struct gw_buf got;
    bool eof;
    struct event *read_ev;
    struct event *timeout_ev;
};

static void on_client_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct fixture *f = arg;
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
        gw_buf_append(&f->got, buf, (size_t)n);
        return;
    }
    f->eof = true;
    event_del(f->read_ev);
    event_base_loopbreak(f->base);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    gw_config_defaults(&f->cfg);
    f->cfg.test_app = true;
    f->cfg.max_header_bytes = 1024;
    f->cfg.max_headers = 16;
    f->cfg.max_body_bytes = 4096;
    f->cfg.header_timeout_ms = 50;
}

static void fixture_start(struct fixture *f)
{
    f->base = event_base_new();
    event_base_priority_init(f->base, 3);
    gw_server_init(&f->srv, f->base, &f->cfg, gw_route_request, NULL);
    f->apps = gw_apps_new(&f->srv, &f->cfg, NULL);
    int sv[2];
    GW_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    gw_conn_accept(&f->srv, sv[0], 0);
    f->client = sv[1];
    f->read_ev = event_new(f->base, f->client, EV_READ | EV_PERSIST, on_client_read, f);
    event_add(f->read_ev, NULL);
    f->timeout_ev = evtimer_new(f->base, on_timeout, f->base);
}

static void fixture_cleanup(struct fixture *f)
{
    gw_server_shutdown(&f->srv);
    gw_apps_free(f->apps);
    gw_server_cleanup(&f->srv);
    event_free(f->read_ev);
    event_free(f->timeout_ev);
    close(f->client);
    event_base_free(f->base);
    gw_buf_release(&f->got);
}

/* Sends req and runs the loop until the gateway closes the connection (or 2 s pass). */
static void exchange(struct fixture *f, const char *req)
{
    size_t len = strlen(req);
    GW_ASSERT(write(f->client, req, len) == (ssize_t)len);
    struct timeval tv = {2, 0};
    evtimer_add(f->timeout_ev, &tv);
    event_base_dispatch(f->base);
    evtimer_del(f->timeout_ev);
    gw_buf_append(&f->got, "", 1); /* NUL-terminate for strstr */
    f->got.len--;
}

static int status_of(const char *response)
{
    int status = 0;
    if (sscanf(response, "HTTP/1.1 %d", &status) != 1)
        return -1;
    return status;
}

/* One request with Connection: close; returns the status. */
static int request_status(const char *method, const char *path, const char *extra)
{
    struct fixture f;
    fixture_init(&f);
    fixture_start(&f);
    char req[2048];
    snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s\r\n", method,
             path, extra ? extra : "");
    exchange(&f, req);
    int status = f.eof ? status_of(f.got.data) : -2;
    fixture_cleanup(&f);
    return status;
}

TEST(routes_static_urls)
{
    ASSERT_INT_EQ(request_status("GET", "/echo", NULL), 200);
    ASSERT_INT_EQ(request_status("GET", "/echo/", NULL), 200);
    ASSERT_INT_EQ(request_status("GET", "/echo/info", NULL), 200);
    ASSERT_INT_EQ(request_status("OPTIONS", "/echo/info", NULL), 204);
    ASSERT_INT_EQ(request_status("GET", "/echo/iframe.html", NULL), 200);
    ASSERT_INT_EQ(request_status("GET", "/echo/iframe-a.b_c-1.html?x=1", NULL), 200);
    ASSERT_INT_EQ(request_status("GET", "/echoes", NULL), 404);
    ASSERT_INT_EQ(request_status("GET", "/nothing", NULL), 404);
    static const char *const not_found[] = {
        "/echo/a",
        "/echo/a.html",
        "/echo//",
        "/echo///",
        "/echo/a/a",
        "/echo/a/a/",
        "/echo/a/",
        "/echo/iframe.htm",
        "/echo/iframe",
        "/echo/IFRAME.HTML",
        "/echo/iframe.HTML",
        "/echo/iframe.xml",
        "/echo/iframe-/.html",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(not_found); i++) {
        int st = request_status("GET", not_found[i], NULL);
        if (st != 404)
            GW_FAIL_AT("GET %s: %d, expected 404", not_found[i], st);
    }
}

TEST(routes_session_urls)
{
    ASSERT_INT_EQ(request_status("POST", "/echo/000/s1/xhr", NULL), 200);
    ASSERT_INT_EQ(request_status("GET", "/echo/000/s1/xhr", NULL), 404);
    ASSERT_INT_EQ(request_status("OPTIONS", "/echo/000/s1/xhr_send", NULL), 204);
    ASSERT_INT_EQ(request_status("POST", "/echo/000/unknown/xhr_send", "Content-Length: 0\r\n"),
                  404);
    ASSERT_INT_EQ(request_status("POST", "/echo/000/s.1/xhr", NULL), 404);
    ASSERT_INT_EQ(request_status("POST", "/echo//s1/xhr", NULL), 404);
    ASSERT_INT_EQ(request_status("POST", "/echo/000/s1/nonsense", NULL), 404);
    ASSERT_INT_EQ(request_status("POST", "/echo/000/s1/eventsource", NULL), 404);
    ASSERT_INT_EQ(request_status("POST", "/echo/000/s1/websocket", NULL), 405);
    ASSERT_INT_EQ(request_status("GET", "/echo/000/s1/websocket", NULL), 400);
    ASSERT_INT_EQ(request_status("GET", "/disabled_websocket_echo/000/s1/websocket", NULL), 404);
    ASSERT_INT_EQ(request_status("GET", "/disabled_websocket_echo/websocket", NULL), 404);
}

TEST(pipelined_requests_answer_in_order)
{
    struct fixture f;
    fixture_init(&f);
    fixture_start(&f);
    exchange(&f, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n"
                 "OPTIONS /echo/info HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    ASSERT_TRUE(f.eof);
    const char *first = strstr(f.got.data, "HTTP/1.1 200");
    const char *second = strstr(f.got.data, "HTTP/1.1 404");
    const char *third = strstr(f.got.data, "HTTP/1.1 204");
    ASSERT_TRUE(first == f.got.data);
    ASSERT_TRUE(second && second > first);
    ASSERT_TRUE(third && third > second);
    fixture_cleanup(&f);
}

TEST(http10_without_keep_alive_closes)
{
    struct fixture f;
    fixture_init(&f);
    fixture_start(&f);
    exchange(&f, "GET /echo HTTP/1.0\r\n\r\n");
    ASSERT_TRUE(f.eof);
    ASSERT_INT_EQ(status_of(f.got.data), 200);
    ASSERT_TRUE(strstr(f.got.data, "Connection: close\r\n") != NULL);
    ASSERT_TRUE(strstr(f.got.data, "chunked") == NULL);
    fixture_cleanup(&f);
}

static int limit_status(const char *req, const char **body_out)
{
    struct fixture f;
    fixture_init(&f);
    fixture_start(&f);
    exchange(&f, req);
    int st = f.eof ? status_of(f.got.data) : -2;
    if (body_out) {
        const char *b = strstr(f.got.data, "\r\n\r\n");
        *body_out = b && strstr(b, "too large") ? "too large" : "";
    }
    fixture_cleanup(&f);
    return st;
}

TEST(limits_answer_with_clear_statuses)
{
    char big[4096];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char req[8192];
    snprintf(req, sizeof(req), "GET /echo HTTP/1.1\r\nX-Big: %s\r\n\r\n", big);
    ASSERT_INT_EQ(limit_status(req, NULL), 431);
    snprintf(req, sizeof(req), "GET /echo/%s HTTP/1.1\r\n\r\n", big);
    ASSERT_INT_EQ(limit_status(req, NULL), 431);
    /* Too many headers. */
    struct gw_buf many = GW_BUF_INIT;
    gw_buf_append_str(&many, "GET /echo HTTP/1.1\r\n");
    for (int i = 0; i < 20; i++)
        gw_buf_appendf(&many, "X-%d: v\r\n", i);
    gw_buf_append(&many, "\r\n", 3);
    ASSERT_INT_EQ(limit_status(many.data, NULL), 431);
    gw_buf_release(&many);
    /* Body over the limit, by Content-Length (refused before reading it) and chunked. */
    const char *body;
    ASSERT_INT_EQ(
        limit_status("POST /echo/000/s/xhr_send HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", &body),
        413);
    ASSERT_STR_EQ(body, "too large");
    struct gw_buf chunked = GW_BUF_INIT;
    gw_buf_append_str(&chunked,
                      "POST /echo/000/s/xhr_send HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 5; i++) {
        gw_buf_append_str(&chunked, "400\r\n");
        char *p = gw_buf_reserve(&chunked, 1024);
        memset(p, 'b', 1024);
        chunked.len += 1024;
        gw_buf_append_str(&chunked, "\r\n");
    }
    gw_buf_append(&chunked, "0\r\n\r\n", 6);
    ASSERT_INT_EQ(limit_status(chunked.data, NULL), 413);
    gw_buf_release(&chunked);
    /* Malformed. */
    ASSERT_INT_EQ(limit_status("GARBAGE\r\n\r\n", NULL), 400);
    ASSERT_INT_EQ(limit_status("GET /echo HTTP/1.1\r\nBad Header\r\n\r\n", NULL), 400);
    ASSERT_INT_EQ(limit_status("GET /echo HTTP/9.9\r\n\r\n", NULL), 505);
}

TEST(slow_header_times_out_with_408)
{
    struct fixture f;
    fixture_init(&f);
    fixture_start(&f);
    exchange(&f, "GET /echo HTTP/1.1\r\nHost: t\r\n");
    ASSERT_TRUE(f.eof);
    ASSERT_INT_EQ(status_of(f.got.data), 408);
    fixture_cleanup(&f);
}

TEST(idle_keep_alive_connection_is_closed_silently)
{
    struct fixture f;
    fixture_init(&f);
    f.cfg.idle_timeout_ms = 50;
    fixture_start(&f);
    exchange(&f, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    ASSERT_TRUE(f.eof);
    ASSERT_INT_EQ(status_of(f.got.data), 200);
    /* Exactly one response: nothing was written when the idle connection went away. */
    ASSERT_TRUE(strstr(f.got.data + 1, "HTTP/1.1") == NULL);
    fixture_cleanup(&f);
}

static void stop_when_no_conns(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fixture *f = arg;
    if (f->srv.n_conns == 0)
        event_base_loopbreak(f->base);
}

TEST(peer_that_does_not_read_is_disconnected)
{
    struct fixture f;
    fixture_init(&f);
    f.cfg.max_output_bytes = 4096;
    fixture_start(&f);
    event_del(f.read_ev); /* the client never reads */
    struct gw_buf reqs = GW_BUF_INIT;
    for (int i = 0; i < 3000; i++)
        gw_buf_append_str(&reqs, "GET /echo/info HTTP/1.1\r\n\r\n");
    ssize_t n = write(f.client, reqs.data, reqs.len);
    ASSERT_TRUE(n > 0);
    struct event *poll = event_new(f.base, -1, EV_PERSIST, stop_when_no_conns, &f);
    struct timeval every = {0, 10 * 1000};
    event_add(poll, &every);
    struct timeval tv = {5, 0};
    evtimer_add(f.timeout_ev, &tv);
    event_base_dispatch(f.base);
    ASSERT_UINT_EQ(f.srv.n_conns, 0);
    event_free(poll);
    gw_buf_release(&reqs);
    fixture_cleanup(&f);
}

GW_TEST_MAIN(TEST_CASE(peer_that_does_not_read_is_disconnected), TEST_CASE(routes_static_urls),
             TEST_CASE(routes_session_urls), TEST_CASE(pipelined_requests_answer_in_order),
             TEST_CASE(http10_without_keep_alive_closes),
             TEST_CASE(limits_answer_with_clear_statuses),
             TEST_CASE(slow_header_times_out_with_408),
             TEST_CASE(idle_keep_alive_connection_is_closed_silently))
