"""Graceful drain on SIGTERM/SIGINT (issue 9, observation 5): every session gets the SockJS close
frame c[1001,"Going away"] on its transport (websocket: then a close frame 1001; streams: then
their final chunk; a waiting poll: as its answer), new requests get 503, the closes are spread
over --drain-ms, then the process exits 0. A second signal exits at once."""

import signal
import time
import unittest

import gwtest
from gwtest import (BodyReader, Conn, EventSourceStream, Gateway, WebSocket, XhrSession,
                    XhrStream, build_request, close_frame, read_response, read_response_head,
                    request, session_url)

GOING_AWAY = close_frame(1001, "Going away")


class DrainTestCase(unittest.TestCase):
    def start(self, *args):
        gw = Gateway(*args).start()
        self.addCleanup(gw.stop)
        return gw

    def assertExitsZero(self, gw, timeout=gwtest.STOP_TIMEOUT):
        status = gw.wait_exit(timeout)
        self.assertEqual(status, 0, gw.log_text())


class EveryTransport(DrainTestCase):
    def test_every_session_gets_going_away_then_exit_0(self):
        gw = self.start("--drain-ms", "0")
        ws = WebSocket.connect(gw.port, session_url("/echo") + "/websocket")
        self.assertEqual(ws.recv_sockjs(), "o")
        raw = WebSocket.connect(gw.port, "/echo/websocket")
        stream_url = session_url("/echo")
        stream = XhrStream(gw, stream_url)
        self.assertEqual(stream.frame(), "o")
        es_url = session_url("/echo")
        es = EventSourceStream(gw, es_url)
        self.assertEqual(es.frame(), "o")
        # A poll waiting for messages, and a session between two polls.
        waiting = XhrSession(gw).open()
        poll = waiting.start_poll()
        between = XhrSession(gw).open()
        # A keep-alive connection with nothing in flight.
        idle = gw.connect()
        idle.send(build_request("GET", "/echo/info"))
        self.assertEqual(read_response(idle).status, 200)
        mark = gw.log_mark()
        # The poll must be attached before the signal: its session answers a second poll
        # with 2010 once it is.
        self.assertEqual(waiting.poll(), gwtest.ANOTHER)

        gw.signal(signal.SIGTERM)
        gw.wait_log(r"draining: \d+ connections", since=mark)

        code, reason, before = ws.expect_close()
        self.assertEqual((code, reason), (1001, "Going away"))
        self.assertEqual([p for _, p in before], [GOING_AWAY.encode()])
        code, reason, _ = raw.expect_close()
        self.assertEqual((code, reason), (1001, "Going away"))
        self.assertEqual(stream.frame(), GOING_AWAY)
        stream.expect_end()
        self.assertEqual(es.frame(), GOING_AWAY)
        es.expect_end()
        r = read_response(poll)
        self.assertEqual((r.status, r.body), (200, (GOING_AWAY + "\n").encode()))
        # Its head was written before the drain began; the connection closes after it.
        self.assertTrue(poll.is_closed(), "the poll's connection stays open")
        self.assertTrue(idle.is_closed(), "an idle keep-alive connection stays open")
        self.assertExitsZero(gw)
        # The session between polls had no receiver to tell: Draining covers its next poll.
        for c in (ws.conn, raw.conn, stream.conn, es.conn, poll, idle):
            c.close()

    def test_sigint_drains_too(self):
        gw = self.start("--drain-ms", "0")
        ws = WebSocket.connect(gw.port, session_url("/echo") + "/websocket")
        self.assertEqual(ws.recv_sockjs(), "o")
        gw.signal(signal.SIGINT)
        code, reason, before = ws.expect_close()
        self.assertEqual((code, reason), (1001, "Going away"))
        self.assertEqual([p for _, p in before], [GOING_AWAY.encode()])
        self.assertExitsZero(gw)


class Draining(DrainTestCase):
    """While the drain lasts (a long --drain-ms keeps it going), what new requests get."""

    def setUp(self):
        self.gw = self.start("--drain-ms", "60000")
        # One session keeps the drain from ending at once: it is told last of two... both
        # are told within the 60 s window, so for this test's few seconds they stay open.
        self.keep = [WebSocket.connect(self.gw.port, session_url("/echo") + "/websocket")
                     for _ in range(50)]
        for ws in self.keep:
            self.assertEqual(ws.recv_sockjs(), "o")
        self.between = XhrSession(self.gw).open()
        mark = self.gw.log_mark()
        self.gw.signal(signal.SIGTERM)
        self.gw.wait_log(r"draining: \d+ connections", since=mark)

    def tearDown(self):
        for ws in self.keep:
            ws.conn.close()
        # The second signal: at once, status 0, without waiting for the 60 s window.
        mark = self.gw.log_mark()
        started = time.monotonic()
        self.gw.signal(signal.SIGTERM)
        self.gw.wait_log(r"again: stopping without finishing the drain", since=mark)
        self.assertExitsZero(self.gw, timeout=10)
        self.assertLess(time.monotonic() - started, 10)

    def assert503(self, r):
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.header("Retry-After"), "1")
        self.assertEqual(r.header("Connection"), "close")
        self.assertEqual(r.body, b"Server shutting down\n")

    def test_new_requests_get_503(self):
        self.assert503(request(self.gw.port, "GET", "/echo/info"))
        self.assert503(request(self.gw.port, "GET", "/echo"))
        self.assert503(request(self.gw.port, "POST", session_url("/echo") + "/xhr"))
        self.assert503(request(self.gw.port, "GET", "/static/sockjs.min.js"))
        self.assert503(request(self.gw.port, "GET", "/static/sockjs-gateway.js"))
        with self.assertRaises(gwtest.HandshakeError) as e:
            WebSocket.connect(self.gw.port, session_url("/echo") + "/websocket")
        self.assertEqual(e.exception.response.status, 503)

    def test_keep_alive_connection_gets_503_then_closes(self):
        c = self.gw.connect()
        c.send(build_request("GET", "/echo/info"))
        self.assert503(read_response(c))
        self.assertTrue(c.is_closed())

    def test_poll_of_live_session_gets_its_close_frame(self):
        self.assertEqual(self.between.poll(), GOING_AWAY)
        # The session is closed now, like any closed session: its close frame again.
        self.assertEqual(self.between.poll(), GOING_AWAY)


class Spread(DrainTestCase):
    def test_closes_spread_over_the_window_then_exit(self):
        window = 1.5
        gw = self.start("--drain-ms", str(int(window * 1000)))
        sockets = [WebSocket.connect(gw.port, session_url("/echo") + "/websocket")
                   for _ in range(40)]
        for ws in sockets:
            self.assertEqual(ws.recv_sockjs(), "o")
        started = time.monotonic()
        gw.signal(signal.SIGTERM)
        arrivals = []
        # Read in connection order; each read waits at most for the whole window.
        for ws in sockets:
            code, _, _ = ws.expect_close(timeout=window + 5)
            self.assertEqual(code, 1001)
            arrivals.append(time.monotonic() - started)
            ws.conn.close()
        self.assertExitsZero(gw)
        # Not all at once: some close frames come early in the window, some late.
        self.assertLess(min(arrivals), window / 2, arrivals)
        self.assertGreater(max(arrivals), window / 2, arrivals)


if __name__ == "__main__":
    gwtest.main()
