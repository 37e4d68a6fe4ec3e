/* Hashes for the tables and for what must agree across processes.
 *
 * Tables whose keys come from outside (session ids, channel names, client addresses) use
 * gw_hash_keyed(): SipHash-1-3 under a per-process random key. Nobody outside knows the key,
 * so nobody can choose keys that share a bucket and turn lookups linear (hash flooding: 20,000
 * session ids colliding under an unkeyed hash made opening them quadratic).
 *
 * FNV-1a stays for what must be the same in every process and is no table of ours: the Redis
 * shard of a channel (every node must pick the same one) and ETags. Never use it for a table
 * a client can fill. */
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

/* A SipHash key: the 16 key bytes read as two little-endian 64-bit words. */
struct gw_siphash_key {
    uint64_t k0;
    uint64_t k1;
};

/* SipHash-1-3 (one compression round per 8-byte word, three finalization rounds): enough
 * against flooding, where the attacker sees no output, and about twice as fast as 2-4. */
uint64_t gw_siphash13(const struct gw_siphash_key *key, const void *data, size_t len);
/* SipHash-2-4, the paper's recommended variant: the same code with more rounds, kept so that
 * the paper's test vectors check the implementation. */
uint64_t gw_siphash24(const struct gw_siphash_key *key, const void *data, size_t len);

/* Draws the process's key with one getrandom() call (aborts if it fails: a guessable key
 * would bring flooding back). Called at start, so that a machine without entropy fails
 * then, not at the first client; gw_hash_keyed() draws it itself if nobody did. */
void gw_hash_init(void);

/* SipHash-1-3 of data under this process's key, to 32 bits: the hash of every table keyed by
 * outside input. */
uint32_t gw_hash_keyed(const void *data, size_t len);

#endif
