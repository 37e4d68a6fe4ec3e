/*
 * hub_lookup: the hub's cost per addressed channel, in process, no sockets.
 *
 *   hub_lookup [--channels 100000] [--per-publish 10000] [--rounds 15]
 *
 * Subscribes one subscriber to each of C channels ("user:S:0" .. "user:S:<C-1>"), then times
 * pubsub_hub_deliver() of user publishes naming P ids each:
 *   miss: ids no one subscribed to, so each channel costs its name, its hash and a lookup;
 *   hit:  ids that are subscribed, so each also builds its message and makes one callback.
 * Then, after all lookup rounds, churn: unsubscribing all C and subscribing them again (a table
 * that shrinks then grows back). Each figure is the median over the rounds. Prints one JSON line:
 *   {"tool":"hub_lookup","channels":C,"per_publish":P,"rounds":R,
 *    "miss_ns_per_channel":..,"hit_ns_per_channel":..,"churn_ns_per_subscription":..}
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "gw_alloc.h"
#include "pubsub_channel.h"
#include "pubsub_hub.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static unsigned long deliveries;

static void on_message(void *arg, struct pubsub_sub *sub, struct pubsub_message *m)
{
    (void)arg;
    (void)sub;
    (void)m;
    deliveries++;
}

/* A user publish to site S naming ids first .. first + n - 1. */
static struct pubsub_publish *publish_of(size_t first, size_t n)
{
    json_t *ids = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(ids, json_integer((json_int_t)(first + i)));
    json_t *obj = json_pack("{s:s, s:s, s:o, s:s, s:{s:i}}", "scope", "user", "site", "S", "ids",
                            ids, "event", "bench", "data", "k", 1);
    struct pubsub_limits lim;
    pubsub_limits_defaults(&lim);
    lim.max_ids = lim.max_channels = (uint32_t)n;
    struct pubsub_publish *p = NULL;
    const char *error = NULL;
    if (pubsub_publish_from_json(obj, &lim, &p, &error) != 0) {
        fprintf(stderr, "hub_lookup: publish: %s\n", error);
        exit(1);
    }
    json_decref(obj);
    return p;
}

static void subscribe_all(struct pubsub_hub *hub, struct pubsub_sub *subs, size_t n)
{
    char name[64];
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "user:S:%zu", i);
        pubsub_hub_subscribe(hub, &subs[i], name);
    }
}

static double time_publish(struct pubsub_hub *hub, struct pubsub_publish *p, size_t n)
{
    double t0 = now_ns();
    pubsub_hub_deliver(hub, p);
    return (now_ns() - t0) / (double)n;
}

int main(int argc, char **argv)
{
    size_t channels = 100000, per_publish = 10000, rounds = 15;
    static const struct option opts[] = {{"channels", required_argument, NULL, 'c'},
                                         {"per-publish", required_argument, NULL, 'p'},
                                         {"rounds", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if (o == 'c')
            channels = strtoul(optarg, NULL, 10);
        else if (o == 'p')
            per_publish = strtoul(optarg, NULL, 10);
        else if (o == 'r')
            rounds = strtoul(optarg, NULL, 10);
        else
            return 2;
    }
    if (per_publish > channels || rounds == 0) {
        fprintf(stderr, "hub_lookup: --per-publish must not exceed --channels\n");
        return 2;
    }
    struct pubsub_hub *hub = pubsub_hub_new(NULL, 0, on_message, NULL);
    struct pubsub_sub *subs = gw_calloc(channels, sizeof(*subs));
    for (size_t i = 0; i < channels; i++)
        pubsub_sub_init(&subs[i]);
    subscribe_all(hub, subs, channels);
    struct pubsub_publish *miss = publish_of(channels, per_publish);
    struct pubsub_publish *hit = publish_of(0, per_publish);
    double *miss_ns = gw_calloc(rounds, sizeof(double));
    double *hit_ns = gw_calloc(rounds, sizeof(double));
    double *churn_ns = gw_calloc(rounds, sizeof(double));
    for (size_t r = 0; r < rounds; r++) {
        miss_ns[r] = time_publish(hub, miss, per_publish);
        hit_ns[r] = time_publish(hub, hit, per_publish);
    }
    /* After the lookups: churn reallocates the channels and, where the table shrinks, the
     * buckets, which would change what the lookups above find in the caches. */
    for (size_t r = 0; r < rounds; r++) {
        double t0 = now_ns();
        for (size_t i = 0; i < channels; i++)
            pubsub_hub_unsubscribe(hub, &subs[i]);
        subscribe_all(hub, subs, channels);
        churn_ns[r] = (now_ns() - t0) / (double)channels;
    }
    if (deliveries != rounds * per_publish) {
        fprintf(stderr, "hub_lookup: %lu deliveries, expected %zu\n", deliveries,
                rounds * per_publish);
        return 1;
    }
    printf("{\"tool\":\"hub_lookup\",\"channels\":%zu,\"per_publish\":%zu,\"rounds\":%zu,"
           "\"miss_ns_per_channel\":%.1f,\"hit_ns_per_channel\":%.1f,"
           "\"churn_ns_per_subscription\":%.1f}\n",
           channels, per_publish, rounds, median(miss_ns, rounds), median(hit_ns, rounds),
           median(churn_ns, rounds));
    for (size_t i = 0; i < channels; i++)
        pubsub_hub_unsubscribe(hub, &subs[i]);
    pubsub_publish_unref(miss);
    pubsub_publish_unref(hit);
    pubsub_hub_free(hub);
    gw_free(subs);
    gw_free(miss_ns);
    gw_free(hit_ns);
    gw_free(churn_ns);
    return 0;
}
