#include "pubsub_publish.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_alloc.h"
#include "gw_error.h"
#include "pubsub_channel.h"

const char *pubsub_scope_name(enum pubsub_scope scope)
{
    switch (scope) {
    case PUBSUB_SCOPE_USER:
        return "user";
    case PUBSUB_SCOPE_CLIENT:
        return "client";
    case PUBSUB_SCOPE_GLOBAL:
        return "global";
    }
    return "?";
}

void pubsub_limits_defaults(struct pubsub_limits *lim)
{
    lim->max_ids = 10000;
    lim->max_sites = 100;
    lim->max_name_bytes = 256;
    lim->max_data_bytes = 64 * 1024;
    lim->max_channels = 10000;
}

/* Strings are copied into one block after the struct; this measures and then fills it. */
struct builder {
    char *next;
    size_t need;
    bool measuring;
};

static const char *put(struct builder *b, const char *s, size_t len)
{
    if (b->measuring) {
        b->need += len + 1;
        return NULL;
    }
    char *p = b->next;
    memcpy(p, s, len);
    p[len] = '\0';
    b->next += len + 1;
    return p;
}

static int name_of(const json_t *v, char *num, size_t cap, const char **s, size_t *len)
{
    if (json_is_string(v)) {
        *s = json_string_value(v);
        *len = json_string_length(v);
        return 0;
    }
    if (json_is_integer(v)) {
        int n = snprintf(num, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        *s = num;
        *len = (size_t)n;
        return 0;
    }
    return GW_EINVAL;
}

static int fill(struct builder *b, struct pubsub_publish *p, const json_t *sites,
                const json_t *site, const json_t *ids, const char *event, size_t event_len,
                const char *data, size_t data_len, const struct pubsub_limits *lim,
                const char **error)
{
    char num[32];
    const char *s;
    size_t len;
    size_t n_sites = sites ? json_array_size(sites) : 1;
    for (size_t i = 0; i < n_sites; i++) {
        const json_t *v = sites ? json_array_get(sites, i) : site;
        if (!json_is_string(v) || !pubsub_name_valid(json_string_value(v), json_string_length(v),
                                                     lim->max_name_bytes, PUBSUB_NAME_SITE)) {
            *error = "invalid site";
            return GW_EINVAL;
        }
        const char *copy = put(b, json_string_value(v), json_string_length(v));
        if (!b->measuring)
            p->sites[i] = copy;
    }
    size_t n_ids = ids ? json_array_size(ids) : 0;
    for (size_t i = 0; i < n_ids; i++) {
        if (name_of(json_array_get(ids, i), num, sizeof(num), &s, &len) != 0 ||
            !pubsub_name_valid(s, len, lim->max_name_bytes, PUBSUB_NAME_ID)) {
            *error = "invalid id";
            return GW_EINVAL;
        }
        const char *copy = put(b, s, len);
        if (!b->measuring)
            p->ids[i] = copy;
    }
    const char *ev = put(b, event, event_len);
    const char *dt = put(b, data, data_len);
    if (!b->measuring) {
        p->event = ev;
        p->data = dt;
        p->data_len = data_len;
    }
    return 0;
}

/* The fields of a publish object, as the parsers below find them; each parser checks its own
 * fields (in the order the reasons are reported) and sets *error when it refuses them. */
struct fields {
    enum pubsub_scope scope;
    const json_t *site, *sites, *ids, *event, *data, *seqs, *ts;
    size_t n_sites, n_ids, n_channels;
};

static int parse_scope(const json_t *obj, struct fields *f, const char **error)
{
    const json_t *v = json_object_get(obj, "scope");
    if (!json_is_string(v)) {
        *error = "missing scope";
        return GW_EINVAL;
    }
    const char *name = json_string_value(v);
    if (strcmp(name, "user") == 0)
        f->scope = PUBSUB_SCOPE_USER;
    else if (strcmp(name, "client") == 0)
        f->scope = PUBSUB_SCOPE_CLIENT;
    else if (strcmp(name, "global") == 0)
        f->scope = PUBSUB_SCOPE_GLOBAL;
    else {
        *error = "unknown scope";
        return GW_EINVAL;
    }
    return 0;
}

/* "site" or "sites" (their names are checked while building). */
static int parse_sites(const json_t *obj, const struct pubsub_limits *lim, struct fields *f,
                       const char **error)
{
    f->site = json_object_get(obj, "site");
    f->sites = json_object_get(obj, "sites");
    if ((f->site == NULL) == (f->sites == NULL)) {
        *error = "exactly one of site and sites is required";
        return GW_EINVAL;
    }
    if (f->sites && (!json_is_array(f->sites) || json_array_size(f->sites) == 0)) {
        *error = "sites must be a non-empty array";
        return GW_EINVAL;
    }
    if (f->sites && json_array_size(f->sites) > lim->max_sites) {
        *error = "too many sites";
        return GW_EINVAL;
    }
    f->n_sites = f->sites ? json_array_size(f->sites) : 1;
    return 0;
}

/* "ids", as the scope wants them, and the channels they make with the sites. */
static int parse_ids(const json_t *obj, const struct pubsub_limits *lim, struct fields *f,
                     const char **error)
{
    f->ids = json_object_get(obj, "ids");
    if (f->ids && !json_is_array(f->ids)) {
        *error = "ids must be an array";
        return GW_EINVAL;
    }
    f->n_ids = f->ids ? json_array_size(f->ids) : 0;
    if (f->scope == PUBSUB_SCOPE_GLOBAL && f->n_ids > 0) {
        *error = "a global publish takes no ids";
        return GW_EINVAL;
    }
    if (f->scope != PUBSUB_SCOPE_GLOBAL && f->n_ids == 0) {
        *error = "ids are required for user and client scopes";
        return GW_EINVAL;
    }
    if (f->n_ids > lim->max_ids) {
        *error = "too many ids";
        return GW_EINVAL;
    }
    f->n_channels = f->n_sites * (f->n_ids ? f->n_ids : 1);
    if (f->n_channels > lim->max_channels) {
        *error = "too many channels";
        return GW_EINVAL;
    }
    return 0;
}

/* "event", "data" and, from the engine, "seqs" (their values are checked while building). */
static int parse_payload(const json_t *obj, const struct pubsub_limits *lim, struct fields *f,
                         const char **error)
{
    f->event = json_object_get(obj, "event");
    if (!json_is_string(f->event) ||
        !pubsub_name_valid(json_string_value(f->event), json_string_length(f->event),
                           lim->max_name_bytes, PUBSUB_NAME_ID)) {
        *error = "missing or invalid event";
        return GW_EINVAL;
    }
    f->data = json_object_get(obj, "data");
    if (!f->data) {
        *error = "missing data";
        return GW_EINVAL;
    }
    f->ts = json_object_get(obj, "ts");
    if (f->ts && (!json_is_integer(f->ts) || json_integer_value(f->ts) < 0)) {
        *error = "ts must be a non-negative integer";
        return GW_EINVAL;
    }
    f->seqs = json_object_get(obj, "seqs");
    if (f->seqs && (!json_is_array(f->seqs) || json_array_size(f->seqs) != f->n_channels)) {
        *error = "seqs must have one integer per channel";
        return GW_EINVAL;
    }
    return 0;
}

/* One allocation: the struct, the name pointers, then the strings (measured, then filled). */
static int build(const struct fields *f, const struct pubsub_limits *lim,
                 struct pubsub_publish **out, const char **error)
{
    char *data = json_dumps(f->data, JSON_COMPACT | JSON_ENCODE_ANY);
    GW_ASSERT(data != NULL);
    size_t data_len = strlen(data);
    if (data_len > lim->max_data_bytes) {
        free(data);
        *error = "data too large";
        return GW_ELIMIT;
    }
    const char *event = json_string_value(f->event);
    size_t event_len = json_string_length(f->event);
    struct builder b = {.measuring = true};
    int rc =
        fill(&b, NULL, f->sites, f->site, f->ids, event, event_len, data, data_len, lim, error);
    if (rc != 0) {
        free(data);
        return rc;
    }
    size_t head = sizeof(struct pubsub_publish) + (f->n_sites + f->n_ids) * sizeof(char *);
    struct pubsub_publish *p = gw_calloc(1, head + b.need);
    p->refs = 1;
    p->scope = f->scope;
    p->n_sites = (uint32_t)f->n_sites;
    p->n_ids = (uint32_t)f->n_ids;
    p->sites = (const char **)(p + 1);
    p->ids = p->sites + f->n_sites;
    b = (struct builder){.next = (char *)p + head, .measuring = false};
    fill(&b, p, f->sites, f->site, f->ids, event, event_len, data, data_len, lim, error);
    free(data);
    if (f->ts)
        p->accepted_us = (uint64_t)json_integer_value(f->ts);
    if (f->seqs) {
        p->seqs = gw_malloc(f->n_channels * sizeof(*p->seqs));
        for (size_t i = 0; i < f->n_channels; i++) {
            const json_t *v = json_array_get(f->seqs, i);
            if (!json_is_integer(v)) {
                pubsub_publish_unref(p);
                *error = "seqs must have one integer per channel";
                return GW_EINVAL;
            }
            p->seqs[i] = json_integer_value(v);
        }
    }
    *out = p;
    return 0;
}

int pubsub_publish_from_json(const json_t *obj, const struct pubsub_limits *lim,
                             struct pubsub_publish **out, const char **error)
{
    *out = NULL;
    if (!json_is_object(obj)) {
        *error = "a publish must be a JSON object";
        return GW_EINVAL;
    }
    struct fields f;
    int rc = parse_scope(obj, &f, error);
    if (rc == 0)
        rc = parse_sites(obj, lim, &f, error);
    if (rc == 0)
        rc = parse_ids(obj, lim, &f, error);
    if (rc == 0)
        rc = parse_payload(obj, lim, &f, error);
    if (rc != 0)
        return rc;
    return build(&f, lim, out, error);
}

char *pubsub_publish_to_json(const struct pubsub_publish *p, size_t *len)
{
    json_t *obj = json_object();
    json_object_set_new(obj, "scope", json_string(pubsub_scope_name(p->scope)));
    json_t *sites = json_array();
    for (uint32_t i = 0; i < p->n_sites; i++)
        json_array_append_new(sites, json_string(p->sites[i]));
    json_object_set_new(obj, "sites", sites);
    if (p->n_ids) {
        json_t *ids = json_array();
        for (uint32_t i = 0; i < p->n_ids; i++)
            json_array_append_new(ids, json_string(p->ids[i]));
        json_object_set_new(obj, "ids", ids);
    }
    json_object_set_new(obj, "event", json_string(p->event));
    json_error_t err;
    json_t *data = json_loadb(p->data, p->data_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    GW_ASSERT(data != NULL); /* built by json_dumps in from_json */
    json_object_set_new(obj, "data", data);
    if (p->accepted_us)
        json_object_set_new(obj, "ts", json_integer((json_int_t)p->accepted_us));
    if (p->seqs) {
        json_t *seqs = json_array();
        size_t n = pubsub_publish_channels(p);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(seqs, json_integer(p->seqs[i]));
        json_object_set_new(obj, "seqs", seqs);
    }
    char *out = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    GW_ASSERT(out != NULL);
    *len = strlen(out);
    return out;
}

struct pubsub_publish *pubsub_publish_one(enum pubsub_scope scope, const char *site,
                                          size_t site_len, const char *id, size_t id_len,
                                          const char *event, size_t event_len, const char *data,
                                          size_t data_len, int64_t seq)
{
    size_t head = sizeof(struct pubsub_publish) + 2 * sizeof(char *);
    size_t strings = site_len + 1 + (id ? id_len + 1 : 0) + event_len + 1 + data_len + 1;
    struct pubsub_publish *p = gw_calloc(1, head + strings);
    p->refs = 1;
    p->scope = scope;
    p->n_sites = 1;
    p->n_ids = id ? 1 : 0;
    p->sites = (const char **)(p + 1);
    p->ids = p->sites + 1;
    struct builder b = {.next = (char *)p + head};
    p->sites[0] = put(&b, site, site_len);
    if (id)
        p->ids[0] = put(&b, id, id_len);
    p->event = put(&b, event, event_len);
    p->data = put(&b, data, data_len);
    p->data_len = data_len;
    pubsub_publish_set_seqs(p, &seq, 1);
    return p;
}

void pubsub_publish_set_seqs(struct pubsub_publish *p, const int64_t *seqs, size_t n)
{
    GW_ASSERT(n == pubsub_publish_channels(p));
    if (!p->seqs)
        p->seqs = gw_malloc(n * sizeof(*p->seqs));
    memcpy(p->seqs, seqs, n * sizeof(*seqs));
}

void pubsub_publish_unref(struct pubsub_publish *p)
{
    if (!p)
        return;
    GW_ASSERT(p->refs > 0);
    if (--p->refs)
        return;
    gw_free(p->seqs);
    gw_free(p);
}
