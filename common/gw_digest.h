/* Keyed digests: a fingerprint of a secret (a session's token) to compare later requests with,
 * without keeping the secret. SHA-1 over a per-process random key and the value: the key makes
 * the fingerprint useless outside this process (nothing to precompute), and a later value
 * matches only by being the same bytes (a second preimage of a keyed hash nobody sees). */
#ifndef GW_DIGEST_H
#define GW_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_DIGEST_LEN 16

/* out = the first GW_DIGEST_LEN bytes of SHA-1(process key || data). The key is drawn from
 * getrandom() on first use. */
void gw_keyed_digest(const void *data, size_t len, uint8_t out[GW_DIGEST_LEN]);

/* Whether a and b hold the same len bytes, in time that depends on len only. */
bool gw_ct_equal(const void *a, const void *b, size_t len);

#endif
