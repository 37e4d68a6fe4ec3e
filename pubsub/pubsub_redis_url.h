/* Redis URLs as operators write them (--engine):
 *
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]     HOST a name, an IPv4 address or [IPv6]
 *   unix://[[USER]:PASSWORD@]/PATH[?db=N]          also unix:///PATH
 *
 * USER and PASSWORD are percent-decoded (write %40 for '@', %3A for ':' in USER, %2F for '/').
 * USER needs a password (Redis 6 ACL: AUTH USER PASSWORD); a password alone is AUTH PASSWORD.
 * rediss:// (TLS) is refused: the hiredis this is built with has no SSL.
 *
 * The masked form, for logs and messages, shows the password as "***": a password must never
 * reach a log line, /api/stats or an error message. */
#ifndef PUBSUB_REDIS_URL_H
#define PUBSUB_REDIS_URL_H

#include <stdbool.h>
#include <stddef.h>

#define PUBSUB_REDIS_DEFAULT_PORT 6379
/* A DNS name is at most 253 bytes; a unix socket path fits sockaddr_un.sun_path (108). */
#define PUBSUB_REDIS_HOST_MAX 254
#define PUBSUB_REDIS_PATH_MAX 108
#define PUBSUB_REDIS_USER_MAX 256
#define PUBSUB_REDIS_PASSWORD_MAX 512
/* SELECT takes what fits Redis' `databases` setting; this only bounds the number written. */
#define PUBSUB_REDIS_DB_MAX 999999999
#define PUBSUB_REDIS_MASKED_MAX                                                                    \
    (sizeof("redis://") + PUBSUB_REDIS_USER_MAX * 3 + sizeof(":***@[]:65535/") +                   \
     PUBSUB_REDIS_HOST_MAX + PUBSUB_REDIS_PATH_MAX + sizeof("?db=999999999"))

struct pubsub_redis_url {
    bool unix_socket;
    char host[PUBSUB_REDIS_HOST_MAX]; /* without [ ] for IPv6; "" for a unix socket */
    int port;                         /* 0 for a unix socket */
    char path[PUBSUB_REDIS_PATH_MAX]; /* the socket's path */
    bool has_password;
    char user[PUBSUB_REDIS_USER_MAX]; /* "" when AUTH takes the password alone */
    char password[PUBSUB_REDIS_PASSWORD_MAX];
    int db; /* -1: none given (no SELECT) */
    char masked[PUBSUB_REDIS_MASKED_MAX];
};

/* Parses url into *out. Returns 0, or GW_EINVAL with *reason set to a static sentence (never
 * holding the URL's password). */
int pubsub_redis_url_parse(const char *url, struct pubsub_redis_url *out, const char **reason);

/* Whether url names a Redis engine (redis://, rediss:// or unix://), valid or not. */
bool pubsub_redis_url_scheme(const char *url);

/* A printable form of any --engine value, valid or not, with whatever may be a password
 * replaced by "***", into out (cap bytes, truncated). Returns out. */
const char *pubsub_redis_url_mask(const char *url, char *out, size_t cap);

#endif
