/* Socket address formatting for logs. */
#ifndef GW_NET_H
#define GW_NET_H

#include <stddef.h>
#include <sys/socket.h>

/* "127.0.0.1:8080", "[::1]:8080", or "local" for other families, into out. */
const char *gw_format_sockaddr(const struct sockaddr_storage *ss, char *out, size_t cap);

#endif
