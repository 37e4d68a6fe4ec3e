#include "gw_ratelimit.h"

#include <string.h>

#include "gw_alloc.h"
#include "gw_digest.h"

/* Tokens are counted in thousandths, so that a rate per second is a rate per millisecond. */
#define MILLI 1000u

struct gw_ratelimit_entry {
    uint64_t key;      /* 0: empty (keys are never 0) */
    uint64_t stamp_ms; /* when millitokens was last brought up to date */
    uint32_t millitokens;
};

void gw_ratelimit_init(struct gw_ratelimit *rl, uint32_t rate_per_s, uint32_t burst, size_t entries)
{
    memset(rl, 0, sizeof(*rl));
    rl->rate = rate_per_s;
    rl->burst = burst ? burst : 1;
    size_t n = GW_RATELIMIT_WAYS;
    while (n < entries)
        n *= 2;
    rl->n_sets = n / GW_RATELIMIT_WAYS;
}

void gw_ratelimit_cleanup(struct gw_ratelimit *rl)
{
    gw_free(rl->entries);
    rl->entries = NULL;
}

uint64_t gw_ratelimit_key(const char *name, size_t len)
{
    uint8_t d[GW_DIGEST_LEN];
    gw_keyed_digest(name, len, d);
    uint64_t key;
    memcpy(&key, d, sizeof(key));
    return key | 1;
}

static uint32_t capacity(const struct gw_ratelimit *rl)
{
    return rl->burst > UINT32_MAX / MILLI ? UINT32_MAX : rl->burst * MILLI;
}

/* The entry's tokens as of now. */
static uint32_t tokens_now(const struct gw_ratelimit *rl, const struct gw_ratelimit_entry *e,
                           uint64_t now_ms)
{
    uint64_t elapsed = now_ms > e->stamp_ms ? now_ms - e->stamp_ms : 0;
    uint64_t t = e->millitokens + elapsed * rl->rate;
    return t > capacity(rl) ? capacity(rl) : (uint32_t)t;
}

static struct gw_ratelimit_entry *set_of(const struct gw_ratelimit *rl, uint64_t key)
{
    return rl->entries + ((key >> 1) & (rl->n_sets - 1)) * GW_RATELIMIT_WAYS;
}

uint64_t gw_ratelimit_wait_ms(const struct gw_ratelimit *rl, uint64_t key, uint64_t now_ms)
{
    if (!rl->rate || !rl->entries)
        return 0;
    struct gw_ratelimit_entry *set = set_of(rl, key);
    for (int i = 0; i < GW_RATELIMIT_WAYS; i++) {
        if (set[i].key != key)
            continue;
        uint32_t t = tokens_now(rl, &set[i], now_ms);
        return t >= MILLI ? 0 : (MILLI - t + rl->rate - 1) / rl->rate;
    }
    return 0;
}

bool gw_ratelimit_charge(struct gw_ratelimit *rl, uint64_t key, uint64_t now_ms)
{
    if (!rl->rate)
        return false;
    if (!rl->entries)
        rl->entries = gw_calloc(rl->n_sets * GW_RATELIMIT_WAYS, sizeof(*rl->entries));
    struct gw_ratelimit_entry *set = set_of(rl, key), *e = NULL, *victim = NULL;
    for (int i = 0; i < GW_RATELIMIT_WAYS && !e; i++) {
        if (set[i].key == key)
            e = &set[i];
        else if (!set[i].key || tokens_now(rl, &set[i], now_ms) == capacity(rl))
            victim = &set[i]; /* empty or refilled: holds nothing worth keeping */
    }
    if (!e) {
        if (!victim) {
            victim = &set[0];
            for (int i = 1; i < GW_RATELIMIT_WAYS; i++) {
                if (set[i].stamp_ms < victim->stamp_ms)
                    victim = &set[i];
            }
        }
        e = victim;
        e->key = key;
        e->millitokens = capacity(rl);
        e->stamp_ms = now_ms;
    }
    uint32_t t = tokens_now(rl, e, now_ms);
    e->millitokens = t >= MILLI ? t - MILLI : 0;
    e->stamp_ms = now_ms;
    return e->millitokens < MILLI;
}
