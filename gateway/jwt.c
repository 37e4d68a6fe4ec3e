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
                           bool allow_integer, char out[GW_JWT_MAX_CLAIM_LEN + 1])
{
    const json_t *v = json_object_get(claims, key);
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (!pubsub_name_valid(s, len, GW_JWT_MAX_CLAIM_LEN, kind))
            return GW_EINVAL;
        memcpy(out, s, len);
        out[len] = '\0';
        return GW_OK;
    }
    if (allow_integer && json_is_integer(v)) {
        snprintf(out, GW_JWT_MAX_CLAIM_LEN + 1, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return GW_OK;
    }
    return GW_EINVAL;
}

/* Validates every element before allocating, so that a bad array leaves nothing to free. */
static int copy_events(const json_t *claims, struct gw_identity *id)
{
    const json_t *events = json_object_get(claims, "events");
    if (!events)
        return GW_OK;
    if (!json_is_array(events) || json_array_size(events) > GW_JWT_MAX_EVENTS)
        return GW_EINVAL;
    size_t n = json_array_size(events);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(events, i);
        if (!json_is_string(e) || !pubsub_name_valid(json_string_value(e), json_string_length(e),
                                                     GW_JWT_MAX_EVENT_LEN, PUBSUB_NAME_ID))
            return GW_EINVAL;
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

/* Sums are compared without overflowing: an exp or nbf near the int64 limits saturates. */
static int check_time(const json_t *claims, int64_t now, uint32_t leeway_s, int64_t *exp_out)
{
    const json_t *exp = json_object_get(claims, "exp");
    if (!json_is_integer(exp))
        return GW_EINVAL;
    int64_t e = json_integer_value(exp);
    if (e <= INT64_MAX - leeway_s && now >= e + leeway_s)
        return GW_EEXPIRED;
    const json_t *nbf = json_object_get(claims, "nbf");
    if (nbf) {
        if (!json_is_integer(nbf))
            return GW_EINVAL;
        if (now <= INT64_MAX - leeway_s && now + leeway_s < json_integer_value(nbf))
            return GW_ENOTYET;
    }
    *exp_out = e;
    return GW_OK;
}

static int read_claims(const json_t *claims, int64_t now, uint32_t leeway_s, struct gw_identity *id)
{
    int rc = check_time(claims, now, leeway_s, &id->exp);
    if (rc == GW_OK)
        rc = copy_text_claim(claims, "sub", PUBSUB_NAME_ID, true, id->user);
    if (rc == GW_OK)
        rc = copy_text_claim(claims, "client", PUBSUB_NAME_ID, true, id->client);
    if (rc == GW_OK)
        rc = copy_text_claim(claims, "site", PUBSUB_NAME_SITE, false, id->site);
    if (rc == GW_OK)
        rc = copy_events(claims, id);
    return rc;
}

static int verify_token(const char *token, size_t len, const char *const *secrets, size_t n_secrets,
                        int64_t now, uint32_t leeway_s, struct gw_identity *out)
{
    memset(out, 0, sizeof(*out));
    if (len > GW_JWT_MAX_LEN)
        return GW_ELIMIT;

    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return GW_EPROTO;
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
        return GW_EPROTO;
    const unsigned char *sig = decoded + header_n + payload_n;

    json_t *header = load_object(decoded, header_n);
    if (!header)
        return GW_EPROTO;
    int rc = check_alg(header);
    json_decref(header);
    if (rc != GW_OK)
        return rc;

    rc = check_signature(token, (size_t)(dot2 - token), sig, sig_n, secrets, n_secrets);
    if (rc != GW_OK)
        return rc;

    /* Only now, with the issuer proven, is the payload parsed. */
    json_t *claims = load_object(decoded + header_n, payload_n);
    if (!claims)
        return GW_EPROTO;
    rc = read_claims(claims, now, leeway_s, out);
    json_decref(claims);
    if (rc != GW_OK)
        gw_identity_cleanup(out);
    return rc;
}

int gw_jwt_verify(const char *token, size_t len, const char *const *secrets, size_t n_secrets,
                  int64_t now, uint32_t leeway_s, struct gw_identity *out)
{
    arena_begin();
    int rc = verify_token(token, len, secrets, n_secrets, now, leeway_s, out);
    arena_end();
    return rc;
}

void gw_identity_cleanup(struct gw_identity *id)
{
    for (size_t i = 0; i < id->n_events; i++)
        gw_free(id->events[i]);
    gw_free(id->events);
    memset(id, 0, sizeof(*id));
}

const char *gw_jwt_strerror(int result)
{
    switch (result) {
    case GW_OK:
        return "ok";
    case GW_EPROTO:
        return "malformed token";
    case GW_EUNSUPPORTED:
        return "unsupported token algorithm";
    case GW_EDENIED:
        return "bad token signature";
    case GW_EEXPIRED:
        return "expired token";
    case GW_ENOTYET:
        return "token not yet valid";
    case GW_EINVAL:
        return "missing or invalid claim";
    case GW_ELIMIT:
        return "token too long";
    default:
        return "unknown token error";
    }
}
