"""The gateway's own files: the SockJS client library (what /iframe.html loads by default) and
the demo page."""

import os
import re
import unittest

import gwtest
from gwtest import Gateway


def get(gw, path, headers=None):
    return gwtest.request(gw.port, "GET", path, headers=headers or {}, host=gw.host)


class Assets(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway().start()

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()

    def test_client_library_with_etag(self):
        r = get(self.gw, "/static/sockjs.min.js")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.body.startswith(b"/* sockjs-client v1.6.1"), r.body[:60])
        self.assertIn("javascript", r.header("Content-Type"))
        self.assertIn("max-age=31536000", r.header("Cache-Control"))
        etag = r.header("ETag")
        r2 = get(self.gw, "/static/sockjs.min.js", {"If-None-Match": etag})
        self.assertEqual(r2.status, 304)
        self.assertEqual(r2.body, b"")

    def test_gateway_library_served_and_revalidated(self):
        # web/sockjs-gateway.js byte for byte, with the stock client's CORS; unlike the stock
        # client it changes with the gateway at the same URL: revalidated on every use.
        with open(os.path.join(gwtest.REPO_ROOT, "web", "sockjs-gateway.js"), "rb") as f:
            source = f.read()
        stock = get(self.gw, "/static/sockjs.min.js", {"Origin": "http://other.example"})
        r = get(self.gw, "/static/sockjs-gateway.js", {"Origin": "http://other.example"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, source)
        for name in ("Content-Type", "Access-Control-Allow-Origin"):
            self.assertEqual(r.header(name), stock.header(name), name)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "*")
        self.assertEqual(r.header("Cache-Control"), "no-cache")
        self.assertIsNone(r.header("Expires"))
        etag = r.header("ETag")
        self.assertNotEqual(etag, stock.header("ETag"))
        r2 = get(self.gw, "/static/sockjs-gateway.js", {"If-None-Match": etag})
        self.assertEqual(r2.status, 304)
        self.assertEqual(r2.body, b"")
        self.assertEqual(get(self.gw, "/static/sockjs-gateway.js",
                             {"If-None-Match": stock.header("ETag")}).status, 200)

    def test_iframe_loads_the_gateways_copy_by_default(self):
        r = get(self.gw, "/echo/iframe.html", {"Host": "gw.example:8080"})
        m = re.search(rb'<script src="([^"]+)"></script>', r.body)
        self.assertEqual(m.group(1), b"http://gw.example:8080/static/sockjs.min.js")
        # A Host that is not a host name is not written into the page.
        r = get(self.gw, "/echo/iframe.html", {"Host": 'x"><script>'})
        self.assertNotIn(b"<script>\"", r.body)
        self.assertIn(b'src="/static/sockjs.min.js"', r.body)

    def test_demo_page(self):
        r = get(self.gw, "/demo")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header("Location"), "/demo/")
        r = get(self.gw, "/demo/")
        self.assertEqual(r.status, 200)
        self.assertIn("text/html", r.header("Content-Type"))
        self.assertIn(b'<script src="/static/sockjs.min.js"></script>', r.body)
        self.assertIn(b'<script src="/static/sockjs-gateway.js"></script>', r.body)
        self.assertEqual(get(self.gw, "/static/other.js").status, 404)


class SockjsUrlOption(unittest.TestCase):
    def test_explicit_url(self):
        with Gateway("--sockjs-url", "https://cdn.example/sockjs.js") as gw:
            r = get(gw, "/echo/iframe.html")
            self.assertIn(b'<script src="https://cdn.example/sockjs.js"></script>', r.body)


if __name__ == "__main__":
    unittest.main()
