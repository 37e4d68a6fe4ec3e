#!/usr/bin/python3
"""permessage-deflate (RFC 7692) on the websocket transports, with --ws-deflate.

Spec: docs/PROTOCOL.md "Compression": off by default; when enabled the gateway accepts the
first permessage-deflate offer it can honour and answers
`permessage-deflate; server_no_context_takeover; client_no_context_takeover`; messages of at
least --ws-deflate-min-bytes go out compressed (a published message compressed once, the same
bytes for every recipient); client messages are inflated up to --max-message-bytes (close 1009),
bad deflate data and bad UTF-8 after inflating close 1007, RSV1 on a control frame or without
the extension 1002.
"""

import json
import struct
import zlib

import gwtest
import scopedfix
from gwtest import (OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, WebSocket, encode_frame,
                    session_url)
from scopedfix import ScopedTestCase, publish_body, token_for, unique

RESPONSE = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
CHROMIUM_OFFER = "permessage-deflate; client_max_window_bits"
MAX_MESSAGE = 100000


def compress(data, finish=False):
    """One message as a client compresses it: fresh window, sync flush, tail removed."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    if finish:
        return c.compress(data) + c.flush(zlib.Z_FINISH)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


class Negotiation(gwtest.GatewayTestCase):
    gateway_args = ("--ws-deflate",)

    def offer(self, value, path="/echo/websocket"):
        ws = WebSocket.connect(self.gw.port, path,
                               headers={"Sec-WebSocket-Extensions": value} if value else None)
        self.addCleanup(ws.close)
        return ws

    def test_offers_accepted(self):
        for value in (CHROMIUM_OFFER, "permessage-deflate",
                      "permessage-deflate; client_no_context_takeover; client_max_window_bits=10",
                      "permessage-deflate; server_no_context_takeover; server_max_window_bits=15",
                      'permessage-deflate; client_max_window_bits="12"',
                      "x-webkit-deflate-frame, permessage-deflate",
                      # The first offer asks for a smaller window than ours: the second fits.
                      "permessage-deflate; server_max_window_bits=10, permessage-deflate"):
            with self.subTest(offer=value):
                ws = self.offer(value)
                self.assertEqual(ws.response.header("Sec-WebSocket-Extensions"), RESPONSE)
                ws.send_text("compress me " * 20)
                self.assertEqual(ws.recv_text(), "compress me " * 20)

    def test_offers_declined(self):
        for value in (None, "x-webkit-deflate-frame",
                      "permessage-deflate; server_max_window_bits=10",
                      "permessage-deflate; server_max_window_bits=16",
                      "permessage-deflate; client_max_window_bits=07",
                      "permessage-deflate; server_no_context_takeover=yes",
                      "permessage-deflate; client_max_window_bits; client_max_window_bits",
                      "permessage-deflate; mystery_parameter",
                      "permessage-deflate; client_max_window_bits=\"10",
                      "permessage-deflate;;"):
            with self.subTest(offer=value):
                ws = self.offer(value)
                self.assertIsNone(ws.response.header("Sec-WebSocket-Extensions"))
                ws.send_text("plain " * 20)
                f = ws.recv_frame()
                self.assertEqual((f.rsv, f.payload), (0, b"plain " * 20))
                # Without the extension RSV1 is a protocol error.
                ws.send_frame(OP_TEXT, compress(b"hello"), rsv=4)
                code, _, _ = ws.expect_close()
                self.assertEqual(code, 1002)

    def test_off_by_default(self):
        gw = self.start_gateway()
        ws = WebSocket.connect(gw.port, "/echo/websocket",
                               headers={"Sec-WebSocket-Extensions": CHROMIUM_OFFER})
        self.addCleanup(ws.close)
        self.assertIsNone(ws.response.header("Sec-WebSocket-Extensions"))

    def test_enabled_from_the_environment(self):
        gw = gwtest.Gateway(env={"SOCKJS_GATEWAY_WS_DEFLATE": "1"}).start()
        self.addCleanup(gw.stop)
        ws = WebSocket.connect(gw.port, "/echo/websocket",
                               headers={"Sec-WebSocket-Extensions": CHROMIUM_OFFER})
        self.addCleanup(ws.close)
        self.assertEqual(ws.response.header("Sec-WebSocket-Extensions"), RESPONSE)


class Messages(gwtest.GatewayTestCase):
    gateway_args = ("--ws-deflate", "--max-message-bytes", str(MAX_MESSAGE))

    def connect(self, path="/echo/websocket"):
        ws = WebSocket.connect(self.gw.port, path,
                               headers={"Sec-WebSocket-Extensions": CHROMIUM_OFFER})
        self.addCleanup(ws.close)
        self.assertIsNotNone(ws.deflate)
        return ws

    def test_raw_echo_both_ways(self):
        ws = self.connect()
        for text in ("x" * 64, "hello " * 50, "Τη γλώσσα \U0001F600 " * 30, "y" * 90000):
            ws.send_text(text)  # compressed
            f = ws.recv_frame()
            self.assertEqual(f.rsv, 4)
            self.assertLess(len(f.payload), len(text.encode()))
            self.assertEqual(ws._decompress(f.payload).decode(), text)
            ws.send_text(text, compress=False)
            self.assertEqual(ws.recv_text(), text)

    def test_small_messages_go_plain(self):
        ws = self.connect()
        for data in ("short", "x" * 63, "Τη γλώσσα"):
            ws.send_text(data)
            f = ws.recv_frame()
            self.assertEqual((f.rsv, f.payload), (0, data.encode()))

    def test_sockjs_echo(self):
        ws = self.connect(session_url("/echo") + "/websocket")
        f = ws.recv_frame()
        self.assertEqual((f.rsv, f.payload), (0, b"o"))
        msg = "compressible " * 40
        ws.send_sockjs(msg)
        f = ws.recv_frame()
        self.assertEqual(f.rsv, 4)
        self.assertEqual(ws._decompress(f.payload).decode(), "a" + json.dumps([msg]))

    def test_peer_encodings(self):
        ws = self.connect()
        text = b"final block " * 30
        # A final block (Z_FINISH) instead of a sync flush.
        ws.send_frame(OP_TEXT, compress(text, finish=True), rsv=4)
        self.assertEqual(ws.recv_text().encode(), text)
        # Fragmented: RSV1 on the first frame only, a ping in between.
        c = compress(text)
        ws.send_frame(OP_TEXT, c[:5], fin=False, rsv=4)
        ws.ping(b"p")
        ws.send_frame(OP_CONT, c[5:10], fin=False)
        ws.send_frame(OP_CONT, c[10:])
        self.assertEqual(ws.recv_message(), (gwtest.OP_PONG, b"p"))
        self.assertEqual(ws.recv_text().encode(), text)
        # An empty compressed message (RFC 7692 7.2.3.6), as a single 0x00 and empty.
        for payload in (b"\x00", b""):
            ws.send_frame(OP_TEXT, payload, rsv=4)
            self.assertEqual(ws.recv_text(), "")

    def assertClosed(self, ws, code, log):
        got, reason, _ = ws.expect_close()
        self.assertEqual(got, code, reason)
        self.gw.wait_log(log, since=self._log_mark)
        self.gw.assert_alive()

    def test_decompression_bomb(self):
        other = self.connect()
        bomb = compress(b"\x00" * (20 * MAX_MESSAGE))
        self.assertLess(len(bomb), MAX_MESSAGE // 10)
        ws = self.connect()
        ws.send_frame(OP_TEXT, bomb, rsv=4)
        self.assertClosed(ws, 1009, r"inflates past %d bytes \(close 1009\)" % MAX_MESSAGE)
        # Exactly the limit is fine, and the other connection did not notice.
        exact = self.connect()
        exact.send_frame(OP_TEXT, compress(b"z" * MAX_MESSAGE), rsv=4)
        self.assertEqual(exact.recv_text(), "z" * MAX_MESSAGE)
        other.send_text("still here " * 10)
        self.assertEqual(other.recv_text(), "still here " * 10)

    def test_bomb_in_a_sockjs_session(self):
        ws = self.connect(session_url("/echo") + "/websocket")
        self.assertEqual(ws.recv_sockjs(), "o")
        ws.send_frame(OP_TEXT, compress(b'["' + b"a" * (2 * MAX_MESSAGE) + b'"]'), rsv=4)
        self.assertClosed(ws, 1009, r"close 1009")

    def fails(self, code, log, *frames):
        """A fresh connection sends `frames` and must be closed with `code`, logging `log`."""
        ws = self.connect()
        ws.conn.send(b"".join(frames))
        self.assertClosed(ws, code, log)

    def test_invalid_compressed_messages(self):
        self.fails(1007, r"not valid deflate data \(close 1007\)",
                   encode_frame(OP_TEXT, b"\xff\xff\xff\xff", rsv=4))
        # Cut inside a block.
        self.fails(1007, r"not valid deflate data",
                   encode_frame(OP_TEXT, compress(b"truncated " * 50)[:-6], rsv=4))
        self.fails(1007, r"not valid UTF-8 \(close 1007\)",
                   encode_frame(OP_TEXT, compress(b"ok \xc3\x28 not UTF-8"), rsv=4))

    def test_rsv1_on_control_and_continuation_frames(self):
        self.fails(1002, r"compressed control frame \(close 1002\)",
                   encode_frame(OP_PING, b"", rsv=4))
        self.fails(1002, r"compressed control frame",
                   encode_frame(OP_CLOSE, struct.pack("!H", 1000), rsv=4))
        self.fails(1002, r"RSV1 on a continuation frame",
                   encode_frame(OP_TEXT, b"a", fin=False), encode_frame(OP_CONT, b"b", rsv=4))
        self.fails(1002, r"reserved bits set", encode_frame(OP_TEXT, b"a", rsv=2))


class SharedForm(ScopedTestCase):
    """A published message is compressed once: every deflate recipient gets the same frame."""

    gateway_args = ("--ws-deflate",)

    def open(self, client, offer=CHROMIUM_OFFER):
        token = token_for(self.site, unique("u"), client)
        path = "%s/000/%s/websocket?token=%s" % (scopedfix.PREFIX, unique("s"), token)
        ws = WebSocket.connect(self.gw.port, path,
                               headers={"Sec-WebSocket-Extensions": offer} if offer else None)
        self.addCleanup(ws.close)
        self.assertEqual(ws.recv_sockjs(), "o")
        first = self.next_data_frame(ws)
        payload = ws._decompress(first.payload) if first.rsv else first.payload
        self.assertIn(b'{\\"ready\\":', payload)
        return ws

    def next_data_frame(self, ws):
        while True:
            f = ws.recv_frame()
            if f.opcode == OP_TEXT and f.payload != b"h":
                return f

    def test_recipients_get_identical_compressed_frames(self):
        client = unique("c")
        a, b = self.open(client), self.open(client)
        plain = self.open(client, offer=None)
        data = {"contacts": [{"id": i, "name": "Contact %d" % i, "email": "c%d@example.com" % i,
                              "company": "Example Corp"} for i in range(8)]}
        self.gw.publish(publish_body("client", self.site, "contacts.updated", data,
                                     ids=[client]))
        fa, fb, fp = (self.next_data_frame(ws) for ws in (a, b, plain))
        self.assertEqual((fa.rsv, fb.rsv, fp.rsv), (4, 4, 0))
        self.assertEqual(fa.payload, fb.payload)
        self.assertLess(len(fa.payload), len(fp.payload) // 2)
        self.assertEqual(a._decompress(fa.payload), fp.payload)
        frame = json.loads(fp.payload.decode()[1:])
        self.assertEqual(json.loads(frame[0])["data"], data)


if __name__ == "__main__":
    gwtest.main()
