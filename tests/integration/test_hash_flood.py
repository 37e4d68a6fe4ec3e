"""Hash flooding (issue 14): session ids are the client's choice, so the table of sessions must
not let a client aim them at one bucket. 20,000 ids that all collide under the unkeyed FNV-1a
the table used before (all of them in bucket 0 of any table up to 65,536 buckets) open with the
table's longest chain staying short (/api/stats sessions.table_longest_chain); with FNV-1a it
is 20,000 long and every open walks it. Timing is bench/hash_flood.py's business, not this
test's.

--max-sessions-per-ip: an address holding that many sessions gets 429 (HTTP transports) or a
429 instead of the websocket upgrade, another address is unaffected, the count follows the
address after the PROXY protocol, and a session freed makes room again.

Spec: README.md (options), docs/PROTOCOL.md (/api/stats, /metrics)."""

import re
import socket
import unittest

import gwtest
from scopedfix import ScopedGateway

FLOOD = 20000
PIPELINE = 500  # requests written before their responses are read

FNV32_INIT = 2166136261
FNV32_PRIME = 16777619
ALPHABET = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def fnv1a32(data, h=FNV32_INIT):
    for b in data:
        h = ((h ^ b) * FNV32_PRIME) & 0xffffffff
    return h


def fnv_colliding_ids(n, bits=16):
    """n distinct ids of one length whose FNV-1a 32 has its low `bits` bits zero: they share
    bucket 0 of every power-of-two table up to 2^bits buckets.

    The low bits of FNV-1a depend only on the low bits of the state, and the prime P is odd
    (invertible), so the last two characters are solved for instead of searched. Mod 2^bits,
    with h1 the state after prefix + c1: h3 = (h2 ^ c3) * P is 0 iff h2 == c3, and
    h2 = (h1 ^ c2) * P == c3 iff h1 == (c3 * P^-1) ^ c2. c2 changes only the lowest 8 bits,
    so h1's higher bits pick c3; c2 then follows, if it is a character of the alphabet."""
    mod = 1 << bits
    inverse = pow(FNV32_PRIME, -1, mod)
    # h1's bits above the lowest 8 -> the c3 giving them, and c3 * P^-1.
    by_high = {}
    for c3 in ALPHABET:
        t = (c3 * inverse) % mod
        by_high.setdefault(t >> 8, (c3, t))
    ids, seen = [], set()
    counter = 0
    while len(ids) < n:
        prefix = b"f%08d" % counter
        counter += 1
        state = fnv1a32(prefix)
        for c1 in ALPHABET:
            h1 = (((state ^ c1) * FNV32_PRIME) & 0xffffffff) % mod
            hit = by_high.get(h1 >> 8)
            if not hit:
                continue
            c3, t = hit
            c2 = (h1 ^ t) & 0xff
            if c2 not in ALPHABET:
                continue
            sid = prefix + bytes([c1, c2, c3])
            if sid not in seen:
                seen.add(sid)
                ids.append(sid.decode())
            if len(ids) == n:
                break
    return ids


class HttpClient:
    """Keep-alive HTTP/1.1 from a chosen source address, pipelined: the gateway answers in
    order, so responses are read back as (status, headers, body) in request order."""

    def __init__(self, port, source="127.0.0.1", first=b""):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=gwtest.TIMEOUT * 4,
                                             source_address=(source, 0))
        if first:
            self.sock.sendall(first)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, method, path, close=False, body=b""):
        self.sock.sendall(b"%s %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n%s\r\n%s"
                          % (method.encode(), path.encode(), len(body),
                             b"Connection: close\r\n" if close else b"", body))

    def response(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise gwtest.ConnectionClosed("the gateway closed the connection")
        self.buf += chunk


def one_request(port, path, source="127.0.0.1", first=b"", body=b""):
    """One POST on a connection of its own: (status, headers, body)."""
    c = HttpClient(port, source, first)
    try:
        c.send("POST", path, close=True, body=body)
        return c.response()
    finally:
        c.close()


def open_xhr(port, sid, source="127.0.0.1", first=b""):
    """The xhr-polling request opening session sid: (status, headers, body)."""
    return one_request(port, "/sockjs/000/%s/xhr" % sid, source, first)


def websocket_upgrade(port, sid, source="127.0.0.1"):
    """A websocket handshake for a new session: the socket and the first response line."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=gwtest.TIMEOUT,
                                    source_address=(source, 0))
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    sock.sendall(gwtest.ws_handshake_request("/sockjs/000/%s/websocket" % sid, key))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return sock, data.split(b"\r\n", 1)[0].decode()


class CollidingIds(unittest.TestCase):
    def test_the_generated_ids_do_collide_under_fnv(self):
        ids = fnv_colliding_ids(200)
        self.assertEqual(len(set(ids)), 200)
        self.assertEqual({len(i) for i in ids}, {12})
        self.assertEqual({fnv1a32(i.encode()) & 0xffff for i in ids}, {0})

    def test_colliding_session_ids_open_with_short_chains(self):
        ids = fnv_colliding_ids(FLOOD)
        # Sessions without a receiver and without a token must live through the whole run.
        gw = ScopedGateway("--max-sessions-per-ip", "0", "--disconnect-delay-ms", "600000",
                           "--auth-timeout-ms", "600000").start()
        self.addCleanup(gw.stop)
        client = HttpClient(gw.port)
        self.addCleanup(client.close)
        for start in range(0, FLOOD, PIPELINE):
            batch = ids[start:start + PIPELINE]
            for sid in batch:
                client.send("POST", "/sockjs/000/%s/xhr" % sid)
            for sid in batch:
                status, _, body = client.response()
                self.assertEqual((status, body), (200, b"o\n"), sid)
        stats = gw.stats()
        self.assertEqual(stats["sessions"]["opened"], FLOOD)
        # 20,000 keyed hashes in 32,768 buckets: the longest chain is about 7. With FNV-1a it
        # is all 20,000.
        self.assertLessEqual(stats["sessions"]["table_longest_chain"], 16, stats["sessions"])


class SessionsPerAddress(unittest.TestCase):
    LIMIT = 3

    def start(self, *args, listen=None):
        # Sessions opened by a poll outlive it by the disconnect delay: long enough for the test.
        gw = ScopedGateway("--max-sessions-per-ip", self.LIMIT, "--log-level", "debug",
                           "--disconnect-delay-ms", "60000", *args, listen=listen).start()
        self.addCleanup(gw.stop)
        return gw

    def assertCrowded(self, response):
        status, headers, body = response
        self.assertEqual(status, 429, response)
        self.assertEqual(body, b"Too many sessions from this address.\n")
        self.assertTrue(headers.get("retry-after", "").isdigit(), headers)

    def test_one_more_session_than_the_limit_is_refused_others_are_not(self):
        gw = self.start()
        mark = gw.log_mark()
        for i in range(self.LIMIT):
            self.assertEqual(open_xhr(gw.port, "mine%d" % i)[::2], (200, b"o\n"))
        # Requests for the sessions it holds are no new sessions: still served.
        status, _, _ = one_request(gw.port, "/sockjs/000/mine0/xhr_send", body=b'["hi"]')
        self.assertEqual(status, 204)
        self.assertCrowded(open_xhr(gw.port, "one-more"))
        # A websocket is refused the same way, before the upgrade.
        sock, line = websocket_upgrade(gw.port, "ws-more")
        sock.close()
        self.assertTrue(line.startswith("HTTP/1.1 429"), line)
        # Another address is unaffected.
        self.assertEqual(open_xhr(gw.port, "theirs", source="127.0.0.2")[::2], (200, b"o\n"))
        stats = gw.stats()
        self.assertEqual(stats["listener"]["refused_sessions_per_ip"], 2)
        metrics = gw.api("GET", "/metrics", key=None).text
        self.assertIn('sockjs_gateway_connections_refused_total{reason="sessions_per_ip"} 2',
                      metrics)
        line = gw.wait_log(r"127\.0\.0\.1: new session refused \(429\): the address holds 3 "
                           r"sessions", since=mark)
        self.assertIn("--max-sessions-per-ip", line)

    def test_refusals_are_logged_once_a_second_at_most(self):
        gw = self.start()
        for i in range(self.LIMIT):
            open_xhr(gw.port, "held%d" % i)
        mark = gw.log_mark()
        client = HttpClient(gw.port)
        self.addCleanup(client.close)
        for i in range(50):
            client.send("POST", "/sockjs/000/refused%d/xhr" % i)
        for i in range(50):
            self.assertCrowded(client.response())
        gw.wait_log(r"new session refused", since=mark)
        lines = [l for l in gw.log_lines(mark) if "new session refused" in l]
        # 50 refusals within a second or two: one line, two if a second boundary fell between.
        self.assertLessEqual(len(lines), 2, lines)

    def test_a_freed_session_makes_room(self):
        gw = self.start()
        sockets = []
        for i in range(self.LIMIT):
            sock, line = websocket_upgrade(gw.port, "ws%d" % i)
            self.addCleanup(sock.close)
            self.assertTrue(line.startswith("HTTP/1.1 101"), line)
            sockets.append(sock)
        self.assertCrowded(open_xhr(gw.port, "crowded"))
        mark = gw.log_mark()
        sockets[0].close()
        gw.wait_log(r"session closed: transport=websocket ", since=mark)
        sock, line = websocket_upgrade(gw.port, "ws-again")
        self.addCleanup(sock.close)
        self.assertTrue(line.startswith("HTTP/1.1 101"), line)

    def test_zero_is_no_limit(self):
        gw = ScopedGateway("--max-sessions-per-ip", "0").start()
        self.addCleanup(gw.stop)
        for i in range(20):
            self.assertEqual(open_xhr(gw.port, "s%d" % i)[0], 200)
        self.assertEqual(gw.stats()["listener"]["refused_sessions_per_ip"], 0)

    def test_the_address_counted_is_the_one_the_proxy_protocol_names(self):
        gw = self.start(listen=["127.0.0.1:0,proxy"])

        def via(addr, sid):
            first = b"PROXY TCP4 %s 127.0.0.1 40001 80\r\n" % addr.encode()
            return open_xhr(gw.port, sid, first=first)

        for i in range(self.LIMIT):
            self.assertEqual(via("203.0.113.7", "p%d" % i)[0], 200)
        self.assertCrowded(via("203.0.113.7", "p-more"))
        # The same TCP peer (127.0.0.1), another client behind the proxy: served.
        self.assertEqual(via("203.0.113.8", "q0")[0], 200)


if __name__ == "__main__":
    gwtest.main()
