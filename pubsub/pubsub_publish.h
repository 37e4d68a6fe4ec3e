/* A publish: one event for one scope on one or more sites and ids, as backends send it (HTTP
 * API or Redis). Immutable once built and refcounted, so that engines can hold it in flight. */
#ifndef PUBSUB_PUBLISH_H
#define PUBSUB_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "gw_error.h"

enum pubsub_scope { PUBSUB_SCOPE_USER, PUBSUB_SCOPE_CLIENT, PUBSUB_SCOPE_GLOBAL };

/* "user", "client", "global" */
const char *pubsub_scope_name(enum pubsub_scope scope);

struct pubsub_limits {
    uint32_t max_ids;        /* ids in one publish (10000) */
    uint32_t max_sites;      /* sites in one publish (100) */
    uint32_t max_name_bytes; /* one site, id or event name (256) */
    uint32_t max_data_bytes; /* the data value as compact JSON (65536) */
    /* Channels of one publish, sites * max(1, ids) (10000): bounds the work one publish asks
     * of every gateway (a lookup per channel) and of Redis (a counter per channel). */
    uint32_t max_channels;
};

void pubsub_limits_defaults(struct pubsub_limits *lim);

struct pubsub_publish {
    uint32_t refs;
    enum pubsub_scope scope;
    uint32_t n_sites;
    uint32_t n_ids; /* 0 for global */
    const char **sites;
    const char **ids;
    const char *event;
    const char *data; /* compact JSON text of the data value */
    size_t data_len;
    /* Sequence numbers, one per channel, site-major (channel k = site k / max(1, n_ids), id
     * k % n_ids), set by the engine before delivery; NULL when the origin gave none. */
    int64_t *seqs;
    /* When a node's API accepted it (wall-clock µs, gw_wall_us()), for the publish latency;
     * travels through Redis as "ts"; 0 when unknown (a backend publishing into Redis). */
    uint64_t accepted_us;
};

/* The number of channels a publish addresses: n_sites * max(1, n_ids). */
static inline size_t pubsub_publish_channels(const struct pubsub_publish *p)
{
    return (size_t)p->n_sites * (p->n_ids ? p->n_ids : 1);
}

/* Builds a publish from one JSON object:
 *   {"scope": "user"|"client"|"global", "site": S | "sites": [S...], "ids": [ID...],
 *    "event": E, "data": <any JSON>}
 * ids are strings or integers (integers are kept as their decimal text); required for user
 * and client, absent or empty for global. `seqs` (array of integers, one per channel) and `ts`
 * (accepted_us) are read when present (messages from the engine). Returns 0, or with *error set to
 * a static reason
 * ("unknown scope", "too many ids", "too many channels", ...) GW_ELIMIT when data is larger than
 * lim->max_data_bytes and GW_EINVAL for anything else. */
int pubsub_publish_from_json(const json_t *obj, const struct pubsub_limits *lim,
                             struct pubsub_publish **out, const char **error);

/* The publish as one compact JSON object (the format above, "seqs" included when set);
 * the caller frees the result with free(). */
char *pubsub_publish_to_json(const struct pubsub_publish *p, size_t *len);

/* A publish of one channel, from its parts (copied; id NULL for global) and its seq: a message
 * read back from history. The parts must be valid names (pubsub_name_valid), data compact
 * JSON. */
struct pubsub_publish *pubsub_publish_one(enum pubsub_scope scope, const char *site,
                                          size_t site_len, const char *id, size_t id_len,
                                          const char *event, size_t event_len, const char *data,
                                          size_t data_len, int64_t seq);

/* Sets the sequence numbers (copied); n must be pubsub_publish_channels(p). */
void pubsub_publish_set_seqs(struct pubsub_publish *p, const int64_t *seqs, size_t n);

static inline struct pubsub_publish *pubsub_publish_ref(struct pubsub_publish *p)
{
    p->refs++;
    return p;
}

void pubsub_publish_unref(struct pubsub_publish *p);

#endif
