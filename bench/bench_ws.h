/*
 * bench_ws: the SockJS websocket client side the benchmark tools share.
 *
 * A client opens `sessions` sessions, session i as
 * `GET <prefix>/000/<pid>-<i>/websocket[?token=<tokens[i]>]` with an RFC 6455 client handshake
 * (the Sec-WebSocket-Accept is checked). A session is open once its first text frame, `o`, has
 * arrived; ops->ready runs once all of them are. At most max_inflight handshakes are in flight at
 * once. Pings get the masked pongs RFC 6455 requires; a websocket close, a SockJS close frame
 * (`c...`), a protocol error, EOF or a read error closes the session.
 *
 * A session that fails before it is open ends the process (exit 1, reason on stderr), as does a
 * client whose sessions are not all open within connect_timeout. A session lost after it was
 * open is only counted (bench_ws_client_lost()) and reported on stderr for the first ten: the
 * measurement decides what it means. Messages on stderr carry the program's name.
 *
 * Connection states:
 *
 *   CONNECTING --writable--> HANDSHAKE --101 + accept ok--> WAIT_OPEN --"o"--> OPEN
 *        \______________________\___________________________\_____________\--> CLOSED
 */
#ifndef BENCH_WS_H
#define BENCH_WS_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

struct event;
struct event_base;

/* The command-line options every tool takes: add to the tool's longopts table. */
#define BENCH_WS_LONGOPTS                                                                          \
    { "host", required_argument, NULL, 'H' },                                                      \
    { "port", required_argument, NULL, 'p' },                                                      \
    { "prefix", required_argument, NULL, 'x' },                                                    \
    { "sessions", required_argument, NULL, 'n' },                                                  \
    { "max-inflight", required_argument, NULL, 'm' },                                              \
    { "connect-timeout", required_argument, NULL, 't' }

struct bench_ws_settings {
    const char *host;        /* must be an IPv4 address in 127.0.0.0/8 */
    int port;
    const char *prefix;      /* SockJS prefix, e.g. "/sockjs" */
    char *const *tokens;     /* NULL, or one JWT per session, sent as ?token= (borrowed) */
    long sessions;
    int sources;             /* > 0: session i binds to 127.0.0.(2 + i % sources) */
    int max_inflight;
    double connect_timeout;  /* seconds for all sessions to open */
    size_t keep;             /* text payload bytes kept for ops->text (0: only the first) */
};

/* A text frame other than the session's `o` and a SockJS close. */
struct bench_ws_text {
    uint64_t len;             /* payload length */
    unsigned char first;      /* first payload byte, if len > 0 */
    const unsigned char *kept; /* the first kept_len payload bytes, at most settings.keep */
    size_t kept_len;
    int64_t read_ns;          /* CLOCK_REALTIME right after the read() that completed the frame */
};

/* Called from the event loop only, never from bench_ws_client_new(). */
struct bench_ws_ops {
    void (*ready)(void *arg);                                /* all sessions are open */
    void (*text)(void *arg, const struct bench_ws_text *t);  /* on an open session */
    void (*ping)(void *arg);                                 /* answered already; may be NULL */
};

struct bench_ws_client;

/*
 * If `c` is one of the BENCH_WS_LONGOPTS, stores its argument in `s` and returns 1; returns 0
 * for any other option.
 */
int bench_ws_parse_option(struct bench_ws_settings *s, int c, const char *arg);

/* Reads one JWT per line from `path` (at least s->sessions of them) into s->tokens, so that
 * each session authenticates with ?token=; exits with a message on error. */
void bench_ws_load_tokens(struct bench_ws_settings *s, const char *path);

/* 1 if the numbers in `s` are usable, 0 if the tool should print its usage. */
int bench_ws_settings_ok(const struct bench_ws_settings *s);

/*
 * Exits (with the reason) unless s->host is a loopback address: these tools must never load a
 * remote host.
 */
void bench_ws_check_host(const struct bench_ws_settings *s);

/* Raises the fd soft limit to the hard limit; returns the new limit (RLIM_INFINITY if unknown). */
rlim_t bench_raise_fd_limit(void);

/* Breaks the loop of `base` at EOF on stdin. NULL if stdin cannot be watched (a regular file). */
struct event *bench_watch_stdin(struct event_base *base);

/*
 * Starts connecting the sessions of `s` (already checked) on `base`; `ops` and `arg` must
 * outlive the client.
 */
struct bench_ws_client *bench_ws_client_new(struct event_base *base,
                                            const struct bench_ws_settings *s,
                                            const struct bench_ws_ops *ops, void *arg);

/* Closes every session without counting it lost. */
void bench_ws_client_free(struct bench_ws_client *cl);

long bench_ws_client_open(const struct bench_ws_client *cl);
long bench_ws_client_lost(const struct bench_ws_client *cl);

#endif
