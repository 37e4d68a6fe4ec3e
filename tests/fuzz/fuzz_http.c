/* libFuzzer: the whole HTTP request path in process. Each input is one client connection to a
 * fresh gw_server (the SockJS test application's prefixes, or the publish API on a local engine)
 * over a socketpair: the bytes are written in pieces as the input says, the event loop runs
 * without blocking until nothing more happens, and everything is torn down (leaks are caught per
 * input). This covers request parsing, pipelining, the router, every transport (xhr, xhr_send,
 * streaming, eventsource, htmlfile, jsonp, websocket with frames after the upgrade) and the API.
 *
 * Input: byte 0 is flags (FLAG_*), byte 1 the size of each write (0: all at once), then the
 * bytes the clients send: two clients, when the marker SWITCH separates segments of the input,
 * which go to the first and the second client in turn (several connections on one session:
 * a stream and its xhr_send, a second receiver refused). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "api.h"
#include "apps.h"
#include "delivery.h"
#include "gateway.h"
#include "gw_alloc.h"
#include "gw_log.h"
#include "http_conn.h"
#include "pubsub_node.h"
#include "websocket.h"

enum {
    FLAG_PROXY = 1,    /* a ",proxy,trusted" listener: PROXY header first, X-Forwarded-For used */
    FLAG_SHUTDOWN = 2, /* the client half-closes after its last byte */
    FLAG_DEFLATE = 4,  /* --ws-deflate */
    FLAG_API = 8,      /* the publish API instead of the SockJS prefixes */
    FLAG_SMALL = 16,   /* small header/body/message limits, to reach the refusals */
    FLAG_NO_READ = 32, /* small socket buffers and a client that never reads: backpressure */
};

#define SWITCH "\n~~\n"
#define SWITCH_LEN 4
#define N_CLIENTS 2

#define API_KEY "fuzz-key"

struct world {
    struct event_base *base;
    struct gw_config cfg;
    struct gw_server srv;
    struct gw_apps *apps;
    struct gw_delivery *delivery;
    struct pubsub_node *node;
    struct gw_api api;
    int client[N_CLIENTS];
    bool no_read;
};

static void world_start(struct world *w, unsigned flags)
{
    memset(w, 0, sizeof(*w));
    gw_config_defaults(&w->cfg);
    w->cfg.api_key = API_KEY;
    if (flags & FLAG_SMALL) {
        w->cfg.max_header_bytes = 512;
        w->cfg.max_headers = 8;
        w->cfg.max_body_bytes = 256;
        w->cfg.max_message_bytes = 128;
        w->cfg.api_max_body_bytes = 256;
        w->cfg.max_output_bytes = 4096;
        w->cfg.max_queued_bytes = 4096;
    }
    w->cfg.ws_deflate = (flags & FLAG_DEFLATE) != 0;
    w->cfg.ws_deflate_min_bytes = 1;
    websocket_configure(&(struct ws_settings){.deflate = w->cfg.ws_deflate,
                                              .deflate_min_bytes = w->cfg.ws_deflate_min_bytes});
    w->base = event_base_new();
    event_base_priority_init(w->base, 3);
    if (flags & FLAG_API) {
        static const char *const local[] = {"local"};
        struct pubsub_node_settings settings = {.engines = local, .n_engines = 1};
        gw_config_publish_limits(&w->cfg, &settings.limits);
        const char *error;
        w->node = pubsub_node_new(w->base, &settings, &error);
        GW_ASSERT(w->node != NULL);
        w->delivery = gw_delivery_new(w->base, &w->cfg, w->node);
        w->api = (struct gw_api){
            .cfg = &w->cfg, .node = w->node, .delivery = w->delivery, .sockjs = &w->srv};
        gw_server_init(&w->srv, w->base, &w->cfg, gw_api_route, &w->api);
        w->srv.max_body_bytes = w->cfg.api_max_body_bytes;
        w->srv.json_errors = true;
    } else {
        w->cfg.test_app = true;
        gw_server_init(&w->srv, w->base, &w->cfg, gw_route_request, NULL);
        w->apps = gw_apps_new(&w->srv, &w->cfg, NULL);
    }
    w->no_read = (flags & FLAG_NO_READ) != 0;
    for (int i = 0; i < N_CLIENTS; i++) {
        int sv[2];
        GW_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        fcntl(sv[0], F_SETFL, O_NONBLOCK);
        fcntl(sv[1], F_SETFL, O_NONBLOCK);
        if (w->no_read) {
            int small = 2048;
            setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
            setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
        }
        gw_conn_accept(&w->srv, sv[0],
                       flags & FLAG_PROXY ? GW_LISTEN_PROXY | GW_LISTEN_TRUSTED : 0);
        w->client[i] = sv[1];
    }
}

static void world_stop(struct world *w)
{
    gw_server_shutdown(&w->srv);
    if (w->apps)
        gw_apps_free(w->apps);
    if (w->delivery)
        gw_delivery_free(w->delivery);
    pubsub_node_free(w->node);
    gw_server_cleanup(&w->srv);
    /* Whatever the engine or the sessions still had scheduled is dropped with the loop. */
    event_base_free(w->base);
    for (int i = 0; i < N_CLIENTS; i++)
        close(w->client[i]);
}

/* Reads and discards what the gateway sent; returns whether there was anything. */
static bool drain(int fd)
{
    static char buf[65536];
    bool got = false;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            return got;
        got = true;
    }
}

/* Runs the loop until a few turns in a row do nothing: no callback active, nothing written. */
static void settle(struct world *w)
{
    int quiet = 0;
    for (int turn = 0; turn < 256 && quiet < 3; turn++) {
        event_base_loop(w->base, EVLOOP_NONBLOCK);
        bool got = false;
        for (int i = 0; i < N_CLIENTS && !w->no_read; i++)
            got |= drain(w->client[i]);
        if (!got && event_base_get_num_events(w->base, EVENT_BASE_COUNT_ACTIVE) == 0)
            quiet++;
        else
            quiet = 0;
    }
}

/* Writes data in pieces, letting the gateway run after each. */
static void send_segment(struct world *w, int fd, const uint8_t *data, size_t size, size_t piece)
{
    size_t off = 0;
    int stalled = 0;
    while (off < size && stalled < 3) {
        size_t n = size - off < piece ? size - off : piece;
        ssize_t sent = write(fd, data + off, n);
        if (sent < 0 && errno != EAGAIN)
            return; /* the gateway closed the connection */
        /* A gateway that stopped reading (pipelined input held back) stalls the writer. */
        stalled = sent > 0 ? 0 : stalled + 1;
        if (sent > 0)
            off += (size_t)sent;
        settle(w);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* GW_FUZZ_LOG=debug shows what the gateway made of an input (when reproducing one). */
    const char *level = getenv("GW_FUZZ_LOG");
    if (!level || gw_log_parse_level(level, &gw_log_threshold) != 0)
        gw_log_threshold = GW_LOG_ERROR;
    /* As in main: a write to a closed peer is an error, not the end of the process. */
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned flags = data[0];
    size_t piece = data[1] ? data[1] : size;
    data += 2;
    size -= 2;
    struct world w;
    world_start(&w, flags);
    for (int segment = 0; size > 0; segment++) {
        const uint8_t *end = memmem(data, size, SWITCH, SWITCH_LEN);
        size_t len = end ? (size_t)(end - data) : size;
        send_segment(&w, w.client[segment % N_CLIENTS], data, len, piece);
        size_t skip = end ? len + SWITCH_LEN : len;
        data += skip;
        size -= skip;
    }
    if (flags & FLAG_SHUTDOWN) {
        for (int i = 0; i < N_CLIENTS; i++)
            shutdown(w.client[i], SHUT_WR);
        settle(&w);
    }
    world_stop(&w);
    return 0;
}
