/* History and recovery: every channel keeps its last messages for a while, and a subscriber can
 * learn where its channels stand and get what it missed since a position it saw before.
 *
 * A position is (seq, epoch): seq numbers a channel's messages (pubsub_publish.seqs), the epoch
 * names the life of its counter. The epoch changes whenever the counter, and with it the history,
 * is lost (first use, expiry, Redis flushed or restarted without persistence), so a position of
 * another epoch can never be mistaken for one of this epoch.
 *
 * A sync asks the engine for the positions of up to three channels and, for those with a
 * `since`, the messages after it. It answers once every publish the engine had numbered when it
 * read the positions has also been delivered through the hub: a subscriber that subscribed
 * before asking, and kept the messages delivered meanwhile, drops those with seq <= the answered
 * position and misses none and gets none twice. */
#ifndef PUBSUB_HISTORY_H
#define PUBSUB_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pubsub_message;

/* The longest epoch accepted from a client; epochs made here are shorter. */
#define PUBSUB_EPOCH_MAX 40
/* user, client, global */
#define PUBSUB_SYNC_MAX_CHANNELS 3

struct pubsub_history_settings {
    uint32_t size;   /* messages kept per channel; 0: no history (recovery always fails) */
    uint32_t ttl_ms; /* a channel's history goes this long after its last message; 0: off */
};

struct pubsub_position {
    int64_t seq; /* -1: unknown (the engine could not be asked) */
    char epoch[PUBSUB_EPOCH_MAX + 1];
};

struct pubsub_sync_channel {
    /* Asked. */
    char *name;   /* the channel (pubsub_node_sync() keeps a copy) */
    bool recover; /* whether to look for the messages after `since` */
    struct pubsub_position since;
    /* Answered. */
    struct pubsub_position at;
    bool recovered; /* every message after `since` is in `missed`, in order */
    struct pubsub_message **missed;
    size_t n_missed;
};

struct pubsub_sync {
    size_t n;
    /* Set by the asker that no longer wants the answer: an engine may skip asking Redis (the
     * answer is then unknown), but still calls done. */
    bool cancelled;
    struct pubsub_sync_channel ch[PUBSUB_SYNC_MAX_CHANNELS];
};

/* Fills a sync's answer for channel i as unknown (not recovered, nothing missed). */
void pubsub_sync_unknown(struct pubsub_sync *s, size_t i);
/* Keeps one more missed message of channel i (takes the reference). */
void pubsub_sync_add_missed(struct pubsub_sync *s, size_t i, struct pubsub_message *m);
/* Frees the missed messages' references. */
void pubsub_sync_cleanup(struct pubsub_sync *s);

/* Whether an epoch from outside is one this code could have made: 1..PUBSUB_EPOCH_MAX bytes of
 * [0-9a-zA-Z._-] (so that it goes to Redis and back to the browser without escaping). */
bool pubsub_epoch_valid(const char *s, size_t len);

#endif
