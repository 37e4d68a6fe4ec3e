#include "pubsub_hub.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_alloc.h"
#include "gw_buf.h"
#include "pubsub_channel.h"

struct pubsub_channel {
    struct pubsub_channel *next; /* hash chain */
    struct gw_list subs;
    uint32_t hash;
    bool delivering;             /* freed by the delivery loop, not by unsubscribe */
    char name[];
};

struct pubsub_hub {
    struct pubsub_channel **table;
    size_t mask;
    pubsub_hub_cb cb;
    void *arg;
    struct pubsub_hub_stats stats;
};

void pubsub_message_unref(struct pubsub_message *m)
{
    if (!m)
        return;
    GW_ASSERT(m->refs > 0);
    if (--m->refs)
        return;
    for (size_t i = 0; i < PUBSUB_MESSAGE_FORMS; i++)
        gw_refbuf_unref(m->forms[i]);
    gw_refbuf_unref(m->json);
    pubsub_publish_unref(m->pub);
    gw_free(m);
}

struct pubsub_hub *pubsub_hub_new(pubsub_hub_cb cb, void *arg)
{
    struct pubsub_hub *hub = gw_calloc(1, sizeof(*hub));
    hub->cb = cb;
    hub->arg = arg;
    hub->mask = 1023;
    hub->table = gw_calloc(hub->mask + 1, sizeof(*hub->table));
    return hub;
}

void pubsub_hub_free(struct pubsub_hub *hub)
{
    GW_ASSERT(hub->stats.channels == 0);
    gw_free(hub->table);
    gw_free(hub);
}

static struct pubsub_channel **find_slot(struct pubsub_hub *hub, const char *name, size_t len,
                                         uint32_t h)
{
    struct pubsub_channel **p = &hub->table[h & hub->mask];
    while (*p && ((*p)->hash != h || strncmp((*p)->name, name, len) != 0 || (*p)->name[len]))
        p = &(*p)->next;
    return p;
}

static void grow(struct pubsub_hub *hub)
{
    size_t size = (hub->mask + 1) * 2;
    struct pubsub_channel **table = gw_calloc(size, sizeof(*table));
    for (size_t i = 0; i <= hub->mask; i++) {
        for (struct pubsub_channel *c = hub->table[i], *next; c; c = next) {
            next = c->next;
            c->next = table[c->hash & (size - 1)];
            table[c->hash & (size - 1)] = c;
        }
    }
    gw_free(hub->table);
    hub->table = table;
    hub->mask = size - 1;
}

void pubsub_hub_subscribe(struct pubsub_hub *hub, struct pubsub_sub *sub, const char *name)
{
    GW_ASSERT(sub->channel == NULL);
    size_t len = strlen(name);
    uint32_t h = pubsub_channel_hash(name, len);
    struct pubsub_channel **slot = find_slot(hub, name, len, h);
    struct pubsub_channel *c = *slot;
    if (!c) {
        if (hub->stats.channels >= hub->mask + 1) {
            grow(hub);
            slot = find_slot(hub, name, len, h);
        }
        c = gw_calloc(1, sizeof(*c) + len + 1);
        memcpy(c->name, name, len);
        c->hash = h;
        gw_list_init(&c->subs);
        *slot = c;
        hub->stats.channels++;
    }
    gw_list_insert_tail(&c->subs, &sub->node);
    sub->channel = c;
    hub->stats.subscriptions++;
}

static void channel_remove(struct pubsub_hub *hub, struct pubsub_channel *c)
{
    struct pubsub_channel **slot = find_slot(hub, c->name, strlen(c->name), c->hash);
    GW_ASSERT(*slot == c);
    *slot = c->next;
    hub->stats.channels--;
    gw_free(c);
}

void pubsub_hub_unsubscribe(struct pubsub_hub *hub, struct pubsub_sub *sub)
{
    struct pubsub_channel *c = sub->channel;
    if (!c)
        return;
    gw_list_remove(&sub->node);
    sub->channel = NULL;
    hub->stats.subscriptions--;
    if (gw_list_empty(&c->subs) && !c->delivering)
        channel_remove(hub, c);
}

const char *pubsub_sub_channel(const struct pubsub_sub *sub)
{
    return sub->channel ? sub->channel->name : NULL;
}

/* {"scope":..,"site":..,"event":..,"data":..,"seq":..}; names are control-free, so escaping
 * '"' and '\' is all JSON asks of them. */
static void append_json_string(struct gw_buf *b, const char *s)
{
    gw_buf_append(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            gw_buf_append(b, "\\", 1);
        gw_buf_append(b, p, 1);
    }
    gw_buf_append(b, "\"", 1);
}

static struct pubsub_message *message_new(const struct pubsub_publish *pub, size_t k)
{
    struct gw_buf b = GW_BUF_INIT;
    gw_buf_appendf(&b, "{\"scope\":\"%s\",\"site\":", pubsub_scope_name(pub->scope));
    append_json_string(&b, pub->sites[k / (pub->n_ids ? pub->n_ids : 1)]);
    gw_buf_append_str(&b, ",\"event\":");
    append_json_string(&b, pub->event);
    gw_buf_append_str(&b, ",\"data\":");
    gw_buf_append(&b, pub->data, pub->data_len);
    if (pub->seqs)
        gw_buf_appendf(&b, ",\"seq\":%" PRId64 "}", pub->seqs[k]);
    else
        gw_buf_append_str(&b, ",\"seq\":null}");
    struct pubsub_message *m = gw_calloc(1, sizeof(*m));
    m->refs = 1;
    m->scope = pub->scope;
    m->event = pub->event;
    m->pub = pubsub_publish_ref((struct pubsub_publish *)pub);
    m->json = gw_refbuf_copy(b.data, b.len);
    gw_buf_release(&b);
    return m;
}

void pubsub_hub_deliver(struct pubsub_hub *hub, const struct pubsub_publish *pub)
{
    hub->stats.publishes++;
    size_t n = pubsub_publish_channels(pub);
    char name[PUBSUB_CHANNEL_NAME_MAX];
    for (size_t k = 0; k < n; k++) {
        size_t len = pubsub_channel_name_of(pub, k, name, sizeof(name));
        struct pubsub_channel *c = *find_slot(hub, name, len, pubsub_channel_hash(name, len));
        if (!c)
            continue;
        struct pubsub_message *m = message_new(pub, k);
        hub->stats.messages++;
        c->delivering = true;
        struct gw_list *node = c->subs.next;
        while (node != &c->subs) {
            struct gw_list *next = node->next;
            hub->stats.deliveries++;
            hub->cb(hub->arg, GW_CONTAINER_OF(node, struct pubsub_sub, node), m);
            node = next;
        }
        c->delivering = false;
        if (gw_list_empty(&c->subs))
            channel_remove(hub, c);
        pubsub_message_unref(m);
    }
}

const struct pubsub_hub_stats *pubsub_hub_stats(const struct pubsub_hub *hub)
{
    return &hub->stats;
}
