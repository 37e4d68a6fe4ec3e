/* SHA-1 (FIPS 180-4), for the websocket handshake's Sec-WebSocket-Accept (a checksum there)
 * and the keyed digests of gw_digest.h (which need only second-preimage resistance under a
 * secret key, which SHA-1 still has). Our own because libcrypto's EVP interface allocates a
 * context (and fetches the algorithm) on every use, and the upgrade path allocates nothing
 * besides the session it creates. */
#ifndef GW_SHA1_H
#define GW_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define GW_SHA1_LEN 20

struct gw_sha1 {
    uint32_t h[5];
    uint64_t total; /* bytes hashed so far */
    uint8_t block[64];
    size_t used; /* bytes in block */
};

void gw_sha1_init(struct gw_sha1 *s);
void gw_sha1_update(struct gw_sha1 *s, const void *data, size_t len);
void gw_sha1_final(struct gw_sha1 *s, uint8_t out[GW_SHA1_LEN]);

#endif
