/* PROXY protocol headers, parsed from scratch on every call: a header is at most a few hundred
 * bytes and arrives whole in practice, so keeping no state is simpler than resuming, and costs
 * an idle connection nothing.
 *
 * The first byte picks the version: 'P' for the v1 text line, CR for the v2 binary signature.
 *
 * Version 1, one state per field, one byte per step (SP is exactly one space):
 *
 *   SIGNATURE --"PROXY" SP--> PROTO --"TCP4"|"TCP6" SP--> SRC --SP--> DST --SP--> SRC_PORT
 *                               |  |                                                 |
 *                               |  +--"UNKNOWN" SP--> IGNORED                        SP
 *                               |                        |                           v
 *                               +--"UNKNOWN" CR--+       CR             DST_PORT <---+
 *                                                v       v                 |
 *                                                LF <----+-------CR--------+
 *                                                |
 *                                                +--LF--> done: the line's length
 *
 * Every byte is checked as it comes, so that a wrong header fails at once rather than after
 * the 107 bytes a line may take; only an address is checked whole, when its field ends,
 * because whether a partial IPv6 address can still become a valid one is not worth deciding.
 *
 * Version 2: signature (12 bytes), version/command, family/transport, address length (16 bits,
 * big endian), then that many bytes: the addresses, then TLVs. Each fixed byte is checked as
 * soon as it is there; the length is checked against the family before waiting for the rest. */
#include "proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "gw_error.h"

/* ---- version 1 ------------------------------------------------------------------------------ */

enum v1_state {
    V1_SIGNATURE, /* "PROXY " */
    V1_PROTO,     /* "TCP4", "TCP6" or "UNKNOWN" */
    V1_IGNORED,   /* after "UNKNOWN ": anything up to CR */
    V1_SRC,
    V1_DST,
    V1_SRC_PORT,
    V1_DST_PORT,
    V1_LF, /* CR seen: only LF may follow */
};

static const char v1_signature[] = "PROXY ";

enum v1_proto { V1_TCP4, V1_TCP6, V1_UNKNOWN, V1_NO_PROTO = -1 };
static const char *const v1_protos[] = {"TCP4", "TCP6", "UNKNOWN"};

/* The longest texts of an address: a dotted quad, and IPv6 ending in a dotted quad. */
#define V1_ADDR4_MAX 15
#define V1_ADDR6_MAX 45

/* The protocol tok (n bytes) names, or, when partial, one it can still become. */
static enum v1_proto v1_proto_match(const uint8_t *tok, size_t n, bool partial)
{
    for (size_t i = 0; i < sizeof(v1_protos) / sizeof(v1_protos[0]); i++) {
        size_t name_len = strlen(v1_protos[i]);
        if ((partial ? n <= name_len : n == name_len) && memcmp(tok, v1_protos[i], n) == 0)
            return (enum v1_proto)i;
    }
    return V1_NO_PROTO;
}

/* A byte that may appear in an address of family. Hex digits are left to inet_pton to judge
 * in context; this only stops a field early when it can never be an address. */
static bool v1_addr_char(int family, uint8_t c)
{
    if ((c >= '0' && c <= '9') || c == '.')
        return true;
    return family == AF_INET6 && (c == ':' || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'));
}

/* Parses the address text (n bytes) into addr (network order). inet_pton is strict enough for
 * the spec: IPv4 as exactly four decimal numbers up to 255, and no leading zeros, which could
 * be read as octal elsewhere. */
static bool v1_parse_addr(int family, const uint8_t *text, size_t n, uint8_t addr[16])
{
    char buf[V1_ADDR6_MAX + 1];
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, text, n);
    buf[n] = '\0';
    return inet_pton(family, buf, addr) == 1;
}

static void set_sockaddr(struct sockaddr_storage *ss, int family, const uint8_t *addr,
                         uint16_t port)
{
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in sin;
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        memcpy(&sin.sin_addr, addr, sizeof(sin.sin_addr));
        memcpy(ss, &sin, sizeof(sin));
    } else {
        struct sockaddr_in6 sin6;
        memset(&sin6, 0, sizeof(sin6));
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(port);
        memcpy(&sin6.sin6_addr, addr, sizeof(sin6.sin6_addr));
        memcpy(ss, &sin6, sizeof(sin6));
    }
}

static int parse_v1(const uint8_t *data, size_t len, struct gw_proxy_info *out)
{
    enum v1_state st = V1_SIGNATURE;
    int family = AF_UNSPEC;
    uint8_t addr[2][16] = {{0}};
    uint16_t port[2] = {0, 0};
    uint32_t value = 0; /* the port being read */
    size_t start = 0;   /* the first byte of the current field */
    /* The spec bounds the line so that a receiver never has to look further for the CRLF. */
    size_t end = len < GW_PROXY_V1_MAX_LEN ? len : GW_PROXY_V1_MAX_LEN;
    for (size_t i = 0; i < end; i++) {
        uint8_t c = data[i];
        size_t n = i - start; /* bytes of the field before c */
        switch (st) {
        case V1_SIGNATURE:
            if (c != (uint8_t)v1_signature[i])
                return GW_EPROTO;
            if (i + 1 == sizeof(v1_signature) - 1) {
                st = V1_PROTO;
                start = i + 1;
            }
            break;
        case V1_PROTO:
            if (c == ' ' || c == '\r') {
                enum v1_proto p = v1_proto_match(data + start, n, false);
                if (p == V1_UNKNOWN) {
                    st = c == ' ' ? V1_IGNORED : V1_LF;
                } else if (p != V1_NO_PROTO && c == ' ') {
                    family = p == V1_TCP4 ? AF_INET : AF_INET6;
                    st = V1_SRC;
                    start = i + 1;
                } else {
                    return GW_EPROTO;
                }
            } else if (v1_proto_match(data + start, n + 1, true) == V1_NO_PROTO) {
                return GW_EPROTO;
            }
            break;
        case V1_IGNORED:
            /* The spec says to ignore what follows UNKNOWN up to the CRLF; a lone LF is still
             * refused, since a lax reader elsewhere on the path would end the line there. */
            if (c == '\r')
                st = V1_LF;
            else if (c == '\n')
                return GW_EPROTO;
            break;
        case V1_SRC:
        case V1_DST: {
            int side = st == V1_DST;
            if (c == ' ') {
                if (!v1_parse_addr(family, data + start, n, addr[side]))
                    return GW_EPROTO;
                st = side ? V1_SRC_PORT : V1_DST;
                start = i + 1;
            } else if (!v1_addr_char(family, c) ||
                       n >= (family == AF_INET ? V1_ADDR4_MAX : V1_ADDR6_MAX)) {
                return GW_EPROTO;
            }
            break;
        }
        case V1_SRC_PORT:
        case V1_DST_PORT: {
            int side = st == V1_DST_PORT;
            if (c == (side ? '\r' : ' ')) {
                if (n == 0)
                    return GW_EPROTO;
                port[side] = (uint16_t)value;
                value = 0;
                st = side ? V1_LF : V1_DST_PORT;
                start = i + 1;
                break;
            }
            if (c < '0' || c > '9')
                return GW_EPROTO;
            /* A digit after a leading "0" is a leading zero; the spec forbids them because
             * some readers would take the number for octal. */
            if (n > 0 && value == 0)
                return GW_EPROTO;
            value = value * 10 + (uint32_t)(c - '0');
            if (value > 65535)
                return GW_EPROTO;
            break;
        }
        case V1_LF:
            if (c != '\n')
                return GW_EPROTO;
            memset(out, 0, sizeof(*out));
            out->local = family == AF_UNSPEC;
            if (!out->local) {
                set_sockaddr(&out->src, family, addr[0], port[0]);
                set_sockaddr(&out->dst, family, addr[1], port[1]);
            }
            return (int)(i + 1);
        }
    }
    return len >= GW_PROXY_V1_MAX_LEN ? GW_EPROTO : GW_EAGAIN;
}

/* ---- version 2 ------------------------------------------------------------------------------ */

static const uint8_t v2_signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                         0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

#define V2_HEADER_LEN 16
#define V2_VERSION 0x2
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_TCP4 0x11
#define V2_TCP6 0x21

/* The bytes of addresses a PROXY command's family/transport byte announces, or GW_EPROTO for a byte
 * the spec lists as invalid (family above AF_UNIX, transport above DGRAM) or pairs that it does not
 * list (a family without a transport or the reverse), which no conforming sender emits. */
static int v2_addr_len(uint8_t fam)
{
    switch (fam) {
    case 0x00: /* UNSPEC */
        return 0;
    case 0x11: /* TCP over IPv4 */
    case 0x12: /* UDP over IPv4 */
        return 2 * 4 + 2 * 2;
    case 0x21: /* TCP over IPv6 */
    case 0x22: /* UDP over IPv6 */
        return 2 * 16 + 2 * 2;
    case 0x31: /* AF_UNIX stream */
    case 0x32: /* AF_UNIX datagram */
        return 2 * 108;
    default:
        return GW_EPROTO;
    }
}

static int parse_v2(const uint8_t *data, size_t len, struct gw_proxy_info *out)
{
    size_t sig_have = len < sizeof(v2_signature) ? len : sizeof(v2_signature);
    if (memcmp(data, v2_signature, sig_have) != 0)
        return GW_EPROTO;
    if (len <= 12)
        return GW_EAGAIN;
    unsigned cmd = data[12] & 0x0F;
    if (data[12] >> 4 != V2_VERSION || (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY))
        return GW_EPROTO;
    if (len <= 13)
        return GW_EAGAIN;
    /* LOCAL (a health check by the proxy itself) ignores the family byte, as the spec says. */
    uint8_t fam = data[13];
    int need = cmd == V2_CMD_PROXY ? v2_addr_len(fam) : 0;
    if (need < 0)
        return need;
    if (len < V2_HEADER_LEN)
        return GW_EAGAIN;
    /* Checked before waiting for the block, so that a bad length fails without more input. */
    size_t addr_len = (size_t)data[14] << 8 | data[15];
    if (addr_len > GW_PROXY_V2_MAX_ADDR_LEN || addr_len < (size_t)need)
        return GW_EPROTO;
    size_t total = V2_HEADER_LEN + addr_len;
    if (len < total)
        return GW_EAGAIN;

    /* Addresses are in network order already; ports are read big endian. The block may go on
     * with TLVs, which we have no use for and skip with it. */
    const uint8_t *a = data + V2_HEADER_LEN;
    memset(out, 0, sizeof(*out));
    if (cmd == V2_CMD_PROXY && fam == V2_TCP4) {
        set_sockaddr(&out->src, AF_INET, a, (uint16_t)(a[8] << 8 | a[9]));
        set_sockaddr(&out->dst, AF_INET, a + 4, (uint16_t)(a[10] << 8 | a[11]));
    } else if (cmd == V2_CMD_PROXY && fam == V2_TCP6) {
        set_sockaddr(&out->src, AF_INET6, a, (uint16_t)(a[32] << 8 | a[33]));
        set_sockaddr(&out->dst, AF_INET6, a + 16, (uint16_t)(a[34] << 8 | a[35]));
    } else {
        /* LOCAL, and the families we do not proxy: the spec's fallback is the socket's own
         * addresses, as for UNSPEC. */
        out->local = true;
    }
    return (int)total;
}

/* ---- entry ---------------------------------------------------------------------------------- */

int gw_proxy_parse(const uint8_t *data, size_t len, struct gw_proxy_info *out)
{
    if (len == 0)
        return GW_EAGAIN;
    if (data[0] == (uint8_t)v1_signature[0])
        return parse_v1(data, len, out);
    if (data[0] == v2_signature[0])
        return parse_v2(data, len, out);
    return GW_EPROTO;
}
