/* Channel names: the name rule (pubsub_name_valid) makes (scope, site, id) -> name one-to-one.
 * Checked exhaustively over every short string of an alphabet holding the characters that
 * matter: the separator, a C0 control, DEL, NUL and two plain letters. */
#include "gw_test.h"

#include "gw_alloc.h"
#include "pubsub_channel.h"

/* NUL is in the alphabet: names are (pointer, length), never C strings, until validated. */
static const char alphabet[] = {'a', 'b', ':', '\x01', '\x7f', '\0'};
#define ALPHABET_LEN ((int)sizeof(alphabet))
#define MAX_LEN 4

struct name {
    char s[MAX_LEN + 1];
    size_t len;
};

/* Every string of 0..MAX_LEN characters of the alphabet. */
static struct name *all_strings(size_t *count)
{
    size_t n = 0, total = 0;
    for (int len = 0, p = 1; len <= MAX_LEN; len++, p *= ALPHABET_LEN)
        total += (size_t)p;
    struct name *out = gw_calloc(total, sizeof(*out));
    for (int len = 0, p = 1; len <= MAX_LEN; len++, p *= ALPHABET_LEN) {
        for (int v = 0; v < p; v++) {
            int x = v;
            for (int i = 0; i < len; i++, x /= ALPHABET_LEN)
                out[n].s[i] = alphabet[x % ALPHABET_LEN];
            out[n].len = (size_t)len;
            n++;
        }
    }
    *count = n;
    return out;
}

static bool has_control(const struct name *n)
{
    for (size_t i = 0; i < n->len; i++) {
        unsigned char c = (unsigned char)n->s[i];
        if (c < 0x20 || c == 0x7f)
            return true;
    }
    return false;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

TEST(validity_follows_the_rule)
{
    size_t n;
    struct name *names = all_strings(&n);
    for (size_t i = 0; i < n; i++) {
        const struct name *x = &names[i];
        bool colon = memchr(x->s, ':', x->len) != NULL;
        bool id_ok = x->len > 0 && !has_control(x);
        if (pubsub_name_valid(x->s, x->len, MAX_LEN, PUBSUB_NAME_ID) != id_ok)
            GW_FAIL_AT("id %zu (len %zu): expected %s", i, x->len, id_ok ? "valid" : "invalid");
        if (pubsub_name_valid(x->s, x->len, MAX_LEN, PUBSUB_NAME_SITE) != (id_ok && !colon))
            GW_FAIL_AT("site %zu (len %zu): expected %s", i, x->len,
                       id_ok && !colon ? "valid" : "invalid");
    }
    gw_free(names);
    /* C1 controls (UTF-8 C2 80..C2 9F) are controls too; the rest of U+0080.. is not. */
    ASSERT_TRUE(!pubsub_name_valid("a\xc2\x85", 3, 16, PUBSUB_NAME_ID));
    ASSERT_TRUE(!pubsub_name_valid("\xc2\x9f", 2, 16, PUBSUB_NAME_SITE));
    ASSERT_TRUE(pubsub_name_valid("\xc2\xa0", 2, 16, PUBSUB_NAME_SITE));
    /* Bounded by the caller's limit and by the room channel names have. */
    ASSERT_TRUE(!pubsub_name_valid("abcde", 5, 4, PUBSUB_NAME_ID));
    char big[PUBSUB_NAME_MAX_BYTES + 1];
    memset(big, 'x', sizeof(big));
    ASSERT_TRUE(pubsub_name_valid(big, PUBSUB_NAME_MAX_BYTES, SIZE_MAX, PUBSUB_NAME_SITE));
    ASSERT_TRUE(!pubsub_name_valid(big, sizeof(big), SIZE_MAX, PUBSUB_NAME_SITE));
}

TEST(distinct_valid_triples_get_distinct_names)
{
    size_t n;
    struct name *names = all_strings(&n);
    /* NUL-terminated copies of the valid sites and ids. */
    size_t n_sites = 0, n_ids = 0;
    const char **sites = gw_calloc(n, sizeof(*sites));
    const char **ids = gw_calloc(n, sizeof(*ids));
    for (size_t i = 0; i < n; i++) {
        if (pubsub_name_valid(names[i].s, names[i].len, MAX_LEN, PUBSUB_NAME_SITE))
            sites[n_sites++] = names[i].s;
        if (pubsub_name_valid(names[i].s, names[i].len, MAX_LEN, PUBSUB_NAME_ID))
            ids[n_ids++] = names[i].s;
    }
    /* The alphabet's letters and ':' survive: the interesting cases are all there. */
    ASSERT_UINT_EQ(n_sites, 2 + 4 + 8 + 16);
    ASSERT_UINT_EQ(n_ids, 3 + 9 + 27 + 81);
    size_t total = 2 * n_sites * n_ids + n_sites, k = 0;
    char **channels = gw_calloc(total, sizeof(*channels));
    static const enum pubsub_scope scoped[] = {PUBSUB_SCOPE_USER, PUBSUB_SCOPE_CLIENT};
    char buf[PUBSUB_CHANNEL_NAME_MAX];
    for (size_t s = 0; s < n_sites; s++) {
        for (size_t c = 0; c < 2; c++) {
            for (size_t i = 0; i < n_ids; i++) {
                size_t len = pubsub_channel_name(buf, sizeof(buf), scoped[c], sites[s], ids[i]);
                ASSERT_UINT_EQ(len, strlen(buf));
                channels[k++] = gw_strdup(buf);
            }
        }
        pubsub_channel_name(buf, sizeof(buf), PUBSUB_SCOPE_GLOBAL, sites[s], NULL);
        channels[k++] = gw_strdup(buf);
    }
    ASSERT_UINT_EQ(k, total);
    qsort(channels, total, sizeof(*channels), compare_strings);
    size_t collisions = 0;
    for (size_t i = 1; i < total; i++) {
        if (strcmp(channels[i - 1], channels[i]) == 0 && collisions++ == 0)
            fprintf(stderr, "two triples named \"%s\"\n", channels[i]);
    }
    ASSERT_UINT_EQ(collisions, 0);
    for (size_t i = 0; i < total; i++)
        gw_free(channels[i]);
    gw_free(channels);
    gw_free(sites);
    gw_free(ids);
    gw_free(names);
}

TEST(the_observed_forgery_is_refused)
{
    /* Without the rule, site "S1:x" and user "A" would be user "x:A" of site "S1". */
    char forged[PUBSUB_CHANNEL_NAME_MAX], real[PUBSUB_CHANNEL_NAME_MAX];
    pubsub_channel_name(forged, sizeof(forged), PUBSUB_SCOPE_USER, "S1:x", "A");
    pubsub_channel_name(real, sizeof(real), PUBSUB_SCOPE_USER, "S1", "x:A");
    ASSERT_STR_EQ(forged, real);
    ASSERT_TRUE(!pubsub_name_valid("S1:x", 4, 256, PUBSUB_NAME_SITE));
    ASSERT_TRUE(pubsub_name_valid("S1", 2, 256, PUBSUB_NAME_SITE));
    ASSERT_TRUE(pubsub_name_valid("x:A", 3, 256, PUBSUB_NAME_ID));
}

GW_TEST_MAIN(TEST_CASE(validity_follows_the_rule),
             TEST_CASE(distinct_valid_triples_get_distinct_names),
             TEST_CASE(the_observed_forgery_is_refused))
