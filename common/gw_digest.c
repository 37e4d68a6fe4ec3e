#include "gw_digest.h"

#include <string.h>
#include <sys/random.h>

#include "gw_alloc.h"
#include "gw_sha1.h"

#define KEY_LEN 32

static uint8_t key[KEY_LEN];
static bool key_ready;

static void key_init(void)
{
    size_t got = 0;
    while (got < KEY_LEN) {
        ssize_t n = getrandom(key + got, KEY_LEN - got, 0);
        /* Without a key the digests would be guessable: better not to run at all. */
        GW_ASSERT(n > 0);
        got += (size_t)n;
    }
    key_ready = true;
}

void gw_keyed_digest(const void *data, size_t len, uint8_t out[GW_DIGEST_LEN])
{
    if (!key_ready)
        key_init();
    struct gw_sha1 sha;
    uint8_t full[GW_SHA1_LEN];
    gw_sha1_init(&sha);
    gw_sha1_update(&sha, key, KEY_LEN);
    gw_sha1_update(&sha, data, len);
    gw_sha1_final(&sha, full);
    memcpy(out, full, GW_DIGEST_LEN);
}

bool gw_ct_equal(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t diff = 0;
    for (size_t i = 0; i < len; i++)
        diff |= (uint8_t)(x[i] ^ y[i]);
    return diff == 0;
}
