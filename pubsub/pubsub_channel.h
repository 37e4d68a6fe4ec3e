/* Channel names: "user:<site>:<id>", "client:<site>:<id>", "global:<site>". */
#ifndef PUBSUB_CHANNEL_H
#define PUBSUB_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "pubsub_publish.h"

/* Room for any channel name of names within the default limits, NUL included. */
#define PUBSUB_CHANNEL_NAME_MAX (8 + 2 * 1024 + 2)

/* FNV-1a, 32 bits: the hub's table and the Redis engine's sharding use the same hash. */
uint32_t pubsub_channel_hash(const char *name, size_t len);

/* Writes the channel name (NUL-terminated, truncated to cap) and returns its length. */
size_t pubsub_channel_name(char *out, size_t cap, enum pubsub_scope scope, const char *site,
                           const char *id);

/* The name of channel k of a publish (k < pubsub_publish_channels(p), site-major). */
size_t pubsub_channel_name_of(const struct pubsub_publish *p, size_t k, char *out, size_t cap);

#endif
