#!/usr/bin/python3
"""Names that could alias channels, and publishes too large for one loop turn.

- Channel names are user:<site>:<id>, client:<site>:<id>, global:<site>; a site may not contain
  ':' nor any name a control character, wherever it comes from (token claims, the anonymous
  ?site=, publishes), so that no two (scope, site, id) triples share a channel. A token with
  site "S1:x" would otherwise hear user "x:A" and company "x:X" of site S1.
- A publish addresses at most --max-publish-channels channels (sites x max(1, ids)), an API
  request at most --max-request-channels: beyond, 400 {"error": "too many channels..."} and
  nothing is delivered.
- The largest allowed publish, and an array of them, are delivered whole and in order to every
  session, in slices: an /sockjs/info request sent once the publish is accepted is answered
  before the delivery ends. Checked by the order of events on the sockets (the last session's
  message is not there yet when /info has been answered) and by the hub's counters in
  /api/stats (still queued after /info was answered; several slices).

Spec: docs/PROTOCOL.md (channels and scopes, session identity, publish API limits).
"""

import select
import uuid

import gwtest
from gwtest import Conn, build_request, read_response
import scopedfix
from scopedfix import ScopedTestCase, jwt_encode, claims_for, publish_body, unique

AUTH_TIMEOUT_MS = 600


def close_of(session):
    """(code, reason, messages) of a session the gateway closes, with or without an open frame
    before the close frame."""
    f = session.frame(timeout=gwtest.TIMEOUT * 2)
    if f == "o":
        return session.expect_close(timeout=gwtest.TIMEOUT * 2)
    kind, value = gwtest.parse_frame(f) if f else ("eof", None)
    if kind != "c":
        raise AssertionError("expected a close frame, got %r" % (f and f[:200]))
    return value[0], value[1], []


class ForgedNames(ScopedTestCase):
    gateway_args = ("--allow-anonymous", "--auth-timeout-ms", str(AUTH_TIMEOUT_MS))

    def test_site_with_the_separator_is_refused(self):
        """The observation: site "S1:x", sub A, client X named user x:A and client x:X of S1."""
        s1 = unique("S1")
        victim = self.user_session(site=s1, sub="x:A", client="x:X")
        for t in scopedfix.TRANSPORTS:
            with self.subTest(transport=t):
                mark = self.gw.log_mark()
                forged = self.session(t, token=jwt_encode(claims_for(s1 + ":x", "A", "X")))
                code, reason, msgs = close_of(forged)
                self.assertEqual((code, reason), (4001, "Invalid token"))
                self.gw.wait_log(r'session refused: code=4001 claim=site reason="control '
                                 r"character or ':'\" transport=%s client=127\.0\.0\.1:" % t,
                                 since=mark)
                self.gw.publish(publish_body("user", s1, "for.user", 1, ids=["x:A"]))
                self.gw.publish(publish_body("client", s1, "for.client", 2, ids=["x:X"]))
                # The rightful owner of both channels still gets them.
                got = victim.messages(2)
                self.assertEqual([(m["scope"], m["event"]) for m in got],
                                 [("user", "for.user"), ("client", "for.client")])
                self.assertEqual(msgs, [])
        # The same token sent as the first message is refused the same way.
        forged = self.session().expect_open()
        forged.send({"token": jwt_encode(claims_for(s1 + ":x", "A", "X"))})
        code, reason, msgs = forged.expect_close(timeout=gwtest.TIMEOUT * 2)
        self.assertEqual((code, reason, msgs), (4001, "Invalid token", []))

    def test_control_characters_in_claims_are_refused(self):
        for claim, value in (("site", "a\u0085b"), ("sub", "u\u0000v"), ("client", "c\nd")):
            with self.subTest(claim=claim):
                c = claims_for(self.site)
                c[claim] = value
                code, reason, msgs = close_of(self.session(token=jwt_encode(c)))
                self.assertEqual((code, reason, msgs), (4001, "Invalid token", []))

    def test_anonymous_site_with_nul_or_separator_gets_nothing(self):
        """?site=S%00x was S as a C string: it heard site S's global channel."""
        site = unique("site")
        for bad in (site + "\u0000x", site + ":x", site + "\u0085"):
            with self.subTest(site=repr(bad)):
                s = self.session(site=bad).expect_open()
                self.gw.publish(publish_body("global", site, "g", 1))
                code, reason, msgs = s.expect_close(timeout=gwtest.TIMEOUT * 2)
                self.assertEqual((code, reason, msgs), (4003, "Authentication required", []))

    def test_publish_names_follow_the_same_rule(self):
        for body, error in (
                (publish_body("user", "S:1", "e", 0, ids=["1"]), "invalid site"),
                (publish_body("user", "S", "e", 0, ids=["a\u0085"]), "invalid id"),
                (publish_body("client", "S\u0001", "e", 0, ids=["1"]), "invalid site"),
                (publish_body("global", "S\u009f", "e", 0), "invalid site")):
            with self.subTest(body=body):
                r = self.gw.publish_raw(body)
                self.assertEqual(self.assertApiError(r, 400)["error"], error)


def wait_for_nothing(session):
    """Whether nothing of session's is readable right now (no waiting)."""
    if session.pending or session.ws.conn.buf:
        return False
    return not select.select([session.ws.conn.sock], [], [], 0)[0]


class ChannelCap(ScopedTestCase):
    gateway_args = ("--api-max-body-bytes", str(4 << 20))

    def test_publish_over_the_cap_is_refused_and_delivers_nothing(self):
        s = self.user_session()
        ids = [s.sub] + ["f%d" % i for i in range(9999)]
        for body in (publish_body("user", None, "over", 1, ids=ids, sites=[self.site, "other"]),
                     publish_body("global", None, "over", 1,
                                  sites=[self.site] + ["s%d" % i for i in range(99)])):
            with self.subTest(scope=body["scope"]):
                if body["scope"] == "global":
                    # 100 sites is within --max-sites: the cap there is --max-publish-channels.
                    gw = self.start_gateway("--max-publish-channels", "99")
                    s = self.user_session(gw=gw)
                else:
                    gw = self.gw
                before = gw.stats()
                r = gw.publish_raw(body)
                self.assertEqual(self.assertApiError(r, 400)["error"], "too many channels")
                self.assertEqual(scopedfix.counters_moved(before, gw.stats(), "publishes"),
                                 {"hub.publishes": 0, "api.publishes": 0})
                mark = "marker-" + uuid.uuid4().hex
                gw.publish(publish_body("user", s.site, "marker", mark, ids=[s.sub]))
                got = self.receive_until(s, mark)
                self.assertEqual([m["event"] for m in got], ["marker"])

    def test_request_over_the_cap_is_refused(self):
        s = self.user_session()
        ids = ["f%d" % i for i in range(9999)] + [s.sub]
        body = [publish_body("user", self.site, "big%d" % i, i, ids=ids) for i in range(11)]
        r = self.gw.publish_raw(body)
        self.assertEqual(self.assertApiError(r, 400)["error"], "too many channels in the request")
        mark = "marker-" + uuid.uuid4().hex
        self.gw.publish(publish_body("user", self.site, "marker", mark, ids=[s.sub]))
        self.assertEqual([m["event"] for m in self.receive_until(s, mark)], ["marker"])


class SlicedDelivery(ScopedTestCase):
    """1000 websocket sessions, each the user of one of the last 1000 channels of a publish of
    10,000 (the default cap); a small slice so that the delivery takes many turns."""

    SESSIONS = 1000
    gateway_args = ("--api-max-body-bytes", str(4 << 20), "--publish-slice-us", "200",
                    "--max-request-channels", "100000")

    def open_sessions(self):
        sessions = []
        for i in range(self.SESSIONS):
            sessions.append(self.user_session(sub="s%d" % i))
        ids = ["f%d" % i for i in range(10000 - self.SESSIONS)] + [s.sub for s in sessions]
        return sessions, ids

    def keep_alive(self, port, host):
        c = Conn(port, host=host)
        self.addCleanup(c.close)
        return c

    def info(self, conn):
        conn.send(build_request("GET", "/sockjs/info"))
        r = read_response(conn)
        self.assertEqual(r.status, 200, r)
        return r

    def stats(self, conn):
        conn.send(build_request("GET", "/api/stats",
                                headers={"Authorization": "Bearer " + scopedfix.API_KEY}))
        r = read_response(conn)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def publish(self, conn, body):
        conn.send(build_request("POST", "/api/publish", body=scopedfix.json.dumps(body),
                                headers={"Authorization": "Bearer " + scopedfix.API_KEY,
                                         "Content-Type": "application/json"}))
        r = read_response(conn)
        self.assertEqual(r.status, 202, r)

    def check_delivered(self, sessions, events):
        for s in sessions:
            got = s.messages(len(events), timeout=gwtest.TIMEOUT * 4)
            self.assertEqual([(m["event"], m["seq"]) for m in got],
                             [(e, i + 1) for i, e in enumerate(events)], s.sub)

    def test_largest_publish_lets_info_through(self):
        sessions, ids = self.open_sessions()
        web = self.keep_alive(self.gw.port, self.gw.host)
        api = self.keep_alive(self.gw.api_port, self.gw.api_host)
        self.info(web)
        before = self.stats(api)["hub"]
        self.publish(api, publish_body("user", self.site, "big", 1, ids=ids))
        self.info(web)
        # The last channel's session has nothing yet: /info was answered mid-delivery.
        self.assertTrue(wait_for_nothing(sessions[-1]),
                        "the whole publish was delivered before /sockjs/info was answered")
        self.check_delivered(sessions, ["big"])
        hub = self.stats(api)["hub"]
        self.assertEqual(hub["queued"], 0)
        self.assertGreater(hub["slices"] - before["slices"], 1)
        self.assertEqual(hub["deliveries"] - before["deliveries"], self.SESSIONS)

    def test_array_of_largest_publishes_lets_info_through(self):
        sessions, ids = self.open_sessions()
        web = self.keep_alive(self.gw.port, self.gw.host)
        api = self.keep_alive(self.gw.api_port, self.gw.api_host)
        self.info(web)
        events = ["big%d" % i for i in range(10)]
        self.publish(api, [publish_body("user", self.site, e, i, ids=ids)
                           for i, e in enumerate(events)])
        served_mid_delivery = 0
        for _ in range(3):
            self.info(web)
            if self.stats(api)["hub"].get("queued", 0) > 0:
                served_mid_delivery += 1
        # Every /info (and /api/stats) came back while publishes were still queued.
        self.assertEqual(served_mid_delivery, 3)
        self.check_delivered(sessions, events)
        self.assertEqual(self.stats(api)["hub"]["queued"], 0)

    def test_shutdown_mid_delivery_releases_everything(self):
        """SIGTERM while publishes are queued: exit status 0 (under ASan: nothing leaked)."""
        gw = self.start_gateway(*self.gateway_args)
        sessions = [self.user_session(gw=gw, sub="s%d" % i) for i in range(self.SESSIONS)]
        ids = ["f%d" % i for i in range(10000 - self.SESSIONS)] + [s.sub for s in sessions]
        api = self.keep_alive(gw.api_port, gw.api_host)
        self.publish(api, [publish_body("user", self.site, "big%d" % i, i, ids=ids)
                           for i in range(10)])
        self.assertGreater(self.stats(api)["hub"]["queued"], 0)
        gw.stop()

if __name__ == "__main__":
    gwtest.main()
