/* Intrusive chained hash table: elements embed a struct gw_hnode, the caller computes the hash
 * (so an element may store it or recompute it) and walks the chain itself to compare keys,
 * which keeps lookups as cheap as a hand-written loop:
 *
 *     for (struct gw_hnode *n = gw_htable_chain(t, h); n; n = n->next)
 *         if (key matches GW_CONTAINER_OF(n, struct elem, node)) ...
 *
 * Power-of-two buckets, never fewer than the minimum given to init. The table doubles when an
 * insert would put more elements than buckets, and halves when a removal leaves fewer than a
 * quarter: right after either, the load is about a half, so a workload hovering around one
 * threshold does not resize back and forth. Resizing calls the table's hash callback once per
 * element. */
#ifndef GW_HTABLE_H
#define GW_HTABLE_H

#include <stddef.h>
#include <stdint.h>

struct gw_hnode {
    struct gw_hnode *next; /* chain; the element may reuse it once out of the table */
};

/* The hash the element was inserted with. */
typedef uint32_t (*gw_htable_hash_cb)(const struct gw_hnode *node);

struct gw_htable {
    struct gw_hnode **buckets;
    size_t mask; /* buckets - 1 */
    size_t count;
    size_t min_mask;
    unsigned holds; /* while non-zero, removals do not shrink (gw_htable_hold) */
    gw_htable_hash_cb hash;
};

/* min_buckets: a power of two. */
void gw_htable_init(struct gw_htable *t, size_t min_buckets, gw_htable_hash_cb hash);
/* Frees the buckets; the elements are the caller's (remove or forget them first). */
void gw_htable_cleanup(struct gw_htable *t);

/* node must not be in the table; hash must be what t->hash will return for it. */
void gw_htable_insert(struct gw_htable *t, struct gw_hnode *node, uint32_t hash);
/* node must be in the table, inserted with hash. Sets node->next to NULL. */
void gw_htable_remove(struct gw_htable *t, struct gw_hnode *node, uint32_t hash);

/* While held, the bucket array stays where it is however many elements are removed, so that a
 * caller may walk the buckets (t->buckets[0..t->mask]) removing as it goes. Inserting while
 * held is not allowed. Release shrinks the table if removals left it too large. */
void gw_htable_hold(struct gw_htable *t);
void gw_htable_release(struct gw_htable *t);

/* Calls fn for every node, in no order. Each node's successor is read before fn runs, so fn
 * may free its node when the whole table is being dropped, or remove it while the table is
 * held; it may not insert. */
void gw_htable_each(const struct gw_htable *t, void (*fn)(struct gw_hnode *node, void *arg),
                    void *arg);

/* The number of nodes in the longest chain: 1 or 2 for a table of well-spread hashes, the
 * element count when every key collides. Walks the whole table: for statistics, not the hot
 * path. */
size_t gw_htable_longest_chain(const struct gw_htable *t);

/* The chain hash belongs to. */
static inline struct gw_hnode *gw_htable_chain(const struct gw_htable *t, uint32_t hash)
{
    return t->buckets[hash & t->mask];
}

#endif
