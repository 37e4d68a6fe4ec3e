/* bench_util: see bench_util.h. */
#include "bench_util.h"

#include <arpa/inet.h>
#include <err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void bench_parse_target(const char *spec, struct bench_target *t, const char *what)
{
    const char *colon = strrchr(spec, ':');
    size_t hlen = colon ? (size_t)(colon - spec) : 0;
    char *end;
    long port;

    memset(t, 0, sizeof(*t));
    if (!colon || hlen == 0 || hlen >= sizeof(t->host))
        errx(2, "%s %s: expected HOST:PORT", what, spec);
    memcpy(t->host, spec, hlen);
    port = strtol(colon + 1, &end, 10);
    if (*end || port <= 0 || port > 65535)
        errx(2, "%s %s: bad port", what, spec);
    t->port = (int)port;
    t->addr.sin_family = AF_INET;
    t->addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, t->host, &t->addr.sin_addr) != 1 ||
        (ntohl(t->addr.sin_addr.s_addr) >> 24) != 127)
        errx(2, "%s %s: the host must be an IPv4 address in 127.0.0.0/8", what, spec);
}

uint64_t bench_parse_uint(const char *p, size_t n, int base)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n && i < 18; i++) {
        int lower = p[i] | 0x20, d = -1;

        if (p[i] >= '0' && p[i] <= '9')
            d = p[i] - '0';
        else if (base == 16 && lower >= 'a' && lower <= 'f')
            d = lower - 'a' + 10;

        if (d < 0)
            break;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    return v;
}

double bench_parse_option_number(const char *arg, const char *name)
{
    char *end;
    double v = strtod(arg, &end);

    if (*arg == '\0' || *end || !(v >= 0) || v > 1e15)
        errx(2, "--%s %s: expected a number >= 0", name, arg);
    return v;
}

rlim_t bench_raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return RLIM_INFINITY;
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur;
}

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t bench_realtime_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}

int64_t bench_monotonic_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

size_t bench_base64(const unsigned char *in, size_t n, char *out, int url)
{
    static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char safe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *tbl = url ? safe : std;
    size_t o = 0;

    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;

        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = tbl[(v >> 6) & 63];
        else if (!url)
            out[o++] = '=';
        if (i + 2 < n)
            out[o++] = tbl[v & 63];
        else if (!url)
            out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

size_t bench_jwt_mint(const struct bench_jwt *j, long i, char *out, size_t cap)
{
    /* base64url of {"alg":"HS256","typ":"JWT"} */
    static const char head[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
    char claims[400];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    int cl = snprintf(claims, sizeof(claims),
                      "{\"sub\":\"u%ld\",\"client\":\"c%ld\",\"site\":\"%s\",\"exp\":%lld}",
                      i % j->users, i % j->companies, j->site, (long long)j->exp);
    size_t o = sizeof(head) - 1;

    if (cl < 0 || (size_t)cl >= sizeof(claims) || cap < o + 1 + 4 * ((size_t)cl + 2) / 3 + 50)
        return 0;
    memcpy(out, head, o);
    out[o++] = '.';
    o += bench_base64((const unsigned char *)claims, (size_t)cl, out + o, 1);
    if (!HMAC(EVP_sha256(), j->secret, (int)strlen(j->secret), (const unsigned char *)out, o, mac,
              &mac_len) ||
        mac_len != 32)
        errx(1, "HMAC-SHA256 failed");
    out[o++] = '.';
    o += bench_base64(mac, mac_len, out + o, 1);
    return o;
}
