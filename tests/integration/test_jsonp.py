#!/usr/bin/python3
"""jsonp polling and jsonp_send: body form, headers, callback rules, polling rules, form and
text/plain payloads, error bodies, JSESSIONID.

Spec: SOCKJS_TEST_APP.md, "Frames and transports" (jsonp, jsonp_send, callback rules),
"Session lifecycle" (second receiver, heartbeat, close), "Common headers", "HTTP and encoding".
"""

import json
import time
import urllib.parse

import gwtest
from gwtest import (ANOTHER, FORM_CT, GO_AWAY, TIMER_MAX, TIMER_MIN, JsonpSession, parse_frame,
                    parse_jsonp_body, read_response, request, session_url, XhrSession)

CALLBACK_REQUIRED = b'"callback" parameter required'
CALLBACK_INVALID = b'invalid "callback" parameter'


def form(messages):
    return "d=" + urllib.parse.quote(json.dumps(messages), safe="")


class JsonpPolling(gwtest.GatewayTestCase):
    def test_transport(self):
        # As the official suite: ?c=%63allback is URL-decoded to "callback".
        s = JsonpSession(self.gw, callback="callback")
        r = s.jsonp(query="?c=%63allback")
        self.assertEqual(r.status, 200)
        self.assertContentType(r, "application/javascript; charset=UTF-8")
        self.assertNotCached(r)
        self.assertNoCookie(r)
        self.assertEqual(r.header("X-Content-Type-Options"), "nosniff")
        self.assertEqual(r.body, b'/**/callback("o");\r\n')
        r = s.send_raw("d=%5B%22x%22%5D")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"ok")
        self.assertContentType(r, "text/plain; charset=UTF-8")
        self.assertNotCached(r)
        self.assertNoCookie(r)
        r = s.jsonp()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("X-Content-Type-Options"), "nosniff")
        self.assertEqual(r.body, b'/**/callback("a[\\"x\\"]");\r\n')

    def test_queued_messages_in_one_frame(self):
        s = JsonpSession(self.gw).open()
        s.send("a", "b")
        s.send("c")
        XhrSession.of(self.gw, s.url).send("d", "e", "f")
        self.assertEqual(parse_frame(s.poll()), ("a", ["a", "b", "c", "d", "e", "f"]))

    def test_poll_waits_for_message(self):
        s = JsonpSession(self.gw).open()
        c = s.start_poll()
        try:
            c.expect_silence(0.3)  # attached and waiting
            s.send("late")
            r = read_response(c)
            self.assertEqual(r.status, 200)
            self.assertEqual(parse_jsonp_body(r.body, "cb"), 'a["late"]')
        finally:
            c.close()

    def test_valid_callbacks(self):
        for cb in ("a", "Z", "0", "_", ".", "-", "jQuery1234_5678", "x.y.z", "cb-1.2_3",
                   "a" * 200):
            with self.subTest(callback=cb[:20]):
                s = JsonpSession(self.gw, callback=cb)
                r = s.jsonp()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b'/**/' + cb.encode() + b'("o");\r\n')

    def test_callback_per_request(self):
        # The callback belongs to the request, not to the session.
        s = JsonpSession(self.gw, callback="first").open()
        s.send("m")
        s.callback = "second"
        self.assertEqual(s.poll(), 'a["m"]')

    def test_other_query_parameters(self):
        s = JsonpSession(self.gw)
        r = s.jsonp(query="?t=1234&c=cb&x=%20")
        self.assertEqual(r.body, b'/**/cb("o");\r\n')

    def test_json_string_body(self):
        s = JsonpSession(self.gw).open()
        msgs = ['quote " backslash \\', "Τη γλώσσα μου", "emoji \U0001F600", "\r\n\t\0",
                "\u2028\u2029", "</script>", "'single'", ""]
        s.send(*msgs)
        r = s.jsonp()
        text = r.body.decode("utf-8")
        # One line of JavaScript: no raw line terminators inside the string literal.
        for ch in "\r\n\u2028\u2029":
            self.assertNotIn(ch, text[:-2])
        self.assertEqual(parse_frame(parse_jsonp_body(r.body, "cb")), ("a", msgs))

    def test_server_part_ignored(self):
        sid = str(gwtest.uuid.uuid4())
        JsonpSession(self.gw, url="/echo/aaa/" + sid).open()
        JsonpSession(self.gw, url="/echo/bbb/" + sid).send("x")
        self.assertEqual(JsonpSession(self.gw, url="/echo/ccc/" + sid).poll(), 'a["x"]')

    def test_shared_with_xhr(self):
        s = JsonpSession(self.gw).open()
        x = XhrSession.of(self.gw, s.url)
        x.send("from xhr_send")
        self.assertEqual(s.poll(), 'a["from xhr_send"]')
        s.send("from jsonp_send")
        self.assertEqual(x.poll(), 'a["from jsonp_send"]')

    def test_http10(self):
        s = JsonpSession(self.gw)
        with self.gw.connect() as c:
            c.send(gwtest.build_request("GET", s.url + "/jsonp?c=cb", version="HTTP/1.0"))
            r = read_response(c)
            self.assertEqual(r.status, 200)
            self.assertIsNone(r.header("Transfer-Encoding"))
            self.assertEqual(r.body, b'/**/cb("o");\r\n')
            self.assertClosedByServer(c)

    def test_http10_keep_alive(self):
        # HTTP/1.0 has no chunking: a kept-alive response carries Content-Length.
        s = JsonpSession(self.gw)
        with self.gw.connect() as c:
            c.send(gwtest.build_request("GET", s.url + "/jsonp?c=cb", version="HTTP/1.0",
                                        headers={"Connection": "keep-alive"}))
            r = read_response(c)
            self.assertEqual(r.body, b'/**/cb("o");\r\n')
            self.assertIsNone(r.header("Transfer-Encoding"))
            if (r.header("Connection") or "").lower() == "keep-alive":
                self.assertEqual(r.header("Content-Length"), str(len(r.body)))
                c.send(gwtest.build_request("POST", s.url + "/jsonp_send", body="d=%5B%22k%22%5D",
                                            version="HTTP/1.0",
                                            headers={"Connection": "keep-alive",
                                                     "Content-Type": FORM_CT}))
                r = read_response(c, method="POST")
                self.assertEqual((r.status, r.body), (200, b"ok"))
                self.assertEqual(s.poll(), 'a["k"]')
            else:
                self.assertClosedByServer(c)


class Callback(gwtest.GatewayTestCase):
    def get(self, query, url=None):
        return request(self.gw.port, "GET", (url or session_url("/echo")) + "/jsonp" + query)

    def test_missing(self):
        for query in ("", "?", "?d=x", "?cc=x", "?C=x"):
            with self.subTest(query=query):
                r = self.get(query)
                self.assertEqual(r.status, 500)
                self.assertEqual(r.body, CALLBACK_REQUIRED)

    def test_empty(self):
        r = self.get("?c=")
        self.assertEqual(r.status, 500)
        self.assertIn(r.body, (CALLBACK_REQUIRED, CALLBACK_INVALID))

    def test_invalid(self):
        for value in ("%20", "a%20b", "a(b", "a%28b", "<script>", "%3Cscript%3E", "a;b", "a'b",
                      "a%22b", "a%00b", "%0A", "a/b", "a%2Fb", "a%2Bb", "a+b", "%C3%A9",
                      "a%", "a%2", "alert(1)//", "a%5Bb%5D", "a:b", "a,b"):
            with self.subTest(callback=value):
                r = self.get("?c=" + value)
                self.assertEqual(r.status, 500, r)
                self.assertEqual(r.body, CALLBACK_INVALID)

    def test_refused_poll_is_not_a_receiver(self):
        # A refused poll does not open the session: xhr_send still finds no session.
        url = session_url("/echo")
        self.assertEqual(self.get("?c=a(b", url=url).status, 500)
        self.assertEqual(self.get("", url=url).status, 500)
        self.assertEqual(XhrSession.of(self.gw, url).send_raw('["x"]').status, 404)


class JsonpSend(gwtest.GatewayTestCase):
    def test_form_and_text_plain(self):
        # text/plain carries the raw JSON, not URL-decoded: %61 stays as is.
        s = JsonpSession(self.gw, callback="x").open()
        r = s.send_raw("d=%5B%22abc%22%5D", content_type=FORM_CT)
        self.assertEqual((r.status, r.body), (200, b"ok"))
        r = s.send_raw('["%61bc"]', content_type="text/plain")
        self.assertEqual((r.status, r.body), (200, b"ok"))
        self.assertContentType(r, "text/plain; charset=UTF-8")
        self.assertNotCached(r)
        r = s.jsonp()
        self.assertEqual(r.body, b'/**/x("a[\\"abc\\",\\"%61bc\\"]");\r\n')

    def test_form_decoding(self):
        # application/x-www-form-urlencoded: '+' is a space, %2B a plus, UTF-8 escapes.
        s = JsonpSession(self.gw).open()
        r = s.send_raw("d=%5B%22a+b%22%2C%22c%2Bd%22%2C%22%C3%A9%E2%82%AC%F0%9F%98%80%22%5D")
        self.assertEqual((r.status, r.body), (200, b"ok"))
        self.assertEqual(parse_frame(s.poll()), ("a", ["a b", "c+d", "é€\U0001F600"]))

    def test_form_round_trip(self):
        s = JsonpSession(self.gw).open()
        msgs = ["%", "%25", "&d=x", "=", "+", " ", 'quote " backslash \\', "\r\n",
                "Τη γλώσσα μου", "\U0001F600", ""]
        s.send(*msgs)
        self.assertEqual(parse_frame(s.poll()), ("a", msgs))

    def test_text_plain_unicode(self):
        s = JsonpSession(self.gw).open()
        body = json.dumps(["é€\U0001F600", "a+b%20"], ensure_ascii=False).encode("utf-8")
        r = s.send_raw(body, content_type="text/plain")
        self.assertEqual(r.status, 200)
        self.assertEqual(parse_frame(s.poll()), ("a", ["é€\U0001F600", "a+b%20"]))

    def test_payload_expected(self):
        s = JsonpSession(self.gw).open()
        for body in ("", "d=", "p=p"):
            with self.subTest(body=body):
                r = s.send_raw(body)
                self.assertEqual(r.status, 500)
                self.assertEqual(r.body, b"Payload expected.")
        r = s.send_raw("", content_type="text/plain")
        self.assertEqual(r.status, 500)
        self.assertEqual(r.body, b"Payload expected.")

    def test_broken_json(self):
        s = JsonpSession(self.gw).open()
        for body in ("d=%5B%22x", "d=x", "d=%5Bx%5D", "d=%5B", "d=%5B%22a%22%2C%5D"):
            with self.subTest(body=body):
                r = s.send_raw(body)
                self.assertEqual(r.status, 500)
                self.assertEqual(r.body, b"Broken JSON encoding.")
        for body in ('["x', "[x]", '["a",]'):
            with self.subTest(text_plain=body):
                r = s.send_raw(body, content_type="text/plain")
                self.assertEqual(r.status, 500)
                self.assertEqual(r.body, b"Broken JSON encoding.")
        # Nothing was delivered by the refused sends.
        s.send("b")
        self.assertEqual(s.poll(), 'a["b"]')

    def test_not_an_array(self):
        # Incoming payloads are a JSON array of strings.
        s = JsonpSession(self.gw).open()
        for body in ("d=%7B%22a%22%3A1%7D", "d=%22x%22", "d=1", "d=null"):
            with self.subTest(body=body):
                self.assertEqual(s.send_raw(body).status, 500)

    def test_empty_array(self):
        s = JsonpSession(self.gw).open()
        r = s.send_raw("d=%5B%5D")
        self.assertEqual((r.status, r.body), (200, b"ok"))
        r = s.send_raw("[]", content_type="text/plain")
        self.assertEqual((r.status, r.body), (200, b"ok"))
        s.send("after")
        self.assertEqual(s.poll(), 'a["after"]')

    def test_unknown_session(self):
        s = JsonpSession(self.gw)
        self.assertEqual(s.send_raw(form(["x"])).status, 404)
        self.assertEqual(s.send_raw('["x"]', content_type="text/plain").status, 404)

    def test_many_messages(self):
        s = JsonpSession(self.gw).open()
        msgs = ["m%d" % i for i in range(5000)]
        s.send(*msgs)
        self.assertEqual(parse_frame(s.poll()), ("a", msgs))


class Lifecycle(gwtest.GatewayTestCase):
    def test_second_receiver(self):
        s = JsonpSession(self.gw).open()
        first = s.start_poll()
        try:
            first.expect_silence(0.3)
            second = JsonpSession.of(self.gw, s.url, callback="other")
            self.assertEqual(second.poll(), ANOTHER)
            s.send("for the first")
            r = read_response(first)
            self.assertEqual(parse_jsonp_body(r.body, "cb"), 'a["for the first"]')
        finally:
            first.close()

    def test_heartbeat_ends_poll(self):
        s = JsonpSession(self.gw, "/short_timers_echo").open()
        t0 = time.monotonic()
        r = s.jsonp()
        elapsed = time.monotonic() - t0
        self.assertEqual(r.body, b'/**/cb("h");\r\n')
        self.assertTrue(TIMER_MIN <= elapsed <= TIMER_MAX, "heartbeat after %.2f s" % elapsed)

    def test_close(self):
        s = JsonpSession(self.gw, "/close").open()
        self.assertEqual(s.poll(), GO_AWAY)
        self.assertEqual(s.poll(), GO_AWAY)

    def test_ticker(self):
        s = JsonpSession(self.gw, "/ticker").open()
        self.assertEqual(s.poll(timeout=4), 'a["tick!"]')


class Cookies(gwtest.GatewayTestCase):
    def test_dummy_cookie(self):
        s = JsonpSession(self.gw, "/cookie_needed_echo")
        r = s.jsonp()
        self.assertEqual(r.body, b'/**/cb("o");\r\n')
        self.assertJsessionid(r, "dummy")
        r = s.send_raw(form(["x"]))
        self.assertEqual(r.status, 200)
        self.assertJsessionid(r, "dummy")
        r = s.jsonp()
        self.assertEqual(r.body, b'/**/cb("a[\\"x\\"]");\r\n')
        self.assertJsessionid(r, "dummy")

    def test_cookie_echoed(self):
        s = JsonpSession(self.gw, "/cookie_needed_echo",
                         headers={"Cookie": "a=b; JSESSIONID=abcdef; c=d"})
        self.assertJsessionid(s.jsonp(), "abcdef")
        self.assertJsessionid(s.send_raw(form(["x"])), "abcdef")
        self.assertJsessionid(s.send_raw('["y"]', content_type="text/plain"), "abcdef")

    def test_no_cookie_without_option(self):
        s = JsonpSession(self.gw, "/echo", headers={"Cookie": "JSESSIONID=abcdef"})
        self.assertNoCookie(s.jsonp())
        self.assertNoCookie(s.send_raw(form(["x"])))


if __name__ == "__main__":
    gwtest.main()
