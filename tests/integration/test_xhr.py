#!/usr/bin/python3
"""xhr polling and xhr_send: frames, status codes, error bodies, content types, cookies, CORS.

Spec: SOCKJS_TEST_APP.md, "Frames and transports" (xhr, xhr_send), "Common headers".
"""

import uuid

import gwtest
from gwtest import XhrSession, request, session_url


class XhrPolling(gwtest.GatewayTestCase):
    def test_open(self):
        s = XhrSession(self.gw)
        r = s.xhr()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"o\n")
        self.assertContentType(r, "application/javascript; charset=UTF-8")
        self.assertNotCached(r)
        self.assertCors(r)
        self.assertNoCookie(r)

    def test_send_and_poll(self):
        s = XhrSession(self.gw).open()
        r = s.send_raw('["x"]')
        self.assertEqual(r.status, 204)
        self.assertEqual(r.body, b"")
        self.assertContentType(r, "text/plain; charset=UTF-8")
        self.assertNotCached(r)
        self.assertCors(r)
        self.assertEqual(s.poll(), 'a["x"]')

    def test_queued_messages_in_one_frame(self):
        s = XhrSession(self.gw).open()
        s.send("a", "b")
        s.send("c")
        s.send("d", "e", "f")
        self.assertEqual(gwtest.parse_frame(s.poll()), ("a", ["a", "b", "c", "d", "e", "f"]))

    def test_poll_waits_for_message(self):
        s = XhrSession(self.gw).open()
        c = s.start_poll()
        try:
            c.expect_silence(0.5)
            s.send("late")
            r = gwtest.read_response(c)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, b'a["late"]\n')
        finally:
            c.close()

    def test_query_string_ignored(self):
        url = session_url("/echo")
        r = request(self.gw.port, "POST", url + "/xhr?t=123", body=b"")
        self.assertEqual(r.body, b"o\n")
        r = request(self.gw.port, "POST", url + "/xhr_send?t=124", body='["q"]')
        self.assertEqual(r.status, 204)
        r = request(self.gw.port, "POST", url + "/xhr?t=125", body=b"")
        self.assertEqual(r.body, b'a["q"]\n')

    def test_server_part_is_ignored(self):
        sid = str(uuid.uuid4())
        self.assertEqual(XhrSession(self.gw, session=sid).poll(), "o")
        r = request(self.gw.port, "POST", "/echo/other/%s/xhr_send" % sid, body='["y"]')
        self.assertEqual(r.status, 204)
        r = request(self.gw.port, "POST", "/echo/third/%s/xhr" % sid, body=b"")
        self.assertEqual(r.body, b'a["y"]\n')

    def test_invalid_session_paths(self):
        for suffix in ("//", "/a./a", "/a/a.", "/./.", "/", "///", "/a.b/c", "/a/b.c"):
            for transport in ("xhr", "xhr_send", "xhr_streaming"):
                path = "/echo%s/%s" % (suffix, transport)
                with self.subTest(path=path):
                    r = request(self.gw.port, "POST", path, body=b"")
                    self.assertEqual(r.status, 404)

    def test_unicode_messages(self):
        s = XhrSession(self.gw).open()
        msgs = ["Τη γλώσσα μου", "日本語", "emoji \U0001F600", 'quote " backslash \\', ""]
        s.send(*msgs)
        self.assertEqual(gwtest.parse_frame(s.poll()), ("a", msgs))


class XhrSend(gwtest.GatewayTestCase):
    def test_unknown_session(self):
        r = request(self.gw.port, "POST", session_url("/echo") + "/xhr_send", body='["x"]')
        self.assertEqual(r.status, 404)

    def test_empty_payload(self):
        s = XhrSession(self.gw).open()
        r = s.send_raw(b"")
        self.assertEqual(r.status, 500)
        self.assertEqual(r.body, b"Payload expected.")

    def test_broken_json(self):
        s = XhrSession(self.gw).open()
        for body in ('["x', "x", "[x]", '["a",]', '{"a"', "[", '["\\x"]'):
            with self.subTest(body=body):
                mark = self.gw.log_mark()
                r = s.send_raw(body)
                self.assertEqual(r.status, 500)
                self.assertEqual(r.body, b"Broken JSON encoding.")
                self.gw.wait_bad_input_logged(mark)

    def test_deeply_nested_json(self):
        # Bad input is never fatal: no recursion limit of the JSON parser may crash the gateway.
        s = XhrSession(self.gw).open()
        for body in ("[" * 100000, "[" * 50000 + "]" * 50000, '["x",' + "{" * 100000):
            with self.subTest(size=len(body)):
                self.assertEqual(s.send_raw(body).status, 500)
        self.gw.assert_alive()
        s.send("fine")
        self.assertEqual(s.poll(), 'a["fine"]')

    def test_many_messages_in_one_send(self):
        s = XhrSession(self.gw).open()
        msgs = ["m%d" % i for i in range(20000)]
        s.send(*msgs)
        self.assertEqual(gwtest.parse_frame(s.poll()), ("a", msgs))

    def test_json_not_an_array(self):
        s = XhrSession(self.gw).open()
        for body in ('{"a": 1}', '"x"', "1", "null"):
            with self.subTest(body=body):
                self.assertEqual(s.send_raw(body).status, 500)

    def test_empty_array_delivers_nothing(self):
        s = XhrSession(self.gw).open()
        r = s.send_raw("[]")
        self.assertEqual(r.status, 204)
        s.send("after")
        self.assertEqual(s.poll(), 'a["after"]')

    def test_content_types(self):
        s = XhrSession(self.gw).open()
        cts = ["text/plain", "T", "application/json", "application/xml", "",
               "application/json; charset=utf-8", "text/xml; charset=utf-8", "text/xml"]
        for i, ct in enumerate(cts):
            with self.subTest(content_type=ct):
                r = s.send_raw('["%d"]' % i, headers={"Content-Type": ct})
                self.assertEqual(r.status, 204)
                self.assertEqual(r.body, b"")
        r = s.send_raw('["none"]')  # no Content-Type header at all
        self.assertEqual(r.status, 204)
        self.assertEqual(gwtest.parse_frame(s.poll()),
                         ("a", [str(i) for i in range(len(cts))] + ["none"]))

    def test_send_to_closed_session_is_accepted_or_404(self):
        # Not in the spec's error list; only require that the gateway stays sane.
        s = XhrSession(self.gw, "/close").open()
        self.assertEqual(s.poll(), 'c[3000,"Go away!"]')
        self.assertIn(s.send_raw('["x"]').status, (204, 404))


class Cookies(gwtest.GatewayTestCase):
    def test_dummy_cookie(self):
        s = XhrSession(self.gw, "/cookie_needed_echo")
        r = s.xhr()
        self.assertEqual(r.body, b"o\n")
        self.assertJsessionid(r, "dummy")
        r = s.send_raw('["x"]')
        self.assertEqual(r.status, 204)
        self.assertJsessionid(r, "dummy")
        r = s.xhr()
        self.assertEqual(r.body, b'a["x"]\n')
        self.assertJsessionid(r, "dummy")

    def test_cookie_echoed(self):
        s = XhrSession(self.gw, "/cookie_needed_echo", headers={"Cookie": "JSESSIONID=abcdef"})
        r = s.xhr()
        self.assertEqual(r.body, b"o\n")
        self.assertJsessionid(r, "abcdef")
        r = s.send_raw('["x"]')
        self.assertJsessionid(r, "abcdef")

    def test_cookie_among_others(self):
        s = XhrSession(self.gw, "/cookie_needed_echo",
                       headers={"Cookie": "a=b; JSESSIONID=xyz123; c=d"})
        self.assertJsessionid(s.xhr(), "xyz123")

    def test_streaming_sets_cookie(self):
        st = gwtest.XhrStream(self.gw, session_url("/cookie_needed_echo"),
                              headers={"Cookie": "JSESSIONID=abcdef"})
        try:
            self.assertJsessionid(st.response, "abcdef")
            self.assertEqual(st.frame(), "o")
        finally:
            st.close()

    def test_no_cookie_without_option(self):
        for prefix in ("/echo", "/close", "/broadcast"):
            with self.subTest(prefix=prefix):
                s = XhrSession(self.gw, prefix, headers={"Cookie": "JSESSIONID=abcdef"})
                self.assertNoCookie(s.xhr())
                self.assertNoCookie(s.send_raw('["x"]'))


class Cors(gwtest.GatewayTestCase):
    def test_origin_echoed(self):
        s = XhrSession(self.gw, headers={"Origin": "http://a.example:8080"})
        self.assertCors(s.xhr(), "http://a.example:8080")
        self.assertCors(s.send_raw('["x"]'), "http://a.example:8080")

    def test_origin_null(self):
        s = XhrSession(self.gw, headers={"Origin": "null"})
        self.assertCors(s.xhr(), "null")
        self.assertCors(s.send_raw('["x"]'), "null")

    def test_no_origin(self):
        s = XhrSession(self.gw)
        self.assertCors(s.xhr())
        self.assertCors(s.send_raw('["x"]'))

    def test_request_headers_echoed(self):
        s = XhrSession(self.gw)
        r = s.xhr(headers={"Access-Control-Request-Headers": "a, b, c"})
        self.assertEqual(r.header("Access-Control-Allow-Headers"), "a, b, c")
        r = s.send_raw('["x"]', headers={"Access-Control-Request-Headers": "X-Requested-With"})
        self.assertEqual(r.header("Access-Control-Allow-Headers"), "X-Requested-With")
        r = s.xhr(headers={"Access-Control-Request-Headers": ""})
        self.assertIsNone(r.header("Access-Control-Allow-Headers"))
        r = s.send_raw('["y"]')
        self.assertIsNone(r.header("Access-Control-Allow-Headers"))

    def test_preflight(self):
        for transport in ("xhr", "xhr_send", "xhr_streaming"):
            for origin in (None, "test", "null"):
                with self.subTest(transport=transport, origin=origin):
                    h = {"Origin": origin} if origin else {}
                    url = session_url("/echo") + "/" + transport
                    r = request(self.gw.port, "OPTIONS", url, headers=h)
                    self.assertIn(r.status, (200, 204))
                    self.assertEqual(r.body, b"")
                    self.assertLongCached(r)
                    self.assertGreater(int(r.header("Access-Control-Max-Age")), 1000000)
                    self.assertEqual(r.header("Access-Control-Allow-Methods"), "OPTIONS, POST")
                    self.assertCors(r, origin)
                    self.assertIsNone(r.header("Access-Control-Allow-Headers"))

    def test_preflight_request_headers(self):
        url = session_url("/echo") + "/xhr_send"
        r = request(self.gw.port, "OPTIONS", url,
                    headers={"Origin": "test", "Access-Control-Request-Headers": "a, b"})
        self.assertIn(r.status, (200, 204))
        self.assertEqual(r.header("Access-Control-Allow-Headers"), "a, b")
        r = request(self.gw.port, "OPTIONS", url,
                    headers={"Origin": "test", "Access-Control-Request-Headers": ""})
        self.assertIsNone(r.header("Access-Control-Allow-Headers"))

    def test_preflight_sets_no_state(self):
        sid = str(uuid.uuid4())
        url = "/echo/000/%s" % sid
        request(self.gw.port, "OPTIONS", url + "/xhr")
        # The preflight did not open a session: xhr_send still does not find it.
        self.assertEqual(request(self.gw.port, "POST", url + "/xhr_send",
                                 body='["x"]').status, 404)


if __name__ == "__main__":
    gwtest.main()
