/*
 * bench_client: the SockJS client side of the load generator: many sessions in one process,
 * over websocket, xhr-streaming or xhr-polling, counting what arrives.
 *
 * Session i (a global index, so that several processes can share one numbering) is
 *   <prefix>/<i % 1000, 3 digits>/<pid>-<i>/<transport>[?token=<JWT of session i>]
 * on target i % n_targets, from source address 127.0.0.(2 + i % sources) and a source port this
 * client picks itself (see settings.port_start), and counts as open once its `o` frame arrived.
 *
 *   websocket      GET .../websocket, RFC 6455 client handshake (Sec-WebSocket-Accept
 *                  checked), optionally offering permessage-deflate (RFC 7692) with no context
 *                  takeover in either direction; pings get masked pongs.
 *   xhr-streaming  POST .../xhr_streaming on a keep-alive HTTP/1.1 connection; the response is
 *                  a 2048-byte `h` prelude line, then one frame per line. When the server ends
 *                  the response (its response_limit), the next POST goes out at once, on the
 *                  same connection if it may be reused (else a new one), like sockjs-client.
 *   xhr-polling    POST .../xhr in a loop, one frame per response.
 *
 * Counted: SockJS messages (each element of an `a[...]` frame), frames, heartbeats, wire bytes
 * (everything read from the sockets) and payload bytes (SockJS frames, inflated). Latency: the
 * first `\"t\":<digits>` of each message (an event whose data has "t": CLOCK_REALTIME ns, as
 * bench/publisher sends it) gives now − t, with "now" the CLOCK_REALTIME taken right after
 * the read() that delivered those bytes. A timestamp split across two reads (or inflate output
 * chunks) is skipped rather than buffered: sampling, not a bias.
 *
 * A session that ends before `o` (connect error, refused handshake, bad response, connect
 * timeout, out of ports) is failed; one that ends after `o` (SockJS close frame, websocket
 * close, EOF, protocol error) is lost. Neither stops the client: the caller decides.
 *
 * Memory: no read buffer per connection. Every read goes into one scratch buffer per client;
 * a connection keeps bytes only while they are incomplete (a response head, a ping payload,
 * a compressed message split across reads) and frees them after.
 */
#ifndef BENCH_CLIENT_H
#define BENCH_CLIENT_H

#include <stdint.h>

#include "bench_util.h"
#include "lat_hist.h"

struct event_base;

enum bench_transport { BENCH_WEBSOCKET, BENCH_XHR_STREAMING, BENCH_XHR_POLLING };

struct bench_client_settings {
    const struct bench_target *targets; /* borrowed; session i uses targets[i % n_targets] */
    int n_targets;
    const char *prefix; /* SockJS prefix, e.g. "/sockjs" */
    enum bench_transport transport;
    long first, count;           /* this client's sessions: [first, first + count) */
    int sources;                 /* 0: no bind (kernel's choice) */
    int port_start;              /* where the walk over source ports 1024..65535 starts */
    double rate;                 /* connects per second, 0: only max_inflight limits */
    int max_inflight;            /* sessions connecting (not yet open) at once */
    double connect_timeout;      /* seconds for all sessions to be open or failed */
    int deflate;                 /* websocket: offer permessage-deflate */
    const struct bench_jwt *jwt; /* NULL: no token */
};

struct bench_counters {
    int64_t opened;         /* sessions that got `o` */
    int64_t failed;         /* ended before `o` */
    int64_t lost;           /* ended after `o` */
    int64_t deflate;        /* websocket sessions with permessage-deflate negotiated */
    int64_t heartbeats;     /* `h` frames and websocket pings */
    int64_t messages;       /* elements of `a[...]` frames, ready messages aside */
    int64_t ready;          /* the gateway's ready messages (one per subscription) */
    int64_t frames;         /* SockJS frames (o, h, a, c) */
    int64_t wire_bytes;     /* read from the sockets */
    int64_t payload_bytes;  /* SockJS frame bytes after inflating */
    int64_t inflated_bytes; /* output of inflate (part of payload_bytes) */
    int64_t reconnects;     /* xhr: new connections after the server closed one */
    int64_t first_connect_ns, last_open_ns;    /* CLOCK_REALTIME, 0 if none */
    int64_t first_message_ns, last_message_ns; /* reads that ended a message, ready aside */
};

struct bench_client_ops {
    /* Every session is open or failed (runs once, from the loop, never from _new). */
    void (*resolved)(void *arg);
};

struct bench_client;

/* Starts connecting; `s` is copied, what it points to and `ops`/`arg`/`hist` must outlive the
 * client. Latencies are added to `hist`. */
struct bench_client *bench_client_new(struct event_base *base,
                                      const struct bench_client_settings *s, struct lat_hist *hist,
                                      const struct bench_client_ops *ops, void *arg);

/* Closes every connection (not counted as lost) and frees the client. */
void bench_client_free(struct bench_client *cl);

void bench_client_counters(const struct bench_client *cl, struct bench_counters *out);

/* Runs the parsers on canned input (no sockets); returns the number of failed checks and
 * describes them on stderr. */
int bench_client_self_test(void);

#endif
