#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "apps.h"
#include "config.h"
#include "gateway.h"
#include "gw_log.h"

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    GW_INFO("signal %d: shutting down", (int)sig);
    event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
    struct gw_config cfg;
    gw_config_defaults(&cfg);
    int rc = gw_config_parse_args(&cfg, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    enum gw_log_level level;
    if (gw_log_parse_level(cfg.log_level, &level) != 0) {
        fprintf(stderr, "sockjs-gateway: --log-level: unknown level '%s'\n", cfg.log_level);
        return 2;
    }
    gw_log_threshold = level;
    signal(SIGPIPE, SIG_IGN);

    struct event_base *base = event_base_new();
    if (!base || event_base_priority_init(base, 3) != 0) {
        GW_ERROR("cannot create the event loop");
        return 1;
    }
    struct gw_server srv;
    gw_server_init(&srv, base, &cfg);
    struct gw_apps *apps = gw_apps_new(&srv, &cfg);
    int status = 0;
    if (gw_server_listen(&srv) != 0) {
        status = 1;
    } else {
        struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
        struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
        event_add(sigterm, NULL);
        event_add(sigint, NULL);
        event_base_dispatch(base);
        event_free(sigterm);
        event_free(sigint);
    }
    gw_server_shutdown(&srv);
    gw_apps_free(apps);
    gw_server_cleanup(&srv);
    event_base_free(base);
    GW_INFO("stopped");
    return status;
}
