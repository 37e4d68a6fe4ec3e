/* Intrusive circular doubly linked list. A detached node points to itself. */
#ifndef GW_LIST_H
#define GW_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct gw_list {
    struct gw_list *next, *prev;
};

static inline void gw_list_init(struct gw_list *l)
{
    l->next = l->prev = l;
}

static inline bool gw_list_empty(const struct gw_list *l)
{
    return l->next == l;
}

static inline void gw_list_insert_tail(struct gw_list *head, struct gw_list *node)
{
    node->prev = head->prev;
    node->next = head;
    head->prev->next = node;
    head->prev = node;
}

static inline void gw_list_remove(struct gw_list *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->next = node->prev = node;
}

#endif
