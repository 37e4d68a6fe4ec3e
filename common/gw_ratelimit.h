/* Rate limits per client in bounded memory: a token bucket per key (a client address) in a
 * fixed-size table, whatever the number of clients.
 *
 * The table is set-associative (GW_RATELIMIT_WAYS entries per set, chosen by a keyed hash, so
 * that nobody can aim their keys at one set). A new key takes an entry of its set that is empty
 * or whose bucket has refilled (such an entry limits nothing: forgetting it changes nothing),
 * else the one touched longest ago. A client can thus only escape its limit by making others
 * charge more keys into its set than the set holds, i.e. by having that many addresses, each of
 * which is limited on its own meanwhile. The table is allocated on the first charge: a process
 * whose clients never fail never pays for it. */
#ifndef GW_RATELIMIT_H
#define GW_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_RATELIMIT_WAYS 4

struct gw_ratelimit_entry;

struct gw_ratelimit {
    uint32_t rate;  /* tokens per second; 0: no limit */
    uint32_t burst; /* bucket size */
    size_t n_sets;  /* power of two */
    struct gw_ratelimit_entry *entries;
};

/* `entries` is rounded up to a power of two, at least GW_RATELIMIT_WAYS. */
void gw_ratelimit_init(struct gw_ratelimit *rl, uint32_t rate_per_s, uint32_t burst,
                       size_t entries);
void gw_ratelimit_cleanup(struct gw_ratelimit *rl);

/* The table key of a client name (keyed: see gw_digest.h). */
uint64_t gw_ratelimit_key(const char *name, size_t len);

/* 0 when key may be charged now, else the milliseconds until it may again. Changes nothing. */
uint64_t gw_ratelimit_wait_ms(const struct gw_ratelimit *rl, uint64_t key, uint64_t now_ms);

/* Takes one token from key's bucket (a new key starts full). Returns true when the bucket is
 * empty afterwards, i.e. the next charge would wait. */
bool gw_ratelimit_charge(struct gw_ratelimit *rl, uint64_t key, uint64_t now_ms);

#endif
