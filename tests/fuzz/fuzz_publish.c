/* libFuzzer: publish bodies as the API and the Redis engine read them. The input is parsed by
 * jansson like a request body (an object or an array of them); each accepted publish must
 * respect the limits and survive a round trip through its JSON form unchanged. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gw_alloc.h"
#include "pubsub_publish.h"

/* Small limits, so that the fuzzer reaches them. */
static const struct pubsub_limits limits = {
    .max_ids = 8, .max_sites = 4, .max_name_bytes = 32, .max_data_bytes = 256};

static void check(const struct pubsub_publish *p)
{
    GW_ASSERT(p->n_sites >= 1 && p->n_sites <= limits.max_sites);
    GW_ASSERT(p->n_ids <= limits.max_ids);
    GW_ASSERT((p->scope == PUBSUB_SCOPE_GLOBAL) == (p->n_ids == 0));
    GW_ASSERT(p->data_len <= limits.max_data_bytes && strlen(p->data) == p->data_len);
    GW_ASSERT(strlen(p->event) <= limits.max_name_bytes);
    for (uint32_t i = 0; i < p->n_sites; i++)
        GW_ASSERT(strlen(p->sites[i]) <= limits.max_name_bytes);
    for (uint32_t i = 0; i < p->n_ids; i++)
        GW_ASSERT(strlen(p->ids[i]) <= limits.max_name_bytes);
}

static void round_trip(const json_t *item)
{
    struct pubsub_publish *p;
    const char *error = NULL;
    if (pubsub_publish_from_json(item, &limits, &p, &error) != 0) {
        GW_ASSERT(p == NULL && error != NULL);
        return;
    }
    check(p);
    size_t len;
    char *text = pubsub_publish_to_json(p, &len);
    json_error_t err;
    json_t *again = json_loadb(text, len, 0, &err);
    GW_ASSERT(again != NULL);
    struct pubsub_publish *q;
    GW_ASSERT(pubsub_publish_from_json(again, &limits, &q, &error) == 0);
    size_t len2;
    char *text2 = pubsub_publish_to_json(q, &len2);
    GW_ASSERT(len == len2 && memcmp(text, text2, len) == 0);
    free(text2);
    free(text);
    json_decref(again);
    pubsub_publish_unref(q);
    pubsub_publish_unref(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t err;
    json_t *root = json_loadb((const char *)data, size, 0, &err);
    if (!root)
        return 0;
    if (json_is_array(root)) {
        for (size_t i = 0; i < json_array_size(root); i++)
            round_trip(json_array_get(root, i));
    } else {
        round_trip(root);
    }
    json_decref(root);
    return 0;
}
