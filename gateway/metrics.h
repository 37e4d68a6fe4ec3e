/* Prometheus metrics: the histograms the hot paths observe, the event-loop lag probe, and the
 * text exposition (format 0.0.4) of every counter at GET /metrics on the API listener. The
 * counters themselves stay where they are counted (API, delivery, listeners, hub, engine,
 * presence, sessions); this module only reads them when scraped. */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct gw_api;
struct gw_buf;

#define GW_HISTOGRAM_MAX_BOUNDS 16

/* A fixed-bucket histogram: observing is a short scan of at most 16 bounds and three adds.
 * counts[i] is the non-cumulative count of observations in (bounds[i-1], bounds[i]];
 * counts[n_bounds] those above the last bound. */
struct gw_histogram {
    const double *bounds; /* ascending, in the metric's base unit (seconds) */
    size_t n_bounds;
    uint64_t counts[GW_HISTOGRAM_MAX_BOUNDS + 1];
    uint64_t count;
    double sum;
};

/* Bounds for latencies from 100 µs to 10 s (publish to write). */
extern const double gw_latency_bounds[];
extern const size_t gw_latency_n_bounds;

void gw_histogram_init(struct gw_histogram *h, const double *bounds, size_t n_bounds);
void gw_histogram_observe(struct gw_histogram *h, double value);

struct gw_metrics;

/* Starts the event-loop lag probe (a timer every 100 ms on base). */
struct gw_metrics *gw_metrics_new(struct event_base *base);
void gw_metrics_free(struct gw_metrics *m);

/* Appends the whole exposition to out: the API's counters and those it reaches (delivery,
 * node, SockJS server), the process's, and the probe's. */
void gw_metrics_write(const struct gw_metrics *m, const struct gw_api *api, struct gw_buf *out);

/* The Content-Type of the exposition. */
#define GW_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
