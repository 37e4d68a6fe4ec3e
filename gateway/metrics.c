#include "metrics.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "api.h"
#include "config.h"
#include "gw_alloc.h"
#include "gw_buf.h"
#include "gw_timerq.h"
#include "pubsub_presence.h"

const double gw_latency_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
const size_t gw_latency_n_bounds = sizeof(gw_latency_bounds) / sizeof(gw_latency_bounds[0]);

/* Event-loop lag: how late the probe fires, from 1 ms (nothing else to do) to 10 s. */
static const double lag_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                    0.25,  0.5,    1,     2.5,  5,     10};

#define LAG_PROBE_MS 100

void gw_histogram_init(struct gw_histogram *h, const double *bounds, size_t n_bounds)
{
    GW_ASSERT(n_bounds <= GW_HISTOGRAM_MAX_BOUNDS);
    memset(h, 0, sizeof(*h));
    h->bounds = bounds;
    h->n_bounds = n_bounds;
}

void gw_histogram_observe(struct gw_histogram *h, double value)
{
    size_t i = 0;
    while (i < h->n_bounds && value > h->bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += value;
}

struct gw_metrics {
    struct event *probe;
    uint64_t probe_due_us; /* when the probe should fire (monotonic) */
    struct gw_histogram loop_lag;
};

static void arm_probe(struct gw_metrics *m)
{
    struct timeval tv = {0, LAG_PROBE_MS * 1000};
    m->probe_due_us = gw_now_us() + LAG_PROBE_MS * 1000u;
    event_add(m->probe, &tv);
}

/* A timer due every 100 ms: how late it runs is how long the loop was busy elsewhere. */
static void on_probe(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_metrics *m = arg;
    uint64_t now = gw_now_us();
    uint64_t late = now > m->probe_due_us ? now - m->probe_due_us : 0;
    gw_histogram_observe(&m->loop_lag, (double)late / 1e6);
    arm_probe(m);
}

struct gw_metrics *gw_metrics_new(struct event_base *base)
{
    struct gw_metrics *m = gw_calloc(1, sizeof(*m));
    gw_histogram_init(&m->loop_lag, lag_bounds, sizeof(lag_bounds) / sizeof(lag_bounds[0]));
    m->probe = event_new(base, -1, 0, on_probe, m);
    GW_ASSERT(m->probe != NULL);
    arm_probe(m);
    return m;
}

void gw_metrics_free(struct gw_metrics *m)
{
    if (!m)
        return;
    event_free(m->probe);
    gw_free(m);
}

/* ---- exposition ----------------------------------------------------------------------------- */

static void head(struct gw_buf *out, const char *name, const char *type, const char *help)
{
    gw_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample without labels. */
static void sample(struct gw_buf *out, const char *name, const char *type, const char *help,
                   uint64_t value)
{
    head(out, name, type, help);
    gw_buf_appendf(out, "%s %" PRIu64 "\n", name, value);
}

static void sample_double(struct gw_buf *out, const char *name, const char *type, const char *help,
                          double value)
{
    head(out, name, type, help);
    gw_buf_appendf(out, "%s %.17g\n", name, value);
}

static void histogram(struct gw_buf *out, const char *name, const char *help,
                      const struct gw_histogram *h)
{
    head(out, name, "histogram", help);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h->n_bounds; i++) {
        cumulative += h->counts[i];
        gw_buf_appendf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, h->bounds[i], cumulative);
    }
    gw_buf_appendf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, h->count);
    gw_buf_appendf(out, "%s_sum %.17g\n%s_count %" PRIu64 "\n", name, h->sum, name, h->count);
}

/* A label value as the format wants it: \\, \" and \n escaped. */
static void label_value(struct gw_buf *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            gw_buf_appendf(out, "\\%c", *v);
        else if (*v == '\n')
            gw_buf_append(out, "\\n", 2);
        else
            gw_buf_append(out, v, 1);
    }
}

/* ---- process -------------------------------------------------------------------------------- */

static void process_metrics(struct gw_buf *out)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned long long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    sample(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
           (uint64_t)resident * (uint64_t)(page > 0 ? page : 4096));
    sample(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
           (uint64_t)size * (uint64_t)(page > 0 ? page : 4096));

    /* Counted when scraped (a directory read), not tracked: nothing on the hot path. */
    uint64_t fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                fds++;
        closedir(d);
        fds--; /* the directory's own descriptor */
    }
    sample(out, "process_open_fds", "gauge", "Number of open file descriptors.", fds);
    struct rlimit rl;
    uint64_t max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (uint64_t)rl.rlim_cur : 0;
    sample(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.", max_fds);

    struct rusage ru;
    double cpu = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
              (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    sample_double(out, "process_cpu_seconds_total", "counter",
                  "Total user and system CPU time spent in seconds.", cpu);

    /* Start: field 22 of /proc/self/stat (clock ticks after boot) plus the boot time. */
    double start = 0;
    char buf[1024];
    f = fopen("/proc/self/stat", "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
        unsigned long long ticks = 0;
        for (int field = 2; p && field < 22; field++)
            p = strchr(p + 1, ' ');
        if (p)
            ticks = strtoull(p + 1, NULL, 10);
        unsigned long long btime = 0;
        f = fopen("/proc/stat", "r");
        if (f) {
            char line[256];
            while (fgets(line, sizeof(line), f))
                if (sscanf(line, "btime %llu", &btime) == 1)
                    break;
            fclose(f);
        }
        long hz = sysconf(_SC_CLK_TCK);
        if (btime && hz > 0)
            start = (double)btime + (double)ticks / (double)hz;
    }
    sample_double(out, "process_start_time_seconds", "gauge",
                  "Start time of the process since unix epoch in seconds.", start);
}

/* ---- the gateway ---------------------------------------------------------------------------- */

static const char *const result_names[GW_API_RESULTS] = {"accepted", "rejected", "unavailable"};

void gw_metrics_write(const struct gw_metrics *m, const struct gw_api *api, struct gw_buf *out)
{
    const struct gw_server *srv = api->sockjs;
    const struct gw_delivery_stats *d = gw_delivery_stats(api->delivery);
    const struct pubsub_hub_stats *h = pubsub_hub_stats(pubsub_node_hub(api->node));
    const struct pubsub_engine *engine = pubsub_node_engine(api->node);
    const struct pubsub_engine_stats *e = &engine->stats;
    const struct pubsub_presence_stats *p = pubsub_presence_stats(pubsub_node_presence(api->node));
    const struct gw_accept_stats *a = &srv->accept_stats;

    head(out, "sockjs_gateway_build_info", "gauge", "The gateway's version; always 1.");
    gw_buf_append_str(out, "sockjs_gateway_build_info{version=\"");
    label_value(out, gw_version());
    gw_buf_append_str(out, "\"} 1\n");

    /* Sessions. */
    head(out, "sockjs_gateway_sessions", "gauge",
         "Open sessions by the transport that opened them.");
    for (int t = 0; t < SOCKJS_TRANSPORT_COUNT; t++)
        gw_buf_appendf(out, "sockjs_gateway_sessions{transport=\"%s\"} %zu\n",
                       sockjs_transport_name((enum sockjs_transport)t),
                       gw_server_open_sessions(srv, (enum sockjs_transport)t));
    head(out, "sockjs_gateway_sessions_by_identity", "gauge",
         "Open sessions: authenticated (token), anonymous (site), waiting (for a token).");
    size_t open = 0;
    for (int t = 0; t < SOCKJS_TRANSPORT_COUNT; t++)
        open += gw_server_open_sessions(srv, (enum sockjs_transport)t);
    uint64_t identified = d->open_authenticated + d->open_anonymous;
    gw_buf_appendf(out,
                   "sockjs_gateway_sessions_by_identity{identity=\"authenticated\"} %" PRIu64 "\n"
                   "sockjs_gateway_sessions_by_identity{identity=\"anonymous\"} %" PRIu64 "\n"
                   "sockjs_gateway_sessions_by_identity{identity=\"waiting\"} %" PRIu64 "\n",
                   d->open_authenticated, d->open_anonymous,
                   open > identified ? (uint64_t)open - identified : 0);
    sample(out, "sockjs_gateway_sessions_opened_total", "counter", "Sessions opened.", d->sessions);
    sample(out, "sockjs_gateway_sessions_authenticated_total", "counter",
           "Sessions authenticated by a token.", d->authenticated);
    sample(out, "sockjs_gateway_auth_failures_total", "counter",
           "Tokens refused (invalid or expired).", d->auth_failures);
    head(out, "sockjs_gateway_session_closes_total", "counter",
         "Sessions closed, by close code (timeout: no receiver within the disconnect delay).");
    for (unsigned i = 0; i < GW_CLOSE_KINDS; i++)
        gw_buf_appendf(out, "sockjs_gateway_session_closes_total{code=\"%s\"} %" PRIu64 "\n",
                       gw_delivery_close_label(i), d->closes[i]);
    sample(out, "sockjs_gateway_malformed_messages_total", "counter",
           "Client messages the gateway could not act on.", d->malformed_messages);

    /* Connections and the listeners. */
    sample(out, "sockjs_gateway_connections", "gauge", "Open client connections.", srv->n_conns);
    sample(out, "sockjs_gateway_max_connections", "gauge",
           "Client connections allowed at once (--max-connections).", srv->max_connections);
    sample(out, "sockjs_gateway_connections_accepted_total", "counter",
           "Client connections accepted.", a->accepted);
    head(out, "sockjs_gateway_connections_refused_total", "counter",
         "Client connections or requests refused, by reason.");
    gw_buf_appendf(
        out,
        "sockjs_gateway_connections_refused_total{reason=\"limit\"} %" PRIu64 "\n"
        "sockjs_gateway_connections_refused_total{reason=\"proxy_header\"} %" PRIu64 "\n"
        "sockjs_gateway_connections_refused_total{reason=\"draining\"} %" PRIu64 "\n"
        "sockjs_gateway_connections_refused_total{reason=\"sessions_per_ip\"} %" PRIu64 "\n",
        a->refused_limit, a->refused_proxy, a->refused_drain, gw_server_refused_crowded(srv));
    sample(out, "sockjs_gateway_accept_pauses_total", "counter",
           "Times accepting paused for lack of descriptors (EMFILE, ENFILE).", a->paused);
    sample(out, "sockjs_gateway_accept_paused", "gauge",
           "1 while accepting is paused for lack of descriptors.", srv->accept_paused);
    sample(out, "sockjs_gateway_draining", "gauge", "1 while the gateway drains (SIGTERM).",
           gw_server_draining(srv));
    sample(out, "sockjs_gateway_written_bytes_total", "counter",
           "Bytes written to client connections.", a->bytes_written);

    /* Publishes. */
    head(out, "sockjs_gateway_publishes_total", "counter",
         "Publishes to the API, by scope and result (unknown: the scope could not be read).");
    for (int s = 0; s <= GW_API_SCOPE_UNKNOWN; s++)
        for (int r = 0; r < GW_API_RESULTS; r++)
            gw_buf_appendf(
                out, "sockjs_gateway_publishes_total{scope=\"%s\",result=\"%s\"} %" PRIu64 "\n",
                s == GW_API_SCOPE_UNKNOWN ? "unknown" : pubsub_scope_name((enum pubsub_scope)s),
                result_names[r], api->publish_results[s][r]);
    sample(out, "sockjs_gateway_api_requests_total", "counter", "Requests to the API listener.",
           api->requests);
    sample(out, "sockjs_gateway_api_unauthorized_total", "counter",
           "API requests without the right key.", api->unauthorized);
    sample(out, "sockjs_gateway_hub_publishes_total", "counter",
           "Publishes the hub delivered (from any node).", h->publishes);
    sample(out, "sockjs_gateway_hub_messages_total", "counter",
           "Messages built: (publish, channel with local subscribers) pairs.", h->messages);
    sample(out, "sockjs_gateway_deliveries_total", "counter", "Messages handed to sessions.",
           d->deliveries);
    sample(out, "sockjs_gateway_filtered_total", "counter",
           "Messages a session's event filter held back.", d->filtered);
    sample(out, "sockjs_gateway_hub_deferred_total", "counter",
           "Publishes not delivered whole in the loop turn they arrived in.", h->deferred);
    sample(out, "sockjs_gateway_hub_slices_total", "counter",
           "Later loop turns spent delivering deferred publishes.", h->slices);
    sample(out, "sockjs_gateway_hub_queued", "gauge", "Publishes waiting or part-delivered.",
           h->queued);
    sample(out, "sockjs_gateway_channels", "gauge", "Channels with local subscribers.",
           h->channels);
    sample(out, "sockjs_gateway_subscriptions", "gauge", "Subscriptions of local sessions.",
           h->subscriptions);
    histogram(out, "sockjs_gateway_publish_latency_seconds",
              "From the API accepting a publish to its first frame queued to a client, per "
              "(publish, channel) message (this node's publishes only).",
              &d->publish_latency);

    /* Engine. */
    head(out, "sockjs_gateway_engine_available", "gauge",
         "1 while the engine accepts publishes (Redis connected).");
    gw_buf_appendf(out, "sockjs_gateway_engine_available{engine=\"%s\"} %d\n", engine->ops->name,
                   pubsub_node_available(api->node) ? 1 : 0);
    sample(out, "sockjs_gateway_engine_published_total", "counter",
           "Publishes the engine accepted.", e->published);
    sample(out, "sockjs_gateway_engine_delivered_total", "counter",
           "Publishes the engine handed to this node.", e->delivered);
    sample(out, "sockjs_gateway_engine_dropped_total", "counter",
           "Publishes lost: accepted but never confirmed sent.", e->dropped);
    sample(out, "sockjs_gateway_engine_malformed_total", "counter",
           "Messages the engine heard that were not valid publishes.", e->malformed);
    sample(out, "sockjs_gateway_engine_reconnects_total", "counter",
           "Engine connections re-established.", e->reconnects);

    /* Recovery. */
    sample(out, "sockjs_gateway_ready_total", "counter", "Ready messages sent.", d->ready);
    sample(out, "sockjs_gateway_ready_unknown_total", "counter",
           "Ready messages sent without positions (no answer in time).", d->ready_unknown);
    sample(out, "sockjs_gateway_recovered_total", "counter",
           "Scopes asked to recover and recovered.", d->recovered);
    sample(out, "sockjs_gateway_not_recovered_total", "counter",
           "Scopes asked to recover and not recovered.", d->not_recovered);
    sample(out, "sockjs_gateway_replayed_total", "counter",
           "Missed messages sent after a ready message.", d->replayed);
    sample(out, "sockjs_gateway_replay_too_large_total", "counter",
           "Recoveries refused: the replay would overflow the session's queue.",
           d->replay_too_large);

    /* Presence. */
    sample(out, "sockjs_gateway_presence_joins_total", "counter", "Presence join events sent.",
           p->joins);
    sample(out, "sockjs_gateway_presence_leaves_total", "counter", "Presence leave events sent.",
           p->leaves);
    sample(out, "sockjs_gateway_presence_lingering", "gauge",
           "Users whose last session closed within the leave delay.", p->ghosts);
    sample(out, "sockjs_gateway_presence_queries_total", "counter",
           "Channels asked about in presence queries.", p->queries);
    sample(out, "sockjs_gateway_presence_redis_commands_total", "counter",
           "Presence commands sent to Redis.", p->redis_commands);
    sample(out, "sockjs_gateway_presence_redis_changes_total", "counter",
           "Presence changes those commands carried.", p->redis_deltas);
    sample(out, "sockjs_gateway_presence_replaces_total", "counter",
           "Whole presence state re-sent to Redis.", p->replaces);
    sample(out, "sockjs_gateway_presence_dead_nodes_total", "counter",
           "Silent nodes this node dropped from presence.", p->dead_nodes);
    sample(out, "sockjs_gateway_presence_lost_events_total", "counter",
           "Presence events the engine refused.", p->lost_events);

    histogram(out, "sockjs_gateway_event_loop_lag_seconds",
              "How late a timer due every 100 ms fires.", &m->loop_lag);
    process_metrics(out);
}
