/* The applications behind SockJS prefixes: the gateway's default, and the SockJS test
 * application's (echo, close, ticker, amplify, broadcast). */
#ifndef GW_APPS_H
#define GW_APPS_H

#include "gateway.h"

struct gw_apps;

/* Creates the prefixes (test app or default) and adds their routes to srv. */
struct gw_apps *gw_apps_new(struct gw_server *srv, const struct gw_config *cfg);
/* Frees the prefixes; connections must be gone already. */
void gw_apps_free(struct gw_apps *apps);

#endif
