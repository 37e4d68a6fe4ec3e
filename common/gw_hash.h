/* FNV-1a: the one hash for the tables (sessions, channels) and for Redis sharding, fed piece
 * by piece so that keys need not be built to be hashed. */
#ifndef GW_HASH_H
#define GW_HASH_H

#include <stddef.h>
#include <stdint.h>

#define GW_FNV32_INIT 2166136261u
#define GW_FNV64_INIT 14695981039346656037ull

static inline uint32_t gw_fnv32(uint32_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static inline uint64_t gw_fnv64(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

#endif
