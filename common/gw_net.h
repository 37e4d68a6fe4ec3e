/* Socket address formatting for logs and per-client limits. */
#ifndef GW_NET_H
#define GW_NET_H

#include <stddef.h>
#include <sys/socket.h>

/* "127.0.0.1:8080", "[::1]:8080", or "local" for other families, into out. */
const char *gw_format_sockaddr(const struct sockaddr_storage *ss, char *out, size_t cap);

/* The address a per-client limit counts under, from a client name as gw_format_sockaddr (or
 * an X-Forwarded-For entry) gives it: without the port, and an IPv6 address reduced to its
 * /64 ("2001:db8::/64"), since one subscriber holds a whole /64. Into out (NUL-terminated);
 * returns the length snprintf would give. */
size_t gw_client_key(const char *name, char *out, size_t cap);

#endif
