#include "pubsub_channel.h"

#include <stdio.h>

#include "gw_hash.h"

uint32_t pubsub_channel_hash(const char *name, size_t len)
{
    return gw_fnv32(GW_FNV32_INIT, name, len);
}

size_t pubsub_channel_name(char *out, size_t cap, enum pubsub_scope scope, const char *site,
                           const char *id)
{
    int n = scope == PUBSUB_SCOPE_GLOBAL
                ? snprintf(out, cap, "global:%s", site)
                : snprintf(out, cap, "%s:%s:%s", pubsub_scope_name(scope), site, id);
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

size_t pubsub_channel_name_of(const struct pubsub_publish *p, size_t k, char *out, size_t cap)
{
    size_t per_site = p->n_ids ? p->n_ids : 1;
    const char *site = p->sites[k / per_site];
    const char *id = p->n_ids ? p->ids[k % per_site] : NULL;
    return pubsub_channel_name(out, cap, p->scope, site, id);
}
