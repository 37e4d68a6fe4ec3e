#!/usr/bin/python3
"""Misbehaving clients next to well-behaved ones.

Each test keeps a good SockJS websocket session and a good xhr_streaming session echoing on
/echo, lets one bad client loose (garbage HTTP, oversized header, unmasked websocket frames, a
huge announced frame, a websocket or xhr_streaming client that vanishes mid-response, a client
that stalls halfway through its request, a peer that never reads), then checks that the good
sessions still echo correctly, that the gateway logged the bad input (WARN or INFO) and that it
is still running. The last test does all of it at once.

Spec: DESIGN.md "Nothing unbounded ... a slow reader loses its own session, not the process";
STYLE.md "Bad input is never fatal"; the gateway contract ("Bad input always produces a WARN or
INFO log line").
"""

import re
import struct
import time
import uuid

import gwtest
from gwtest import (OP_TEXT, WebSocket, XhrSession, XhrStream, build_request,
                    encode_frame, read_response, session_url)

BAD_INPUT_LOG = r"\b(WARN|INFO)\b"
NON_READER_REPLIES = 80  # replies of 2**18 bytes asked for by the non-reading peer


class GoodClients:
    """A SockJS websocket and an xhr_streaming session on /echo that must keep working."""

    def __init__(self, gw):
        self.gw = gw
        self.ws = WebSocket.connect(gw.port, session_url("/echo") + "/websocket")
        if self.ws.recv_sockjs() != "o":
            raise AssertionError("good websocket did not open")
        url = session_url("/echo")
        self.stream = XhrStream(gw, url)
        if self.stream.frame() != "o":
            raise AssertionError("good stream did not open")
        self.sender = XhrSession.of(gw, url)
        self.sent = 0

    def check(self, what=""):
        """Both sessions echo a fresh message (each stream message is 'a[...]\\n' and small,
        far from /echo's 4096-byte response_limit within one test)."""
        self.sent += 1
        token = "%s #%d %s" % (what, self.sent, uuid.uuid4().hex)
        self.ws.send_sockjs(token)
        got = self.ws.recv_sockjs()
        if got != gwtest.message_frame(token):
            raise AssertionError("good websocket got %r after %s" % (got[:200], what))
        if self.sent % 8 == 0:
            # Start a new stream well before the response_limit ends this one.
            self.stream.close()
            url = session_url("/echo")
            self.stream = XhrStream(self.gw, url)
            if self.stream.frame() != "o":
                raise AssertionError("new good stream did not open")
            self.sender = XhrSession.of(self.gw, url)
        self.sender.send(token)
        got = self.stream.frame()
        if got != gwtest.message_frame(token):
            raise AssertionError("good stream got %r after %s" % (got and got[:200], what))

    def close(self):
        self.ws.close()
        self.stream.close()


class Isolation(gwtest.GatewayTestCase):
    gateway_args = ("--header-timeout-ms", "2000", "--max-output-bytes", "262144",
                    "--max-message-bytes", "1048576")

    def setUp(self):
        super().setUp()
        self.good = GoodClients(self.gw)
        self.addCleanup(self.good.close)
        self.good.check("setup")

    def after(self, what, mark=None):
        """The good clients still work, the gateway runs, and (if `mark`) it logged."""
        self.good.check(what)
        if mark is not None:
            self.gw.wait_log(BAD_INPUT_LOG, since=mark)
        self.gw.assert_alive()

    # -- bad clients, one per helper (used alone and all together) ---------------------------

    def garbage_http(self):
        c = self.gw.connect()
        c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 this is not HTTP\r\n\r\n")
        return c

    def oversized_header(self):
        c = self.gw.connect()
        c.try_send(build_request("GET", "/echo/info", headers={"X-Huge": "h" * 20000}))
        return c

    def unmasked_ws(self):
        ws = WebSocket.connect(self.gw.port, session_url("/echo") + "/websocket")
        ws.recv_sockjs()
        ws.conn.send(encode_frame(OP_TEXT, b'["unmasked"]', mask=False) * 3)
        return ws

    def huge_announced_frame(self):
        ws = WebSocket.connect(self.gw.port, "/echo/websocket")
        # A frame header announcing 2**62 bytes, then a little of it.
        ws.conn.send(bytes([0x81, 0xFF]) + struct.pack("!Q", 1 << 62) + b"mask" + b"x" * 100)
        return ws

    def half_request(self):
        c = self.gw.connect()
        c.send(b"POST /echo/000/abc/xhr_send HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        return c

    def vanishing_ws(self, rst):
        ws = WebSocket.connect(self.gw.port, "/amplify/websocket")
        for _ in range(4):
            ws.send_text("18")  # 4 x 256 KiB of replies that nobody will read
        ws.conn.fill()  # the response has started
        if rst:
            ws.conn.abort()
        else:
            ws.close()

    def vanishing_stream(self, rst):
        url = session_url("/amplify")
        st = XhrStream(self.gw, url)
        st.frame()
        XhrSession.of(self.gw, url).send("16")
        st.body.read_exact(1000)  # mid-frame
        if rst:
            st.abort()
        else:
            st.close()

    def non_reader(self):
        # A small receive window, and 20 MiB of replies: more than the kernel buffers can
        # hold (tcp_wmem max is typically 4 MiB), against --max-output-bytes 256 KiB.
        ws = WebSocket.connect(self.gw.port, "/amplify/websocket", rcvbuf=16384)
        for _ in range(NON_READER_REPLIES):
            if not ws.conn.try_send(encode_frame(OP_TEXT, b"18")):
                break
        return ws

    # -- one at a time -------------------------------------------------------------------

    def test_garbage_http(self):
        mark = self.gw.log_mark()
        c = self.garbage_http()
        with c:
            r = read_response(c)
            self.assertEqual(r.status, 400)
            self.assertClosedByServer(c)
        self.after("garbage", mark)

    def test_oversized_header(self):
        mark = self.gw.log_mark()
        with self.oversized_header() as c:
            self.assertEqual(read_response(c).status, 431)
            self.assertClosedByServer(c)
        self.after("oversized header", mark)

    def test_unmasked_websocket_frames(self):
        mark = self.gw.log_mark()
        ws = self.unmasked_ws()
        try:
            code, _, _ = ws.expect_close()
            self.assertEqual(code, 1002)
        finally:
            ws.close()
        self.after("unmasked frames", mark)

    def test_huge_announced_frame(self):
        mark = self.gw.log_mark()
        ws = self.huge_announced_frame()
        try:
            code, _, _ = ws.expect_close()
            self.assertEqual(code, 1009)
        finally:
            ws.close()
        self.after("huge frame", mark)

    def test_websocket_vanishes_mid_response(self):
        self.vanishing_ws(rst=False)
        self.after("ws FIN")
        self.vanishing_ws(rst=True)
        self.after("ws RST")

    def test_stream_vanishes_mid_response(self):
        self.vanishing_stream(rst=False)
        self.after("stream FIN")
        self.vanishing_stream(rst=True)
        self.after("stream RST")

    def test_half_request_stalls(self):
        mark = self.gw.log_mark()
        with self.half_request() as c:
            for i in range(3):
                self.after("stall %d" % i)
            # With --header-timeout-ms 2000 the staller gets its 408 eventually.
            r = read_response(c, timeout=6)
            self.assertEqual(r.status, 408)
        self.after("stall answered", mark)

    def test_non_reading_peer(self):
        mark = self.gw.log_mark()
        ws = self.non_reader()
        try:
            for i in range(3):
                self.after("non-reader %d" % i)
            # Either the gateway gave up on the peer (EOF before all 80 replies; it must say
            # so in the log), or it applied backpressure and every reply arrives intact.
            # Nothing may stall: data keeps coming until one of the two.
            full = NON_READER_REPLIES * (262144 + 10)
            total = 0
            while total < full:
                try:
                    data = ws.conn.read_some(timeout=5)
                except TimeoutError:
                    self.fail("the non-reading peer got nothing for 5 s and no EOF after "
                              "%d of %d bytes" % (total, full))
                if not data:
                    break
                total += len(data)
            if total < full:
                self.assertTrue(ws.conn.eof)
                self.after("non-reader disconnected", mark)
            else:
                self.assertEqual(total, full)
                ws.send_text("1")
                self.assertEqual(ws.recv_text(), "xx")
        finally:
            ws.close()
        self.after("non-reader gone")

    # -- all at once -----------------------------------------------------------------------

    def test_all_at_once(self):
        mark = self.gw.log_mark()
        stall = self.half_request()
        garbage = self.garbage_http()
        big = self.oversized_header()
        unmasked = self.unmasked_ws()
        huge = self.huge_announced_frame()
        reader = self.non_reader()
        self.addCleanup(stall.close)
        self.addCleanup(garbage.close)
        self.addCleanup(big.close)
        self.addCleanup(unmasked.close)
        self.addCleanup(huge.close)
        self.addCleanup(reader.close)
        self.vanishing_ws(rst=True)
        self.vanishing_stream(rst=False)
        self.good.check("all at once")
        self.vanishing_ws(rst=False)
        self.vanishing_stream(rst=True)
        self.good.check("all at once, again")
        self.assertEqual(read_response(garbage).status, 400)
        self.assertEqual(read_response(big).status, 431)
        self.assertEqual(unmasked.expect_close()[0], 1002)
        self.assertEqual(huge.expect_close()[0], 1009)
        self.assertEqual(read_response(stall, timeout=6).status, 408)
        # At least one log line per rejected input (garbage, header, unmasked, huge, stall).
        deadline = time.monotonic() + gwtest.TIMEOUT
        while True:
            lines = [l for l in self.gw.log_lines(mark) if re.search(BAD_INPUT_LOG, l)]
            if len(lines) >= 5 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertGreaterEqual(len(lines), 5, self.gw.log_text())
        for i in range(3):
            self.after("aftermath %d" % i)


if __name__ == "__main__":
    gwtest.main()
