#!/usr/bin/python3
"""The session lifecycle over every receiver transport: xhr, jsonp (polling), xhr_streaming,
eventsource, htmlfile (streaming), and websocket where it applies.

Open -> echo -> application close (and the close frame repeated until disconnect_delay), second
receiver (every pair of transports), response_limit on every stream, disconnect_delay after the
last receiver, an attached receiver keeping the session, a receiver dropped by the client,
JSESSIONID on every session URL, 404 for bad session paths.

Spec: SOCKJS_TEST_APP.md, "Session lifecycle", "Frames and transports", "Common headers"
(JSESSIONID). Timer bounds as elsewhere: a 1000 ms timer fires between 0.8 s and 3 s.
"""

import time

import gwtest
from gwtest import (ANOTHER, GO_AWAY, INTERRUPTED, TIMER_MAX, TIMER_MIN, build_request,
                    EventSourceStream, HtmlFileStream, parse_frame, parse_jsonp_body, read_response,
                    request, session_url, XhrSession, XhrStream)


POLLING = ("xhr", "jsonp")
STREAMING = ("xhr_streaming", "eventsource", "htmlfile")
RECEIVERS = POLLING + STREAMING


class PollReceiver:
    """One polling request (xhr or jsonp) with the stream interface: frame() gives the
    response's frame, then None (the response is complete)."""

    def __init__(self, gw, url, transport, headers=None, version="HTTP/1.1"):
        self.transport = transport
        self.conn = gw.connect()
        if transport == "xhr":
            req = build_request("POST", url + "/xhr", body=b"", headers=headers,
                                version=version)
        else:
            req = build_request("GET", url + "/jsonp?c=cb", headers=headers, version=version)
        self.conn.send(req)
        self.response = None
        self.done = False

    def frame(self, timeout=None, skip_heartbeats=False):
        if self.done:
            return None
        r = read_response(self.conn, method="POST" if self.transport == "xhr" else "GET",
                          timeout=timeout)
        self.response = r
        self.done = True
        if r.status != 200:
            raise AssertionError("%s status %d: %r" % (self.transport, r.status, r))
        if self.transport == "xhr":
            if not r.body.endswith(b"\n") or b"\n" in r.body[:-1]:
                raise AssertionError("xhr body is not one frame plus newline: %r" % r.body[:300])
            return r.body[:-1].decode("utf-8")
        return parse_jsonp_body(r.body, "cb")

    def expect_end(self, timeout=None):
        if not self.done:
            raise AssertionError("the poll has not been answered")

    def close(self):
        self.conn.close()

    def abort(self):
        self.conn.abort()


def open_receiver(gw, url, transport, **kw):
    """A receiver request of `transport` on session URL `url` (streams: head and prelude read;
    polls: request sent, response not yet read)."""
    if transport in POLLING:
        return PollReceiver(gw, url, transport, **kw)
    if transport == "xhr_streaming":
        return XhrStream(gw, url, **kw)
    if transport == "eventsource":
        return EventSourceStream(gw, url, **kw)
    if transport == "htmlfile":
        return HtmlFileStream(gw, url, **kw)
    raise ValueError(transport)


def receive_one(gw, url, transport):
    """One receiver request: its first frame, and for streams that the stream then ends."""
    rc = open_receiver(gw, url, transport)
    try:
        frame = rc.frame()
        return frame
    finally:
        rc.close()


class MatrixTestCase(gwtest.GatewayTestCase):
    def receiver(self, url, transport, **kw):
        rc = open_receiver(self.gw, url, transport, **kw)
        self.addCleanup(rc.close)
        return rc

    def attach(self, url, transport):
        """A receiver of `transport` attached to the existing session at `url`: a stream is
        attached once its head is in; a poll has to be seen waiting."""
        rc = self.receiver(url, transport)
        if transport in POLLING:
            rc.conn.expect_silence(0.3)
        return rc

    def open_session(self, prefix, transport):
        """A new session opened through `transport`; returns (url, receiver or None). A poll
        is answered with 'o' and ends; a stream stays attached after 'o'."""
        url = session_url(prefix)
        rc = self.receiver(url, transport)
        self.assertEqual(rc.frame(), "o")
        if transport in POLLING:
            rc.expect_end()
            return url, None
        return url, rc


class OpenEchoClose(MatrixTestCase):
    def test_echo(self):
        for t in RECEIVERS:
            with self.subTest(transport=t):
                url, rc = self.open_session("/echo", t)
                s = XhrSession.of(self.gw, url)
                s.send("hello", "world")
                if rc is None:
                    rc = self.receiver(url, t)
                got = []
                while len(got) < 2:
                    kind, msgs = parse_frame(rc.frame())
                    self.assertEqual(kind, "a")
                    got += msgs
                self.assertEqual(got, ["hello", "world"])

    def test_queued_then_attached(self):
        # Messages queued while no receiver is attached all come to the next receiver.
        for t in RECEIVERS:
            with self.subTest(transport=t):
                url = session_url("/echo")
                s = XhrSession.of(self.gw, url).open()
                s.send("1", "2")
                s.send("3")
                rc = self.receiver(url, t)
                got = []
                while len(got) < 3:
                    kind, msgs = parse_frame(rc.frame())
                    self.assertEqual(kind, "a")
                    got += msgs
                self.assertEqual(got, ["1", "2", "3"])

    def test_echo_websocket(self):
        ws = gwtest.WebSocket.connect(self.gw.port, session_url("/echo") + "/websocket")
        self.addCleanup(ws.close)
        self.assertEqual(ws.recv_sockjs(), "o")
        ws.send_sockjs("hello")
        self.assertEqual(ws.recv_sockjs(), 'a["hello"]')

    def test_close(self):
        # Open then the application's close: streams end right after the close frame.
        for t in RECEIVERS:
            with self.subTest(transport=t):
                url = session_url("/close")
                rc = self.receiver(url, t)
                self.assertEqual(rc.frame(), "o")
                if t in POLLING:
                    rc = self.receiver(url, t)
                self.assertEqual(rc.frame(), GO_AWAY)
                rc.expect_end()

    def test_close_websocket(self):
        ws = gwtest.WebSocket.connect(self.gw.port, session_url("/close") + "/websocket")
        self.addCleanup(ws.close)
        self.assertEqual(ws.recv_sockjs(), "o")
        self.assertEqual(ws.recv_sockjs(), GO_AWAY)
        ws.expect_close()

    def test_close_frame_repeats_on_every_transport(self):
        # After the close, every later receiver request, whatever its transport, gets the same
        # close frame and ends (/close keeps the 5 s disconnect_delay).
        for first in RECEIVERS:
            with self.subTest(first=first):
                url = session_url("/close")
                rc = self.receiver(url, first)
                self.assertEqual(rc.frame(), "o")
                if first in POLLING:
                    rc = self.receiver(url, first)
                self.assertEqual(rc.frame(), GO_AWAY)
                for later in RECEIVERS + RECEIVERS:
                    rc = self.receiver(url, later)
                    self.assertEqual(rc.frame(), GO_AWAY, "%s after %s" % (later, first))
                    rc.expect_end()
                    rc.close()

    def test_close_expires_after_disconnect_delay(self):
        # /short_timers_close: once disconnect_delay (1 s) has passed without a receiver, the
        # id opens a new session, on every transport.
        urls = {}
        for t in RECEIVERS:
            url = session_url("/short_timers_close")
            rc = self.receiver(url, t)
            self.assertEqual(rc.frame(), "o")
            if t in POLLING:
                rc = self.receiver(url, t)
            self.assertEqual(rc.frame(), GO_AWAY)
            rc.expect_end()
            rc.close()
            urls[t] = url
        time.sleep(2.5)  # no event to await: the time without a receiver is under test
        for t in RECEIVERS:
            with self.subTest(transport=t):
                rc = self.receiver(urls[t], t)
                self.assertEqual(rc.frame(), "o")


class SecondReceiver(MatrixTestCase):
    def test_every_pair(self):
        for first in RECEIVERS:
            for second in RECEIVERS:
                with self.subTest(first=first, second=second):
                    if first in POLLING:
                        url = session_url("/echo")
                        XhrSession.of(self.gw, url).open()
                        rc1 = self.attach(url, first)
                    else:
                        url, rc1 = self.open_session("/echo", first)
                    rc2 = self.receiver(url, second)
                    self.assertEqual(rc2.frame(), ANOTHER)
                    rc2.expect_end()  # streams end right after the frame
                    rc2.close()
                    # The first receiver keeps the session.
                    XhrSession.of(self.gw, url).send("still here")
                    self.assertEqual(rc1.frame(), 'a["still here"]')
                    rc1.close()

    def test_polling_while_websocket_is_another_session(self):
        # A websocket is its own session: xhr on the same id is not a second receiver of it.
        sid = str(gwtest.uuid.uuid4())
        ws = gwtest.WebSocket.connect(self.gw.port, "/echo/000/%s/websocket" % sid)
        self.addCleanup(ws.close)
        self.assertEqual(ws.recv_sockjs(), "o")
        self.assertEqual(XhrSession(self.gw, session=sid).poll(), "o")


class ResponseLimit(MatrixTestCase):
    def test_one_4096_message(self):
        for t in STREAMING:
            with self.subTest(transport=t):
                url, rc = self.open_session("/echo", t)
                s = XhrSession.of(self.gw, url)
                s.send("x" * 4096)
                self.assertEqual(rc.frame(), 'a["%s"]' % ("x" * 4096))
                rc.expect_end()
                s.send("after")
                self.assertEqual(s.poll(), 'a["after"]')

    def test_three_fit_fourth_ends(self):
        # 1300-x messages: three stay under 4096 bytes on every stream whether the frames or
        # their transport encoding is counted; the fourth goes past.
        msg = "x" * 1300
        for t in STREAMING:
            with self.subTest(transport=t):
                url, rc = self.open_session("/echo", t)
                s = XhrSession.of(self.gw, url)
                for i in range(4):
                    s.send(msg)
                    self.assertEqual(rc.frame(), 'a["%s"]' % msg, "message %d" % (i + 1))
                rc.expect_end()

    def test_amplify(self):
        for t in STREAMING:
            with self.subTest(transport=t):
                url, rc = self.open_session("/amplify", t)
                s = XhrSession.of(self.gw, url)
                s.send("16")
                self.assertEqual(rc.frame(), 'a["%s"]' % ("x" * 65536))
                s.send("16")
                self.assertEqual(rc.frame(), 'a["%s"]' % ("x" * 65536))
                rc.expect_end()

    def test_http10(self):
        for t in STREAMING:
            with self.subTest(transport=t):
                url = session_url("/echo")
                rc = self.receiver(url, t, version="HTTP/1.0")
                self.assertEqual(rc.frame(), "o")
                XhrSession.of(self.gw, url).send("x" * 4096)
                self.assertEqual(rc.frame(), 'a["%s"]' % ("x" * 4096))
                rc.expect_end()
                self.assertTrue(rc.conn.eof, "HTTP/1.0 stream not ended by closing")


class DisconnectDelay(MatrixTestCase):
    """/short_timers_echo: disconnect_delay 1000 ms after the last receiver ended."""

    def wait_destroyed(self, url, t0):
        s = XhrSession.of(self.gw, url)
        while True:
            status = s.send_raw('["x"]').status
            elapsed = time.monotonic() - t0
            if status == 404:
                return elapsed
            self.assertEqual(status, 204)
            self.assertLess(elapsed, TIMER_MAX + 1, "session not destroyed")
            time.sleep(0.05)  # no event to await: xhr_send is the only probe

    def test_after_poll(self):
        for t in POLLING:
            with self.subTest(transport=t):
                url, _ = self.open_session("/short_timers_echo", t)
                t0 = time.monotonic()
                elapsed = self.wait_destroyed(url, t0)
                self.assertGreaterEqual(elapsed, TIMER_MIN, "destroyed after %.2f s" % elapsed)
                self.assertEqual(receive_one(self.gw, url, t), "o")

    def test_after_stream_ends(self):
        # The stream ends by itself (response_limit, 128 KiB here), so the session is not
        # interrupted: it lives on without a receiver until disconnect_delay.
        for t in STREAMING:
            with self.subTest(transport=t):
                url, rc = self.open_session("/short_timers_echo", t)
                s = XhrSession.of(self.gw, url)
                s.send("x" * 131072)
                self.assertEqual(rc.frame(skip_heartbeats=True), 'a["%s"]' % ("x" * 131072))
                rc.expect_end()
                t0 = time.monotonic()
                rc.close()
                self.assertEqual(s.send_raw('["queued"]').status, 204)
                elapsed = self.wait_destroyed(url, t0)
                self.assertGreaterEqual(elapsed, TIMER_MIN, "destroyed after %.2f s" % elapsed)
                self.assertEqual(receive_one(self.gw, url, t), "o")

    def test_attached_stream_keeps_session(self):
        for t in STREAMING:
            with self.subTest(transport=t):
                url, rc = self.open_session("/short_timers_echo", t)
                t0 = time.monotonic()
                while time.monotonic() - t0 < 2.2:  # past two disconnect_delays
                    self.assertEqual(rc.frame(), "h")
                XhrSession.of(self.gw, url).send("alive")
                self.assertEqual(rc.frame(skip_heartbeats=True), 'a["alive"]')

    def test_heartbeat_ends_poll_and_polling_keeps_session(self):
        for t in POLLING:
            with self.subTest(transport=t):
                url, _ = self.open_session("/short_timers_echo", t)
                t0 = time.monotonic()
                for i in range(2):  # each poll ends with a heartbeat after ~1 s
                    start = time.monotonic()
                    self.assertEqual(receive_one(self.gw, url, t), "h")
                    took = time.monotonic() - start
                    self.assertTrue(TIMER_MIN <= took <= TIMER_MAX, "heartbeat after %.2f s"
                                    % took)
                self.assertGreater(time.monotonic() - t0, 1.6)
                s = XhrSession.of(self.gw, url)
                self.assertEqual(s.send_raw('["alive"]').status, 204)
                self.assertEqual(receive_one(self.gw, url, t), 'a["alive"]')


class DroppedReceiver(MatrixTestCase):
    def next_frame(self, url):
        """Poll until the gateway has noticed the drop (until then a poll may still find the
        old receiver attached and get 2010)."""
        s = XhrSession.of(self.gw, url)
        deadline = time.monotonic() + gwtest.TIMEOUT
        while True:
            frame = s.poll()
            if frame != ANOTHER or time.monotonic() > deadline:
                return frame
            time.sleep(0.05)  # no event to await: the drop is seen only through polls

    def test_drop(self):
        for t in RECEIVERS:
            for how in ("close", "abort"):
                with self.subTest(transport=t, how=how):
                    url = session_url("/echo")
                    s = XhrSession.of(self.gw, url).open()
                    rc = self.attach(url, t)
                    if t in STREAMING:
                        s.send("attached")
                        self.assertEqual(rc.frame(), 'a["attached"]')
                    getattr(rc, how)()
                    frame = self.next_frame(url)
                    self.assertIn(frame, (INTERRUPTED, "o"))
                    if frame == INTERRUPTED:
                        # The session is closed: later receivers get the same close frame.
                        for later in RECEIVERS:
                            self.assertEqual(receive_one(self.gw, url, later), INTERRUPTED,
                                             later)

    def test_drop_stream_that_opened_the_session(self):
        for t in STREAMING:
            with self.subTest(transport=t):
                url, rc = self.open_session("/echo", t)
                rc.close()
                self.assertIn(self.next_frame(url), (INTERRUPTED, "o"))


class Cookies(MatrixTestCase):
    """JSESSIONID on every session URL of /cookie_needed_echo, and on no other prefix."""

    def session_requests(self, prefix, headers):
        """(name, response) of every session URL: xhr, xhr_send, jsonp and jsonp_send on one
        session, each stream on a session of its own."""
        out = []
        h = dict(headers)
        url = session_url(prefix)
        r = request(self.gw.port, "POST", url + "/xhr", body=b"", headers=h)
        self.assertEqual(r.body, b"o\n")
        out.append(("xhr", r))
        r = request(self.gw.port, "POST", url + "/xhr_send", body='["a"]', headers=h)
        self.assertEqual(r.status, 204)
        out.append(("xhr_send", r))
        r = request(self.gw.port, "GET", url + "/jsonp?c=cb", headers=h)
        self.assertEqual(parse_jsonp_body(r.body, "cb"), 'a["a"]')
        out.append(("jsonp", r))
        r = request(self.gw.port, "POST", url + "/jsonp_send", body="d=%5B%22b%22%5D",
                    headers=dict(h, **{"Content-Type": gwtest.FORM_CT}))
        self.assertEqual((r.status, r.body), (200, b"ok"))
        out.append(("jsonp_send", r))
        r = request(self.gw.port, "POST", url + "/jsonp_send", body='["c"]',
                    headers=dict(h, **{"Content-Type": "text/plain"}))
        self.assertEqual((r.status, r.body), (200, b"ok"))
        out.append(("jsonp_send text/plain", r))
        for t in STREAMING:
            rc = open_receiver(self.gw, session_url(prefix), t, headers=h)
            try:
                self.assertEqual(rc.frame(), "o")
                out.append((t, rc.response))
            finally:
                rc.close()
        return out

    def test_dummy(self):
        for name, r in self.session_requests("/cookie_needed_echo", {}):
            with self.subTest(url=name):
                self.assertJsessionid(r, "dummy")

    def test_echoed(self):
        for name, r in self.session_requests("/cookie_needed_echo",
                                             {"Cookie": "a=b; JSESSIONID=abc123; c=d"}):
            with self.subTest(url=name):
                self.assertJsessionid(r, "abc123")

    def test_not_on_other_prefixes(self):
        for name, r in self.session_requests("/echo", {"Cookie": "JSESSIONID=abc123"}):
            with self.subTest(url=name):
                self.assertNoCookie(r)


class Paths(MatrixTestCase):
    def test_invalid_session_paths(self):
        requests = [("GET", "eventsource"), ("GET", "htmlfile?c=cb"), ("GET", "jsonp?c=cb"),
                    ("POST", "jsonp_send")]
        for suffix in ("//", "/a./a", "/a/a.", "/./.", "/", "///", "/a.b/c", "/a/b.c"):
            for method, transport in requests:
                path = "/echo%s/%s" % (suffix, transport)
                with self.subTest(path=path):
                    r = request(self.gw.port, method, path,
                                body=b"d=%5B%5D" if method == "POST" else None,
                                headers={"Content-Type": gwtest.FORM_CT})
                    self.assertEqual(r.status, 404)

    def test_unknown_prefix(self):
        url = session_url("/nonexistent")
        for method, transport in (("GET", "eventsource"), ("GET", "htmlfile?c=cb"),
                                  ("GET", "jsonp?c=cb")):
            with self.subTest(transport=transport):
                self.assertEqual(request(self.gw.port, method, url + "/" + transport).status, 404)


if __name__ == "__main__":
    gwtest.main()
