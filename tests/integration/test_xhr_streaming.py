#!/usr/bin/python3
"""xhr_streaming: prelude, frames, response_limit, chunked on HTTP/1.1, close-delimited on 1.0.

Spec: SOCKJS_TEST_APP.md, "Frames and transports" (xhr_streaming), "Session lifecycle"
(response_limit), "HTTP and encoding".
"""

import gwtest
from gwtest import XhrSession, XhrStream, session_url


class XhrStreaming(gwtest.GatewayTestCase):
    def test_transport(self):
        url = session_url("/echo")
        st = XhrStream(self.gw, url)
        try:
            r = st.response
            self.assertContentType(r, "application/javascript; charset=UTF-8")
            self.assertNotCached(r)
            self.assertCors(r)
            self.assertNoCookie(r)
            self.assertEqual(st.frame(), "o")
            s = XhrSession.of(self.gw, url)
            s.send("x")
            self.assertEqual(st.frame(), 'a["x"]')
            s.send("y", "z")
            gwtest.assert_messages_in_frames(self, st, ["y", "z"])
        finally:
            st.close()

    def test_http10_echo(self):
        url = session_url("/echo")
        st = XhrStream(self.gw, url, version="HTTP/1.0")
        try:
            self.assertIsNone(st.response.header("Transfer-Encoding"))
            self.assertEqual(st.frame(), "o")
            XhrSession.of(self.gw, url).send("hello")
            self.assertEqual(st.frame(), 'a["hello"]')
        finally:
            st.close()

    def test_cors_origin(self):
        st = XhrStream(self.gw, session_url("/echo"), headers={"Origin": "http://x.example"})
        try:
            self.assertCors(st.response, "http://x.example")
            self.assertEqual(st.frame(), "o")
        finally:
            st.close()

    def test_response_limit_echo(self):
        # /echo has response_limit 4096: 'o\n' + 30 frames of 134 bytes = 4022 < 4096, the 31st
        # brings the count to 4156, and the stream ends right after it.
        url = session_url("/echo")
        st = XhrStream(self.gw, url)
        try:
            self.assertEqual(st.frame(), "o")
            s = XhrSession.of(self.gw, url)
            msg = "x" * 128
            for i in range(31):
                s.send(msg)
                self.assertEqual(st.frame(), 'a["%s"]' % msg, "message %d" % (i + 1))
            st.expect_end()
        finally:
            st.close()
        # The session survives the end of the stream: a new receiver gets what follows.
        s.send("after")
        self.assertEqual(s.poll(), 'a["after"]')

    def test_response_limit_amplify(self):
        # /amplify has the default 128 KiB limit: one 64 KiB message fits, the second ends it.
        url = session_url("/amplify")
        st = XhrStream(self.gw, url)
        try:
            self.assertEqual(st.frame(), "o")
            s = XhrSession.of(self.gw, url)
            s.send("16")
            self.assertEqual(st.frame(), 'a["%s"]' % ("x" * 65536))
            s.send("16")
            self.assertEqual(st.frame(), 'a["%s"]' % ("x" * 65536))
            st.expect_end()
        finally:
            st.close()

    def test_next_stream_after_limit(self):
        url = session_url("/echo")
        s = XhrSession.of(self.gw, url)
        st = XhrStream(self.gw, url)
        try:
            self.assertEqual(st.frame(), "o")
            s.send("x" * 5000)
            self.assertEqual(st.frame(), 'a["%s"]' % ("x" * 5000))
            st.expect_end()
        finally:
            st.close()
        st = XhrStream(self.gw, url)
        try:
            s.send("again")
            self.assertEqual(st.frame(), 'a["again"]')
        finally:
            st.close()


class Http(gwtest.StreamHttpVersionTests, gwtest.GatewayTestCase):
    """Chunked on HTTP/1.1, close-delimited on HTTP/1.0 (the tests every stream shares)."""

    def stream(self, url, **kw):
        st = XhrStream(self.gw, url, **kw)
        self.addCleanup(st.close)
        return st


if __name__ == "__main__":
    gwtest.main()
