#!/usr/bin/python3
"""Static URLs of every prefix: greeting, 404s, iframe page, /info, OPTIONS preflights.

Spec: SOCKJS_TEST_APP.md, "Static URLs" and "Common headers".
"""

import re

import gwtest
from gwtest import request

IFRAME_RE = re.compile(
    r"""<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  (?:<script src="(?P<url1>[^"]+)"></script>
  <script>
    document.domain = document.domain;
    SockJS.bootstrap_iframe\(\);
  </script>|<script>
    document.domain = document.domain;
    _sockjs_onload = function\(\)\{SockJS.bootstrap_iframe\(\);\};
  </script>
  <script src="(?P<url2>[^"]+)"></script>)
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>
?$""")


class Greeting(gwtest.GatewayTestCase):
    def test_greeting(self):
        for prefix in gwtest.ALL_PREFIXES:
            for path in (prefix, prefix + "/"):
                with self.subTest(path=path):
                    r = request(self.gw.port, "GET", path)
                    self.assertEqual(r.status, 200)
                    self.assertContentType(r, "text/plain; charset=UTF-8")
                    self.assertEqual(r.body, b"Welcome to SockJS!\n")
                    self.assertNoCookie(r)

    def test_greeting_sets_no_cookie(self):
        r = request(self.gw.port, "GET", "/cookie_needed_echo/",
                    headers={"Cookie": "JSESSIONID=abcdef"})
        self.assertEqual(r.status, 200)
        self.assertNoCookie(r)

    def test_not_found(self):
        for suffix in ("/a", "/a.html", "//", "///", "/a/a", "/a/a/", "/a/", "/infoo",
                       "/a/a/a"):
            for prefix in ("/echo", "/close"):
                with self.subTest(path=prefix + suffix):
                    r = request(self.gw.port, "GET", prefix + suffix)
                    self.assertEqual(r.status, 404)

    def test_unknown_prefix(self):
        for path in ("/nope", "/nope/", "/nope/info", "/echoo/info", "/ech/info"):
            with self.subTest(path=path):
                self.assertEqual(request(self.gw.port, "GET", path).status, 404)


class IframePage(gwtest.GatewayTestCase):
    def check_iframe(self, path):
        r = request(self.gw.port, "GET", path)
        self.assertEqual(r.status, 200, path)
        self.assertContentType(r, "text/html; charset=UTF-8")
        self.assertLongCached(r)
        self.assertIsNotNone(r.header("ETag"), "iframe without ETag")
        self.assertIsNone(r.header("Last-Modified"))
        self.assertNoCookie(r)
        m = IFRAME_RE.match(r.text)
        self.assertTrue(m, "iframe body does not match the template:\n%s" % r.text)
        url = m.group("url1") or m.group("url2")
        self.assertRegex(url, r"^https?://", "SOCKJS_URL must be absolute")
        return r

    def test_simple_url(self):
        self.check_iframe("/echo/iframe.html")

    def test_versioned_url(self):
        for name in ("/iframe-a.html", "/iframe-.html", "/iframe-0.1.2.html",
                     "/iframe-0.1.2abc-dirty.2144.html", "/iframe_1.html", "/iframe.0.3.3.html"):
            with self.subTest(name=name):
                self.check_iframe("/echo" + name)

    def test_queried_url(self):
        for name in ("/iframe-a.html?t=1234", "/iframe-0.1.2.html?t=123414",
                     "/iframe-0.1.2abc-dirty.2144.html?t=qweqweq123", "/iframe.html?"):
            with self.subTest(name=name):
                self.check_iframe("/echo" + name)

    def test_every_prefix(self):
        for prefix in gwtest.ALL_PREFIXES:
            with self.subTest(prefix=prefix):
                self.check_iframe(prefix + "/iframe.html")

    def test_invalid_url(self):
        for name in ("/iframe.htm", "/iframe", "/IFRAME.HTML", "/IFRAME", "/iframe.HTML",
                     "/iframe.xml", "/iframe-/.html", "/xiframe.html",
                     "/iframe!.html"):
            with self.subTest(name=name):
                self.assertEqual(request(self.gw.port, "GET", "/echo" + name).status, 404)

    def test_cacheability(self):
        r1 = self.check_iframe("/echo/iframe.html")
        r2 = self.check_iframe("/echo/iframe.html")
        self.assertEqual(r1.header("ETag"), r2.header("ETag"), "ETag is not stable")
        r = request(self.gw.port, "GET", "/echo/iframe.html",
                    headers={"If-None-Match": r1.header("ETag")})
        self.assertEqual(r.status, 304)
        self.assertIsNone(r.header("Content-Type"))
        self.assertEqual(r.body, b"")

    def test_etag_mismatch_gives_page(self):
        r = request(self.gw.port, "GET", "/echo/iframe.html",
                    headers={"If-None-Match": '"not-the-etag"'})
        self.assertEqual(r.status, 200)
        self.assertTrue(IFRAME_RE.match(r.text))


class Info(gwtest.GatewayTestCase):
    def info(self, prefix="/echo", headers=None):
        r = request(self.gw.port, "GET", prefix + "/info", headers=headers)
        self.assertEqual(r.status, 200)
        self.assertContentType(r, "application/json; charset=UTF-8")
        self.assertNotCached(r)
        return r

    def test_basic(self):
        r = self.info()
        self.assertCors(r)
        data = r.json()
        self.assertEqual(set(data), {"websocket", "origins", "cookie_needed", "entropy"})
        self.assertIs(data["websocket"], True)
        self.assertEqual(data["origins"], ["*:*"])
        self.assertIs(data["cookie_needed"], False)
        self.assertIsInstance(data["entropy"], int)
        self.assertTrue(0 <= data["entropy"] < 2 ** 32, data["entropy"])
        self.assertNoCookie(r)

    def test_query_string(self):
        # sockjs-client adds a cache-busting query (info?t=...).
        r = request(self.gw.port, "GET", "/echo/info?t=1234567890")
        self.assertEqual(r.status, 200)
        self.assertIn("entropy", r.json())

    def test_entropy_varies(self):
        values = {self.info().json()["entropy"] for _ in range(6)}
        self.assertGreater(len(values), 1, "entropy did not vary: %r" % values)

    def test_disabled_websocket(self):
        data = self.info("/disabled_websocket_echo").json()
        self.assertIs(data["websocket"], False)
        self.assertIs(data["cookie_needed"], False)

    def test_cookie_needed(self):
        r = self.info("/cookie_needed_echo", headers={"Cookie": "JSESSIONID=abcdef"})
        data = r.json()
        self.assertIs(data["cookie_needed"], True)
        self.assertIs(data["websocket"], True)
        self.assertNoCookie(r)

    def test_other_prefixes(self):
        for prefix in ("/close", "/ticker", "/amplify", "/broadcast", "/short_timers_echo",
                       "/short_timers_close"):
            with self.subTest(prefix=prefix):
                data = self.info(prefix).json()
                self.assertIs(data["websocket"], True)
                self.assertIs(data["cookie_needed"], False)

    def test_cors_origin(self):
        r = self.info(headers={"Origin": "http://example.com"})
        self.assertCors(r, "http://example.com")

    def test_cors_origin_null(self):
        r = self.info(headers={"Origin": "null"})
        self.assertCors(r, "null")

    def test_options(self):
        for origin in (None, "test", "null"):
            with self.subTest(origin=origin):
                h = {"Origin": origin} if origin else {}
                r = request(self.gw.port, "OPTIONS", "/echo/info", headers=h)
                self.assertIn(r.status, (200, 204))
                self.assertEqual(r.body, b"")
                self.assertLongCached(r)
                self.assertGreater(int(r.header("Access-Control-Max-Age")), 1000000)
                self.assertEqual(r.header("Access-Control-Allow-Methods"), "OPTIONS, GET")
                self.assertCors(r, origin)
                self.assertIsNone(r.header("Access-Control-Allow-Headers"))

    def test_options_request_headers(self):
        r = request(self.gw.port, "OPTIONS", "/echo/info",
                    headers={"Origin": "test", "Access-Control-Request-Headers": "a, b, c"})
        self.assertIn(r.status, (200, 204))
        self.assertEqual(r.header("Access-Control-Allow-Headers"), "a, b, c")
        r = request(self.gw.port, "OPTIONS", "/echo/info",
                    headers={"Origin": "test", "Access-Control-Request-Headers": ""})
        self.assertIn(r.status, (200, 204))
        self.assertIsNone(r.header("Access-Control-Allow-Headers"))

    def test_info_request_headers(self):
        r = self.info(headers={"Access-Control-Request-Headers": "X-Foo"})
        self.assertEqual(r.header("Access-Control-Allow-Headers"), "X-Foo")


if __name__ == "__main__":
    gwtest.main()
