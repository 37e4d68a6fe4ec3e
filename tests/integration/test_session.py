#!/usr/bin/python3
"""Session lifecycle over xhr / xhr_streaming, the test applications, and JSON encoding.

Spec: SOCKJS_TEST_APP.md, "Session lifecycle", "Prefixes" (applications and timers),
"HTTP and encoding" (JSON escaping). Timer bounds are generous: a 1000 ms timer must fire
between 0.8 s and 3 s.
"""

import json
import re
import time

import gwtest
from gwtest import (ANOTHER, GO_AWAY, INTERRUPTED, TIMER_MAX, TIMER_MIN, parse_frame, read_response,
                    session_url, XhrSession, XhrStream)


class SecondReceiver(gwtest.GatewayTestCase):
    def test_xhr(self):
        s = XhrSession(self.gw).open()
        first = s.start_poll()
        try:
            first.expect_silence(0.3)  # attached and waiting
            self.assertEqual(s.poll(), ANOTHER)
            s.send("for the first")
            r = read_response(first)
            self.assertEqual(r.body, b'a["for the first"]\n')
        finally:
            first.close()

    def test_xhr_streaming(self):
        url = session_url("/echo")
        st1 = XhrStream(self.gw, url)
        try:
            self.assertEqual(st1.frame(), "o")
            st2 = XhrStream(self.gw, url)
            try:
                self.assertEqual(st2.frame(), ANOTHER)
                st2.expect_end()
            finally:
                st2.close()
            XhrSession.of(self.gw, url).send("still here")
            self.assertEqual(st1.frame(), 'a["still here"]')
        finally:
            st1.close()

    def test_xhr_while_streaming(self):
        url = session_url("/echo")
        st = XhrStream(self.gw, url)
        try:
            self.assertEqual(st.frame(), "o")
            s = XhrSession.of(self.gw, url)
            self.assertEqual(s.poll(), ANOTHER)
            s.send("x")
            self.assertEqual(st.frame(), 'a["x"]')
        finally:
            st.close()

    def test_streaming_while_polling(self):
        s = XhrSession(self.gw).open()
        first = s.start_poll()
        try:
            first.expect_silence(0.3)
            st = XhrStream(self.gw, s.url)
            try:
                self.assertEqual(st.frame(), ANOTHER)
                st.expect_end()
            finally:
                st.close()
            s.send("x")
            self.assertEqual(read_response(first).body, b'a["x"]\n')
        finally:
            first.close()


class Queueing(gwtest.GatewayTestCase):
    def test_messages_queued_without_receiver_in_order(self):
        s = XhrSession(self.gw).open()
        for i in range(20):
            s.send(str(i))
        self.assertEqual(parse_frame(s.poll()), ("a", [str(i) for i in range(20)]))

    def test_queued_then_streamed(self):
        s = XhrSession(self.gw).open()
        s.send("1", "2")
        s.send("3")
        st = XhrStream(self.gw, s.url)
        try:
            got = []
            while len(got) < 3:
                kind, msgs = parse_frame(st.frame())
                self.assertEqual(kind, "a")
                got += msgs
            self.assertEqual(got, ["1", "2", "3"])
        finally:
            st.close()

    def test_echo_session_survives_between_polls(self):
        # /echo keeps the default 5 s disconnect_delay: a second without a receiver is fine.
        s = XhrSession(self.gw).open()
        s.send("a")
        time.sleep(1.2)  # no event to await: this is the time without a receiver
        s.send("b")
        self.assertEqual(s.poll(), 'a["a","b"]')


class DefaultDisconnectDelay(gwtest.GatewayTestCase):
    def test_echo_session_destroyed_after_5s(self):
        # /echo has the default disconnect_delay of 5 s.
        s = XhrSession(self.gw).open()
        t0 = time.monotonic()
        time.sleep(3.5)  # no event to await: well inside the 5 s
        self.assertEqual(s.send_raw('["x"]').status, 204, "destroyed before 3.5 s")
        while True:
            status = s.send_raw('["x"]').status
            elapsed = time.monotonic() - t0
            if status == 404:
                break
            self.assertLess(elapsed, 8.0, "session not destroyed after 8 s")
            time.sleep(0.1)
        self.assertGreaterEqual(elapsed, 4.5, "destroyed after %.2f s" % elapsed)
        self.assertEqual(s.poll(), "o")


class Timers(gwtest.GatewayTestCase):
    """short_timers_*: heartbeat_delay = disconnect_delay = 1000 ms."""

    def test_heartbeat_ends_poll(self):
        s = XhrSession(self.gw, "/short_timers_echo").open()
        t0 = time.monotonic()
        self.assertEqual(s.poll(), "h")
        elapsed = time.monotonic() - t0
        self.assertTrue(TIMER_MIN <= elapsed <= TIMER_MAX, "heartbeat after %.2f s" % elapsed)

    def test_heartbeat_repeats_on_stream(self):
        st = XhrStream(self.gw, session_url("/short_timers_echo"))
        try:
            self.assertEqual(st.frame(), "o")
            t = time.monotonic()
            for i in range(2):
                self.assertEqual(st.frame(), "h")
                now = time.monotonic()
                self.assertTrue(TIMER_MIN <= now - t <= TIMER_MAX,
                                "heartbeat %d after %.2f s" % (i + 1, now - t))
                t = now
        finally:
            st.close()

    def test_disconnect_delay(self):
        s = XhrSession(self.gw, "/short_timers_echo").open()
        t0 = time.monotonic()  # the last receiver ended here
        self.assertEqual(s.send_raw('["still alive"]').status, 204)
        # xhr_send is not a receiver, so polling with it does not keep the session alive.
        while True:
            status = s.send_raw('["x"]').status
            elapsed = time.monotonic() - t0
            if status == 404:
                break
            self.assertEqual(status, 204)
            self.assertLess(elapsed, TIMER_MAX + 1, "session not destroyed")
            time.sleep(0.05)
        self.assertGreaterEqual(elapsed, TIMER_MIN, "destroyed after %.2f s" % elapsed)
        self.assertEqual(s.poll(), "o")  # a new session under the same id

    def test_attached_receiver_keeps_session(self):
        url = session_url("/short_timers_echo")
        st = XhrStream(self.gw, url)
        try:
            self.assertEqual(st.frame(), "o")
            t0 = time.monotonic()
            while time.monotonic() - t0 < 2.2:  # past two disconnect_delays
                self.assertEqual(st.frame(), "h")
            s = XhrSession.of(self.gw, url)
            s.send("alive")
            self.assertEqual(st.frame(skip_heartbeats=True), 'a["alive"]')
        finally:
            st.close()

    def test_close_then_new_session_after_disconnect_delay(self):
        s = XhrSession(self.gw, "/short_timers_close").open()
        self.assertEqual(s.poll(), GO_AWAY)
        self.assertEqual(s.poll(), GO_AWAY)
        time.sleep(2.5)  # no event to await: let disconnect_delay (1 s) pass, with margin
        self.assertEqual(s.poll(), "o")


class ApplicationClose(gwtest.GatewayTestCase):
    def test_close_xhr(self):
        s = XhrSession(self.gw, "/close").open()
        self.assertEqual(s.poll(), GO_AWAY)
        # Later receivers get the same frame until disconnect_delay (5 s) has passed.
        self.assertEqual(s.poll(), GO_AWAY)
        self.assertEqual(s.poll(), GO_AWAY)

    def test_close_streaming(self):
        url = session_url("/close")
        st = XhrStream(self.gw, url)
        try:
            self.assertEqual(st.frame(), "o")
            self.assertEqual(st.frame(), GO_AWAY)
            st.expect_end()
        finally:
            st.close()
        st = XhrStream(self.gw, url)
        try:
            self.assertEqual(st.frame(), GO_AWAY)
            st.expect_end()
        finally:
            st.close()
        self.assertEqual(XhrSession.of(self.gw, url).poll(), GO_AWAY)


class DroppedReceiver(gwtest.GatewayTestCase):
    def next_receiver_frame(self, s):
        """Poll until the gateway has noticed the drop (until then a poll may still see the
        old receiver attached and get 2010)."""
        deadline = time.monotonic() + gwtest.TIMEOUT
        while True:
            frame = s.poll()
            if frame != ANOTHER or time.monotonic() > deadline:
                return frame
            time.sleep(0.05)

    def test_drop_streaming(self):
        s = XhrSession(self.gw).open()
        st = XhrStream(self.gw, s.url)
        st.conn.expect_silence(0.2)
        st.close()
        self.assertIn(self.next_receiver_frame(s), (INTERRUPTED, "o"))

    def test_drop_streaming_rst(self):
        s = XhrSession(self.gw).open()
        st = XhrStream(self.gw, s.url)
        st.conn.expect_silence(0.2)
        st.abort()
        self.assertIn(self.next_receiver_frame(s), (INTERRUPTED, "o"))

    def test_drop_polling(self):
        s = XhrSession(self.gw).open()
        c = s.start_poll()
        c.expect_silence(0.3)
        c.close()
        self.assertIn(self.next_receiver_frame(s), (INTERRUPTED, "o"))

    def test_interrupted_is_sticky(self):
        s = XhrSession(self.gw).open()
        st = XhrStream(self.gw, s.url)
        st.conn.expect_silence(0.2)
        st.close()
        frame = self.next_receiver_frame(s)
        if frame == INTERRUPTED:
            # The session is closed: later receivers get the same close frame.
            self.assertEqual(s.poll(), INTERRUPTED)
        else:
            self.assertEqual(frame, "o")


class Applications(gwtest.GatewayTestCase):
    def test_ticker(self):
        st = XhrStream(self.gw, session_url("/ticker"))
        try:
            t = time.monotonic()
            self.assertEqual(st.frame(), "o")
            for i in range(2):
                self.assertEqual(st.frame(), 'a["tick!"]')
                now = time.monotonic()
                self.assertTrue(TIMER_MIN <= now - t <= TIMER_MAX,
                                "tick %d after %.2f s" % (i + 1, now - t))
                t = now
        finally:
            st.close()

    def test_broadcast(self):
        urls = [session_url("/broadcast") for _ in range(2)]
        streams = [XhrStream(self.gw, u) for u in urls]
        try:
            for st in streams:
                self.assertEqual(st.frame(), "o")
            XhrSession.of(self.gw, urls[0]).send("from A")
            for st in streams:
                self.assertEqual(st.frame(), 'a["from A"]')
            XhrSession.of(self.gw, urls[1]).send("from B")
            for st in streams:
                self.assertEqual(st.frame(), 'a["from B"]')
        finally:
            for st in streams:
                st.close()

    def test_broadcast_many(self):
        # One message fans out to 40 websocket sessions and 10 streams.
        sockets = []
        streams = []
        try:
            for _ in range(40):
                ws = gwtest.WebSocket.connect(self.gw.port,
                                              session_url("/broadcast") + "/websocket")
                sockets.append(ws)
                self.assertEqual(ws.recv_sockjs(), "o")
            for _ in range(10):
                st = XhrStream(self.gw, session_url("/broadcast"))
                streams.append(st)
                self.assertEqual(st.frame(), "o")
            sockets[0].send_sockjs("to everyone")
            for ws in sockets:
                self.assertEqual(ws.recv_sockjs(), 'a["to everyone"]')
            for st in streams:
                self.assertEqual(st.frame(), 'a["to everyone"]')
        finally:
            for c in sockets + streams:
                c.close()

    def test_amplify(self):
        s = XhrSession(self.gw, "/amplify").open()
        cases = [("3", 8), ("1", 2), ("18", 2 ** 18), ("19", 2), ("0", 2), ("-5", 2),
                 ("abc", 2), ("4.9", 16), ("", 2)]
        for m, n in cases:
            with self.subTest(message=m):
                s.send(m)
                self.assertEqual(parse_frame(s.poll()), ("a", ["x" * n]))

    def test_echo_one_write_per_message(self):
        s = XhrSession(self.gw).open()
        s.send("a", "b", "c")
        self.assertEqual(s.poll(), 'a["a","b","c"]')


# JSON escaping -------------------------------------------------------------------------------

SERVER_ESCAPES = [(0x200C, 0x200F), (0x2028, 0x202F), (0x2060, 0x206F), (0xFFF0, 0xFFFF)]
SHORT_ESCAPES = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}
TOKEN_RE = re.compile(r'\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}'
                      r'|\\u[0-9a-fA-F]{4}|\\["\\/bfnrt]|[^\\"]', re.S)


def must_escape(cp):
    return any(lo <= cp <= hi for lo, hi in SERVER_ESCAPES)


def tokens_of_json_string(raw):
    """Split the inside of a JSON string literal into (character, raw token) pairs."""
    out = []
    pos = 0
    while pos < len(raw):
        m = TOKEN_RE.match(raw, pos)
        if not m:
            raise AssertionError("invalid JSON string content at %d: %r" % (pos, raw[pos:pos + 20]))
        tok = m.group(0)
        out.append((json.loads('"' + tok + '"'), tok))
        pos = m.end()
    return out


class JsonEncoding(gwtest.GatewayTestCase):
    def echo_raw(self, message):
        """Send `message` (\\u-escaped JSON) through /echo over xhr; the raw response frame."""
        s = XhrSession(self.gw).open()
        r = s.send_raw(json.dumps([message], ensure_ascii=True))
        self.assertEqual(r.status, 204)
        r = s.xhr()
        self.assertEqual(r.status, 200)
        return r.body.decode("utf-8")

    def test_server_escapes(self):
        # Exactly as sockjs-node 0.3.24 (test_json_escaping.py compares with it): JSON's short
        # escapes, \u00xx for the other controls, lowercase \uxxxx for SockJS's ranges and for
        # both surrogates of a character beyond the BMP, everything else raw.
        chars = [chr(c) for lo, hi in SERVER_ESCAPES for c in range(lo - 1, hi + 2)]
        chars += [chr(c) for c in range(0x20)]
        chars += ["\u00e9", "\u2000", "\u20ac", "\ufeff", "\U0001F600", "\U0010FFFF", '"', "\\",
                  "/", "\x7f", "a"]
        message = "".join(chars)
        body = self.echo_raw(message)
        self.assertTrue(body.startswith('a["') and body.endswith('"]\n'), body[:100])
        raw = body[3:-3]
        toks = tokens_of_json_string(raw)
        self.assertEqual("".join(c for c, _ in toks), message, "round trip")
        for ch, tok in toks:
            cp = ord(ch)  # json.loads joins a surrogate-pair escape into one character
            if must_escape(cp):
                self.assertEqual(tok, "\\u%04x" % cp, "U+%04X must be sent as lowercase \\u" % cp)
            elif cp < 0x20:
                self.assertEqual(tok, SHORT_ESCAPES.get(cp, "\\u%04x" % cp),
                                 "control U+%04X" % cp)
            elif cp > 0xFFFF:
                v = cp - 0x10000
                self.assertEqual(tok, "\\u%04x\\u%04x" % (0xD800 | v >> 10, 0xDC00 | v & 0x3FF),
                                 "U+%X must be sent as a lowercase surrogate pair" % cp)
            elif ch in '"\\':
                self.assertEqual(tok, "\\" + ch)
            else:
                # Just outside the ranges: not escaped (exactly those ranges are escaped).
                self.assertEqual(tok, ch, "U+%04X should be sent raw" % cp)

    def test_every_bmp_character_round_trips(self):
        message = "".join(chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF)
        body = self.echo_raw(message)
        self.assertEqual(parse_frame(body), ("a", [message]))

    def test_astral_raw_utf8_and_surrogate_pairs(self):
        s = XhrSession(self.gw).open()
        astral = "\U0001F600\U00010000\U0010FFFF\U0002A6D6"
        # As raw UTF-8 in the request ...
        r = s.send_raw(json.dumps([astral], ensure_ascii=False).encode("utf-8"))
        self.assertEqual(r.status, 204)
        # ... and as surrogate-pair escapes.
        self.assertEqual(s.send_raw(json.dumps([astral], ensure_ascii=True)).status, 204)
        self.assertEqual(parse_frame(s.poll()), ("a", [astral, astral]))


if __name__ == "__main__":
    gwtest.main()
