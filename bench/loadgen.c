/*
 * loadgen: opens N SockJS sessions against one or more gateways (or any server speaking the
 * same URL, token and message formats), holds them, counts what arrives and measures
 * publish -> receive latency. The sessions themselves are bench_client.c's.
 *
 *   loadgen --target 127.0.0.1:8080 [--target HOST:PORT ...] [--sessions 1000]
 *           [--transport websocket|xhr-streaming|xhr-polling] [--deflate] [--prefix /sockjs]
 *           [--procs P] [--sources K] [--rate R] [--max-inflight M] [--connect-timeout S]
 *           [--jwt-secret SECRET [--site bench] [--users U] [--companies C]]
 *           [--hold S] [--expect M] [--timeout S] [--max-failed F]
 *   loadgen --self-test
 *
 * Processes: the fd limit (20,000 here) caps what one process can hold, so loadgen forks P
 * workers (default ceil(N / 19000), at most 19,900 sessions each). Worker w owns a contiguous
 * range of session indexes; session i goes to target i % T from source address
 * 127.0.0.(2 + i % K) with a source port the worker picks by walking 1024..65535 from its own
 * starting point (1024 + w * 64512 / P) and skipping ports in use, so each source address gives
 * ~64,000 ports instead of the kernel's ~28,000 ephemeral ones. --rate (connects per second,
 * token bucket; 0: unpaced) and --max-inflight (sessions connecting at once) are overall
 * figures, split evenly over the workers.
 *
 * Tokens: with --jwt-secret, session i carries ?token=<HS256 JWT> with sub "u<i % U>", client
 * "c<i % C>", site S and exp = now + 1 day (bench_util.h); the publisher's --ids/--random-users
 * use the same ids. Without it, sessions carry no token.
 *
 * Stdout protocol, for a driver script (everything else goes to stderr):
 *
 *   ready N      once every session has been started and is open or failed, and no more than
 *                --max-failed failed; N = sessions open at that moment. At most one such line;
 *                none if the run ends before (too many failures, --timeout).
 *   {...}        exactly one line of JSON at the end, always last (keys below).
 *
 * The run stops at the first of: --hold S seconds after `ready`; --expect M messages received
 * (summed over all workers; checked every 100 ms, so a few more may be counted); EOF on stdin
 * (only watched if stdin is a pipe, socket or terminal: a driver closes it to stop loadgen);
 * SIGINT/SIGTERM; more than --max-failed sessions failed; --timeout S seconds after start
 * (default 300): every run ends by itself. Without --hold and --expect, sessions are held until
 * stdin EOF or the timeout.
 *
 * Summary keys: tool, transport, targets, sessions, procs, sources, deflate (negotiated by any
 * session), deflate_sessions, opened, failed, lost, open_seconds (first connect -> last `o`),
 * open_rate (opened / open_seconds), heartbeats, frames, messages (elements of a[...] frames),
 * message_seconds (first -> last message), message_rate, bytes (read from sockets),
 * payload_bytes (SockJS frames, inflated), inflated_bytes, reconnects (xhr), seconds (whole
 * run), stopped_by (hold|expect|stdin|signal|timeout|failures|worker), error (null or why),
 * lat_us {p50, p90, p99, p999, max, n} (microseconds; p-values within 1 %).
 * Exit status 0 when error is null, 1 otherwise, 2 for bad usage.
 *
 * Workers report to the parent over a pipe: progress (counters) every 100 ms, `resolved` once
 * their sessions are all open or failed, and at the end their final counters followed by their
 * latency histogram, which the parent merges. The parent stops workers by closing their
 * control pipe (a worker whose parent died stops the same way).
 */
#include <err.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_client.h"
#include "bench_util.h"
#include "lat_hist.h"

#define MAX_TARGETS 256
#define MAX_PER_PROC 19900
#define DEFAULT_PER_PROC 19000
#define PROGRESS_MS 100
#define STOP_GRACE_S 20

enum { MSG_PROGRESS = 1, MSG_RESOLVED, MSG_FINAL };

/* Worker -> parent. MSG_FINAL is followed by the worker's struct lat_hist. */
struct wmsg {
    uint32_t type;
    uint32_t worker;
    struct bench_counters c;
};

static const char *const transport_names[] = {"websocket", "xhr-streaming", "xhr-polling"};

static struct {
    struct bench_target targets[MAX_TARGETS];
    int n_targets;
    const char *prefix;
    long sessions;
    int procs, sources;
    double rate;
    int max_inflight;
    double connect_timeout;
    double hold;      /* < 0: none */
    long long expect; /* 0: none */
    double timeout;
    long max_failed;
    enum bench_transport transport;
    int deflate;
    struct bench_jwt jwt;
    int use_jwt;
} opt = {
    .prefix = "/sockjs",
    .sessions = 1000,
    .sources = -1,
    .max_inflight = 512,
    .connect_timeout = 120,
    .hold = -1,
    .timeout = 300,
    .jwt = {.site = "bench", .companies = 1},
};

/* ---- worker -------------------------------------------------------------------------------- */

struct worker_ctx {
    int id, report_fd;
    struct event_base *base;
    struct bench_client *client;
};

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n) {
        ssize_t w = write(fd, c, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the parent is gone; the control pipe's EOF stops us */
        c += w;
        n -= (size_t)w;
    }
}

static void report(struct worker_ctx *w, uint32_t type)
{
    struct wmsg m = {.type = type, .worker = (uint32_t)w->id};

    bench_client_counters(w->client, &m.c);
    write_all(w->report_fd, &m, sizeof(m));
}

static void on_resolved(void *arg)
{
    report(arg, MSG_RESOLVED);
}

static void on_progress(evutil_socket_t fd, short what, void *arg)
{
    report(arg, MSG_PROGRESS);
}

static void on_control(evutil_socket_t fd, short what, void *arg)
{
    struct worker_ctx *w = arg;
    char b[64];
    ssize_t r = read(fd, b, sizeof(b));

    if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
        event_base_loopbreak(w->base);
}

static int worker_main(int id, long first, long count, int report_fd, int control_fd)
{
    static const struct bench_client_ops ops = {.resolved = on_resolved};
    struct worker_ctx w = {.id = id, .report_fd = report_fd};
    struct bench_client_settings s = {
        .targets = opt.targets,
        .n_targets = opt.n_targets,
        .prefix = opt.prefix,
        .transport = opt.transport,
        .first = first,
        .count = count,
        .sources = opt.sources,
        .port_start = 1024 + (int)((long)id * (65536 - 1024) / opt.procs),
        .rate = opt.rate / opt.procs,
        .max_inflight = (opt.max_inflight + opt.procs - 1) / opt.procs,
        .connect_timeout = opt.connect_timeout,
        .deflate = opt.deflate,
        .jwt = opt.use_jwt ? &opt.jwt : NULL,
    };
    struct lat_hist *hist = calloc(1, sizeof(*hist));
    struct event *ctl, *progress;
    struct timeval tick = {0, PROGRESS_MS * 1000};

    /* The parent handles Ctrl-C for the whole group and tells us through the control pipe. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_DFL);
    if (!hist)
        errx(1, "out of memory");
    w.base = event_base_new();
    if (!w.base)
        errx(1, "event_base_new failed");
    w.client = bench_client_new(w.base, &s, hist, &ops, &w);
    ctl = event_new(w.base, control_fd, EV_READ | EV_PERSIST, on_control, &w);
    progress = event_new(w.base, -1, EV_PERSIST, on_progress, &w);
    if (!ctl || !progress || event_add(ctl, NULL) < 0 || event_add(progress, &tick) < 0)
        errx(1, "out of memory");
    event_base_dispatch(w.base);

    report(&w, MSG_FINAL);
    write_all(report_fd, hist, sizeof(*hist));
    event_free(ctl);
    event_free(progress);
    bench_client_free(w.client);
    event_base_free(w.base);
    free(hist);
    close(report_fd);
    close(control_fd);
    return 0;
}

/* ---- parent -------------------------------------------------------------------------------- */

struct worker {
    pid_t pid;
    int report_fd, control_fd;
    struct event *ev;
    struct bench_counters c;
    int resolved, final, gone;
    size_t got;    /* bytes of the current message/histogram read so far */
    int want_hist; /* the next bytes are the histogram */
    union {
        struct wmsg m;
        unsigned char raw[sizeof(struct wmsg)];
    } in;
};

static struct {
    struct event_base *base;
    struct worker *w;
    struct lat_hist *hist, *hist_in;
    struct event *tick, *hold_timer, *deadline, *grace, *ev_stdin, *ev_int, *ev_term;
    int64_t start_ns;
    int n_resolved, n_done;
    int ready_printed;
    int stopping;
    const char *stopped_by;
    const char *error;
    int64_t last_opened, last_messages;
} P;

static void sum_counters(struct bench_counters *t)
{
    memset(t, 0, sizeof(*t));
    for (int k = 0; k < opt.procs; k++) {
        const struct bench_counters *c = &P.w[k].c;

        t->opened += c->opened;
        t->failed += c->failed;
        t->lost += c->lost;
        t->deflate += c->deflate;
        t->heartbeats += c->heartbeats;
        t->messages += c->messages;
        t->frames += c->frames;
        t->wire_bytes += c->wire_bytes;
        t->payload_bytes += c->payload_bytes;
        t->inflated_bytes += c->inflated_bytes;
        t->reconnects += c->reconnects;
#define MIN_SET(f)                                                                                 \
    if (c->f && (!t->f || c->f < t->f))                                                            \
    t->f = c->f
#define MAX_SET(f)                                                                                 \
    if (c->f > t->f)                                                                               \
    t->f = c->f
        MIN_SET(first_connect_ns);
        MIN_SET(first_message_ns);
        MAX_SET(last_open_ns);
        MAX_SET(last_message_ns);
#undef MIN_SET
#undef MAX_SET
    }
}

static void stop(const char *why, const char *error)
{
    struct timeval grace = {STOP_GRACE_S, 0};

    if (P.stopping)
        return;
    P.stopping = 1;
    P.stopped_by = why;
    P.error = error;
    for (int k = 0; k < opt.procs; k++) {
        if (P.w[k].control_fd >= 0) {
            close(P.w[k].control_fd);
            P.w[k].control_fd = -1;
        }
    }
    evtimer_add(P.grace, &grace);
}

static void check_state(void)
{
    struct bench_counters t;

    sum_counters(&t);
    if (!P.stopping && t.failed > opt.max_failed)
        stop("failures", "more sessions failed than --max-failed");
    if (!P.stopping && !P.ready_printed && P.n_resolved == opt.procs) {
        P.ready_printed = 1;
        printf("ready %lld\n", (long long)(t.opened - t.lost));
        fflush(stdout);
        fprintf(stderr, "loadgen: ready: %lld open, %lld failed\n", (long long)(t.opened - t.lost),
                (long long)t.failed);
        if (opt.hold >= 0) {
            struct timeval tv = {(time_t)opt.hold,
                                 (suseconds_t)((opt.hold - floor(opt.hold)) * 1e6)};

            evtimer_add(P.hold_timer, &tv);
        }
    }
    if (!P.stopping && opt.expect > 0 && t.messages >= opt.expect)
        stop("expect", NULL);
}

/* Bytes from a worker: messages, and after MSG_FINAL its histogram. */
static void on_report(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    unsigned char *dst = w->want_hist ? (unsigned char *)P.hist_in : w->in.raw;
    size_t size = w->want_hist ? sizeof(*P.hist_in) : sizeof(w->in.m);
    ssize_t r = read(fd, dst + w->got, size - w->got);

    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (r <= 0) {
        event_del(w->ev);
        w->gone = 1;
        P.n_done++;
        if (!w->final) {
            warnx("worker %d ended without its report", (int)(w - P.w));
            if (!w->resolved) {
                w->resolved = 1;
                P.n_resolved++;
            }
            stop("worker", "a worker process died");
        }
        if (P.n_done == opt.procs)
            event_base_loopbreak(P.base);
        return;
    }
    w->got += (size_t)r;
    if (w->got < size)
        return;
    w->got = 0;
    if (w->want_hist) {
        lat_hist_merge(P.hist, P.hist_in);
        w->want_hist = 0;
        return;
    }
    w->c = w->in.m.c;
    switch (w->in.m.type) {
    case MSG_RESOLVED:
        if (!w->resolved) {
            w->resolved = 1;
            P.n_resolved++;
        }
        break;
    case MSG_FINAL:
        w->final = 1;
        w->want_hist = 1;
        break;
    default:
        break;
    }
    check_state();
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct bench_counters t;
    double s = (double)(bench_monotonic_ns() - P.start_ns) / 1e9;

    sum_counters(&t);
    fprintf(stderr,
            "loadgen: %6.1f s  open %lld (+%lld/s)  failed %lld  lost %lld  messages %lld "
            "(+%lld/s)  heartbeats %lld\n",
            s, (long long)(t.opened - t.lost), (long long)(t.opened - P.last_opened),
            (long long)t.failed, (long long)t.lost, (long long)t.messages,
            (long long)(t.messages - P.last_messages), (long long)t.heartbeats);
    P.last_opened = t.opened;
    P.last_messages = t.messages;
}

static void on_hold(evutil_socket_t fd, short what, void *arg)
{
    stop("hold", NULL);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    stop("timeout", !P.ready_printed ? "--timeout before all sessions were open"
                    : opt.expect > 0 ? "--timeout before --expect messages arrived"
                                     : NULL);
}

static void on_grace(evutil_socket_t fd, short what, void *arg)
{
    warnx("workers did not report within %d s of the stop: killing them", STOP_GRACE_S);
    for (int k = 0; k < opt.procs; k++)
        if (!P.w[k].gone)
            kill(P.w[k].pid, SIGKILL);
    if (!P.error)
        P.error = "workers did not finish";
    event_base_loopbreak(P.base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    stop("signal", NULL);
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
    char b[256];
    ssize_t r = read(fd, b, sizeof(b));

    if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
        event_del(P.ev_stdin);
        stop("stdin", P.ready_printed ? NULL : "stdin closed before all sessions were open");
    }
}

/* Stdin is watched only if a driver can close it: a pipe, a socket or a terminal. */
static int stdin_watchable(void)
{
    struct stat st;

    if (fstat(STDIN_FILENO, &st) < 0)
        return 0;
    return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || isatty(STDIN_FILENO);
}

static void print_summary(double seconds)
{
    struct bench_counters t;
    double open_s, msg_s;

    sum_counters(&t);
    open_s = t.last_open_ns > t.first_connect_ns
                 ? (double)(t.last_open_ns - t.first_connect_ns) / 1e9
                 : 0;
    msg_s = t.last_message_ns > t.first_message_ns
                ? (double)(t.last_message_ns - t.first_message_ns) / 1e9
                : 0;
    printf("{\"tool\":\"loadgen\",\"transport\":\"%s\",\"targets\":%d,\"sessions\":%ld,"
           "\"procs\":%d,\"sources\":%d,\"deflate\":%s,\"deflate_sessions\":%lld,"
           "\"opened\":%lld,\"failed\":%lld,\"lost\":%lld,"
           "\"open_seconds\":%.3f,\"open_rate\":%.1f,"
           "\"heartbeats\":%lld,\"frames\":%lld,\"messages\":%lld,"
           "\"message_seconds\":%.3f,\"message_rate\":%.1f,"
           "\"bytes\":%lld,\"payload_bytes\":%lld,\"inflated_bytes\":%lld,\"reconnects\":%lld,"
           "\"seconds\":%.3f,\"stopped_by\":\"%s\",",
           transport_names[opt.transport], opt.n_targets, opt.sessions, opt.procs, opt.sources,
           t.deflate ? "true" : "false", (long long)t.deflate, (long long)t.opened,
           (long long)t.failed, (long long)t.lost, open_s,
           open_s > 0 ? (double)t.opened / open_s : 0.0, (long long)t.heartbeats,
           (long long)t.frames, (long long)t.messages, msg_s,
           msg_s > 0 ? (double)t.messages / msg_s : 0.0, (long long)t.wire_bytes,
           (long long)t.payload_bytes, (long long)t.inflated_bytes, (long long)t.reconnects,
           seconds, P.stopped_by ? P.stopped_by : "worker");
    if (P.error)
        printf("\"error\":\"%s\",", P.error);
    else
        printf("\"error\":null,");
    printf("\"lat_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,"
           "\"n\":%llu}}\n",
           lat_hist_percentile(P.hist, 50) / 1e3, lat_hist_percentile(P.hist, 90) / 1e3,
           lat_hist_percentile(P.hist, 99) / 1e3, lat_hist_percentile(P.hist, 99.9) / 1e3,
           (double)P.hist->max_ns / 1e3, (unsigned long long)P.hist->n);
    fflush(stdout);
}

static struct event *new_event(evutil_socket_t fd, short what, event_callback_fn cb, void *arg)
{
    struct event *ev = event_new(P.base, fd, what, cb, arg);

    if (!ev)
        errx(1, "out of memory");
    return ev;
}

static int run(void)
{
    struct timeval tick = {1, 0}, deadline = {(time_t)opt.timeout, 0};
    int status = 0;

    P.w = calloc((size_t)opt.procs, sizeof(*P.w));
    P.hist = calloc(1, sizeof(*P.hist));
    P.hist_in = calloc(1, sizeof(*P.hist_in));
    if (!P.w || !P.hist || !P.hist_in)
        errx(1, "out of memory");
    P.start_ns = bench_monotonic_ns();
    fflush(stdout);
    fflush(stderr);
    for (int k = 0; k < opt.procs; k++) {
        int rep[2], ctl[2];
        long first = opt.sessions * k / opt.procs, next = opt.sessions * (k + 1) / opt.procs;
        pid_t pid;

        if (pipe2(rep, O_CLOEXEC) < 0 || pipe2(ctl, O_CLOEXEC) < 0)
            err(1, "pipe");
        pid = fork();
        if (pid < 0)
            err(1, "fork");
        if (pid == 0) {
            int r;

            /* Only this worker's own ends stay open in it. */
            for (int j = 0; j < k; j++) {
                close(P.w[j].report_fd);
                close(P.w[j].control_fd);
            }
            close(rep[0]);
            close(ctl[1]);
            r = worker_main(k, first, next - first, rep[1], ctl[0]);
            free(P.w);
            free(P.hist);
            free(P.hist_in);
            exit(r);
        }
        close(rep[1]);
        close(ctl[0]);
        P.w[k].pid = pid;
        P.w[k].report_fd = rep[0];
        P.w[k].control_fd = ctl[1];
    }

    P.base = event_base_new();
    if (!P.base)
        errx(1, "event_base_new failed");
    for (int k = 0; k < opt.procs; k++) {
        P.w[k].ev = new_event(P.w[k].report_fd, EV_READ | EV_PERSIST, on_report, &P.w[k]);
        event_add(P.w[k].ev, NULL);
    }
    P.tick = new_event(-1, EV_PERSIST, on_tick, NULL);
    P.hold_timer = new_event(-1, 0, on_hold, NULL);
    P.deadline = new_event(-1, 0, on_deadline, NULL);
    P.grace = new_event(-1, 0, on_grace, NULL);
    P.ev_int = new_event(SIGINT, EV_SIGNAL | EV_PERSIST, on_signal, NULL);
    P.ev_term = new_event(SIGTERM, EV_SIGNAL | EV_PERSIST, on_signal, NULL);
    event_add(P.tick, &tick);
    deadline.tv_usec = (suseconds_t)((opt.timeout - floor(opt.timeout)) * 1e6);
    event_add(P.deadline, &deadline);
    event_add(P.ev_int, NULL);
    event_add(P.ev_term, NULL);
    if (stdin_watchable()) {
        P.ev_stdin = new_event(STDIN_FILENO, EV_READ | EV_PERSIST, on_stdin, NULL);
        event_add(P.ev_stdin, NULL);
    }

    event_base_dispatch(P.base);

    /* Everything read: the workers have exited or are about to (or were killed). */
    for (int k = 0; k < opt.procs; k++) {
        int ws;

        if (P.w[k].control_fd >= 0)
            close(P.w[k].control_fd);
        close(P.w[k].report_fd);
        event_free(P.w[k].ev);
        if (waitpid(P.w[k].pid, &ws, 0) == P.w[k].pid && !(WIFEXITED(ws) && WEXITSTATUS(ws) == 0) &&
            !P.error)
            P.error = "a worker process failed";
    }
    print_summary((double)(bench_monotonic_ns() - P.start_ns) / 1e9);
    if (P.error) {
        warnx("%s", P.error);
        status = 1;
    }
    event_free(P.tick);
    event_free(P.hold_timer);
    event_free(P.deadline);
    event_free(P.grace);
    event_free(P.ev_int);
    event_free(P.ev_term);
    if (P.ev_stdin)
        event_free(P.ev_stdin);
    event_base_free(P.base);
    free(P.w);
    free(P.hist);
    free(P.hist_in);
    return status;
}

/* ---- options ------------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen --target HOST:PORT [--target ...] [--sessions N]\n"
            "         [--transport websocket|xhr-streaming|xhr-polling] [--deflate]\n"
            "         [--prefix /sockjs] [--procs P] [--sources K] [--rate R]\n"
            "         [--max-inflight M] [--connect-timeout S] [--jwt-secret SECRET\n"
            "         [--site S] [--users U] [--companies C]] [--hold S] [--expect M]\n"
            "         [--timeout S] [--max-failed F]\n"
            "       loadgen --self-test\n"
            "Opens N SockJS sessions (hosts in 127.0.0.0/8 only), prints \"ready N\" once all\n"
            "are open, holds them, and prints one JSON summary line. See bench/README.md.\n");
    exit(2);
}

/* Sites go into JSON claims unescaped: keep them plain. */
static void check_site(const char *s)
{
    if (!*s || strlen(s) > 200)
        errx(2, "--site: 1 to 200 bytes");
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\' || *p == ':')
            errx(2, "--site: no quotes, backslashes, colons or control characters");
}

static void parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"target", required_argument, NULL, 'T'},
        {"prefix", required_argument, NULL, 'x'},
        {"sessions", required_argument, NULL, 'n'},
        {"procs", required_argument, NULL, 'P'},
        {"sources", required_argument, NULL, 'K'},
        {"rate", required_argument, NULL, 'r'},
        {"max-inflight", required_argument, NULL, 'm'},
        {"connect-timeout", required_argument, NULL, 'c'},
        {"hold", required_argument, NULL, 'h'},
        {"expect", required_argument, NULL, 'e'},
        {"timeout", required_argument, NULL, 't'},
        {"max-failed", required_argument, NULL, 'f'},
        {"transport", required_argument, NULL, 'X'},
        {"deflate", no_argument, NULL, 'd'},
        {"jwt-secret", required_argument, NULL, 'j'},
        {"site", required_argument, NULL, 's'},
        {"users", required_argument, NULL, 'u'},
        {"companies", required_argument, NULL, 'C'},
        {"self-test", no_argument, NULL, 'S'},
        {NULL, 0, NULL, 0},
    };
    int ch, self_test = 0;

    opt.jwt.users = -1;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'T':
            if (opt.n_targets == MAX_TARGETS)
                errx(2, "at most %d targets", MAX_TARGETS);
            bench_parse_target(optarg, &opt.targets[opt.n_targets++], "--target");
            break;
        case 'x':
            opt.prefix = optarg;
            break;
        case 'n':
            opt.sessions = (long)bench_parse_option_number(optarg, "sessions");
            break;
        case 'P':
            opt.procs = (int)bench_parse_option_number(optarg, "procs");
            break;
        case 'K':
            opt.sources = (int)bench_parse_option_number(optarg, "sources");
            break;
        case 'r':
            opt.rate = bench_parse_option_number(optarg, "rate");
            break;
        case 'm':
            opt.max_inflight = (int)bench_parse_option_number(optarg, "max-inflight");
            break;
        case 'c':
            opt.connect_timeout = bench_parse_option_number(optarg, "connect-timeout");
            break;
        case 'h':
            opt.hold = bench_parse_option_number(optarg, "hold");
            break;
        case 'e':
            opt.expect = (long long)bench_parse_option_number(optarg, "expect");
            break;
        case 't':
            opt.timeout = bench_parse_option_number(optarg, "timeout");
            break;
        case 'f':
            opt.max_failed = (long)bench_parse_option_number(optarg, "max-failed");
            break;
        case 'X':
            if (strcmp(optarg, "websocket") == 0)
                opt.transport = BENCH_WEBSOCKET;
            else if (strcmp(optarg, "xhr-streaming") == 0)
                opt.transport = BENCH_XHR_STREAMING;
            else if (strcmp(optarg, "xhr-polling") == 0)
                opt.transport = BENCH_XHR_POLLING;
            else
                errx(2, "--transport: websocket, xhr-streaming or xhr-polling");
            break;
        case 'd':
            opt.deflate = 1;
            break;
        case 'j':
            opt.jwt.secret = optarg;
            opt.use_jwt = 1;
            break;
        case 's':
            opt.jwt.site = optarg;
            break;
        case 'u':
            opt.jwt.users = (long)bench_parse_option_number(optarg, "users");
            break;
        case 'C':
            opt.jwt.companies = (long)bench_parse_option_number(optarg, "companies");
            break;
        case 'S':
            self_test = 1;
            break;
        default:
            usage();
        }
    }
    if (optind != argc)
        usage();
    if (self_test) {
        int bad = bench_client_self_test();

        if (bad)
            errx(1, "self-test: %d check(s) failed", bad);
        printf("self-test ok\n");
        exit(0);
    }
    if (opt.n_targets == 0 || opt.sessions < 1 || opt.max_inflight < 1 ||
        !(opt.connect_timeout > 0) || !(opt.timeout > 0) || opt.prefix[0] != '/')
        usage();
    if (opt.procs == 0)
        opt.procs = (int)((opt.sessions + DEFAULT_PER_PROC - 1) / DEFAULT_PER_PROC);
    if (opt.procs > opt.sessions)
        opt.procs = (int)opt.sessions;
    if ((opt.sessions + opt.procs - 1) / opt.procs > MAX_PER_PROC)
        errx(2, "%ld sessions over %d processes: at most %d per process (fd limit)", opt.sessions,
             opt.procs, MAX_PER_PROC);
    if (opt.sources < 0)
        opt.sources = (int)((opt.sessions + 49999) / 50000);
    if (opt.sources > 253)
        errx(2, "--sources: at most 253 (127.0.0.2 .. 127.0.0.254)");
    if (opt.jwt.users < 0)
        opt.jwt.users = opt.sessions;
    if (opt.use_jwt) {
        check_site(opt.jwt.site);
        if (opt.jwt.users < 1 || opt.jwt.companies < 1)
            errx(2, "--users and --companies must be >= 1");
        opt.jwt.exp = bench_realtime_ns() / 1000000000 + 24 * 3600;
    }
    if (opt.deflate && opt.transport != BENCH_WEBSOCKET)
        errx(2, "--deflate is for --transport websocket");
}

int main(int argc, char **argv)
{
    rlim_t limit;

    parse_args(argc, argv);
    limit = bench_raise_fd_limit();
    if ((rlim_t)((opt.sessions + opt.procs - 1) / opt.procs) + 32 > limit)
        errx(2, "%ld sessions per process need more fds than the limit %llu: use more --procs",
             (opt.sessions + opt.procs - 1) / opt.procs, (unsigned long long)limit);
    signal(SIGPIPE, SIG_IGN);
    return run();
}
