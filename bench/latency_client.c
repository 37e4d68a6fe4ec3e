/*
 * latency_client: opens N SockJS websocket sessions on a gateway, each with its own JWT in the
 * URL query, and measures how long published events take to arrive.
 *
 * Session i connects as `GET <prefix>/000/<pid>-<i>/websocket?token=<line i of --tokens>` with
 * an RFC 6455 client handshake (Sec-WebSocket-Accept checked) and counts as open once its first
 * text frame, `o`, has arrived. When all are open it prints `ready N`. From then on, every
 * SockJS message frame (`a[...]`) is searched for the publish time the driver embedded in the
 * event's data as `"t": <CLOCK_REALTIME nanoseconds>` (escaped inside the SockJS string as
 * `\"t\":`); the latency is the CLOCK_REALTIME read right after the read() that completed the
 * frame minus that time. Same machine, same clock: no skew to correct.
 *
 * It stops when --expect latencies are collected, at stdin EOF, or --timeout seconds after
 * `ready`, and prints one line:
 *   done RECEIVED LOST_SESSIONS P50_US P90_US P99_US P999_US MAX_US
 * (microseconds; percentiles by nearest rank). Exit 1 with a reason on stderr if the sessions
 * could not all be opened. Loopback only.
 *
 * The connections themselves (states, handshake, frames, pongs) are bench_ws.c's.
 */
#include <err.h>
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "bench_ws.h"

/* Text frames up to this size are kept to look for the timestamp; events here are small. */
#define MAX_TEXT 8192

static struct bench_ws_settings ws = {
    .host = "127.0.0.1",
    .prefix = "/sockjs",
    .sessions = 1000,
    .max_inflight = 256,
    .connect_timeout = 120,
    .keep = MAX_TEXT,
};
static const char *tokens_path;
static long expect;
static double run_timeout = 120;

static struct event_base *base;
static int64_t *lat; /* latencies in ns */
static size_t n_lat, cap_lat;

static void record(int64_t ns)
{
    if (n_lat == cap_lat) {
        cap_lat = cap_lat ? cap_lat * 2 : 65536;
        lat = realloc(lat, cap_lat * sizeof(*lat));
        if (!lat)
            errx(1, "out of memory");
    }
    lat[n_lat++] = ns;
    if (expect > 0 && (long)n_lat >= expect)
        event_base_loopbreak(base);
}

/* Every `\"t\":<digits>` in a SockJS message frame is one event's publish time. */
static void on_text(void *arg, const struct bench_ws_text *f)
{
    static const char pat[] = "\\\"t\\\":";
    const size_t plen = sizeof(pat) - 1;
    const unsigned char *p = f->kept;
    size_t n = f->kept_len;

    if (f->len < 1 || f->first != 'a')
        return;
    for (size_t i = 0; i + plen < n; i++) {
        if (p[i] != '\\' || memcmp(p + i, pat, plen) != 0)
            continue;
        int64_t t = 0;
        size_t k = i + plen;

        while (k < n && p[k] >= '0' && p[k] <= '9')
            t = t * 10 + (p[k++] - '0');
        if (k > i + plen)
            record(f->read_ns - t);
        i = k;
    }
}

static void on_run_timeout(evutil_socket_t fd, short what, void *arg)
{
    warnx("--timeout reached with %zu of %ld latencies", n_lat, expect);
    event_base_loopbreak(base);
}

static void on_ready(void *arg)
{
    struct event *ev = evtimer_new(base, on_run_timeout, NULL);
    struct timeval tv = { (time_t)run_timeout, 0 };

    evtimer_add(ev, &tv);
    printf("ready %ld\n", ws.sessions);
    fflush(stdout);
}

static const struct bench_ws_ops latency_ops = {
    .ready = on_ready,
    .text = on_text,
};

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile in microseconds. */
static double pct_us(double p)
{
    size_t rank;

    if (!n_lat)
        return -1;
    rank = (size_t)(p / 100.0 * (double)n_lat + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n_lat)
        rank = n_lat;
    return (double)lat[rank - 1] / 1000.0;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --port PORT --tokens FILE [--host 127.0.0.1] [--prefix /sockjs]\n"
            "          [--sessions N] [--expect M] [--timeout S] [--max-inflight K]\n"
            "          [--connect-timeout S]\n",
            argv0);
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        BENCH_WS_LONGOPTS,
        { "tokens", required_argument, NULL, 'k' },
        { "expect", required_argument, NULL, 'e' },
        { "timeout", required_argument, NULL, 'T' },
        { NULL, 0, NULL, 0 },
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (bench_ws_parse_option(&ws, ch, optarg))
            continue;
        switch (ch) {
        case 'k': tokens_path = optarg; break;
        case 'e': expect = atol(optarg); break;
        case 'T': run_timeout = atof(optarg); break;
        default: usage(argv[0]);
        }
    }
    if (optind != argc || !bench_ws_settings_ok(&ws) || !tokens_path || !(run_timeout > 0))
        usage(argv[0]);
    bench_ws_check_host(&ws);
}

int main(int argc, char **argv)
{
    struct bench_ws_client *client;
    struct event *ev_stdin;
    rlim_t fd_limit;

    parse_args(argc, argv);
    fd_limit = bench_raise_fd_limit();
    if ((rlim_t)ws.sessions + 16 > fd_limit)
        errx(1, "%ld sessions need more fds than the limit %llu", ws.sessions,
             (unsigned long long)fd_limit);
    signal(SIGPIPE, SIG_IGN);
    bench_ws_load_tokens(&ws, tokens_path);
    base = event_base_new();
    if (!base)
        errx(1, "out of memory");
    ev_stdin = bench_watch_stdin(base);
    if (!ev_stdin)
        errx(1, "cannot watch stdin: use a pipe");

    client = bench_ws_client_new(base, &ws, &latency_ops, NULL);
    event_base_dispatch(base);

    qsort(lat, n_lat, sizeof(*lat), cmp_i64);
    printf("done %zu %ld %.1f %.1f %.1f %.1f %.1f\n", n_lat, bench_ws_client_lost(client),
           pct_us(50), pct_us(90), pct_us(99), pct_us(99.9),
           n_lat ? (double)lat[n_lat - 1] / 1000.0 : -1.0);
    fflush(stdout);
    return 0;
}
