"""Descriptor exhaustion (issue 9, observation 1): under a small open-files limit, a flood of idle
TCP connections must neither kill the gateway nor disturb the sessions it has. Past
--max-connections (default: the limit less 64) new connections get a 503 and are closed; if the
process runs out of descriptors anyway, accepting pauses (no busy loop) and resumes by itself."""

import time
import unittest

import gwtest
import scopedfix
from gwtest import Conn, read_response, request
from scopedfix import ScopedGateway, token_for, unique

NOFILE = 256
FLOOD = 400


class ExhaustionTestCase(unittest.TestCase):
    def start(self, *args):
        gw = ScopedGateway(*args)
        gw.nofile = NOFILE
        gw.start()
        self.addCleanup(gw.stop)
        return gw

    def user_session(self, gw):
        site, sub, client = unique("site"), unique("u"), unique("c")
        s = scopedfix.Session(gw, "websocket", token=token_for(site, sub, client))
        self.addCleanup(s.close)
        s.expect_open()
        s.site, s.sub = site, sub
        return s

    def assertDelivered(self, gw, session, marker):
        gw.publish({"scope": "user", "site": session.site, "ids": [session.sub],
                    "event": "probe", "data": marker})
        m = session.next_message()
        self.assertEqual((m["event"], m["data"]), ("probe", marker), m)

    def assertRoundTrip(self, session):
        """The session is served: a malformed message is answered with an error message."""
        session.send_text("not json")
        m = session.next_message()
        self.assertIn("error", m)

    def flood(self, gw, n=FLOOD):
        conns = [Conn(gw.port) for _ in range(n)]
        self.addCleanup(lambda: [c.close() for c in conns])
        return conns


class ConnectionLimit(ExhaustionTestCase):
    def test_flood_past_the_default_limit_gets_503_and_sessions_keep_working(self):
        gw = self.start()
        session = self.user_session(gw)
        limit = gw.stats()["listener"]["max"]
        self.assertEqual(limit, NOFILE - 64)
        mark = gw.log_mark()
        conns = self.flood(gw)
        gw.wait_log(r"connection refused: \d+ connections open \(--max-connections %d\)" % limit,
                    since=mark)
        # The API keeps its descriptors (the reserve): the session still gets publishes.
        self.assertDelivered(gw, session, "during the flood")
        self.assertRoundTrip(session)
        # Connections are accepted in the order they were made: those past the limit (the
        # session holds one) were answered and closed.
        accepted = limit - 1
        for c in conns[accepted:]:
            r = read_response(c)
            self.assertEqual((r.status, r.body), (503, b"Too many connections\n"), r)
            self.assertEqual(r.header("Connection"), "close")
        listener = gw.stats()["listener"]
        self.assertEqual(listener["refused_limit"], FLOOD - accepted, listener)
        self.assertEqual(listener["open"], limit, listener)
        for c in conns[:accepted]:
            c.close()
        # Below the limit again: new sessions open.
        fresh = self.user_session(gw)
        self.assertDelivered(gw, fresh, "after the flood")
        self.assertDelivered(gw, session, "after the flood")

    def test_explicit_limit(self):
        gw = self.start("--max-connections", "5")
        conns = self.flood(gw, 8)
        for c in conns[5:]:
            self.assertEqual(read_response(c).status, 503)
        self.assertEqual(gw.stats()["listener"]["refused_limit"], 3)


class DescriptorExhaustion(ExhaustionTestCase):
    HOLD = 2.0

    def test_out_of_descriptors_pauses_accepting_without_spinning(self):
        # A limit above what the process can hold: accept() itself fails with EMFILE.
        gw = self.start("--max-connections", "100000")
        session = self.user_session(gw)
        mark = gw.log_mark()
        conns = self.flood(gw)
        gw.wait_log(r"accept failed: Too many open files .*accepting paused", since=mark)
        # Held at the limit: the open session is fully served, and the process idles (a
        # retry loop would burn a core).
        cpu_before = gw.cpu_seconds()
        held_since = time.monotonic()
        while time.monotonic() - held_since < self.HOLD:
            self.assertRoundTrip(session)
            time.sleep(0.25)  # the time under test, not a synchronisation
        cpu = gw.cpu_seconds() - cpu_before
        self.assertLess(cpu, 0.1 * self.HOLD, "gateway used %.2f s of CPU in %.1f s at the "
                        "descriptor limit" % (cpu, self.HOLD))
        gw.assert_alive()
        # Descriptors come back: accepting resumes by itself, and what waited in the backlog
        # is served.
        freed_at = time.monotonic()
        for c in conns:
            c.close()
        r = request(gw.port, "GET", "/sockjs/info", timeout=10)
        self.assertEqual(r.status, 200)
        print("\n  accepting again %.0f ms after descriptors were freed; %.3f s CPU in %.1f s "
              "at the limit" % ((time.monotonic() - freed_at) * 1000, cpu, self.HOLD))
        listener = gw.stats()["listener"]
        self.assertGreaterEqual(listener["accept_pauses"], 1, listener)
        self.assertDelivered(gw, session, "after exhaustion")


if __name__ == "__main__":
    gwtest.main()
