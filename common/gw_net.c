#include "gw_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

const char *gw_format_sockaddr(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(out, cap, "[%s]:%u", host, ntohs(a->sin6_port));
    } else if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(out, cap, "%s:%u", host, ntohs(a->sin_port));
    } else {
        snprintf(out, cap, "local");
    }
    return out;
}

size_t gw_client_key(const char *name, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN];
    const char *start = name, *end = name + strlen(name);
    if (*start == '[') {
        /* "[v6]:port" */
        start++;
        const char *close = memchr(start, ']', (size_t)(end - start));
        end = close ? close : end;
    } else {
        const char *colon = memchr(start, ':', (size_t)(end - start));
        /* One colon: "v4:port"; more: a bare IPv6 address (X-Forwarded-For). */
        if (colon && !memchr(colon + 1, ':', (size_t)(end - colon - 1)))
            end = colon;
    }
    size_t n = (size_t)(end - start);
    struct in6_addr a6;
    if (n < sizeof(host)) {
        memcpy(host, start, n);
        host[n] = '\0';
        if (inet_pton(AF_INET6, host, &a6) == 1) {
            /* One subscriber gets a /64 to choose addresses from. */
            memset(a6.s6_addr + 8, 0, 8);
            inet_ntop(AF_INET6, &a6, host, sizeof(host));
            return (size_t)snprintf(out, cap, "%s/64", host);
        }
    }
    return (size_t)snprintf(out, cap, "%.*s", (int)n, start);
}
