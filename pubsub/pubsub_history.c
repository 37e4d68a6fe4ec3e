#include "pubsub_history.h"

#include <string.h>

#include "gw_alloc.h"
#include "pubsub_hub.h"

void pubsub_sync_unknown(struct pubsub_sync *s, size_t i)
{
    struct pubsub_sync_channel *c = &s->ch[i];
    c->at.seq = -1;
    c->at.epoch[0] = '\0';
    c->recovered = false;
}

void pubsub_sync_add_missed(struct pubsub_sync *s, size_t i, struct pubsub_message *m)
{
    struct pubsub_sync_channel *c = &s->ch[i];
    /* Doubling from 8: a replay is at most the history size. */
    if ((c->n_missed & (c->n_missed - 1)) == 0 && c->n_missed >= 8)
        c->missed = gw_realloc(c->missed, 2 * c->n_missed * sizeof(*c->missed));
    else if (!c->missed)
        c->missed = gw_malloc(8 * sizeof(*c->missed));
    c->missed[c->n_missed++] = m;
}

void pubsub_sync_cleanup(struct pubsub_sync *s)
{
    for (size_t i = 0; i < s->n; i++) {
        struct pubsub_sync_channel *c = &s->ch[i];
        for (size_t k = 0; k < c->n_missed; k++)
            pubsub_message_unref(c->missed[k]);
        gw_free(c->missed);
        c->missed = NULL;
        c->n_missed = 0;
    }
}

bool pubsub_epoch_valid(const char *s, size_t len)
{
    if (len == 0 || len > PUBSUB_EPOCH_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= 'A' && ch <= 'Z') || ch == '.' || ch == '_' || ch == '-';
        if (!ok)
            return false;
    }
    return true;
}
