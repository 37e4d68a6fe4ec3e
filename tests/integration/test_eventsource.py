#!/usr/bin/python3
"""eventsource: headers, prelude, `data:` framing, percent-escaping of the frame, response_limit,
chunked (1.1) / close-delimited (1.0), second receiver, heartbeat, close, JSESSIONID.

Spec: SOCKJS_TEST_APP.md, "Frames and transports" (eventsource), "Session lifecycle"
(second receiver, heartbeat, response_limit), "Common headers" (not cached, JSESSIONID),
"HTTP and encoding".
"""

import json
import urllib.parse

import gwtest
from gwtest import (ANOTHER, GO_AWAY, eventsource_escape, EventSourceStream, parse_frame,
                    session_url, XhrSession)


class EventSourceTestCase(gwtest.GatewayTestCase):
    def stream(self, url, **kw):
        st = EventSourceStream(self.gw, url, **kw)
        self.addCleanup(st.close)
        return st

    def assertEventStreamType(self, r):
        ct = r.header("Content-Type")
        self.assertIsNotNone(ct, "no Content-Type")
        parts = [p.strip().lower() for p in ct.split(";")]
        self.assertEqual(parts[0], "text/event-stream", "Content-Type %r" % ct)
        # A charset parameter is accepted (the stream is UTF-8); nothing else.
        for p in parts[1:]:
            self.assertIn(p.replace(" ", ""), ("charset=utf-8",), "Content-Type %r" % ct)


class Transport(EventSourceTestCase):
    def test_transport(self):
        url = session_url("/echo")
        st = self.stream(url)
        r = st.response
        self.assertEqual(r.status, 200)
        self.assertEventStreamType(r)
        self.assertNotCached(r)
        self.assertNoCookie(r)
        self.assertEqual(st.prelude, b"\r\n")
        self.assertEqual(st.raw_frame(), "o")
        s = XhrSession.of(self.gw, url)
        s.send("x")
        self.assertEqual(st.raw_frame(), 'a["x"]')
        s.send("y", "z")
        gwtest.assert_messages_in_frames(self, st, ["y", "z"])

    def test_exact_bytes(self):
        # One frame is exactly b'data: <frame>\r\n\r\n' after the b'\r\n' prelude.
        url = session_url("/echo")
        st = self.stream(url, check_prelude=False)
        self.assertEqual(st.body.read_exact(len(b"\r\ndata: o\r\n\r\n")), b"\r\ndata: o\r\n\r\n")
        XhrSession.of(self.gw, url).send("hello")
        want = b'data: a["hello"]\r\n\r\n'
        self.assertEqual(st.body.read_exact(len(want)), want)
        # The official suite's case: leading spaces, NUL, LF and CR inside a message are
        # JSON-escaped in the frame, so the data line needs no percent-escape for them.
        r = XhrSession.of(self.gw, url).send_raw(r'["  \u0000\n\r "]')
        self.assertEqual(r.status, 204)
        self.assertIn(st.raw_frame(), ('a["  \\u0000\\n\\r "]',
                                       'a["  \\u0000\\u000a\\u000d "]'))

    def test_unicode(self):
        url = session_url("/echo")
        st = self.stream(url)
        self.assertEqual(st.frame(), "o")
        msgs = ["Τη γλώσσα μου", "日本語", "emoji \U0001F600", 'quote " backslash \\', ""]
        XhrSession.of(self.gw, url).send(*msgs)
        got = []
        while len(got) < len(msgs):
            kind, value = parse_frame(st.frame())
            self.assertEqual(kind, "a")
            got += value
        self.assertEqual(got, msgs)

    def test_server_part_ignored(self):
        # Opened by eventsource under one server part, written to under another.
        sid = str(gwtest.uuid.uuid4())
        st = self.stream("/echo/aaa/" + sid)
        self.assertEqual(st.frame(), "o")
        XhrSession.of(self.gw, "/echo/bbb/" + sid).send("via bbb")
        self.assertEqual(st.frame(), 'a["via bbb"]')


class Escaping(EventSourceTestCase):
    """`%` -> `%25` (and CR, LF, NUL -> %0D, %0A, %00) in the frame; the client runs
    decodeURI() on each event's data."""

    def echo_frames(self, messages):
        """Send `messages` through /echo; returns the (raw, decoded) frames that carry them."""
        url = session_url("/echo")
        st = self.stream(url)
        self.assertEqual(st.frame(), "o")
        XhrSession.of(self.gw, url).send(*messages)
        out = []
        got = []
        while len(got) < len(messages):
            raw = st.raw_frame()
            self.assertIsNotNone(raw, "stream ended")
            decoded = gwtest.decode_uri(raw)
            kind, value = parse_frame(decoded)
            self.assertEqual(kind, "a")
            got += value
            out.append((raw, decoded))
        self.assertEqual(got, list(messages))
        return out

    def test_percent_escaped(self):
        url = session_url("/echo")
        st = self.stream(url)
        self.assertEqual(st.frame(), "o")
        XhrSession.of(self.gw, url).send("100%")
        self.assertEqual(st.raw_frame(), 'a["100%25"]')

    def test_escape_rule(self):
        messages = ["%", "%25", "%%", "%0A", "%0D%00", "a%b", "%E2%82%AC", "%zz", "100 % sure",
                    "\r", "\n", "\r\n", "\0", "cr\rlf\nnul\0end", "# ; / ? : @ & = + $ ,",
                    "\u2028\u2029", "é€\U0001F600", "data: x\r\n\r\ndata: y"]
        for raw, decoded in self.echo_frames(messages):
            # Exactly those four characters are percent-encoded, in uppercase hex.
            self.assertEqual(raw, eventsource_escape(decoded), "raw data %r" % raw[:200])
            for ch in "\r\n\0":
                self.assertNotIn(ch, raw)
            # decodeURI() and a plain percent-decoder agree on what the gateway writes.
            self.assertEqual(urllib.parse.unquote(raw, errors="strict"), decoded)

    def test_every_message_character_survives_decoding(self):
        # All BMP characters (the server's JSON escapes control and special ranges, so any
        # raw % it leaves must be escaped for decodeURI not to throw or mangle them).
        message = "".join(chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF)
        message += "%" * 50 + "%41%42"
        url = session_url("/echo")
        st = self.stream(url)
        self.assertEqual(st.frame(), "o")
        s = XhrSession.of(self.gw, url)
        self.assertEqual(s.send_raw(json.dumps([message])).status, 204)
        raw = st.raw_frame()
        decoded = gwtest.decode_uri(raw)
        self.assertEqual(parse_frame(decoded), ("a", [message]))
        self.assertEqual(raw, eventsource_escape(decoded))
        self.assertEqual(urllib.parse.unquote(raw, errors="strict"), decoded)

    def test_close_frame_not_escaped(self):
        st = self.stream(session_url("/close"))
        self.assertEqual(st.raw_frame(), "o")
        self.assertEqual(st.raw_frame(), GO_AWAY)
        st.expect_end()


class ResponseLimit(gwtest.StreamResponseLimitTests, EventSourceTestCase):
    def test_next_stream_after_limit(self):
        url = session_url("/echo")
        s = XhrSession.of(self.gw, url)
        st = self.stream(url)
        self.assertEqual(st.frame(), "o")
        s.send("x" * 5000)
        self.assertEqual(st.frame(), 'a["%s"]' % ("x" * 5000))
        st.expect_end()
        st.close()
        st = self.stream(url)
        s.send("again")
        self.assertEqual(st.frame(), 'a["again"]')


class Http(gwtest.StreamHttpVersionTests, EventSourceTestCase):
    def test_connection_reused_after_stream(self):
        # HTTP/1.1: the stream ends with the last chunk and the connection stays usable.
        st = self.stream(session_url("/close"))
        self.assertEqual(st.frame(), "o")
        self.assertEqual(st.frame(), GO_AWAY)
        st.expect_end()
        st.conn.send(gwtest.build_request("GET", "/echo/info"))
        r = gwtest.read_response(st.conn)
        self.assertEqual(r.status, 200)


class Lifecycle(gwtest.StreamLifecycleTests, EventSourceTestCase):
    def test_second_receiver(self):
        url = session_url("/echo")
        st1 = self.stream(url)
        self.assertEqual(st1.frame(), "o")
        st2 = self.stream(url)
        self.assertEqual(st2.prelude, b"\r\n")
        self.assertEqual(st2.frame(), ANOTHER)
        st2.expect_end()
        XhrSession.of(self.gw, url).send("still here")
        self.assertEqual(st1.frame(), 'a["still here"]')

    def test_ticker(self):
        st = self.stream(session_url("/ticker"))
        self.assertEqual(st.frame(), "o")
        self.assertEqual(st.frame(timeout=4), 'a["tick!"]')


class Cookies(EventSourceTestCase):
    def test_dummy_cookie(self):
        st = self.stream(session_url("/cookie_needed_echo"))
        self.assertJsessionid(st.response, "dummy")
        self.assertEqual(st.frame(), "o")

    def test_cookie_echoed(self):
        st = self.stream(session_url("/cookie_needed_echo"),
                         headers={"Cookie": "a=b; JSESSIONID=abcdef; c=d"})
        self.assertJsessionid(st.response, "abcdef")
        self.assertEqual(st.frame(), "o")

    def test_no_cookie_without_option(self):
        st = self.stream(session_url("/echo"), headers={"Cookie": "JSESSIONID=abcdef"})
        self.assertNoCookie(st.response)
        self.assertEqual(st.frame(), "o")


if __name__ == "__main__":
    gwtest.main()
