#!/usr/bin/python3
"""A session belongs to its identity (issue 9, observation 2), over real sockets.

Binding: a session opened with `?token=` in the URL can be used only by requests that carry the
same token. Reproduced as observed on the old code (each of these failed there): a poll that
names A's session without A's token received A's queued messages; an xhr_send of
{"token": "bad"} to A's id closed A with 4001; {"events": []} silenced A. Now such requests
are answered exactly like requests for an unknown session (404 "Session not found.") and A
is unaffected: every receiver transport (xhr, xhr_streaming, eventsource, htmlfile, jsonp) and
both send endpoints (xhr_send, jsonp_send), without a token and with another user's valid
token; with A's own token all of them work.

Rate limit: requests naming no session (or a session without its token) per client address
(here X-Forwarded-For on a trusted listener poses as several clients): 429 with Retry-After
after the burst, a log line, other addresses unaffected, the owner of a bound session
unaffected even at the limited address, an IPv6 /64 counted as one client, recovery after
Retry-After.

Token expiry during a session, over websocket, xhr_streaming and xhr polling: {"error":
"token expired"} at exp, close 4002 after --token-grace-ms; a fresh token for the same identity
within the grace keeps the session (deliveries continue meanwhile), one sent before exp moves
the deadline; a token of another identity (user or company) does not; a token given as the
first message expires too; with --token-grace-ms 0 the session is told and closed at exp.

Waiting for exp and the grace period, and for Retry-After, is time under test (short values);
nothing else sleeps.

Spec: docs/PROTOCOL.md (Session binding, Unknown sessions, Token expiry, Close codes).
"""

import json
import time
import urllib.parse
import uuid

import gwtest
from gwtest import Conn, build_request, read_response, read_response_head
from scopedfix import ScopedTestCase, Session, publish_body, token_for, unique

GRACE_MS = 700
RECEIVERS = ("xhr", "xhr_streaming", "eventsource", "htmlfile", "jsonp")
SENDERS = ("xhr_send", "jsonp_send")


def user_event(site, sub, event, data):
    return publish_body("user", site, event, data, ids=[sub])


def path(sid, endpoint, token=None):
    q = {}
    if endpoint in ("htmlfile", "jsonp"):
        q["c"] = "cb"
    if token is not None:
        q["token"] = token
    return "/sockjs/000/%s/%s%s" % (sid, endpoint,
                                    ("?" + urllib.parse.urlencode(q)) if q else "")


def send_request(gw, sid, endpoint, messages, token=None, headers=None, port=None):
    """xhr_send or jsonp_send of a list of objects; returns the Response."""
    payload = json.dumps([json.dumps(m) for m in messages])
    h = dict(headers or {})
    if endpoint == "jsonp_send":
        h["Content-Type"] = "application/x-www-form-urlencoded"
        payload = "d=" + urllib.parse.quote(payload)
    method = "POST"
    return gwtest.request(port or gw.port, method, path(sid, endpoint, token), body=payload,
                          headers=h)


def receiver_head(gw, sid, endpoint, token=None, headers=None, port=None):
    """Opens a receiver request; returns (conn, response head). The caller closes conn."""
    method = "GET" if endpoint in ("eventsource", "htmlfile", "jsonp") else "POST"
    c = Conn(port or gw.port)
    c.send(build_request(method, path(sid, endpoint, token),
                         body=b"" if method == "POST" else None, headers=headers))
    return c, read_response_head(c)


class OwnedPolling:
    """Session A driven by hand over xhr polling with its URL token, so that messages can be
    queued while A has no poll outstanding (as between two polls of a real client)."""

    def __init__(self, test, token):
        self.test, self.gw, self.token = test, test.gw, token
        self.sid = uuid.uuid4().hex
        self.test.assertEqual(self.poll(), "o")

    def poll(self):
        with Conn(self.gw.port) as c:
            c.send(build_request("POST", path(self.sid, "xhr", self.token), body=b""))
            r = read_response(c, "POST")
        self.test.assertEqual(r.status, 200, r)
        return r.body.decode().rstrip("\n")

    def messages(self):
        """The messages of the next poll (one frame), the session's ready message aside."""
        kind, value = gwtest.parse_frame(self.poll())
        self.test.assertEqual(kind, "a", value)
        return [m for m in map(json.loads, value) if list(m) != ["ready"]]


class Binding(ScopedTestCase):
    # A gateway per test with default options (the same command line as the old code's): the
    # refusals of one test stay within the default burst of the unknown-session limit.
    per_test_gateway = True

    def owned(self, sub=None, client=None):
        sub = sub or unique("u")
        client = client or unique("c")
        a = OwnedPolling(self, token_for(self.site, sub, client))
        a.sub, a.client = sub, client
        return a

    def queue_secret(self, a):
        """Publish an event to A while no poll is outstanding: it waits in A's queue."""
        secret = "secret-" + uuid.uuid4().hex
        self.gw.publish(user_event(self.site, a.sub, "private", secret))
        return secret

    def assertUnknownSession(self, r):
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.body, b"Session not found.\n", r)

    def assertReceives(self, a, secret):
        got = a.messages()
        self.assertEqual([m["data"] for m in got], [secret], got)

    def refused_receiver(self, sid, endpoint, token):
        c, head = receiver_head(self.gw, sid, endpoint, token)
        try:
            self.assertEqual(head.status, 404, head)
            body = gwtest.BodyReader(c, head, "GET").read_all()
            self.assertEqual(body, b"Session not found.\n")
        finally:
            c.close()

    # -- the observation, exactly: the harm is checked before the status ---------------------

    def test_poll_without_token_gets_nothing_of_a(self):
        a = self.owned()
        secret = self.queue_secret(a)
        with Conn(self.gw.port) as c:
            c.send(build_request("POST", path(a.sid, "xhr"), body=b""))
            r = read_response(c, "POST")
        self.assertNotIn(secret.encode(), r.body)
        self.assertReceives(a, secret)
        self.assertUnknownSession(r)

    def test_xhr_send_bad_token_without_a_token_does_not_close_a(self):
        a = self.owned()
        r = send_request(self.gw, a.sid, "xhr_send", [{"token": "bad"}])
        secret = self.queue_secret(a)
        got = a.poll()
        self.assertFalse(got.startswith("c"), "A was closed: %r" % got)
        self.assertIn(secret, got)
        self.assertUnknownSession(r)

    def test_xhr_send_empty_filter_without_a_token_does_not_silence_a(self):
        a = self.owned()
        r = send_request(self.gw, a.sid, "xhr_send", [{"events": []}])
        self.assertReceives(a, self.queue_secret(a))
        self.assertUnknownSession(r)

    # -- every endpoint, no token and another user's valid token ---------------------------

    def test_every_receiver_refused_without_the_token(self):
        other = token_for(self.site)  # valid, another user
        for endpoint in RECEIVERS:
            for token in (None, other, "bad"):
                with self.subTest(endpoint=endpoint, token=token and token[:12]):
                    a = self.owned()
                    secret = self.queue_secret(a)
                    self.refused_receiver(a.sid, endpoint, token)
                    self.assertReceives(a, secret)

    def test_every_sender_refused_without_the_token(self):
        other = token_for(self.site)
        for endpoint in SENDERS:
            for token in (None, other):
                for msg in ({"token": "bad"}, {"events": []}, {"token": other}):
                    with self.subTest(endpoint=endpoint, token=token and token[:12], msg=msg):
                        a = self.owned()
                        r = send_request(self.gw, a.sid, endpoint, [msg], token=token)
                        self.assertUnknownSession(r)
                        self.assertReceives(a, self.queue_secret(a))

    def test_a_token_that_is_a_prefix_or_extension_is_refused(self):
        a = self.owned()
        for token in (a.token[:-1], a.token + "x", a.token.upper()):
            r = send_request(self.gw, a.sid, "xhr_send", [{"events": []}], token=token)
            self.assertUnknownSession(r)
        self.assertReceives(a, self.queue_secret(a))

    # -- the owner's token works everywhere --------------------------------------------------

    def test_same_token_sends(self):
        for endpoint in SENDERS:
            with self.subTest(endpoint=endpoint):
                a = self.owned()
                r = send_request(self.gw, a.sid, endpoint, [{"events": ["wanted"]}],
                                 token=a.token)
                self.assertIn(r.status, (200, 204), r)
                # The filter took effect: only "wanted" gets through.
                self.gw.publish(user_event(self.site, a.sub, "unwanted", 1))
                self.gw.publish(user_event(self.site, a.sub, "wanted", 2))
                got = a.messages()
                self.assertEqual([m["event"] for m in got], ["wanted"], got)

    def test_same_token_receives_on_every_receiver(self):
        for endpoint in RECEIVERS:
            with self.subTest(endpoint=endpoint):
                a = self.owned()
                secret = self.queue_secret(a)
                c, head = receiver_head(self.gw, a.sid, endpoint, a.token)
                try:
                    self.assertEqual(head.status, 200, head)
                    body = gwtest.BodyReader(c, head, "GET")
                    seen = b""
                    deadline = time.monotonic() + gwtest.TIMEOUT
                    while secret.encode() not in seen and time.monotonic() < deadline:
                        chunk = body.read_some(timeout=max(0.01, deadline - time.monotonic()))
                        if not chunk:
                            break
                        seen += chunk
                    self.assertIn(secret.encode(), seen)
                finally:
                    c.close()

    def test_session_without_url_token_is_not_bound(self):
        """Authenticated by its first message, a polling session cannot carry its token on
        later requests: it stays usable by id (PROTOCOL.md says what protects it)."""
        sub = unique("u")
        s = self.session("xhr_polling")
        s.expect_open()
        s.send({"token": token_for(self.site, sub)})
        s.barrier()
        self.gw.publish(user_event(self.site, sub, "e", "x"))
        self.assertEqual(s.next_message()["data"], "x")


class UnknownSessionRate(ScopedTestCase):
    per_test_gateway = True
    RATE = 2
    BURST = 3

    def setUp(self):
        super().setUp()
        self.gw = self.start_gateway("--unknown-session-rate", self.RATE,
                                     "--unknown-session-burst", self.BURST,
                                     listen=["127.0.0.1:0,trusted"])

    def unknown_send(self, client, sid=None):
        return send_request(self.gw, sid or uuid.uuid4().hex, "xhr_send", [{"events": []}],
                            headers={"X-Forwarded-For": client})

    def exhaust(self, client):
        for i in range(self.BURST):
            r = self.unknown_send(client)
            self.assertEqual(r.status, 404, (i, r))
        r = self.unknown_send(client)
        self.assertLimited(r)
        return r

    def assertLimited(self, r):
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.reason, "Too Many Requests", r)
        self.assertTrue(r.body, r)
        retry = r.header("Retry-After")
        self.assertIsNotNone(retry, r)
        self.assertTrue(1 <= int(retry) <= 60, r)

    def test_429_after_the_burst_logged_others_unaffected_then_recovers(self):
        mark = self.gw.log_mark()
        r = self.exhaust("198.51.100.7")
        self.gw.wait_log(r"198\.51\.100\.7.*unknown-session requests", since=mark)
        # Everything naming a session is refused at that address now, a free id included (no
        # answer may tell it whether an id exists).
        self.assertLimited(send_request(self.gw, uuid.uuid4().hex, "jsonp_send", [{}],
                                        headers={"X-Forwarded-For": "198.51.100.7"}))
        c, head = receiver_head(self.gw, uuid.uuid4().hex, "xhr",
                                headers={"X-Forwarded-For": "198.51.100.7"})
        c.close()
        self.assertEqual(head.status, 429, head)
        # Another address is not affected.
        self.assertEqual(self.unknown_send("198.51.100.8").status, 404)
        # Recovery: after Retry-After, one more unknown-session request is answered as usual.
        time.sleep(int(r.header("Retry-After")))
        self.assertEqual(self.unknown_send("198.51.100.7").status, 404)

    def test_refusals_are_logged_at_most_once_a_second(self):
        mark = self.gw.log_mark()
        started = time.monotonic()
        self.exhaust("198.51.100.11")
        for _ in range(30):
            self.assertLimited(self.unknown_send("198.51.100.11"))
        elapsed = time.monotonic() - started
        self.gw.wait_log(r"198\.51\.100\.11", since=mark)
        lines = [l for l in self.gw.log_lines(mark) if "198.51.100.11" in l]
        self.assertLessEqual(len(lines), int(elapsed) + 1, lines)

    def test_owner_of_a_bound_session_is_served_at_a_limited_address(self):
        sub = unique("u")
        token = token_for(self.site, sub)
        sid = uuid.uuid4().hex
        c, head = receiver_head(self.gw, sid, "xhr", token,
                                headers={"X-Forwarded-For": "198.51.100.9"})
        self.assertEqual(head.status, 200, head)
        c.close()
        self.exhaust("198.51.100.9")
        r = send_request(self.gw, sid, "xhr_send", [{"events": ["x"]}], token=token,
                         headers={"X-Forwarded-For": "198.51.100.9"})
        self.assertEqual(r.status, 204, r)
        # A bound session named without its token counts as unknown.
        self.assertLimited(send_request(self.gw, sid, "xhr_send", [{}],
                                        headers={"X-Forwarded-For": "198.51.100.9"}))

    def test_mismatches_count(self):
        sid = uuid.uuid4().hex
        c, head = receiver_head(self.gw, sid, "xhr", token_for(self.site))
        self.assertEqual(head.status, 200, head)
        c.close()
        for _ in range(self.BURST):
            r = send_request(self.gw, sid, "xhr_send", [{}],
                             headers={"X-Forwarded-For": "198.51.100.10"})
            self.assertEqual(r.status, 404, r)
        self.assertLimited(self.unknown_send("198.51.100.10"))

    def test_ipv6_counts_per_64(self):
        self.exhaust("2001:db8:1:2::1")
        self.assertLimited(self.unknown_send("2001:db8:1:2:ffff::9"))
        self.assertEqual(self.unknown_send("2001:db8:1:3::1").status, 404)


class TokenExpiry(ScopedTestCase):
    gateway_args = ("--token-grace-ms", GRACE_MS)

    TRANSPORTS = ("websocket", "xhr_streaming", "xhr_polling")

    def short_session(self, transport, sub=None, client=None):
        """A session whose token expires at the next second boundary after the next one."""
        sub = sub or unique("u")
        client = client or unique("c")
        exp = int(time.time()) + 2
        s = self.session(transport, token=token_for(self.site, sub, client, ttl=0, exp=exp))
        s.expect_open()
        s.sub, s.client, s.exp = sub, client, exp
        return s

    def wait_expired(self, s):
        m = s.next_message(timeout=s.exp - time.time() + gwtest.TIMEOUT)
        self.assertEqual(m, {"error": "token expired"})
        self.assertGreaterEqual(time.time(), s.exp - 0.05)

    def test_expired_then_closed_after_grace(self):
        for t in self.TRANSPORTS:
            with self.subTest(transport=t):
                s = self.short_session(t)
                self.wait_expired(s)
                told = time.monotonic()
                code, reason, got = s.expect_close(timeout=GRACE_MS / 1000 + gwtest.TIMEOUT)
                self.assertEqual((code, reason, got), (4002, "Token expired", []))
                self.assertGreaterEqual(time.monotonic() - told, GRACE_MS / 1000 * 0.8)

    def test_renewal_within_grace_keeps_the_session(self):
        for t in self.TRANSPORTS:
            with self.subTest(transport=t):
                s = self.short_session(t)
                self.wait_expired(s)
                # Deliveries go on during the grace period.
                self.gw.publish(user_event(self.site, s.sub, "during", 1))
                self.assertEqual(s.next_message()["event"], "during")
                s.send({"token": token_for(self.site, s.sub, s.client)})
                # Past the grace period the session still delivers, and was not closed.
                s.expect_nothing(GRACE_MS / 1000 + 0.3)
                self.gw.publish(user_event(self.site, s.sub, "after", 2))
                self.assertEqual(s.next_message()["event"], "after")

    def test_renewal_before_exp_moves_the_deadline(self):
        s = self.short_session("xhr_polling")
        s.send({"token": token_for(self.site, s.sub, s.client)})
        s.expect_nothing(s.exp - time.time() + GRACE_MS / 1000 + 0.3)
        self.gw.publish(user_event(self.site, s.sub, "still", 1))
        self.assertEqual(s.next_message()["event"], "still")

    def test_token_of_another_identity_does_not_renew(self):
        for other in ({"sub": unique("u")}, {"client": unique("c")}):
            with self.subTest(other=list(other)):
                s = self.short_session("websocket")
                self.wait_expired(s)
                claims = {"sub": s.sub, "client": s.client}
                claims.update(other)
                s.send({"token": token_for(self.site, claims["sub"], claims["client"])})
                self.assertEqual(s.next_message(), {"error": "token for another identity"})
                code, reason, _ = s.expect_close(timeout=GRACE_MS / 1000 + gwtest.TIMEOUT)
                self.assertEqual((code, reason), (4002, "Token expired"))

    def test_first_message_token_expires_too(self):
        s = self.session("websocket")
        s.expect_open()
        sub = unique("u")
        exp = int(time.time()) + 2
        s.send({"token": token_for(self.site, sub, ttl=0, exp=exp)})
        s.exp = exp
        self.wait_expired(s)
        code, reason, _ = s.expect_close(timeout=GRACE_MS / 1000 + gwtest.TIMEOUT)
        self.assertEqual((code, reason), (4002, "Token expired"))


class TokenExpiryWithoutGrace(ScopedTestCase):
    gateway_args = ("--token-grace-ms", 0)

    def test_closed_at_exp(self):
        exp = int(time.time()) + 2
        s = self.session("websocket", token=token_for(self.site, ttl=0, exp=exp))
        s.expect_open()
        code, reason, got = s.expect_close(timeout=exp - time.time() + gwtest.TIMEOUT)
        self.assertEqual((code, reason, got), (4002, "Token expired", [{"error": "token expired"}]))


if __name__ == "__main__":
    gwtest.main()
