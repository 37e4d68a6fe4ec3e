#!/usr/bin/python3
"""htmlfile: headers, the page and its padding, `<script>` framing, callback rules,
response_limit, chunked (1.1) / close-delimited (1.0), second receiver, heartbeat, close,
JSESSIONID.

Spec: SOCKJS_TEST_APP.md, "Frames and transports" (htmlfile, callback rules), "Session
lifecycle" (second receiver, heartbeat, response_limit), "Common headers", "HTTP and encoding".
"""

import json
import re

import gwtest
from gwtest import (ANOTHER, GO_AWAY, htmlfile_page, HtmlFileStream, parse_frame, request,
                    session_url, XhrSession)

CALLBACK_REQUIRED = b'"callback" parameter required'
CALLBACK_INVALID = b'invalid "callback" parameter'


class HtmlFileTestCase(gwtest.GatewayTestCase):
    def stream(self, url, callback="callback", **kw):
        st = HtmlFileStream(self.gw, url, callback=callback, **kw)
        self.addCleanup(st.close)
        return st

    def assertPrelude(self, prelude, callback):
        """The page with `callback`, padded with spaces past 1024 bytes, then \\r\\n\\r\\n."""
        self.assertTrue(prelude.endswith(b"\r\n\r\n"), prelude[-50:])
        body = prelude[:-4]
        page = htmlfile_page(callback).encode("utf-8")
        self.assertEqual(body[:len(page)], page)
        padding = body[len(page):]
        self.assertRegex(padding, rb"\A\n? *\Z", "the page is followed by something other "
                         "than spaces: %r" % padding[:100])
        self.assertGreater(len(body), 1024, "page and padding are %d bytes" % len(body))
        self.assertEqual(prelude.strip(), page)


class Transport(HtmlFileTestCase):
    def test_transport(self):
        url = session_url("/echo")
        st = self.stream(url)
        r = st.response
        self.assertEqual(r.status, 200)
        self.assertContentType(r, "text/html; charset=UTF-8")
        self.assertNotCached(r)
        self.assertNoCookie(r)
        self.assertPrelude(st.prelude, "callback")
        self.assertEqual(st.raw_frame(), '"o"')
        s = XhrSession.of(self.gw, url)
        s.send("x")
        self.assertEqual(st.frame(), 'a["x"]')
        s.send("y", "z")
        gwtest.assert_messages_in_frames(self, st, ["y", "z"])

    def test_exact_frame_bytes(self):
        url = session_url("/echo")
        st = self.stream(url)
        want = b'<script>\np("o");\n</script>\r\n'
        self.assertEqual(st.body.read_exact(len(want)), want)
        XhrSession.of(self.gw, url).send("hi")
        want = b'<script>\np("a[\\"hi\\"]");\n</script>\r\n'
        self.assertEqual(st.body.read_exact(len(want)), want)

    def test_callback_url_decoded(self):
        # The official suite asks for ?c=%63allback and expects parent.callback.
        st = self.stream(session_url("/echo"), query="?c=%63allback")
        self.assertPrelude(st.prelude, "callback")
        self.assertEqual(st.frame(), "o")

    def test_valid_callbacks(self):
        for cb in ("a", "Z", "0", "_", ".", "-", "jQuery1234_5678", "x.y.z", "cb-1.2_3",
                   "a" * 200):
            with self.subTest(callback=cb[:20]):
                st = self.stream(session_url("/echo"), callback=cb)
                self.assertPrelude(st.prelude, cb)
                self.assertEqual(st.frame(), "o")
                st.close()

    def test_other_query_parameters(self):
        st = self.stream(session_url("/echo"), query="?t=1234&c=cb&x=%20")
        self.assertPrelude(st.prelude, "cb")
        self.assertEqual(st.frame(), "o")

    def test_json_string_frames(self):
        url = session_url("/echo")
        st = self.stream(url)
        self.assertEqual(st.frame(), "o")
        msgs = ['quote " backslash \\', "Τη γλώσσα μου", "emoji \U0001F600", "\r\n\t\0",
                "\u2028\u2029", "<b>&amp;</b>", "'single'", ""]
        XhrSession.of(self.gw, url).send(*msgs)
        got = []
        while len(got) < len(msgs):
            raw = st.raw_frame()
            # The p() argument is one JSON string literal on one line.
            self.assertNotIn("\n", raw)
            self.assertNotIn("\u2028", raw)
            self.assertNotIn("\u2029", raw)
            kind, value = parse_frame(json.loads(raw))
            self.assertEqual(kind, "a")
            got += value
        self.assertEqual(got, msgs)

    def test_server_part_ignored(self):
        sid = str(gwtest.uuid.uuid4())
        st = self.stream("/echo/aaa/" + sid)
        self.assertEqual(st.frame(), "o")
        XhrSession.of(self.gw, "/echo/bbb/" + sid).send("via bbb")
        self.assertEqual(st.frame(), 'a["via bbb"]')


class Callback(HtmlFileTestCase):
    def get(self, query, prefix="/echo", url=None):
        return request(self.gw.port, "GET", (url or session_url(prefix)) + "/htmlfile" + query)

    def test_missing(self):
        for query in ("", "?", "?d=x", "?cc=x", "?C=x"):
            with self.subTest(query=query):
                r = self.get(query)
                self.assertEqual(r.status, 500)
                self.assertEqual(r.body, CALLBACK_REQUIRED)

    def test_empty(self):
        # An empty c is missing or invalid; either message will do, but 500.
        r = self.get("?c=")
        self.assertEqual(r.status, 500)
        self.assertIn(r.body, (CALLBACK_REQUIRED, CALLBACK_INVALID))

    def test_invalid(self):
        for value in ("%20", "a%20b", "a(b", "a%28b", "<script>", "%3Cscript%3E", "a;b", "a'b",
                      "a%22b", "a%00b", "%0A", "a/b", "a%2Fb", "a%2Bb", "a+b", "%C3%A9",
                      "a%", "a%2", "alert(1)//",
                      "a%5Bb%5D", "a:b", "a,b"):
            with self.subTest(callback=value):
                r = self.get("?c=" + value)
                self.assertEqual(r.status, 500, r)
                self.assertEqual(r.body, CALLBACK_INVALID)

    def test_no_session_for_a_refused_request(self):
        # The request fails before a receiver exists, so no page is sent for the session and
        # later requests still work.
        url = session_url("/echo")
        r = self.get("?c=a(b", url=url)
        self.assertEqual(r.status, 500)
        self.assertNotIn(b"<script>", r.body)
        st = self.stream(url)
        self.assertEqual(st.frame(), "o")


class ResponseLimit(gwtest.StreamResponseLimitTests, HtmlFileTestCase):
    """The shared response_limit checks, over htmlfile."""


class Http(gwtest.StreamHttpVersionTests, HtmlFileTestCase):
    def assertHttp10Prelude(self, st):
        self.assertPrelude(st.prelude, "callback")

    def test_http10_callback_error(self):
        r = request(self.gw.port, "GET", session_url("/echo") + "/htmlfile", version="HTTP/1.0")
        self.assertEqual(r.status, 500)
        self.assertEqual(r.body, CALLBACK_REQUIRED)


class Lifecycle(gwtest.StreamLifecycleTests, HtmlFileTestCase):
    HEARTBEAT_FRAME = '"h"'

    def test_second_receiver(self):
        url = session_url("/echo")
        st1 = self.stream(url)
        self.assertEqual(st1.frame(), "o")
        st2 = self.stream(url, callback="second")
        self.assertPrelude(st2.prelude, "second")
        self.assertEqual(st2.frame(), ANOTHER)
        st2.expect_end()
        XhrSession.of(self.gw, url).send("still here")
        self.assertEqual(st1.frame(), 'a["still here"]')


class Cookies(HtmlFileTestCase):
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


class Hardening(HtmlFileTestCase):
    """Beyond the letter of the spec: a frame is written inside an HTML <script> element, so a
    message must not be able to end that element. "<frame as a JSON string>" allows escaping
    `<` or `/` (e.g. \\u003c, \\/), and the reference clients decode it the same."""

    def test_message_cannot_close_the_script_element(self):
        url = session_url("/echo")
        st = self.stream(url)
        self.assertEqual(st.frame(), "o")
        evil = "</script><script>alert(1)</script><!--"
        for variant in (evil, evil.upper(), "</SCRIPT >"):
            XhrSession.of(self.gw, url).send(variant)
            raw = st.raw_frame()
            self.assertEqual(parse_frame(json.loads(raw)), ("a", [variant]))
            self.assertIsNone(re.search(r"</script|<!--", raw, re.I),
                              "message text ends the <script> element: %r" % raw)


if __name__ == "__main__":
    gwtest.main()
