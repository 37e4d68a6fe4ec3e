#!/usr/bin/python3
"""Several gateway nodes joined by real Redis (private redis-server processes on free loopback
ports, started and stopped by the tests).

Checked: a publish through node 1's API reaches sessions on node 2 over websocket,
xhr_streaming and xhr polling, and node 1's own sessions, exactly once each; sequence numbers
are consistent across nodes and kept in Redis (`sockjs-gateway:chan:<channel>`, expiring);
two Redis shards (both nodes configured with both) with users spread over them by FNV-1a of the
channel name; a backend PUBLISHing straight into `sockjs-gateway:publish` (seq null) on any
instance; malformed messages in that channel are counted and do not disturb delivery; Redis
killed → 503 from the API, Redis back on the same port → the nodes recover and deliver.

Readiness is awaited, not slept for: PUBSUB NUMSUB shows the nodes' subscriptions, the API
answers 202 once the engine takes publishes (both polled with a deadline, as there is no event
to wait for).

Connectivity (issue 14): a password (`requirepass`, percent-encoded in the URL), an ACL user
(`ACL SETUSER`, AUTH USER PASSWORD), a unix socket, the host name `localhost`, a database `/N`
(the counters land in db N); a wrong password is one clear log line and retries with backoff
(WRONGPASS errors counted by Redis stay few), /readyz 503 meanwhile, and fixing the password on
the Redis side lets the node in; URLs refused at start (exit 2, a message). No password ever
appears in a gateway's log (debug level), /api/stats or a start error.

Spec: docs/PROTOCOL.md "Redis", "Publish API" (503), "Gateway → browser" (seq); deploy/README.md
"Redis".
"""

import json
import os
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import uuid

import gwtest
import redisfix
import scopedfix
from scopedfix import TRANSPORTS, ScopedGateway, ScopedTestCase, publish_body, unique

CHANNEL = "sockjs-gateway:publish"
SEQ_TTL_S = 24 * 3600


def fnv1a32(text):
    h = 0x811C9DC5
    for b in text.encode("utf-8"):
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def shard_of(channel, n):
    return fnv1a32(channel) % n


class Cluster(ScopedTestCase):
    """`cls.redis` (list of RedisServer) and `cls.nodes` (list of ScopedGateway, each with
    every Redis as an engine), started once per class; self.gw is node 1."""

    n_redis = 1
    n_nodes = 2
    node_args = ()

    @classmethod
    def setUpClass(cls):
        unittest.TestCase.setUpClass.__func__(cls)
        cls.redis, cls.nodes, cls._class_gw = [], [], None
        try:
            cls.redis, cls.nodes = start_cluster(cls.n_redis, cls.n_nodes, cls.node_args)
            cls._class_gw = cls.nodes[0]
        except BaseException:
            stop_cluster(cls.redis, cls.nodes)
            raise

    @classmethod
    def tearDownClass(cls):
        nodes, cls.nodes, cls._class_gw = cls.nodes, [], None
        stop_cluster(cls.redis, nodes)
        unittest.TestCase.tearDownClass.__func__(cls)

    def publish_and_collect(self, sessions, body, node=None):
        """Publish `body` on `node` (node 1), then one marker per user channel of `sessions`;
        returns each session's messages before its marker."""
        node = node or self.nodes[0]
        node.publish(body)
        marks = {}
        for s in sessions:
            if (s.site, s.sub) not in marks:
                marks[(s.site, s.sub)] = mark = "marker-" + uuid.uuid4().hex
                node.publish(publish_body("user", s.site, "marker", mark, ids=[s.sub]))
        out = []
        for s in sessions:
            got = self.receive_until(s, marks[(s.site, s.sub)])
            out.append(got[:-1])
        return out


def start_cluster(n_redis, n_nodes, node_args=()):
    redis, nodes = [], []
    try:
        for _ in range(n_redis):
            redis.append(redisfix.RedisServer().start())
        engines = []
        for r in redis:
            engines += ["--engine", r.url]
        for _ in range(n_nodes):
            nodes.append(ScopedGateway(*(engines + list(node_args))).start())
        wait_cluster_ready(redis, nodes)
    except BaseException:
        stop_cluster(redis, nodes)
        raise
    return redis, nodes


def wait_cluster_ready(redis, nodes):
    for r in redis:
        r.wait_subscribers(CHANNEL, len(nodes))
    for n in nodes:
        n.wait_publish_status(202)


def stop_cluster(redis, nodes):
    errors = []
    for n in nodes:
        try:
            n.stop()
        except Exception as e:
            errors.append(e)
    for r in redis:
        r.stop()
    if errors:
        raise errors[0]


class TwoNodes(Cluster):
    def test_publish_on_node1_reaches_both_nodes_on_every_transport(self):
        node1, node2 = self.nodes
        client = unique("c")
        sub = unique("u")
        sessions = []
        for gw in (node2, node1):
            for t in TRANSPORTS:
                sessions.append(self.user_session(t, gw=gw, sub=sub, client=client))
        for scope, ids in (("user", [sub]), ("client", [client]), ("global", None)):
            with self.subTest(scope=scope):
                got = self.publish_and_collect(sessions, publish_body(
                    scope, self.site, scope + ".event", {"via": "node1"}, ids=ids))
                for s, msgs in zip(sessions, got):
                    self.assertEqual(len(msgs), 1, (s.transport, s.gw is node2, msgs))
                    self.assertEvent(msgs[0], scope, self.site, scope + ".event",
                                     {"via": "node1"}, 1)

    def test_isolation_across_nodes(self):
        node1, node2 = self.nodes
        a = self.user_session(gw=node2)
        b = self.user_session("xhr_streaming", gw=node2, site=unique("other"))
        got = self.publish_and_collect([a, b], publish_body("user", self.site, "x", 1,
                                                            ids=[unique("u")]))
        self.assertEqual(got, [[], []])
        got = self.publish_and_collect([a, b], publish_body("global", self.site, "g", 1))
        self.assertEqual([len(m) for m in got], [1, 0], got)

    def test_seq_consistent_across_nodes(self):
        node1, node2 = self.nodes
        sub = unique("u")
        s1 = self.user_session(gw=node1, sub=sub)
        s2 = self.user_session("xhr_polling", gw=node2, sub=sub)
        for i in range(6):
            (node1 if i % 2 == 0 else node2).publish(
                publish_body("user", self.site, "n", i, ids=[sub]))
            for s in (s1, s2):
                self.assertEvent(s.next_message(), "user", self.site, "n", i, i + 1)
        key = "sockjs-gateway:chan:user:%s:%s" % (self.site, sub)
        r = self.redis[0]
        self.assertEqual(int(r.command("HGET", key, "s")), 6)
        ttl = r.command("TTL", key)
        self.assertGreater(ttl, 0, "seq counter %s does not expire" % key)
        self.assertLessEqual(ttl, SEQ_TTL_S)

    def test_multi_id_publish_seqs_per_channel(self):
        node1, node2 = self.nodes
        a = self.user_session(gw=node2)
        b = self.user_session(gw=node2)
        node1.publish(publish_body("user", self.site, "first", 0, ids=[a.sub]))
        self.assertEvent(a.next_message(), "user", self.site, "first", 0, 1)
        node1.publish(publish_body("user", self.site, "both", 1, ids=[a.sub, b.sub]))
        self.assertEvent(a.next_message(), "user", self.site, "both", 1, 2)
        self.assertEvent(b.next_message(), "user", self.site, "both", 1, 1)

    def test_direct_redis_publish_has_seq_null(self):
        node1, node2 = self.nodes
        sub = unique("u")
        sessions = [self.user_session(t, gw=gw, sub=sub) for gw in (node2, node1)
                    for t in TRANSPORTS]
        body = publish_body("user", self.site, "from.backend", {"direct": True}, ids=[sub])
        receivers = self.redis[0].command("PUBLISH", CHANNEL, json.dumps(body))
        self.assertEqual(receivers, 2)
        for s in sessions:
            self.assertEvent(s.next_message(), "user", self.site, "from.backend",
                             {"direct": True}, None)
        # The API's numbering of that channel is not disturbed by it.
        node1.publish(publish_body("user", self.site, "via.api", 1, ids=[sub]))
        for s in sessions:
            self.assertEvent(s.next_message(), "user", self.site, "via.api", 1, 1)

    def test_malformed_redis_messages_counted_delivery_unharmed(self):
        node1, node2 = self.nodes
        s = self.user_session("xhr_streaming", gw=node2)
        before = [scopedfix.stat_sum(n.stats(), "malformed") for n in self.nodes]
        bad = ["not json", "", "[]", "null", '{"scope": "nope", "site": "x", "event": "e"}',
               json.dumps(publish_body("user", self.site, "e", ids=None)),
               json.dumps(publish_body("global", self.site, "e", ids=[s.sub])),
               '{"scope": "user", "site": "%s", "ids": ["%s"], "event": 5}' % (self.site,
                                                                               s.sub),
               "\xff\xfe binary",
               # Over --max-publish-channels (2 sites x 10,000 ids), refused like by the API.
               json.dumps(publish_body("user", None, "e", ids=[s.sub] + ["f%d" % i for i in
                                                                   range(9999)],
                                       sites=[self.site, "other"])),
               # A site that would alias another site's channels.
               json.dumps(publish_body("user", self.site + ":x", "e", ids=["y"]))]
        with self.redis[0].client() as r:
            for b in bad:
                self.assertEqual(r.command("PUBLISH", CHANNEL, b), 2)
            good = publish_body("user", self.site, "good", "after garbage", ids=[s.sub])
            r.command("PUBLISH", CHANNEL, json.dumps(good))
        # Heard in order on one subscription: once the good one is delivered, the bad ones
        # have been handled.
        self.assertEvent(s.next_message(), "user", self.site, "good", "after garbage", None)
        self.publish_and_collect([s], publish_body("global", self.site, "g", 1))
        after = [scopedfix.stat_sum(n.stats(), "malformed") for n in self.nodes]
        for n, (b, a) in enumerate(zip(before, after)):
            self.assertGreaterEqual(a - b, len(bad), "node %d malformed %d -> %d: %s"
                                    % (n + 1, b, a, self.nodes[n].stats()))
        for n in self.nodes:
            n.assert_alive()


class TwoShards(Cluster):
    n_redis = 2

    def test_users_spread_over_shards_all_receive(self):
        node1, node2 = self.nodes
        users = [unique("u") for _ in range(24)]
        shards = [shard_of("user:%s:%s" % (self.site, u), 2) for u in users]
        self.assertEqual(set(shards), {0, 1}, "pick other ids: all on one shard")
        sessions = [self.user_session(("websocket", "xhr_streaming")[i % 2], gw=node2, sub=u)
                    for i, u in enumerate(users)]
        node1.publish(publish_body("user", self.site, "spread", "x", ids=users))
        node2.publish(publish_body("user", self.site, "spread", "y", ids=users))
        for s in sessions:
            self.assertEvent(s.next_message(), "user", self.site, "spread", "x", 1)
            self.assertEvent(s.next_message(), "user", self.site, "spread", "y", 2)
        # No marker here: markers on user channels may sit on the other shard, and nothing
        # orders messages across shards. The global event must simply be each one's next.
        node1.publish(publish_body("global", self.site, "g", 0))
        for s in sessions:
            m = s.next_message()
            self.assertEqual((m["scope"], m["event"], m["seq"]), ("global", "g", 1))

    def test_seq_counter_on_the_channels_shard(self):
        node1, _ = self.nodes
        users = [unique("u") for _ in range(8)]
        node1.publish(publish_body("user", self.site, "e", None, ids=users))
        node1.publish(publish_body("global", self.site, "e", None))
        channels = ["user:%s:%s" % (self.site, u) for u in users] + ["global:" + self.site]
        for ch in channels:
            k = shard_of(ch, 2)
            key = "sockjs-gateway:chan:" + ch
            self.assertEqual(self.redis[k].command("HGET", key, "s"), b"1", (ch, k))
            self.assertIsNone(self.redis[1 - k].command("HGET", key, "s"), (ch, 1 - k))

    def test_direct_publish_on_either_shard(self):
        node1, node2 = self.nodes
        s1 = self.user_session(gw=node1)
        s2 = self.user_session("xhr_polling", gw=node2, sub=s1.sub)
        for k, r in enumerate(self.redis):
            body = publish_body("user", self.site, "direct", k, ids=[s1.sub])
            self.assertEqual(r.command("PUBLISH", CHANNEL, json.dumps(body)), 2)
            for s in (s1, s2):
                self.assertEvent(s.next_message(), "user", self.site, "direct", k, None)
        # Global and user channels may sit on different shards: no marker, just the next one.
        node1.publish(publish_body("global", self.site, "g", 0))
        for s in (s1, s2):
            self.assertEvent(s.next_message(), "global", self.site, "g", 0, 1)


class Outage(ScopedTestCase):
    """Redis killed under two nodes, then restarted on the same port."""

    per_test_gateway = True

    def setUp(self):
        self.site = unique("site")
        self._log_mark = 0
        self.redis, self.nodes = start_cluster(1, 2)
        self.addCleanup(stop_cluster, self.redis, self.nodes)
        self.gw = self.nodes[0]

    def test_503_while_down_then_recovery(self):
        node1, node2 = self.nodes
        r = self.redis[0]
        sub = unique("u")
        before = [self.user_session(t, gw=node2, sub=sub) for t in TRANSPORTS]
        node1.publish(publish_body("user", self.site, "before", 0, ids=[sub]))
        for s in before:
            self.assertEvent(s.next_message(), "user", self.site, "before", 0, 1)

        r.kill()
        for n in self.nodes:
            resp = n.wait_publish_status(503)
            self.assertEqual(resp.json(), {"error": "engine unavailable"})
        stats = node1.stats()
        self.assertTrue(any("engine" in k for k in scopedfix.stat_names(stats)), stats)
        for n in self.nodes:
            n.assert_alive()

        r.start()
        for n in self.nodes:
            n.wait_publish_status(202, timeout=30)
        r.wait_subscribers(CHANNEL, 2, timeout=30)
        node1.publish(publish_body("user", self.site, "after", 1, ids=[sub]))
        for s in before:
            got = [(m["event"], m["data"]) for m in s.messages(1, timeout=15)]
            self.assertEqual(got, [("after", 1)], s.transport)
        # Opened only once "after 1" has been delivered, so that it cannot see it.
        after = self.user_session("websocket", gw=node2, sub=sub)
        node2.publish(publish_body("user", self.site, "after", 2, ids=[sub]))
        for s in before:
            got = [(m["event"], m["data"]) for m in s.messages(1, timeout=15)]
            self.assertEqual(got, [("after", 2)], s.transport)
        self.assertEvent(after.next_message(), "user", self.site, "after", 2)


def seq_key(channel):
    return "sockjs-gateway:chan:" + channel


def db_command(redis, db, *args):
    """One command on database `db` of `redis`."""
    with redis.client() as c:
        c.command("SELECT", db)
        return c.command(*args)


class Connectivity(ScopedTestCase):
    """One Redis and one node per test, the node reaching Redis by the URL under test. Every
    secret a test uses is checked to be absent from the node's whole log (debug level) and its
    /api/stats."""

    per_test_gateway = True

    def setUp(self):
        self.site = unique("site")
        self._log_mark = 0
        self.secrets = []

    def start_redis(self, password=None, **kw):
        args = list(kw.pop("args", ()))
        if password is not None:
            args += ["--requirepass", password]
            self.secrets.append(password)
        r = redisfix.RedisServer(args=args, password=password, **kw).start()
        self.addCleanup(r.stop)
        return r

    def start_node(self, url, env=None):
        args = ("--engine", url) if url else ()
        node = ScopedGateway(*args, "--log-level", "debug", env=env).start()
        self.addCleanup(self.assert_no_secret, node)
        self.addCleanup(node.stop)
        self.gw = node
        return node

    def assert_no_secret(self, node):
        log = "\n".join(node.log_lines())
        for secret in self.secrets:
            self.assertNotIn(secret, log)
            self.assertNotIn(urllib.parse.quote(secret, safe=""), log)

    def assert_publishes_numbered(self, node, redis, db=0):
        """The node takes publishes, and their counter is in database `db`."""
        node.wait_publish_status(202)
        channel = "global:" + self.site
        node.publish(publish_body("global", self.site, "e", 1))
        self.assertEqual(db_command(redis, db, "HGET", seq_key(channel), "s"), b"1")
        stats = json.dumps(node.stats())
        for secret in self.secrets:
            self.assertNotIn(secret, stats)

    def test_requirepass_with_a_percent_encoded_password(self):
        password = "p@ss:w/rd %s!" % uuid.uuid4().hex
        r = self.start_redis(password)
        url = "redis://:%s@127.0.0.1:%d" % (urllib.parse.quote(password, safe=""), r.port)
        node = self.start_node(url)
        line = node.wait_log(r"INFO redis .*: connected")
        self.assertIn("redis://:***@127.0.0.1:%d" % r.port, line)
        # Both connections authenticated: the subscriber one hears, the command one numbers.
        r.wait_subscribers(CHANNEL, 1)
        s = self.user_session()
        node.publish(publish_body("user", self.site, "auth", "ok", ids=[s.sub]))
        self.assertEvent(s.next_message(), "user", self.site, "auth", "ok", 1)
        self.assert_publishes_numbered(node, r)

    def test_password_in_the_environment_and_a_config_file(self):
        # ',' splits SOCKJS_GATEWAY_ENGINE into shards and '#' starts a comment: encoded, both
        # stay in the password.
        password = "a,b#c %s" % uuid.uuid4().hex
        r = self.start_redis(password)
        url = "redis://:%s@127.0.0.1:%d" % (urllib.parse.quote(password, safe=""), r.port)
        node = self.start_node(None, env={"SOCKJS_GATEWAY_ENGINE": url})
        self.assert_publishes_numbered(node, r)
        node.stop()
        with tempfile.NamedTemporaryFile("w", suffix=".conf") as conf:
            conf.write("# the engine\nengine = %s\n" % url)
            conf.flush()
            node = self.start_node(None, env={"SOCKJS_GATEWAY_CONFIG": conf.name})
            self.site = unique("site")
            self.assert_publishes_numbered(node, r)

    def test_acl_user(self):
        admin = "admin-" + uuid.uuid4().hex
        user_password = "user-" + uuid.uuid4().hex
        r = self.start_redis(admin)
        self.secrets.append(user_password)
        self.assertEqual(r.command("ACL", "SETUSER", "gateway", "on", ">" + user_password,
                                   "~sockjs-gateway:*", "&*", "+@all"), "OK")
        node = self.start_node("redis://gateway:%s@127.0.0.1:%d" % (user_password, r.port))
        node.wait_log(r"redis redis://gateway:\*\*\*@127\.0\.0\.1:%d: connected" % r.port)
        r.wait_subscribers(CHANNEL, 1)
        clients = r.command("CLIENT", "LIST").decode()
        self.assertEqual(clients.count(" user=gateway "), 3, clients)
        self.assert_publishes_numbered(node, r)

    def test_unix_socket_and_db(self):
        r = self.start_redis(unix_socket=True)
        node = self.start_node("unix://%s?db=2" % r.socket_path)
        r.wait_subscribers(CHANNEL, 1)
        self.assert_publishes_numbered(node, r, db=2)
        self.assertIsNone(r.command("HGET", seq_key("global:" + self.site), "s"))
        clients = r.command("CLIENT", "LIST").decode()
        # The command and side connections; the subscriber's has no database.
        self.assertEqual(clients.count(" db=2 "), 2, clients)

    def test_host_name_and_db(self):
        r = self.start_redis()
        node = self.start_node("redis://localhost:%d/3" % r.port)
        node.wait_log(r"redis redis://localhost:%d/3: connected" % r.port)
        self.assert_publishes_numbered(node, r, db=3)
        self.assertIsNone(r.command("HGET", seq_key("global:" + self.site), "s"))

    def test_ipv6_address(self):
        r = self.start_redis(args=["--bind", "127.0.0.1 ::1"])
        node = self.start_node("redis://[::1]:%d/1" % r.port)
        node.wait_log(r"redis redis://\[::1\]:%d/1: connected" % r.port)
        self.assert_publishes_numbered(node, r, db=1)
        clients = r.command("CLIENT", "LIST").decode()
        self.assertEqual(clients.count(" addr=[::1]:"), 3, clients)

    def test_a_refused_select_is_logged_and_retried(self):
        r = self.start_redis(args=["--databases", "4"])
        node = self.start_node("redis://127.0.0.1:%d/7" % r.port)
        line = node.wait_log(r"WARN redis .*: cannot connect")
        self.assertIn("SELECT refused", line)
        self.assertIn("out of range", line)
        self.assertEqual(node.publish_raw(publish_body("global", self.site, "e", 1)).status,
                         503)
        node.assert_alive()

    def test_an_unresolvable_host_name_is_logged_and_retried(self):
        node = self.start_node("redis://redis-gateway-test.invalid:6379/1")
        # Answered NXDOMAIN where a DNS server answers, timed out where none does.
        failed = r"(cannot resolve redis-gateway-test\.invalid|timed out resolving)"
        line = node.wait_log(r"WARN redis redis://redis-gateway-test\.invalid:6379/1: "
                             r"cannot connect \(" + failed, timeout=15)
        mark = node.log_mark()
        node.wait_log(r"DEBUG redis .*connection down \(" + failed, since=mark, timeout=15)
        health = gwtest.request(node.port, "GET", "/readyz")
        self.assertEqual((health.status, health.text), (503, "engine unavailable\n"), line)
        node.assert_alive()

    def test_wrong_password_backs_off_then_connects_once_fixed(self):
        right = "right-" + uuid.uuid4().hex
        wrong = "wrong-" + uuid.uuid4().hex
        self.secrets.append(wrong)
        r = self.start_redis(right)
        node = self.start_node("redis://:%s@127.0.0.1:%d" % (wrong, r.port))
        line = node.wait_log(r"WARN redis .*: cannot connect")
        self.assertIn("redis://:***@127.0.0.1:%d" % r.port, line)
        self.assertIn("AUTH refused: WRONGPASS", line)
        mark = node.log_mark()
        health = gwtest.request(node.port, "GET", "/readyz")
        self.assertEqual((health.status, health.text), (503, "engine unavailable\n"))

        # Retries back off: over this window, a busy loop would make thousands of attempts;
        # the backoff (100 ms doubling to 5 s, two connections) makes a dozen at most.
        def wrongpass_errors():
            return int(r.info("errorstats").get("errorstat_WRONGPASS", "count=0")
                       .split("=")[1].split(",")[0])
        before, start = wrongpass_errors(), time.monotonic()
        time.sleep(3)  # the measurement's window, not a synchronisation
        attempts = wrongpass_errors() - before
        self.assertGreaterEqual(attempts, 1)
        self.assertLessEqual(attempts, 16, "%d AUTH attempts in %.1f s"
                             % (attempts, time.monotonic() - start))
        node.assert_alive()
        # One line for the reason, not one per attempt.
        self.assertEqual([l for l in node.log_lines(mark) if "WARN redis" in l], [])

        # The operator fixes Redis' side: the node gets in on its next attempt.
        r.command("CONFIG", "SET", "requirepass", wrong)
        r.password = wrong
        node.wait_log(r"INFO redis .*: connected", since=mark, timeout=15)
        self.assertEqual(gwtest.request(node.port, "GET", "/readyz").status, 200)
        self.assert_publishes_numbered(node, r)


class RefusedAtStart(unittest.TestCase):
    """Engine URLs that cannot work: exit status 2 and a message naming the URL masked."""

    def run_gateway(self, url):
        # --allow-anonymous: without it (or a secret) the gateway refuses to start earlier.
        return subprocess.run([gwtest.gateway_binary(), "--listen", "127.0.0.1:0",
                               "--allow-anonymous", "--engine", url],
                              capture_output=True, text=True, timeout=20)

    def test_refused_urls(self):
        cases = [
            ("rediss://:tls-secret@127.0.0.1:6380", "rediss://:***@127.0.0.1:6380",
             "TLS"),
            ("redis://:port-secret@127.0.0.1:99999", "redis://:***@127.0.0.1:99999",
             "bad port"),
            ("redis://127.0.0.1:6379/x", "redis://127.0.0.1:6379/x", "bad database"),
            ("redis://gw:db-secret@127.0.0.1:6379/-1", "redis://gw:***@127.0.0.1:6379/-1",
             "bad database"),
            ("unix://relative.sock", "unix://relative.sock", "absolute"),
            ("garbage:garbage-secret@x", "garbage:***@x", "expected 'local'"),
        ]
        for url, masked, reason in cases:
            with self.subTest(url=url):
                r = self.run_gateway(url)
                out = r.stdout + r.stderr
                self.assertEqual(r.returncode, 2, out)
                self.assertIn(masked, out)
                self.assertIn(reason, out)
                self.assertNotIn("secret", out)

    def test_help_lists_the_forms_and_no_configured_password(self):
        env = dict(os.environ, SOCKJS_GATEWAY_ENGINE="redis://:help-secret@127.0.0.1:6379")
        r = subprocess.run([gwtest.gateway_binary(), "--help"], capture_output=True, text=True,
                           timeout=20, env=env)
        self.assertEqual(r.returncode, 0)
        self.assertNotIn("help-secret", r.stdout + r.stderr)
        for form in ("redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]", "unix://", "rediss://"):
            self.assertIn(form, r.stdout)


if __name__ == "__main__":
    gwtest.main()
