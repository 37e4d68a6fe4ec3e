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

/* An exp, nbf or iat above this (year 5138 in seconds) is a time in milliseconds by mistake: such
 * a token would otherwise never expire. */
#define GW_JWT_MAX_SECONDS INT64_C(100000000000)
/* The default of --max-token-lifetime-s: 30 days. */
#define GW_JWT_DEFAULT_MAX_LIFETIME_S 2592000u

/* What a token's times are checked against. */
struct gw_jwt_policy {
    int64_t now;             /* seconds since the epoch */
    uint32_t leeway_s;       /* clock skew allowed on exp, nbf and the lifetime */
    uint32_t max_lifetime_s; /* exp at most this far ahead of now; 0: no limit */
};

/* Why gw_jwt_verify refused a token, for logs; both static strings. */
struct gw_jwt_refusal {
    /* The part or claim that failed: "token" (length, syntax), "header" and "payload" (not a
     * JSON object), "alg", "signature", or the claim: "exp", "nbf", "iat", "sub", "client", "site",
     * "events". */
    const char *claim;
    const char *reason; /* "missing", "expired", "looks like milliseconds", ... */
};

/* Verifies token (len bytes, not NUL-terminated) against each of the NUL-terminated secrets.
 * Checks, in this order: length; three dot-separated parts of canonical unpadded base64url;
 * header a JSON object with alg exactly "HS256" (typ optional, ignored); the HMAC-SHA256
 * signature, in constant time, under any secret; payload a JSON object (duplicate keys
 * rejected); exp (required integer in seconds, at most GW_JWT_MAX_SECONDS; expired when now >=
 * exp + leeway_s; too far ahead when exp > now + max_lifetime_s + leeway_s); nbf if present
 * (integer, at most GW_JWT_MAX_SECONDS; not yet valid when now + leeway_s < nbf); iat if an
 * integer: at most GW_JWT_MAX_SECONDS (other types are ignored, like iat's value); sub and
 * client (non-empty string or integer), site (non-empty string), strings at most
 * GW_JWT_MAX_CLAIM_LEN bytes that pubsub_name_valid() accepts (no control characters; no ':' in
 * site, so that a token cannot name another site's channels); events if present: an array of at
 * most GW_JWT_MAX_EVENTS non-empty strings of at most GW_JWT_MAX_EVENT_LEN bytes, also without
 * control characters. Other claims are ignored.
 * Returns 0 and fills *out (free with gw_identity_cleanup), or with *out zeroed: GW_ELIMIT (too
 * long), GW_EPROTO (malformed), GW_EUNSUPPORTED (alg), GW_EDENIED (signature), GW_EINVAL (a claim
 * missing or invalid, a time in milliseconds, exp beyond the lifetime), GW_EEXPIRED (exp) or
 * GW_ENOTYET (nbf); then *why (when not NULL) names the failing part or claim and the reason. */
int gw_jwt_verify(const char *token, size_t len, const char *const *secrets, size_t n_secrets,
                  const struct gw_jwt_policy *policy, struct gw_identity *out,
                  struct gw_jwt_refusal *why);
/* The refusal for a log line, 'claim=exp reason="looks like milliseconds"', into out (cap
 * bytes, truncated); returns out. */
const char *gw_jwt_describe(const struct gw_jwt_refusal *why, char *out, size_t cap);
/* Frees the keyed HMAC contexts gw_jwt_verify keeps per secret (at exit). */
void gw_jwt_cleanup(void);

/* Frees what gw_jwt_verify filled in and zeroes *id; safe on a zeroed identity. */
void gw_identity_cleanup(struct gw_identity *id);

#endif
