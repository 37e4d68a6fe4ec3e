/* JWT verification: a published vector, then tokens signed here, one rule broken at a time. */
#include "gw_test.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "gw_alloc.h"
#include "jwt.h"

#define NOW 1700000000
#define LEEWAY 30
#define FUTURE "1700003600"
#define SECRET_A "current-secret"
#define SECRET_B "previous-secret"
#define HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define IDENTITY "\"sub\":\"u1\",\"client\":\"acme\",\"site\":\"main\""
#define VALID "{" IDENTITY ",\"exp\":" FUTURE "}"

static const char *const secrets[] = {SECRET_A, SECRET_B};
static const struct gw_jwt_policy policy = {NOW, LEEWAY, GW_JWT_DEFAULT_MAX_LIFETIME_S};
static const struct gw_jwt_policy exact = {NOW, 0, 0}; /* no leeway, no lifetime limit */

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64url_encode(const unsigned char *in, size_t len, char *out)
{
    size_t n = 0;
    unsigned acc = 0, bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = acc << 8 | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[n++] = alphabet[(acc >> bits) & 63];
        }
        acc &= (1u << bits) - 1;
    }
    if (bits > 0)
        out[n++] = alphabet[(acc << (6 - bits)) & 63];
    return n;
}

/* header.payload.signature, signed with secret, or with an empty signature when secret is NULL.
 * Caller frees. */
static char *sign(const char *header, const char *payload, const char *secret)
{
    size_t hl = strlen(header), pl = strlen(payload);
    char *tok = gw_malloc((hl + pl) * 2 + 64);
    size_t n = b64url_encode((const unsigned char *)header, hl, tok);
    tok[n++] = '.';
    n += b64url_encode((const unsigned char *)payload, pl, tok + n);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    if (secret)
        HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)tok, n, mac,
             &mac_len);
    tok[n++] = '.';
    n += b64url_encode(mac, mac_len, tok + n);
    tok[n] = '\0';
    return tok;
}

static int verify_token(const char *tok, struct gw_identity *id)
{
    return gw_jwt_verify(tok, strlen(tok), secrets, 2, &policy, id, NULL);
}

/* Signs header and payload with SECRET_A and verifies against both secrets. */
static int check_with(const char *header, const char *payload)
{
    char *tok = sign(header, payload, SECRET_A);
    struct gw_identity id;
    int rc = verify_token(tok, &id);
    gw_identity_cleanup(&id);
    gw_free(tok);
    return rc;
}

static int check(const char *payload)
{
    return check_with(HEADER, payload);
}

TEST(jwt_io_vector)
{
    static const char tok[] =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    const char *right[] = {"your-256-bit-secret"};
    const char *wrong[] = {"not-your-256-bit-secret"};
    struct gw_identity id;
    /* No exp, client or site: getting as far as the claims proves the signature passed. */
    ASSERT_INT_EQ(gw_jwt_verify(tok, strlen(tok), right, 1, &exact, &id, NULL), GW_EINVAL);
    ASSERT_TRUE(id.user[0] == '\0');
    ASSERT_INT_EQ(gw_jwt_verify(tok, strlen(tok), wrong, 1, &exact, &id, NULL), GW_EDENIED);
}

TEST(valid_string_claims)
{
    char *tok = sign(HEADER, VALID, SECRET_A);
    struct gw_identity id;
    ASSERT_INT_EQ(verify_token(tok, &id), GW_OK);
    gw_free(tok);
    ASSERT_STR_EQ(id.user, "u1");
    ASSERT_STR_EQ(id.client, "acme");
    ASSERT_STR_EQ(id.site, "main");
    ASSERT_INT_EQ(id.exp, 1700003600);
    ASSERT_TRUE(id.events == NULL);
    ASSERT_UINT_EQ(id.n_events, 0);
    gw_identity_cleanup(&id);
    ASSERT_TRUE(!id.user[0] && !id.client[0] && !id.site[0]);
}

TEST(valid_integer_claims)
{
    char *tok = sign(HEADER,
                     "{\"sub\":42,\"client\":-9007199254740993,\"site\":\"s\",\"exp\":" FUTURE
                     ",\"iat\":1699999999,\"nbf\":1699999000,\"name\":\"extra\"}",
                     SECRET_A);
    struct gw_identity id;
    ASSERT_INT_EQ(verify_token(tok, &id), GW_OK);
    gw_free(tok);
    ASSERT_STR_EQ(id.user, "42");
    ASSERT_STR_EQ(id.client, "-9007199254740993");
    ASSERT_STR_EQ(id.site, "s");
    gw_identity_cleanup(&id);
}

TEST(valid_events)
{
    char *tok = sign(HEADER, "{" IDENTITY ",\"exp\":" FUTURE ",\"events\":[\"order.new\",\"é\"]}",
                     SECRET_A);
    struct gw_identity id;
    ASSERT_INT_EQ(verify_token(tok, &id), GW_OK);
    gw_free(tok);
    ASSERT_UINT_EQ(id.n_events, 2);
    ASSERT_STR_EQ(id.events[0], "order.new");
    ASSERT_STR_EQ(id.events[1], "é");
    gw_identity_cleanup(&id);
    ASSERT_TRUE(id.events == NULL);

    /* An empty filter is not the same as none. */
    tok = sign(HEADER, "{" IDENTITY ",\"exp\":" FUTURE ",\"events\":[]}", SECRET_A);
    ASSERT_INT_EQ(verify_token(tok, &id), GW_OK);
    gw_free(tok);
    ASSERT_TRUE(id.events != NULL);
    ASSERT_UINT_EQ(id.n_events, 0);
    gw_identity_cleanup(&id);
}

TEST(second_secret)
{
    char *tok = sign(HEADER, VALID, SECRET_B);
    struct gw_identity id;
    ASSERT_INT_EQ(verify_token(tok, &id), GW_OK);
    gw_identity_cleanup(&id);
    /* Once the old secret is retired, its tokens stop working. */
    ASSERT_INT_EQ(gw_jwt_verify(tok, strlen(tok), secrets, 1, &policy, &id, NULL), GW_EDENIED);
    gw_free(tok);
}

TEST(wrong_secret)
{
    char *tok = sign(HEADER, VALID, "some-other-secret");
    struct gw_identity id;
    ASSERT_INT_EQ(verify_token(tok, &id), GW_EDENIED);
    ASSERT_TRUE(id.user[0] == '\0');
    gw_free(tok);

    tok = sign(HEADER, VALID, SECRET_A);
    ASSERT_INT_EQ(gw_jwt_verify(tok, strlen(tok), secrets, 0, &policy, &id, NULL), GW_EDENIED);
    gw_free(tok);
}

TEST(tampered_payload)
{
    char *good = sign(HEADER, VALID, SECRET_A);
    char *evil =
        sign(HEADER, "{\"sub\":\"admin\",\"client\":\"acme\",\"site\":\"main\",\"exp\":" FUTURE "}",
             "attacker");
    /* The attacker's payload with the genuine signature. */
    char tok[512];
    const char *evil_sig = strrchr(evil, '.');
    const char *good_sig = strrchr(good, '.');
    snprintf(tok, sizeof(tok), "%.*s%s", (int)(evil_sig - evil), evil, good_sig);
    struct gw_identity id;
    ASSERT_INT_EQ(verify_token(tok, &id), GW_EDENIED);
    gw_free(good);
    gw_free(evil);
}

TEST(tampered_signature)
{
    char *tok = sign(HEADER, VALID, SECRET_A);
    size_t len = strlen(tok);
    char *sig = strrchr(tok, '.') + 1;
    ASSERT_UINT_EQ(strlen(sig), 43);
    struct gw_identity id;

    char saved = sig[10];
    sig[10] = saved == 'A' ? 'B' : 'A';
    ASSERT_INT_EQ(verify_token(tok, &id), GW_EDENIED);
    sig[10] = saved;
    ASSERT_INT_EQ(verify_token(tok, &id), GW_OK);
    gw_identity_cleanup(&id);

    /* The last character carries two unused bits; setting one gives a non-canonical text for
     * the same bytes, which must not verify. */
    char last = sig[42];
    sig[42] = alphabet[(strchr(alphabet, last) - alphabet) ^ 1];
    ASSERT_INT_EQ(verify_token(tok, &id), GW_EPROTO);
    sig[42] = last;

    /* Truncated to 30 bytes (40 characters, no unused bits), and empty. */
    ASSERT_INT_EQ(gw_jwt_verify(tok, len - 3, secrets, 2, &policy, &id, NULL), GW_EDENIED);
    ASSERT_INT_EQ(gw_jwt_verify(tok, len - 43, secrets, 2, &policy, &id, NULL), GW_EDENIED);
    gw_free(tok);
}

TEST(unsupported_alg)
{
    char *tok = sign("{\"alg\":\"none\",\"typ\":\"JWT\"}", VALID, NULL);
    struct gw_identity id;
    ASSERT_INT_EQ(verify_token(tok, &id), GW_EUNSUPPORTED);
    gw_free(tok);
    /* Even with a valid HS256 signature, the header's alg decides. */
    ASSERT_INT_EQ(check_with("{\"alg\":\"none\"}", VALID), GW_EUNSUPPORTED);
    ASSERT_INT_EQ(check_with("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", VALID), GW_EUNSUPPORTED);
    ASSERT_INT_EQ(check_with("{\"typ\":\"JWT\"}", VALID), GW_EUNSUPPORTED);
    ASSERT_INT_EQ(check_with("{\"alg\":\"hs256\"}", VALID), GW_EUNSUPPORTED);
    ASSERT_INT_EQ(check_with("{\"alg\":\"HS256 \"}", VALID), GW_EUNSUPPORTED);
    ASSERT_INT_EQ(check_with("{\"alg\":256}", VALID), GW_EUNSUPPORTED);
    ASSERT_INT_EQ(check_with("{\"alg\":null}", VALID), GW_EUNSUPPORTED);
    /* typ is optional. */
    ASSERT_INT_EQ(check_with("{\"alg\":\"HS256\"}", VALID), GW_OK);
}

TEST(expiry)
{
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":1600000000}"), GW_EEXPIRED);
    struct gw_identity id;
    char *tok = sign(HEADER, "{" IDENTITY ",\"exp\":1700000000}", SECRET_A);
    /* Exactly now is already expired. */
    ASSERT_INT_EQ(gw_jwt_verify(tok, strlen(tok), secrets, 2, &exact, &id, NULL), GW_EEXPIRED);
    ASSERT_INT_EQ(
        gw_jwt_verify(tok, strlen(tok), secrets, 2, &(struct gw_jwt_policy){NOW, 1, 0}, &id, NULL),
        GW_OK);
    gw_identity_cleanup(&id);
    gw_free(tok);
    /* Within the leeway, and at its edge. */
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":1699999971}"), GW_OK);
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":1699999970}"), GW_EEXPIRED);
    /* Times at the int64 limits: milliseconds by mistake, or long expired; nothing wraps. */
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":9223372036854775807}"), GW_EINVAL);
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":-9223372036854775807}"), GW_EEXPIRED);
}

TEST(not_before)
{
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":" FUTURE ",\"nbf\":1700001000}"), GW_ENOTYET);
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":" FUTURE ",\"nbf\":1700000031}"), GW_ENOTYET);
    /* Issued by a clock up to the leeway ahead of ours. */
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":" FUTURE ",\"nbf\":1700000030}"), GW_OK);
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":" FUTURE ",\"nbf\":99999999999}"), GW_ENOTYET);
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":" FUTURE ",\"nbf\":\"1\"}"), GW_EINVAL);
}

TEST(missing_claims)
{
    ASSERT_INT_EQ(check("{" IDENTITY "}"), GW_EINVAL);
    ASSERT_INT_EQ(check("{\"client\":\"acme\",\"site\":\"main\",\"exp\":" FUTURE "}"), GW_EINVAL);
    ASSERT_INT_EQ(check("{\"sub\":\"u1\",\"site\":\"main\",\"exp\":" FUTURE "}"), GW_EINVAL);
    ASSERT_INT_EQ(check("{\"sub\":\"u1\",\"client\":\"acme\",\"exp\":" FUTURE "}"), GW_EINVAL);
    ASSERT_INT_EQ(check("{}"), GW_EINVAL);
}

TEST(wrong_claim_types)
{
    static const char *const bad[] = {
        "{\"sub\":true,\"client\":\"acme\",\"site\":\"main\",\"exp\":" FUTURE "}",
        "{\"sub\":1.5,\"client\":\"acme\",\"site\":\"main\",\"exp\":" FUTURE "}",
        "{\"sub\":null,\"client\":\"acme\",\"site\":\"main\",\"exp\":" FUTURE "}",
        "{\"sub\":\"\",\"client\":\"acme\",\"site\":\"main\",\"exp\":" FUTURE "}",
        "{\"sub\":[\"u1\"],\"client\":\"acme\",\"site\":\"main\",\"exp\":" FUTURE "}",
        "{\"sub\":\"u1\",\"client\":{},\"site\":\"main\",\"exp\":" FUTURE "}",
        "{\"sub\":\"u1\",\"client\":\"acme\",\"site\":7,\"exp\":" FUTURE "}",
        "{\"sub\":\"u1\",\"client\":\"acme\",\"site\":\"\",\"exp\":" FUTURE "}",
        "{" IDENTITY ",\"exp\":\"" FUTURE "\"}",
        "{" IDENTITY ",\"exp\":1700003600.0}",
        "{\"sub\":\"u\\u0001\",\"client\":\"acme\",\"site\":\"main\",\"exp\":" FUTURE "}",
        "{\"sub\":\"u1\",\"client\":\"a\\tb\",\"site\":\"main\",\"exp\":" FUTURE "}",
        "{\"sub\":\"u1\",\"client\":\"acme\",\"site\":\"m\\u007f\",\"exp\":" FUTURE "}",
        "{\"sub\":\"u1\",\"client\":\"acme\",\"site\":\"m\\u0085\",\"exp\":" FUTURE "}",
        /* ':' separates a channel name's parts: a site holding one would name another site's
         * channels (site "main:x", user "A" = user "x:A" of site "main"). */
        "{\"sub\":\"A\",\"client\":\"acme\",\"site\":\"main:x\",\"exp\":" FUTURE "}",
        "{\"sub\":\"A\",\"client\":\"acme\",\"site\":\":\",\"exp\":" FUTURE "}",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        int rc = check(bad[i]);
        if (rc != GW_EINVAL)
            GW_FAIL_AT("payload %s: %d", bad[i], rc);
    }
    /* Ids may hold ':': they are the last part of a channel name. */
    ASSERT_INT_EQ(
        check("{\"sub\":\"x:A\",\"client\":\"x:X\",\"site\":\"main\",\"exp\":" FUTURE "}"), GW_OK);
    /* Text that merely looks like a control character is fine. */
    ASSERT_INT_EQ(
        check("{\"sub\":\"u\\u00a0\",\"client\":\"acme\",\"site\":\"main\",\"exp\":" FUTURE "}"),
        GW_OK);
}

TEST(claim_length)
{
    char text[GW_JWT_MAX_CLAIM_LEN + 2];
    char payload[1024];
    memset(text, 'x', sizeof(text) - 1);
    text[GW_JWT_MAX_CLAIM_LEN] = '\0';
    snprintf(payload, sizeof(payload),
             "{\"sub\":\"%s\",\"client\":\"acme\",\"site\":\"main\",\"exp\":" FUTURE "}", text);
    ASSERT_INT_EQ(check(payload), GW_OK);
    text[GW_JWT_MAX_CLAIM_LEN] = 'x';
    text[GW_JWT_MAX_CLAIM_LEN + 1] = '\0';
    snprintf(payload, sizeof(payload),
             "{\"sub\":\"u1\",\"client\":\"acme\",\"site\":\"%s\",\"exp\":" FUTURE "}", text);
    ASSERT_INT_EQ(check(payload), GW_EINVAL);
}

TEST(oversized_token)
{
    /* Grow a filler claim until the token is as long as allowed. */
    char filler[GW_JWT_MAX_LEN];
    char payload[GW_JWT_MAX_LEN + 128];
    char *tok = NULL;
    for (size_t n = 2900; n < sizeof(filler); n++) {
        memset(filler, 'f', n);
        filler[n] = '\0';
        snprintf(payload, sizeof(payload), "{" IDENTITY ",\"exp\":" FUTURE ",\"pad\":\"%s\"}",
                 filler);
        tok = sign(HEADER, payload, SECRET_A);
        if (strlen(tok) >= GW_JWT_MAX_LEN - 1)
            break;
        gw_free(tok);
        tok = NULL;
    }
    ASSERT_TRUE(tok != NULL);
    size_t len = strlen(tok);
    ASSERT_TRUE(len <= GW_JWT_MAX_LEN);
    struct gw_identity id;
    ASSERT_INT_EQ(verify_token(tok, &id), GW_OK);
    gw_identity_cleanup(&id);
    gw_free(tok);

    /* Too long is reported before the token is even looked at. */
    char big[GW_JWT_MAX_LEN + 1];
    memset(big, '!', sizeof(big));
    ASSERT_INT_EQ(gw_jwt_verify(big, sizeof(big), secrets, 2, &policy, &id, NULL), GW_ELIMIT);
    ASSERT_INT_EQ(gw_jwt_verify(big, sizeof(big) - 1, secrets, 2, &policy, &id, NULL), GW_EPROTO);
}

TEST(bad_base64url)
{
    char *tok = sign(HEADER, VALID, SECRET_A);
    size_t len = strlen(tok);
    char *dot1 = strchr(tok, '.');
    char *dot2 = strrchr(tok, '.');
    struct gw_identity id;
    static const char bad_chars[] = {'+', '/', '=', ' ', '\0', '\n', '\x80'};
    char *spots[] = {tok + 3, dot1 + 3, dot2 + 3};
    for (size_t s = 0; s < GW_ARRAY_LEN(spots); s++) {
        for (size_t c = 0; c < sizeof(bad_chars); c++) {
            char saved = *spots[s];
            *spots[s] = bad_chars[c];
            int rc = gw_jwt_verify(tok, len, secrets, 2, &policy, &id, NULL);
            *spots[s] = saved;
            if (rc != GW_EPROTO)
                GW_FAIL_AT("part %zu, char 0x%02x: %d", s, (unsigned char)bad_chars[c], rc);
        }
    }
    gw_free(tok);

    /* A part whose length no encoding can have: 4k + 1 characters. */
    ASSERT_INT_EQ(verify_token("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiO.AAAA", &id), GW_EPROTO);
    ASSERT_INT_EQ(verify_token("eyJhbGciOiJIUzI1NiJ9A.e30.AAAA", &id), GW_EPROTO);
    /* Padding is not part of JWT's base64url. */
    ASSERT_INT_EQ(verify_token("eyJhbGciOiJIUzI1NiJ9.e30=.AAAA", &id), GW_EPROTO);
}

TEST(wrong_number_of_dots)
{
    struct gw_identity id;
    ASSERT_INT_EQ(verify_token("", &id), GW_EPROTO);
    ASSERT_INT_EQ(verify_token("eyJhbGciOiJIUzI1NiJ9", &id), GW_EPROTO);
    ASSERT_INT_EQ(verify_token("eyJhbGciOiJIUzI1NiJ9.e30", &id), GW_EPROTO);
    ASSERT_INT_EQ(verify_token("..", &id), GW_EPROTO);
    ASSERT_INT_EQ(verify_token("...", &id), GW_EPROTO);
    char *tok = sign(HEADER, VALID, SECRET_A);
    char longer[512];
    snprintf(longer, sizeof(longer), "%s.", tok);
    ASSERT_INT_EQ(verify_token(longer, &id), GW_EPROTO);
    snprintf(longer, sizeof(longer), "%s.AAAA", tok);
    ASSERT_INT_EQ(verify_token(longer, &id), GW_EPROTO);
    gw_free(tok);
}

TEST(payload_not_object)
{
    ASSERT_INT_EQ(check("not json"), GW_EPROTO);
    ASSERT_INT_EQ(check(""), GW_EPROTO);
    ASSERT_INT_EQ(check("{\"sub\":\"u1\""), GW_EPROTO);
    ASSERT_INT_EQ(check("[" VALID "]"), GW_EPROTO);
    ASSERT_INT_EQ(check("\"" IDENTITY "\""), GW_EPROTO);
    ASSERT_INT_EQ(check("42"), GW_EPROTO);
    ASSERT_INT_EQ(check(VALID " trailing"), GW_EPROTO);
    /* Two readers could pick different values of a duplicated claim. */
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":1,\"exp\":" FUTURE "}"), GW_EPROTO);
    ASSERT_INT_EQ(
        check("{\"sub\":\"u\\u0000\",\"client\":\"acme\",\"site\":\"main\",\"exp\":" FUTURE "}"),
        GW_EPROTO);
}

TEST(header_not_object)
{
    ASSERT_INT_EQ(check_with("alg: HS256", VALID), GW_EPROTO);
    ASSERT_INT_EQ(check_with("", VALID), GW_EPROTO);
    ASSERT_INT_EQ(check_with("[\"HS256\"]", VALID), GW_EPROTO);
    ASSERT_INT_EQ(check_with("\"HS256\"", VALID), GW_EPROTO);
    ASSERT_INT_EQ(check_with("{\"alg\":\"none\",\"alg\":\"HS256\"}", VALID), GW_EPROTO);
}

TEST(bad_events)
{
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":" FUTURE ",\"events\":\"order.new\"}"), GW_EINVAL);
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":" FUTURE ",\"events\":{}}"), GW_EINVAL);
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":" FUTURE ",\"events\":null}"), GW_EINVAL);
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":" FUTURE ",\"events\":[\"a\",1]}"), GW_EINVAL);
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":" FUTURE ",\"events\":[\"a\",[\"b\"]]}"), GW_EINVAL);
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":" FUTURE ",\"events\":[\"a\",\"\"]}"), GW_EINVAL);
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":" FUTURE ",\"events\":[\"a\\nb\"]}"), GW_EINVAL);
}

/* events at and one past the count and length limits. */
TEST(events_limits)
{
    char payload[2048];
    size_t n = (size_t)snprintf(payload, sizeof(payload),
                                "{" IDENTITY ",\"exp\":" FUTURE ",\"events\":[\"e\"");
    for (int i = 1; i < GW_JWT_MAX_EVENTS; i++)
        n += (size_t)snprintf(payload + n, sizeof(payload) - n, ",\"e%d\"", i);
    snprintf(payload + n, sizeof(payload) - n, "]}");
    char *tok = sign(HEADER, payload, SECRET_A);
    struct gw_identity id;
    ASSERT_INT_EQ(verify_token(tok, &id), GW_OK);
    gw_free(tok);
    ASSERT_UINT_EQ(id.n_events, GW_JWT_MAX_EVENTS);
    ASSERT_STR_EQ(id.events[GW_JWT_MAX_EVENTS - 1], "e63");
    gw_identity_cleanup(&id);
    snprintf(payload + n, sizeof(payload) - n, ",\"one-too-many\"]}");
    ASSERT_INT_EQ(check(payload), GW_EINVAL);

    char name[GW_JWT_MAX_EVENT_LEN + 2];
    memset(name, 'n', sizeof(name) - 1);
    name[GW_JWT_MAX_EVENT_LEN] = '\0';
    snprintf(payload, sizeof(payload), "{" IDENTITY ",\"exp\":" FUTURE ",\"events\":[\"%s\"]}",
             name);
    ASSERT_INT_EQ(check(payload), GW_OK);
    name[GW_JWT_MAX_EVENT_LEN] = 'n';
    name[GW_JWT_MAX_EVENT_LEN + 1] = '\0';
    snprintf(payload, sizeof(payload), "{" IDENTITY ",\"exp\":" FUTURE ",\"events\":[\"%s\"]}",
             name);
    ASSERT_INT_EQ(check(payload), GW_EINVAL);
}

/* Signs payload, verifies it under p and returns the refusal's description. */
static const char *refusal(const struct gw_jwt_policy *p, const char *payload, int *rc, char *text,
                           size_t cap)
{
    char *tok = sign(HEADER, payload, SECRET_A);
    struct gw_identity id;
    struct gw_jwt_refusal why;
    *rc = gw_jwt_verify(tok, strlen(tok), secrets, 2, p, &id, &why);
    gw_identity_cleanup(&id);
    gw_free(tok);
    return gw_jwt_describe(&why, text, cap);
}

#define ASSERT_REFUSED(p, payload, result, description)                                            \
    do {                                                                                           \
        char text_[128];                                                                           \
        int rc_;                                                                                   \
        const char *d_ = refusal(p, payload, &rc_, text_, sizeof(text_));                          \
        ASSERT_INT_EQ(rc_, result);                                                                \
        ASSERT_STR_EQ(d_, description);                                                            \
    } while (0)

TEST(times_in_milliseconds)
{
    /* Now in milliseconds, as Date.now() gives it: as seconds, never expired. */
    ASSERT_REFUSED(&exact, "{" IDENTITY ",\"exp\":1700000003600}", GW_EINVAL,
                   "claim=exp reason=\"looks like milliseconds\"");
    ASSERT_REFUSED(&exact, "{" IDENTITY ",\"exp\":" FUTURE ",\"nbf\":1700000000000}", GW_EINVAL,
                   "claim=nbf reason=\"looks like milliseconds\"");
    ASSERT_REFUSED(&exact, "{" IDENTITY ",\"exp\":" FUTURE ",\"iat\":1700000000000}", GW_EINVAL,
                   "claim=iat reason=\"looks like milliseconds\"");
    /* The limit itself is still seconds (year 5138); iat of another type stays ignored. */
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":" FUTURE ",\"nbf\":1,\"iat\":1699999999}"), GW_OK);
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":" FUTURE ",\"iat\":\"yesterday\"}"), GW_OK);
    ASSERT_REFUSED(&exact, "{" IDENTITY ",\"exp\":100000000000}", GW_OK,
                   "claim=token reason=\"accepted\"");
    ASSERT_REFUSED(&exact, "{" IDENTITY ",\"exp\":100000000001}", GW_EINVAL,
                   "claim=exp reason=\"looks like milliseconds\"");
}

TEST(lifetime_limit)
{
    const struct gw_jwt_policy day = {NOW, 0, 86400};
    ASSERT_REFUSED(&day, "{" IDENTITY ",\"exp\":1700086400}", GW_OK,
                   "claim=token reason=\"accepted\"");
    ASSERT_REFUSED(&day, "{" IDENTITY ",\"exp\":1700086401}", GW_EINVAL,
                   "claim=exp reason=\"beyond --max-token-lifetime-s\"");
    /* The leeway allows for the issuer's clock being ahead. */
    const struct gw_jwt_policy day_leeway = {NOW, 30, 86400};
    ASSERT_REFUSED(&day_leeway, "{" IDENTITY ",\"exp\":1700086430}", GW_OK,
                   "claim=token reason=\"accepted\"");
    ASSERT_REFUSED(&day_leeway, "{" IDENTITY ",\"exp\":1700086431}", GW_EINVAL,
                   "claim=exp reason=\"beyond --max-token-lifetime-s\"");
    /* 0: no limit, up to the milliseconds rule. */
    ASSERT_REFUSED(&exact, "{" IDENTITY ",\"exp\":99999999999}", GW_OK,
                   "claim=token reason=\"accepted\"");
    /* The default: 30 days. */
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":1702592000}"), GW_OK);
    ASSERT_INT_EQ(check("{" IDENTITY ",\"exp\":1702592031}"), GW_EINVAL);
}

TEST(refusals_name_the_claim)
{
    ASSERT_REFUSED(&policy, "{" IDENTITY ",\"exp\":1600000000}", GW_EEXPIRED,
                   "claim=exp reason=\"expired\"");
    ASSERT_REFUSED(&policy, "{" IDENTITY ",\"exp\":" FUTURE ",\"nbf\":1700001000}", GW_ENOTYET,
                   "claim=nbf reason=\"not yet valid\"");
    ASSERT_REFUSED(&policy, "{" IDENTITY "}", GW_EINVAL, "claim=exp reason=\"missing\"");
    ASSERT_REFUSED(&policy, "{" IDENTITY ",\"exp\":\"soon\"}", GW_EINVAL,
                   "claim=exp reason=\"not an integer\"");
    ASSERT_REFUSED(&policy, "{\"client\":\"acme\",\"site\":\"main\",\"exp\":" FUTURE "}", GW_EINVAL,
                   "claim=sub reason=\"missing\"");
    ASSERT_REFUSED(&policy, "{\"sub\":\"u1\",\"site\":\"main\",\"exp\":" FUTURE "}", GW_EINVAL,
                   "claim=client reason=\"missing\"");
    ASSERT_REFUSED(&policy, "{\"sub\":\"u1\",\"client\":\"acme\",\"exp\":" FUTURE "}", GW_EINVAL,
                   "claim=site reason=\"missing\"");
    ASSERT_REFUSED(&policy,
                   "{\"sub\":true,\"client\":\"acme\",\"site\":\"main\",\"exp\":" FUTURE "}",
                   GW_EINVAL, "claim=sub reason=\"not a string or integer\"");
    ASSERT_REFUSED(&policy, "{\"sub\":\"u1\",\"client\":\"\",\"site\":\"main\",\"exp\":" FUTURE "}",
                   GW_EINVAL, "claim=client reason=\"empty\"");
    ASSERT_REFUSED(&policy, "{\"sub\":\"u1\",\"client\":\"acme\",\"site\":7,\"exp\":" FUTURE "}",
                   GW_EINVAL, "claim=site reason=\"not a string\"");
    ASSERT_REFUSED(&policy,
                   "{\"sub\":\"u1\",\"client\":\"acme\",\"site\":\"a:b\",\"exp\":" FUTURE "}",
                   GW_EINVAL, "claim=site reason=\"control character or ':'\"");
    ASSERT_REFUSED(
        &policy, "{\"sub\":\"u\\u0001\",\"client\":\"acme\",\"site\":\"main\",\"exp\":" FUTURE "}",
        GW_EINVAL, "claim=sub reason=\"control character\"");
    ASSERT_REFUSED(&policy, "{" IDENTITY ",\"exp\":" FUTURE ",\"events\":{}}", GW_EINVAL,
                   "claim=events reason=\"not an array\"");
    ASSERT_REFUSED(&policy, "{" IDENTITY ",\"exp\":" FUTURE ",\"events\":[1]}", GW_EINVAL,
                   "claim=events reason=\"invalid event name\"");
    ASSERT_REFUSED(&policy, "[]", GW_EPROTO, "claim=payload reason=\"not a JSON object\"");

    /* Whole-token failures name the part. */
    struct gw_identity id;
    struct gw_jwt_refusal why;
    char text[128];
    ASSERT_INT_EQ(gw_jwt_verify("a.b", 3, secrets, 2, &policy, &id, &why), GW_EPROTO);
    ASSERT_STR_EQ(gw_jwt_describe(&why, text, sizeof(text)),
                  "claim=token reason=\"not three dot-separated parts\"");
    char *tok = sign(HEADER, VALID, "another-secret");
    ASSERT_INT_EQ(gw_jwt_verify(tok, strlen(tok), secrets, 2, &policy, &id, &why), GW_EDENIED);
    ASSERT_STR_EQ(gw_jwt_describe(&why, text, sizeof(text)),
                  "claim=signature reason=\"matches no secret\"");
    gw_free(tok);
    tok = sign("{\"alg\":\"none\"}", VALID, SECRET_A);
    ASSERT_INT_EQ(gw_jwt_verify(tok, strlen(tok), secrets, 2, &policy, &id, &why), GW_EUNSUPPORTED);
    ASSERT_STR_EQ(gw_jwt_describe(&why, text, sizeof(text)), "claim=alg reason=\"not HS256\"");
    gw_free(tok);
    /* A refusal is cleared by the next success; the description is truncated to fit. */
    tok = sign(HEADER, VALID, SECRET_A);
    ASSERT_INT_EQ(gw_jwt_verify(tok, strlen(tok), secrets, 2, &policy, &id, &why), GW_OK);
    ASSERT_TRUE(why.claim == NULL && why.reason == NULL);
    gw_identity_cleanup(&id);
    gw_free(tok);
    why = (struct gw_jwt_refusal){"exp", "expired"};
    ASSERT_STR_EQ(gw_jwt_describe(&why, text, 10), "claim=exp");
}

GW_TEST_MAIN(TEST_CASE(jwt_io_vector), TEST_CASE(valid_string_claims),
             TEST_CASE(valid_integer_claims), TEST_CASE(valid_events), TEST_CASE(second_secret),
             TEST_CASE(wrong_secret), TEST_CASE(tampered_payload), TEST_CASE(tampered_signature),
             TEST_CASE(unsupported_alg), TEST_CASE(expiry), TEST_CASE(not_before),
             TEST_CASE(missing_claims), TEST_CASE(wrong_claim_types), TEST_CASE(claim_length),
             TEST_CASE(oversized_token), TEST_CASE(bad_base64url), TEST_CASE(wrong_number_of_dots),
             TEST_CASE(payload_not_object), TEST_CASE(header_not_object), TEST_CASE(bad_events),
             TEST_CASE(events_limits), TEST_CASE(times_in_milliseconds), TEST_CASE(lifetime_limit),
             TEST_CASE(refusals_name_the_claim))
