#!/usr/bin/python3
"""Presence: who is connected per company, per user and per site, on the embedded engine and
across nodes joined by a real redis-server.

Checked: GET /api/presence answers (single and batch, paging with limit and cursor) over
websocket, xhr_streaming and xhr polling sessions, and their counts going back to zero when the
sessions close (a polling session once its disconnect delay is over); 400 with a JSON reason for
bad parameters; the browser's {"presence": "client"|"user"} and the refusal of anything else;
presence.join / presence.leave events (--presence-events) once per user and company, in order,
the leave after --presence-leave-delay-ms, none at all for a reconnect within the delay; across
two nodes: every node answers for the cluster, events once per user (not once per node); a node
killed with SIGKILL leaves the others' answers after --node-timeout-ms with one leave per user;
a node restarted under its --node-id drops its previous life's entries at once; Redis killed
and restarted: the nodes re-publish their state and the answers converge.

Waiting: events are awaited as messages; presence in Redis has no event to await when a count
changes without a join or leave, so those checks poll the API with a deadline.

Spec: docs/PROTOCOL.md "Presence".
"""

import json
import re
import signal
import socket
import time
import unittest
import urllib.parse

import gwtest
import redisfix
import scopedfix
from scopedfix import TRANSPORTS, ScopedGateway, ScopedTestCase, unique
from test_redis import shard_of

DISCONNECT_MS = 400
LEAVE_DELAY_MS = 600
NODE_TIMEOUT_MS = 3000
# How long a dead node may take to leave the answers: the timeout, plus a margin for a loaded
# machine (and the Python side's reading).
DEAD_NODE_BOUND_S = NODE_TIMEOUT_MS / 1000 + 1.5


def presence_path(site, scope, ids=(), **params):
    q = [("site", site), ("scope", scope)] + [("id", i) for i in ids]
    q += sorted(params.items())
    return "/api/presence?" + urllib.parse.urlencode(q)


class PresenceMixin:
    """Helpers on a ScopedTestCase whose gateways run with presence options."""

    def query(self, gw, scope, ids=(), site=None, status=200, **params):
        r = gw.api("GET", presence_path(site or self.site, scope, ids, **params))
        self.assertEqual(r.status, status, r)
        return r.json()

    def wait_presence(self, gw, scope, ids, expected, timeout=15.0, **params):
        """Polls the API until its answer is `expected` (no event marks a count change)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.query(gw, scope, ids, **params)
            if got == expected:
                return got
            if time.monotonic() > deadline:
                self.fail("presence %s %s: %r, expected %r" % (scope, list(ids), got, expected))
            time.sleep(0.05)

    def next_presence_event(self, s, timeout=None):
        """The next presence.join/leave message of s, as (event, user); other messages fail."""
        m = s.next_message(timeout)
        self.assertIsInstance(m, dict, m)
        self.assertIn(m.get("event"), ("presence.join", "presence.leave"), m)
        self.assertEqual((m["scope"], m["site"]), ("client", s.site), m)
        self.assertEqual(set(m["data"]), {"user"}, m)
        return m["event"], m["data"]["user"]

    def presence_answer(self, s):
        """The next {"presence": ...} answer of s, after any presence events."""
        while True:
            m = s.next_message()
            if "presence" in m:
                self.assertEqual(list(m), ["presence"], m)
                return m["presence"]
            self.assertIn(m.get("event"), ("presence.join", "presence.leave"), m)

    def no_more_events(self, s):
        """Nothing but the barrier's answer is pending on s."""
        self.assertEqual(s.barrier(), [])

    def observer(self, gw, client):
        """A session of a fresh user in `client` that sees events; its own join consumed."""
        s = self.user_session("websocket", gw=gw, client=client)
        self.assertEqual(self.next_presence_event(s), ("presence.join", s.sub))
        return s

    def close_session(self, s):
        """Ends a session as a browser leaving does: the connection goes (a polling session
        then lives out its disconnect delay)."""
        s.close()


class OneNode(PresenceMixin, ScopedTestCase):
    gateway_args = ("--presence-events", "--presence-leave-delay-ms", str(LEAVE_DELAY_MS),
                    "--disconnect-delay-ms", str(DISCONNECT_MS), "--presence-max-ids", "5",
                    "--presence-max-limit", "3000", "--presence-query-interval-ms", "0")

    def test_counts_over_every_transport_and_back_to_zero(self):
        client = unique("c")
        u1, u2 = unique("u"), unique("u")
        sessions = [self.user_session("websocket", sub=u1, client=client),
                    self.user_session("xhr_streaming", sub=u1, client=client),
                    self.user_session("xhr_polling", sub=u2, client=client)]
        self.assertEqual(self.query(self.gw, "client", [client]),
                         {"sessions": 3, "users": {u1: 2, u2: 1}})
        self.assertEqual(self.query(self.gw, "user", [u1]), {"sessions": 2, "users": {u1: 2}})
        self.assertEqual(self.query(self.gw, "user", [u2]), {"sessions": 1, "users": {u2: 1}})
        self.assertEqual(self.query(self.gw, "global"), {"sessions": 3, "users_count": 2})
        other = unique("c")
        self.assertEqual(self.query(self.gw, "client", [client, other]),
                         {"results": {client: {"sessions": 3, "users": {u1: 2, u2: 1}},
                                      other: {"sessions": 0, "users": {}}}})
        self.assertEqual(self.query(self.gw, "user", [unique("u")]),
                         {"sessions": 0, "users": {}})
        # Another site sees none of it.
        self.assertEqual(self.query(self.gw, "client", [client], site=unique("site")),
                         {"sessions": 0, "users": {}})
        for s in sessions:
            self.close_session(s)
        self.wait_presence(self.gw, "client", [client], {"sessions": 0, "users": {}})
        self.assertEqual(self.query(self.gw, "user", [u1]), {"sessions": 0, "users": {}})
        self.assertEqual(self.query(self.gw, "global"), {"sessions": 0, "users_count": 0})

    def test_events_once_in_order_with_the_leave_delayed(self):
        client = unique("c")
        obs = self.observer(self.gw, client)
        # Event filters apply to presence events as to any other.
        filtered = self.user_session("websocket", client=client)
        self.assertEqual(self.next_presence_event(obs), ("presence.join", filtered.sub))
        self.assertEqual(self.next_presence_event(filtered), ("presence.join", filtered.sub))
        filtered.send({"events": ["news.*"]})
        filtered.barrier()
        u = unique("u")
        a = self.user_session("xhr_streaming", sub=u, client=client)
        self.assertEqual(self.next_presence_event(obs), ("presence.join", u))
        b = self.user_session("websocket", sub=u, client=client)
        self.no_more_events(obs)  # a second session of the same user: no join
        self.close_session(a)
        self.no_more_events(obs)  # one session left: no leave
        closed = time.monotonic()
        self.close_session(b)
        self.assertEqual(self.next_presence_event(obs, timeout=LEAVE_DELAY_MS / 1000 + 10),
                         ("presence.leave", u))
        self.assertGreaterEqual(time.monotonic() - closed, LEAVE_DELAY_MS / 1000 * 0.9)
        self.no_more_events(obs)
        self.no_more_events(filtered)
        # Lingering until then, gone after.
        self.assertEqual(self.query(self.gw, "client", [client]),
                         {"sessions": 2, "users": {obs.sub: 1, filtered.sub: 1}})

    def test_reconnect_within_the_delay_is_no_leave_and_no_join(self):
        client = unique("c")
        obs = self.observer(self.gw, client)
        u = unique("u")
        polling = self.user_session("xhr_polling", sub=u, client=client)
        self.assertEqual(self.next_presence_event(obs), ("presence.join", u))
        # A polling client reconnecting: its old session lives out its disconnect delay while
        # the new one opens.
        polling.close()
        ws = self.user_session("websocket", sub=u, client=client)
        # A page reload: the websocket goes, the next one comes within the leave delay.
        ws.close()
        again = self.user_session("websocket", sub=u, client=client)
        obs.expect_nothing((DISCONNECT_MS + LEAVE_DELAY_MS) / 1000 + 0.5)
        self.assertEqual(self.query(self.gw, "user", [u]), {"sessions": 1, "users": {u: 1}})
        again.close()
        self.assertEqual(self.next_presence_event(obs, timeout=10), ("presence.leave", u))
        self.no_more_events(obs)

    def test_browser_query_sees_its_own_company_and_user_only(self):
        client = unique("c")
        me = self.user_session("xhr_streaming", client=client)
        self.assertEqual(self.next_presence_event(me), ("presence.join", me.sub))
        mate = self.user_session("websocket", client=client)
        self.assertEqual(self.next_presence_event(me), ("presence.join", mate.sub))
        me.send({"presence": "client"})
        self.assertEqual(me.next_message(),
                         {"presence": {"scope": "client", "sessions": 2,
                                       "users": {me.sub: 1, mate.sub: 1}}})
        me.send({"presence": "user"})
        self.assertEqual(me.next_message(),
                         {"presence": {"scope": "user", "sessions": 1, "users": {me.sub: 1}}})
        for bad in ("global", "site", "", 1, None, ["client"], {"scope": "client"}):
            me.send({"presence": bad})
            self.assertEqual(me.next_message(),
                             {"error": "presence scope must be client or user"}, bad)
        anonymous_gw = self.start_gateway("--allow-anonymous")
        anon = scopedfix.Session(anonymous_gw, "websocket", site=self.site)
        self.addCleanup(anon.close)
        anon.expect_open()
        anon.send({"presence": "client"})
        self.assertEqual(anon.next_message(), {"error": "authenticate first"})

    def test_browser_queries_are_rate_limited_per_session(self):
        gw = self.start_gateway("--presence-query-interval-ms", "60000")
        client = unique("c")
        me = self.user_session("websocket", gw=gw, client=client)
        other = self.user_session("xhr_streaming", gw=gw, client=client)
        me.send({"presence": "user"})
        self.assertEqual(me.next_message(),
                         {"presence": {"scope": "user", "sessions": 1, "users": {me.sub: 1}}})
        for _ in range(3):
            me.send({"presence": "client"})
            self.assertEqual(me.next_message(), {"error": "presence queries too frequent"})
        # Its own limit only: another session of the company asks freely, and me stays open.
        other.send({"presence": "client"})
        self.assertEqual(other.next_message()["presence"]["sessions"], 2)
        me.send({"presence": "user"})
        self.assertEqual(me.next_message(), {"error": "presence queries too frequent"})

    def test_bad_parameters_are_400_with_a_reason(self):
        cases = [
            ("/api/presence", "site"),
            ("/api/presence?scope=client&id=c", "site"),
            ("/api/presence?site=a:b&scope=client&id=c", "site"),
            ("/api/presence?site=s", "scope"),
            ("/api/presence?site=s&scope=company&id=c", "scope"),
            ("/api/presence?site=s&scope=client", "id"),
            ("/api/presence?site=s&scope=global&id=c", "id"),
            ("/api/presence?site=s&scope=user&id=%01", "id"),
            ("/api/presence?site=s&scope=client&" + "&".join("id=%d" % i for i in range(6)),
             "id"),
            ("/api/presence?site=s&scope=client&id=c&limit=0", "limit"),
            ("/api/presence?site=s&scope=client&id=c&limit=3001", "limit"),
            ("/api/presence?site=s&scope=client&id=c&limit=x", "limit"),
            ("/api/presence?site=s&scope=client&id=c&limit=", "limit"),
            ("/api/presence?site=s&scope=user&id=u&cursor=a", "cursor"),
            ("/api/presence?site=" + "s" * 300 + "&scope=global", "site"),
        ]
        for path, param in cases:
            with self.subTest(path=path[:80]):
                r = self.gw.api("GET", path)
                body = self.assertApiError(r, 400)
                self.assertEqual(body.get("parameter"), param, body)
        self.assertApiError(self.gw.api("GET", presence_path("s", "global"), key=None), 401)
        self.assertApiError(self.gw.api("GET", presence_path("s", "global"), key="wrong"), 401)
        self.assertApiError(self.gw.api("POST", presence_path("s", "global"), body=""), 405)
        self.gw.assert_alive()

    def test_paging_through_a_large_company(self):
        page_through(self, [self.gw], users=2500)


def open_many(test, gws, site, client, users, conns=None):
    """`users` websocket sessions of distinct users of one company, spread over gws, their
    handshakes sent all at once (a flood of opens); returns the user ids. Their connections are
    added to `conns` if given (and closed at the test's end in any case)."""
    ids = ["u%05d-%s" % (i, unique("p")) for i in range(users)]
    conns = [] if conns is None else conns
    socks = []

    def close_all():
        for c in conns:
            c.close()
    test.addCleanup(close_all)
    for i, u in enumerate(ids):
        gw = gws[i % len(gws)]
        c = gwtest.Conn(gw.port, host=gw.host)
        conns.append(c)
        path = "/sockjs/000/%s/websocket?token=%s" % (unique("s"),
                                                      scopedfix.token_for(site, u, client))
        c.send(gwtest.ws_handshake_request(path, "dGhlIHNhbXBsZSBub25jZQ=="))
    # A flood: a connection whose handshake found the accept queue full waits for the kernel's
    # retransmissions (1 s, 2 s, ...), so one answer may come later than the usual timeout.
    for c in conns:
        resp = gwtest.read_response_head(c, timeout=4 * gwtest.TIMEOUT)
        test.assertEqual(resp.status, 101, resp)
        socks.append(gwtest.WebSocket(c, resp))
    for ws in socks:
        op, data = ws.recv_message(gwtest.TIMEOUT)
        test.assertEqual(data, b"o")
    return ids


def page_through(test, gws, users):
    client = unique("c")
    ids = open_many(test, gws, test.site, client, users)
    expected = sorted(ids)
    deadline = time.monotonic() + 20
    for gw in gws:
        while True:
            first = test.query(gw, "client", [client], limit=1)
            if first["sessions"] == users:
                break
            if time.monotonic() > deadline:
                test.fail("presence of %d sessions not reached: %r" % (users, first))
            time.sleep(0.05)
        seen, cursor, pages = [], None, 0
        while True:
            params = {"limit": 1000}
            if cursor is not None:
                params["cursor"] = cursor
            page = test.query(gw, "client", [client], **params)
            test.assertEqual(page["sessions"], users)
            names = list(page["users"])
            test.assertEqual(names, sorted(names))
            test.assertTrue(all(page["users"][n] == 1 for n in names))
            seen += names
            pages += 1
            if "cursor" not in page:
                break
            test.assertEqual(page["cursor"], names[-1])
            cursor = page["cursor"]
        test.assertEqual(seen, expected)
        test.assertEqual(pages, (users + 999) // 1000)
        # The default limit is 1,000.
        test.assertEqual(len(test.query(gw, "client", [client])["users"]), min(users, 1000))


class TwoNodes(PresenceMixin, ScopedTestCase):
    """Two nodes on one redis-server, started once for the class."""

    node_args = ("--presence-events", "--presence-leave-delay-ms", str(LEAVE_DELAY_MS),
                 "--disconnect-delay-ms", str(DISCONNECT_MS), "--node-timeout-ms",
                 str(NODE_TIMEOUT_MS))

    @classmethod
    def setUpClass(cls):
        unittest.TestCase.setUpClass.__func__(cls)
        cls.redis, cls.nodes, cls._class_gw = None, [], None
        try:
            cls.redis = redisfix.RedisServer().start()
            cls.nodes = [cls.start_node() for _ in range(2)]
            cls._class_gw = cls.nodes[0]
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_node(cls, *extra):
        gw = ScopedGateway("--engine", cls.redis.url, *(cls.node_args + extra)).start()
        gw.wait_publish_status(202)
        return gw

    @classmethod
    def tearDownClass(cls):
        nodes, redis = cls.nodes, [cls.redis] if cls.redis else []
        cls.nodes, cls._class_gw = [], None
        unittest.TestCase.tearDownClass.__func__(cls)
        gwtest.stop_all(*nodes, *redis)

    def test_every_node_answers_for_the_cluster(self):
        node1, node2 = self.nodes
        client = unique("c")
        u1, u2 = unique("u"), unique("u")
        sessions = [self.user_session("websocket", gw=node1, sub=u1, client=client),
                    self.user_session("xhr_streaming", gw=node2, sub=u1, client=client),
                    self.user_session("xhr_polling", gw=node2, sub=u2, client=client)]
        want = {"sessions": 3, "users": {u1: 2, u2: 1}}
        for gw in self.nodes:
            self.wait_presence(gw, "client", [client], want)
            self.assertEqual(self.query(gw, "user", [u1]), {"sessions": 2, "users": {u1: 2}})
            self.assertEqual(self.query(gw, "global"), {"sessions": 3, "users_count": 2})
            self.assertEqual(self.query(gw, "user", [u1, u2]),
                             {"results": {u1: {"sessions": 2, "users": {u1: 2}},
                                          u2: {"sessions": 1, "users": {u2: 1}}}})
        sessions[0].send({"presence": "client"})
        self.assertEqual(self.presence_answer(sessions[0]), dict(want, scope="client"))
        for s in sessions:
            s.close()
        for gw in self.nodes:
            self.wait_presence(gw, "client", [client], {"sessions": 0, "users": {}})
            self.assertEqual(self.query(gw, "global"), {"sessions": 0, "users_count": 0})

    def test_one_browser_query_at_a_time(self):
        s = self.user_session("websocket", gw=self.nodes[1])
        # Two queries in one SockJS frame: the second is read while the first waits for Redis.
        s.send_text(json.dumps({"presence": "user"}), json.dumps({"presence": "client"}))
        got = [s.next_message(), s.next_message()]
        self.assertIn({"error": "presence query in progress"}, got)
        got.remove({"error": "presence query in progress"})
        self.assertEqual(got, [{"presence": {"scope": "user", "sessions": 1,
                                             "users": {s.sub: 1}}}])

    def test_events_once_per_user_not_once_per_node(self):
        node1, node2 = self.nodes
        client = unique("c")
        obs1 = self.observer(node1, client)
        obs2 = self.user_session("websocket", gw=node2, client=client)
        self.assertEqual(self.next_presence_event(obs2), ("presence.join", obs2.sub))
        self.assertEqual(self.next_presence_event(obs1), ("presence.join", obs2.sub))
        u = unique("u")
        a = self.user_session("xhr_streaming", gw=node2, sub=u, client=client)
        for obs in (obs1, obs2):
            self.assertEqual(self.next_presence_event(obs), ("presence.join", u))
        b = self.user_session("websocket", gw=node1, sub=u, client=client)
        self.wait_presence(node1, "user", [u], {"sessions": 2, "users": {u: 2}})
        a.close()
        b.close()
        for obs in (obs1, obs2):
            self.assertEqual(self.next_presence_event(obs, timeout=10), ("presence.leave", u))
        for obs in (obs1, obs2):
            self.no_more_events(obs)

    def test_a_killed_node_leaves_within_the_timeout_once(self):
        node1, node2 = self.nodes
        node3 = self.start_node()
        self.addCleanup(node3.stop)
        client = unique("c")
        obs1 = self.observer(node1, client)
        obs2 = self.user_session("websocket", gw=node2, client=client)
        for obs in (obs2, obs1):
            self.assertEqual(self.next_presence_event(obs), ("presence.join", obs2.sub))
        gone, stays = unique("u"), unique("u")
        for t in TRANSPORTS:
            self.user_session(t, gw=node3, sub=gone, client=client)
        self.user_session("websocket", gw=node3, sub=stays, client=client)
        self.user_session("websocket", gw=node1, sub=stays, client=client)
        for obs in (obs1, obs2):
            got = {self.next_presence_event(obs), self.next_presence_event(obs)}
            self.assertEqual(got, {("presence.join", gone), ("presence.join", stays)})
        want_before = {"sessions": 7, "users": {obs1.sub: 1, obs2.sub: 1, gone: 3, stays: 2}}
        self.wait_presence(node1, "client", [client], want_before)
        killed = time.monotonic()
        node3.signal(signal.SIGKILL)
        node3.wait_exit()
        for obs in (obs1, obs2):
            self.assertEqual(self.next_presence_event(obs, timeout=DEAD_NODE_BOUND_S),
                             ("presence.leave", gone))
        took = time.monotonic() - killed
        self.assertLess(took, DEAD_NODE_BOUND_S)
        want_after = {"sessions": 3, "users": {obs1.sub: 1, obs2.sub: 1, stays: 1}}
        for gw in (node1, node2):
            self.assertEqual(self.query(gw, "client", [client]), want_after)
        for obs in (obs1, obs2):
            self.no_more_events(obs)
        print("\n  dead node's users left after %.2f s (--node-timeout-ms %d)"
              % (took, NODE_TIMEOUT_MS))

    def test_a_killed_nodes_entries_go_a_part_per_script(self):
        """A dead node's entries (1,100 sessions: 3,300) are taken out by several scripts of at
        most 3,000 entries each, not by one script holding Redis for its whole state (at 19,000
        sessions per node that one script outlasted Redis's busy threshold and made every other
        command fail with BUSY)."""
        node1 = self.nodes[0]
        node_id = unique("node")
        node3 = self.start_node("--node-id", node_id)
        self.addCleanup(node3.stop)
        client = unique("c")
        open_many(self, [node3], self.site, client, 1100)
        deadline = time.monotonic() + 20
        while self.query(node1, "client", [client], limit=1)["sessions"] != 1100:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        # MONITOR lists each script, then the commands it ran ("lua" as their client).
        monitor = socket.create_connection(("127.0.0.1", self.redis.port), timeout=30)
        self.addCleanup(monitor.close)
        monitor.sendall(b"*1\r\n$7\r\nMONITOR\r\n")
        lines = monitor.makefile("rb")
        self.assertEqual(lines.readline(), b"+OK\r\n")
        node3.signal(signal.SIGKILL)
        node3.wait_exit()
        self.wait_presence(node1, "client", [client], {"sessions": 0, "users": {}},
                           timeout=DEAD_NODE_BOUND_S + 10)
        own_key = '"HINCRBY" "sockjs-gateway:presence:n:%s:' % node_id
        per_script, taken = [], 0
        while taken < 3300:
            line = lines.readline().decode(errors="replace")
            self.assertTrue(line, "MONITOR ended after %d of the node's entries" % taken)
            if " lua] " not in line:
                per_script.append(0)  # a command from a client: a script starts, or not
            elif own_key in line:
                per_script[-1] += 1
                taken += 1
        per_script = [n for n in per_script if n]
        self.assertGreaterEqual(len(per_script), 2, per_script)
        self.assertLessEqual(max(per_script), 3000, per_script)

    def test_a_stopping_node_takes_its_sessions_out_at_once(self):
        node1 = self.nodes[0]
        # A timeout far longer than the test: only the node's own leave can remove them.
        node3 = self.start_node("--node-timeout-ms", "600000", "--drain-ms", "0")
        self.addCleanup(node3.stop)
        client = unique("c")
        obs = self.observer(node1, client)
        u = unique("u")
        for t in TRANSPORTS:
            self.user_session(t, gw=node3, sub=u, client=client)
        self.assertEqual(self.next_presence_event(obs), ("presence.join", u))
        node3.signal(signal.SIGTERM)
        self.assertEqual(node3.wait_exit(), 0)
        self.assertEqual(self.next_presence_event(obs), ("presence.leave", u))
        self.assertEqual(self.query(node1, "client", [client]),
                         {"sessions": 1, "users": {obs.sub: 1}})
        self.no_more_events(obs)

    def test_a_restarted_node_drops_its_previous_life(self):
        node1 = self.nodes[0]
        node_id = unique("node")
        # A timeout far longer than the test: only the restart can remove the entries.
        args = ("--node-id", node_id, "--node-timeout-ms", "600000")
        node3 = self.start_node(*args)
        client = unique("c")
        obs = self.observer(node1, client)
        u = unique("u")
        self.user_session("websocket", gw=node3, sub=u, client=client)
        self.assertEqual(self.next_presence_event(obs), ("presence.join", u))
        node3.signal(signal.SIGKILL)
        node3.wait_exit()
        again = self.start_node(*args)
        self.addCleanup(again.stop)
        self.assertEqual(self.next_presence_event(obs, timeout=20), ("presence.leave", u))
        self.assertEqual(self.query(node1, "client", [client]),
                         {"sessions": 1, "users": {obs.sub: 1}})
        # The leave went out from the restarted node's first command, once it could publish.
        self.assertEqual(again.stats()["presence"]["lost_events"], 0)

    def test_answers_converge_after_a_redis_restart(self):
        node1, node2 = self.nodes
        client = unique("c")
        u1, u2 = unique("u"), unique("u")
        self.user_session("websocket", gw=node1, sub=u1, client=client)
        self.user_session("xhr_streaming", gw=node2, sub=u2, client=client)
        self.user_session("websocket", gw=node2, sub=u1, client=client)
        want = {"sessions": 3, "users": {u1: 2, u2: 1}}
        self.wait_presence(node1, "client", [client], want)
        self.redis.kill()
        r = node1.api("GET", presence_path(self.site, "client", [client]))
        self.assertEqual(r.status, 503, r)
        self.redis.start()
        for gw in self.nodes:
            gw.wait_publish_status(202)
            self.wait_presence(gw, "client", [client], want, timeout=20)
        stats = node1.stats()["presence"]
        self.assertGreaterEqual(stats["replaces"], 2)
        # Redis forgets the script: the next change finds it missing, and the node sends it
        # again with its whole state.
        self.redis.command("SCRIPT", "FLUSH")
        u3 = unique("u")
        self.user_session("websocket", gw=node1, sub=u3, client=client)
        want = {"sessions": 4, "users": {u1: 2, u2: 1, u3: 1}}
        for gw in self.nodes:
            self.wait_presence(gw, "client", [client], want, timeout=20)

    def test_a_redis_stall_longer_than_the_timeout_drops_no_node(self):
        """Redis blocked for longer than the nodes' silence limit (a slow script here; a fork or
        a slow disk elsewhere) makes every node look silent at once: no node is dropped for it,
        no session leaves the answers and no leave goes out."""
        node1, node2 = self.nodes
        client = unique("c")
        obs = self.observer(node1, client)
        u = unique("u")
        self.user_session("websocket", gw=node2, sub=u, client=client)
        self.assertEqual(self.next_presence_event(obs), ("presence.join", u))
        want = {"sessions": 2, "users": {obs.sub: 1, u: 1}}
        self.wait_presence(node1, "client", [client], want)
        dead = [gw.stats()["presence"]["dead_nodes"] for gw in self.nodes]
        # 1.5 timeouts (twice the silence limit), under Redis's 5 s busy threshold.
        stall = ("local function ms() local t = redis.call('TIME') "
                 "return t[1] * 1000 + math.floor(t[2] / 1000) end "
                 "local start = ms() local now = start "
                 "while now - start < tonumber(ARGV[1]) do now = ms() end "
                 "return tostring(now)")
        end_ms = int(self.redis.command("EVAL", stall, "0", str(NODE_TIMEOUT_MS * 3 // 2)))
        # Both nodes' first heartbeats after the stall, the ones that would judge the other
        # silent, have run once both scores in the node set are past it.
        deadline = time.monotonic() + 10
        while True:
            scores = self.redis.command("ZRANGEBYSCORE", "sockjs-gateway:presence:nodes",
                                        "(%d" % end_ms, "+inf")
            if len(scores) >= 2:
                break
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.assertEqual([gw.stats()["presence"]["dead_nodes"] for gw in self.nodes], dead)
        self.assertEqual(self.query(node1, "client", [client]), want)
        self.no_more_events(obs)

    def wait_heard_after(self, others_than, since_ms):
        """Waits until every node Redis knows (but `others_than`) has run a heartbeat or a
        replace since `since_ms` (Redis's clock): a node whose change failed is dirty until
        then, and a join while dirty is counted without an event."""
        deadline = time.monotonic() + 20
        while True:
            scores = self.redis.command("ZRANGE", "sockjs-gateway:presence:nodes", "0", "-1",
                                        "WITHSCORES")
            late = [scores[i] for i in range(0, len(scores), 2)
                    if scores[i].decode() != others_than and int(scores[i + 1]) <= since_ms]
            if not late:
                return
            self.assertLess(time.monotonic(), deadline, late)
            time.sleep(0.05)

    def test_a_large_state_is_replaced_in_parts_and_what_it_lacks_goes(self):
        """A replace of a node with 1,100 sessions (3,300 entries: over one command's worth) goes
        in parts of whole channels, each its own short script, then an end: counts Redis has
        for the node in a part's channel but not in the node are dropped, and so are those of
        a channel no part names."""
        node_id = unique("node")
        node = self.start_node("--node-id", node_id)
        self.addCleanup(node.stop)
        client, other = unique("c"), unique("c")
        open_many(self, [node], self.site, client, 1100)
        deadline = time.monotonic() + 20
        while self.query(node, "client", [client], limit=1)["sessions"] != 1100:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        # Entries Redis has for the node and the node does not: in a channel it has sessions
        # in, and in one it has none in.
        prefix = "sockjs-gateway:presence:"
        for ch, ghost in (("client:%s:%s" % (self.site, client), "ghost-a"),
                          ("client:%s:%s" % (self.site, other), "ghost-b")):
            self.redis.command("HSET", prefix + "n:%s:%s" % (node_id, ch), ghost, "1")
            self.redis.command("SADD", prefix + "c:" + node_id, ch)
            self.redis.command("HINCRBY", prefix + "t:" + ch, ghost, "1")
            self.redis.command("INCRBY", prefix + "s:" + ch, "1")
            self.redis.command("ZADD", prefix + "i:" + ch, "0", ghost)
        self.assertEqual(self.query(node, "client", [client], limit=2000)["sessions"], 1101)
        self.assertEqual(self.query(node, "client", [other]),
                         {"sessions": 1, "users": {"ghost-b": 1}})
        # Every command from here on is in the slow log: the replace's parts can be counted.
        self.redis.command("CONFIG", "SET", "slowlog-max-len", "100000")
        self.redis.command("SLOWLOG", "RESET")
        self.redis.command("CONFIG", "SET", "slowlog-log-slower-than", "0")
        self.addCleanup(self.redis.command, "CONFIG", "SET", "slowlog-log-slower-than", "10000")
        replaces = node.stats()["presence"]["replaces"]
        # Redis forgets the node, as when it dropped it as silent: the node's next command
        # (a heartbeat, or a change) finds it unknown, and it replaces its state. (Not SCRIPT
        # FLUSH: a heartbeat refused for it loses no change and makes no replace.)
        self.redis.command("ZREM", "sockjs-gateway:presence:nodes", node_id)
        deadline = time.monotonic() + 20
        while node.stats()["presence"]["replaces"] == replaces:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.wait_presence(node, "client", [other], {"sessions": 0, "users": {}})
        answer = self.query(node, "client", [client], limit=2000)
        self.assertEqual(answer["sessions"], 1100)
        self.assertNotIn("ghost-a", answer["users"])
        self.assertEqual(len(answer["users"]), 1100)
        parts, ends = [], 0
        for entry in self.redis.command("SLOWLOG", "GET", "100000"):
            args = [a.decode(errors="replace") for a in entry[3]]
            if len(args) < 5 or not args[0].startswith("EVAL") or args[4] != node_id:
                continue
            self.assertNotEqual(args[3], "replace")
            if args[3] == "end":
                ends += 1
            elif args[3] == "part":
                # Redis shows 32 arguments and then "... (N more arguments)".
                more = int(args[-1].split("(")[1].split()[0]) if args[-1].startswith("...") else 0
                parts.append(len(args) - (1 if more else 0) + more)
        self.assertGreaterEqual(ends, 1)
        self.assertGreaterEqual(len(parts), 2, parts)
        # A part carries whole channels of about 3,000 entries (3 arguments each) at most; the
        # largest channel here, the site's and the company's, has 1,100.
        self.assertLessEqual(max(parts), 7 + 3 * 3000, parts)

    def test_changes_held_for_a_stalled_redis_stay_within_the_state(self):
        """While Redis does not answer, a node holds its presence changes for it. Sessions that
        come and go meanwhile would add to them without end: once they outnumber the node's
        whole state, it drops them and replaces that state when Redis answers again."""
        node_id = unique("node")
        node = self.start_node("--node-id", node_id, "--presence-leave-delay-ms", "0")
        self.addCleanup(node.stop)
        client = unique("c")
        replaces = node.stats()["presence"]["replaces"]
        seconds, micros = self.redis.command("TIME")
        self.addCleanup(self.wait_heard_after, node_id, int(seconds) * 1000 + int(micros) // 1000)
        # Redis answers nobody for 2 s: less than the nodes' silence limit, so no node is
        # dropped for it, and more than this takes.
        pause_s = 2.0
        self.redis.command("CLIENT", "PAUSE", str(int(pause_s * 1000)), "ALL")
        paused_at = time.monotonic()
        conns = []
        # 300 sessions come and go: 1,800 changes, while the node's state goes back to none.
        # The first apply takes at most 500 of them to the paused Redis; the rest wait.
        open_many(self, [node], self.site, client, 300, conns)
        for c in conns:
            c.close()
        deadline = time.monotonic() + 10
        while node.stats()["hub"]["subscriptions"] > 0:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        self.assertLess(time.monotonic() - paused_at, pause_s, "too slow to test this")
        deadline = time.monotonic() + 20
        while node.stats()["presence"]["replaces"] == replaces:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        node.wait_log(re.escape("presence: sending this node's whole state (0 entries) to Redis "
                                "shard 0 (more changes waited for Redis than the whole state "
                                "has)"))
        self.wait_presence(node, "client", [client], {"sessions": 0, "users": {}})
        self.assertEqual(node.stats()["presence"]["replaces"], replaces + 1)

    def test_paging_through_5000_users_across_nodes(self):
        page_through(self, self.nodes, users=5000)

    def test_a_flood_of_opens_is_batched_into_few_redis_commands(self):
        node1 = self.nodes[0]
        before = node1.stats()["presence"]
        client = unique("c")
        # Every command from here on is in the slow log: the applies' sizes can be read.
        self.redis.command("CONFIG", "SET", "slowlog-max-len", "100000")
        self.redis.command("SLOWLOG", "RESET")
        self.redis.command("CONFIG", "SET", "slowlog-log-slower-than", "0")
        self.addCleanup(self.redis.command, "CONFIG", "SET", "slowlog-log-slower-than", "10000")
        open_many(self, [node1], self.site, client, 1000)
        deadline = time.monotonic() + 20
        polls = 0
        while self.query(node1, "client", [client], limit=1)["sessions"] != 1000:
            polls += 1
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        after = node1.stats()["presence"]
        commands = after["redis_commands"] - before["redis_commands"] - (polls + 1)
        changes = after["redis_changes"] - before["redis_changes"]
        # The user, company and site channel of each session (and of earlier tests' sessions
        # whose leave delay ends meanwhile).
        self.assertGreaterEqual(changes, 3000)
        # A command per flush window (heartbeats included), not one per session.
        self.assertLess(commands, 100)
        # But none of more than 500 changes (~16 KB): a larger one takes Redis several turns
        # to read, and the node's heartbeat waits behind it.
        sizes = []
        for entry in self.redis.command("SLOWLOG", "GET", "100000"):
            args = [a.decode(errors="replace") for a in entry[3]]
            if len(args) > 3 and args[0].startswith("EVAL") and args[3] == "apply":
                more = int(args[-1].split("(")[1].split()[0]) if args[-1].startswith("...") else 0
                sizes.append((len(args) - (1 if more else 0) + more - 6) // 3)
        self.assertGreaterEqual(sum(sizes), 3000, sizes)
        self.assertLessEqual(max(sizes), 500, sizes)
        print("\n  1,000 session opens at once: %d presence commands to Redis, the largest "
              "apply of %d changes" % (commands, max(sizes)))


class TwoShards(PresenceMixin, ScopedTestCase):
    """Two nodes, each with both of two redis-servers as shards: a channel's counts live on
    its shard, a batch query asks both."""

    @classmethod
    def setUpClass(cls):
        unittest.TestCase.setUpClass.__func__(cls)
        cls.redis, cls.nodes, cls._class_gw = [], [], None
        try:
            cls.redis = [redisfix.RedisServer().start() for _ in range(2)]
            engines = []
            for r in cls.redis:
                engines += ["--engine", r.url]
            for _ in range(2):
                gw = ScopedGateway(*(engines + ["--presence-leave-delay-ms", "0"])).start()
                cls.nodes.append(gw)
                gw.wait_publish_status(202)
            cls._class_gw = cls.nodes[0]
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        nodes, redis = cls.nodes, cls.redis
        cls.nodes, cls.redis, cls._class_gw = [], [], None
        unittest.TestCase.tearDownClass.__func__(cls)
        gwtest.stop_all(*nodes, *redis)

    def test_batch_answers_from_both_shards(self):
        by_shard = {0: [], 1: []}
        while min(len(v) for v in by_shard.values()) < 4:
            c = unique("c")
            by_shard[shard_of("client:%s:%s" % (self.site, c), 2)].append(c)
        companies = by_shard[0][:4] + by_shard[1][:4]
        want, sessions = {}, []
        for i, c in enumerate(companies):
            users = {}
            for j in range(i % 3 + 1):
                u = unique("u")
                for k in range(j + 1):
                    sessions.append(self.user_session(
                        TRANSPORTS[(i + j + k) % 3], gw=self.nodes[k % 2], sub=u, client=c))
                users[u] = j + 1
            want[c] = {"sessions": sum(users.values()), "users": users}
        for gw in self.nodes:
            self.wait_presence(gw, "client", companies, {"results": want})
            # The site's channel may live on the other shard, whose apply can land later.
            self.wait_presence(gw, "global", [],
                               {"sessions": len(sessions),
                                "users_count": sum(len(w["users"]) for w in want.values())})
        for s in sessions:
            s.close()
        for gw in self.nodes:
            self.wait_presence(gw, "global", [], {"sessions": 0, "users_count": 0})


if __name__ == "__main__":
    gwtest.main()
