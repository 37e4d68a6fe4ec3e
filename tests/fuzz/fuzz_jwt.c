/* libFuzzer: JWT verification with fixed secrets and a fixed clock. Byte 0 picks the mode:
 * even: the rest is the token as received;
 * odd: the rest is "<header JSON>\n<payload JSON>" (or a payload alone, with an HS256 header),
 *      which the harness encodes and signs (bit 1: with the second secret; bit 2: with a secret
 *      the verifier does not know), so that mutations reach the claim checks behind the
 *      signature. Checks the promises of jwt.h on every result. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "bench_util.h"
#include "gw_alloc.h"
#include "jwt.h"

#define NOW 1700000000
#define LEEWAY 30

static const char *const secrets[] = {"fuzz-secret-one", "fuzz-secret-two"};

/* header.payload.signature of the given JSON texts; returns the length written to out. */
static size_t sign(const uint8_t *header, size_t header_len, const uint8_t *payload,
                   size_t payload_len, const char *secret, char *out)
{
    size_t n = bench_base64(header, header_len, out, 1);
    out[n++] = '.';
    n += bench_base64(payload, payload_len, out + n, 1);
    uint8_t mac[32];
    size_t mac_len = 0;
    GW_ASSERT(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, strlen(secret),
                        (const uint8_t *)out, n, mac, sizeof(mac), &mac_len) != NULL);
    out[n++] = '.';
    n += bench_base64(mac, mac_len, out + n, 1);
    return n;
}

static void check_claim(const char *s, size_t max)
{
    size_t len = strnlen(s, max + 1);
    GW_ASSERT(len > 0 && len <= max);
    for (size_t i = 0; i < len; i++)
        GW_ASSERT((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
}

static int verify(const char *token, size_t len, bool known_secret)
{
    struct gw_identity id;
    static const struct gw_jwt_policy policy = {NOW, LEEWAY, GW_JWT_DEFAULT_MAX_LIFETIME_S};
    struct gw_jwt_refusal why;
    int rc = gw_jwt_verify(token, len, secrets, 2, &policy, &id, &why);
    GW_ASSERT(rc == GW_OK || rc == GW_ELIMIT || rc == GW_EPROTO || rc == GW_EUNSUPPORTED ||
              rc == GW_EDENIED || rc == GW_EINVAL || rc == GW_EEXPIRED || rc == GW_ENOTYET);
    /* Every refusal names what failed. */
    GW_ASSERT((rc == GW_OK) == (why.claim == NULL && why.reason == NULL));
    if (rc == GW_OK) {
        GW_ASSERT(known_secret);
        GW_ASSERT(len <= GW_JWT_MAX_LEN);
        GW_ASSERT(NOW < id.exp + LEEWAY);
        check_claim(id.user, GW_JWT_MAX_CLAIM_LEN);
        check_claim(id.client, GW_JWT_MAX_CLAIM_LEN);
        check_claim(id.site, GW_JWT_MAX_CLAIM_LEN);
        GW_ASSERT(id.n_events <= GW_JWT_MAX_EVENTS);
        GW_ASSERT(id.events || id.n_events == 0);
        for (size_t i = 0; i < id.n_events; i++)
            check_claim(id.events[i], GW_JWT_MAX_EVENT_LEN);
    } else {
        GW_ASSERT(id.events == NULL && id.n_events == 0 && id.user[0] == '\0');
    }
    gw_identity_cleanup(&id);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    if (!(mode & 1)) {
        int rc = verify((const char *)data, size, true);
        /* The same token gives the same answer (the keyed contexts are reused). */
        GW_ASSERT(verify((const char *)data, size, true) == rc);
        return 0;
    }
    static const char default_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    const uint8_t *header = (const uint8_t *)default_header, *payload = data;
    size_t header_len = sizeof(default_header) - 1, payload_len = size;
    const uint8_t *nl = memchr(data, '\n', size);
    if (nl) {
        header = data;
        header_len = (size_t)(nl - data);
        payload = nl + 1;
        payload_len = size - header_len - 1;
    }
    bool known = !(mode & 4);
    const char *secret = !known ? "not-a-secret-we-know" : secrets[mode >> 1 & 1];
    char *token = malloc(2 * (header_len + payload_len) + 64);
    size_t len = sign(header, header_len, payload, payload_len, secret, token);
    int rc = verify(token, len, known);
    if (!known)
        GW_ASSERT(rc != GW_OK);
    free(token);
    return 0;
}
