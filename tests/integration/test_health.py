#!/usr/bin/python3
"""GET /healthz and /readyz on the SockJS listener and the API listener (issue 13).

Checked: both answer 200 without a key and with Cache-Control no-store on both listeners (also
on a `,proxy` listener, behind a PROXY protocol header, as HAProxy's checks arrive); other
methods get 405; /readyz is 503 `engine unavailable` while the node's Redis is down (killed)
and 200 again once it is back on the same port, /healthz stays 200; while the node drains
(SIGTERM) /readyz is 503 `draining` and /healthz 200 on both listeners, when any other new
request is refused.

Engine state and its recovery have no event to wait for: polled with a deadline.

Spec: docs/PROTOCOL.md "Health".
"""

import signal
import struct
import time
import unittest

import gwtest
import redisfix
import scopedfix
from gwtest import Conn, WebSocket, build_request, read_response, session_url
from scopedfix import ScopedGateway


def get(port, path, method="GET", host="127.0.0.1"):
    return gwtest.request(port, method, path, host=host)


def proxy_v2_header(src=("10.1.2.3", 40000), dst=("127.0.0.1", 80)):
    """A PROXY protocol v2 header (TCP over IPv4), as HAProxy's send-proxy-v2 writes it."""
    addr = bytes(int(x) for x in src[0].split(".")) + bytes(int(x) for x in dst[0].split("."))
    addr += struct.pack("!HH", src[1], dst[1])
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", len(addr)) +
            addr)


class HealthTestCase(unittest.TestCase):
    def start(self, *args, **kw):
        gw = ScopedGateway(*args, **kw).start()
        self.addCleanup(gw.stop)
        return gw

    def assertAnswer(self, r, status, text):
        self.assertEqual((r.status, r.text), (status, text))
        self.assertIn("no-store", r.header("Cache-Control") or "")

    def ports(self, gw):
        return (("sockjs", gw.port), ("api", gw.api_port))

    def wait_ready(self, gw, status, timeout=20.0):
        """Polls /readyz on both listeners until both answer `status` (no event to await)."""
        deadline = time.monotonic() + timeout
        while True:
            got = [get(p, "/readyz").status for _, p in self.ports(gw)]
            if got == [status, status]:
                return
            if time.monotonic() > deadline:
                self.fail("/readyz answered %r, %d expected within %.0f s\n%s"
                          % (got, status, timeout, gw.log_text()))
            time.sleep(0.05)


class Answers(HealthTestCase):
    def test_both_listeners_no_key_no_cache(self):
        gw = self.start()
        for name, port in self.ports(gw):
            with self.subTest(listener=name):
                self.assertAnswer(get(port, "/healthz"), 200, "ok\n")
                self.assertAnswer(get(port, "/readyz"), 200, "ok\n")
                r = get(port, "/readyz", method="POST")
                self.assertEqual(r.status, 405)
                self.assertEqual(r.header("Allow"), "GET")
                # Only the exact paths: nothing else is answered without the key.
                self.assertEqual(get(port, "/readyz/x").status, 404)

    def test_keep_alive(self):
        gw = self.start()
        with gw.connect() as c:
            for _ in range(3):
                c.send(build_request("GET", "/readyz"))
                self.assertAnswer(read_response(c), 200, "ok\n")

    def test_proxy_listener(self):
        port = redisfix.free_port()
        gw = self.start(listen=["127.0.0.1:%d,proxy" % port])
        with Conn(gw.port) as c:
            c.send(proxy_v2_header() + build_request("GET", "/readyz"))
            self.assertAnswer(read_response(c), 200, "ok\n")


class RedisDown(HealthTestCase):
    def test_not_ready_while_redis_is_down(self):
        redis = redisfix.RedisServer().start()
        self.addCleanup(redis.stop)
        gw = self.start("--engine", redis.url)
        self.wait_ready(gw, 200)
        redis.kill()
        self.wait_ready(gw, 503)
        for name, port in self.ports(gw):
            with self.subTest(listener=name):
                self.assertAnswer(get(port, "/readyz"), 503, "engine unavailable\n")
                self.assertAnswer(get(port, "/healthz"), 200, "ok\n")
        redis.start()
        self.wait_ready(gw, 200)
        gw.wait_publish_status(202)


class Draining(HealthTestCase):
    def test_draining_is_not_ready_but_alive(self):
        # One open connection and a long window keep the node draining for seconds.
        gw = self.start("--drain-ms", "4000")
        ws = WebSocket.connect(gw.port, session_url("/sockjs") + "/websocket")
        self.addCleanup(ws.close)
        self.assertEqual(ws.recv_sockjs(), "o")
        mark = gw.log_mark()
        gw.signal(signal.SIGTERM)
        gw.wait_log(r"draining: \d+ connections", since=mark)
        for name, port in self.ports(gw):
            with self.subTest(listener=name):
                self.assertAnswer(get(port, "/readyz"), 503, "draining\n")
                self.assertAnswer(get(port, "/healthz"), 200, "ok\n")
        # Everything else new is refused meanwhile.
        r = get(gw.port, "/sockjs/info")
        self.assertEqual(r.status, 503)
        self.assertEqual(r.text, "Server shutting down\n")


if __name__ == "__main__":
    gwtest.main()
