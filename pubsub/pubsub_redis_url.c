#include "pubsub_redis_url.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "gw_error.h"
#include "gw_url.h"

#define REDIS_SCHEME "redis://"
#define TLS_SCHEME "rediss://"
#define UNIX_SCHEME "unix://"

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool pubsub_redis_url_scheme(const char *url)
{
    return starts_with(url, REDIS_SCHEME) || starts_with(url, TLS_SCHEME) ||
           starts_with(url, UNIX_SCHEME);
}

const char *pubsub_redis_url_mask(const char *url, char *out, size_t cap)
{
    const char *scheme_end = strstr(url, "://");
    const char *start = scheme_end ? scheme_end + 3 : url;
    /* The last '@' ends the user info (a password may hold an unencoded '@'): hiding up to
     * there hides too much rather than too little. */
    const char *at = strrchr(start, '@');
    if (!at) {
        snprintf(out, cap, "%s", url);
        return out;
    }
    const char *colon = memchr(start, ':', (size_t)(at - start));
    if (colon) /* USER:PASSWORD: the user name is no secret */
        snprintf(out, cap, "%.*s:***%s", (int)(colon - url), url, at);
    else /* a lone user info may be a misplaced password */
        snprintf(out, cap, "%.*s***%s", (int)(start - url), url, at);
    return out;
}

/* Digits only, value in [min, max]: 0 or GW_EINVAL. */
static int parse_number(const char *s, size_t len, long min, long max, long *out)
{
    if (len == 0 || len > 10)
        return GW_EINVAL;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return GW_EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return GW_EINVAL;
    *out = v;
    return 0;
}

static int fail(const char **reason, const char *why)
{
    *reason = why;
    return GW_EINVAL;
}

/* USER:PASSWORD (len bytes) into out; USER may be empty, PASSWORD may not be missing. */
static int parse_userinfo(const char *info, size_t len, struct pubsub_redis_url *out,
                          const char **reason)
{
    const char *colon = memchr(info, ':', len);
    if (!colon)
        return fail(reason, "user info without a password (write USER:PASSWORD@ or :PASSWORD@)");
    size_t user_len = (size_t)(colon - info);
    long n = gw_percent_decode(info, user_len, out->user, sizeof(out->user));
    if (n == GW_ELIMIT)
        return fail(reason, "user name too long");
    if (n < 0)
        return fail(reason, "bad percent-encoding in the user name");
    n = gw_percent_decode(colon + 1, len - user_len - 1, out->password, sizeof(out->password));
    if (n == GW_ELIMIT)
        return fail(reason, "password too long");
    if (n < 0)
        return fail(reason, "bad percent-encoding in the password");
    out->has_password = true;
    return 0;
}

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

/* HOST[:PORT][/DB] (the part after the user info). */
static int parse_tcp(const char *p, struct pubsub_redis_url *out, const char **reason)
{
    const char *host = p, *host_end;
    if (*p == '[') {
        host = p + 1;
        host_end = strchr(host, ']');
        if (!host_end)
            return fail(reason, "'[' without ']' around an IPv6 address");
        p = host_end + 1;
        size_t len = (size_t)(host_end - host);
        struct in6_addr a6;
        if (len == 0 || len >= sizeof(out->host))
            return fail(reason, "bad IPv6 address");
        memcpy(out->host, host, len);
        out->host[len] = '\0';
        if (inet_pton(AF_INET6, out->host, &a6) != 1)
            return fail(reason, "bad IPv6 address");
    } else {
        host_end = p + strcspn(p, ":/?#");
        size_t len = (size_t)(host_end - host);
        if (len == 0)
            return fail(reason, "no host");
        if (len >= sizeof(out->host))
            return fail(reason, "host name too long");
        for (size_t i = 0; i < len; i++)
            if (!host_char(host[i]))
                return fail(reason, "bad character in the host name");
        memcpy(out->host, host, len);
        out->host[len] = '\0';
        p = host_end;
    }
    out->port = PUBSUB_REDIS_DEFAULT_PORT;
    if (*p == ':') {
        p++;
        size_t len = strcspn(p, "/?#");
        long port;
        if (parse_number(p, len, 1, 65535, &port) != 0)
            return fail(reason, "bad port (1..65535)");
        out->port = (int)port;
        p += len;
    }
    if (*p == '/') {
        p++;
        long db;
        size_t len = strcspn(p, "?#");
        if (len > 0 && parse_number(p, len, 0, PUBSUB_REDIS_DB_MAX, &db) != 0)
            return fail(reason, "bad database number (/N, N a number from 0)");
        out->db = len > 0 ? (int)db : -1;
        p += len;
    }
    if (*p != '\0')
        return fail(reason, "unexpected text after the host, port and database (no query or "
                            "fragment on redis://)");
    return 0;
}

/* /PATH[?db=N] */
static int parse_unix(const char *p, struct pubsub_redis_url *out, const char **reason)
{
    if (*p != '/')
        return fail(reason, "the socket path must be absolute (unix:///PATH)");
    size_t len = strcspn(p, "?#");
    if (len >= sizeof(out->path))
        return fail(reason, "socket path too long");
    memcpy(out->path, p, len);
    out->path[len] = '\0';
    p += len;
    if (*p == '?') {
        p++;
        if (!starts_with(p, "db="))
            return fail(reason, "the only query parameter of unix:// is db=N");
        p += 3;
        long db;
        if (parse_number(p, strlen(p), 0, PUBSUB_REDIS_DB_MAX, &db) != 0)
            return fail(reason, "bad database number (?db=N, N a number from 0)");
        out->db = (int)db;
        p += strlen(p);
    }
    if (*p != '\0')
        return fail(reason, "unexpected text after the socket path");
    return 0;
}

int pubsub_redis_url_parse(const char *url, struct pubsub_redis_url *out, const char **reason)
{
    memset(out, 0, sizeof(*out));
    out->db = -1;
    pubsub_redis_url_mask(url, out->masked, sizeof(out->masked));
    if (starts_with(url, TLS_SCHEME))
        return fail(reason, "rediss:// (TLS) is not available: this build's hiredis has no SSL "
                            "support; reach Redis through a TLS tunnel on loopback (stunnel, "
                            "haproxy) with redis://127.0.0.1:PORT");
    bool is_unix = starts_with(url, UNIX_SCHEME);
    if (!is_unix && !starts_with(url, REDIS_SCHEME))
        return fail(reason, "expected redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or "
                            "unix://[[USER]:PASSWORD@]/PATH[?db=N]");
    const char *p = url + (is_unix ? strlen(UNIX_SCHEME) : strlen(REDIS_SCHEME));
    /* Where the user info ends: for redis:// the last '@' (host, port and database hold none,
     * a password may); for unix:// the first "@/", as the path may hold '@'. */
    const char *at = NULL;
    if (is_unix) {
        if (*p != '/') {
            at = strstr(p, "@/");
            if (!at)
                return fail(reason, "the socket path must be absolute (unix:///PATH)");
        }
    } else {
        at = strrchr(p, '@');
    }
    /* Masked where the parser split, so that a path with '@' is shown whole. */
    const char *colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
    if (colon)
        snprintf(out->masked, sizeof(out->masked), "%.*s:***%s", (int)(colon - url), url, at);
    else if (!at)
        snprintf(out->masked, sizeof(out->masked), "%s", url);
    if (at) {
        int rc = parse_userinfo(p, (size_t)(at - p), out, reason);
        if (rc != 0)
            return rc;
        p = at + 1;
    }
    out->unix_socket = is_unix;
    return is_unix ? parse_unix(p, out, reason) : parse_tcp(p, out, reason);
}
