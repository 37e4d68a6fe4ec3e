#!/usr/bin/python3
"""The publish API (POST /api/publish, GET /api/stats) on its own listener.

Checked: 202 with one publish id per publish (object and array forms); 400 with a JSON reason
for every kind of malformed request, and nothing of a rejected request delivered (an array with
one bad element publishes none of them); 413 for a body over the API limit and data over
--max-data-bytes; 401 without a key or with a wrong one; 404/405 for other paths and methods;
the counters of /api/stats; the configuration sources of the options the API uses (command
line, environment, config file, --help).

Spec: docs/PROTOCOL.md "Publish API"; the gateway's command-line contract (options, --config,
SOCKJS_GATEWAY_<NAME>, precedence, --help).
"""

import json
import os
import subprocess
import tempfile

import gwtest
import scopedfix
from scopedfix import (API_KEY, ScopedGateway, ScopedTestCase, publish_body, token_for, unique)

MAX_IDS = 5


def valid(site, event="ok", data=None, ids=("u1",)):
    return publish_body("user", site, event, data, ids=ids)


class Accepted(ScopedTestCase):
    gateway_args = ("--max-ids", str(MAX_IDS))

    def test_one_publish_one_id(self):
        r = self.gw.publish_raw(valid(self.site))
        self.assertEqual(r.status, 202, r)
        self.assertTrue((r.header("Content-Type") or "").startswith("application/json"), r)
        body = r.json()
        self.assertEqual(list(body), ["ids"], body)
        self.assertEqual(len(body["ids"]), 1, body)
        self.assertIsInstance(body["ids"][0], str, body)
        self.assertTrue(body["ids"][0], body)

    def test_array_one_id_per_publish(self):
        pubs = [valid(self.site, "a"), publish_body("client", self.site, "b", 1, ids=["c1", 2]),
                publish_body("global", self.site, "c", {"x": [1, 2]}),
                publish_body("user", None, "d", "s", ids=["u1"], sites=[self.site, "other"])]
        ids = self.gw.publish(pubs)
        self.assertEqual(len(set(ids)), len(pubs), ids)
        for i in ids:
            self.assertIsInstance(i, str)
        again = self.gw.publish(valid(self.site))
        self.assertNotIn(again[0], ids)

    def test_max_ids_exactly(self):
        self.gw.publish(valid(self.site, ids=["u%d" % i for i in range(MAX_IDS)]))

    def test_any_json_data(self):
        s = self.user_session()
        values = [None, True, 0, -1.5, "", "text \u00e9 \U0001F600 \"q\" \\", [], {},
                  {"nested": {"a": [1, {"b": None}]}}, "\u2028\u2029 <script>"]
        for i, v in enumerate(values):
            self.gw.publish(publish_body("user", self.site, "d", v, ids=[s.sub]))
        for i, v in enumerate(values):
            self.assertEvent(s.next_message(), "user", self.site, "d", v, i + 1)


class Rejected(ScopedTestCase):
    gateway_args = ("--max-ids", str(MAX_IDS))

    def bad_bodies(self):
        site = self.site
        long_name = "n" * 257
        ok = valid(site)
        cases = [
            ("broken json", b'{"scope": "user", '),
            ("trailing garbage", json.dumps(ok) + " x"),
            ("empty body", b""),
            ("not an object: string", '"publish"'),
            ("not an object: number", "42"),
            ("not an object: null", "null"),
            ("array of non-objects", "[1]"),
            ("unknown scope", dict(ok, scope="everyone")),
            ("scope missing", {k: v for k, v in ok.items() if k != "scope"}),
            ("scope not a string", dict(ok, scope=1)),
            ("ids missing for user", {k: v for k, v in ok.items() if k != "ids"}),
            ("ids missing for client",
             {k: v for k, v in publish_body("client", site, "e", ids=["c"]).items()
              if k != "ids"}),
            ("ids given for global", publish_body("global", site, "e", ids=["u1"])),
            ("too many ids", dict(ok, ids=["u%d" % i for i in range(MAX_IDS + 1)])),
            ("ids not an array", dict(ok, ids="u1")),
            ("id not a string or integer", dict(ok, ids=[["u1"]])),
            ("id a float", dict(ok, ids=[1.5])),
            ("id null", dict(ok, ids=[None])),
            ("event not a string", dict(ok, event=5)),
            ("event missing", {k: v for k, v in ok.items() if k != "event"}),
            ("site not a string", dict(ok, site=["S"])),
            ("site missing", {k: v for k, v in ok.items() if k != "site"}),
            ("both site and sites", dict(ok, sites=[site])),
            ("sites not an array", publish_body("user", None, "e", ids=["u"], sites=site)),
            ("sites with a non-string", publish_body("user", None, "e", ids=["u"],
                                                     sites=[site, 3])),
            ("site with ':'", dict(ok, site="a:b")),
            ("oversized site", dict(ok, site=long_name)),
            ("oversized event", dict(ok, event=long_name)),
            ("oversized id", dict(ok, ids=[long_name])),
            ("control character in event", dict(ok, event="a\nb")),
        ]
        return cases

    def test_400_with_reason(self):
        s = self.user_session(sub="u1")
        before = self.gw.stats()
        for name, body in self.bad_bodies():
            with self.subTest(case=name):
                r = self.gw.publish_raw(body)
                self.assertApiError(r, 400)
                self.assertTrue((r.header("Content-Type") or "").startswith("application/json"),
                                r)
        # Nothing was published: the next event on u1's channel is the first one.
        self.gw.publish(valid(self.site, "marker", "m"))
        self.assertEvent(s.next_message(), "user", self.site, "marker", "m", 1)
        self.assertGreaterEqual(scopedfix.stat_sum(self.gw.stats(), "publish")
                                - scopedfix.stat_sum(before, "publish"), 1)

    def test_array_with_one_bad_element_publishes_nothing(self):
        s = self.user_session(sub="u1")
        for bad_at, (name, bad) in enumerate([("unknown scope", dict(valid(self.site),
                                                                       scope="x")),
                                               ("too many ids",
                                                valid(self.site, ids=["u1"] * (MAX_IDS + 1))),
                                               ("not an object", 7)]):
            with self.subTest(case=name):
                pubs = [valid(self.site, "first"), valid(self.site, "second")]
                pubs.insert(bad_at, bad)
                r = self.gw.publish_raw(pubs)
                body = self.assertApiError(r, 400)
                self.assertEqual(body.get("index"), bad_at, body)
        self.gw.publish(valid(self.site, "marker", "m"))
        self.assertEvent(s.next_message(), "user", self.site, "marker", "m", 1)

    def test_413_body_over_limit(self):
        # --api-max-body-bytes defaults to 1 MiB.
        big = json.dumps(valid(self.site, data="x" * 60000))
        body = "[" + ",".join([big] * 20) + "]"
        self.assertGreater(len(body), 1 << 20)
        with gwtest.Conn(self.gw.api_port, host=self.gw.api_host) as c:
            c.try_send(gwtest.build_request("POST", "/api/publish", body=body, headers={
                "Authorization": "Bearer " + API_KEY, "Content-Type": "application/json"}))
            r = gwtest.read_response(c)
        self.assertApiError(r, 413)
        self.gw.assert_alive()

    def test_413_announced_length_over_limit(self):
        with gwtest.Conn(self.gw.api_port, host=self.gw.api_host) as c:
            c.send(gwtest.build_request("POST", "/api/publish", content_length=1 << 30, headers={
                "Authorization": "Bearer " + API_KEY, "Content-Type": "application/json"}))
            r = gwtest.read_response(c)
        self.assertApiError(r, 413)

    def test_413_data_over_max_data_bytes(self):
        s = self.user_session(sub="u1")
        r = self.gw.publish_raw(valid(self.site, data="x" * (64 * 1024)))
        self.assertApiError(r, 413)
        self.gw.publish(valid(self.site, "marker", "m"))
        self.assertEvent(s.next_message(), "user", self.site, "marker", "m", 1)

    def test_401(self):
        s = self.user_session(sub="u1")
        for name, headers in [("no key", {}),
                              ("wrong key", {"Authorization": "Bearer wrong"}),
                              ("key as prefix", {"Authorization": "Bearer " + API_KEY[:-1]}),
                              ("key plus suffix", {"Authorization": "Bearer " + API_KEY + "x"}),
                              ("basic scheme", {"Authorization": "Basic " + API_KEY}),
                              ("bare key", {"Authorization": API_KEY})]:
            with self.subTest(case=name):
                r = self.gw.publish_raw(valid(self.site), key=None, headers=headers)
                self.assertApiError(r, 401)
                r = self.gw.api("GET", "/api/stats", key=None, headers=headers)
                self.assertApiError(r, 401)
        self.gw.publish(valid(self.site, "marker", "m"))
        self.assertEvent(s.next_message(), "user", self.site, "marker", "m", 1)

    def test_404_and_405(self):
        for method, path in [("GET", "/"), ("POST", "/api"), ("POST", "/api/publish/x"),
                             ("POST", "/api/publishx"), ("GET", "/api/nothing"),
                             ("POST", "/sockjs/info")]:
            with self.subTest(method=method, path=path):
                r = self.gw.api(method, path, body=b"{}" if method == "POST" else None)
                self.assertEqual(r.status, 404, r)
        for method, path in [("GET", "/api/publish"), ("PUT", "/api/publish"),
                             ("DELETE", "/api/publish"), ("POST", "/api/stats"),
                             ("DELETE", "/api/stats")]:
            with self.subTest(method=method, path=path):
                r = self.gw.api(method, path, body=b"{}" if method in ("POST", "PUT") else None)
                self.assertEqual(r.status, 405, r)

    def test_api_not_on_the_sockjs_listener(self):
        r = gwtest.request(self.gw.port, "POST", "/api/publish",
                           body=json.dumps(valid(self.site)),
                           headers={"Authorization": "Bearer " + API_KEY})
        self.assertNotEqual(r.status, 202, r)


class Stats(ScopedTestCase):
    per_test_gateway = True

    def assertMovedBy(self, before, after, word, n):
        """Some counter named with `word` moved by exactly n (the spec names the counters,
        not their JSON keys)."""
        moved = scopedfix.counters_moved(before, after, word)
        self.assertIn(n, moved.values(), "no %r counter moved by %d: %s" % (word, n, moved))

    def test_counters_move(self):
        s0 = self.gw.stats()
        self.assertIsInstance(s0, dict)
        names = " ".join(scopedfix.stat_names(s0)).lower()
        for word in ("session", "publish", "deliver", "drop", "malformed", "engine"):
            self.assertIn(word, names, "no %r counter in /api/stats: %s" % (word, s0))
        a = self.user_session()
        b = self.user_session("xhr_streaming", client=a.client)
        s1 = self.gw.stats()
        self.assertMovedBy(s0, s1, "session", 2)
        self.gw.publish([publish_body("client", self.site, "e", 1, ids=[a.client]),
                         publish_body("user", self.site, "e", 2, ids=[a.sub])])
        a.messages(2)
        b.messages(1)
        s2 = self.gw.stats()
        self.assertMovedBy(s1, s2, "publish", 2)
        self.assertMovedBy(s1, s2, "deliver", 3)
        a.send_text("not json")
        self.assertError(a.next_message())
        s3 = self.gw.stats()
        self.assertMovedBy(s2, s3, "malformed", 1)
        r = self.gw.publish_raw({"scope": "nope"})
        self.assertApiError(r, 400)
        a.close()
        b.close()


class ConfigSources(ScopedTestCase):
    """--api-key from the command line, SOCKJS_GATEWAY_API_KEY, and --config FILE, with the
    precedence command line > environment > file."""

    per_test_gateway = True

    def setUp(self):
        # No class gateway: each test starts its own.
        self.site = unique("site")
        self._log_mark = 0
        self.gw = None

    def config_file(self, text):
        fd, path = tempfile.mkstemp(prefix="gw-config-", suffix=".conf")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.addCleanup(os.unlink, path)
        return path

    def key_works(self, gw, key):
        r = gw.publish_raw(valid(self.site), key=key)
        return r.status == 202

    def start(self, *args, env=None, secrets=(scopedfix.SECRET,)):
        gw = ScopedGateway(*args, api_key=None, env=env, secrets=secrets).start()
        self.addCleanup(gw.stop)
        self.gw = gw
        return gw

    def test_environment(self):
        gw = self.start(env={"SOCKJS_GATEWAY_API_KEY": "from-env",
                             "SOCKJS_GATEWAY_JWT_SECRET": "s1,s2"}, secrets=())
        self.assertTrue(self.key_works(gw, "from-env"))
        self.assertFalse(self.key_works(gw, API_KEY))
        # Both secrets of the comma-separated list are accepted.
        for secret in ("s1", "s2"):
            sub = unique("u")
            s = self.session(gw=gw, token=token_for(self.site, sub, secret=secret)).expect_open()
            gw.publish(publish_body("user", self.site, "e", secret, ids=[sub]), key="from-env")
            self.assertEvent(s.next_message(), "user", self.site, "e", secret, 1)

    def test_config_file(self):
        path = self.config_file("# comment\napi-key = from-file\nmax-ids = 2\n")
        gw = self.start("--config", path)
        self.assertTrue(self.key_works(gw, "from-file"))
        r = gw.publish_raw(valid(self.site, ids=["a", "b", "c"]), key="from-file")
        self.assertApiError(r, 400)

    def test_precedence(self):
        path = self.config_file("api-key = from-file\n")
        gw = self.start("--config", path, env={"SOCKJS_GATEWAY_API_KEY": "from-env"})
        self.assertTrue(self.key_works(gw, "from-env"))
        self.assertFalse(self.key_works(gw, "from-file"))
        gw.stop()
        gw = self.start("--config", path, "--api-key", "from-cli",
                        env={"SOCKJS_GATEWAY_API_KEY": "from-env"})
        self.assertTrue(self.key_works(gw, "from-cli"))
        self.assertFalse(self.key_works(gw, "from-env"))

    def test_help_lists_the_options(self):
        out = subprocess.run([gwtest.gateway_binary(), "--help"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=gwtest.START_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stdout[-2000:])
        text = out.stdout.decode("utf-8", "replace")
        for opt in ("--api-listen", "--api-key", "--jwt-secret", "--allow-anonymous",
                    "--engine", "--max-queued-bytes", "--max-ids", "--auth-timeout-ms",
                    "--config", "--api-max-body-bytes", "--max-data-bytes"):
            self.assertIn(opt, text)
        self.assertIn("127.0.0.1:8081", text)  # --api-listen's default (PROTOCOL.md)


if __name__ == "__main__":
    gwtest.main()
