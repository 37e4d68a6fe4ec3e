#include "gw_htable.h"

#include "gw_alloc.h"

void gw_htable_init(struct gw_htable *t, size_t min_buckets, gw_htable_hash_cb hash)
{
    GW_ASSERT(min_buckets > 0 && (min_buckets & (min_buckets - 1)) == 0);
    t->buckets = gw_calloc(min_buckets, sizeof(*t->buckets));
    t->mask = min_buckets - 1;
    t->min_mask = t->mask;
    t->count = 0;
    t->holds = 0;
    t->hash = hash;
}

void gw_htable_cleanup(struct gw_htable *t)
{
    GW_ASSERT(t->holds == 0);
    gw_free(t->buckets);
    t->buckets = NULL;
    t->mask = t->count = 0;
}

void gw_htable_each(const struct gw_htable *t, void (*fn)(struct gw_hnode *node, void *arg),
                    void *arg)
{
    for (size_t b = 0; t->buckets && b <= t->mask; b++) {
        for (struct gw_hnode *n = t->buckets[b], *next; n; n = next) {
            next = n->next;
            fn(n, arg);
        }
    }
}

size_t gw_htable_longest_chain(const struct gw_htable *t)
{
    size_t longest = 0;
    for (size_t b = 0; t->buckets && b <= t->mask; b++) {
        size_t len = 0;
        for (const struct gw_hnode *n = t->buckets[b]; n; n = n->next)
            len++;
        if (len > longest)
            longest = len;
    }
    return longest;
}

static void resize(struct gw_htable *t, size_t size)
{
    struct gw_hnode **buckets = gw_calloc(size, sizeof(*buckets));
    for (size_t i = 0; i <= t->mask; i++) {
        for (struct gw_hnode *n = t->buckets[i], *next; n; n = next) {
            next = n->next;
            struct gw_hnode **b = &buckets[t->hash(n) & (size - 1)];
            n->next = *b;
            *b = n;
        }
    }
    gw_free(t->buckets);
    t->buckets = buckets;
    t->mask = size - 1;
}

void gw_htable_insert(struct gw_htable *t, struct gw_hnode *node, uint32_t hash)
{
    GW_ASSERT(t->holds == 0);
    if (t->count >= t->mask + 1)
        resize(t, (t->mask + 1) * 2);
    struct gw_hnode **b = &t->buckets[hash & t->mask];
    node->next = *b;
    *b = node;
    t->count++;
}

/* The smallest size, not below the minimum, that leaves the load at a half or less. */
static void shrink_to_fit(struct gw_htable *t)
{
    size_t size = t->mask + 1;
    while (size > t->min_mask + 1 && t->count < size / 4)
        size /= 2;
    if (size != t->mask + 1)
        resize(t, size);
}

void gw_htable_remove(struct gw_htable *t, struct gw_hnode *node, uint32_t hash)
{
    struct gw_hnode **p = &t->buckets[hash & t->mask];
    while (*p != node) {
        GW_ASSERT(*p != NULL);
        p = &(*p)->next;
    }
    *p = node->next;
    node->next = NULL;
    t->count--;
    if (!t->holds && t->count < (t->mask + 1) / 4 && t->mask > t->min_mask)
        shrink_to_fit(t);
}

void gw_htable_hold(struct gw_htable *t)
{
    t->holds++;
}

void gw_htable_release(struct gw_htable *t)
{
    GW_ASSERT(t->holds > 0);
    if (--t->holds == 0)
        shrink_to_fit(t);
}
