#include "transport.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gw_alloc.h"
#include "gw_hash.h"
#include "gw_refbuf.h"

const char *tp_request_header(const struct tp_request *req, const char *name, size_t *len)
{
    size_t name_len = strlen(name);
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct tp_header *h = &req->headers[i];
        if (h->name_len == name_len && strncasecmp(h->name, name, name_len) == 0) {
            if (len)
                *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

bool tp_header_has_token(const struct tp_request *req, const char *name, const char *token)
{
    size_t len;
    const char *v = tp_request_header(req, name, &len);
    if (!v)
        return false;
    size_t token_len = strlen(token);
    const char *end = v + len;
    while (v < end) {
        while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
            v++;
        const char *start = v;
        while (v < end && *v != ',')
            v++;
        const char *stop = v;
        while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t'))
            stop--;
        if ((size_t)(stop - start) == token_len && strncasecmp(start, token, token_len) == 0)
            return true;
    }
    return false;
}

static void head_append(struct tp_head *h, const char *fmt, va_list ap)
{
    size_t room = sizeof(h->buf) - h->len;
    int n = vsnprintf(h->buf + h->len, room, fmt, ap);
    /* Heads are built from bounded request values (header block limit), so this holds. */
    GW_ASSERT(n >= 0 && (size_t)n < room);
    h->len += (size_t)n;
}

static void head_printf(struct tp_head *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void head_printf(struct tp_head *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    head_append(h, fmt, ap);
    va_end(ap);
}

void tp_head_add(struct tp_head *h, const char *name, const char *fmt, ...)
{
    head_printf(h, "%s: ", name);
    va_list ap;
    va_start(ap, fmt);
    head_append(h, fmt, ap);
    va_end(ap);
    head_printf(h, "\r\n");
}

/* At most this much of a client-supplied value is echoed into a response head. */
#define ECHO_MAX 1024

void tp_head_start(struct tp_head *h, const struct tp_request *req, int status, const char *reason,
                   const char *content_type, unsigned flags)
{
    h->status = status;
    h->len = 0;
    head_printf(h, "HTTP/1.1 %d %s\r\n", status, reason);
    if (content_type)
        tp_head_add(h, "Content-Type", "%s", content_type);
    if (flags & TP_NO_CACHE)
        tp_head_add(h, "Cache-Control",
                    "no-store, no-cache, no-transform, must-revalidate, max-age=0");
    if (flags & TP_REVALIDATE)
        tp_head_add(h, "Cache-Control", "no-cache");
    if (flags & TP_LONG_CACHE) {
        tp_head_add(h, "Cache-Control", "public, max-age=31536000");
        char date[64];
        time_t later = time(NULL) + 31536000;
        struct tm tm;
        gmtime_r(&later, &tm);
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        tp_head_add(h, "Expires", "%s", date);
    }
    if (flags & TP_CORS) {
        size_t len;
        const char *origin = tp_request_header(req, "Origin", &len);
        if (origin && len > 0 && len <= ECHO_MAX) {
            tp_head_add(h, "Access-Control-Allow-Origin", "%.*s", (int)len, origin);
            tp_head_add(h, "Access-Control-Allow-Credentials", "true");
        } else {
            tp_head_add(h, "Access-Control-Allow-Origin", "*");
        }
        tp_head_add(h, "Vary", "Origin");
        const char *allow = tp_request_header(req, "Access-Control-Request-Headers", &len);
        if (allow && len > 0 && len <= ECHO_MAX)
            tp_head_add(h, "Access-Control-Allow-Headers", "%.*s", (int)len, allow);
    }
    if ((flags & TP_COOKIE) && sockjs_server_options(req->server)->cookie_needed) {
        size_t len;
        const char *cookie = tp_request_header(req, "Cookie", &len);
        const char *value = "dummy";
        size_t value_len = 5;
        /* Cookie: a=b; JSESSIONID=v; c=d */
        for (const char *p = cookie, *end = cookie ? cookie + len : NULL; p && p < end;) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *stop = semi ? semi : end;
            if ((size_t)(stop - p) > 11 && memcmp(p, "JSESSIONID=", 11) == 0 &&
                (size_t)(stop - p - 11) <= ECHO_MAX) {
                value = p + 11;
                value_len = (size_t)(stop - value);
                break;
            }
            p = stop;
        }
        tp_head_add(h, "Set-Cookie", "JSESSIONID=%.*s; path=/", (int)value_len, value);
    }
}

static void head_connection(struct tp_head *h, const struct tp_request *req, bool keep_alive)
{
    if (!keep_alive)
        tp_head_add(h, "Connection", "close");
    else if (req->http_major == 1 && req->http_minor == 0)
        tp_head_add(h, "Connection", "keep-alive");
}

void tp_respond(const struct tp_request *req, struct tp_head *h, const void *body, size_t len)
{
    head_connection(h, req, req->keep_alive);
    /* RFC 9110: no Content-Length on 204 and 304. */
    if (h->status != 204 && h->status != 304)
        tp_head_add(h, "Content-Length", "%zu", len);
    head_printf(h, "\r\n");
    struct tp_conn *c = req->conn;
    tp_conn_write(c, h->buf, h->len);
    if (len)
        tp_conn_write(c, body, len);
    tp_conn_end_response(c, req->keep_alive);
}

void tp_defer(struct tp_deferred *d, const struct tp_request *req)
{
    *d = (struct tp_deferred){req->conn, req->keep_alive, req->http_minor};
}

void tp_respond_deferred(const struct tp_deferred *d, int status, const char *reason,
                         const char *content_type, unsigned flags, const void *body, size_t len)
{
    struct tp_request req = {
        .conn = d->conn, .http_major = 1, .http_minor = d->http_minor, .keep_alive = d->keep_alive};
    struct tp_head h;
    tp_head_start(&h, &req, status, reason, content_type,
                  flags & (unsigned)(TP_NO_CACHE | TP_LONG_CACHE));
    tp_respond(&req, &h, body, len);
}

void tp_respond_tagged(const struct tp_request *req, const char *content_type, const void *body,
                       size_t len, unsigned cache, bool any_origin)
{
    char etag[24];
    snprintf(etag, sizeof(etag), "\"%016" PRIx64 "\"", gw_fnv64(GW_FNV64_INIT, body, len));
    size_t match_len;
    const char *match = tp_request_header(req, "If-None-Match", &match_len);
    struct tp_head h;
    if (match && match_len == strlen(etag) && memcmp(match, etag, match_len) == 0) {
        tp_head_start(&h, req, 304, "Not Modified", NULL, cache);
        tp_head_add(&h, "ETag", "%s", etag);
        tp_respond(req, &h, NULL, 0);
        return;
    }
    tp_head_start(&h, req, 200, "OK", content_type, cache);
    tp_head_add(&h, "ETag", "%s", etag);
    if (any_origin)
        tp_head_add(&h, "Access-Control-Allow-Origin", "*");
    tp_respond(req, &h, body, len);
}

void tp_respond_text(const struct tp_request *req, int status, const char *reason, unsigned flags,
                     const char *body)
{
    struct tp_head h;
    tp_head_start(&h, req, status, reason, "text/plain; charset=UTF-8", TP_NO_CACHE | flags);
    tp_respond(req, &h, body, strlen(body));
}

void tp_respond_crowded(const struct tp_request *req, unsigned flags)
{
    static const char body[] = "Too many sessions from this address.\n";
    struct tp_head h;
    tp_head_start(&h, req, 429, "Too Many Requests", "text/plain; charset=UTF-8",
                  TP_NO_CACHE | flags);
    /* One of the address's sessions is freed at the latest a disconnect delay after its
     * client lets go of it. */
    uint32_t disconnect_ms = sockjs_server_options(req->server)->disconnect_ms;
    tp_head_add(&h, "Retry-After", "%" PRIu32, disconnect_ms / 1000 + 1);
    tp_respond(req, &h, body, sizeof(body) - 1);
}

bool tp_session_access(const struct tp_request *req, const char *id, size_t len, bool opens,
                       unsigned flags, struct sockjs_session **out)
{
    struct sockjs_open_info query = {.query = req->query, .query_len = req->query_len};
    uint32_t retry_after_s;
    enum sockjs_access a = sockjs_session_access(
        req->server, id, len, &query, tp_conn_peer(req->conn), opens, out, &retry_after_s);
    if (a == SOCKJS_ACCESS_OK)
        return true;
    if (a == SOCKJS_ACCESS_UNKNOWN) {
        tp_respond_text(req, 404, "Not Found", flags, "Session not found.\n");
        return false;
    }
    if (a == SOCKJS_ACCESS_CROWDED) {
        tp_respond_crowded(req, flags);
        return false;
    }
    static const char body[] = "Too many requests for unknown sessions.\n";
    struct tp_head h;
    tp_head_start(&h, req, 429, "Too Many Requests", "text/plain; charset=UTF-8",
                  TP_NO_CACHE | flags);
    tp_head_add(&h, "Retry-After", "%" PRIu32, retry_after_s);
    tp_respond(req, &h, body, sizeof(body) - 1);
    return false;
}

void tp_stream_start(struct tp_stream *s, const struct tp_request *req, struct tp_head *h)
{
    s->conn = req->conn;
    s->chunked = req->http_major > 1 || (req->http_major == 1 && req->http_minor >= 1);
    /* An HTTP/1.0 stream can only end by closing the connection. */
    s->keep_alive = s->chunked && req->keep_alive;
    head_connection(h, req, s->keep_alive);
    if (s->chunked)
        tp_head_add(h, "Transfer-Encoding", "chunked");
    head_printf(h, "\r\n");
    tp_conn_write(s->conn, h->buf, h->len);
}

void tp_stream_write(struct tp_stream *s, const void *data, size_t len)
{
    if (len == 0)
        return;
    struct tp_conn *c = s->conn;
    if (s->chunked) {
        char size[24];
        int n = snprintf(size, sizeof(size), "%zx\r\n", len);
        tp_conn_write(c, size, (size_t)n);
        tp_conn_write(c, data, len);
        tp_conn_write(c, "\r\n", 2);
    } else {
        tp_conn_write(c, data, len);
    }
}

void tp_stream_write_ref(struct tp_stream *s, struct gw_refbuf *b, const char *suffix,
                         size_t suffix_len)
{
    struct tp_conn *c = s->conn;
    if (s->chunked) {
        char size[24];
        int n = snprintf(size, sizeof(size), "%zx\r\n", (size_t)b->len + suffix_len);
        tp_conn_write(c, size, (size_t)n);
    }
    tp_conn_write_ref(c, b, 0, b->len);
    tp_conn_write(c, suffix, suffix_len);
    if (s->chunked)
        tp_conn_write(c, "\r\n", 2);
}

void tp_stream_end(struct tp_stream *s)
{
    struct tp_conn *c = s->conn;
    if (s->chunked)
        tp_conn_write(c, "0\r\n\r\n", 5);
    tp_conn_end_response(c, s->keep_alive);
}
