/* Channel names: "user:<site>:<id>", "client:<site>:<id>", "global:<site>".
 *
 * The mapping from (scope, site, id) to a name is one-to-one as long as every site and id passes
 * pubsub_name_valid(): scope names contain no ':', a site contains no ':' either, so the first
 * two ':' of a name split it back into its parts (an id may contain ':', it is the rest), and
 * no name is ever truncated. Every name that reaches a channel (token claims, the anonymous
 * ?site=, publishes from the API or from Redis) is checked with it. */
#ifndef PUBSUB_CHANNEL_H
#define PUBSUB_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pubsub_publish.h"

/* The longest site or id pubsub_name_valid() accepts, whatever the caller's own limit. */
#define PUBSUB_NAME_MAX_BYTES 1024

/* Room for any channel name of valid names, NUL included. */
#define PUBSUB_CHANNEL_NAME_MAX (8 + 2 * PUBSUB_NAME_MAX_BYTES + 2)

enum pubsub_name_kind {
    PUBSUB_NAME_SITE, /* may not contain ':', the separator of channel names */
    PUBSUB_NAME_ID,   /* user or company id, or an event name: ':' allowed */
};

/* Whether s (len bytes, not NUL-terminated) may be a site or an id: non-empty, at most max and
 * PUBSUB_NAME_MAX_BYTES bytes, no C0 control (NUL included), DEL or C1 control (UTF-8 C2 80..9F;
 * the caller has checked the UTF-8 itself), and no ':' in a site. */
bool pubsub_name_valid(const char *s, size_t len, size_t max, enum pubsub_name_kind kind);

/* FNV-1a, 32 bits, unkeyed: the Redis shard of a channel (% shards), the same on every node.
 * For the shard choice only: tables of channel names use gw_hash_keyed(), which a client
 * cannot aim at one bucket. */
uint32_t pubsub_channel_shard_hash(const char *name, size_t len);

/* Writes the channel name (NUL-terminated, truncated to cap) and returns its length. */
size_t pubsub_channel_name(char *out, size_t cap, enum pubsub_scope scope, const char *site,
                           const char *id);

/* The parts of a valid channel name: the site (*site_len bytes from the returned pointer, not
 * NUL-terminated), and *id the id (NULL for global). */
const char *pubsub_channel_parts(const char *name, size_t *site_len, const char **id);

/* The name of channel k of a publish (k < pubsub_publish_channels(p), site-major). */
size_t pubsub_channel_name_of(const struct pubsub_publish *p, size_t k, char *out, size_t cap);

#endif
