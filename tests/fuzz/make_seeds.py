#!/usr/bin/python3
"""Writes the hand-made seeds of the http, jwt, publish and proxy_protocol corpora (and leaves
the files scripts/fuzz.sh merged in alone). Run from anywhere; deterministic."""

import base64
import hashlib
import hmac
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

# fuzz_http.c's flags (byte 0).
PROXY, SHUTDOWN, DEFLATE, API, SMALL, NO_READ = 1, 2, 4, 8, 16, 32
SWITCH = b"\n~~\n"  # the rest goes to the other client


def write(corpus, name, data):
    d = os.path.join(HERE, "corpus", corpus)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def req(method, path, headers=(), body=None, version="HTTP/1.1"):
    lines = ["%s %s %s" % (method, path, version), "Host: 127.0.0.1"]
    lines += ["%s: %s" % h for h in headers]
    if body is not None and not any(n.lower() == "transfer-encoding" for n, _ in headers):
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def chunked(body):
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


def ws_frame(opcode, payload, fin=True, mask=b"\x01\x02\x03\x04", rsv1=False):
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes([b0, 0x80 | n])
    elif n < 65536:
        head = bytes([b0, 0x80 | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, 0x80 | 127]) + struct.pack(">Q", n)
    masked = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return head + mask + masked


def ws_upgrade(path, extra=()):
    return req("GET", path, [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                             ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                             ("Sec-WebSocket-Version", "13")] + list(extra))


def deflated(data):
    c = zlib.compressobj(wbits=-15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4]


def http_seeds():
    s = "/echo/000/fuzzsession"
    seeds = {
        "static_pipelined": (0, 0, req("GET", "/echo/") + req("GET", "/echo/info")
                             + req("OPTIONS", "/echo/info") + req("GET", "/echo/iframe.html")),
        "xhr_split": (0, 7, req("POST", s + "/xhr", body=b"")
                      + req("POST", s + "/xhr_send", body=b'["a","b"]')
                      + req("POST", s + "/xhr", body=b"")),
        "xhr_send_chunked": (0, 0, req("POST", s + "/xhr", body=b"")
                             + req("POST", s + "/xhr_send", [("Transfer-Encoding", "chunked")])
                             + chunked(b'["c"]')),
        "chunked_ext_trailer": (0, 1, req("POST", s + "/xhr_send", [("Transfer-Encoding", "chunked")])
                                + b'3 ;a=b\r\n["x\r\n2;q="v"\r\n"]\r\n0\r\nX-T: 1\r\n\r\n'
                                + req("GET", "/echo/info")),
        "xhr_streaming": (SHUTDOWN, 0, req("POST", s + "/xhr_streaming", body=b"")),
        "eventsource": (0, 0, req("GET", s + "/eventsource")),
        "htmlfile": (0, 0, req("GET", s + "/htmlfile?c=cb")),
        "jsonp": (0, 0, req("GET", s + "/jsonp?c=cb")
                  + req("POST", s + "/jsonp_send", [("Content-Type",
                                                     "application/x-www-form-urlencoded")],
                        b"d=%5B%22x%22%5D")),
        "ws_raw": (0, 0, ws_upgrade("/echo/websocket") + ws_frame(1, b"hello")
                   + ws_frame(9, b"p") + ws_frame(1, b"par", fin=False) + ws_frame(0, b"t")
                   + ws_frame(8, b"\x03\xe8")),
        "ws_sockjs": (0, 3, ws_upgrade(s + "/websocket") + ws_frame(1, b'["hi"]')
                      + ws_frame(1, b'"x"') + ws_frame(8, b"")),
        "ws_deflate": (DEFLATE, 0, ws_upgrade("/echo/websocket", [(
            "Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")])
            + ws_frame(1, deflated(b"hello hello hello"), rsv1=True)),
        "amplify_ws": (0, 0, ws_upgrade("/amplify/websocket") + ws_frame(1, b"3")),
        "close_xhr": (0, 0, req("POST", "/close/000/s/xhr", body=b"")),
        "broadcast": (0, 0, ws_upgrade("/broadcast/websocket") + ws_frame(1, b"all")),
        "cookie_needed": (0, 0, req("GET", "/cookie_needed_echo/info",
                                    [("Cookie", "JSESSIONID=abc")])),
        "proxy_forwarded": (PROXY, 0, b"PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r\n"
                            + req("GET", "/echo/", [("X-Forwarded-For", "10.0.0.1, 10.0.0.2")])),
        "proxy_v2": (PROXY, 5, b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + bytes([192, 0, 2, 1])
                     + bytes([192, 0, 2, 2]) + b"\x04\xd2\x00\x50" + req("GET", "/echo/info")),
        "api_publish": (API, 0, req("POST", "/api/publish",
                                    [("Authorization", "Bearer fuzz-key")],
                                    b'{"scope":"global","site":"s","event":"e","data":{"a":1}}')
                        + req("GET", "/api/stats", [("Authorization", "Bearer fuzz-key")])),
        "api_unauthorized": (API, 0, req("POST", "/api/publish", body=b"[]")),
        "small_limits": (SMALL, 0, req("POST", s + "/xhr_send", body=b'["' + b"x" * 300 + b'"]')),
        "no_read_stream": (NO_READ | SMALL, 0, req("POST", s + "/xhr_streaming", body=b"")
                           + req("POST", s + "/xhr_send", body=b'["' + b"y" * 100 + b'"]')),
        "no_read_amplify": (NO_READ | SMALL, 0, ws_upgrade("/amplify/websocket")
                            + ws_frame(1, b"17") + ws_frame(1, b"17")),
        # Two connections (segments after SWITCH alternate between them) on one session.
        "two_stream_and_send": (0, 0, req("POST", s + "/xhr_streaming", body=b"") + SWITCH
                                + req("POST", s + "/xhr_send", body=b'["z"]') + SWITCH
                                + req("POST", s + "/xhr", body=b"")),
        "two_ws_and_xhr": (0, 0, ws_upgrade(s + "/websocket") + SWITCH
                           + req("POST", s + "/xhr", body=b"") + SWITCH + ws_frame(1, b'["q"]')),
        "two_eventsource_jsonp": (0, 0, req("GET", s + "/eventsource") + SWITCH
                                  + req("POST", s + "/jsonp_send", body=b"d=%5B%22j%22%5D")),
        "obs_fold": (0, 0, b"GET /echo/ HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n"),
        "space_colon": (0, 0, b"POST /echo/ HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
        "http10": (SHUTDOWN, 0, req("GET", "/echo/", version="HTTP/1.0")),
        "expect_continue": (0, 0, req("POST", s + "/xhr_send", [("Expect", "100-continue")],
                                      b'["e"]')),
    }
    for name, (flags, piece, data) in seeds.items():
        write("http", name, bytes([flags, piece]) + data)


SECRETS = [b"fuzz-secret-one", b"fuzz-secret-two"]
NOW = 1700000000


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def token(header, payload, secret):
    signing = b64url(header) + b"." + b64url(payload)
    sig = hmac.new(secret, signing, hashlib.sha256).digest()
    return signing + b"." + b64url(sig)


def jwt_seeds():
    header = json.dumps({"alg": "HS256", "typ": "JWT"}).encode()
    claims = {
        "valid": {"sub": "u1", "client": "c1", "site": "s1", "exp": NOW + 3600},
        "valid_int_ids": {"sub": 42, "client": 7, "site": "s", "exp": NOW + 60, "nbf": NOW - 5,
                          "iat": NOW},
        "valid_events": {"sub": "u", "client": "c", "site": "s", "exp": NOW + 60,
                         "events": ["a", "b.c"]},
        "expired": {"sub": "u", "client": "c", "site": "s", "exp": NOW - 3600},
        "missing_site": {"sub": "u", "client": "c", "exp": NOW + 60},
    }
    for name, c in claims.items():
        payload = json.dumps(c).encode()
        # Mode 0: a finished token (the first secret; the second for one of them).
        write("jwt", name, b"\x00" + token(header, payload, SECRETS[0]))
        # Mode 1: header and payload JSON, signed by the harness.
        write("jwt", name + "_signed", b"\x01" + header + b"\n" + payload)
    write("jwt", "second_secret", b"\x00" + token(header, json.dumps(claims["valid"]).encode(),
                                                   SECRETS[1]))
    write("jwt", "alg_none", b"\x01" + b'{"alg":"none"}\n' + json.dumps(claims["valid"]).encode())
    write("jwt", "unknown_secret", b"\x05" + json.dumps(claims["valid"]).encode())
    write("jwt", "garbage", b"\x00a.b.c")


def publish_seeds():
    seeds = {
        "global": {"scope": "global", "site": "s", "event": "e", "data": {"x": [1, 2]}},
        "user": {"scope": "user", "sites": ["a", "b"], "ids": ["u1", 2], "event": "e",
                 "data": "text"},
        "client_seqs": {"scope": "client", "site": "s", "ids": ["c1", "c2"], "event": "e",
                        "data": None, "seqs": [1, 2]},
        "bad_scope": {"scope": "galaxy", "site": "s", "event": "e", "data": 1},
    }
    for name, obj in seeds.items():
        write("publish", name, json.dumps(obj).encode())
    write("publish", "array", json.dumps([seeds["global"], seeds["user"]]).encode())


def proxy_seeds():
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    write("proxy_protocol", "v1_tcp4", b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\nGET /")
    write("proxy_protocol", "v1_tcp6", b"PROXY TCP6 2001:db8::1 ::1 56324 443\r\n")
    write("proxy_protocol", "v1_unknown", b"PROXY UNKNOWN whatever\r\n")
    write("proxy_protocol", "v2_tcp4", sig + b"\x21\x11\x00\x0c" + bytes([192, 0, 2, 1, 192, 0,
                                                                          2, 2]) + b"\xdc\x04\x01\xbb")
    write("proxy_protocol", "v2_tcp6_tlv", sig + b"\x21\x21\x00\x27" + bytes(15) + b"\x01"
          + bytes(15) + b"\x01" + b"\xdc\x04\x01\xbb" + b"\x04\x00\x00")
    write("proxy_protocol", "v2_local", sig + b"\x20\x00\x00\x00")
    write("proxy_protocol", "v2_unix", sig + b"\x21\x31\x00\xd8" + bytes(216))


if __name__ == "__main__":
    http_seeds()
    jwt_seeds()
    publish_seeds()
    proxy_seeds()
