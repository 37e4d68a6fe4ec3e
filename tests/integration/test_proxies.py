"""The gateway behind legacy reverse proxies: real HAProxy and nginx processes (fixtures in
proxyfix.py) between the test client and `sockjs-gateway --test-app`.

- HAProxy (http mode, 3 s client/server timeouts, 30 s tunnel timeout): xhr polling,
  xhr_streaming and websocket go through; heartbeats keep streams and websockets open past the
  3 s timeouts; an idle websocket lives on the tunnel timeout; an idle xhr stream is cut by
  `timeout server` (and the session is then closed as interrupted); each streamed frame is
  ~200 ms late unless `option http-no-delay`. `send-proxy-v2` to a `,proxy` listener and
  `option forwardfor` to a `,trusted` listener: the gateway's debug log names the real client
  (but a client-supplied X-Forwarded-For wins: an expected failure, a gateway bug).
- nginx (proxy_buffering on, no Upgrade forwarding, 5 s proxy_read_timeout): xhr polling
  works; xhr_streaming flows with an HTTP/1.1 (chunked) upstream but is held in nginx's buffer
  with an HTTP/1.0 one; websocket is refused with a 400; the stock sockjs-client (Node) falls
  back to the transport that works (with a race of its own in the three-transport case).
- A proxy killed mid-stream: the gateway keeps running and closes the session (1002).

Needs haproxy and nginx (scripts/setup.sh --test installs them) and, for the sockjs-client
tests, node with tests/node/node_modules (npm ci). Missing tools are failures, not skips.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import unittest

import gwtest
import proxyfix
from gwtest import (Gateway, WebSocket, HandshakeError, XhrSession, XhrStream, PRELUDE,
                    build_request, read_response, read_response_head, BodyReader,
                    session_url, message_frame, close_frame, ConnectionClosed)

HAPROXY_CLIENT_TIMEOUT = 3.0  # proxyfix.HAProxy.TIMEOUTS: client and server
NGINX_READ_TIMEOUT = 5.0
NODE_CLIENT_DIR = os.path.join(gwtest.REPO_ROOT, "tests", "node", "node_modules",
                               "sockjs-client")
INTERRUPTED = close_frame(1002, "Connection interrupted")


class ProxyTestCase(unittest.TestCase):
    """A gateway (debug log) and proxies per class; their logs are printed when a test fails."""

    maxDiff = 4000
    gw = None
    proxies = ()

    @classmethod
    def start_all(cls, listen, make_proxies):
        cls.gw = Gateway("--log-level", "debug", listen=listen).start()
        try:
            cls.proxies = make_proxies(cls.gw)
            for p in cls.proxies:
                p.start()
        except BaseException:
            cls.stop_all()
            raise

    @classmethod
    def stop_all(cls):
        for p in cls.proxies:
            p.stop()
        cls.proxies = ()
        gw, cls.gw = cls.gw, None
        if gw is not None:
            gw.stop()  # requires exit status 0

    @classmethod
    def tearDownClass(cls):
        cls.stop_all()

    def setUp(self):
        self._mark = self.gw.log_mark()

    def tearDown(self):
        self.gw.assert_alive()

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            if self.gw is not None:
                sys.stderr.write("\n---- gateway log during %s ----\n%s\n---- end ----\n"
                                 % (self.id(), "\n".join(self.gw.log_lines(self._mark)[-200:])))
            for p in self.proxies:
                sys.stderr.write("\n" + p.log_text(60) + "\n")
        return out

    # -- helpers ------------------------------------------------------------------------------

    def echo_over_xhr(self, target, prefix="/echo"):
        s = XhrSession(target, prefix).open()
        s.send("one", "two \u00e9")
        self.assertEqual(gwtest.parse_frame(s.poll()), ("a", ["one", "two \u00e9"]))
        return s

    def wait_interrupted(self, url, timeout=gwtest.TIMEOUT):
        """The session's next receiver, on a direct connection, gets the 1002 close frame.

        Until the gateway has read the end of the proxy's connection the dropped receiver is
        still attached and a new one gets c[2010] (which leaves the session alone); that answer
        is the event that says "not yet", so ask again until the deadline."""
        direct = XhrSession.of(self.gw, url)
        deadline = time.monotonic() + timeout
        while True:
            frame = direct.poll()
            if frame != close_frame(2010, "Another connection still open"):
                break
            self.assertLess(time.monotonic(), deadline, "receiver through the proxy still "
                            "attached %.0f s after the proxy dropped it" % timeout)
        # /echo's disconnect_delay is 5 s, so within this test the closed session is still
        # there and answers with its close frame (a new `o` would mean it was forgotten).
        self.assertEqual(frame, INTERRUPTED)
        self.assertEqual(direct.poll(), INTERRUPTED, "the close frame must be sticky")


# ============================================================================================
# HAProxy
# ============================================================================================

class HAProxyHttpMode(ProxyTestCase):
    """HAProxy 2.x in http mode with short timeouts in front of three gateway listeners:
    plain, `,proxy` (send-proxy-v2) and `,trusted` (option forwardfor)."""

    @classmethod
    def setUpClass(cls):
        def make(gw):
            plain, pp, trusted = (a[1] for a in gw.addresses)
            cls.haproxy = proxyfix.HAProxy({
                "plain": (plain, "", []),
                "nodelay": (plain, "", ["option http-no-delay"]),
                "pp2": (pp, "send-proxy-v2", []),
                "xff": (trusted, "", ["option forwardfor"]),
            })
            return [cls.haproxy]
        cls.start_all(["127.0.0.1:0", "127.0.0.1:0,proxy", "127.0.0.1:0,trusted"], make)

    # -- transports ---------------------------------------------------------------------------

    def test_xhr_polling(self):
        s = self.echo_over_xhr(self.haproxy)
        # A poll with nothing queued waits for the message sent while it is open.
        mark = self.gw.log_mark()
        c = s.start_poll()
        self.gw.wait_log(re.escape(s.url + "/xhr") + "$", since=mark)
        s.send("late")
        r = read_response(c)
        c.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, (message_frame("late") + "\n").encode())

    def test_xhr_streaming(self):
        st = XhrStream(self.haproxy, session_url("/echo"))  # prelude checked
        try:
            self.assertEqual(st.response.header("Transfer-Encoding"), "chunked")
            self.assertEqual(st.frame(), "o")
            sender = XhrSession.of(self.haproxy, st.url)
            sender.send("a")
            self.assertEqual(st.frame(), message_frame("a"))
            sender.send("b", "c")  # /echo writes each message on its own: two frames
            self.assertEqual(st.frame(), message_frame("b"))
            self.assertEqual(st.frame(), message_frame("c"))
        finally:
            st.close()

    def test_xhr_streaming_frame_latency(self):
        """Each xhr_streaming frame reaches the client about 200 ms late through HAProxy's
        default http mode, and at once with `option http-no-delay`. The gateway writes every
        frame at once (TCP_NODELAY; direct and websocket latency is ~0); HAProxy, forwarding a
        chunked body whose end it has not seen, sends with MSG_MORE, so the kernel holds each
        small frame until its 200 ms cork timer. Correct but slow: deployments behind HAProxy
        want `option http-no-delay` for the SockJS paths. Messages are sent directly to the
        gateway so that only the stream's path is measured."""
        sender = lambda url: XhrSession.of(self.gw, url)
        for fe, corked in (("plain", True), ("nodelay", False)):
            with self.subTest(frontend=fe):
                st = XhrStream(self.haproxy.endpoint(fe), session_url("/echo"))
                try:
                    self.assertEqual(st.frame(), "o")
                    lat = []
                    for i in range(3):
                        t = time.monotonic()
                        sender(st.url).send("m%d" % i)
                        self.assertEqual(st.frame(), message_frame("m%d" % i))
                        lat.append(time.monotonic() - t)
                    if corked:
                        self.assertGreater(min(lat), 0.15, "latencies %r" % lat)
                    else:
                        self.assertLess(max(lat), 0.1, "latencies %r" % lat)
                finally:
                    st.close()

    def test_xhr_streaming_heartbeats_outlive_proxy_timeouts(self):
        """/short_timers_echo heartbeats every second: the stream is never silent for HAProxy's
        3 s client/server timeouts, so it outlives them."""
        st = XhrStream(self.haproxy, session_url("/short_timers_echo"))
        try:
            self.assertEqual(st.frame(), "o")
            start = time.monotonic()
            beats = 0
            while time.monotonic() - start < HAPROXY_CLIENT_TIMEOUT + 1.0:
                self.assertEqual(st.frame(timeout=3.0), "h")
                beats += 1
            self.assertGreaterEqual(beats, 3)
            XhrSession.of(self.haproxy, st.url).send("still there")
            self.assertEqual(st.frame(skip_heartbeats=True), message_frame("still there"))
        finally:
            st.close()

    def test_idle_xhr_stream_is_cut_by_timeout_server(self):
        """/echo heartbeats every 25 s, more than HAProxy's 3 s `timeout server`: HAProxy ends
        the silent stream (the chunked response is cut without its last chunk) and closes
        its upstream connection, which the gateway takes as a dropped receiver (1002). Hence
        heartbeat_delay must stay below every proxy timeout on the path."""
        st = XhrStream(self.haproxy, session_url("/echo"))
        try:
            self.assertEqual(st.frame(), "o")
            start = time.monotonic()
            with self.assertRaises(ConnectionClosed):
                st.frame(timeout=HAPROXY_CLIENT_TIMEOUT + 3.0)
            elapsed = time.monotonic() - start
            self.assertGreater(elapsed, HAPROXY_CLIENT_TIMEOUT - 0.5)
            self.assertLess(elapsed, HAPROXY_CLIENT_TIMEOUT + 2.0)
        finally:
            st.close()
        self.wait_interrupted(st.url)

    def test_websocket(self):
        ws = WebSocket.connect(self.haproxy.port, session_url("/echo") + "/websocket")
        try:
            self.assertEqual(ws.recv_sockjs(), "o")
            ws.send_sockjs("through haproxy")
            self.assertEqual(ws.recv_sockjs(), message_frame("through haproxy"))
            ws.send_close(1000)
            code, _reason, _skipped = ws.expect_close()
            self.assertEqual(code, 1000)
        finally:
            ws.close()

    def test_websocket_heartbeats_past_timeout_client(self):
        """/short_timers_echo: the `h` frames come through every second; after more of them
        than HAProxy's 3 s `timeout client` spans, the websocket still echoes."""
        ws = WebSocket.connect(self.haproxy.port, session_url("/short_timers_echo")
                               + "/websocket")
        try:
            self.assertEqual(ws.recv_sockjs(), "o")
            start = time.monotonic()
            beats = 0
            while time.monotonic() - start < HAPROXY_CLIENT_TIMEOUT + 1.0:
                self.assertEqual(ws.recv_sockjs(timeout=3.0), "h")
                beats += 1
            self.assertGreaterEqual(beats, 3)
            ws.send_sockjs("after heartbeats")
            self.assertEqual(ws.recv_sockjs(skip_heartbeats=True),
                             message_frame("after heartbeats"))
        finally:
            ws.close()

    def test_idle_websocket_lives_on_timeout_tunnel(self):
        """/echo sends no heartbeat for 25 s: a websocket silent for longer than the 3 s
        client/server timeouts survives because, once upgraded, HAProxy applies `timeout
        tunnel` (30 s). The silence is the time under test."""
        ws = WebSocket.connect(self.haproxy.port, session_url("/echo") + "/websocket")
        try:
            self.assertEqual(ws.recv_sockjs(), "o")
            ws.conn.expect_silence(HAPROXY_CLIENT_TIMEOUT + 1.0)  # neither data nor EOF
            ws.send_sockjs("after silence")
            self.assertEqual(ws.recv_sockjs(), message_frame("after silence"))
        finally:
            ws.close()

    # -- client addresses ---------------------------------------------------------------------

    def get_info(self, endpoint, source, headers=None):
        c = endpoint.connect(source=source)
        try:
            local = c.sock.getsockname()
            c.send(build_request("GET", "/echo/info", headers=headers))
            r = read_response(c)
        finally:
            c.close()
        self.assertEqual(r.status, 200)
        return local

    def test_send_proxy_v2_names_the_client(self):
        ep = self.haproxy.endpoint("pp2")
        for source_ip in ("127.0.0.1", "127.0.0.3"):
            mark = self.gw.log_mark()
            ip, port = self.get_info(ep, (source_ip, 0))
            # The address and source port of our socket, as HAProxy saw them.
            self.gw.wait_log(r"DEBUG %s:%d: GET /echo/info$" % (re.escape(ip), port),
                             since=mark)
        # A whole session through the PROXY-protocol listener.
        mark = self.gw.log_mark()
        s = self.echo_over_xhr(ep)
        self.gw.wait_log(r"DEBUG 127\.0\.0\.1:\d+: POST %s/xhr_send$" % re.escape(s.url),
                         since=mark)
        self.assertIsNone(self.gw.find_log("no valid PROXY protocol header", since=self._mark))

    def test_forwardfor_names_the_client(self):
        ep = self.haproxy.endpoint("xff")
        for source_ip in ("127.0.0.1", "127.0.0.4"):
            mark = self.gw.log_mark()
            self.get_info(ep, (source_ip, 0))
            # The address from X-Forwarded-For (no port), not HAProxy's own 127.0.0.1:port.
            self.gw.wait_log(r"DEBUG %s: GET /echo/info$" % re.escape(source_ip), since=mark)
        self.echo_over_xhr(ep)

    def test_forwardfor_ignores_a_client_supplied_header(self):
        """`option forwardfor` appends its own `X-Forwarded-For: <client>` field after any the
        client sent. RFC 9110 5.3: several fields are one comma-joined list, so the last entry
        is the one the trusted proxy added; a client sending the header itself must not choose
        the address the gateway logs."""
        ep = self.haproxy.endpoint("xff")
        mark = self.gw.log_mark()
        self.get_info(ep, ("127.0.0.5", 0), headers={"X-Forwarded-For": "198.51.100.66"})
        line = self.gw.wait_log(r"DEBUG \S+: GET /echo/info$", since=mark)
        self.assertIn("DEBUG 127.0.0.5: GET", line)


# ============================================================================================
# nginx
# ============================================================================================

class NginxBuffering(ProxyTestCase):
    """nginx with proxy_buffering on (4 KiB buffers), no Upgrade forwarding and a 5 s
    proxy_read_timeout, with an HTTP/1.0 upstream (the proxy_pass default) and an HTTP/1.1
    keep-alive one."""

    @classmethod
    def setUpClass(cls):
        def make(gw):
            buffers = ["proxy_buffer_size 4k;", "proxy_buffers 8 4k;"]
            cls.nginx = proxyfix.Nginx({
                "http10": (gw.port, buffers),
                "http11": (gw.port, buffers + ["proxy_http_version 1.1;",
                                               'proxy_set_header Connection "";']),
            }, read_timeout="%ds" % NGINX_READ_TIMEOUT)
            return [cls.nginx]
        cls.start_all(["127.0.0.1:0"], make)

    def test_xhr_polling(self):
        for fe in ("http10", "http11"):
            with self.subTest(upstream=fe):
                s = self.echo_over_xhr(self.nginx.endpoint(fe))
                mark = self.gw.log_mark()
                c = s.start_poll()
                self.gw.wait_log(re.escape(s.url + "/xhr") + "$", since=mark)
                s.send("late")
                r = read_response(c)
                c.close()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, (message_frame("late") + "\n").encode())

    def test_xhr_streaming_http11_upstream_flows(self):
        """HTTP/1.1 upstream: the gateway's response is chunked, and frames come through at
        once despite proxy_buffering on. nginx's event pipe hands a partly filled buffer on to
        the proxy module only when the module has said how many bytes it needs next (its
        `length`); the chunked parser always says so, so every chunk read moves on to the
        client straight away. (Observed with nginx 1.22; see the HTTP/1.0 case below.)"""
        ep = self.nginx.endpoint("http11")
        st = XhrStream(ep, session_url("/echo"))  # head and prelude, no wait needed
        try:
            self.assertEqual(st.frame(timeout=2.0), "o")
            sender = XhrSession.of(ep, st.url)
            for i in range(3):
                sender.send("m%d" % i)
                self.assertEqual(st.frame(timeout=2.0), message_frame("m%d" % i))
        finally:
            st.close()

    def test_xhr_streaming_http10_upstream_is_held_in_the_buffer(self):
        """HTTP/1.0 upstream (the proxy_pass default): what a client sees, precisely.

        The gateway answers with a close-delimited body and writes the head, the 2048-byte
        prelude and `o` at once (2051 body bytes). For such a body nginx's proxy module cannot
        say how much it needs (length -1), so the event pipe passes on only full 4 KiB buffers
        or what is left at the end of the response, and the response head waits with the first
        body buffer. The client sees nothing at all: no status line, no prelude, no `o`. A
        small message (a 10-byte frame) changes nothing; the prelude is too short to fill a
        buffer (it would have to be about 4 KiB to push the head and `o` through). Only when
        /echo's 4096-byte response_limit ends the response does everything arrive, in one go,
        and then the stream is over: xhr_streaming degrades into one long poll. A real client's
        connect timeout fires long before (sockjs-client: a few hundred ms, then 2007
        "Transport timed out"), so it has to fall back to xhr-polling
        (test_stock_sockjs_client_*)."""
        ep = self.nginx.endpoint("http10")
        url = session_url("/echo")
        c = ep.connect()
        try:
            mark = self.gw.log_mark()
            c.send(build_request("POST", url + "/xhr_streaming", body=b""))
            self.gw.wait_log(re.escape(url + "/xhr_streaming") + "$", since=mark)
            # The gateway has the request and answers at once; nothing reaches us.
            c.expect_silence(1.0)
            sender = XhrSession.of(ep, url)
            sender.send("small")
            c.expect_silence(1.0)
            big = "x" * 4096  # its frame passes /echo's response_limit: the end
            sent_at = time.monotonic()
            sender.send(big)
            r = read_response_head(c)
            self.assertEqual(r.status, 200)
            self.assertIsNone(r.header("Content-Length"))
            body = BodyReader(c, r, "POST").read_all()
            self.assertLess(time.monotonic() - sent_at, 2.0)
            self.assertEqual(body, PRELUDE + ("o\n%s\n%s\n" % (
                message_frame("small"), message_frame(big))).encode())
        finally:
            c.close()

    def test_websocket_without_upgrade_forwarding_is_refused(self):
        """nginx passes neither Upgrade nor `Connection: upgrade` on (and on the HTTP/1.0 path
        says `Connection: close`): the gateway sees a plain GET and answers 400 at once, which
        nginx relays. A clean failure, not a hang; sockjs-client reports it as 1006 and tries
        its next transport."""
        for fe in ("http10", "http11"):
            with self.subTest(upstream=fe):
                ep = self.nginx.endpoint(fe)
                mark = self.gw.log_mark()
                start = time.monotonic()
                with self.assertRaises(HandshakeError) as cm:
                    WebSocket.connect(ep.port, session_url("/echo") + "/websocket")
                self.assertLess(time.monotonic() - start, 2.0)
                r = cm.exception.response
                self.assertEqual(r.status, 400)
                self.assertEqual(r.body, b'Can "Upgrade" only to "WebSocket".')
                self.gw.wait_log(r"websocket handshake refused", since=mark)
                # The raw websocket endpoint as well.
                with self.assertRaises(HandshakeError) as cm:
                    WebSocket.connect(ep.port, "/echo/websocket")
                self.assertEqual(cm.exception.response.status, 400)

    # -- the stock sockjs-client in Node --------------------------------------------------------

    NODE_SCRIPT = r"""
const SockJS = require(process.argv[1]);
const t0 = Date.now();
const out = (o) => console.log(JSON.stringify(Object.assign(o, { ms: Date.now() - t0 })));
const sock = new SockJS(process.argv[2], null, { transports: JSON.parse(process.argv[3]) });
const deadline = setTimeout(() => { out({ event: 'deadline' }); process.exit(2); }, 20000);
sock.onopen = () => { out({ event: 'open', transport: sock.transport });
                      sock.send('hello through nginx'); };
sock.onmessage = (e) => { out({ event: 'message', data: e.data, transport: sock.transport });
                          sock.close(); };
sock.onclose = (e) => { out({ event: 'close', code: e.code, reason: e.reason });
                        clearTimeout(deadline); };
"""
    STORY_RE = re.compile(r"^(\S+Z) sockjs-client:main (attempt \S+|using timeout \d+|"
                          r"_transportClose \S+ \d+ .*|_open \S+|_close \S+ \d+ .*)", re.M)

    def run_sockjs_client(self, frontend, transports):
        """Runs sockjs-client 1.6.1 (tests/node/node_modules, by absolute path) against /echo
        through nginx; returns (events: the JSON lines the script printed, story: the client's
        debug lines as (ms since the first, text)), and the diagnostics text."""
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is not installed (scripts/setup.sh --test)")
        self.assertTrue(os.path.exists(os.path.join(NODE_CLIENT_DIR, "package.json")),
                        "%s is missing: cd tests/node && npm ci" % NODE_CLIENT_DIR)
        env = dict(os.environ, DEBUG="sockjs-client:main")
        env.pop("DEBUG_COLORS", None)
        p = subprocess.run([node, "-e", self.NODE_SCRIPT, NODE_CLIENT_DIR,
                            "http://127.0.0.1:%d/echo" % self.nginx.endpoint(frontend).port,
                            json.dumps(transports)],
                           capture_output=True, timeout=30, env=env)
        stdout, stderr = p.stdout.decode(), p.stderr.decode()
        diag = "stdout:\n%s\nstderr:\n%s" % (stdout, stderr[-4000:])
        self.assertEqual(p.returncode, 0, diag)
        events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        story = []
        for m in self.STORY_RE.finditer(stderr):
            t = time.mktime(time.strptime(m.group(1)[:19], "%Y-%m-%dT%H:%M:%S"))
            ms = t * 1000 + int(m.group(1)[20:23])
            # Without the client's `this.transport`, which is undefined or null by chance.
            story.append((ms, re.sub(r"^(_transportClose|_close) \S+ ", r"\1 ", m.group(2))))
        if story:
            first = story[0][0]
            story = [(ms - first, text) for ms, text in story]
        return events, story, diag

    def assertEchoedOver(self, events, transport, diag):
        self.assertEqual([e["event"] for e in events], ["open", "message", "close"], diag)
        self.assertEqual(events[0]["transport"], transport, diag)
        self.assertEqual(events[1]["data"], "hello through nginx", diag)
        self.assertEqual(events[2]["code"], 1000, diag)

    @staticmethod
    def steps(story):
        return [t for _, t in story if not t.startswith("using timeout")]

    def test_stock_sockjs_client_http11_upstream_uses_xhr_streaming(self):
        """[websocket, xhr-streaming, xhr-polling] through the HTTP/1.1 upstream: websocket is
        refused (1006), xhr-streaming opens (frames flow) and echoes."""
        events, story, diag = self.run_sockjs_client(
            "http11", ["websocket", "xhr-streaming", "xhr-polling"])
        self.assertEchoedOver(events, "xhr-streaming", diag)
        self.assertEqual(self.steps(story)[:4], [
            "attempt websocket",
            "_transportClose 1006 WebSocket connection broken",
            "attempt xhr-streaming",
            "_open xhr-streaming",
        ], diag)

    def test_stock_sockjs_client_http10_upstream_falls_back_to_xhr_polling(self):
        """[xhr-streaming, xhr-polling] through the buffering HTTP/1.0 upstream: xhr-streaming
        never sees `o` and times out (2007), xhr-polling opens and echoes."""
        events, story, diag = self.run_sockjs_client("http10", ["xhr-streaming", "xhr-polling"])
        self.assertEchoedOver(events, "xhr-polling", diag)
        self.assertEqual(self.steps(story)[:4], [
            "attempt xhr-streaming",
            "_transportClose 2007 Transport timed out",
            "attempt xhr-polling",
            "_open xhr-polling",
        ], diag)

    def test_stock_sockjs_client_three_transports_through_http10_upstream(self):
        """[websocket, xhr-streaming, xhr-polling] through the buffering HTTP/1.0 upstream.

        The fallback always reaches xhr-polling: websocket is refused (1006), xhr-streaming
        times out (2007). Whether xhr-polling then opens is a race inside sockjs-client 1.6.1
        (lib/main.js): `_connect()` stores each transport's connect timer in
        `_transportTimeoutId` without clearing the previous one, and `_transportClose()` does
        not clear it either. The refused websocket's timer therefore stays armed: it fires
        during the xhr-streaming attempt (that is the 2007 above, a few ms early), and
        xhr-streaming's own timer then fires a few ms into the xhr-polling attempt (as far
        apart as the websocket's refusal took). If `o` of the first poll has not arrived by
        then, the client gives up with 2000 "All transports failed". Both outcomes are
        accepted here, and the second one must carry that signature (xhr-polling closed with
        2007 well before its own timeout). Through a proxy that refuses websockets quickly and
        buffers streams, the stock client with its default transport list can fail outright."""
        events, story, diag = self.run_sockjs_client(
            "http10", ["websocket", "xhr-streaming", "xhr-polling"])
        steps = self.steps(story)
        self.assertEqual(steps[:5], [
            "attempt websocket",
            "_transportClose 1006 WebSocket connection broken",
            "attempt xhr-streaming",
            "_transportClose 2007 Transport timed out",
            "attempt xhr-polling",
        ], diag)
        if events and events[0]["event"] == "open":
            self.assertEchoedOver(events, "xhr-polling", diag)
            self.assertEqual(steps[5], "_open xhr-polling", diag)
            return
        # The stale-timer outcome.
        self.assertEqual([(e["event"], e["code"], e["reason"]) for e in events],
                         [("close", 2000, "All transports failed")], diag)
        self.assertEqual(steps[5:7], ["_transportClose 2007 Transport timed out",
                                      "_close 2000 All transports failed false 0"], diag)
        i = [t for _, t in story].index("attempt xhr-polling")
        attempt_ms, own_timeout = story[i][0], int(story[i + 1][1].split()[-1])
        closed_ms = next(ms for ms, t in story[i:] if t.startswith("_transportClose"))
        self.assertLess(closed_ms - attempt_ms, own_timeout / 2,
                        "xhr-polling closed by its own timer, not a stale one\n" + diag)
        sys.stderr.write("\nnote: sockjs-client's stale transport timer killed xhr-polling "
                         "%d ms into its attempt (own timeout %d ms)\n"
                         % (closed_ms - attempt_ms, own_timeout))


# ============================================================================================
# A proxy that goes away mid-stream
# ============================================================================================

class ProxyKilledMidStream(ProxyTestCase):
    """SIGKILL the proxy while an xhr_streaming response goes through it: the kernel closes
    both of its connections. The client sees its stream cut; the gateway sees the upstream
    connection end, keeps running and closes the session (`c[1002,"Connection interrupted"]`
    to the next receiver, here on a direct connection)."""

    @classmethod
    def setUpClass(cls):
        cls.start_all(["127.0.0.1:0"], lambda gw: [])

    def kill_mid_stream(self, proxy, buffered):
        self.addCleanup(proxy.stop)
        proxy.start()
        url = session_url("/echo")
        c = proxy.connect()
        try:
            mark = self.gw.log_mark()
            c.send(build_request("POST", url + "/xhr_streaming", body=b""))
            self.gw.wait_log(re.escape(url + "/xhr_streaming"), since=mark)
            if not buffered:
                r = read_response_head(c)
                body = BodyReader(c, r, "POST")
                self.assertEqual(body.read_exact(len(PRELUDE)), PRELUDE)
                self.assertEqual(body.readline(), b"o\n")
                XhrSession.of(proxy, url).send("before")
                self.assertEqual(body.readline(), (message_frame("before") + "\n").encode())
            proxy.kill()
            # The client's connection ends (EOF or RST), without the end of the stream.
            c.read_until_eof()
        finally:
            c.close()
        self.wait_interrupted(url)
        # Not an error for the gateway: no WARN or ERROR line. (Nothing is logged at all, not
        # even at debug level, when a streaming response's connection ends with a FIN.)
        self.assertIsNone(self.gw.find_log(r"\b(WARN|ERROR)\b", since=mark))
        # The gateway is fine: a new session directly.
        self.echo_over_xhr(self.gw)

    def test_haproxy_killed(self):
        self.kill_mid_stream(proxyfix.HAProxy({"plain": (self.gw.port, "", [])}),
                             buffered=False)

    def test_nginx_killed(self):
        # nginx holds the stream in its buffer (NginxBuffering), so the client has nothing
        # yet; the gateway has written the prelude and `o` when nginx dies.
        self.kill_mid_stream(proxyfix.Nginx({"http11": (self.gw.port, [
            "proxy_http_version 1.1;", 'proxy_set_header Connection "";'])}),
            buffered=True)


if __name__ == "__main__":
    unittest.main()
