/* PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2): a load balancer in front of
 * the gateway prepends the original client's addresses to the connection. A pure codec: bytes
 * in, addresses out; nothing is kept between calls. */
#ifndef GW_PROXY_PROTOCOL_H
#define GW_PROXY_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The longest v1 line, CRLF included ("PROXY UNKNOWN" with two full IPv6 addresses and ports). */
#define GW_PROXY_V1_MAX_LEN 107
/* The v2 address block we accept: the addresses need at most 216 bytes (AF_UNIX); the rest is
 * room for TLVs, which we skip. */
#define GW_PROXY_V2_MAX_ADDR_LEN 512
#define GW_PROXY_V2_MAX_LEN (16 + GW_PROXY_V2_MAX_ADDR_LEN)
/* A caller holding this many bytes always gets an answer other than GW_EAGAIN. */
#define GW_PROXY_MAX_LEN GW_PROXY_V2_MAX_LEN

struct gw_proxy_info {
    bool local;                  /* v2 LOCAL command or v1 "UNKNOWN": use the socket's address */
    struct sockaddr_storage src; /* the original client (valid unless local) */
    struct sockaddr_storage dst; /* the address the client connected to (valid unless local) */
};

/* Parses a PROXY header at the start of data (len bytes available so far).
 * Returns the header length (> 0) and fills *out when a complete valid header is present; the
 * bytes after it belong to the proxied protocol. src and dst are AF_INET or AF_INET6 with the
 * port set, and zeroed (AF_UNSPEC) when local.
 * GW_EAGAIN when the bytes so far are a valid prefix of a header but incomplete (the caller reads
 * more); len == 0 gives GW_EAGAIN.
 * GW_EPROTO when the data is not a valid PROXY header. Bad bytes are reported as soon as they
 * arrive (a plain HTTP request fails on its first byte), except that an address in a v1 line is
 * checked as a whole once its field ends. Rejected, among others: anything but the v1 "PROXY "
 * or the v2 signature; a v1 line without CRLF in its first 107 bytes, with other than single
 * spaces between fields, a protocol other than TCP4, TCP6 or UNKNOWN, an address that is not a
 * dotted quad (TCP4, no leading zeros) or an IPv6 address (TCP6), or a port with a leading zero
 * or above 65535; a v2 version other than 2, a command other than LOCAL or PROXY, a PROXY
 * family/transport byte other than 0x00, 0x11, 0x12, 0x21, 0x22, 0x31 or 0x32, an address length
 * too short for that family or over GW_PROXY_V2_MAX_ADDR_LEN.
 * Local (use the socket's own addresses): v1 UNKNOWN (the rest of its line is ignored), v2 LOCAL
 * (family and addresses ignored, as the spec requires), and v2 PROXY for families we do not
 * proxy (UNSPEC, UDP, AF_UNIX), the spec's fallback for valid but unsupported combinations.
 * v2 TLVs are skipped unread. *out is written only when the result is > 0. Never reads past len. */
int gw_proxy_parse(const uint8_t *data, size_t len, struct gw_proxy_info *out);

#endif
