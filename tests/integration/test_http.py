#!/usr/bin/python3
"""HTTP/1.x behaviour of the gateway's connections: keep-alive, pipelining, HTTP/1.0, limits
(431, 413), malformed input (400), timeouts (408, idle), listeners (IPv6, several).

Spec: SOCKJS_TEST_APP.md "HTTP and encoding", and the gateway's command-line contract
(--max-header-bytes, --max-body-bytes, --header-timeout-ms, --idle-timeout-ms, --listen).
"""

import os
import socket
import time

import gwtest
from gwtest import XhrSession, build_request, chunked, read_response, request, session_url

GREETING = b"Welcome to SockJS!\n"


def ipv6_loopback_available():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class ErrorResponseMixin:
    def assertErrorAndClose(self, conn, status, mark):
        """An error response with a short text/plain body and Connection: close, then the
        connection closed, and a WARN/INFO log line about it."""
        r = read_response(conn)
        self.assertEqual(r.status, status, r)
        self.assertTrue((r.header("Content-Type") or "").lower().startswith("text/plain"), r)
        self.assertIn("close", (r.header("Connection") or "").lower(), r)
        self.assertLess(len(r.body), 1024)
        self.assertClosedByServer(conn)
        self.gw.wait_bad_input_logged(mark)
        self.gw.assert_alive()
        return r


class KeepAlive(gwtest.GatewayTestCase):
    def test_several_requests_on_one_connection(self):
        s = XhrSession(self.gw)
        with self.gw.connect() as c:
            c.send(build_request("GET", "/echo/"))
            r = read_response(c)
            self.assertEqual((r.status, r.body), (200, GREETING))
            c.send(build_request("GET", "/echo/info"))
            r = read_response(c)
            self.assertEqual(r.status, 200)
            self.assertIn("entropy", r.json())
            c.send(build_request("POST", s.url + "/xhr", body=b""))
            self.assertEqual(read_response(c).body, b"o\n")
            c.send(build_request("POST", s.url + "/xhr_send", body=b'["k"]'))
            self.assertEqual(read_response(c).status, 204)
            c.send(build_request("POST", s.url + "/xhr", body=b""))
            self.assertEqual(read_response(c).body, b'a["k"]\n')
            c.send(build_request("GET", "/echo/nothing-here"))
            self.assertEqual(read_response(c).status, 404)
            c.send(build_request("GET", "/echo/"))
            self.assertEqual(read_response(c).body, GREETING)

    def test_pipelining(self):
        with self.gw.connect() as c:
            c.send(build_request("GET", "/echo/") + build_request("GET", "/echo/info")
                   + build_request("GET", "/echo/iframe.html"))
            r1, r2, r3 = read_response(c), read_response(c), read_response(c)
            self.assertEqual(r1.body, GREETING)
            self.assertTrue(r2.header("Content-Type").startswith("application/json"))
            self.assertTrue(r3.header("Content-Type").startswith("text/html"))

    def test_pipelined_posts(self):
        s = XhrSession(self.gw).open()
        with self.gw.connect() as c:
            c.send(build_request("POST", s.url + "/xhr_send", body=b'["1"]')
                   + build_request("POST", s.url + "/xhr_send", body=b'["2"]')
                   + build_request("POST", s.url + "/xhr", body=b""))
            self.assertEqual(read_response(c).status, 204)
            self.assertEqual(read_response(c).status, 204)
            self.assertEqual(read_response(c).body, b'a["1","2"]\n')

    def test_pipelined_behind_long_poll(self):
        # A request pipelined behind a waiting xhr poll is answered after it, in order.
        s = XhrSession(self.gw).open()
        with self.gw.connect() as c:
            c.send(build_request("POST", s.url + "/xhr", body=b"")
                   + build_request("GET", "/echo/"))
            c.expect_silence(0.3)
            s.send("first")
            r1 = read_response(c)
            r2 = read_response(c)
            self.assertEqual(r1.body, b'a["first"]\n')
            self.assertEqual(r2.body, GREETING)

    def test_connection_reused_after_stream(self):
        # A chunked stream that ended with its last chunk leaves the connection usable.
        with self.gw.connect() as c:
            c.send(build_request("POST", session_url("/close") + "/xhr_streaming", body=b""))
            r = read_response(c)
            self.assertEqual(r.body, gwtest.PRELUDE + b'o\nc[3000,"Go away!"]\n')
            c.send(build_request("GET", "/echo/"))
            self.assertEqual(read_response(c).body, GREETING)

    def test_get_with_body_ignored(self):
        with self.gw.connect() as c:
            c.send(build_request("GET", "/echo/", body=b"ignored body"))
            self.assertEqual(read_response(c).body, GREETING)
            c.send(build_request("GET", "/echo/"))
            self.assertEqual(read_response(c).body, GREETING)

    def test_pipelining_split_anywhere(self):
        data = build_request("GET", "/echo/") + build_request("GET", "/echo/info")
        with self.gw.connect() as c:
            for i in range(0, len(data), 7):
                c.send(data[i:i + 7])
            self.assertEqual(read_response(c).body, GREETING)
            self.assertEqual(read_response(c).status, 200)

    def test_http11_connection_close(self):
        with self.gw.connect() as c:
            c.send(build_request("GET", "/echo/", headers={"Connection": "close"}))
            r = read_response(c)
            self.assertEqual(r.body, GREETING)
            self.assertClosedByServer(c)

    def test_http10_closes(self):
        with self.gw.connect() as c:
            c.send(build_request("GET", "/echo/", version="HTTP/1.0"))
            r = read_response(c)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, GREETING)
            self.assertIsNone(r.header("Transfer-Encoding"))
            self.assertClosedByServer(c)

    def test_http10_keep_alive(self):
        with self.gw.connect() as c:
            for _ in range(3):
                c.send(build_request("GET", "/echo/", version="HTTP/1.0",
                                     headers={"Connection": "keep-alive"}))
                r = read_response(c)
                self.assertEqual(r.body, GREETING)
                self.assertIsNone(r.header("Transfer-Encoding"))
                self.assertEqual(r.header("Content-Length"), str(len(GREETING)))
            c.send(build_request("GET", "/echo/info", version="HTTP/1.0"))
            r = read_response(c)
            self.assertEqual(r.status, 200)
            self.assertClosedByServer(c)

    def test_http10_xhr(self):
        s = XhrSession(self.gw)
        with self.gw.connect() as c:
            c.send(build_request("POST", s.url + "/xhr", body=b"", version="HTTP/1.0"))
            r = read_response(c)
            self.assertEqual(r.body, b"o\n")
            self.assertIsNone(r.header("Transfer-Encoding"))

    def test_post_without_content_length(self):
        s = XhrSession(self.gw).open()
        with self.gw.connect() as c:
            c.send(build_request("POST", s.url + "/xhr_send", content_length=False))
            r = read_response(c)
            self.assertEqual(r.status, 500)
            self.assertEqual(r.body, b"Payload expected.")
            # The connection is still in sync: the next request works.
            c.send(build_request("POST", s.url + "/xhr_send", body=b'["after"]'))
            self.assertEqual(read_response(c).status, 204)
        self.assertEqual(s.poll(), 'a["after"]')

    def test_chunked_request_body(self):
        s = XhrSession(self.gw).open()
        with self.gw.connect() as c:
            c.send(build_request("POST", s.url + "/xhr_send",
                                 headers={"Transfer-Encoding": "chunked"})
                   + chunked('["chunked","body"]', sizes=[3, 5, 1]))
            self.assertEqual(read_response(c).status, 204)
            c.send(build_request("POST", s.url + "/xhr", body=b""))
            self.assertEqual(read_response(c).body, b'a["chunked","body"]\n')

    def test_expect_100_continue_not_needed(self):
        # Sending the body right away with Expect: 100-continue must work too.
        s = XhrSession(self.gw).open()
        with self.gw.connect() as c:
            c.send(build_request("POST", s.url + "/xhr_send", body=b'["e"]',
                                 headers={"Expect": "100-continue"}))
            r = read_response(c)
            while r.status == 100:
                r = read_response(c)
            self.assertEqual(r.status, 204)


class Malformed(ErrorResponseMixin, gwtest.GatewayTestCase):
    def test_garbage(self):
        for data in (b"GARBAGE\r\n\r\n", b"\x00\x01\x02\x03\xff\r\n\r\n",
                     b"GET /echo/ HTTP/1.1\r\nno colon here\r\n\r\n",
                     b"GET /echo/ HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
                     b"GET /echo/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
                     b"POST /echo/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                     b"GET /echo/\x00 HTTP/1.1\r\n\r\n",
                     b"GET /echo/ HTTP/1.1\r\nX-Nul: a\x00b\r\n\r\n"):
            with self.subTest(data=data):
                mark = self.gw.log_mark()
                with self.gw.connect() as c:
                    c.send(data)
                    self.assertErrorAndClose(c, 400, mark)

    def test_garbage_after_good_request(self):
        mark = self.gw.log_mark()
        with self.gw.connect() as c:
            c.send(build_request("GET", "/echo/") + b"\x16\x03\x01 not http\r\n\r\n")
            self.assertEqual(read_response(c).body, GREETING)
            self.assertErrorAndClose(c, 400, mark)

    def test_bad_chunked_body(self):
        s = XhrSession(self.gw).open()
        mark = self.gw.log_mark()
        with self.gw.connect() as c:
            c.send(build_request("POST", s.url + "/xhr_send",
                                 headers={"Transfer-Encoding": "chunked"}) + b"zz\r\nabc\r\n")
            self.assertErrorAndClose(c, 400, mark)

    def test_chunk_size_overflow(self):
        s = XhrSession(self.gw).open()
        mark = self.gw.log_mark()
        with self.gw.connect() as c:
            c.send(build_request("POST", s.url + "/xhr_send",
                                 headers={"Transfer-Encoding": "chunked"})
                   + b"ffffffffffffffffffffff\r\nabc\r\n")
            r = read_response(c)
            self.assertIn(r.status, (400, 413))
            self.assertClosedByServer(c)
        self.gw.wait_bad_input_logged(mark)

    def test_still_serving(self):
        self.assertEqual(request(self.gw.port, "GET", "/echo/").body, GREETING)


class HeaderLimit(ErrorResponseMixin, gwtest.GatewayTestCase):
    def test_default_limit(self):
        mark = self.gw.log_mark()
        with self.gw.connect() as c:
            c.try_send(build_request("GET", "/echo/", headers={"X-Big": "a" * 10000}))
            self.assertErrorAndClose(c, 431, mark)

    def test_many_headers_over_limit(self):
        mark = self.gw.log_mark()
        headers = [("X-H%d" % i, "v" * 50) for i in range(200)]
        with self.gw.connect() as c:
            c.try_send(build_request("GET", "/echo/", headers=headers))
            self.assertErrorAndClose(c, 431, mark)

    def test_long_request_line(self):
        # The limit covers the request line too.
        mark = self.gw.log_mark()
        with self.gw.connect() as c:
            c.try_send(build_request("GET", "/echo/" + "u" * 10000))
            self.assertErrorAndClose(c, 431, mark)

    def test_under_limit_is_fine(self):
        r = request(self.gw.port, "GET", "/echo/", headers={"X-Big": "a" * 7000})
        self.assertEqual(r.body, GREETING)

    def test_configured_limit(self):
        gw = self.start_gateway("--max-header-bytes", "1024")
        r = request(gw.port, "GET", "/echo/", headers={"X-Big": "b" * 500})
        self.assertEqual(r.body, GREETING)
        mark = gw.log_mark()
        with gw.connect() as c:
            c.try_send(build_request("GET", "/echo/", headers={"X-Big": "b" * 1500}))
            r = read_response(c)
            self.assertEqual(r.status, 431)
            self.assertClosedByServer(c)
        gw.wait_bad_input_logged(mark)


class BodyLimit(ErrorResponseMixin, gwtest.GatewayTestCase):
    gateway_args = ("--max-body-bytes", "1000")

    def test_content_length_over_limit(self):
        s = XhrSession(self.gw).open()
        mark = self.gw.log_mark()
        with self.gw.connect() as c:
            body = ('["%s"]' % ("x" * 2000)).encode()
            c.try_send(build_request("POST", s.url + "/xhr_send", body=body))
            self.assertErrorAndClose(c, 413, mark)

    def test_announced_length_over_limit(self):
        # Refused on the Content-Length alone, without waiting for the body.
        s = XhrSession(self.gw).open()
        mark = self.gw.log_mark()
        with self.gw.connect() as c:
            c.send(build_request("POST", s.url + "/xhr_send", content_length=10 ** 9))
            self.assertErrorAndClose(c, 413, mark)

    def test_chunked_over_limit(self):
        s = XhrSession(self.gw).open()
        mark = self.gw.log_mark()
        with self.gw.connect() as c:
            body = chunked('["%s"]' % ("y" * 2000), sizes=[500] * 4)
            c.try_send(build_request("POST", s.url + "/xhr_send",
                                     headers={"Transfer-Encoding": "chunked"}) + body)
            self.assertErrorAndClose(c, 413, mark)

    def test_under_limit_is_fine(self):
        s = XhrSession(self.gw).open()
        s.send("z" * 900)
        self.assertEqual(s.poll(), 'a["%s"]' % ("z" * 900))


class Timeouts(ErrorResponseMixin, gwtest.GatewayTestCase):
    gateway_args = ("--header-timeout-ms", "500", "--idle-timeout-ms", "700")

    def test_incomplete_header_408(self):
        mark = self.gw.log_mark()
        with self.gw.connect() as c:
            t0 = time.monotonic()
            c.send(b"GET /echo/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            r = self.assertErrorAndClose(c, 408, mark)
            elapsed = time.monotonic() - t0
        self.assertTrue(0.35 <= elapsed <= 3.0, "408 after %.2f s" % elapsed)

    def test_trickled_header_408(self):
        # Bytes keep coming but the header is not complete in time: still 408.
        with self.gw.connect() as c:
            t0 = time.monotonic()
            c.send(b"GET /echo/ HTTP/1.1\r\n")
            for i in range(40):
                if not c.try_send(b"X-%d: a\r\n" % i):
                    break
                try:
                    if c.fill(0.05):
                        break  # the response arrived
                except socket.timeout:
                    pass
            r = read_response(c)
            self.assertEqual(r.status, 408)
            self.assertTrue(time.monotonic() - t0 <= 3.0)

    def test_idle_keep_alive_closed(self):
        with self.gw.connect() as c:
            c.send(build_request("GET", "/echo/"))
            self.assertEqual(read_response(c).body, GREETING)
            t0 = time.monotonic()
            self.assertClosedByServer(c)  # silently: no bytes, just EOF
            elapsed = time.monotonic() - t0
        self.assertTrue(0.5 <= elapsed <= 3.0, "closed after %.2f s" % elapsed)

    def test_activity_within_idle_timeout_keeps_connection(self):
        with self.gw.connect() as c:
            for _ in range(4):
                c.send(build_request("GET", "/echo/"))
                self.assertEqual(read_response(c).body, GREETING)
                time.sleep(0.3)  # idle, but shorter than the 700 ms idle timeout

    def test_websocket_not_cut_by_idle_timeout(self):
        # A websocket is not an idle keep-alive connection (raw websockets have no heartbeat).
        ws = gwtest.WebSocket.connect(self.gw.port, "/echo/websocket")
        try:
            ws.conn.expect_silence(1.5)
            ws.send_text("still open")
            self.assertEqual(ws.recv_text(), "still open")
        finally:
            ws.close()

    def test_stream_not_cut_by_timeouts(self):
        st = gwtest.XhrStream(self.gw, session_url("/echo"))
        try:
            self.assertEqual(st.frame(), "o")
            st.conn.expect_silence(1.5)
            XhrSession.of(self.gw, st.url).send("x")
            self.assertEqual(st.frame(), 'a["x"]')
        finally:
            st.close()

    def test_long_poll_not_cut_by_idle_timeout(self):
        # A request in progress is not idle: a poll waiting for longer than the idle timeout
        # still gets its message.
        s = XhrSession(self.gw).open()
        c = s.start_poll()
        try:
            c.expect_silence(1.2)
            s.send("late")
            self.assertEqual(read_response(c).body, b'a["late"]\n')
        finally:
            c.close()


class Resources(gwtest.GatewayTestCase):
    per_test_gateway = True

    def test_no_fd_leak(self):
        if not os.path.isdir("/proc/%d/fd" % self.gw.proc.pid):
            self.skipTest("no /proc")
        request(self.gw.port, "GET", "/echo/")  # warm up (lazy allocations)
        baseline = self.gw.stable_fd_count()
        conns = []
        try:
            for i in range(60):
                ws = gwtest.WebSocket.connect(self.gw.port, session_url("/echo") + "/websocket")
                conns.append(ws)
                self.assertEqual(ws.recv_sockjs(), "o")
                raw = gwtest.WebSocket.connect(self.gw.port, "/echo/websocket")
                conns.append(raw)
                st = gwtest.XhrStream(self.gw, session_url("/echo"))
                conns.append(st)
                self.assertEqual(st.frame(), "o")
                c = self.gw.connect()
                conns.append(c)
                c.send(build_request("GET", "/echo/info"))
                self.assertEqual(read_response(c).status, 200)
            self.assertGreaterEqual(self.gw.fd_count(), baseline + 200)  # they are all open
        finally:
            for i, c in enumerate(conns):
                if i % 2:
                    c.close()
                else:
                    (c.abort if hasattr(c, "abort") else c.conn.abort)()
        # Bad requests too: the gateway closes those itself.
        for _ in range(30):
            with self.gw.connect() as c:
                c.send(b"BAD\r\n\r\n")
                read_response(c)
                c.read_until_eof()
        n = self.gw.wait_fds(baseline)
        self.assertLessEqual(n, baseline, "gateway holds %d fds, %d before" % (n, baseline))


class Listeners(gwtest.GatewayTestCase):
    per_test_gateway = False

    def test_two_listeners(self):
        gw = self.start_gateway(listen=["127.0.0.1:0", "127.0.0.1:0"])
        self.assertEqual(len(gw.addresses), 2)
        self.assertNotEqual(gw.addresses[0][1], gw.addresses[1][1])
        for i in range(2):
            with gw.connect(index=i) as c:
                c.send(build_request("GET", "/echo/"))
                self.assertEqual(read_response(c).body, GREETING)
        # One session table behind both listeners.
        url = session_url("/echo")
        with gw.connect(index=0) as c:
            c.send(build_request("POST", url + "/xhr", body=b""))
            self.assertEqual(read_response(c).body, b"o\n")
        with gw.connect(index=1) as c:
            c.send(build_request("POST", url + "/xhr_send", body=b'["cross"]'))
            self.assertEqual(read_response(c).status, 204)
        with gw.connect(index=0) as c:
            c.send(build_request("POST", url + "/xhr", body=b""))
            self.assertEqual(read_response(c).body, b'a["cross"]\n')

    def test_ipv6_listener(self):
        if not ipv6_loopback_available():
            self.skipTest("IPv6 loopback ::1 not available on this machine")
        gw = self.start_gateway(listen=["[::1]:0"])
        self.assertEqual(gw.addresses[0][0], "::1")
        with gw.connect() as c:
            self.assertEqual(c.sock.family, socket.AF_INET6)
            c.send(build_request("GET", "/echo/", host=False, headers={"Host": "[::1]"}))
            self.assertEqual(read_response(c).body, GREETING)
        ws = gwtest.WebSocket.connect(gw.port, "/echo/websocket", host="::1")
        try:
            ws.send_text("v6")
            self.assertEqual(ws.recv_text(), "v6")
        finally:
            ws.close()

    def test_sigterm_with_open_connections(self):
        # stop() (at cleanup) requires exit status 0 even with clients attached.
        gw = self.start_gateway()
        s = XhrSession(gw).open()
        poll = s.start_poll()
        self.addCleanup(poll.close)
        ws = gwtest.WebSocket.connect(gw.port, "/echo/websocket")
        self.addCleanup(ws.close)
        idle = gw.connect()
        self.addCleanup(idle.close)
        st = gwtest.XhrStream(gw, session_url("/echo"))
        self.addCleanup(st.close)
        half = gw.connect()
        self.addCleanup(half.close)
        half.send(b"GET /echo/ HTTP/1.1\r\n")
        poll.expect_silence(0.2)
        gw.stop()


class StrictHeaders(ErrorResponseMixin, gwtest.GatewayTestCase):
    """RFC 9112 rules that keep a proxy in front and the gateway from reading one request's
    framing differently (request smuggling). Some are refused by http-parser itself; those tests
    show that it does, and that the refusal is a clean 400 with a reason."""

    def refused(self, data, status=400, reason=None, split=False):
        mark = self.gw.log_mark()
        with self.gw.connect() as c:
            if split:  # one byte per write: the checks must hold across reads
                for i in range(len(data)):
                    if not c.try_send(data[i:i + 1]):
                        break
            else:
                c.try_send(data)
            r = self.assertErrorAndClose(c, status, mark)
        if reason:
            self.assertIn(reason, r.body.decode("utf-8", "replace"))
            self.assertTrue(self.gw.wait_log(reason, since=mark))

    def xhr_send(self, headers, body):
        s = XhrSession(self.gw).open()
        return build_request("POST", s.url + "/xhr_send", headers=headers) + body

    # RFC 9112 5.1: no whitespace between a field name and the colon. http-parser keeps the
    # space in the name, yet still honours Transfer-Encoding and Content-Length spelt so.
    def test_space_before_colon(self):
        for data in (self.xhr_send([("Transfer-Encoding ", "chunked")], chunked('["a"]')),
                     self.xhr_send([("Content-Length ", "5")], b'["a"]'),
                     build_request("GET", "/echo/", headers=[("X-Thing ", "1")])):
            with self.subTest(data=data):
                self.refused(data, 400, "whitespace between header field name and colon")

    # RFC 9110 5.1: a field name is a token; http-parser lets spaces through.
    def test_space_in_name(self):
        for name in ("X Thing", "Transfer Encoding"):
            with self.subTest(name=name):
                self.refused(build_request("GET", "/echo/", headers=[(name, "chunked")]), 400,
                             "space in a header field name")

    # RFC 9112 5.2: obs-fold is refused (a server must reject or replace it).
    def test_obs_fold(self):
        fold_te = self.xhr_send([("Transfer-Encoding", "\r\n chunked")], chunked('["a"]'))
        fold_x = build_request("GET", "/echo/", headers=[("X-Thing", "a\r\n b")])
        fold_tab = build_request("GET", "/echo/", headers=[("X-Thing", "a\r\n\tb")])
        for data in (fold_te, fold_x, fold_tab):
            for split in (False, True):
                with self.subTest(data=data, split=split):
                    self.refused(data, 400, "obs-fold", split=split)

    # RFC 9112 2.2: whitespace between the start line and the first field.
    def test_whitespace_before_first_header(self):
        self.refused(b"GET /echo/ HTTP/1.1\r\n Host: 127.0.0.1\r\n\r\n", 400, "obs-fold")

    # RFC 9112 6.1 / 6.3 (refused by http-parser).
    def test_transfer_encoding_and_content_length(self):
        for headers in ([("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
                        [("Transfer-Encoding", "chunked"), ("Content-Length", "5")]):
            with self.subTest(headers=headers):
                self.refused(self.xhr_send(headers, chunked('["a"]')), 400)

    # RFC 9112 6.3: a request whose final coding is not chunked has no known length (refused by
    # http-parser before; now by our check, which comes first).
    def test_final_coding_not_chunked(self):
        for te in ("gzip", "chunked, gzip", "identity", ""):
            with self.subTest(te=te):
                self.refused(self.xhr_send([("Transfer-Encoding", te)], b"x"), 400)

    # RFC 9112 6.1: chunked at most once, also when spread over two lines.
    def test_chunked_twice(self):
        for headers in ([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")],
                        [("Transfer-Encoding", "chunked, chunked")]):
            with self.subTest(headers=headers):
                self.refused(self.xhr_send(headers, chunked('["a"]')), 400,
                             "chunked applied more than once")

    # RFC 9112 6.1: a coding we do not implement before chunked gets 501.
    def test_unknown_coding(self):
        for headers in ([("Transfer-Encoding", "gzip, chunked")],
                        [("Transfer-Encoding", "gzip"), ("Transfer-Encoding", "chunked")]):
            with self.subTest(headers=headers):
                self.refused(self.xhr_send(headers, chunked('["a"]')), 501,
                             "transfer coding other than chunked")

    # RFC 9112 6.1: HTTP/1.0 has no Transfer-Encoding; its framing is faulty.
    def test_transfer_encoding_in_http10(self):
        s = XhrSession(self.gw).open()
        data = build_request("POST", s.url + "/xhr_send", version="HTTP/1.0",
                             headers={"Transfer-Encoding": "chunked"}) + chunked('["a"]')
        self.refused(data, 400, "Transfer-Encoding in an HTTP/1.0 request")

    # RFC 9112 6.3 (refused by http-parser): several or invalid Content-Length values.
    def test_content_length_values(self):
        for values in (["3", "5"], ["5", "5"], ["5, 5"], ["5x"], ["+5"], [""], ["1" * 30]):
            with self.subTest(values=values):
                headers = [("Content-Length", v) for v in values]
                self.refused(self.xhr_send(headers, b'["a"]'), 400)

    # RFC 9110 5.5 (refused by http-parser): NUL, bare CR and other controls in values.
    def test_control_characters_in_values(self):
        for value in (b"a\x00b", b"a\rb", b"a\x01b", b"a\x1fb", b"a\x7fb"):
            with self.subTest(value=value):
                self.refused(b"GET /echo/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Thing: " + value
                             + b"\r\n\r\n", 400)

    # RFC 9110 5.1 (refused by http-parser): a field name is a token.
    def test_invalid_name_characters(self):
        for name in (b"X(Y", b"X/Y", b"X@Y", b"X{Y", b'X"Y', b"X\xe9Y", b"X\tY", b""):
            with self.subTest(name=name):
                self.refused(b"GET /echo/ HTTP/1.1\r\nHost: 127.0.0.1\r\n" + name
                             + b": 1\r\n\r\n", 400)

    # RFC 9112 3.2: more than one Host is refused. (A missing Host in HTTP/1.1 is not: some
    # of our own tests and tools send none.)
    def test_duplicate_host(self):
        data = build_request("GET", "/echo/", host=False,
                             headers=[("Host", "127.0.0.1"), ("Host", "example.com")])
        self.refused(data, 400, "more than one Host header field")

    # RFC 9112 7.1 (the non-strict http-parser took any two bytes for the CRLF after a
    # chunk's data, any byte after a CR for LF, and whitespace after a chunk size).
    def test_chunked_framing(self):
        for body in (b'5\r\n["a"]XY0\r\n\r\n', b'5\r\n["a"]\r\n0\rX\r\n',
                     b'5\rX["a"]\r\n0\r\n\r\n', b'5 \r\n["a"]\r\n0\r\n\r\n',
                     b'5\r\n["a"]\r\n0\r\n\r\r'):
            for split in (False, True):
                with self.subTest(body=body, split=split):
                    self.refused(self.xhr_send([("Transfer-Encoding", "chunked")], body), 400,
                                 "malformed chunked body framing", split=split)
        # Refused by http-parser itself.
        for body in (b'5\t\r\n["a"]\r\n0\r\n\r\n', b' 5\r\n["a"]\r\n0\r\n\r\n',
                     b'0x5\r\n["a"]\r\n0\r\n\r\n', b'5\n["a"]\r\n0\r\n\r\n'):
            with self.subTest(body=body):
                self.refused(self.xhr_send([("Transfer-Encoding", "chunked")], body), 400)

    def test_chunked_framing_valid(self):
        """Extensions (with whitespace before the ';'), hex sizes in any case, trailers."""
        s = XhrSession(self.gw).open()
        with self.gw.connect() as c:
            for body in (b'5 ;x=y\r\n["a"]\r\n0\r\n\r\n',
                         b'A;x="q"\r\n["b", "c"]\r\n0\r\nX-T: 1\r\n\r\n'):
                c.send(build_request("POST", s.url + "/xhr_send",
                                     headers={"Transfer-Encoding": "chunked"}) + body)
                self.assertEqual(read_response(c).status, 204)
        self.assertEqual(s.poll(), 'a["a","b","c"]')

    # RFC 9112 3.2: no whitespace or control characters in the request target.
    def test_controls_in_target(self):
        for target in (b"/echo/\tx", b"/echo/\x0cx"):
            with self.subTest(target=target):
                self.refused(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400,
                             "control character in the request target")

    # RFC 9110 6.5.1: trailer fields are not merged into the header section.
    def test_trailer_fields_are_not_headers(self):
        s = XhrSession(self.gw, prefix="/cookie_needed_echo")
        with self.gw.connect() as c:
            c.send(build_request("POST", s.url + "/xhr", headers={"Transfer-Encoding": "chunked"})
                   + b"0\r\nCookie: JSESSIONID=from-trailer\r\n\r\n")
            r = read_response(c)
        self.assertEqual((r.status, r.body), (200, b"o\n"), r)
        self.assertEqual(r.header("Set-Cookie"), "JSESSIONID=dummy; path=/", r)

    def test_valid_requests_still_served(self):
        """What the rules must not refuse: chunked in any case, tabs and obs-text in values,
        empty lines before the request line, and a body that starts with whitespace (the
        obs-fold check ends with the head), also pipelined."""
        s = XhrSession(self.gw).open()
        with self.gw.connect() as c:
            c.send(build_request("POST", s.url + "/xhr_send",
                                 headers={"Transfer-Encoding": "CHUNKED"}) + chunked('["a"]'))
            self.assertEqual(read_response(c).status, 204)
            c.send(b"\r\n" + build_request("GET", "/echo/", headers=[("X-Tab", "a\tb"),
                                                                      ("X-Text", "caf\xe9")]))
            self.assertEqual(read_response(c).body, GREETING)
            body = b' \r\n ["b"]'
            c.send(build_request("POST", s.url + "/xhr_send", body=body)
                   + build_request("POST", s.url + "/xhr_send",
                                   headers={"Transfer-Encoding": "chunked"})
                   + b"3\r\n\r\n \r\n" + chunked('["c"]'))
            self.assertEqual(read_response(c).status, 204)
            self.assertEqual(read_response(c).status, 204)
        self.assertEqual(s.poll(), 'a["a","b","c"]')


if __name__ == "__main__":
    gwtest.main()
