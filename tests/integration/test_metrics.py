"""Observability: GET /metrics on the API listener (Prometheus text format 0.0.4, checked by
promtool), --version, --log-format json and the info line per session close.

Spec: docs/PROTOCOL.md "Metrics and health". promtool comes from Debian's `prometheus`
package (scripts/setup.sh --test); without it these tests fail, they do not skip.
"""

import json
import re
import shutil
import subprocess
import unittest
import uuid

import gwtest
import redisfix
from gwtest import TIMEOUT, Conn, build_request, read_response_head, BodyReader
from scopedfix import PREFIX, ScopedTestCase, Session, publish_body, token_for, unique

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def parse_metrics(text):
    """{(name, frozenset of (label, value))): float} of every sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise AssertionError("not a sample line: %r" % line)
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name, **labels):
    key = (name, frozenset(labels.items()))
    if key not in samples:
        raise AssertionError("no sample %s%r" % (name, labels))
    return samples[key]


class OpenStream:
    """A GET receiver (eventsource, htmlfile, jsonp) opening a session; `body` is read until
    the open frame has come in the transport's encoding."""

    def __init__(self, gw, transport, token, open_marker):
        sid = uuid.uuid4().hex
        query = "?token=%s" % token
        if transport in ("htmlfile", "jsonp"):
            query += "&c=cb"
        self.conn = Conn(gw.port, host=gw.host)
        self.conn.send(build_request("GET", "%s/000/%s/%s%s" % (PREFIX, sid, transport, query)))
        resp = read_response_head(self.conn)
        if resp.status != 200:
            raise AssertionError("%s answered %d" % (transport, resp.status))
        self.body = BodyReader(self.conn, resp, "GET")
        seen = b""
        while open_marker not in seen:
            chunk = self.body.read_some(TIMEOUT)
            if not chunk:
                raise AssertionError("%s ended before its open frame: %r" % (transport, seen))
            seen += chunk

    def close(self):
        self.conn.close()


class MetricsTest(ScopedTestCase):
    # One gateway for the class; only test_sessions_publishes_and_closes opens sessions.
    gateway_args = ("--log-format", "json", "--log-level", "debug",
                    "--disconnect-delay-ms", "60000")

    def metrics(self, gw=None):
        r = (gw or self.gw).api("GET", "/metrics", key=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")
        return r.body.decode("utf-8")

    def promtool(self, text):
        tool = shutil.which("promtool")
        self.assertIsNotNone(tool, "promtool not found: install Debian's prometheus package "
                             "(scripts/setup.sh --test)")
        p = subprocess.run([tool, "check", "metrics"], input=text.encode(), capture_output=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, "promtool check metrics:\n%s%s"
                         % (p.stdout.decode(), p.stderr.decode()))

    def test_sessions_publishes_and_closes(self):
        gw = self.gw
        # Two websocket sessions, one of each other transport, each authenticated.
        ws = self.user_session("websocket")
        self.user_session("websocket")
        self.user_session("xhr_streaming")
        self.user_session("xhr_polling")
        streams = []
        for transport, marker in (("eventsource", b"data: o\r\n"),
                                  ("htmlfile", b'p("o");'),
                                  ("jsonp", b'cb("o");')):
            s = OpenStream(gw, transport, token_for(self.site, unique("u"), unique("c")), marker)
            self.addCleanup(s.close)
            streams.append(s)
        # One session refused: invalid token, closed with 4001.
        bad = self.session("websocket", token="not-a-token")
        bad.expect_open()
        bad.expect_close()

        # Publishes: one accepted (delivered to ws), one of a bad scope, one global with ids.
        gw.publish(publish_body("user", self.site, "e.one", {"n": 1}, ids=[ws.sub]))
        msg = ws.next_message()
        self.assertEqual(msg["event"], "e.one")
        self.assertEqual(gw.publish_raw({"scope": "nope", "site": "s"}).status, 400)
        self.assertEqual(gw.publish_raw(publish_body("global", self.site, "e", ids=["1"])).status,
                         400)

        text = self.metrics()
        self.promtool(text)
        m = parse_metrics(text)
        expected = {"websocket": 2, "xhr_streaming": 1, "xhr_polling": 1, "eventsource": 1,
                    "htmlfile": 1, "jsonp": 1}
        for transport, n in expected.items():
            self.assertEqual(value(m, "sockjs_gateway_sessions", transport=transport), n,
                             transport)
        self.assertEqual(value(m, "sockjs_gateway_sessions_by_identity",
                               identity="authenticated"), 7)
        self.assertEqual(value(m, "sockjs_gateway_sessions_by_identity", identity="anonymous"), 0)
        self.assertEqual(value(m, "sockjs_gateway_session_closes_total", code="4001"), 1)
        self.assertEqual(value(m, "sockjs_gateway_publishes_total", scope="user",
                               result="accepted"), 1)
        self.assertEqual(value(m, "sockjs_gateway_publishes_total", scope="unknown",
                               result="rejected"), 1)
        self.assertEqual(value(m, "sockjs_gateway_publishes_total", scope="global",
                               result="rejected"), 1)
        self.assertEqual(value(m, "sockjs_gateway_publishes_total", scope="user",
                               result="unavailable"), 0)
        self.assertEqual(value(m, "sockjs_gateway_deliveries_total"), 1)
        self.assertEqual(value(m, "sockjs_gateway_publish_latency_seconds_count"), 1)
        self.assertEqual(value(m, "sockjs_gateway_engine_available", engine="local"), 1)
        self.assertGreater(value(m, "sockjs_gateway_written_bytes_total"), 0)
        self.assertGreaterEqual(value(m, "sockjs_gateway_connections"), 7)
        self.assertGreater(value(m, "process_resident_memory_bytes"), 0)
        self.assertGreater(value(m, "process_open_fds"), 7)
        self.assertGreater(value(m, "process_start_time_seconds"), 1.5e9)
        build = [k for k in m if k[0] == "sockjs_gateway_build_info"]
        self.assertEqual(len(build), 1)
        self.assertRegex(dict(build[0][1])["version"], r"^\d+\.\d+\.\d+")

        # /metrics needs no key; /api/stats still does.
        self.assertEqual(gw.api("GET", "/api/stats", key=None).status, 401)
        self.assertEqual(gw.api("GET", "/api/stats").status, 200)

        # The close of the websocket session: an info line with transport, identity, duration,
        # code and reason, and client address (test_logs.py has the details); its count moves
        # from the open gauge to closes.
        since = gw.log_mark()
        ws.close()
        line = gw.wait_log(r"session closed: transport=websocket .* code=1002 ", since=since)
        # The client's connection is gone: its address may be too ("?").
        self.assertRegex(json.loads(line)["msg"],
                         r'^session closed: transport=websocket user=\S+ company=\S+ site=\S+ '
                         r'duration_ms=\d+ code=1002 reason="Connection interrupted" '
                         r'client=(127\.0\.0\.1:\d+|\?)$')
        # Closed by the gateway, the connection still there: with the client's address.
        line = gw.find_log(r"session closed: transport=websocket .* code=4001 ")
        self.assertRegex(json.loads(line)["msg"],
                         r'^session closed: transport=websocket user=- company=- site=- '
                         r'duration_ms=\d+ code=4001 reason="Invalid token" '
                         r'client=127\.0\.0\.1:\d+$')
        m = parse_metrics(self.metrics())
        self.assertEqual(value(m, "sockjs_gateway_sessions", transport="websocket"), 1)
        self.assertEqual(value(m, "sockjs_gateway_session_closes_total", code="1002"), 1)

        # --log-format json: every line of the log is one JSON object.
        lines = gw.log_lines()
        self.assertGreater(len(lines), 10)
        for line in lines:
            obj = json.loads(line)
            self.assertEqual(sorted(obj), ["level", "msg", "ts"], line)
            self.assertIn(obj["level"], ("error", "warn", "info", "debug"))
            self.assertRegex(obj["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_publish_latency_across_nodes(self):
        # A publish accepted by node A and heard through Redis by node B carries A's time.
        redis = redisfix.RedisServer().start()
        self.addCleanup(redis.stop)
        a = self.start_gateway("--engine", redis.url)
        b = self.start_gateway("--engine", redis.url)
        for gw in (a, b):
            gw.wait_publish_status(202)
        site = unique("site")
        s = Session(b, "websocket", token=token_for(site, "u1"))
        self.addCleanup(s.close)
        s.expect_open()
        s.wait_ready()
        before = value(parse_metrics(self.metrics(b)), "sockjs_gateway_publish_latency_seconds_count")
        a.publish(publish_body("user", site, "e", 1, ids=["u1"]))
        self.assertEqual(s.next_message()["data"], 1)
        samples = parse_metrics(self.metrics(b))
        self.assertEqual(value(samples, "sockjs_gateway_publish_latency_seconds_count"), before + 1)
        # Loopback, one host: well under a second.
        self.assertLess(value(samples, "sockjs_gateway_publish_latency_seconds_sum"), 1.0)

    def test_version(self):
        p = subprocess.run([gwtest.gateway_binary(), "--version"], capture_output=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0)
        out = p.stdout.decode()
        self.assertRegex(out, r"^sockjs-gateway \d+\.\d+\.\d+( \([^)]+\))?\n$")
        m = parse_metrics(self.metrics())
        version = out[len("sockjs-gateway "):-1]
        self.assertEqual(value(m, "sockjs_gateway_build_info", version=version), 1)

    def test_bad_log_format(self):
        p = subprocess.run([gwtest.gateway_binary(), "--log-format", "xml"],
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"--log-format", p.stderr)


if __name__ == "__main__":
    gwtest.main()
