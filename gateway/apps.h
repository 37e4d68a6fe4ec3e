/* The applications behind SockJS prefixes: the gateway's default, and the SockJS test
 * application's (echo, close, ticker, amplify, broadcast). */
#ifndef GW_APPS_H
#define GW_APPS_H

#include "gateway.h"

struct gw_apps;

struct gw_delivery;

/* Creates the prefixes and adds their routes to srv: the test application's, or the gateway's
 * one prefix served by `delivery`. */
struct gw_apps *gw_apps_new(struct gw_server *srv, const struct gw_config *cfg,
                            struct gw_delivery *delivery);
/* Frees the prefixes; connections must be gone already. */
void gw_apps_free(struct gw_apps *apps);

#endif
