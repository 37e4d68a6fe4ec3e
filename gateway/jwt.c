#include "jwt.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "gw_alloc.h"
#include "pubsub_channel.h"

#define SIG_LEN 32 /* HMAC-SHA256 */

/* Records why a token is refused and returns rc. */
static int refuse(struct gw_jwt_refusal *why, int rc, const char *claim, const char *reason)
{
    why->claim = claim;
    why->reason = reason;
    return rc;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes unpadded base64url into out (room for len * 3 / 4 bytes). Only the canonical
 * encoding is accepted: unused low bits of the last character must be zero, otherwise several
 * texts would decode to the same signature and a "tampered" token could still verify. */
static int b64url_decode(const char *in, size_t len, unsigned char *out, size_t *out_len)
{
    if (len % 4 == 1)
        return GW_EPROTO;
    unsigned acc = 0, bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return GW_EPROTO;
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return GW_EPROTO;
    *out_len = n;
    return 0;
}

/* jansson's allocations while a token is verified come from a loop-wide arena: the JSON trees
 * of a token (at most GW_JWT_MAX_LEN bytes) live only inside gw_jwt_verify, which every session
 * passes on its way in, so they need no malloc. jansson's allocator is process-wide: outside a
 * verification (and always under AddressSanitizer) these are plain malloc and free. */
#define ARENA_BYTES (64 * 1024)
static _Alignas(16) unsigned char arena[ARENA_BYTES];
static size_t arena_used;
static bool arena_on;

static void *json_alloc(size_t n)
{
    size_t need = (n + 15) & ~(size_t)15;
    if (arena_on && need >= n && need <= ARENA_BYTES - arena_used) {
        void *p = arena + arena_used;
        arena_used += need;
        return p;
    }
    return malloc(n);
}

static void json_release(void *p)
{
    if ((unsigned char *)p >= arena && (unsigned char *)p < arena + ARENA_BYTES)
        return; /* reclaimed all at once when the verification ends */
    free(p);
}

static void arena_begin(void)
{
    static bool installed;
    if (GW_ASAN)
        return;
    if (!installed) {
        json_set_alloc_funcs(json_alloc, json_release);
        installed = true;
    }
    arena_used = 0;
    arena_on = true;
}

/* Every tree parsed since arena_begin() must be freed by now. */
static void arena_end(void)
{
    arena_on = false;
    arena_used = 0;
}

/* Parses a JSON object; duplicate keys are rejected so that no two readers of the same token can
 * disagree about which "alg" or "exp" counts. */
static json_t *load_object(const unsigned char *data, size_t len)
{
    json_error_t error;
    json_t *root = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &error);
    if (root && !json_is_object(root)) {
        json_decref(root);
        return NULL;
    }
    return root;
}

static int check_alg(const json_t *header)
{
    const json_t *alg = json_object_get(header, "alg");
    if (!json_is_string(alg) || json_string_length(alg) != 5 ||
        memcmp(json_string_value(alg), "HS256", 5) != 0)
        return GW_EUNSUPPORTED;
    return GW_OK;
}

/* One HMAC-SHA256 context per secret, keyed once and re-initialised per token: the one-shot
 * HMAC() fetched the algorithm and built its contexts anew each time (13 allocations per
 * session; this costs 2). Secrets are few (at most two at once, plus what tests use). */
#define MAX_KEYED 8
static struct keyed_mac {
    char *secret;
    EVP_MAC_CTX *ctx;
} keyed[MAX_KEYED];
static size_t n_keyed;
static EVP_MAC *hmac;

static EVP_MAC_CTX *keyed_mac(const char *secret)
{
    for (size_t i = 0; i < n_keyed; i++) {
        if (strcmp(keyed[i].secret, secret) == 0)
            return keyed[i].ctx;
    }
    if (!hmac && !(hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)))
        return NULL;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    if (!ctx || !EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params)) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    if (n_keyed == MAX_KEYED) { /* more secrets than ever configured at once: start over */
        gw_jwt_cleanup();
        if (!(hmac = EVP_MAC_fetch(NULL, "HMAC", NULL))) {
            EVP_MAC_CTX_free(ctx);
            return NULL;
        }
    }
    keyed[n_keyed].secret = gw_strdup(secret);
    keyed[n_keyed].ctx = ctx;
    n_keyed++;
    return ctx;
}

void gw_jwt_cleanup(void)
{
    for (size_t i = 0; i < n_keyed; i++) {
        OPENSSL_cleanse(keyed[i].secret, strlen(keyed[i].secret));
        gw_free(keyed[i].secret);
        EVP_MAC_CTX_free(keyed[i].ctx);
    }
    n_keyed = 0;
    EVP_MAC_free(hmac);
    hmac = NULL;
}

static int check_signature(const char *signed_part, size_t signed_len, const unsigned char *sig,
                           size_t sig_len, const char *const *secrets, size_t n_secrets)
{
    if (sig_len != SIG_LEN)
        return GW_EDENIED;
    for (size_t i = 0; i < n_secrets; i++) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        size_t mac_len = 0;
        EVP_MAC_CTX *ctx = keyed_mac(secrets[i]);
        /* A failing HMAC (out of memory inside OpenSSL) counts as no match: fail closed. */
        if (!ctx || !EVP_MAC_init(ctx, NULL, 0, NULL) ||
            !EVP_MAC_update(ctx, (const unsigned char *)signed_part, signed_len) ||
            !EVP_MAC_final(ctx, mac, &mac_len, sizeof(mac)) || mac_len != SIG_LEN)
            continue;
        if (CRYPTO_memcmp(mac, sig, SIG_LEN) == 0)
            return GW_OK;
    }
    return GW_EDENIED;
}

/* Claims name channels and end up in logs, headers and backend requests: they follow the
 * channel name rule (pubsub_name_valid: no control characters, no ':' in the site), so that no
 * token can name another tenant's channel. jansson has already checked the UTF-8. */
static int copy_text_claim(const json_t *claims, const char *key, enum pubsub_name_kind kind,
                           bool allow_integer, char out[GW_JWT_MAX_CLAIM_LEN + 1],
                           struct gw_jwt_refusal *why)
{
    const json_t *v = json_object_get(claims, key);
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (len == 0)
            return refuse(why, GW_EINVAL, key, "empty");
        if (len > GW_JWT_MAX_CLAIM_LEN)
            return refuse(why, GW_EINVAL, key, "too long");
        if (!pubsub_name_valid(s, len, GW_JWT_MAX_CLAIM_LEN, kind))
            return refuse(why, GW_EINVAL, key,
                          kind == PUBSUB_NAME_SITE ? "control character or ':'"
                                                   : "control character");
        memcpy(out, s, len);
        out[len] = '\0';
        return GW_OK;
    }
    if (allow_integer && json_is_integer(v)) {
        snprintf(out, GW_JWT_MAX_CLAIM_LEN + 1, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return GW_OK;
    }
    if (!v)
        return refuse(why, GW_EINVAL, key, "missing");
    return refuse(why, GW_EINVAL, key, allow_integer ? "not a string or integer" : "not a string");
}

/* Validates every element before allocating, so that a bad array leaves nothing to free. */
static int copy_events(const json_t *claims, struct gw_identity *id, struct gw_jwt_refusal *why)
{
    const json_t *events = json_object_get(claims, "events");
    if (!events)
        return GW_OK;
    if (!json_is_array(events))
        return refuse(why, GW_EINVAL, "events", "not an array");
    if (json_array_size(events) > GW_JWT_MAX_EVENTS)
        return refuse(why, GW_EINVAL, "events", "too many");
    size_t n = json_array_size(events);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(events, i);
        if (!json_is_string(e) || !pubsub_name_valid(json_string_value(e), json_string_length(e),
                                                     GW_JWT_MAX_EVENT_LEN, PUBSUB_NAME_ID))
            return refuse(why, GW_EINVAL, "events", "invalid event name");
    }
    /* Non-NULL even when empty: an empty filter differs from none. */
    id->events = gw_calloc(n, sizeof(*id->events));
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(events, i);
        id->events[i] = gw_strndup(json_string_value(e), json_string_length(e));
    }
    id->n_events = n;
    return GW_OK;
}

/* A time claim: absent (*present false), or an integer number of seconds. */
static int read_seconds(const json_t *claims, const char *key, bool *present, int64_t *out,
                        struct gw_jwt_refusal *why)
{
    const json_t *v = json_object_get(claims, key);
    *present = v != NULL;
    if (!v)
        return GW_OK;
    if (!json_is_integer(v))
        return refuse(why, GW_EINVAL, key, "not an integer");
    *out = json_integer_value(v);
    /* Milliseconds by mistake: as seconds, such an exp would never come. */
    if (*out > GW_JWT_MAX_SECONDS)
        return refuse(why, GW_EINVAL, key, "looks like milliseconds");
    return GW_OK;
}

/* Times are at most GW_JWT_MAX_SECONDS by then, now is the clock's: no sum overflows. */
static int check_time(const json_t *claims, const struct gw_jwt_policy *p, int64_t *exp_out,
                      struct gw_jwt_refusal *why)
{
    bool present;
    int64_t exp = 0, nbf = 0, iat = 0;
    int rc = read_seconds(claims, "exp", &present, &exp, why);
    if (rc == GW_OK && !present)
        return refuse(why, GW_EINVAL, "exp", "missing");
    if (rc != GW_OK)
        return rc;
    if (p->now >= exp + p->leeway_s)
        return refuse(why, GW_EEXPIRED, "exp", "expired");
    if (p->max_lifetime_s && exp > p->now + p->max_lifetime_s + p->leeway_s)
        return refuse(why, GW_EINVAL, "exp", "beyond --max-token-lifetime-s");
    if ((rc = read_seconds(claims, "nbf", &present, &nbf, why)) != GW_OK)
        return rc;
    if (present && p->now + p->leeway_s < nbf)
        return refuse(why, GW_ENOTYET, "nbf", "not yet valid");
    /* iat's value is not used, and other types than integers are ignored as before; an integer
     * in milliseconds still tells that the issuer mixes up units. */
    if (json_is_integer(json_object_get(claims, "iat")) &&
        (rc = read_seconds(claims, "iat", &present, &iat, why)) != GW_OK)
        return rc;
    *exp_out = exp;
    return GW_OK;
}

static int read_claims(const json_t *claims, const struct gw_jwt_policy *p, struct gw_identity *id,
                       struct gw_jwt_refusal *why)
{
    int rc = check_time(claims, p, &id->exp, why);
    if (rc == GW_OK)
        rc = copy_text_claim(claims, "sub", PUBSUB_NAME_ID, true, id->user, why);
    if (rc == GW_OK)
        rc = copy_text_claim(claims, "client", PUBSUB_NAME_ID, true, id->client, why);
    if (rc == GW_OK)
        rc = copy_text_claim(claims, "site", PUBSUB_NAME_SITE, false, id->site, why);
    if (rc == GW_OK)
        rc = copy_events(claims, id, why);
    return rc;
}

static int verify_token(const char *token, size_t len, const char *const *secrets, size_t n_secrets,
                        const struct gw_jwt_policy *policy, struct gw_identity *out,
                        struct gw_jwt_refusal *why)
{
    memset(out, 0, sizeof(*out));
    if (len > GW_JWT_MAX_LEN)
        return refuse(why, GW_ELIMIT, "token", "too long");

    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return refuse(why, GW_EPROTO, "token", "not three dot-separated parts");
    size_t header_len = (size_t)(dot1 - token);
    size_t payload_len = (size_t)(dot2 - dot1 - 1);
    size_t sig_len = len - (size_t)(dot2 + 1 - token);

    /* Every part is decoded before any crypto or JSON, so garbage is "malformed" whatever the
     * secret. The parts share one stack buffer: decoded, they total at most three quarters of
     * the token. */
    unsigned char decoded[GW_JWT_MAX_LEN / 4 * 3];
    size_t header_n, payload_n, sig_n;
    if (b64url_decode(token, header_len, decoded, &header_n) < 0 ||
        b64url_decode(dot1 + 1, payload_len, decoded + header_n, &payload_n) < 0 ||
        b64url_decode(dot2 + 1, sig_len, decoded + header_n + payload_n, &sig_n) < 0)
        return refuse(why, GW_EPROTO, "token", "not base64url");
    const unsigned char *sig = decoded + header_n + payload_n;

    json_t *header = load_object(decoded, header_n);
    if (!header)
        return refuse(why, GW_EPROTO, "header", "not a JSON object");
    int rc = check_alg(header);
    json_decref(header);
    if (rc != GW_OK)
        return refuse(why, rc, "alg", "not HS256");

    rc = check_signature(token, (size_t)(dot2 - token), sig, sig_n, secrets, n_secrets);
    if (rc != GW_OK)
        return refuse(why, rc, "signature", "matches no secret");

    /* Only now, with the issuer proven, is the payload parsed. */
    json_t *claims = load_object(decoded + header_n, payload_n);
    if (!claims)
        return refuse(why, GW_EPROTO, "payload", "not a JSON object");
    rc = read_claims(claims, policy, out, why);
    json_decref(claims);
    if (rc != GW_OK)
        gw_identity_cleanup(out);
    return rc;
}

int gw_jwt_verify(const char *token, size_t len, const char *const *secrets, size_t n_secrets,
                  const struct gw_jwt_policy *policy, struct gw_identity *out,
                  struct gw_jwt_refusal *why)
{
    struct gw_jwt_refusal ignored;
    if (!why)
        why = &ignored;
    *why = (struct gw_jwt_refusal){NULL, NULL};
    arena_begin();
    int rc = verify_token(token, len, secrets, n_secrets, policy, out, why);
    arena_end();
    return rc;
}

const char *gw_jwt_describe(const struct gw_jwt_refusal *why, char *out, size_t cap)
{
    snprintf(out, cap, "claim=%s reason=\"%s\"", why->claim ? why->claim : "token",
             why->reason ? why->reason : "accepted");
    return out;
}

void gw_identity_cleanup(struct gw_identity *id)
{
    for (size_t i = 0; i < id->n_events; i++)
        gw_free(id->events[i]);
    gw_free(id->events);
    memset(id, 0, sizeof(*id));
}
