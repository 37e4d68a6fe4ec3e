/*
 * bench_util: small helpers the load generator and the publisher share: loopback target
 * addresses, the fd limit, clocks, base64, HS256 session tokens (JWT) and a JSON-string-safe
 * id scheme.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

/* The number (base 10 or 16) at the start of p[0..n), stopping at the first non-digit or after
 * 18 digits; 0 if none. For length and status fields of buffers that are not NUL-terminated. */
uint64_t bench_parse_uint(const char *p, size_t n, int base);

/* A server to load: an IPv4 address in 127.0.0.0/8 and a port. */
struct bench_target {
    struct sockaddr_in addr;
    char host[16]; /* dotted quad, for the Host header */
    int port;
};

/*
 * Parses "HOST:PORT" into `t`; exits with a message unless HOST is an IPv4 address in
 * 127.0.0.0/8: these tools must never load a remote host.
 */
void bench_parse_target(const char *spec, struct bench_target *t, const char *what);

/* The value of option --`name`: a number >= 0 (up to 1e15); exits with status 2 otherwise. */
double bench_parse_option_number(const char *arg, const char *name);

/* Raises the fd soft limit to the hard limit; returns the new limit (RLIM_INFINITY if unknown). */
rlim_t bench_raise_fd_limit(void);

int64_t bench_realtime_ns(void);  /* CLOCK_REALTIME: comparable across processes (latency) */
int64_t bench_monotonic_ns(void); /* CLOCK_MONOTONIC: durations */

/* base64 (RFC 4648 §4, padded) or base64url without padding (§5, as JWS uses it) of n bytes
 * into out (4 * ceil(n / 3) + 1 bytes); returns the length written. */
size_t bench_base64(const unsigned char *in, size_t n, char *out, int url);

/*
 * Session tokens: session i gets an HS256 JWT with
 *   {"sub":"u<i % users>","client":"c<i % companies>","site":"<site>","exp":<exp>}
 * Ids are strings "u123"/"c7" so that the publisher's --ids / --random-users name the same
 * channels (user:<site>:u123, client:<site>:c7).
 */
struct bench_jwt {
    const char *secret;
    const char *site;
    long users;
    long companies;
    int64_t exp; /* seconds since the epoch */
};

/* Writes session i's token into out (NUL-terminated); returns its length, or 0 if cap is too
 * small. 512 bytes is enough for sites up to 200 bytes. */
size_t bench_jwt_mint(const struct bench_jwt *j, long i, char *out, size_t cap);

#endif
