#!/usr/bin/python3
"""Scoped delivery on one node with the embedded engine, over real sockets.

Sessions are opened on /sockjs (websocket, xhr_streaming, xhr polling) with JWTs minted here;
events are published through the publish API. Checked: user/client/site isolation, exactly the
session's three channels, token rejections with their close codes on every transport, the
second secret, the token as first message, the authentication timeout, anonymous sessions,
fan-out of one publish to 300 ids, event filters, malformed browser messages, per-channel
sequence numbers, slow consumers (4008), several sessions of one user.

"Nothing else arrives" is checked without sleeping: after the events under test, a marker
event is published to the session's own channel; everything received up to the marker is
compared with what was expected (one node, one loop: a session's events arrive in publish
order).

Spec: docs/PROTOCOL.md (channels and scopes, session identity, browser <-> gateway messages,
close codes, publish API).
"""

import time
import uuid

import gwtest
import scopedfix
from scopedfix import (SECRET, SECRET2, TRANSPORTS, ScopedTestCase, Session, claims_for,
                       jwt_encode, publish_body, token_for, unique)

AUTH_TIMEOUT_MS = 600


def user_event(site, ids, event="e", data=None):
    return publish_body("user", site, event, data, ids=ids)


def client_event(site, ids, event="e", data=None):
    return publish_body("client", site, event, data, ids=ids)


def global_event(site, event="e", data=None):
    return publish_body("global", site, event, data)


class Scopes(ScopedTestCase):
    """Which channels a session hears."""

    def marker(self, s):
        """Publish a marker to s's own user channel; returns what s received up to it
        (without the marker)."""
        mark = "marker-" + uuid.uuid4().hex
        self.gw.publish(user_event(s.site, [s.sub], "marker", mark))
        got = self.receive_until(s, mark)
        self.assertEvent(got[-1], "user", s.site, "marker", mark)
        return got[:-1]

    def test_user_isolation(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                a = self.user_session(t)
                b = self.user_session(t, client=a.client)
                self.gw.publish(user_event(self.site, [b.sub], "for.b", "B"))
                self.assertEqual(self.marker(a), [])
                self.assertEvent(b.next_message(), "user", self.site, "for.b", "B", 1)
                self.gw.publish(user_event(self.site, [a.sub], "for.a", "A"))
                got = self.marker(a)
                self.assertEqual(len(got), 1, got)
                self.assertEvent(got[0], "user", self.site, "for.a", "A")
                self.assertEqual(self.marker(b), [])

    def test_client_isolation(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                x = self.user_session(t)
                y = self.user_session(t)
                x2 = self.user_session(t, client=x.client)
                self.gw.publish(client_event(self.site, [x.client], "news", "X"))
                for s in (x, x2):
                    got = self.marker(s)
                    self.assertEqual(len(got), 1, got)
                    self.assertEvent(got[0], "client", self.site, "news", "X")
                self.assertEqual(self.marker(y), [])

    def test_site_isolation_of_global(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                s1 = self.user_session(t, site=unique("s1"))
                s2 = self.user_session(t, site=unique("s2"))
                self.gw.publish(global_event(s2.site, "maintenance", "S2"))
                self.assertEqual(self.marker(s1), [])
                got = self.marker(s2)
                self.assertEqual(len(got), 1, got)
                self.assertEvent(got[0], "global", s2.site, "maintenance", "S2", 1)

    def test_exactly_its_user_client_and_global_events(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                s = self.user_session(t)
                other = unique("site")
                noise = [
                    user_event(self.site, [unique("u")], "n1"),
                    client_event(self.site, [unique("c")], "n2"),
                    global_event(other, "n3"),
                    user_event(other, [s.sub], "n4"),        # same user id, other site
                    client_event(other, [s.client], "n5"),   # same company, other site
                    client_event(self.site, [s.sub], "n6"),  # its user id as a company id
                    user_event(self.site, [s.client], "n7"), # its company id as a user id
                ]
                wanted = [
                    user_event(self.site, [s.sub], "mine.user", {"k": 1}),
                    client_event(self.site, [s.client], "mine.client", [1, "two"]),
                    global_event(self.site, "mine.global", "text"),
                ]
                for p in noise[:4] + wanted[:1] + noise[4:] + wanted[1:]:
                    self.gw.publish(p)
                got = self.marker(s)
                self.assertEqual([m["event"] for m in got],
                                 ["mine.user", "mine.client", "mine.global"], got)
                self.assertEvent(got[0], "user", self.site, "mine.user", {"k": 1})
                self.assertEvent(got[1], "client", self.site, "mine.client", [1, "two"])
                self.assertEvent(got[2], "global", self.site, "mine.global", "text")

    def test_integer_ids_match_their_decimal_text(self):
        sub, client = 4200000 + int(uuid.uuid4().int % 1000), 77
        s = self.session(token=token_for(self.site, sub, client)).expect_open()
        s.sub, s.client, s.site = str(sub), str(client), self.site
        self.gw.publish(user_event(self.site, [sub], "int.id", 1))
        self.gw.publish(user_event(self.site, [str(sub)], "str.id", 2))
        self.gw.publish(client_event(self.site, [client], "int.client", 3))
        got = self.marker(s)
        self.assertEqual([(m["event"], m["seq"]) for m in got],
                         [("int.id", 1), ("str.id", 2), ("int.client", 1)], got)

    def test_sites_list_reaches_each_site(self):
        a = self.user_session(site=unique("sa"))
        b = self.user_session(site=unique("sb"), sub=a.sub)
        c = self.user_session(site=unique("sc"), sub=a.sub)
        self.gw.publish(publish_body("user", None, "multi", "M", ids=[a.sub],
                                     sites=[a.site, b.site]))
        for s in (a, b):
            got = self.marker(s)
            self.assertEqual(len(got), 1, got)
            self.assertEvent(got[0], "user", s.site, "multi", "M", 1)
        self.assertEqual(self.marker(c), [])

    def test_multiple_sessions_of_one_user(self):
        sub, client = unique("u"), unique("c")
        sessions = [self.user_session(t, sub=sub, client=client) for t in TRANSPORTS * 2]
        self.gw.publish(user_event(self.site, [sub], "to.all", "all"))
        self.gw.publish(client_event(self.site, [client], "to.company", "co"))
        mark = "marker-" + uuid.uuid4().hex
        self.gw.publish(user_event(self.site, [sub], "marker", mark))
        for s in sessions:
            got = self.receive_until(s, mark)
            self.assertEqual([(m["event"], m["seq"]) for m in got],
                             [("to.all", 1), ("to.company", 1), ("marker", 2)],
                             (s.transport, got))

    def test_seq_per_channel(self):
        a = self.user_session()
        b = self.user_session(client=a.client)
        site = self.site
        self.gw.publish(user_event(site, [a.sub], "u", 1))
        self.gw.publish(client_event(site, [a.client], "c", 1))
        self.gw.publish(user_event(site, [a.sub], "u", 2))
        self.gw.publish(global_event(site, "g", 1))
        self.gw.publish(user_event(site, [a.sub], "u", 3))
        self.gw.publish(client_event(site, [a.client], "c", 2))
        # One publish for two ids: each channel counts on its own.
        self.gw.publish(user_event(site, [a.sub, b.sub], "both", 9))
        got = a.messages(7)
        self.assertEqual([(m["scope"], m["event"], m["data"], m["seq"]) for m in got], [
            ("user", "u", 1, 1), ("client", "c", 1, 1), ("user", "u", 2, 2),
            ("global", "g", 1, 1), ("user", "u", 3, 3), ("client", "c", 2, 2),
            ("user", "both", 9, 4)])
        got = b.messages(4)
        self.assertEqual([(m["scope"], m["event"], m["seq"]) for m in got], [
            ("client", "c", 1), ("global", "g", 1), ("client", "c", 2), ("user", "both", 1)])
        for m in got:
            self.assertIs(type(m["seq"]), int)

    def test_publish_to_300_ids_delivers_one_copy_each(self):
        n, extra = 300, 10
        subs = [unique("fan") for _ in range(n + extra)]
        sessions = []
        for sub in subs:
            s = Session(self.gw, "websocket", token=token_for(self.site, sub, "co"))
            self.addCleanup(s.close)
            s.expect_open()
            s.sub, s.site = sub, self.site
            sessions.append(s)
        data = {"chat": "hello", "n": n}
        self.gw.publish(user_event(self.site, subs[:n], "chat.message", data))
        self.gw.publish(user_event(self.site, subs, "after", "marker"))
        deadline = time.monotonic() + 60
        for i, s in enumerate(sessions):
            left = max(0.5, deadline - time.monotonic())
            first = s.next_message(timeout=left)
            if i < n:
                self.assertEvent(first, "user", self.site, "chat.message", data, 1)
                second = s.next_message(timeout=left)
                self.assertEvent(second, "user", self.site, "after", "marker", 2)
            else:
                # Not among the ids: the marker is the first thing it hears.
                self.assertEvent(first, "user", self.site, "after", "marker", 1)
        self.gw.assert_alive()


class Tokens(ScopedTestCase):
    """Token checks and their close codes, on every transport."""

    gateway_args = ("--jwt-secret", SECRET2, "--auth-timeout-ms", str(AUTH_TIMEOUT_MS))

    def rejected_tokens(self):
        site = self.site
        now = int(time.time())
        good = claims_for(site)
        forged = token_for(site, "victim").split(".")
        attacker = jwt_encode(claims_for(site, "attacker")).split(".")
        hs512_header = {"alg": "HS512", "typ": "JWT"}
        cases = [
            ("not a jwt", "not-a-jwt", 4001),
            ("three garbage parts", "abc.def.ghi", 4001),
            ("empty", "", 4001),
            ("forged payload", ".".join([forged[0], attacker[1], forged[2]]), 4001),
            ("truncated signature", token_for(site)[:-4], 4001),
            ("wrong secret", jwt_encode(good, "not-the-secret"), 4001),
            ("alg none", jwt_encode(good, alg="none"), 4001),
            ("alg none with a signature",
             jwt_encode(good, header={"alg": "none", "typ": "JWT"}), 4001),
            ("alg HS512 header", jwt_encode(good, header=hs512_header), 4001),
            ("no alg", jwt_encode(good, header={"typ": "JWT"}), 4001),
            # Past the 4096-byte token limit (in the URL: past the query buffer too).
            ("oversized", jwt_encode(dict(good, pad="x" * 5000)), 4001),
        ]
        for claim in ("sub", "client", "site", "exp"):
            c = dict(good)
            del c[claim]
            cases.append(("missing " + claim, jwt_encode(c), 4001))
        for claim, value in (("sub", 1.5), ("sub", True), ("sub", {"id": 1}), ("sub", ""),
                             ("client", None), ("client", [1]), ("site", 7), ("site", ""),
                             ("exp", str(now + 3600)), ("exp", now + 3600.5),
                             ("nbf", "soon"), ("events", "contacts.*"), ("events", [1])):
            c = dict(good)
            c[claim] = value
            cases.append(("%s as %r" % (claim, value), jwt_encode(c), 4001))
        cases += [
            ("expired", jwt_encode(dict(good, exp=now - 3600)), 4002),
            ("not yet valid", jwt_encode(dict(good, nbf=now + 3600)), 4002),
        ]
        return cases

    REASONS = {4001: "Invalid token", 4002: "Token expired", 4003: "Authentication required"}

    def assertClosedWith(self, s, code, what):
        got_code, reason, msgs = s.expect_close(timeout=gwtest.TIMEOUT * 2)
        self.assertEqual((got_code, reason), (code, self.REASONS[code]),
                         "%s over %s" % (what, s.transport))
        self.assertEqual(msgs, [], "%s over %s: messages before the close" % (what, s.transport))

    def test_url_token_rejections(self):
        for t in TRANSPORTS:
            for name, token, code in self.rejected_tokens():
                with self.subTest(transport=t, token=name):
                    s = self.session(t, token=token)
                    # The close may come with or without an open frame before it.
                    f = s.frame()
                    if f != "o":
                        s.pending = []
                        kind, value = gwtest.parse_frame(f) if f else ("eof", None)
                        self.assertEqual(kind, "c", "%s over %s: frame %r" % (name, t, f))
                        self.assertEqual((value[0], value[1]), (code, self.REASONS[code]),
                                         "%s over %s" % (name, t))
                    else:
                        self.assertClosedWith(s, code, name)
                    s.close()
        self.gw.assert_alive()

    def test_first_message_token_rejections(self):
        for t in TRANSPORTS:
            for name, token, code in self.rejected_tokens():
                with self.subTest(transport=t, token=name):
                    s = self.session(t).expect_open()
                    s.send({"token": token})
                    self.assertClosedWith(s, code, name)
                    s.close()
        self.gw.assert_alive()

    def test_second_secret_accepted(self):
        for t in TRANSPORTS:
            for secret in (SECRET, SECRET2):
                with self.subTest(transport=t, secret=secret):
                    sub = unique("u")
                    s = self.session(t, token=token_for(self.site, sub, secret=secret))
                    s.expect_open()
                    self.gw.publish(user_event(self.site, [sub], "hello", secret))
                    self.assertEvent(s.next_message(), "user", self.site, "hello", secret, 1)

    def test_token_as_first_message(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                sub, client = unique("u"), unique("c")
                s = self.session(t).expect_open()
                s.send({"token": token_for(self.site, sub, client, secret=SECRET2)})
                self.assertEqual(s.barrier(), [])
                self.gw.publish(user_event(self.site, [sub], "u", 1))
                self.gw.publish(client_event(self.site, [client], "c", 2))
                self.gw.publish(global_event(self.site, "g", 3))
                got = s.messages(3)
                self.assertEqual([(m["scope"], m["event"], m["data"]) for m in got],
                                 [("user", "u", 1), ("client", "c", 2), ("global", "g", 3)])

    def test_no_token_closed_with_4003_after_auth_timeout(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                s = self.session(t)
                s.expect_open()
                opened = time.monotonic()
                self.assertClosedWith(s, 4003, "no token")
                elapsed = time.monotonic() - opened
                self.assertGreaterEqual(elapsed, AUTH_TIMEOUT_MS / 1000 * 0.7, elapsed)
                self.assertLess(elapsed, AUTH_TIMEOUT_MS / 1000 + 4, elapsed)

    def test_site_without_allow_anonymous_gets_nothing_then_4003(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                s = self.session(t, site=self.site).expect_open()
                self.gw.publish(global_event(self.site, "not.for.anonymous", 1))
                self.assertClosedWith(s, 4003, "?site= without --allow-anonymous")

    def test_nothing_before_the_token(self):
        # "Until then the session receives nothing": events published before the token
        # message are not delivered afterwards either.
        sub = unique("u")
        s = self.session("websocket").expect_open()
        self.gw.publish(global_event(self.site, "early", 1))
        self.gw.publish(user_event(self.site, [sub], "early", 2))
        s.send({"token": token_for(self.site, sub)})
        self.assertEqual(s.barrier(), [])
        self.gw.publish(user_event(self.site, [sub], "late", 3))
        self.assertEvent(s.next_message(), "user", self.site, "late", 3, 2)


class Anonymous(ScopedTestCase):
    gateway_args = ("--allow-anonymous", "--auth-timeout-ms", str(AUTH_TIMEOUT_MS))

    def test_anonymous_gets_global_only(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                site = unique("site")
                s = self.session(t, site=site).expect_open()
                other = unique("site")
                self.gw.publish(global_event(other, "other.site", 0))
                self.gw.publish(user_event(site, ["anonymous", "0"], "user", 1))
                self.gw.publish(client_event(site, ["anonymous", "0"], "client", 2))
                self.gw.publish(global_event(site, "global", 3))
                self.gw.publish(global_event(site, "global", 4))
                got = s.messages(2)
                self.assertEqual([(m["scope"], m["event"], m["data"], m["seq"]) for m in got],
                                 [("global", "global", 3, 1), ("global", "global", 4, 2)])
                s.expect_nothing(0.3)

    def test_anonymous_then_token(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                site = unique("site")
                sub = unique("u")
                s = self.session(t, site=site).expect_open()
                self.gw.publish(user_event(site, [sub], "before", 1))
                self.gw.publish(global_event(site, "g", 1))
                self.assertEvent(s.next_message(), "global", site, "g", 1, 1)
                s.send({"token": token_for(site, sub)})
                self.assertEqual(s.barrier(), [])
                self.gw.publish(user_event(site, [sub], "after", 2))
                self.gw.publish(global_event(site, "g", 2))
                got = s.messages(2)
                self.assertEqual([(m["scope"], m["event"], m["seq"]) for m in got],
                                 [("user", "after", 2), ("global", "g", 2)])

    def test_no_site_no_token_4003(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                s = self.session(t).expect_open()
                code, reason, msgs = s.expect_close(timeout=gwtest.TIMEOUT * 2)
                self.assertEqual((code, reason, msgs), (4003, "Authentication required", []))


class Filters(ScopedTestCase):
    """{"events": [...]} and the `events` claim."""

    def publish_names(self, s, names):
        for n in names:
            self.gw.publish(user_event(s.site, [s.sub], n, n))

    def received(self, s, marker_event):
        mark = "marker-" + uuid.uuid4().hex
        self.gw.publish(user_event(s.site, [s.sub], marker_event, mark))
        got = self.receive_until(s, mark)
        return [m["event"] for m in got[:-1]]

    CANDIDATES = ["contacts.updated", "contacts", "contacts.", "contactsx.y", "news.new",
                  "news.newer", "news", "Contacts.updated", "news.ne", "x.contacts.updated"]

    def test_patterns(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                s = self.user_session(t)
                s.send({"events": ["contacts.*", "news.new"]})
                self.assertEqual(s.barrier(), [])
                self.publish_names(s, self.CANDIDATES)
                self.assertEqual(self.received(s, "news.new"),
                                 ["contacts.updated", "contacts.", "news.new"])

    def test_star_and_no_filter_is_everything(self):
        s = self.user_session()
        self.publish_names(s, self.CANDIDATES)
        self.assertEqual(self.received(s, "m"), self.CANDIDATES)
        s.send({"events": ["*"]})
        self.assertEqual(s.barrier(), [])
        self.publish_names(s, self.CANDIDATES)
        self.assertEqual(self.received(s, "m"), self.CANDIDATES)

    def test_initial_filter_from_the_token(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                s = self.user_session(t, events=["news.*", "alert"])
                self.publish_names(s, ["contacts.updated", "news.new", "alerts", "alert"])
                self.assertEqual(self.received(s, "alert"), ["news.new", "alert"])

    def test_empty_filter_is_nothing_and_change_takes_effect(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                s = self.user_session(t, events=["a.*"])
                # A witness: another user of the same company, without a filter. Events go to
                # the company; markers to each session's own user channel.
                w = self.user_session("websocket", client=s.client)

                def company(*names):
                    for n in names:
                        self.gw.publish(client_event(self.site, [s.client], n, n))

                company("b.x", "a.x")
                self.assertEqual(self.received(s, "a.m"), ["a.x"])
                self.assertEqual(self.received(w, "m"), ["b.x", "a.x"])
                s.send({"events": ["b.*"]})
                self.assertEqual(s.barrier(), [])
                company("a.y", "b.y")
                self.assertEqual(self.received(s, "b.m"), ["b.y"])
                s.send({"events": []})
                self.assertEqual(s.barrier(), [])
                company("a.z", "b.z", "c")
                # The witness heard them: they were delivered to the node's sessions.
                self.assertEqual(self.received(w, "m"), ["a.y", "b.y", "a.z", "b.z", "c"])
                s.send({"events": ["*"]})
                self.assertEqual(s.barrier(), [], "events delivered despite the [] filter")
                company("d")
                self.assertEqual(self.received(s, "m"), ["d"])

    def test_filter_applies_to_every_scope(self):
        s = self.user_session(events=["keep.*"])
        self.gw.publish(client_event(self.site, [s.client], "drop.c"))
        self.gw.publish(client_event(self.site, [s.client], "keep.c"))
        self.gw.publish(global_event(self.site, "drop.g"))
        self.gw.publish(global_event(self.site, "keep.g"))
        self.assertEqual(self.received(s, "keep.m"), ["keep.c", "keep.g"])


class ClientMessages(ScopedTestCase):
    """Malformed browser messages are answered with {"error": ...}; the session keeps
    working."""

    BAD = ["not json", "{", "[1, 2]", '"a string"', "42", "null", "true", '{"foo": 1}',
           '{"events": "contacts.*"}', '{"events": [1]}', '{"events": {"a": 1}}',
           '{"events": ["a.*"], "extra": 1}', '{"token": 5}', '{"token": null}']

    def test_malformed_messages(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                before = scopedfix.stat_sum(self.gw.stats(), "malformed")
                s = self.user_session(t)
                for i, text in enumerate(self.BAD):
                    s.send_text(text)
                    m = s.next_message()
                    self.assertError(m)
                    self.gw.publish(user_event(self.site, [s.sub], "still", i))
                    self.assertEvent(s.next_message(), "user", self.site, "still", i, i + 1)
                after = scopedfix.stat_sum(self.gw.stats(), "malformed")
                self.assertGreaterEqual(after - before, len(self.BAD),
                                        "malformed counters %s" % scopedfix.flatten(
                                            self.gw.stats()))

    def test_second_token_for_another_user(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                s = self.user_session(t)
                other = unique("u")
                s.send({"token": token_for(self.site, other)})
                self.assertError(s.next_message())
                self.gw.publish(user_event(self.site, [other], "for.other", 1))
                self.gw.publish(user_event(self.site, [s.sub], "mine", 2))
                self.assertEvent(s.next_message(), "user", self.site, "mine", 2, 1)

    def test_a_bad_message_in_a_batch(self):
        # One SockJS frame with three messages: the bad one is answered, the others work.
        s = self.user_session()
        s.send_text("nope", '{"events": ["x"]}', "[]")
        self.assertError(s.next_message())
        self.assertError(s.next_message())
        self.gw.publish(user_event(self.site, [s.sub], "y", 0))
        self.gw.publish(user_event(self.site, [s.sub], "x", 1))
        self.assertEvent(s.next_message(), "user", self.site, "x", 1, 2)


class SlowConsumer(ScopedTestCase):
    """A session that never reads is closed (4008, or just disconnected) when its unsent bytes
    pass --max-queued-bytes; another session on the same channel gets everything."""

    MAX_QUEUED = 256 * 1024
    gateway_args = ("--max-queued-bytes", str(MAX_QUEUED))
    EVENTS = 200
    DATA_BYTES = 32 * 1024

    def test_slow_consumer_closed_good_one_served(self):
        slow = self.session("websocket", token=token_for(self.site), rcvbuf=4096)
        slow.expect_open()
        good = self.user_session("websocket")
        filler = "x" * self.DATA_BYTES
        for i in range(self.EVENTS):
            self.gw.publish(global_event(self.site, "big", {"i": i, "fill": filler}))
            m = good.next_message()
            self.assertEvent(m, "global", self.site, "big", {"i": i, "fill": filler}, i + 1)
        code, reason, msgs = slow.expect_close(timeout=30)
        self.assertIn(code, (4008, None), (code, reason))
        if code == 4008:
            self.assertEqual(reason, "Slow consumer")
        self.assertLess(len(msgs), self.EVENTS, "the slow session was not cut off")
        for k, m in enumerate(msgs):
            self.assertEqual(m["seq"], k + 1)
        # The node is fine and the good session still gets events.
        self.gw.publish(global_event(self.site, "after", 1))
        self.assertEvent(good.next_message(), "global", self.site, "after", 1, self.EVENTS + 1)
        self.gw.assert_alive()


if __name__ == "__main__":
    gwtest.main()
