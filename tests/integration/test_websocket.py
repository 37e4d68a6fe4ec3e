#!/usr/bin/python3
"""Websocket transports: SockJS framing (/<prefix>/S/websocket), raw (/<prefix>/websocket),
handshake errors and RFC 6455 protocol violations.

Spec: SOCKJS_TEST_APP.md, "Frames and transports" (websocket, raw websocket); the gateway's
contract for close codes (1002 protocol error, 1007 bad UTF-8, 1009 too big) and heartbeats.
"""

import base64
import json
import os
import struct
import time
import uuid

import gwtest
from gwtest import (GO_AWAY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, build_request, Conn,
                    encode_frame, HandshakeError, read_response, read_response_head, session_url,
                    WebSocket)


def ws_url(prefix="/echo", session=None):
    return session_url(prefix, session) + "/websocket"


class SockJSWebsocket(gwtest.GatewayTestCase):
    def connect(self, prefix="/echo", session=None):
        ws = WebSocket.connect(self.gw.port, ws_url(prefix, session))
        self.addCleanup(ws.close)
        return ws

    def open(self, prefix="/echo", session=None):
        ws = self.connect(prefix, session)
        self.assertEqual(ws.recv_sockjs(), "o")
        return ws

    def test_handshake_response(self):
        ws = self.connect()
        r = ws.response
        self.assertEqual(r.status, 101)
        self.assertEqual((r.header("Upgrade") or "").lower(), "websocket")
        self.assertIn("upgrade", [t.strip().lower() for t in (r.header("Connection") or "")
                                  .split(",")])
        self.assertIsNone(r.header("Content-Length"))
        self.assertEqual(ws.recv_sockjs(), "o")

    def test_echo(self):
        ws = self.open()
        ws.send_sockjs("a")
        self.assertEqual(ws.recv_sockjs(), 'a["a"]')
        ws.send_sockjs("b", "c")
        got = []
        while len(got) < 2:
            kind, msgs = gwtest.parse_frame(ws.recv_sockjs())
            self.assertEqual(kind, "a")
            got += msgs
        self.assertEqual(got, ["b", "c"])
        ws.send_sockjs("Τη γλώσσα \U0001F600")
        self.assertEqual(gwtest.parse_frame(ws.recv_sockjs()), ("a", ["Τη γλώσσα \U0001F600"]))

    def test_empty_and_empty_array_ignored(self):
        ws = self.open()
        ws.send_text("")
        ws.send_text("[]")
        ws.send_sockjs("x")
        self.assertEqual(ws.recv_sockjs(), 'a["x"]')

    def test_broken_json_closes(self):
        ws = self.open()
        mark = self.gw.log_mark()
        ws.send_text('["a')
        # Either a websocket close frame (any code), or a SockJS close frame then the close.
        while True:
            f = ws.recv_frame()
            if f.opcode == OP_CLOSE:
                break
            self.assertEqual(f.opcode, OP_TEXT)
            self.assertTrue(f.payload.startswith(b"c["), f.payload)
        ws.conn.try_send(encode_frame(OP_CLOSE, f.payload[:2]))
        self.assertClosedByServer(ws.conn)
        self.gw.wait_bad_input_logged(mark)

    def test_deeply_nested_json_closes(self):
        ws = self.open()
        ws.send_text("[" * 100000)
        while True:
            f = ws.recv_frame()
            if f.opcode == OP_CLOSE:
                break
            self.assertTrue(f.payload.startswith(b"c["), f.payload)
        self.gw.assert_alive()

    def test_ping_flood(self):
        ws = self.open()
        ws.conn.send(b"".join(encode_frame(OP_PING, b"%d" % i) for i in range(500)))
        for i in range(500):
            self.assertEqual(ws.recv_message(), (OP_PONG, b"%d" % i))
        ws.send_sockjs("after pings")
        self.assertEqual(ws.recv_sockjs(), 'a["after pings"]')

    def test_fragmented_message(self):
        ws = self.open()
        ws.send_frame(OP_TEXT, b'["frag', fin=False)
        ws.send_frame(OP_CONT, b"men", fin=False)
        ws.send_frame(OP_CONT, b't"]', fin=True)
        self.assertEqual(ws.recv_sockjs(), 'a["fragment"]')

    def test_ping_between_fragments(self):
        ws = self.open()
        ws.send_frame(OP_TEXT, b'["one ', fin=False)
        ws.ping(b"in the middle")
        self.assertEqual(ws.recv_message(), (OP_PONG, b"in the middle"))
        ws.send_frame(OP_CONT, b'two"]', fin=True)
        self.assertEqual(ws.recv_sockjs(), 'a["one two"]')

    def test_ping_pong(self):
        ws = self.open()
        for payload in (b"", b"hello", os.urandom(125)):
            ws.ping(payload)
            self.assertEqual(ws.recv_message(), (OP_PONG, payload))

    def test_unsolicited_pong_ignored(self):
        ws = self.open()
        ws.send_frame(OP_PONG, b"whatever")
        ws.send_sockjs("x")
        self.assertEqual(ws.recv_sockjs(), 'a["x"]')

    def test_large_message(self):
        ws = self.open()
        big = "x" * 100000
        ws.send_sockjs(big)
        self.assertEqual(ws.recv_sockjs(timeout=10), 'a["%s"]' % big)

    def test_medium_message_16bit_length(self):
        ws = self.open()
        msg = "y" * 1000
        ws.send_sockjs(msg)
        self.assertEqual(ws.recv_sockjs(), 'a["%s"]' % msg)

    def test_close_handshake(self):
        ws = self.open()
        ws.send_close(1000, "bye")
        code, reason, skipped = ws.expect_close(reply=False)
        self.assertIn(code, (1000, None))
        self.assertEqual([op for op, _ in skipped if op not in (OP_TEXT,)], [])

    def test_same_session_id_twice(self):
        sid = str(uuid.uuid4())
        ws1 = self.open(session=sid)
        ws2 = self.open(session=sid)
        ws1.send_sockjs("one")
        ws2.send_sockjs("two")
        self.assertEqual(ws1.recv_sockjs(), 'a["one"]')
        self.assertEqual(ws2.recv_sockjs(), 'a["two"]')

    def test_session_id_reused_afterwards(self):
        sid = str(uuid.uuid4())
        ws = self.open(session=sid)
        ws.send_close(1000)
        ws.expect_close(reply=False)
        ws2 = self.open(session=sid)
        ws2.send_sockjs("again")
        self.assertEqual(ws2.recv_sockjs(), 'a["again"]')

    def test_not_shared_with_xhr(self):
        # A websocket is its own session: its id does not reach the xhr session table.
        sid = str(uuid.uuid4())
        ws = self.open(session=sid)
        s = gwtest.XhrSession(self.gw, session=sid)
        self.assertEqual(s.poll(), "o")
        ws.send_sockjs("ws only")
        self.assertEqual(ws.recv_sockjs(), 'a["ws only"]')

    def test_first_frame_in_handshake_packet(self):
        # Bytes that follow the handshake in the same segment belong to the websocket.
        key = base64.b64encode(os.urandom(16)).decode()
        c = Conn(self.gw.port)
        self.addCleanup(c.close)
        c.send(gwtest.ws_handshake_request(ws_url(), key) + encode_frame(OP_TEXT, b'["early"]'))
        self.assertEqual(read_response_head(c).status, 101)
        ws = WebSocket(c, None)
        self.assertEqual(ws.recv_sockjs(), "o")
        self.assertEqual(ws.recv_sockjs(), 'a["early"]')

    def test_frame_byte_by_byte(self):
        ws = self.open()
        for b in encode_frame(OP_TEXT, b'["slow"]'):
            ws.conn.send(bytes([b]))
        self.assertEqual(ws.recv_sockjs(), 'a["slow"]')

    def test_many_small_fragments(self):
        ws = self.open()
        payload = b'["' + b"f" * 300 + b'"]'
        ws.send_frame(OP_TEXT, payload[:1], fin=False)
        for i in range(1, len(payload) - 1):
            ws.send_frame(OP_CONT, payload[i:i + 1], fin=False)
        ws.send_frame(OP_CONT, payload[-1:], fin=True)
        self.assertEqual(ws.recv_sockjs(), 'a["%s"]' % ("f" * 300))

    def test_close_prefix(self):
        ws = self.open("/close")
        self.assertEqual(ws.recv_sockjs(), GO_AWAY)
        ws.expect_close()

    def test_server_part_ignored_in_path(self):
        ws = WebSocket.connect(self.gw.port, "/echo/whatever/%s/websocket" % uuid.uuid4())
        self.addCleanup(ws.close)
        self.assertEqual(ws.recv_sockjs(), "o")

    def test_heartbeat(self):
        ws = self.open("/short_timers_echo")
        t = time.monotonic()
        for i in range(2):
            self.assertEqual(ws.recv_sockjs(), "h")
            now = time.monotonic()
            self.assertTrue(0.8 <= now - t <= 3.0, "heartbeat %d after %.2f s" % (i, now - t))
            t = now
        ws.send_sockjs("still")
        self.assertEqual(ws.recv_sockjs(skip_heartbeats=True), 'a["still"]')

    def test_broadcast_with_websockets(self):
        a = self.open("/broadcast")
        b = self.open("/broadcast")
        a.send_sockjs("hi all")
        self.assertEqual(a.recv_sockjs(), 'a["hi all"]')
        self.assertEqual(b.recv_sockjs(), 'a["hi all"]')

    def test_ticker(self):
        ws = self.open("/ticker")
        self.assertEqual(ws.recv_sockjs(timeout=4), 'a["tick!"]')


class RawWebsocket(gwtest.GatewayTestCase):
    def connect(self, path="/echo/websocket"):
        ws = WebSocket.connect(self.gw.port, path)
        self.addCleanup(ws.close)
        return ws

    def test_echo(self):
        ws = self.connect()
        for text in ("hello", "", "Τη γλώσσα \U0001F600", '["not sockjs"]', "x" * 70000):
            ws.send_text(text)
            self.assertEqual(ws.recv_text(), text)

    def test_first_frame_in_handshake_packet(self):
        key = base64.b64encode(os.urandom(16)).decode()
        c = Conn(self.gw.port)
        self.addCleanup(c.close)
        c.send(gwtest.ws_handshake_request("/echo/websocket", key)
               + encode_frame(OP_TEXT, b"early") + encode_frame(OP_TEXT, b"bird"))
        self.assertEqual(read_response_head(c).status, 101)
        ws = WebSocket(c, None)
        self.assertEqual(ws.recv_text(), "early")
        self.assertEqual(ws.recv_text(), "bird")

    def test_permessage_deflate_offer(self):
        # Offering permessage-deflate (RFC 7692) is safe: either the gateway declines (no
        # extension header, plain frames) or it accepts and compressed messages work.
        offers = ["permessage-deflate",
                  "permessage-deflate; client_max_window_bits",
                  "permessage-deflate; server_no_context_takeover; client_no_context_takeover"]
        for offer in offers:
            with self.subTest(offer=offer):
                ws = WebSocket.connect(self.gw.port, "/echo/websocket",
                                       headers={"Sec-WebSocket-Extensions": offer})
                self.addCleanup(ws.close)
                for text in ("hello " * 50, "hello " * 50, "Τη γλώσσα", "x" * 70000):
                    ws.send_text(text)
                    self.assertEqual(ws.recv_text(), text)
                sj = WebSocket.connect(self.gw.port, ws_url(),
                                       headers={"Sec-WebSocket-Extensions": offer})
                self.addCleanup(sj.close)
                self.assertEqual(sj.recv_sockjs(), "o")
                sj.send_text(json.dumps(["compressible " * 20]))
                self.assertEqual(sj.recv_sockjs(), 'a["%s"]' % ("compressible " * 20))

    def test_unknown_extension_declined(self):
        ws = WebSocket.connect(self.gw.port, "/echo/websocket",
                               headers={"Sec-WebSocket-Extensions": "x-made-up; a=1"})
        self.addCleanup(ws.close)
        self.assertIsNone(ws.response.header("Sec-WebSocket-Extensions"))
        ws.send_text("plain")
        self.assertEqual(ws.recv_text(), "plain")

    def test_no_open_frame(self):
        ws = self.connect()
        ws.conn.expect_silence(0.3)

    def test_close_prefix(self):
        ws = self.connect("/close/websocket")
        code, reason, skipped = ws.expect_close()
        self.assertEqual((code, reason), (3000, "Go away!"))
        self.assertEqual(skipped, [])

    def test_ping_pong(self):
        ws = self.connect()
        ws.ping(b"raw ping")
        self.assertEqual(ws.recv_message(), (OP_PONG, b"raw ping"))

    def test_fragmented(self):
        ws = self.connect()
        ws.send_frame(OP_TEXT, b"ab", fin=False)
        ws.send_frame(OP_CONT, b"cd", fin=True)
        self.assertEqual(ws.recv_text(), "abcd")

    def test_message_then_close_in_one_packet(self):
        # The message before the close frame is processed: its echo precedes the close.
        ws = self.connect()
        ws.conn.send(encode_frame(OP_TEXT, b"last words") + encode_frame(OP_CLOSE, b"\x03\xe8"))
        code, _, skipped = ws.expect_close(reply=False)
        self.assertIn(code, (1000, None))
        self.assertEqual(skipped, [(OP_TEXT, b"last words")])

    def test_close_handshake(self):
        ws = self.connect()
        ws.send_close(1000, "done")
        code, _, skipped = ws.expect_close(reply=False)
        self.assertIn(code, (1000, None))
        self.assertEqual(skipped, [])

    def test_amplify(self):
        ws = self.connect("/amplify/websocket")
        ws.send_text("5")
        self.assertEqual(ws.recv_text(), "x" * 32)

    def test_disabled(self):
        with self.assertRaises(HandshakeError) as cm:
            WebSocket.connect(self.gw.port, "/disabled_websocket_echo/websocket")
        self.assertEqual(cm.exception.response.status, 404)


class Handshake(gwtest.GatewayTestCase):
    def raw(self, data):
        with Conn(self.gw.port) as c:
            c.send(data)
            return read_response(c)

    def handshake(self, path, headers):
        key = base64.b64encode(os.urandom(16)).decode()
        return self.raw(gwtest.ws_handshake_request(path, key, headers))

    def paths(self):
        return ["/echo/websocket", ws_url()]

    def test_plain_get(self):
        for path in self.paths():
            with self.subTest(path=path):
                r = self.raw(build_request("GET", path))
                self.assertEqual(r.status, 400)

    def test_connection_close(self):
        for path in self.paths():
            with self.subTest(path=path):
                r = self.handshake(path, {"Connection": "close"})
                self.assertEqual(r.status, 400)

    def test_upgrade_not_websocket(self):
        for path in self.paths():
            with self.subTest(path=path):
                r = self.handshake(path, {"Upgrade": "h2c"})
                self.assertEqual(r.status, 400)

    def test_post(self):
        for path in self.paths():
            for h in ({"Upgrade": "websocket", "Connection": "Upgrade"}, {}):
                with self.subTest(path=path, headers=h):
                    r = self.raw(build_request("POST", path, body=b"", headers=h))
                    self.assertEqual(r.status, 405)
                    self.assertIsNone(r.header("Content-Type"))
                    self.assertIsNotNone(r.header("Allow"))
                    self.assertIn("GET", r.header("Allow"))
                    self.assertEqual(r.body, b"")

    def test_version_8(self):
        for path in self.paths():
            with self.subTest(path=path):
                r = self.handshake(path, {"Sec-WebSocket-Version": "8"})
                self.assertEqual(r.status, 400)
                self.assertEqual(r.header("Sec-WebSocket-Version"), "13")

    def test_missing_key(self):
        for path in self.paths():
            with self.subTest(path=path):
                r = self.handshake(path, {"Sec-WebSocket-Key": None})
                self.assertEqual(r.status, 400)

    def test_hixie76(self):
        for path in self.paths():
            with self.subTest(path=path):
                data = build_request("GET", path, headers=[
                    ("Upgrade", "WebSocket"), ("Connection", "Upgrade"),
                    ("Origin", "http://example.com"),
                    ("Sec-WebSocket-Key1", "4 @1  46546xW%0l 1 5"),
                    ("Sec-WebSocket-Key2", "12998 5 Y3 1  .P00"),
                ]) + b"^n:ds[4U"
                with Conn(self.gw.port) as c:
                    c.send(data)
                    r = read_response_head(c)
                    self.assertEqual(r.status, 400)

    def test_hixie75(self):
        for path in self.paths():
            with self.subTest(path=path):
                r = self.raw(build_request("GET", path, headers=[
                    ("Upgrade", "WebSocket"), ("Connection", "Upgrade"),
                    ("Origin", "http://example.com")]))
                self.assertEqual(r.status, 400)

    def test_firefox_connection_header(self):
        ws = WebSocket.connect(self.gw.port, ws_url(),
                               headers={"Connection": "keep-alive, Upgrade"})
        self.addCleanup(ws.close)
        self.assertEqual(ws.recv_sockjs(), "o")

    def test_upgrade_case_insensitive(self):
        for value in ("WebSocket", "WEBSOCKET", "websocket"):
            with self.subTest(upgrade=value):
                ws = WebSocket.connect(self.gw.port, ws_url(), headers={"Upgrade": value})
                self.addCleanup(ws.close)
                self.assertEqual(ws.recv_sockjs(), "o")
                ws = WebSocket.connect(self.gw.port, "/echo/websocket",
                                       headers={"Upgrade": value, "Connection": "upgrade"})
                self.addCleanup(ws.close)
                ws.send_text("ok")
                self.assertEqual(ws.recv_text(), "ok")

    def test_disabled_websocket_echo(self):
        for path in ("/disabled_websocket_echo/websocket", ws_url("/disabled_websocket_echo")):
            with self.subTest(path=path):
                with self.assertRaises(HandshakeError) as cm:
                    WebSocket.connect(self.gw.port, path)
                self.assertEqual(cm.exception.response.status, 404)

    def test_invalid_session_path(self):
        for path in ("/echo/a.b/c/websocket", "/echo/a/b.c/websocket", "/echo//c/websocket"):
            with self.subTest(path=path):
                with self.assertRaises(HandshakeError) as cm:
                    WebSocket.connect(self.gw.port, path)
                self.assertEqual(cm.exception.response.status, 404)


class ProtocolViolations(gwtest.GatewayTestCase):
    """Each violation: the exact close code, then TCP close, and a WARN/INFO log line."""

    gateway_args = ("--max-message-bytes", "65536")

    def violate(self, path, frames, expected_code):
        ws = WebSocket.connect(self.gw.port, path)
        self.addCleanup(ws.close)
        if not path.endswith("/echo/websocket"):
            self.assertEqual(ws.recv_sockjs(), "o")
        mark = self.gw.log_mark()
        for f in frames:
            ws.conn.try_send(f)
        code, reason, skipped = ws.expect_close(timeout=3)
        self.assertEqual(code, expected_code, "close reason %r" % reason)
        # The close came after the input was processed, so its log line is already written.
        self.gw.wait_bad_input_logged(mark, timeout=2)
        self.gw.assert_alive()
        return skipped

    def both(self, frames, expected_code):
        """The violation on a raw and on a SockJS websocket. No subTest: the first failure
        ends the test, so that a gateway that never closes costs one timeout, not dozens."""
        for path in ("/echo/websocket", ws_url()):
            try:
                self.violate(path, frames, expected_code)
            except AssertionError as e:
                raise AssertionError("%s: %s" % (path, e)) from None

    def each(self, variants, make_frames, expected_code):
        for v in variants:
            try:
                self.both(make_frames(v), expected_code)
            except AssertionError as e:
                raise AssertionError("%r: %s" % (v, e)) from None

    def test_unmasked_frame(self):
        self.both([encode_frame(OP_TEXT, b'["x"]', mask=False)], 1002)

    def test_reserved_opcodes(self):
        self.each((0x3, 0x7, 0xB, 0xF), lambda op: [encode_frame(op, b"x")], 1002)

    def test_rsv_bits(self):
        self.each((1, 2, 4), lambda rsv: [encode_frame(OP_TEXT, b'["x"]', rsv=rsv)], 1002)

    def test_fragmented_ping(self):
        self.both([encode_frame(OP_PING, b"a", fin=False)], 1002)

    def test_control_frame_too_long(self):
        self.both([encode_frame(OP_PING, b"p" * 126)], 1002)

    def test_continuation_without_start(self):
        self.both([encode_frame(OP_CONT, b"x", fin=True)], 1002)

    def test_new_message_inside_fragmented(self):
        self.both([encode_frame(OP_TEXT, b'["a', fin=False),
                   encode_frame(OP_TEXT, b'b"]', fin=True)], 1002)

    def test_bad_utf8(self):
        bad = (b'["\xff"]', b'["\xc3\x28"]', b'["\xed\xa0\x80"]', b'["\xf8\x88\x80\x80\x80"]',
               b'["\xc0\xaf"]')
        self.each(bad, lambda payload: [encode_frame(OP_TEXT, payload)], 1007)

    def test_bad_utf8_across_fragments(self):
        # Each fragment alone is a valid prefix; the whole message is not valid UTF-8.
        self.both([encode_frame(OP_TEXT, b'["\xe2\x82', fin=False),
                   encode_frame(OP_CONT, b'(x"]', fin=True)], 1007)

    def test_bad_utf8_close_reason(self):
        self.both([encode_frame(OP_CLOSE, struct.pack("!H", 1000) + b"\xff\xfe")], 1007)

    def test_message_too_big(self):
        self.both([encode_frame(OP_TEXT, b'["' + b"x" * 70000 + b'"]')], 1009)

    def test_fragments_too_big(self):
        frames = [encode_frame(OP_TEXT, b'["', fin=False)]
        frames += [encode_frame(OP_CONT, b"x" * 20000, fin=False) for _ in range(4)]
        frames.append(encode_frame(OP_CONT, b'"]', fin=True))
        self.both(frames, 1009)

    def test_invalid_close_codes(self):
        codes = (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535)
        self.each(codes, lambda code: [encode_frame(OP_CLOSE, struct.pack("!H", code))], 1002)

    def test_one_byte_close_payload(self):
        self.both([encode_frame(OP_CLOSE, b"\x03")], 1002)

    def test_message_at_limit_is_fine(self):
        ws = WebSocket.connect(self.gw.port, "/echo/websocket")
        self.addCleanup(ws.close)
        text = "z" * 65536
        ws.send_text(text)
        self.assertEqual(ws.recv_text(), text)

    def test_valid_close_codes_accepted(self):
        for code in (1000, 1001, 1003, 1007, 1011, 3000, 4999):
            with self.subTest(code=code):
                ws = WebSocket.connect(self.gw.port, "/echo/websocket")
                self.addCleanup(ws.close)
                ws.send_close(code, "ok")
                got, _, _ = ws.expect_close(reply=False)
                # The reply typically echoes the code; it must not be a protocol error.
                self.assertIn(got, (code, 1000, None), "valid close code %d refused" % code)


if __name__ == "__main__":
    gwtest.main()
