#!/usr/bin/env python3
"""Parity check: the sockjs-node peer against sockjs-gateway, as our tools see them.

Starts the server(s) on ephemeral loopback ports, opens sessions over websocket, xhr-streaming
and xhr-polling (tokens in the URL, one token sent as the first message, bad/expired/missing
tokens), publishes to user/client/global scopes through the publish API (single publishes,
arrays, several sites, integer ids, unicode data), and checks that every session receives exactly
the messages the protocol promises, byte for byte as the gateway formats them, and nothing else.
It also sends bad API requests and pipelined keep-alive requests. With both --gateway and --peer
the API answers of the two are compared too. With --redis-server each kind also runs as two nodes
sharing a private Redis (publishes on node 1, sessions on both); with both kinds, a mixed pair
(one gateway node + one peer node) shows that the Redis wire format is the same.

    bench/peers/check_peer.py --gateway build/sockjs-gateway --peer
    bench/peers/check_peer.py --peer --redis-server /usr/bin/redis-server

Python standard library only; exit status 0 when every check passed.
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

SECRET = "parity-secret"
API_KEY = "parity-key"
HERE = os.path.dirname(os.path.abspath(__file__))
PEER_JS = os.path.join(HERE, "sockjs-node", "server.js")
sys.path.insert(0, os.path.dirname(HERE))
import benchlib  # noqa: E402  (bench/benchlib.py: start_redis)
LISTEN_RE = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
API_RE = re.compile(r"publish API on 127\.0\.0\.1:(\d+)")


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def mint(claims, secret=SECRET):
    head = b64url(b'{"alg":"HS256","typ":"JWT"}') + "." + b64url(
        json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), head.encode(), hashlib.sha256).digest()
    return head + "." + b64url(sig)


def token(sub, client, site, exp_in=3600):
    return mint({"sub": sub, "client": client, "site": site, "exp": int(time.time()) + exp_in})


# ---------------------------------------------------------------- processes

class Server:
    """One node: the gateway binary or the peer; ports read from its log."""

    def __init__(self, kind, args, extra):
        self.kind = kind
        if kind == "gateway":
            cmd = [args.gateway]
        else:
            cmd = [args.node, PEER_JS]
        cmd += ["--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--jwt-secret", SECRET,
                "--api-key", API_KEY, "--auth-timeout-ms", "1500"] + extra
        self.cmd = cmd
        self.log = []
        self.cond = threading.Condition()
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        threading.Thread(target=self._drain, daemon=True).start()
        self.port = int(self.wait(LISTEN_RE).group(1))
        self.api_port = int(self.wait(API_RE).group(1))

    def _drain(self):
        for raw in self.p.stderr:
            with self.cond:
                self.log.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()

    def wait(self, rx, timeout=20):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.log:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or self.p.poll() is not None:
                    raise RuntimeError("%s: no %r in log:\n%s" % (self.kind, rx.pattern,
                                                                 "\n".join(self.log[-20:])))
                self.cond.wait(min(left, 0.2))

    def stop(self):
        """SIGTERM; returns (exit status, seconds it took)."""
        t0 = time.monotonic()
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        return rc, time.monotonic() - t0


def redis_numsub(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"*3\r\n$6\r\nPUBSUB\r\n$6\r\nNUMSUB\r\n$22\r\nsockjs-gateway:publish\r\n")
        data = b""
        while data.count(b"\r\n") < 4:
            data += s.recv(256)
    return int(data.split(b"\r\n")[3][1:])


# ---------------------------------------------------------------- publish API

def api(port, method, path, body=None, key=API_KEY, raw=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = "Bearer " + key
    if raw is None and body is not None:
        raw = json.dumps(body, ensure_ascii=False).encode()
    c.request(method, path, body=raw, headers=headers)
    r = c.getresponse()
    payload = r.read()
    c.close()
    return r.status, payload.decode("utf-8", "replace")


def publish(port, body):
    status, text = api(port, "POST", "/api/publish", body)
    if status != 202:
        raise RuntimeError("publish %r: %d %s" % (body, status, text))
    ids = json.loads(text)["ids"]
    n = len(body) if isinstance(body, list) else 1
    if len(ids) != n or not all(re.fullmatch(r"[0-9a-f-]{36}", i) for i in ids):
        raise RuntimeError("publish %r: bad ids %s" % (body, text))


def pipelined(port, n=3):
    """n publishes written in one send on one keep-alive connection: n 202s, in order."""
    body = json.dumps({"scope": "global", "site": "pipeline-probe", "event": "p",
                       "data": None}).encode()
    req = (b"POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + API_KEY.encode()
           + b"\r\nContent-Type: application/json\r\nContent-Length: "
           + str(len(body)).encode() + b"\r\n\r\n" + body)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(req * n)
        data = b""
        deadline = time.monotonic() + 10
        while data.count(b"HTTP/1.1 202") < n and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.count(b"HTTP/1.1 202 ")


BAD_REQUESTS = [
    ("malformed JSON", "POST", "/api/publish", b"{nope", API_KEY),
    ("empty array", "POST", "/api/publish", b"[]", API_KEY),
    ("unknown scope", "POST", "/api/publish", {"scope": "x", "site": "S", "event": "e",
                                               "data": 1}, API_KEY),
    ("user without ids", "POST", "/api/publish", {"scope": "user", "site": "S", "event": "e",
                                                  "data": 1}, API_KEY),
    ("global with ids", "POST", "/api/publish", {"scope": "global", "site": "S", "ids": ["1"],
                                                 "event": "e", "data": 1}, API_KEY),
    ("site and sites", "POST", "/api/publish", {"scope": "global", "site": "S", "sites": ["T"],
                                                "event": "e", "data": 1}, API_KEY),
    ("site with colon", "POST", "/api/publish", {"scope": "global", "site": "S:x", "event": "e",
                                                 "data": 1}, API_KEY),
    ("ids not array", "POST", "/api/publish", {"scope": "user", "site": "S", "ids": "1",
                                               "event": "e", "data": 1}, API_KEY),
    ("bad id type", "POST", "/api/publish", {"scope": "user", "site": "S", "ids": [1.5],
                                             "event": "e", "data": 1}, API_KEY),
    ("missing event", "POST", "/api/publish", {"scope": "global", "site": "S", "data": 1},
     API_KEY),
    ("missing data", "POST", "/api/publish", {"scope": "global", "site": "S", "event": "e"},
     API_KEY),
    ("array, 2nd bad", "POST", "/api/publish",
     [{"scope": "global", "site": "S", "event": "e", "data": 1},
      {"scope": "global", "site": "S", "event": "", "data": 1}], API_KEY),
    ("data over 64 KiB", "POST", "/api/publish", {"scope": "global", "site": "S", "event": "e",
                                                  "data": "x" * 70000}, API_KEY),
    ("body over 1 MiB", "POST", "/api/publish", b"[" + b" " * (1024 * 1024 + 10) + b"]", API_KEY),
    ("no key", "POST", "/api/publish", {"scope": "global", "site": "S", "event": "e",
                                        "data": 1}, None),
    ("wrong key", "POST", "/api/publish", {"scope": "global", "site": "S", "event": "e",
                                           "data": 1}, "nope"),
    ("other path", "POST", "/api/nothing", b"{}", API_KEY),
    ("GET publish", "GET", "/api/publish", None, API_KEY),
]


def bad_requests(port):
    out = []
    for name, method, path, body, key in BAD_REQUESTS:
        raw = body if isinstance(body, bytes) else None
        status, text = api(port, method, path, None if raw else body, key=key, raw=raw)
        out.append((name, status, text))
    return out


# ---------------------------------------------------------------- SockJS sessions

class ReadBuffer:
    """Exact reads from a socket, starting with bytes already received."""

    def __init__(self, sock, buf):
        self.sock, self.buf = sock, buf

    def read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class Session(threading.Thread):
    """One SockJS session over a raw transport; records messages and the close frame."""

    def __init__(self, name, transport, port, query, first_message=None):
        super().__init__(daemon=True)
        self.name, self.transport, self.port, self.query = name, transport, port, query
        self.first_message = first_message
        self.path = "/sockjs/000/%s-%d/" % (name, os.getpid())
        self.messages, self.closed, self.error = [], None, None
        self.opened = threading.Event()
        self.done = threading.Event()
        self.cond = threading.Condition()
        self.sock = None

    # SockJS frames
    def frame(self, f):
        if f == "o":
            if self.first_message is not None:
                self.send(self.first_message)
            self.opened.set()
        elif f == "h":
            pass
        elif f.startswith("a"):
            with self.cond:
                self.messages.extend(json.loads(f[1:]))
                self.cond.notify_all()
        elif f.startswith("c"):
            with self.cond:
                self.closed = json.loads(f[1:])
                self.cond.notify_all()
            self.opened.set()
            return False
        else:
            raise RuntimeError("unexpected frame %r" % f)
        return True

    def run(self):
        try:
            getattr(self, "run_" + self.transport)()
        except Exception as e:  # reported by the checks
            if not self.done.is_set():
                self.error = "%s: %s" % (type(e).__name__, e)
        finally:
            self.opened.set()
            with self.cond:
                self.cond.notify_all()

    def send(self, text):
        payload = json.dumps([text])
        if self.transport == "websocket":
            data = payload.encode()
            mask = os.urandom(4)
            n = len(data)
            head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                    bytes([0x80 | 126]) + n.to_bytes(2, "big"))
            self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
        else:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            c.request("POST", self.path + "xhr_send" + self.query, body=payload.encode(),
                      headers={"Content-Type": "text/plain"})
            r = c.getresponse()
            r.read()
            c.close()
            if r.status != 204:
                raise RuntimeError("xhr_send: %d" % r.status)

    def run_websocket(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        self.sock = s
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(("GET %swebsocket%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13"
                   "\r\n\r\n" % (self.path, self.query, self.port, key)).encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError("closed during handshake")
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError("handshake: %r" % head[:80])
        want = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        if want not in head:
            raise RuntimeError("bad Sec-WebSocket-Accept")
        rf = ReadBuffer(s, buf)
        message = b""
        while True:
            b0, b1 = rf.read(2)
            n = b1 & 0x7f
            if n == 126:
                n = int.from_bytes(rf.read(2), "big")
            elif n == 127:
                n = int.from_bytes(rf.read(8), "big")
            payload = rf.read(n)
            fin, op = b0 & 0x80, b0 & 0x0f
            if op == 8:
                return
            if op == 9:
                mask = os.urandom(4)
                s.sendall(bytes([0x8a, 0x80 | len(payload)]) + mask +
                          bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
                continue
            if op in (0, 1):
                message += payload
                if fin:
                    text, message = message.decode("utf-8"), b""
                    if not self.frame(text):
                        return

    def run_xhr_streaming(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        c.request("POST", self.path + "xhr_streaming" + self.query, body=b"")
        r = c.getresponse()
        if r.status != 200:
            raise RuntimeError("xhr_streaming: %d" % r.status)
        prelude = r.readline()
        if prelude.strip(b"h") != b"\n":
            raise RuntimeError("xhr_streaming prelude %r" % prelude[:20])
        while not self.done.is_set():
            line = r.readline()
            if not line:
                return
            if not self.frame(line.decode("utf-8").rstrip("\n")):
                return

    def run_xhr_polling(self):
        while not self.done.is_set():
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            c.request("POST", self.path + "xhr" + self.query, body=b"")
            r = c.getresponse()
            body = r.read().decode("utf-8")
            c.close()
            if r.status != 200:
                raise RuntimeError("xhr: %d" % r.status)
            for line in body.split("\n"):
                if line and not self.frame(line):
                    return

    def wait_messages(self, n, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.messages) < n and self.error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.cond.wait(left)

    def wait_closed(self, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.closed is None and self.error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.cond.wait(left)

    def stop(self):
        self.done.set()
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass


# ---------------------------------------------------------------- the scenario

# name, transport, node (0 or 1), (sub, client, site) or special, token as first message?
SESSIONS = [
    ("A", "websocket", 1, ("u1", "c1", "S"), False),
    ("B", "xhr_streaming", 1, ("u2", "c1", "S"), False),
    ("C", "xhr_polling", 1, ("u3", "c2", "S"), False),
    ("D", "websocket", 0, ("u1", "c1", "T"), False),
    ("E", "websocket", 0, ("u4", "c2", "S"), True),
    ("F", "xhr_polling", 0, (42, 7, "S"), False),
    ("G", "websocket", 1, ("u1", "c1", "S"), False),  # second tab of u1
]
REFUSED = [
    ("bad-signature", "websocket", "?token=" + mint({"sub": "x", "client": "y", "site": "S",
                                                     "exp": 2 ** 31}, "wrong"),
     [4001, "Invalid token"]),
    ("malformed", "xhr_streaming", "?token=abc.def", [4001, "Invalid token"]),
    ("no-site-claim", "websocket", "?token=" + mint({"sub": "x", "client": "y", "exp": 2 ** 31}),
     [4001, "Invalid token"]),
    ("expired", "websocket", "?token=" + token("x", "y", "S", exp_in=-10), [4002, "Token expired"]),
    ("no-token", "xhr_polling", "", [4003, "Authentication required"]),
]

DATA = {"text": "h\u00e9llo \u2713 \u65e5\u672c \"q\" \\ /", "ctl": "\t\u0001\u001f",
        "n": -12, "big": 123456789012, "t": True, "f": False, "z": None, "arr": [1, [2, {}], []],
        "obj": {"k": "v", "empty": {}}, "half": 1.5}
PUBLISHES = [
    {"scope": "user", "site": "S", "ids": ["u1", "u3"], "event": "contacts.updated",
     "data": {"id": 1}},
    {"scope": "client", "site": "S", "ids": ["c1"], "event": "news.new", "data": [1, "x"]},
    {"scope": "global", "site": "S", "event": "maintenance", "data": None},
    {"scope": "user", "sites": ["S", "T"], "ids": ["u1"], "event": "ev.two-sites",
     "data": "str"},
    [{"scope": "global", "site": "T", "event": "arr.1", "data": 0},
     {"scope": "client", "site": "S", "ids": [7, "c2"], "event": "arr.2", "data": DATA}],
    {"scope": "user", "site": "S", "ids": [42, "u4", "nobody"], "event": "ints", "data": True},
    {"scope": "user", "site": "S", "ids": ["u1"], "event": "e\u00e9\"\\", "data": {"id": 2}},
    {"scope": "global", "sites": ["S", "T", "U"], "event": "everyone", "data": {"a": [None]}},
]


def channels_of(pub):
    out = []
    for site in pub.get("sites") or [pub["site"]]:
        if pub["scope"] == "global":
            out.append(("global:%s" % site, site))
        else:
            for i in pub["ids"]:
                out.append(("%s:%s:%s" % (pub["scope"], site, i), site))
    return out


def dumps(v):
    """Compact JSON as the gateway (jansson) writes it: UTF-8 as is, \\uXXXX in upper case."""
    text = json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    return re.sub(r'(?<!\\)((?:\\\\)*)\\u([0-9a-f]{4})',
                  lambda m: m.group(1) + "\\u" + m.group(2).upper(), text)


def json_equal(a, b):
    try:
        return json.loads(a) == json.loads(b)
    except ValueError:
        return False


def expected_messages():
    """session name -> the exact strings it must receive, in order (the gateway's format)."""
    seqs = {}
    subs = {}
    for name, _, _, (sub, client, site), _ in SESSIONS:
        subs[name] = {"user:%s:%s" % (site, sub), "client:%s:%s" % (site, client),
                      "global:%s" % site}
    exp = {name: [] for name in subs}
    for body in PUBLISHES:
        for pub in body if isinstance(body, list) else [body]:
            for ch, site in channels_of(pub):
                seqs[ch] = seqs.get(ch, 0) + 1
                text = '{"scope":"%s","site":%s,"event":%s,"data":%s,"seq":%d}' % (
                    pub["scope"], dumps(site), dumps(pub["event"]), dumps(pub["data"]),
                    seqs[ch])
                for name, chans in subs.items():
                    if ch in chans:
                        exp[name].append(text)
    return exp


def run_scenario(label, nodes, results):
    """nodes: [Server] (1 or 2); publishes go to nodes[0]; sessions as SESSIONS says."""
    failures = []
    sessions = []
    exp = expected_messages()
    try:
        for name, transport, node, (sub, client, site), first in SESSIONS:
            srv = nodes[node % len(nodes)]
            tok = token(sub, client, site)
            if first:
                s = Session(name, transport, srv.port, "", first_message=dumps({"token": tok}))
            else:
                s = Session(name, transport, srv.port, "?token=" + tok)
            s.start()
            sessions.append(s)
        refused = []
        for i, (name, transport, query, want) in enumerate(REFUSED):
            s = Session(name, transport, nodes[i % len(nodes)].port, query)
            s.start()
            refused.append((s, want))
        for s in sessions:
            if not s.opened.wait(10) or s.error or s.closed:
                failures.append("%s: session %s (%s) did not open: %s %s" % (
                    label, s.name, s.transport, s.error, s.closed))
        time.sleep(0.5)  # the token sent as the first message, and polls, settle
        for body in PUBLISHES:
            publish(nodes[0].api_port, body)
        for s in sessions:
            s.wait_messages(len(exp[s.name]), 10)
        time.sleep(0.5)  # anything extra would show up now
        total = 0
        for s in sessions:
            with s.cond:
                got = list(s.messages)
            total += len(got)
            if got != exp[s.name] and len(got) == len(exp[s.name]) and all(
                    json_equal(g, e) for g, e in zip(got, exp[s.name])):
                diff = [g for g, e in zip(got, exp[s.name]) if g != e]
                results.append((label, "bytes differ", "session %s: %d message(s) JSON-equal but "
                                "not byte-identical to the gateway's format, e.g. %s" % (
                                    s.name, len(diff), diff[0])))
            elif got != exp[s.name]:
                failures.append("%s: session %s (%s): expected %d messages, got %d%s\n  "
                                "expected: %s\n  got:      %s" % (
                                    label, s.name, s.transport, len(exp[s.name]), len(got),
                                    " (error: %s)" % s.error if s.error else "",
                                    exp[s.name], got))
        for s, want in refused:
            s.wait_closed(5 if want[0] != 4003 else 10)
            if s.closed != want:
                failures.append("%s: %s (%s): expected close %s, got %s (error: %s)" % (
                    label, s.name, s.transport, want, s.closed, s.error))
        results.append((label, "deliveries", "%d messages to %d sessions, %d refusals" % (
            total, len(sessions), len(refused))))
    finally:
        for s in sessions:
            s.stop()
    return failures


def run_kind(label, kinds, args, redis_port=None):
    extra = ["--engine", "redis://127.0.0.1:%d" % redis_port] if redis_port else []
    nodes = []
    failures, results = [], []
    api_answers = None
    try:
        for k in kinds:
            nodes.append(Server(k, args, extra))
        if redis_port:
            deadline = time.monotonic() + 20
            while redis_numsub(redis_port) < len(nodes):
                if time.monotonic() > deadline:
                    raise RuntimeError("nodes did not subscribe to Redis")
                time.sleep(0.05)
            deadline = time.monotonic() + 20
            while api(nodes[0].api_port, "POST", "/api/publish",
                      {"scope": "global", "site": "probe", "event": "p", "data": None})[0] != 202:
                if time.monotonic() > deadline:
                    raise RuntimeError("publish API not ready")
                time.sleep(0.05)
        failures += run_scenario(label, nodes, results)
        n = pipelined(nodes[0].api_port)
        results.append((label, "pipelined", "%d/3 answers 202" % n))
        if n != 3:
            failures.append("%s: pipelined publishes: %d of 3 answered 202" % (label, n))
        if not redis_port:
            api_answers = bad_requests(nodes[0].api_port)
            for name, status, text in api_answers:
                want = {"body over 1 MiB": 413, "data over 64 KiB": 413, "no key": 401,
                        "wrong key": 401, "other path": 404, "GET publish": 405}.get(name, 400)
                if status != want:
                    failures.append("%s: API %s: expected %d, got %d %s" % (
                        label, name, want, status, text))
            st, text = api(nodes[0].api_port, "GET", "/api/stats")
            try:
                conns = json.loads(text)["sessions"]["connections"]
            except (ValueError, KeyError, TypeError):
                conns = None
            results.append((label, "stats", "%d sessions.connections=%s" % (st, conns)))
    except Exception as e:
        failures.append("%s: %s: %s" % (label, type(e).__name__, e))
    finally:
        for srv in nodes:
            rc, secs = srv.stop()
            results.append((label, "SIGTERM", "%s exit %d in %.2f s" % (srv.kind, rc, secs)))
            if rc != 0:
                failures.append("%s: %s exited %d after SIGTERM; log tail:\n%s" % (
                    label, srv.kind, rc, "\n".join(srv.log[-10:])))
    return failures, results, api_answers


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gateway", metavar="BINARY", help="check sockjs-gateway (this binary)")
    ap.add_argument("--peer", action="store_true", help="check the sockjs-node peer")
    ap.add_argument("--node", default="/usr/bin/node", help="node binary for the peer")
    ap.add_argument("--redis-server", metavar="BINARY",
                    help="also run two nodes sharing a private redis-server")
    args = ap.parse_args()
    kinds = (["gateway"] if args.gateway else []) + (["peer"] if args.peer else [])
    if not kinds:
        ap.error("give --gateway BINARY and/or --peer")
    if args.peer and not os.path.isdir(os.path.join(HERE, "sockjs-node", "node_modules")):
        ap.error("run: npm ci --prefix %s" % os.path.join(HERE, "sockjs-node"))
    failures, results, answers = [], [], {}
    for k in kinds:
        f, r, a = run_kind(k, [k], args)
        failures += f
        results += r
        answers[k] = a
    if args.redis_server:
        pairs = [(k + " x2 redis", [k, k]) for k in kinds]
        if len(kinds) == 2:
            pairs.append(("mixed redis (gateway publishes)", ["gateway", "peer"]))
            pairs.append(("mixed redis (peer publishes)", ["peer", "gateway"]))
        for label, pair in pairs:
            rp, rport = benchlib.start_redis(args.redis_server)
            try:
                f, r, _ = run_kind(label, pair, args, redis_port=rport)
            finally:
                rp.stop()
            failures += f
            results += r
    if len(kinds) == 2 and answers["gateway"] and answers["peer"]:
        same = 0
        for (name, s1, t1), (_, s2, t2) in zip(answers["gateway"], answers["peer"]):
            if (s1, t1) == (s2, t2):
                same += 1
            else:
                results.append(("api parity", name, "gateway %d %s | peer %d %s" % (
                    s1, t1[:100], s2, t2[:100])))
        results.append(("api parity", "bad requests", "%d of %d answers identical "
                        "(status and body)" % (same, len(BAD_REQUESTS))))
    elif len(kinds) == 1 and answers[kinds[0]]:
        for name, s, t in answers[kinds[0]]:
            results.append((kinds[0], "api " + name, "%d %s" % (s, t[:100])))
    for label, what, text in results:
        print("%-34s %-18s %s" % (label, what, text))
    for f in failures:
        print("FAIL " + f)
    print("OK: every check passed" if not failures else "%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
