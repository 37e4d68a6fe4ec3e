"""Fixtures for the scoped-delivery integration tests (test_delivery.py, test_publish_api.py,
test_redis.py): the gateway in its default mode (no --test-app) with the publish API, JWT
minting, the publish API client, and one session class over websocket, xhr_streaming and
xhr polling that yields the gateway's JSON messages.

Spec: docs/PROTOCOL.md. Python 3 standard library only; every read is bounded by a timeout.
"""

import base64
import hashlib
import hmac
import json
import re
import socket
import time
import unittest
import urllib.parse
import uuid

import gwtest
from gwtest import (TIMEOUT, BodyReader, Conn, ConnectionClosed, WebSocket, build_request,
                    read_response_head)

API_KEY = "integration-api-key"
# At least 32 bytes: shorter secrets are warned about.
SECRET = "integration-secret-1-of-32-bytes-or-more"
SECRET2 = "integration-secret-2-of-32-bytes-or-more"
PREFIX = "/sockjs"
TRANSPORTS = ("websocket", "xhr_streaming", "xhr_polling")

API_RE = re.compile(r"publish API on (\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+)")


def unique(kind="x"):
    return "%s-%s" % (kind, uuid.uuid4().hex[:12])


# --------------------------------------------------------------------------------------------
# JWT (HS256)
# --------------------------------------------------------------------------------------------

def b64url(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_encode(claims, secret=SECRET, header=None, alg="HS256"):
    """A compact JWS; `alg` "none" gives an unsigned token (empty signature)."""
    head = header if header is not None else {"alg": alg, "typ": "JWT"}
    signing_input = b64url(json.dumps(head, separators=(",", ":"))) + "." + \
        b64url(json.dumps(claims, separators=(",", ":")))
    if alg == "none":
        return signing_input + "."
    sig = hmac.new(secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


def claims_for(site, sub=None, client=None, ttl=3600, **extra):
    c = {"sub": sub if sub is not None else unique("u"),
         "client": client if client is not None else unique("c"),
         "site": site, "exp": int(time.time()) + ttl}
    c.update(extra)
    return c


def token_for(site, sub=None, client=None, secret=SECRET, ttl=3600, **extra):
    return jwt_encode(claims_for(site, sub, client, ttl, **extra), secret)


# --------------------------------------------------------------------------------------------
# Gateway in default mode
# --------------------------------------------------------------------------------------------

class ScopedGateway(gwtest.Gateway):
    """The gateway without --test-app, with the publish API on an ephemeral port. `api_port`
    comes from the `publish API on` log line."""

    def __init__(self, *args, api_key=API_KEY, secrets=(SECRET,), env=None, listen=None,
                 base_args=True):
        extra = []
        if base_args:
            extra += ["--api-listen", "127.0.0.1:0"]
            if api_key is not None:
                extra += ["--api-key", api_key]
            for s in secrets:
                extra += ["--jwt-secret", s]
        super().__init__(*(extra + [str(a) for a in args]), listen=listen, test_app=False,
                         env=env)
        self.api_key = api_key
        self.api_host = None
        self.api_port = None

    def start(self):
        super().start()
        try:
            line = self.wait_log(API_RE.pattern, timeout=gwtest.START_TIMEOUT)
        except gwtest.GatewayError:
            self._kill()
            raise
        m = API_RE.search(line)
        self.api_host = m.group(1).strip("[]")
        self.api_port = int(m.group(2))
        return self

    # -- publish API ------------------------------------------------------------------------

    def api(self, method, path, body=None, key="default", headers=None, timeout=TIMEOUT):
        """One request to the API listener; `key` None sends no Authorization header."""
        h = dict(headers or {})
        if key == "default":
            key = self.api_key
        if key is not None:
            h["Authorization"] = "Bearer %s" % key
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if body is not None:
            h.setdefault("Content-Type", "application/json")
        return gwtest.request(self.api_port, method, path, body=body, headers=h,
                              host=self.api_host, timeout=timeout)

    def publish_raw(self, body, **kw):
        return self.api("POST", "/api/publish", body=body, **kw)

    def publish(self, body, **kw):
        """POST /api/publish; asserts 202 with one publish id per publish; returns the ids."""
        r = self.publish_raw(body, **kw)
        if r.status != 202:
            raise AssertionError("publish answered %d (202 expected): %r" % (r.status, r))
        ids = r.json().get("ids")
        n = len(body) if isinstance(body, list) else 1
        if not isinstance(ids, list) or len(ids) != n:
            raise AssertionError("202 body %r: expected %d publish ids" % (r.body, n))
        return ids

    def stats(self):
        r = self.api("GET", "/api/stats")
        if r.status != 200:
            raise AssertionError("/api/stats answered %d: %r" % (r.status, r))
        return r.json()

    def wait_publish_status(self, status, site="probe-nobody", timeout=20.0):
        """Publish a global event to a site nobody is on until the API answers `status`
        (polling with a deadline: engine state has no event to wait for). Returns the last
        response."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                last = self.publish_raw({"scope": "global", "site": site, "event": "probe",
                                         "data": None})
                if last.status == status:
                    return last
            except (OSError, ConnectionClosed) as e:
                last = e
            if time.monotonic() > deadline:
                raise AssertionError("the API did not answer %d within %.0f s; last: %r"
                                     % (status, timeout, last))
            time.sleep(0.05)


def flatten(obj, prefix=""):
    """{"a": {"b": 1}} -> {"a.b": 1}"""
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, prefix + str(k) + "."))
    else:
        out[prefix[:-1]] = obj
    return out


def stat_sum(stats, word):
    """Sum of the numeric counters whose (flattened) name contains `word` (the spec names the
    counters, not their JSON keys)."""
    return sum(v for k, v in flatten(stats).items()
               if word in k.lower() and isinstance(v, (int, float)) and not isinstance(v, bool))


def stat_names(stats):
    return sorted(flatten(stats))


class ScopedTestCase(gwtest.GatewayTestCase):
    """GatewayTestCase with ScopedGateway. `self.site` is a fresh site per test."""

    gateway_args = ()

    @classmethod
    def setUpClass(cls):
        unittest.TestCase.setUpClass.__func__(cls)
        cls._class_gw = None
        if not cls.per_test_gateway:
            cls._class_gw = ScopedGateway(*cls.gateway_args).start()

    def setUp(self):
        super().setUp()
        self.site = unique("site")

    def start_gateway(self, *args, listen=None, **kw):
        gw = ScopedGateway(*args, listen=listen, **kw).start()
        self.addCleanup(gw.stop)
        return gw

    def session(self, transport="websocket", gw=None, **kw):
        s = Session(gw or self.gw, transport, **kw)
        self.addCleanup(s.close)
        return s

    def user_session(self, transport="websocket", gw=None, sub=None, client=None, site=None,
                     **claims):
        """A session opened with a fresh token in the URL, once it got its ready message;
        returns it with .sub/.client/.site."""
        site = site or self.site
        sub = sub if sub is not None else unique("u")
        client = client if client is not None else unique("c")
        s = self.session(transport, gw=gw, token=token_for(site, sub, client, **claims))
        s.expect_open()
        s.wait_ready()
        s.sub, s.client, s.site = sub, client, site
        return s

    # -- assertions ---------------------------------------------------------------------------

    def assertEvent(self, msg, scope, site, event, data, seq="any"):
        self.assertIsInstance(msg, dict, msg)
        self.assertEqual(set(msg), {"scope", "site", "event", "data", "seq"}, msg)
        self.assertEqual((msg["scope"], msg["site"], msg["event"], msg["data"]),
                         (scope, site, event, data), msg)
        if seq != "any":
            self.assertEqual(msg["seq"], seq, msg)
            if seq is not None:
                self.assertIs(type(msg["seq"]), int, msg)

    def assertError(self, msg):
        self.assertIsInstance(msg, dict, msg)
        self.assertEqual(list(msg), ["error"], msg)
        self.assertIsInstance(msg["error"], str, msg)
        self.assertTrue(msg["error"], msg)

    def assertApiError(self, r, status):
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertIsInstance(body, dict, r)
        self.assertIsInstance(body.get("error"), str, r)
        self.assertTrue(body["error"], r)
        return body

    def receive_until(self, session, marker, timeout=TIMEOUT * 2):
        """Messages up to and including the one whose data is `marker` (heartbeats skipped)."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            m = session.next_message(timeout=max(0.01, deadline - time.monotonic()))
            got.append(m)
            if isinstance(m, dict) and m.get("data") == marker:
                return got


# --------------------------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------------------------

class SessionClosed(AssertionError):
    """The session ended: `code`/`reason` from a SockJS close frame, or None for a bare EOF."""

    def __init__(self, code, reason):
        super().__init__("session closed: %r %r" % (code, reason))
        self.code = code
        self.reason = reason


class Session:
    """One SockJS session on the gateway's /sockjs prefix over `transport` (websocket,
    xhr_streaming or xhr_polling), with the token (or site) in the URL query as sockjs-client
    sends it: `/sockjs/000/<session>/<transport>?token=...`.

    `frames()` returns raw SockJS frames; `next_message()` the next gateway message decoded from
    JSON (the SockJS message is a string holding JSON); a close frame raises SessionClosed.
    """

    def __init__(self, gw, transport="websocket", token=None, site=None, query=None,
                 rcvbuf=None, session_id=None, skip_ready=True):
        assert transport in TRANSPORTS, transport
        self.gw = gw
        self.skip_ready = skip_ready
        self.readies = []      # (ready message's value, messages received before it)
        self.received = 0      # messages other than ready ones
        self.transport = transport
        self.base = "%s/000/%s" % (PREFIX, session_id or uuid.uuid4().hex)
        q = dict(query or {})
        if token is not None:
            q["token"] = token
        if site is not None:
            q["site"] = site
        self.query = ("?" + urllib.parse.urlencode(q)) if q else ""
        self.pending = []      # decoded messages not yet returned
        self.closed = None     # (code, reason) once a close frame (or EOF: (None, "")) came
        self.ws = None
        self.stream = None
        self._poll = None      # Conn of the outstanding xhr poll
        self._stream_body = None
        self._stream_buf = bytearray()
        if transport == "websocket":
            self.ws = WebSocket.connect(gw.port, self.base + "/websocket" + self.query,
                                        host=gw.host, rcvbuf=rcvbuf)
        elif transport == "xhr_streaming":
            c = Conn(gw.port, host=gw.host, rcvbuf=rcvbuf)
            c.send(build_request("POST", self.base + "/xhr_streaming" + self.query, body=b""))
            resp = read_response_head(c)
            if resp.status != 200:
                c.close()
                raise AssertionError("xhr_streaming status %d: %r" % (resp.status, resp))
            self.stream = c
            self._stream_body = BodyReader(c, resp, "POST")
            prelude = self._stream_body.read_exact(len(gwtest.PRELUDE))
            if prelude != gwtest.PRELUDE:
                raise AssertionError("bad xhr_streaming prelude %r" % prelude[:100])

    # -- frames ---------------------------------------------------------------------------

    def _frame(self, timeout):
        """The next SockJS frame (str), or None at the end of the connection/stream."""
        if self.transport == "websocket":
            try:
                while True:
                    op, data = self.ws.recv_message(timeout)
                    if op == gwtest.OP_TEXT:
                        return data.decode("utf-8")
                    if op == gwtest.OP_CLOSE:
                        return None
                    if op == gwtest.OP_PING:
                        self.ws.send_frame(gwtest.OP_PONG, data)
            except ConnectionClosed:
                return None
        if self.transport == "xhr_streaming":
            line = self._stream_body.readline(timeout)
            if line is None:
                return None
            return line[:-1].decode("utf-8")
        # xhr polling: one frame per response. Like sockjs-client, the next poll goes out as
        # soon as a response arrives, so that the session always has a receiver (no
        # disconnect_delay while a test does something else); a poll stays outstanding across
        # timeouts.
        if self._poll is None:
            self._start_poll()
        c = self._poll
        resp = read_response_head(c, timeout=timeout)
        self._poll = None
        try:
            resp.body = BodyReader(c, resp, "POST").read_all(timeout=TIMEOUT)
        finally:
            c.close()
        if resp.status != 200:
            raise AssertionError("xhr poll status %d: %r" % (resp.status, resp))
        body = resp.body.decode("utf-8")
        if not body.endswith("\n") or "\n" in body[:-1]:
            raise AssertionError("xhr body is not one frame plus newline: %r" % body[:300])
        if not body.startswith("c"):
            self._start_poll()
        return body[:-1]

    def _start_poll(self):
        c = Conn(self.gw.port, host=self.gw.host)
        c.send(build_request("POST", self.base + "/xhr" + self.query, body=b""))
        self._poll = c

    def frame(self, timeout=None, skip_heartbeats=True):
        deadline = time.monotonic() + (TIMEOUT if timeout is None else timeout)
        while True:
            f = self._frame(max(0.01, deadline - time.monotonic()))
            if f is None:
                self.closed = self.closed or (None, "")
                return None
            if not (skip_heartbeats and f == "h"):
                return f

    def expect_open(self, timeout=None):
        f = self.frame(timeout)
        if f != "o":
            raise AssertionError("expected the open frame 'o', got %r" % (f and f[:300]))
        return self

    # -- messages -------------------------------------------------------------------------

    def _read_frame(self, deadline):
        """Reads one frame into `pending` (and `readies`); raises SessionClosed at a close frame
        or the end of the connection, socket.timeout when nothing comes by `deadline`."""
        if self.closed:
            raise SessionClosed(*self.closed)
        f = self.frame(max(0.01, deadline - time.monotonic()))
        if f is None:
            raise SessionClosed(*self.closed)
        kind, value = gwtest.parse_frame(f)
        if kind == "a":
            for m in value:
                if not isinstance(m, str):
                    raise AssertionError("SockJS message is not a string: %r" % (m,))
                m = json.loads(m)
                if self.skip_ready and isinstance(m, dict) and list(m) == ["ready"]:
                    # Every subscription starts with one (test_history.py checks them);
                    # `readies` keeps them, in order, with how many messages came before.
                    self.readies.append((m["ready"], self.received))
                    continue
                self.received += 1
                self.pending.append(m)
        elif kind == "c":
            self.closed = (value[0], value[1])
        else:
            raise AssertionError("unexpected frame %r" % f[:200])

    def next_message(self, timeout=None):
        """The next gateway message as decoded JSON (ready messages aside, unless skip_ready is
        False). Raises SessionClosed at a close frame or the end of the connection,
        socket.timeout if nothing comes within `timeout`."""
        deadline = time.monotonic() + (TIMEOUT if timeout is None else timeout)
        while not self.pending:
            self._read_frame(deadline)
        return self.pending.pop(0)

    def wait_ready(self, timeout=None):
        """Waits for the session's (first) ready message; returns its value."""
        assert self.skip_ready
        deadline = time.monotonic() + (TIMEOUT if timeout is None else timeout)
        while not self.readies:
            self._read_frame(deadline)
        return self.readies[0][0]

    def messages(self, n, timeout=None):
        deadline = time.monotonic() + (TIMEOUT if timeout is None else timeout)
        return [self.next_message(max(0.01, deadline - time.monotonic())) for _ in range(n)]

    def expect_close(self, timeout=None):
        """Read until the session is closed; returns (code, reason, messages before it).
        code None: the connection ended without a close frame."""
        deadline = time.monotonic() + (TIMEOUT if timeout is None else timeout)
        got = []
        while True:
            try:
                got.append(self.next_message(max(0.01, deadline - time.monotonic())))
            except SessionClosed as e:
                return e.code, e.reason, got

    def expect_nothing(self, duration):
        """No message arrives within `duration` s (heartbeats aside)."""
        try:
            m = self.next_message(duration)
        except socket.timeout:
            return
        raise AssertionError("unexpected message %r" % (m,))

    # -- sending --------------------------------------------------------------------------

    def send_text(self, *texts):
        """SockJS messages (strings) from the browser."""
        if self.transport == "websocket":
            self.ws.send_text(json.dumps(list(texts)))
            return
        r = gwtest.request(self.gw.port, "POST", self.base + "/xhr_send" + self.query,
                           body=json.dumps(list(texts)), host=self.gw.host)
        if r.status != 204:
            raise AssertionError("xhr_send status %d: %r" % (r.status, r))

    def send(self, obj):
        """One JSON message from the browser."""
        self.send_text(json.dumps(obj))

    def barrier(self, timeout=None):
        """Make sure everything sent before was processed: an unknown key is answered with
        {"error": ...} (PROTOCOL.md), and the session handles its messages in order. Returns
        the messages that arrived before the answer."""
        self.send({"barrier": uuid.uuid4().hex})
        got = []
        deadline = time.monotonic() + (TIMEOUT if timeout is None else timeout)
        while True:
            m = self.next_message(max(0.01, deadline - time.monotonic()))
            if isinstance(m, dict) and list(m) == ["error"]:
                return got
            got.append(m)

    def close(self):
        for c in (self.ws and self.ws.conn, self.stream, self._poll):
            if c is not None:
                c.close()
        self._poll = None


def publish_body(scope, site, event, data=None, ids=None, sites=None):
    """One publish object of the API (PROTOCOL.md "Publish API")."""
    p = {"scope": scope, "event": event, "data": data}
    if sites is not None:
        p["sites"] = list(sites) if isinstance(sites, (list, tuple)) else sites
    else:
        p["site"] = site
    if ids is not None:
        p["ids"] = list(ids)
    return p


def counters_moved(before, after, word):
    """{name: delta} of the numeric counters whose name contains `word`."""
    b, a = flatten(before), flatten(after)
    return {k: a[k] - b.get(k, 0) for k in a
            if word in k.lower() and isinstance(a[k], (int, float))
            and not isinstance(a[k], bool)}
