#!/usr/bin/python3
"""History and recovery of missed messages, on the embedded engine and across nodes joined by a
real redis-server.

Checked: every subscription starts with {"ready": ...} (positions of the user, client and
global channels; anonymous sessions: global only) before any other message; a session that comes
back with "recover" (first message with its token, or &recover= in the URL) gets
"recovered": true and exactly the messages after its positions, in order, before any live one,
over websocket, xhr_streaming and xhr polling; recovered: false for another epoch, a position
ahead of the channel, history that no longer reaches back (size, expiry), history off, and a
malformed recover (which also gets an error after the ready message), a replay too large for
the session's queue limit; replay honours the session's event filter (from the token, or sent
with it); history expiry on both engines; a session subscribing while publishes of 100,000
channels are delivered slice by slice gets its ready message only after them (and with
--ready-max-held 0, without positions, then the held messages once each); across two nodes and two Redis shards: away from node A, back on node B;
10,000 messages published at 1,000/s while the session is cut 20 times arrive exactly once and
in order; a Redis restart (no persistence) changes the epoch; a Redis that does not answer makes
the ready message come after --ready-wait-ms without positions.

Waiting: messages are awaited; history expiry has no event, so that check polls with a deadline.

Spec: docs/PROTOCOL.md "Ready, history and recovery".
"""

import json
import os
import signal
import socket
import threading
import time
import unittest

import gwtest
import redisfix
import scopedfix
from scopedfix import TRANSPORTS, ScopedGateway, ScopedTestCase, publish_body, token_for, unique


def position(ready, scope):
    return {"seq": ready[scope]["seq"], "epoch": ready[scope]["epoch"]}


class HistoryMixin:
    """Helpers on a ScopedTestCase."""

    def open(self, gw, transport="websocket", sub=None, client=None, recover=None, site=None,
             in_url=True, **claims):
        """A session of (sub, client) that has got its ready message; returns (session, ready,
        messages that came after it up to now are left pending)."""
        site = site or self.site
        token = token_for(site, sub, client, **claims)
        query = {"recover": json.dumps(recover)} if recover is not None and in_url else None
        s = self.session(transport, gw=gw, token=token if in_url else None, query=query,
                         skip_ready=False)
        s.expect_open()
        if not in_url:
            msg = {"token": token}
            if recover is not None:
                msg["recover"] = recover
            s.send(msg)
        ready = s.next_message()
        self.assertEqual(list(ready), ["ready"], ready)
        return s, ready["ready"]

    def assertPosition(self, pos, seq=None):
        self.assertIsInstance(pos["seq"], int, pos)
        self.assertIsInstance(pos["epoch"], str, pos)
        self.assertTrue(pos["epoch"], pos)
        if seq is not None:
            self.assertEqual(pos["seq"], seq, pos)

    def publish_user(self, gw, sub, *values, event="ev"):
        gw.publish([publish_body("user", self.site, event, v, ids=[sub]) for v in values])

    def publish_client(self, gw, client, *values, event="ev"):
        gw.publish([publish_body("client", self.site, event, v, ids=[client]) for v in values])

    def left_alone_then_recover(self, gw):
        sub = unique("u")
        s, ready = self.open(gw, "websocket", sub)
        self.publish_user(gw, sub, "seen")
        self.assertEqual(s.next_message()["seq"], 1)
        s.close()
        self.publish_user(gw, sub, "missed")
        pos = {"seq": 1, "epoch": ready["user"]["epoch"]}
        return sub, pos

    def check_history_expiry(self, gw):
        """gw runs with --history-ttl-s 1: recovered, then once the history expired not
        recovered (seq goes on), and recovered again from the current position."""
        sub, pos = self.left_alone_then_recover(gw)
        s, ready = self.open(gw, "websocket", sub, recover={"user": pos})
        self.assertEqual(ready["user"]["recovered"], True, ready)
        self.assertEqual(s.next_message()["data"], "missed")
        s.close()
        # Expiry has no event to await: poll, within a bound.
        deadline = time.monotonic() + 10
        while True:
            s, ready = self.open(gw, "websocket", sub, recover={"user": pos})
            s.close()
            if not ready["user"]["recovered"]:
                break
            self.assertLess(time.monotonic(), deadline, "history did not expire")
            time.sleep(0.2)
        self.assertEqual(ready["user"]["seq"], 2)
        # Nothing missed since: still recovered.
        s, ready = self.open(gw, "websocket", sub,
                             recover={"user": {"seq": 2, "epoch": pos["epoch"]}})
        self.assertEqual(ready["user"]["recovered"], True, ready)


class OneNode(HistoryMixin, ScopedTestCase):
    """The embedded engine."""

    gateway_args = ("--history-size", "10", "--allow-anonymous")

    def test_ready_comes_first_with_the_positions(self):
        for transport in TRANSPORTS:
            with self.subTest(transport=transport):
                sub, client = unique("u"), unique("c")
                s, ready = self.open(self.gw, transport, sub, client)
                self.assertEqual(set(ready), {"user", "client", "global"}, ready)
                for scope in ready:
                    self.assertPosition(ready[scope], 0)
                    self.assertNotIn("recovered", ready[scope])
                self.publish_user(self.gw, sub, 1, 2)
                self.assertEqual([m["seq"] for m in s.messages(2)], [1, 2])
                s.close()
                s2, ready2 = self.open(self.gw, transport, sub, client)
                self.assertEqual(ready2["user"], {"seq": 2, "epoch": ready["user"]["epoch"]})
                s2.close()

    def test_the_ready_message_precedes_messages_of_the_same_turn(self):
        # Publishes queued while the session subscribes are held back, then sent after it.
        sub = unique("u")
        gw = self.gw
        s = self.session("websocket", token=token_for(self.site, sub, unique("c")),
                         skip_ready=False)
        self.publish_user(gw, sub, *range(5))
        s.expect_open()
        first = s.next_message()
        self.assertEqual(list(first), ["ready"], first)
        top = first["ready"]["user"]["seq"]
        self.publish_user(gw, sub, "last")
        got = self.receive_until(s, "last")
        self.assertEqual([m["seq"] for m in got], list(range(top + 1, 7)))

    def test_anonymous_sessions_get_the_global_position(self):
        s = self.session("websocket", site=self.site, skip_ready=False)
        s.expect_open()
        ready = s.next_message()
        self.assertEqual(list(ready["ready"]), ["global"], ready)
        self.assertPosition(ready["ready"]["global"], 0)

    def test_recover_over_every_transport(self):
        for transport in TRANSPORTS:
            with self.subTest(transport=transport):
                sub, client = unique("u"), unique("c")
                s, ready = self.open(self.gw, transport, sub, client)
                self.publish_user(self.gw, sub, "u1")
                self.publish_client(self.gw, client, "c1")
                got = s.messages(2)
                seen = {"user": position(ready, "user"), "client": position(ready, "client")}
                for m in got:
                    seen[m["scope"]]["seq"] = m["seq"]
                s.close()
                self.publish_user(self.gw, sub, "u2", "u3")
                self.publish_client(self.gw, client, "c2")
                s2, ready2 = self.open(self.gw, transport, sub, client, recover=seen)
                self.assertEqual(ready2["user"]["recovered"], True, ready2)
                self.assertEqual(ready2["client"]["recovered"], True, ready2)
                self.assertNotIn("recovered", ready2["global"])
                self.assertEqual((ready2["user"]["seq"], ready2["client"]["seq"]), (3, 2))
                self.publish_user(self.gw, sub, "live")
                got = self.receive_until(s2, "live")
                self.assertEqual([(m["scope"], m["data"], m["seq"]) for m in got],
                                 [("user", "u2", 2), ("user", "u3", 3), ("client", "c2", 2),
                                  ("user", "live", 4)])
                s2.close()

    def test_recover_with_the_token_message(self):
        sub, client = unique("u"), unique("c")
        s, ready = self.open(self.gw, "xhr_streaming", sub, client)
        s.close()
        self.publish_user(self.gw, sub, "a", "b")
        s2, ready2 = self.open(self.gw, "websocket", sub, client, in_url=False,
                               recover={"user": position(ready, "user")})
        self.assertEqual(ready2["user"], {"seq": 2, "epoch": ready["user"]["epoch"],
                                          "recovered": True})
        self.assertEqual([m["data"] for m in s2.messages(2)], ["a", "b"])
        # Recover only comes with the first token.
        s2.send({"token": token_for(self.site, sub, client), "recover": ready2})
        self.assertError(s2.next_message())

    def test_what_cannot_be_recovered_says_so(self):
        sub, client = unique("u"), unique("c")
        s, ready = self.open(self.gw, "websocket", sub, client)
        s.close()
        self.publish_user(self.gw, sub, *range(12))  # more than --history-size 10
        epoch = ready["user"]["epoch"]
        cases = {
            "another epoch": {"seq": 0, "epoch": "x" + epoch},
            "history no longer reaches back": {"seq": 1, "epoch": epoch},
            "ahead of the channel": {"seq": 1000, "epoch": epoch},
        }
        for k, (name, pos) in enumerate(cases.items()):
            with self.subTest(name):
                s2, ready2 = self.open(self.gw, "websocket", sub, client, recover={"user": pos})
                self.assertEqual(ready2["user"]["recovered"], False, ready2)
                self.assertEqual(ready2["user"]["seq"], 12 + k)
                self.publish_user(self.gw, sub, "live-" + name)
                got = s2.next_message()
                self.assertEqual(got["data"], "live-" + name, got)
                s2.close()
        # Just within reach: the last 10.
        s3, ready3 = self.open(self.gw, "websocket", sub, client,
                               recover={"user": {"seq": len(cases) + 2, "epoch": epoch}})
        self.assertEqual(ready3["user"]["recovered"], True, ready3)
        self.assertEqual([m["seq"] for m in s3.messages(10)], list(range(6, 16)))

    def test_a_malformed_recover_is_an_error_after_the_ready_message(self):
        sub = unique("u")
        bad = [{"user": {"seq": -1, "epoch": "e"}}, {"user": {"seq": 1}}, {"nope": {}}, [1],
               {"user": {"seq": 1, "epoch": "has space"}}, {"user": {"seq": 1.5, "epoch": "e"}}]
        for recover in bad:
            with self.subTest(recover=recover):
                s, ready = self.open(self.gw, "websocket", sub, recover=recover)
                for scope in ready:
                    self.assertEqual(ready[scope]["recovered"], False, ready)
                self.assertError(s.next_message())
                s.close()
        # Not JSON at all in the URL.
        s = self.session("websocket", token=token_for(self.site, sub),
                         query={"recover": "{not json"}, skip_ready=False)
        s.expect_open()
        self.assertEqual(list(s.next_message()), ["ready"])
        self.assertError(s.next_message())

    def test_replay_honours_the_event_filter(self):
        sub, client = unique("u"), unique("c")
        s, ready = self.open(self.gw, "websocket", sub, client, events=["keep.*"])
        s.close()
        self.publish_user(self.gw, sub, "x", event="drop.me")
        self.publish_user(self.gw, sub, "y", event="keep.me")
        s2, ready2 = self.open(self.gw, "websocket", sub, client, events=["keep.*"],
                               recover={"user": position(ready, "user")})
        self.assertEqual(ready2["user"]["recovered"], True)
        self.assertEqual(s2.next_message()["data"], "y")
        s2.expect_nothing(0.2)

    def test_a_filter_sent_with_the_token_applies_to_the_replay(self):
        sub = unique("u")
        s, ready = self.open(self.gw, "websocket", sub)
        s.close()
        self.publish_user(self.gw, sub, "x", event="drop.me")
        self.publish_user(self.gw, sub, "y", event="keep.me")
        s2 = self.session("xhr_streaming", skip_ready=False)
        s2.expect_open()
        s2.send({"token": token_for(self.site, sub), "events": ["keep.*"],
                 "recover": {"user": position(ready, "user")}})
        self.assertEqual(s2.next_message()["ready"]["user"]["recovered"], True)
        self.assertEqual(s2.next_message()["data"], "y")
        self.publish_user(self.gw, sub, "z", event="drop.again")
        self.publish_user(self.gw, sub, "w", event="keep.live")
        self.assertEqual(s2.next_message()["data"], "w")
        # A bad filter with a good token: the message is refused whole.
        s3 = self.session("websocket", skip_ready=False)
        s3.expect_open()
        for bad in ("keep.*", ["x"] * 65, [""], [1]):
            s3.send({"token": token_for(self.site, sub), "events": bad})
            self.assertError(s3.next_message())
        s3.send({"token": token_for(self.site, sub), "events": []})
        self.assertEqual(list(s3.next_message()), ["ready"])
        self.publish_user(self.gw, sub, "nothing passes []")
        s3.expect_nothing(0.2)
        # Only a token carries them.
        s3.send({"events": ["a"], "recover": {}})
        self.assertError(s3.next_message())

    def test_stats_count_recoveries(self):
        before = self.gw.stats()["recovery"]
        sub = unique("u")
        s, ready = self.open(self.gw, "websocket", sub)
        s.close()
        self.publish_user(self.gw, sub, 1)
        s2, _ = self.open(self.gw, "websocket", sub, recover={"user": position(ready, "user")})
        s2.next_message()
        after = self.gw.stats()["recovery"]
        self.assertEqual(after["ready"] - before["ready"], 2)
        self.assertEqual(after["recovered"] - before["recovered"], 1)
        self.assertEqual(after["replayed"] - before["replayed"], 1)


class Settings(HistoryMixin, ScopedTestCase):
    """History off, history expiry."""

    per_test_gateway = True

    def test_history_off_recovers_nothing(self):
        gw = self.start_gateway("--history-size", "0")
        sub, pos = self.left_alone_then_recover(gw)
        s, ready = self.open(gw, "websocket", sub, recover={"user": pos})
        self.assertEqual(ready["user"], dict(pos, seq=2, recovered=False))
        s.expect_nothing(0.2)

    def test_a_replay_larger_than_half_the_queue_limit_is_not_recovered(self):
        gw = self.start_gateway("--max-queued-bytes", "8192")
        sub, client = unique("u"), unique("c")
        s, ready = self.open(gw, "websocket", sub, client)
        s.close()
        blob = "x" * 300
        self.publish_user(gw, sub, *[blob] * 30)  # ~10 KB quoted: more than 4 KB
        self.publish_client(gw, client, "small")
        s2, ready2 = self.open(gw, "xhr_streaming", sub, client,
                               recover={"user": position(ready, "user"),
                                        "client": position(ready, "client")})
        self.assertEqual(ready2["user"]["recovered"], False, ready2)
        self.assertEqual(ready2["client"]["recovered"], True, ready2)
        self.assertEqual(s2.next_message()["data"], "small")
        self.publish_user(gw, sub, "live")
        self.assertEqual(s2.next_message()["data"], "live")
        self.assertEqual(gw.stats()["recovery"]["replay_too_large"], 1)

    def test_expired_history_recovers_nothing(self):
        self.check_history_expiry(self.start_gateway("--history-ttl-s", "1"))


class Slicing(HistoryMixin, ScopedTestCase):
    """A session that subscribes while publishes of many channels are being delivered slice by
    slice: its ready message waits for them (pubsub_hub_after), holding back the ones that reach
    it meanwhile."""

    per_test_gateway = True
    SLICED = ("--api-max-body-bytes", str(8 << 20), "--publish-slice-us", "1",
              "--max-request-channels", "100000")

    def publish_big_then_authenticate(self, gw, sub, publishes=10):
        """A session of sub, open but not yet authenticated; then `publishes` publishes of
        10,000 users each (100,000 channels: hundreds of 1 µs slices), `sub` last, in one request; then the session's token, which is read
        between slices (I/O goes first), long before the delivery reaches sub's channel.
        Returns (session, ready)."""
        s = self.session("websocket", gw=gw, skip_ready=False)
        s.expect_open()
        ids = ["f%d" % i for i in range(9999)] + [sub]
        gw.publish([publish_body("user", self.site, "big", k, ids=ids) for k in range(publishes)])
        s.send({"token": token_for(self.site, sub)})
        ready = s.next_message()
        self.assertEqual(list(ready), ["ready"], ready)
        return s, ready["ready"]

    def test_the_ready_message_waits_for_the_publishes_it_counts(self):
        gw = self.start_gateway(*self.SLICED)
        sub = unique("u")
        s, ready = self.publish_big_then_authenticate(gw, sub)
        # All ten were numbered before the session asked: they count, and the ready message
        # waited for their delivery, so none of them follows it.
        self.assertEqual(ready["user"]["seq"], 10, ready)
        self.publish_user(gw, sub, "last")
        got = self.receive_until(s, "last")
        self.assertEqual([m["seq"] for m in got], [11], got)

    def test_too_many_held_messages_send_the_ready_message_without_positions(self):
        gw = self.start_gateway(*(self.SLICED + ("--ready-max-held", "0")))
        # The token must be read before the delivery reaches the session's channel: a starved
        # test process can lose that race, so it gets three tries (a fresh user each).
        for attempt in range(3):
            sub = unique("u")
            s, ready = self.publish_big_then_authenticate(gw, sub)
            if ready["user"]["seq"] is None:
                break
            s.close()
        self.assertEqual(ready["user"], {"seq": None, "epoch": None}, ready)
        self.publish_user(gw, sub, "last")
        got = self.receive_until(s, "last")
        # What reached the session while it waited (the publishes whose delivery had not passed
        # its channel when it subscribed: at least one, since it gave up) follows the ready
        # message, once each and in order.
        seqs = [m["seq"] for m in got]
        self.assertLessEqual(seqs[0], 10, got)
        self.assertEqual(seqs, list(range(seqs[0], 12)), got)
        self.assertGreaterEqual(gw.stats()["recovery"]["ready_unknown"], 1)


class TwoNodes(HistoryMixin, ScopedTestCase):
    """Two gateways on two Redis shards."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.redis = [redisfix.RedisServer().start() for _ in range(2)]
        engines = []
        for r in cls.redis:
            engines += ["--engine", r.url]
        cls.engines = engines
        cls.nodes = []
        try:
            for _ in range(2):
                gw = ScopedGateway(*(engines + ["--history-size", "1000"])).start()
                cls.nodes.append(gw)
            for gw in cls.nodes:
                gw.wait_publish_status(202)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            gwtest.stop_all(*getattr(cls, "nodes", []), *getattr(cls, "redis", []))
        finally:
            super().tearDownClass()

    def test_away_from_one_node_back_on_the_other(self):
        a, b = self.nodes
        for transport in TRANSPORTS:
            with self.subTest(transport=transport):
                sub, client = unique("u"), unique("c")
                s, ready = self.open(a, transport, sub, client)
                self.publish_user(a, sub, "seen")
                self.assertEqual(s.next_message()["seq"], 1)
                s.close()
                self.publish_user(b, sub, "m1")
                self.publish_client(a, client, "c1")
                self.publish_user(a, sub, "m2")
                seen = {"user": {"seq": 1, "epoch": ready["user"]["epoch"]},
                        "client": position(ready, "client"),
                        "global": position(ready, "global")}
                s2, ready2 = self.open(b, transport, sub, client, recover=seen)
                for scope in seen:
                    self.assertEqual(ready2[scope]["recovered"], True, ready2)
                    self.assertEqual(ready2[scope]["epoch"], seen[scope]["epoch"])
                # Order holds per channel only: a 202 is not yet in Redis, so m2 may come live
                # after the replayed c1.
                got = s2.messages(3)
                self.assertEqual({scope: [(m["data"], m["seq"]) for m in got if m["scope"] == scope]
                                  for scope in ("user", "client")},
                                 {"user": [("m1", 2), ("m2", 3)], "client": [("c1", 1)]}, got)
                s2.close()

    def test_10000_messages_at_1000_per_s_through_20_reconnects(self):
        a, b = self.nodes
        sub, client = unique("u"), unique("c")
        total, per_request, cuts = 10000, 10, 20
        stop = threading.Event()
        errors = []

        def publisher():
            # 1,000 messages/s: a request of 10 publishes every 10 ms, alternating nodes.
            start = time.monotonic()
            try:
                for k in range(total // per_request):
                    if stop.is_set():
                        return
                    gw = (a, b)[k % 2]
                    first = k * per_request
                    self.publish_user(gw, sub, *range(first, first + per_request))
                    delay = start + (k + 1) * per_request / 1000.0 - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
            except Exception as e:  # reported by the main thread
                errors.append(e)

        s, ready = self.open(a, "websocket", sub, client)
        pos = position(ready, "user")
        # Two nodes' publishes may reach Redis in either order: seq follows Redis's order,
        # data the publisher's.
        seqs, datas = [], []
        thread = threading.Thread(target=publisher, daemon=True)
        thread.start()
        self.addCleanup(stop.set)
        transports = TRANSPORTS * cuts
        cut_every = total // (cuts + 1)
        reconnects = 0
        deadline = time.monotonic() + 120
        while len(seqs) < total:
            self.assertFalse(errors, errors)
            self.assertLess(time.monotonic(), deadline, "only %d messages" % len(seqs))
            try:
                m = s.next_message(timeout=10)
            except socket.timeout:
                self.fail("no message for 10 s after %d" % len(seqs))
            if "ready" in m:
                self.fail("unexpected ready message %r" % m)
            seqs.append(m["seq"])
            datas.append(m["data"])
            pos["seq"] = m["seq"]
            if reconnects < cuts and len(seqs) >= cut_every * (reconnects + 1):
                s.close()
                reconnects += 1
                node = (a, b)[reconnects % 2]
                s, ready = self.open(node, transports[reconnects], sub, client,
                                     recover={"user": dict(pos)})
                self.assertEqual(ready["user"]["recovered"], True, ready)
                self.assertEqual(ready["user"]["epoch"], pos["epoch"])
        thread.join(timeout=30)
        self.assertFalse(errors, errors)
        self.assertEqual(reconnects, cuts)
        self.assertEqual(seqs, list(range(1, total + 1)))
        self.assertEqual(sorted(datas), list(range(total)))


class RedisTrouble(HistoryMixin, ScopedTestCase):
    """One node on one Redis that is restarted or stopped."""

    per_test_gateway = True

    def setUp(self):
        super().setUp()
        self.redis = redisfix.RedisServer().start()
        self.addCleanup(self.redis.stop)

    def test_a_silent_channel_costs_redis_only_for_the_history_ttl(self):
        gw = self.start_gateway("--engine", self.redis.url, "--history-ttl-s", "60")
        gw.wait_publish_status(202)
        sub = unique("u")
        s, ready = self.open(gw, "websocket", sub)
        key = "sockjs-gateway:chan:user:%s:%s" % (self.site, sub)
        self.assertEqual(self.redis.command("HGET", key, "e").decode(), ready["user"]["epoch"])
        self.assertTrue(0 < self.redis.command("PTTL", key) <= 60000)
        self.publish_user(gw, sub, "x")
        s.next_message()
        self.assertGreater(self.redis.command("PTTL", key), 3600 * 1000)

    def test_expired_history_recovers_nothing(self):
        gw = self.start_gateway("--engine", self.redis.url, "--history-ttl-s", "1")
        gw.wait_publish_status(202)
        self.check_history_expiry(gw)

    def test_a_redis_restart_changes_the_epoch(self):
        gw = self.start_gateway("--engine", self.redis.url)
        gw.wait_publish_status(202)
        sub = unique("u")
        s, ready = self.open(gw, "websocket", sub)
        self.publish_user(gw, sub, "seen")
        s.next_message()
        s.close()
        self.redis.kill()
        self.redis.start()
        gw.wait_publish_status(202)
        self.publish_user(gw, sub, "after")
        s2, ready2 = self.open(gw, "xhr_streaming", sub,
                               recover={"user": {"seq": 1, "epoch": ready["user"]["epoch"]}})
        self.assertEqual(ready2["user"]["recovered"], False, ready2)
        self.assertNotEqual(ready2["user"]["epoch"], ready["user"]["epoch"])
        self.assertEqual(ready2["user"]["seq"], 1)
        s2.expect_nothing(0.2)

    def test_a_redis_that_does_not_answer_delays_ready_by_the_wait_at_most(self):
        gw = self.start_gateway("--engine", self.redis.url, "--ready-wait-ms", "300")
        gw.wait_publish_status(202)
        sub = unique("u")
        s, ready = self.open(gw, "websocket", sub)
        os.kill(self.redis.proc.pid, signal.SIGSTOP)
        self.addCleanup(os.kill, self.redis.proc.pid, signal.SIGCONT)
        s2, ready2 = self.open(gw, "websocket", sub, recover={"user": position(ready, "user")})
        self.assertEqual(ready2["user"], {"seq": None, "epoch": None, "recovered": False})
        self.assertEqual(ready2["global"], {"seq": None, "epoch": None})
        os.kill(self.redis.proc.pid, signal.SIGCONT)
        self.assertGreaterEqual(gw.stats()["recovery"]["ready_unknown"], 1)

    def test_without_redis_the_ready_message_has_no_positions(self):
        gw = self.start_gateway("--engine", self.redis.url)
        gw.wait_publish_status(202)
        self.redis.kill()
        gw.wait_publish_status(503)
        s, ready = self.open(gw, "xhr_polling", unique("u"))
        self.assertEqual(ready["user"], {"seq": None, "epoch": None})


if __name__ == "__main__":
    unittest.main()
