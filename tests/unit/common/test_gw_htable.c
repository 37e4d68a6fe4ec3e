/* gw_htable: what is inserted is found until removed, the table doubles past a load of one and
 * halves below a quarter but never under its minimum nor back and forth around a threshold,
 * chains of colliding hashes work (and are measured), and the buckets may be walked while removing
 * when held. */
#include "gw_test.h"

#include <stdbool.h>
#include <stdint.h>

#include "gw_alloc.h"
#include "gw_hash.h"
#include "gw_htable.h"

struct item {
    struct gw_hnode node;
    uint32_t key;
    bool in;
};

/* Keys hash through FNV, or all to one value when collide is set. */
static bool collide;

static uint32_t key_hash(uint32_t key)
{
    return collide ? 7u : gw_fnv32(GW_FNV32_INIT, &key, sizeof(key));
}

static uint32_t item_hash(const struct gw_hnode *n)
{
    return key_hash(GW_CONTAINER_OF(n, struct item, node)->key);
}

static struct item *find(const struct gw_htable *t, uint32_t key)
{
    for (struct gw_hnode *n = gw_htable_chain(t, key_hash(key)); n; n = n->next) {
        struct item *it = GW_CONTAINER_OF(n, struct item, node);
        if (it->key == key)
            return it;
    }
    return NULL;
}

static void insert(struct gw_htable *t, struct item *it)
{
    gw_htable_insert(t, &it->node, key_hash(it->key));
    it->in = true;
}

static void remove_item(struct gw_htable *t, struct item *it)
{
    gw_htable_remove(t, &it->node, key_hash(it->key));
    it->in = false;
}

/* Every item is found exactly when it is in, and the table's count agrees. */
static bool consistent(const struct gw_htable *t, const struct item *items, size_t n)
{
    size_t in = 0;
    for (size_t i = 0; i < n; i++) {
        if (find(t, items[i].key) != (items[i].in ? &items[i] : NULL))
            return false;
        in += items[i].in;
    }
    size_t chained = 0;
    for (size_t b = 0; b <= t->mask; b++)
        for (struct gw_hnode *node = t->buckets[b]; node; node = node->next)
            chained++;
    return in == t->count && chained == t->count;
}

static struct item *make_items(size_t n)
{
    struct item *items = gw_calloc(n, sizeof(*items));
    for (size_t i = 0; i < n; i++)
        items[i].key = (uint32_t)(i * 2654435761u);
    return items;
}

TEST(insert_find_remove)
{
    collide = false;
    struct gw_htable t;
    gw_htable_init(&t, 8, item_hash);
    struct item *items = make_items(5);
    ASSERT_TRUE(find(&t, items[0].key) == NULL);
    for (size_t i = 0; i < 5; i++)
        insert(&t, &items[i]);
    ASSERT_UINT_EQ(t.count, 5);
    ASSERT_TRUE(consistent(&t, items, 5));
    remove_item(&t, &items[2]);
    ASSERT_TRUE(items[2].node.next == NULL);
    ASSERT_TRUE(find(&t, items[2].key) == NULL);
    ASSERT_TRUE(consistent(&t, items, 5));
    /* Back in after removal. */
    insert(&t, &items[2]);
    ASSERT_TRUE(find(&t, items[2].key) == &items[2]);
    for (size_t i = 0; i < 5; i++)
        remove_item(&t, &items[i]);
    ASSERT_UINT_EQ(t.count, 0);
    ASSERT_TRUE(consistent(&t, items, 5));
    gw_htable_cleanup(&t);
    gw_free(items);
}

TEST(grows_at_load_one_and_shrinks_below_a_quarter)
{
    collide = false;
    struct gw_htable t;
    gw_htable_init(&t, 16, item_hash);
    enum { N = 10000 };
    struct item *items = make_items(N);
    for (size_t i = 0; i < N; i++) {
        insert(&t, &items[i]);
        /* Never more elements than buckets, never under a half once grown. */
        ASSERT_TRUE(t.count <= t.mask + 1);
        ASSERT_TRUE(t.mask == 15 || t.count * 2 > t.mask + 1);
    }
    ASSERT_UINT_EQ(t.mask + 1, 16384);
    ASSERT_TRUE(consistent(&t, items, N));
    for (size_t i = 0; i < N; i++) {
        remove_item(&t, &items[i]);
        ASSERT_TRUE(t.mask == 15 || t.count * 4 >= t.mask + 1);
        if (i % 997 == 0)
            ASSERT_TRUE(consistent(&t, items, N));
    }
    /* Shrunk back to the minimum, not below. */
    ASSERT_UINT_EQ(t.mask + 1, 16);
    ASSERT_TRUE(consistent(&t, items, N));
    gw_htable_cleanup(&t);
    gw_free(items);
}

TEST(no_resizing_back_and_forth)
{
    collide = false;
    struct gw_htable t;
    gw_htable_init(&t, 16, item_hash);
    struct item *items = make_items(65);
    /* 65 elements: grown to 128 buckets. Around each threshold (65/64 for growing, 32/31 for
     * shrinking) one insert and one removal at a time must leave the bucket array alone. */
    for (size_t i = 0; i < 65; i++)
        insert(&t, &items[i]);
    ASSERT_UINT_EQ(t.mask + 1, 128);
    struct gw_hnode **buckets = t.buckets;
    for (int round = 0; round < 100; round++) {
        remove_item(&t, &items[64]);
        insert(&t, &items[64]);
    }
    ASSERT_TRUE(t.buckets == buckets);
    for (size_t i = 64; i >= 32; i--)
        remove_item(&t, &items[i]);
    ASSERT_UINT_EQ(t.count, 32);
    ASSERT_UINT_EQ(t.mask + 1, 128);
    remove_item(&t, &items[31]); /* 31 < 128 / 4 */
    ASSERT_UINT_EQ(t.mask + 1, 64);
    buckets = t.buckets;
    for (int round = 0; round < 100; round++) {
        insert(&t, &items[31]);
        remove_item(&t, &items[31]);
    }
    ASSERT_TRUE(t.buckets == buckets);
    ASSERT_UINT_EQ(t.mask + 1, 64);
    ASSERT_TRUE(consistent(&t, items, 65));
    for (size_t i = 0; i < 31; i++)
        remove_item(&t, &items[i]);
    gw_htable_cleanup(&t);
    gw_free(items);
}

TEST(many_collisions)
{
    collide = true;
    struct gw_htable t;
    gw_htable_init(&t, 4, item_hash);
    enum { N = 300 };
    struct item *items = make_items(N);
    ASSERT_UINT_EQ(gw_htable_longest_chain(&t), 0);
    for (size_t i = 0; i < N; i++)
        insert(&t, &items[i]);
    ASSERT_TRUE(consistent(&t, items, N));
    ASSERT_UINT_EQ(gw_htable_longest_chain(&t), N);
    /* From the middle, the head and the tail of the one chain. */
    for (size_t i = 0; i < N; i += 3)
        remove_item(&t, &items[i]);
    ASSERT_TRUE(consistent(&t, items, N));
    ASSERT_UINT_EQ(gw_htable_longest_chain(&t), N - (N + 2) / 3);
    for (size_t i = 0; i < N; i++)
        if (items[i].in)
            remove_item(&t, &items[i]);
    ASSERT_UINT_EQ(t.count, 0);
    ASSERT_UINT_EQ(t.mask + 1, 4);
    gw_htable_cleanup(&t);
    gw_free(items);
    collide = false;
}

TEST(removal_while_walking_held)
{
    collide = false;
    struct gw_htable t;
    gw_htable_init(&t, 8, item_hash);
    enum { N = 1000 };
    struct item *items = make_items(N);
    for (size_t i = 0; i < N; i++)
        insert(&t, &items[i]);
    size_t grown = t.mask + 1, seen = 0;
    gw_htable_hold(&t);
    for (size_t b = 0; b <= t.mask; b++) {
        while (t.buckets[b]) {
            remove_item(&t, GW_CONTAINER_OF(t.buckets[b], struct item, node));
            seen++;
        }
    }
    /* Held: every element visited once, the buckets untouched until release. */
    ASSERT_UINT_EQ(seen, N);
    ASSERT_UINT_EQ(t.mask + 1, grown);
    gw_htable_release(&t);
    ASSERT_UINT_EQ(t.mask + 1, 8);
    ASSERT_TRUE(consistent(&t, items, N));
    gw_htable_cleanup(&t);
    gw_free(items);
}

static void count_visit(struct gw_hnode *node, void *arg)
{
    GW_CONTAINER_OF(node, struct item, node)->in = false; /* visited */
    ++*(size_t *)arg;
}

static void free_visit(struct gw_hnode *node, void *arg)
{
    (void)arg;
    gw_free(GW_CONTAINER_OF(node, struct item, node));
}

TEST(each_visits_every_node_once_and_may_free_it)
{
    collide = false;
    struct gw_htable t;
    gw_htable_init(&t, 8, item_hash);
    enum { N = 300 };
    struct item *items = make_items(N);
    for (size_t i = 0; i < N; i++)
        insert(&t, &items[i]);
    size_t visits = 0;
    gw_htable_each(&t, count_visit, &visits);
    ASSERT_UINT_EQ(visits, N);
    for (size_t i = 0; i < N; i++)
        ASSERT_TRUE(!items[i].in); /* each one visited */
    gw_htable_cleanup(&t);
    gw_free(items);
    /* A table dropped whole: its nodes freed as they are visited (ASan checks no node is
     * read after its free). */
    gw_htable_init(&t, 8, item_hash);
    for (uint32_t i = 0; i < N; i++) {
        struct item *it = gw_calloc(1, sizeof(*it));
        it->key = i;
        insert(&t, it);
    }
    gw_htable_each(&t, free_visit, NULL);
    gw_htable_cleanup(&t);
}

GW_TEST_MAIN(TEST_CASE(insert_find_remove), TEST_CASE(each_visits_every_node_once_and_may_free_it),
             TEST_CASE(grows_at_load_one_and_shrinks_below_a_quarter),
             TEST_CASE(no_resizing_back_and_forth), TEST_CASE(many_collisions),
             TEST_CASE(removal_while_walking_held))
