#include "pubsub_channel.h"

#include <stdio.h>
#include <string.h>

#include "gw_hash.h"

bool pubsub_name_valid(const char *s, size_t len, size_t max, enum pubsub_name_kind kind)
{
    if (len == 0 || len > max || len > PUBSUB_NAME_MAX_BYTES)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || (kind == PUBSUB_NAME_SITE && c == ':'))
            return false;
        if (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] <= 0x9f)
            return false;
    }
    return true;
}

uint32_t pubsub_channel_shard_hash(const char *name, size_t len)
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

const char *pubsub_channel_parts(const char *name, size_t *site_len, const char **id)
{
    const char *site = strchr(name, ':') + 1;
    const char *end = strchr(site, ':');
    *site_len = end ? (size_t)(end - site) : strlen(site);
    *id = end ? end + 1 : NULL;
    return site;
}
