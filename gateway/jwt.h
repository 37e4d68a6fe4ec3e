/* JWT (HS256) verification: a browser session proves its user, company and site with a token
 * signed by the backend. One or two secrets are accepted at once so that the secret can rotate
 * without logging everyone out. */
#ifndef GW_JWT_H
#define GW_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "gw_error.h"

/* Longer tokens give GW_ELIMIT, checked before any work. */
#define GW_JWT_MAX_LEN 4096
/* Limits on claims, in bytes of UTF-8. */
#define GW_JWT_MAX_CLAIM_LEN 256
#define GW_JWT_MAX_EVENTS 64
#define GW_JWT_MAX_EVENT_LEN 128

/* Filled in place (no allocation but for the events): verifying a token is on every session's
 * way in. */
struct gw_identity {
    char user[GW_JWT_MAX_CLAIM_LEN + 1];   /* sub: string, or integer claim as decimal text */
    char client[GW_JWT_MAX_CLAIM_LEN + 1]; /* client: string or integer as decimal text */
    char site[GW_JWT_MAX_CLAIM_LEN + 1];   /* site: string */
    int64_t exp;                           /* seconds since the epoch */
    char **events; /* NULL-less array of n_events strings, or NULL when the claim is absent */
    size_t n_events;
};

/* Verifies token (len bytes, not NUL-terminated) against each of the NUL-terminated secrets.
 * Checks, in this order: length; three dot-separated parts of canonical unpadded base64url;
 * header a JSON object with alg exactly "HS256" (typ optional, ignored); the HMAC-SHA256
 * signature, in constant time, under any secret; payload a JSON object (duplicate keys
 * rejected); exp (required integer; expired when now >= exp + leeway_s); nbf if present (integer;
 * not yet valid when now + leeway_s < nbf); sub and client (non-empty string or integer), site
 * (non-empty string), strings at most GW_JWT_MAX_CLAIM_LEN bytes that pubsub_name_valid() accepts
 * (no control characters; no ':' in site, so that a token cannot name another site's channels);
 * events if present: an array of at most GW_JWT_MAX_EVENTS non-empty strings of at most
 * GW_JWT_MAX_EVENT_LEN bytes, also without control characters. iat and other claims are ignored.
 * Returns 0 and fills *out (free with gw_identity_cleanup), or with *out zeroed: GW_ELIMIT (too
 * long), GW_EPROTO (malformed), GW_EUNSUPPORTED (alg), GW_EDENIED (signature), GW_EINVAL (a claim
 * missing or invalid), GW_EEXPIRED (exp) or GW_ENOTYET (nbf). */
int gw_jwt_verify(const char *token, size_t len, const char *const *secrets, size_t n_secrets,
                  int64_t now, uint32_t leeway_s, struct gw_identity *out);
/* Frees the keyed HMAC contexts gw_jwt_verify keeps per secret (at exit). */
void gw_jwt_cleanup(void);

/* Frees what gw_jwt_verify filled in and zeroes *id; safe on a zeroed identity. */
void gw_identity_cleanup(struct gw_identity *id);
/* What a gw_jwt_verify result means for a token, for logs: "malformed token", "expired token".. */
const char *gw_jwt_strerror(int result);

#endif
