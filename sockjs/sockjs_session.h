/* SockJS sessions: one type for every transport.
 *
 * A server (one per prefix) owns the options, the application callbacks and the table of
 * sessions addressed by id (the HTTP transports). Websocket sessions live outside the table:
 * each websocket is its own session.
 *
 * Session states:
 *
 *   (new) --first receiver gets "o"--> OPEN --app close / receiver lost--> CLOSED --> (freed)
 *                                        |                                   ^
 *                                        +---- disconnect_delay without -----+
 *                                              a receiver (timed out)
 *
 * OPEN: messages go to the attached receiver at once, or wait in the session's queue (in
 * order, nothing lost) until the next receiver attaches. While a receiver is attached the
 * session's one timer is the heartbeat; while none is, it is the disconnect timer.
 * CLOSED: every receiver request is answered with the close frame, until disconnect_delay has
 * passed; then the session is freed and its id opens a new session.
 *
 * Receivers are implemented by transports/ (a polling request, a stream, a websocket). */
#ifndef SOCKJS_SESSION_H
#define SOCKJS_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct gw_refbuf;
struct pubsub_message;
struct sockjs_server;
struct sockjs_session;
struct sockjs_receiver;

struct sockjs_options {
    const char *prefix;    /* "/echo": the URL path the server answers under */
    uint32_t heartbeat_ms; /* idle receiver gets "h" after this long (25000) */
    /* ... or up to this much later (1000; at most a tenth of heartbeat_ms is used), so that the
     * heartbeats falling due within it are written in one loop turn, not one wakeup each. */
    uint32_t heartbeat_window_ms;
    uint32_t disconnect_ms;  /* session without receiver lives this long (5000) */
    uint32_t response_limit; /* streams end after this many frame bytes (131072) */
    bool websocket;          /* websocket transports enabled (true) */
    bool cookie_needed;      /* JSESSIONID handling (false) */
    const char *sockjs_url;  /* the client library URL in iframe.html */
    /* A session whose unsent bytes (queue + its receiver's) pass this is closed with
     * SOCKJS_CLOSE_SLOW_CONSUMER; 0 = no limit. */
    uint32_t max_queued_bytes;
    /* A session opened with this query parameter (the app's credential, e.g. "token") belongs
     * to it: a later request naming the session must carry the same value, else it is treated
     * as naming no session (sockjs_session_access). NULL: sessions are not bound. */
    const char *bind_param;
    /* Requests naming no session (or a bound one without its value) per client address: this
     * many per second after a burst of unknown_session_burst; over it they are refused
     * (SOCKJS_ACCESS_LIMITED). 0: no limit. */
    uint32_t unknown_session_rate;
    uint32_t unknown_session_burst;
    /* Sessions one client address (gw_client_key: an IPv6 /64 counts as one) may hold at once,
     * from their opening until they are freed (a closed session still counts during the
     * disconnect delay: it still costs memory); one more is refused (SOCKJS_ACCESS_CROWDED,
     * sockjs_server_admits). 0: no limit. */
    uint32_t max_sessions_per_client;
};

#define SOCKJS_CLOSE_SLOW_CONSUMER 4008
/* The server is shutting down (drain): c[1001,"Going away"]. */
#define SOCKJS_CLOSE_GOING_AWAY 1001
#define SOCKJS_CLOSE_GOING_AWAY_REASON "Going away"

/* The transport that opened a session (a session keeps it when later receivers are of another
 * kind). The raw websocket endpoint counts as websocket. */
enum sockjs_transport {
    SOCKJS_TRANSPORT_WEBSOCKET = 0,
    SOCKJS_TRANSPORT_XHR_STREAMING,
    SOCKJS_TRANSPORT_XHR_POLLING,
    SOCKJS_TRANSPORT_EVENTSOURCE,
    SOCKJS_TRANSPORT_HTMLFILE,
    SOCKJS_TRANSPORT_JSONP,
    SOCKJS_TRANSPORT_COUNT,
};

/* "websocket", "xhr_streaming", "xhr_polling", "eventsource", "htmlfile", "jsonp". */
const char *sockjs_transport_name(enum sockjs_transport t);

/* What the request that opened a session said, for the application's on_open. */
struct sockjs_open_info {
    const char *query; /* the URL's query string (not decoded), or NULL */
    size_t query_len;
    /* The receiver's transport (enum sockjs_transport), for a request that opens a session;
     * sockjs_session_new_attached() always opens a websocket session. */
    uint8_t transport;
    /* The client's address ("127.0.0.1:5000", after PROXY protocol or a trusted
     * X-Forwarded-For), which the session counts under for max_sessions_per_client; NULL:
     * not counted. Not kept past the call (sockjs_open_info_copy leaves it NULL). */
    const char *client;
};

/* Room for a query (a token of up to 4 KiB and more) copied on the stack. */
#define SOCKJS_OPEN_INFO_BUF 8192

/* *out = a copy of *in that outlives the request `in` points into: in buf when it fits (no
 * allocation, the usual case), else on the heap. Returns what to gw_free() after use, or NULL. */
char *sockjs_open_info_copy(const struct sockjs_open_info *in, char buf[SOCKJS_OPEN_INFO_BUF],
                            struct sockjs_open_info *out);

void sockjs_options_defaults(struct sockjs_options *opt);

/* The heartbeat window in effect: heartbeat_window_ms, but at most a tenth of heartbeat_ms. A
 * receiver is never silent for longer than heartbeat_ms plus this. */
static inline uint32_t sockjs_heartbeat_window_ms(const struct sockjs_options *opt)
{
    uint32_t tenth = opt->heartbeat_ms / 10;
    return opt->heartbeat_window_ms < tenth ? opt->heartbeat_window_ms : tenth;
}

/* The application behind a prefix. Callbacks may send to or close any session, the one given
 * included; they must not free anything of the server's. */
struct sockjs_app_ops {
    const char *name;
    void (*on_open)(void *app, struct sockjs_session *s, const struct sockjs_open_info *info);
    void (*on_message)(void *app, struct sockjs_session *s, const char *msg, size_t len);
    /* The session is closed (by the app, by its receiver going away, or timed out); it may not
     * be sent to any more, and is freed after this returns (soon, not at once). */
    void (*on_close)(void *app, struct sockjs_session *s);
    /* Bytes of per-session app state, allocated with the session and zeroed, 8-byte aligned
     * (sockjs_session_app_data()): no allocation and no pointer of its own per session. */
    size_t session_data_size;
    /* Optional: who the session is, for its log lines ("user=u1 company=acme site=main"), into
     * out (cap bytes, NUL-terminated). Called while the session is open, and on its close just
     * before on_close; must not send or close. */
    void (*describe)(void *app, const struct sockjs_session *s, char *out, size_t cap);
};

enum sockjs_frame_type {
    SOCKJS_FRAME_OPEN,      /* "o" */
    SOCKJS_FRAME_HEARTBEAT, /* "h" */
    SOCKJS_FRAME_MESSAGES,  /* "a[...]" */
    SOCKJS_FRAME_CLOSE,     /* "c[code,reason]" */
    SOCKJS_FRAME_RAW,       /* raw sessions only: one application message, unframed */
};

/* One frame to write. `data` is its SockJS encoding ("o", "h", "a[...]", "c[...]"), or for
 * SOCKJS_FRAME_RAW the message itself; valid only during the call. A frame that carries one
 * published message also names it (`msg`), so that receivers can write an encoding cached on
 * the message, shared by all its recipients, instead of a copy. */
struct sockjs_frame {
    enum sockjs_frame_type type;
    const char *data;
    size_t len;
    struct pubsub_message *msg;
    int close_code;           /* SOCKJS_FRAME_CLOSE */
    const char *close_reason; /* SOCKJS_FRAME_CLOSE */
};

/* What carries a session's frames to its client (a websocket, a stream, a polling request).
 * The session calls it through the sockjs_receiver_* wrappers below, which carry the
 * contracts. */
struct sockjs_receiver_ops {
    const char *name;
    bool (*send_frame)(struct sockjs_receiver *r, const struct sockjs_frame *f);
    void (*release)(struct sockjs_receiver *r);
    size_t (*queued)(const struct sockjs_receiver *r);
    /* The client's address, for logs ("127.0.0.1:5000"); may be NULL (no address). */
    const char *(*peer)(const struct sockjs_receiver *r);
};

/* Encodings of a published message that the SockJS layer caches on it (sockjs_message_form). */
enum sockjs_message_form {
    SOCKJS_FORM_QUOTED = 0, /* the message JSON as a SockJS-quoted string */
    SOCKJS_FORM_FRAME = 1,  /* "a[" quoted "]" */
    SOCKJS_FORM_END,
};

/* Slots for a transport's own encodings of a published message (a websocket frame, compressed
 * or not), numbered 0 .. SOCKJS_TRANSPORT_FORMS - 1 by the transports; the message stays
 * opaque to them. The message holds each stored form until it is freed. */
#define SOCKJS_TRANSPORT_FORMS 4

struct sockjs_receiver {
    const struct sockjs_receiver_ops *ops;
    /* Set by the session while r is attached (before any frame is sent to it), NULL otherwise;
     * what the receiver passes to sockjs_session_receiver_lost(). */
    struct sockjs_session *session;
};

/* Writes one frame. Returns true to stay attached, false when the receiver has ended its
 * response with this frame (a polling request after any frame, a stream past response_limit);
 * the session then forgets it. Must not call back into the session. */
static inline bool sockjs_receiver_send_frame(struct sockjs_receiver *r,
                                              const struct sockjs_frame *f)
{
    return r->ops->send_frame(r, f);
}

/* The session lets go of the receiver (after a close frame, or when the session or the server
 * goes away): the receiver ends its response or connection and must not use the session again.
 * Must not call back into the session. */
static inline void sockjs_receiver_release(struct sockjs_receiver *r)
{
    r->ops->release(r);
}

/* Bytes written by the receiver and not yet on the socket (0 when it has no queued op). */
static inline size_t sockjs_receiver_queued(const struct sockjs_receiver *r)
{
    return r->ops->queued ? r->ops->queued(r) : 0;
}

/* Server (prefix). `opt` is copied (its strings must outlive the server). */
struct sockjs_server *sockjs_server_new(struct event_base *base, const struct sockjs_options *opt,
                                        const struct sockjs_app_ops *app, void *app_arg);
/* Closes and frees every session (releasing their receivers), then the server. */
void sockjs_server_free(struct sockjs_server *srv);
const struct sockjs_options *sockjs_server_options(const struct sockjs_server *srv);
/* The server is draining: no new session opens (a receiver for an unknown id gets the going-away
 * close frame), and an open session that gets a receiver is closed with it at once (its queued
 * messages first). Sessions with a receiver are closed by the gateway through their transport. */
void sockjs_server_drain(struct sockjs_server *srv);
/* Number of live sessions (table and websocket). */
size_t sockjs_server_session_count(const struct sockjs_server *srv);
/* Open sessions (not closed yet) that transport t opened, whatever carries them now. */
size_t sockjs_server_open_sessions(const struct sockjs_server *srv, enum sockjs_transport t);
/* Nodes in the longest chain of the table of sessions by id (1 or 2 normally; a hash flood
 * would show here). Walks the table: for statistics. */
size_t sockjs_server_longest_chain(const struct sockjs_server *srv);
/* New sessions refused so far because their client address held max_sessions_per_client. */
uint64_t sockjs_server_refused_crowded(const struct sockjs_server *srv);

/* Whether `client` (a client address as sockjs_open_info.client) may open one more session:
 * false when it holds max_sessions_per_client already. A refusal is counted, and logged at
 * most once a second. For transports that open sessions without an id (websocket), before
 * they answer; sockjs_session_access() checks the others. */
bool sockjs_server_admits(struct sockjs_server *srv, const char *client);

/* Whether id is a valid session or server id segment: non-empty, no '/' or '.'. */
bool sockjs_valid_id(const char *id, size_t len);

/* The session with this id, or NULL, whoever asks (no binding checked: see below). */
struct sockjs_session *sockjs_session_find(struct sockjs_server *srv, const char *id, size_t len);

enum sockjs_access {
    SOCKJS_ACCESS_OK,      /* *out is the session to use; for receivers it may be NULL: the
                            * id is free and sockjs_session_attach() opens a session */
    SOCKJS_ACCESS_UNKNOWN, /* answer exactly as for an id that names no session */
    SOCKJS_ACCESS_LIMITED, /* the client is over the unknown-session rate: refuse, and let it
                            * retry after *retry_after_s seconds */
    SOCKJS_ACCESS_CROWDED, /* the request would open a session, and its client address holds
                            * max_sessions_per_client already: refuse (sockjs_server_admits) */
};

/* What a request naming session `id` may do. `req` is the request's query (for the bound
 * parameter; may be NULL), `client` its client address (for the limits and logs),
 * `opens` whether it is a receiver request, which opens a session under an unused id. A
 * request that names a bound session and carries its value is always served; any other one is
 * refused while its client is over the unknown-session rate (so that the answer tells it
 * nothing about the id), and otherwise it may use an unbound session, or open one. Requests
 * that name no session, or a bound one without its value, are charged to the client's rate. */
enum sockjs_access sockjs_session_access(struct sockjs_server *srv, const char *id, size_t len,
                                         const struct sockjs_open_info *req, const char *client,
                                         bool opens, struct sockjs_session **out,
                                         uint32_t *retry_after_s);

/* The receiver request for `id`, after sockjs_session_access() allowed it: finds or creates
 * the session (bound to info's bind_param, when the options name one and info has it) and
 * attaches r. A new session
 * first sends "o"; a session with a receiver already answers r with c[2010]; a closed session
 * answers its close frame; otherwise queued messages are sent. r may have ended (and freed
 * itself) by the time this returns: the caller must not touch r afterwards. */
void sockjs_session_attach(struct sockjs_server *srv, const char *id, size_t len,
                           struct sockjs_receiver *r, const struct sockjs_open_info *info);

/* A websocket session (outside the table): "o" is sent to r at once; `raw` sessions send
 * application messages unframed (raw websocket endpoint). */
struct sockjs_session *sockjs_session_new_attached(struct sockjs_server *srv,
                                                   struct sockjs_receiver *r, bool raw,
                                                   const struct sockjs_open_info *info);

/* The receiver's connection went away without the session letting it go (client closed,
 * network error): the session closes with 1002 "Connection interrupted". */
void sockjs_session_receiver_lost(struct sockjs_session *s, struct sockjs_receiver *r);

/* A client payload (JSON array of strings) for s: each message goes to the app in order.
 * Returns 0 or an error of sockjs_parse_payload (nothing delivered). */
int sockjs_session_receive_payload(struct sockjs_session *s, const char *data, size_t len);
/* One client message, unframed (raw websocket). */
void sockjs_session_receive_message(struct sockjs_session *s, const char *msg, size_t len);

/* Application side. send() quotes and queues or sends at once; closing sends c[code,reason]
 * (after the messages already queued). `reason` must outlive the session (a literal). */
void sockjs_session_send(struct sockjs_session *s, const char *msg, size_t len);
void sockjs_session_close(struct sockjs_session *s, int code, const char *reason);
/* A published message, shared: its encodings are built once (cached on m) for every session. */
void sockjs_session_send_message(struct sockjs_session *s, struct pubsub_message *m);
/* The cached encoding of m in form (SOCKJS_FORM_QUOTED or SOCKJS_FORM_FRAME). */
struct gw_refbuf *sockjs_message_form(struct pubsub_message *m, enum sockjs_message_form form);
/* The encoding cached in transport slot `slot` of m, NULL while none was stored. */
struct gw_refbuf *sockjs_message_transport_form(const struct pubsub_message *m, unsigned slot);
/* Caches `form` in the empty transport slot `slot` of m, taking over the caller's reference;
 * returns form. */
struct gw_refbuf *sockjs_message_set_transport_form(struct pubsub_message *m, unsigned slot,
                                                    struct gw_refbuf *form);
bool sockjs_session_is_open(const struct sockjs_session *s);
void *sockjs_session_app_data(const struct sockjs_session *s);
/* The session whose app data this is: apps need not keep a pointer back. */
struct sockjs_session *sockjs_session_of_app_data(void *data);
struct sockjs_server *sockjs_session_server(const struct sockjs_session *s);
/* Room for a client address and its port. */
#define SOCKJS_PEER_MAX 64
/* The client's address for logs, into out: for sessions opened by an HTTP request (they have
 * an id), the address of that request, kept for the session's life; for websocket sessions,
 * their connection's; "-" when none is known. Returns out. */
const char *sockjs_session_peer(const struct sockjs_session *s, char out[SOCKJS_PEER_MAX]);
enum sockjs_transport sockjs_session_transport(const struct sockjs_session *s);
/* Once closed (in and after on_close): the close code and reason; code 0 and "Timed out" for a
 * session that timed out without a receiver (or was closed by the server's shutdown), which
 * sends no close frame. */
int sockjs_session_close_code(const struct sockjs_session *s);
const char *sockjs_session_close_reason(const struct sockjs_session *s);

#endif
