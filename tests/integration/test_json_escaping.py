#!/usr/bin/python3
"""JSON escaping byte for byte like the reference server: the gateway and sockjs-node 0.3.24
(tests/node/sockjs_node_server.js, the same /echo) run side by side, get the same input over
every transport, and must write the same bytes for the echoed message.

sockjs-node quotes a message as JSON.stringify() does (short escapes \\" \\\\ \\b \\f \\n \\r \\t,
lowercase \\u00xx for the other controls, the rest raw) and then escapes, as lowercase \\uxxxx,
every UTF-16 unit of U+0000-U+001F, U+D800-U+DFFF (so a character beyond the BMP becomes an
escaped surrogate pair), U+200C-U+200F, U+2028-U+202F, U+2060-U+206F and U+FFF0-U+FFFF.
htmlfile and jsonp wrap the frame once more with JSON.stringify(); eventsource percent-escapes
`%` (and CR, LF, NUL); websocket, xhr and xhr_streaming carry the frame as it is.

The one deliberate difference: htmlfile writes `<` as \\u003c inside its <script> element, so
that a message cannot end the element (test_htmlfile.py Hardening); sockjs-node writes it raw.
The comparison applies exactly that to the reference's bytes and nothing else.

Needs node and tests/node/node_modules (scripts/setup.sh --test); without them the tests fail,
not skip.
"""

import json
import os
import shutil
import struct
import subprocess
import threading
import urllib.parse

import gwtest
from gwtest import (Conn, EventSourceStream, HtmlFileStream, JsonpSession, session_url,
                    WebSocket, XhrSession, XhrStream)

NODE_SERVER = os.path.join(gwtest.REPO_ROOT, "tests", "node", "sockjs_node_server.js")

# Characters where an escaping rule starts, ends or could be got wrong, each with a neighbour.
SPECIAL = (
    [chr(c) for c in range(0x20)]
    + ['"', "\\", "/", "\x7f", "<", ">", "&", "'", "%", " ", "a", "]", ","]
    + ["\u0080", "\u0085", "\u00a0", "\u00ad", "\u00e9", "\u0300", "\u061c", "\u07ff",
       "\u0800", "\u180e", "\u2000", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f",
       "\u2010", "\u2027", "\u2028", "\u2029", "\u202a", "\u202e", "\u202f", "\u2030",
       "\u205f", "\u2060", "\u2064", "\u206f", "\u2070", "\ud7ff", "\ue000", "\ufeff",
       "\uffef", "\ufff0", "\ufff9", "\ufffc", "\ufffd", "\ufffe", "\uffff"]
    + ["\U00010000", "\U0001f600", "\U0002a6d6", "\U000e0001", "\U0010ffff"]
)
# All of them in one message, plus text that means something to a reader of the frame.
MESSAGE = "".join(SPECIAL) + "</script><!-- \\u0041 %25 \U0001f600\U0001f600 end"


def payloads(message):
    """The same array as the client's JSON two ways: ASCII only (\\u escapes, surrogate pairs
    for astral characters) and raw UTF-8."""
    return [json.dumps([message], ensure_ascii=True).encode("ascii"),
            json.dumps([message], ensure_ascii=False).encode("utf-8")]


def first_difference(a, b):
    n = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
    return "first difference at byte %d: gateway %r, sockjs-node %r" % (
        n, a[max(0, n - 20):n + 40], b[max(0, n - 20):n + 40])


class SockjsNode:
    """sockjs-node 0.3.24 serving /echo on 127.0.0.1, an ephemeral port. Looks like a
    gwtest.Gateway to the session helpers (host, port, connect). Stopped by closing its stdin,
    then by PID."""

    def __init__(self):
        node = shutil.which("node")
        if not node:
            raise AssertionError("node not found: install it (scripts/setup.sh --test)")
        self.output = []
        self.proc = subprocess.Popen([node, NODE_SERVER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.port = None
        ready = threading.Event()

        def drain():
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.output.append(line)
                if line.startswith("listening on 127.0.0.1:") and self.port is None:
                    self.port = int(line.rsplit(":", 1)[1])
                    ready.set()
            ready.set()

        self.reader = threading.Thread(target=drain, daemon=True)
        self.reader.start()
        if not ready.wait(gwtest.START_TIMEOUT) or self.port is None:
            self.stop()
            raise AssertionError("sockjs-node did not start:\n" + "\n".join(self.output))

    host = "127.0.0.1"

    def connect(self, timeout=gwtest.TIMEOUT, index=0):
        return Conn(self.port, host=self.host, timeout=timeout)

    def stop(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=gwtest.STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=gwtest.STOP_TIMEOUT)
        self.reader.join(gwtest.STOP_TIMEOUT)
        self.proc.stdout.close()


# -- the echoed message as each transport writes it --------------------------------------------
# Each function sends every payload to a new session of `server` and returns, per payload, the
# bytes the transport wrote for the echo (after HTTP chunking is undone).

def raw_ws_frame(conn):
    """One server frame exactly as received: header and payload."""
    head = conn.read_exact(2)
    n = head[1] & 0x7F
    ext = conn.read_exact({126: 2, 127: 8}.get(n, 0))
    if n >= 126:
        n = struct.unpack("!H" if n == 126 else "!Q", ext)[0]
    return head + ext + conn.read_exact(n)


def via_websocket(server, bodies):
    ws = WebSocket.connect(server.port, session_url("/echo") + "/websocket")
    try:
        opened = raw_ws_frame(ws.conn)
        assert opened == b"\x81\x01o", "websocket: expected the o frame, got %r" % opened[:100]
        out = []
        for body in bodies:
            ws.send_text(body)
            out.append(raw_ws_frame(ws.conn))
        return out
    finally:
        ws.close()


def xhr_send(server, url, body):
    r = XhrSession.of(server, url).send_raw(body)
    assert r.status == 204, "xhr_send: %r" % r


def via_xhr(server, bodies):
    s = XhrSession(server).open()
    out = []
    for body in bodies:
        xhr_send(server, s.url, body)
        r = s.xhr()
        assert r.status == 200, "xhr: %r" % r
        out.append(r.body)
    return out


def via_stream(server, bodies, stream, read_open, read_record):
    url = session_url("/echo")
    st = stream(server, url)
    try:
        read_open(st)
        out = []
        for body in bodies:
            xhr_send(server, url, body)
            out.append(read_record(st))
        return out
    finally:
        st.close()


def read_line(st):
    return st.body.readline()


def via_xhr_streaming(server, bodies):
    return via_stream(server, bodies, XhrStream, read_line, read_line)


def read_event(st):
    return st.body.readline() + st.body.readline()


def via_eventsource(server, bodies):
    return via_stream(server, bodies, EventSourceStream, read_event, read_event)


def read_script(st):
    out = b""
    while not out.endswith(b"</script>\r\n"):
        out += st.body.readline()
    return out


def via_htmlfile(server, bodies):
    return via_stream(server, bodies, lambda srv, url: HtmlFileStream(srv, url, callback="cb"),
                      read_script, read_script)


def via_jsonp(server, bodies):
    s = JsonpSession(server, callback="cb").open()
    out = []
    for body in bodies:
        # jsonp_send as the client sends it: a form field d holding the JSON.
        r = s.send_raw(b"d=" + urllib.parse.quote_from_bytes(body, safe="").encode("ascii"))
        assert r.status == 200 and r.body == b"ok", "jsonp_send: %r" % r
        r = s.jsonp()
        assert r.status == 200, "jsonp: %r" % r
        out.append(r.body)
    return out


TRANSPORTS = {
    "websocket": via_websocket,
    "xhr": via_xhr,
    "xhr_streaming": via_xhr_streaming,
    "eventsource": via_eventsource,
    "htmlfile": via_htmlfile,
    "jsonp": via_jsonp,
}


def htmlfile_deviation(record):
    """The reference's htmlfile record with `<` written as \\u003c inside the p(...) argument,
    as the gateway writes it (see the module comment)."""
    head, tail = b"<script>\np(", b");\n</script>\r\n"
    assert record.startswith(head) and record.endswith(tail), record[:200]
    inner = record[len(head):-len(tail)]
    return head + inner.replace(b"<", b"\\u003c") + tail


class SameBytesAsSockjsNode(gwtest.GatewayTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.node = SockjsNode()
        except BaseException:
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.node.stop()
        finally:
            super().tearDownClass()

    def assertSameBytes(self, got, want, what):
        if got != want:
            self.fail("%s: the gateway wrote %d bytes, sockjs-node %d; %s"
                      % (what, len(got), len(want), first_difference(got, want)))

    def compare(self, transport, message, fix_reference=lambda record: record):
        via = TRANSPORTS[transport]
        bodies = payloads(message)
        want = via(self.node, bodies)
        got = via(self.gw, bodies)
        for form, g, w in zip(("ascii JSON", "UTF-8 JSON"), got, want):
            self.assertSameBytes(g, fix_reference(w), "%s, %s input" % (transport, form))

    def test_websocket(self):
        self.compare("websocket", MESSAGE)

    def test_xhr(self):
        self.compare("xhr", MESSAGE)

    def test_xhr_streaming(self):
        self.compare("xhr_streaming", MESSAGE)

    def test_eventsource(self):
        self.compare("eventsource", MESSAGE)

    def test_jsonp(self):
        self.compare("jsonp", MESSAGE)

    def test_htmlfile(self):
        # The deviation is real (the reference writes `</script>` raw) and is the only one.
        raw = via_htmlfile(self.node, payloads("</script>"))[0]
        self.assertIn(b"</script>\\", raw)
        self.compare("htmlfile", MESSAGE, htmlfile_deviation)

    def test_each_character_alone_over_xhr(self):
        # One message per character, so that a failure names the character.
        for ch in SPECIAL:
            with self.subTest(char="U+%04X" % ord(ch)):
                self.compare("xhr", "x" + ch + "x")

    def test_every_bmp_character_over_xhr(self):
        # The exact escaped set: every character of the BMP (surrogates are not characters).
        message = "".join(chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF)
        self.compare("xhr", message)

    def test_astral_planes_over_xhr(self):
        # First, last and an emoji of every plane beyond the BMP: escaped surrogate pairs.
        message = "".join(chr(p << 16 | lo) for p in range(1, 17) for lo in (0, 0xF600, 0xFFFF))
        self.compare("xhr", message)


if __name__ == "__main__":
    gwtest.main()
