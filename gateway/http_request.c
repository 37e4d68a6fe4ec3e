/* One HTTP/1.1 request of a connection: http-parser callbacks into pooled storage, the strict
 * RFC 9112 checks where the non-strict http-parser is lenient (scan_header_lines,
 * refuse_ambiguous_headers, check_chunked), X-Forwarded-For, the refusals (fail_request) and
 * the dispatch of a complete request to the server's route. The connection that reads the
 * bytes is http_conn.c. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "gw_alloc.h"
#include "gw_buf.h"
#include "gw_error.h"
#include "gw_log.h"
#include "gw_pool.h"
#include "gw_url.h"
#include "http_conn_internal.h"

struct header_ref {
    uint32_t name_off, name_len, value_off, value_len;
};

/* Where scan_header_lines is: the start line (after any empty lines before it), then each
 * header line, until the empty line that ends the head. */
enum line_scan {
    SCAN_BEFORE_START_LINE,
    SCAN_IN_LINE,
    SCAN_LINE_START,
    SCAN_EMPTY_LINE_CR,
    SCAN_DONE,
};

/* Where check_chunked is in a chunked body (RFC 9112 7.1). */
enum chunk_scan {
    CHUNK_SIZE_START,
    CHUNK_SIZE,
    CHUNK_SIZE_BWS, /* whitespace after the size: only before an extension */
    CHUNK_EXT,
    CHUNK_SIZE_LF,
    CHUNK_DATA,
    CHUNK_DATA_CR,
    CHUNK_DATA_LF,
    CHUNK_TRAILER_START,
    CHUNK_TRAILER,
    CHUNK_TRAILER_LF,
    CHUNK_END_LF,
    CHUNK_DONE,
};

/* Exists only while a request is being read or dispatched. */
struct http_req {
    http_parser parser;
    struct gw_buf raw; /* url, then header names and values */
    struct gw_buf body;
    struct header_ref *headers;
    uint32_t n_headers;
    uint32_t url_len;
    uint32_t header_bytes;
    bool in_value; /* the last header callback was a value */
    bool headers_done;
    bool complete;
    uint8_t line_scan;        /* enum line_scan: where scan_header_lines is in the head */
    uint8_t chunk_scan;       /* enum chunk_scan: where check_chunked is in the body */
    uint64_t chunk_left;      /* bytes of the current chunk's data still to come */
    int error_status;         /* set by a callback that refused the request */
    const char *error_reason; /* with error_status */
};

/* Requests are parked in the server's pool with their buffers, so that parsing a request
 * (an upgrade above all) allocates nothing once the pool is warm; big buffers are not kept. */
#define REQ_POOL_MAX 64
#define REQ_KEEP_BYTES 4096

static void req_destroy(void *obj)
{
    struct http_req *r = obj;
    gw_buf_release(&r->raw);
    gw_buf_release(&r->body);
    gw_free(r->headers);
    gw_free(r);
}

void gw_conn__req_pool_init(struct gw_pool *pool)
{
    *pool = (struct gw_pool)GW_POOL_INIT(REQ_POOL_MAX);
}

void gw_conn__req_pool_cleanup(struct gw_pool *pool)
{
    gw_pool_release(pool, req_destroy);
}

static struct http_req *req_new(struct gw_conn *c)
{
    bool parked = c->srv->conns.req_pool.first != NULL;
    struct http_req *r = gw_pool_get(&c->srv->conns.req_pool, sizeof(*r));
    if (!parked) {
        memset(r, 0, sizeof(*r));
    } else { /* its buffers are kept, emptied */
        r->raw.len = 0;
        r->body.len = 0;
        r->n_headers = 0;
        r->url_len = 0;
        r->header_bytes = 0;
        r->in_value = false;
        r->headers_done = false;
        r->complete = false;
        r->line_scan = SCAN_BEFORE_START_LINE;
        r->chunk_scan = CHUNK_SIZE_START;
        r->chunk_left = 0;
        r->error_status = 0;
        r->error_reason = NULL;
    }
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = c;
    return r;
}

void gw_conn__req_free(struct gw_conn *c)
{
    struct http_req *r = c->req;
    if (!r)
        return;
    c->req = NULL;
    if (r->raw.cap > REQ_KEEP_BYTES)
        gw_buf_release(&r->raw);
    if (r->body.cap > REQ_KEEP_BYTES)
        gw_buf_release(&r->body);
    gw_pool_put(&c->srv->conns.req_pool, r, req_destroy);
}

/* ---- HTTP errors ---------------------------------------------------------------------------- */

static const char *status_reason(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 505:
        return "HTTP Version Not Supported";
    }
    return "Error";
}

/* Answers a request we refuse to read further, then closes. */
void gw_conn__fail_request(struct gw_conn *c, int status, const char *why)
{
    GW_INFO("%s: %d %s: %s", gw_conn__peer_name(c), status, status_reason(status), why);
    char body[256];
    int body_len = c->srv->json_errors ? snprintf(body, sizeof(body), "{\"error\":\"%s\"}", why)
                                       : snprintf(body, sizeof(body), "%s\n", why);
    char buf[512];
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %d\r\n"
                     "Connection: close\r\n"
                     "\r\n"
                     "%s",
                     status, status_reason(status),
                     c->srv->json_errors ? "application/json" : "text/plain; charset=UTF-8",
                     body_len, body);
    c->state = ST_BUSY;
    gw_conn__write(&c->base, buf, (size_t)n);
    gw_conn__close(&c->base, true);
}

/* ---- request parsing ------------------------------------------------------------------------ */

/* http-parser's callbacks stop the parser with any non-zero result: ours return GW_ELIMIT or
 * GW_EPROTO, the status and reason to answer with set in the request. */

static struct gw_conn *parser_conn(http_parser *p)
{
    return p->data;
}

static int count_header_bytes(struct gw_conn *c, size_t n)
{
    struct http_req *r = c->req;
    r->header_bytes += (uint32_t)n;
    if (r->header_bytes > c->srv->cfg->max_header_bytes) {
        r->error_status = 431;
        r->error_reason = "request header too large";
        return GW_ELIMIT;
    }
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct gw_conn *c = parser_conn(p);
    if (count_header_bytes(c, n) != 0)
        return GW_ELIMIT;
    /* The non-strict http-parser lets tabs and other controls into the target, where other
     * parsers end it (RFC 9112 3.2: no whitespace or controls in a request-target). */
    for (size_t i = 0; i < n; i++) {
        if ((uint8_t)at[i] < 0x21 || at[i] == 0x7f) {
            c->req->error_status = 400;
            c->req->error_reason = "control character in the request target";
            return GW_EPROTO;
        }
    }
    gw_buf_append(&c->req->raw, at, n);
    c->req->url_len += (uint32_t)n;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct gw_conn *c = parser_conn(p);
    struct http_req *r = c->req;
    if (count_header_bytes(c, n + 4) != 0)
        return GW_ELIMIT;
    /* A chunked body's trailer fields are counted but dropped: merged into the header section
     * they would add fields a proxy in front never saw as headers (RFC 9110 6.5.1). */
    if (r->headers_done)
        return 0;
    if (r->n_headers == 0 || r->in_value) {
        if (r->n_headers == c->srv->cfg->max_headers) {
            r->error_status = 431;
            r->error_reason = "too many header fields";
            return GW_ELIMIT;
        }
        if (!r->headers)
            r->headers = gw_malloc(sizeof(*r->headers) * c->srv->cfg->max_headers);
        struct header_ref *h = &r->headers[r->n_headers++];
        h->name_off = (uint32_t)r->raw.len;
        h->name_len = 0;
        h->value_off = 0;
        h->value_len = 0;
        r->in_value = false;
    }
    gw_buf_append(&r->raw, at, n);
    r->headers[r->n_headers - 1].name_len += (uint32_t)n;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct gw_conn *c = parser_conn(p);
    struct http_req *r = c->req;
    if (count_header_bytes(c, n) != 0)
        return GW_ELIMIT;
    if (r->headers_done)
        return 0; /* a trailer field (on_header_field) */
    struct header_ref *h = &r->headers[r->n_headers - 1];
    if (!r->in_value) {
        h->value_off = (uint32_t)r->raw.len;
        r->in_value = true;
    }
    gw_buf_append(&r->raw, at, n);
    h->value_len += (uint32_t)n;
    return 0;
}

static bool has_header_value(const struct http_req *r, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    for (uint32_t i = 0; i < r->n_headers; i++) {
        const struct header_ref *h = &r->headers[i];
        if (h->name_len == nl && strncasecmp(r->raw.data + h->name_off, name, nl) == 0 &&
            h->value_len == vl && strncasecmp(r->raw.data + h->value_off, value, vl) == 0)
            return true;
    }
    return false;
}

static bool header_name_is(const struct http_req *r, const struct header_ref *h, const char *name,
                           size_t len)
{
    return h->name_len == len && strncasecmp(r->raw.data + h->name_off, name, len) == 0;
}

/* Counts the codings of one Transfer-Encoding line (a comma list, empty elements allowed),
 * noting how many are chunked and whether the last one is. */
static void count_codings(const char *v, size_t len, unsigned *n, unsigned *chunked,
                          bool *last_chunked)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end == start)
            continue;
        bool is_chunked = end - start == 7 && strncasecmp(v + start, "chunked", 7) == 0;
        (*n)++;
        *chunked += is_chunked;
        *last_chunked = is_chunked;
    }
}

/* Header fields that make the message's framing or target ambiguous, which a proxy in front
 * may read differently (request smuggling): refused with 400, or 501 for a transfer coding we
 * do not implement. http-parser itself refuses two Content-Length fields, an invalid one,
 * Content-Length with Transfer-Encoding, a final coding other than chunked, control characters
 * in values and most bad name characters, but it takes spaces as part of a name, and acts on
 * "Transfer-Encoding " or "Content-Length  " spelt so. */
static bool refuse_ambiguous_headers(http_parser *p, struct http_req *r)
{
    unsigned hosts = 0, te_lines = 0, codings = 0, chunked = 0;
    bool last_chunked = false;
    for (uint32_t i = 0; i < r->n_headers; i++) {
        const struct header_ref *h = &r->headers[i];
        const char *name = r->raw.data + h->name_off;
        if (memchr(name, ' ', h->name_len)) { /* a name is a token (RFC 9110 5.1, 9112 5.1) */
            r->error_status = 400;
            r->error_reason = name[h->name_len - 1] == ' '
                                  ? "whitespace between header field name and colon"
                                  : "space in a header field name";
            return true;
        }
        if (header_name_is(r, h, "Host", 4))
            hosts++;
        if (header_name_is(r, h, "Transfer-Encoding", 17)) {
            te_lines++;
            count_codings(r->raw.data + h->value_off, h->value_len, &codings, &chunked,
                          &last_chunked);
        }
    }
    r->error_status = 400;
    if (hosts > 1) { /* RFC 9112 3.2 */
        r->error_reason = "more than one Host header field";
        return true;
    }
    if (te_lines == 0) {
        r->error_status = 0;
        return false;
    }
    /* RFC 9112 6.1: HTTP/1.0 has no transfer codings, so its framing is faulty. */
    if (p->http_major == 1 && p->http_minor == 0) {
        r->error_reason = "Transfer-Encoding in an HTTP/1.0 request";
        return true;
    }
    /* RFC 9112 6.3: a request body's length is only known when chunked comes last, once. */
    if (!last_chunked) {
        r->error_reason = "Transfer-Encoding does not end with chunked";
        return true;
    }
    if (chunked > 1) {
        r->error_reason = "chunked applied more than once";
        return true;
    }
    if (codings > 1) {
        r->error_status = 501;
        r->error_reason = "transfer coding other than chunked";
        return true;
    }
    r->error_status = 0;
    return false;
}

static int on_headers_complete(http_parser *p)
{
    struct gw_conn *c = parser_conn(p);
    struct http_req *r = c->req;
    r->headers_done = true;
    if (refuse_ambiguous_headers(p, r))
        return GW_EPROTO;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > c->srv->max_body_bytes) {
        r->error_status = 413;
        r->error_reason = "request body too large";
        return GW_ELIMIT;
    }
    if (has_header_value(r, "Expect", "100-continue"))
        gw_conn__write(&c->base, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    /* The body gets its own period, counted from here. */
    gw_timer_start(&c->timer, &c->srv->conns.header_q);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct gw_conn *c = parser_conn(p);
    struct http_req *r = c->req;
    if (r->body.len + n > c->srv->max_body_bytes) {
        r->error_status = 413;
        r->error_reason = "request body too large";
        return GW_ELIMIT;
    }
    gw_buf_append(&r->body, at, n);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct gw_conn *c = parser_conn(p);
    c->req->complete = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* The last X-Forwarded-For entry is the one our trusted proxy added: the client it saw. */
static void note_forwarded_for(struct gw_conn *c, const struct tp_request *req)
{
    c->client->forwarded[0] = '\0';
    /* Several lines are one list (RFC 9110 5.3), and a proxy appends its own line after what
     * the client sent: the entry that counts is the last of the last line. */
    const char *xff = NULL;
    size_t len = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct tp_header *h = &req->headers[i];
        if (h->name_len == 15 && strncasecmp(h->name, "X-Forwarded-For", 15) == 0) {
            xff = h->value;
            len = h->value_len;
        }
    }
    if (!xff)
        return;
    const char *start = xff + len;
    while (start > xff && start[-1] != ',')
        start--;
    const char *end = xff + len;
    while (start < end && (*start == ' ' || *start == '\t'))
        start++;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    char addr[INET6_ADDRSTRLEN];
    size_t n = (size_t)(end - start);
    unsigned char bin[sizeof(struct in6_addr)];
    if (n == 0 || n >= sizeof(addr))
        return;
    memcpy(addr, start, n);
    addr[n] = '\0';
    if (inet_pton(AF_INET, addr, bin) != 1 && inet_pton(AF_INET6, addr, bin) != 1) {
        GW_DEBUG("ignoring X-Forwarded-For entry '%s': not an address", addr);
        return;
    }
    memcpy(c->client->forwarded, addr, n + 1);
}

static void dispatch(struct gw_conn *c)
{
    struct http_req *r = c->req;
    http_parser *p = &r->parser;
    if (p->http_major != 1 || p->http_minor > 1) {
        gw_conn__fail_request(c, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
        return;
    }
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(r->raw.data, r->url_len, 0, &u) != 0 ||
        !(u.field_set & (1 << UF_PATH))) {
        gw_conn__fail_request(c, 400, "malformed request target");
        return;
    }
    struct tp_header headers[r->n_headers ? r->n_headers : 1];
    for (uint32_t i = 0; i < r->n_headers; i++) {
        headers[i].name = r->raw.data + r->headers[i].name_off;
        headers[i].name_len = r->headers[i].name_len;
        headers[i].value = r->raw.data + r->headers[i].value_off;
        headers[i].value_len = r->headers[i].value_len;
    }
    struct tp_request req = {
        .conn = &c->base,
        .method = http_method_str((enum http_method)p->method),
        .headers = headers,
        .n_headers = r->n_headers,
        .body = r->body.data ? r->body.data : "",
        .body_len = r->body.len,
        .http_major = (uint8_t)p->http_major,
        .http_minor = (uint8_t)p->http_minor,
        .keep_alive = http_should_keep_alive(p) != 0,
        .max_message = c->srv->cfg->max_message_bytes,
    };
    if (u.field_set & (1 << UF_QUERY)) {
        req.query = r->raw.data + u.field_data[UF_QUERY].off;
        req.query_len = u.field_data[UF_QUERY].len;
    }
    if (c->flags & F_TRUSTED)
        note_forwarded_for(c, &req);
    if (p->upgrade)
        c->flags |= F_UPGRADE_PENDING;
    c->state = ST_BUSY;
    gw_timer_stop(&c->timer);
    if (gw_log_threshold >= GW_LOG_DEBUG) {
        /* Tokens travel in URLs (?token=): never into the log. */
        struct gw_buf url = GW_BUF_INIT;
        gw_url_append_redacted(&url, r->raw.data, r->url_len, "token");
        GW_DEBUG("%s: %s %.*s", gw_conn__peer_name(c), req.method, (int)url.len, url.data);
        gw_buf_release(&url);
    }
    c->srv->route(c->srv, &req, r->raw.data + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    /* The request view ends with this call (transports copy what they keep), so a long poll
     * or a stream waits without a parser and header storage: ~1.5 KB less per such session. */
    if (c->req == r)
        gw_conn__req_free(c);
}

/* http-parser accepts a line that starts with whitespace in the head: as obs-fold, joining it
 * to the previous value (where "Transfer-Encoding:\r\n chunked" is indistinguishable from
 * "Transfer-Encoding: chunked" in the callbacks), or, right after the start line, as part of
 * the first field name. RFC 9112 5.2 and 2.2 let a server reject both; we do, so scan the
 * head's bytes for them as they arrive. Returns false on such a line. */
static bool scan_header_lines(struct http_req *r, const uint8_t *data, size_t len, size_t *head_len)
{
    const uint8_t *p = data, *end = data + len;
    *head_len = len;
    while (p < end && r->line_scan != SCAN_DONE) {
        switch (r->line_scan) {
        case SCAN_BEFORE_START_LINE: /* RFC 9112 2.2: empty lines before a request are ignored */
            if (*p != '\r' && *p != '\n')
                r->line_scan = SCAN_IN_LINE;
            p++;
            break;
        case SCAN_IN_LINE: {
            const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
            if (!lf)
                return true;
            r->line_scan = SCAN_LINE_START;
            p = lf + 1;
            break;
        }
        case SCAN_LINE_START:
            if (*p == ' ' || *p == '\t')
                return false;
            r->line_scan = *p == '\n' ? SCAN_DONE : *p == '\r' ? SCAN_EMPTY_LINE_CR : SCAN_IN_LINE;
            p++;
            break;
        case SCAN_EMPTY_LINE_CR: /* http-parser refuses anything but LF after it */
            r->line_scan = SCAN_DONE;
            p++;
            break;
        }
    }
    if (r->line_scan == SCAN_DONE)
        *head_len = (size_t)(p - data);
    return true;
}

static int hex_value(uint8_t ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
        return (ch | 0x20) - 'a' + 10;
    return -1;
}

/* Debian's http-parser is built non-strict: in a chunked body it takes any two bytes after a
 * chunk's data for its CRLF, any byte after a CR for LF, and whitespace after a chunk size, all
 * of which a proxy in front may frame differently (request smuggling). So the body's framing
 * bytes are checked here as they arrive: chunk-size [BWS ";" ext] CRLF data CRLF ... "0" CRLF
 * trailer-lines CRLF. Returns false on a framing error. */
static bool check_chunked(struct http_req *r, const uint8_t *data, size_t len)
{
    const uint8_t *p = data, *end = data + len;
    while (p < end && r->chunk_scan != CHUNK_DONE) {
        uint8_t ch = *p;
        switch ((enum chunk_scan)r->chunk_scan) {
        case CHUNK_SIZE_START:
        case CHUNK_SIZE: {
            int v = hex_value(ch);
            if (v >= 0) {
                if (r->chunk_left >> 60)
                    return false; /* http-parser refuses it too */
                r->chunk_left = r->chunk_left << 4 | (uint64_t)v;
                r->chunk_scan = CHUNK_SIZE;
            } else if (r->chunk_scan == CHUNK_SIZE_START) {
                return false;
            } else if (ch == ';') {
                r->chunk_scan = CHUNK_EXT;
            } else if (ch == ' ' || ch == '\t') {
                r->chunk_scan = CHUNK_SIZE_BWS;
            } else if (ch == '\r') {
                r->chunk_scan = CHUNK_SIZE_LF;
            } else {
                return false;
            }
            break;
        }
        case CHUNK_SIZE_BWS:
            if (ch == ';')
                r->chunk_scan = CHUNK_EXT;
            else if (ch != ' ' && ch != '\t')
                return false;
            break;
        case CHUNK_EXT:
            if (ch == '\r')
                r->chunk_scan = CHUNK_SIZE_LF;
            else if (ch < 0x20 && ch != '\t')
                return false;
            break;
        case CHUNK_SIZE_LF:
            if (ch != '\n')
                return false;
            r->chunk_scan = r->chunk_left ? CHUNK_DATA : CHUNK_TRAILER_START;
            break;
        case CHUNK_DATA: {
            size_t n =
                (size_t)(end - p) < r->chunk_left ? (size_t)(end - p) : (size_t)r->chunk_left;
            r->chunk_left -= n;
            p += n;
            if (r->chunk_left == 0)
                r->chunk_scan = CHUNK_DATA_CR;
            continue;
        }
        case CHUNK_DATA_CR:
            if (ch != '\r')
                return false;
            r->chunk_scan = CHUNK_DATA_LF;
            break;
        case CHUNK_DATA_LF:
            if (ch != '\n')
                return false;
            r->chunk_scan = CHUNK_SIZE_START;
            break;
        case CHUNK_TRAILER_START: /* a trailer line, or the empty line that ends the body */
            if (ch == ' ' || ch == '\t')
                return false;
            r->chunk_scan = ch == '\r' ? CHUNK_END_LF : CHUNK_TRAILER;
            break;
        case CHUNK_TRAILER:
            if (ch == '\r')
                r->chunk_scan = CHUNK_TRAILER_LF;
            else if (ch == '\n')
                return false;
            break;
        case CHUNK_TRAILER_LF:
            if (ch != '\n')
                return false;
            r->chunk_scan = CHUNK_TRAILER_START;
            break;
        case CHUNK_END_LF:
            if (ch != '\n')
                return false;
            r->chunk_scan = CHUNK_DONE;
            break;
        case CHUNK_DONE:
            break;
        }
        p++;
    }
    return true;
}

/* Feeds the parser; returns bytes consumed. */
size_t gw_conn__parse_request(struct gw_conn *c, uint8_t *data, size_t len)
{
    if (!c->req) {
        c->req = req_new(c);
        c->state = ST_READING;
        gw_timer_start(&c->timer, &c->srv->conns.header_q);
    }
    struct http_req *r = c->req;
    size_t head_len = 0;
    if (r->line_scan != SCAN_DONE && !scan_header_lines(r, data, len, &head_len)) {
        gw_conn__fail_request(c, 400, "header line starts with whitespace (obs-fold)");
        return len;
    }
    size_t used = http_parser_execute(&r->parser, &parser_settings, (const char *)data, len);
    enum http_errno err = HTTP_PARSER_ERRNO(&r->parser);
    /* Before the body is acted on: the bytes http-parser took as its chunked framing. */
    if (r->headers_done && !r->error_status && (r->parser.flags & F_CHUNKED) &&
        !r->parser.upgrade && used > head_len &&
        !check_chunked(r, data + head_len, used - head_len)) {
        gw_conn__fail_request(c, 400, "malformed chunked body framing");
        return len;
    }
    if (r->complete) {
        dispatch(c);
        return used;
    }
    if (r->error_status) {
        gw_conn__fail_request(c, r->error_status, r->error_reason);
        return len;
    }
    if (err == HPE_HEADER_OVERFLOW) {
        gw_conn__fail_request(c, 431, "request header too large");
        return len;
    }
    if (err != HPE_OK) {
        gw_conn__fail_request(c, 400, http_errno_description(err));
        return len;
    }
    if (r->parser.upgrade && r->headers_done) {
        /* http-parser stops at the end of an upgrade request's head without completing it. */
        r->complete = true;
        dispatch(c);
    }
    return used;
}
