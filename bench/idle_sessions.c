/*
 * idle_sessions: opens N idle SockJS websocket sessions against a gateway and holds them.
 *
 * Each connection is `GET <prefix>/000/<session>/websocket` with an RFC 6455 client handshake
 * (the Sec-WebSocket-Accept is checked); the session counts as open once the server's first
 * text frame, `o`, has arrived. When all N are open the program prints `ready N` on stdout and
 * then sends nothing of its own (pings get the pongs RFC 6455 requires; `h` heartbeats are
 * only counted) until stdin reaches EOF or --hold-seconds pass. Then it prints
 * `done HELD LOST HEARTBEATS` and exits 0; it exits 1 with a reason on stderr if the sessions
 * could not all be opened in time.
 *
 * One process can hold only about as many sessions as its fd limit allows (20,000 here), and
 * one source address gives about 28,000 ephemeral ports towards one server port; so large runs
 * use several processes (bench/idle_memory.py starts them) and spread connections round-robin
 * over source addresses 127.0.0.2 ... 127.0.0.(1+K). Traffic stays on 127.0.0.0/8.
 *
 * The connections themselves (states, handshake, frames, pongs) are bench_ws.c's.
 */
#include <err.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_ws.h"

static struct bench_ws_settings ws = {
    .host = "127.0.0.1",
    .prefix = "/sockjs",
    .sessions = 1000,
    .sources = 4,
    .max_inflight = 256,
    .connect_timeout = 300,
};
static double hold_seconds = -1; /* < 0: until stdin EOF */

static struct event_base *base;
static long n_heartbeats;

static void on_ready(void *arg)
{
    printf("ready %ld\n", ws.sessions);
    fflush(stdout);
    if (hold_seconds >= 0) {
        struct timeval tv = { (time_t)hold_seconds,
                              (suseconds_t)((hold_seconds - (double)(time_t)hold_seconds) * 1e6) };

        event_base_loopexit(base, &tv);
    }
}

/* `h` is the SockJS heartbeat; idle sessions get no messages, and any other frame is ignored. */
static void on_text(void *arg, const struct bench_ws_text *t)
{
    if (t->len == 1 && t->first == 'h')
        n_heartbeats++;
}

static void on_ping(void *arg)
{
    n_heartbeats++;
}

static const struct bench_ws_ops idle_ops = {
    .ready = on_ready,
    .text = on_text,
    .ping = on_ping,
};

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopbreak(base);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --port PORT [--host 127.0.0.1] [--prefix /sockjs] [--sessions N]\n"
            "          [--sources K] [--max-inflight M] [--connect-timeout S]\n"
            "          [--hold-seconds S] [--tokens FILE]\n"
            "Opens N SockJS websocket sessions from 127.0.0.2..127.0.0.(1+K), prints\n"
            "\"ready N\" once all got \"o\", holds them until stdin EOF (or S seconds),\n"
            "then prints \"done HELD LOST HEARTBEATS\". With --tokens, session i\n"
            "authenticates with line i of FILE (a JWT) as ?token=.\n",
            argv0);
    exit(2);
}

static const char *tokens_path;

static void parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        BENCH_WS_LONGOPTS,
        { "sources", required_argument, NULL, 's' },
        { "hold-seconds", required_argument, NULL, 'h' },
        { "tokens", required_argument, NULL, 'k' },
        { NULL, 0, NULL, 0 },
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (bench_ws_parse_option(&ws, ch, optarg))
            continue;
        switch (ch) {
        case 's': ws.sources = atoi(optarg); break;
        case 'h': hold_seconds = atof(optarg); break;
        case 'k': tokens_path = optarg; break;
        default: usage(argv[0]);
        }
    }
    if (optind != argc || !bench_ws_settings_ok(&ws) || ws.sources < 1)
        usage(argv[0]);
    bench_ws_check_host(&ws);
    if (tokens_path)
        bench_ws_load_tokens(&ws, tokens_path);
}

int main(int argc, char **argv)
{
    struct bench_ws_client *client;
    struct event *ev_stdin = NULL, *ev_int, *ev_term;
    rlim_t fd_limit;

    parse_args(argc, argv);

    /* Use the whole hard limit; the check below says how many processes are needed. */
    fd_limit = bench_raise_fd_limit();
    if ((rlim_t)ws.sessions + 16 > fd_limit)
        errx(1, "%ld sessions need more fds than the limit %llu: split them over processes",
             ws.sessions, (unsigned long long)fd_limit);
    signal(SIGPIPE, SIG_IGN);

    base = event_base_new();
    if (!base)
        errx(1, "out of memory");
    if (hold_seconds < 0) {
        ev_stdin = bench_watch_stdin(base);
        if (!ev_stdin)
            errx(1, "cannot watch stdin (a regular file?): use a pipe or --hold-seconds");
    }
    ev_int = evsignal_new(base, SIGINT, on_signal, NULL);
    ev_term = evsignal_new(base, SIGTERM, on_signal, NULL);
    evsignal_add(ev_int, NULL);
    evsignal_add(ev_term, NULL);

    client = bench_ws_client_new(base, &ws, &idle_ops, NULL);
    event_base_dispatch(base);

    printf("done %ld %ld %ld\n", bench_ws_client_open(client), bench_ws_client_lost(client),
           n_heartbeats);
    fflush(stdout);
    bench_ws_client_free(client);
    if (ev_stdin)
        event_free(ev_stdin);
    event_free(ev_int);
    event_free(ev_term);
    event_base_free(base);
    return 0;
}
