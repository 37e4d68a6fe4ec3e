"""Integration test harness for sockjs-gateway.

Everything here is Python 3 standard library only. It provides:

- `Gateway`: starts `sockjs-gateway --test-app` on an ephemeral port, parses the port from the
  `listening on` log line, drains and keeps the log, and at stop sends SIGTERM and requires exit
  status 0 (a leak under ASan makes it non-zero).
- `GatewayTestCase`: a unittest base class with a gateway per class (default) or per test.
- Raw HTTP over sockets: `Conn` (a socket with a read buffer), `build_request`,
  `read_response_head`, `read_response`, `BodyReader` (Content-Length, chunked, read-to-close),
  and `request` for one-shot requests.
- `WebSocket`: a minimal RFC 6455 client (handshake, masked frames, fragmentation, control
  frames, close codes) that can also send invalid frames on purpose.
- SockJS helpers: `session_url`, `parse_frame`, `XhrSession` (xhr polling + xhr_send) and
  `XhrStream` (xhr_streaming).

Time bounds: every socket operation has a timeout (`TIMEOUT`, 5 s unless GW_TEST_TIMEOUT says
otherwise), so a test never hangs on a silent server.
"""

import base64
import collections
import email.utils
import hashlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest
import uuid
import zlib

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = float(os.environ.get("GW_TEST_TIMEOUT", "5"))
START_TIMEOUT = float(os.environ.get("GW_START_TIMEOUT", "20"))
STOP_TIMEOUT = float(os.environ.get("GW_STOP_TIMEOUT", "20"))
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

ALL_PREFIXES = (
    "/echo",
    "/close",
    "/disabled_websocket_echo",
    "/cookie_needed_echo",
    "/ticker",
    "/amplify",
    "/broadcast",
    "/short_timers_echo",
    "/short_timers_close",
)


def gateway_binary():
    """GW_BINARY (absolute, or relative to the current directory or else to the repo root),
    default build/sockjs-gateway under the repo root."""
    path = os.environ.get("GW_BINARY") or os.path.join("build", "sockjs-gateway")
    if not os.path.isabs(path) and not os.path.exists(path):
        path = os.path.join(REPO_ROOT, path)
    return os.path.abspath(path)


# --------------------------------------------------------------------------------------------
# Gateway process
# --------------------------------------------------------------------------------------------

LISTEN_RE = re.compile(r"listening on (\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+)")


class GatewayError(AssertionError):
    pass


class Gateway:
    """One gateway process. Use as a context manager or call start()/stop()."""

    def __init__(self, *args, listen=None, test_app=True, binary=None, env=None):
        self.args = [str(a) for a in args]
        self.listen = list(listen) if listen else ["127.0.0.1:0"]
        self.test_app = test_app
        self.binary = binary or gateway_binary()
        self.env = env
        self.proc = None
        self.nofile = None  # the process's open-files limit, when a test sets one
        self.lines = []
        self.addresses = []  # (host, port) per listener, in log order
        self._cond = threading.Condition()
        self._eof = False
        self._reader = None
        self.returncode = None

    # -- lifecycle ------------------------------------------------------------------------

    def command(self):
        cmd = [self.binary]
        if self.test_app:
            cmd.append("--test-app")
        for spec in self.listen:
            cmd += ["--listen", spec]
        # stop() drains: closes every session at once unless a test says otherwise, so that
        # stopping takes milliseconds, not the default 5 s spread.
        if "--drain-ms" not in self.args:
            cmd += ["--drain-ms", "0"]
        return cmd + self.args

    def start(self):
        if not os.path.exists(self.binary):
            raise GatewayError(
                "gateway binary not found: %s (build it, or set GW_BINARY)" % self.binary)
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        preexec = None
        if self.nofile is not None:
            import resource
            limit = self.nofile

            def preexec():
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                     preexec_fn=preexec)
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT
        problem = None
        with self._cond:
            while True:
                found = [m for m in map(LISTEN_RE.search, self.lines) if m]
                if len(found) >= len(self.listen):
                    break
                if self._eof:
                    problem = "gateway exited before listening"
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    problem = "no 'listening on' line within %.0f s" % START_TIMEOUT
                    break
                self._cond.wait(left)
        if problem:
            self._kill()
            raise GatewayError("%s (status %s): %s\n%s" % (problem, self.proc.returncode,
                                                           " ".join(self.command()),
                                                           self.log_text()))
        for m in found[:len(self.listen)]:
            host = m.group(1)
            if host.startswith("["):
                host = host[1:-1]
            self.addresses.append((host, int(m.group(2))))
        return self

    def _drain(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _kill(self):
        try:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)
            if self._reader:
                self._reader.join(STOP_TIMEOUT)
            self.proc.stdout.close()
        except Exception:
            pass

    def stop(self):
        """SIGTERM, wait, and require exit status 0 (raises GatewayError otherwise)."""
        if self.proc is None or self.returncode is not None:
            return
        already_dead = self.proc.poll() is not None
        if not already_dead:
            self.proc.send_signal(signal.SIGTERM)
        self.wait_exit()
        if already_dead:
            raise GatewayError("gateway died during the test (status %s)\n%s"
                               % (self.returncode, self.log_text()))
        if self.returncode != 0:
            raise GatewayError("gateway exited with status %s after SIGTERM (0 expected)\n%s"
                               % (self.returncode, self.log_text()))

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Waits for the process to end (after a signal) and returns its exit status; stop()
        then has nothing left to do."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            self.returncode = self.proc.returncode
            raise GatewayError("gateway did not exit within %.0f s of the signal\n%s"
                               % (timeout, self.log_text()))
        if self._reader:
            self._reader.join(STOP_TIMEOUT)
        self.proc.stdout.close()
        self.returncode = self.proc.returncode
        return self.returncode

    def cpu_seconds(self):
        """User + system CPU time the process has used so far."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.stop()
        else:
            try:
                self.stop()
            except GatewayError as e:
                sys.stderr.write(str(e) + "\n")
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        if not self.alive():
            raise GatewayError("gateway is not running (status %s)\n%s"
                               % (self.proc.poll(), self.log_text()))

    # -- addresses ------------------------------------------------------------------------

    @property
    def host(self):
        return self.addresses[0][0]

    @property
    def port(self):
        return self.addresses[0][1]

    def connect(self, timeout=TIMEOUT, index=0):
        host, port = self.addresses[index]
        return Conn(port, host=host, timeout=timeout)

    # -- log ------------------------------------------------------------------------------

    def log_text(self, last=300):
        with self._cond:
            lines = self.lines[-last:]
        return "---- gateway log (last %d lines) ----\n%s\n---- end of gateway log ----" % (
            len(lines), "\n".join(lines))

    def log_mark(self):
        """An index into the log; pass it as `since` to look only at later lines."""
        with self._cond:
            return len(self.lines)

    def log_lines(self, since=0):
        with self._cond:
            return list(self.lines[since:])

    # -- the process's resources (read from /proc: there is no event to await) ---------------

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def wait_fds(self, limit, timeout=10):
        """The fd count once it is at most `limit`, or whatever it is after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            n = self.fd_count()
            if n <= limit or time.monotonic() > deadline:
                return n
            time.sleep(0.05)  # no event to await: /proc is polled

    def stable_fd_count(self):
        """The fd count once two readings 50 ms apart agree (connections just closed are gone)."""
        last = self.fd_count()
        for _ in range(40):
            time.sleep(0.05)  # no event to await: /proc is polled
            n = self.fd_count()
            if n == last:
                return n
            last = n
        return last

    def find_log(self, pattern, since=0):
        rx = re.compile(pattern)
        with self._cond:
            for line in self.lines[since:]:
                if rx.search(line):
                    return line
        return None

    def wait_log(self, pattern, since=0, timeout=TIMEOUT):
        """Wait for a log line (at index >= since) matching regex `pattern`; returns it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            i = since
            while True:
                while i < len(self.lines):
                    if rx.search(self.lines[i]):
                        return self.lines[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    break
                self._cond.wait(left)
        raise GatewayError("no log line matching %r within %.1f s\n%s"
                           % (pattern, timeout, self.log_text()))

    def wait_bad_input_logged(self, since, timeout=TIMEOUT):
        """Bad input always produces a WARN or INFO log line."""
        return self.wait_log(r"\b(WARN|INFO)\b", since=since, timeout=timeout)


class GatewayTestCase(unittest.TestCase):
    """Base class: `self.gw` is a running gateway.

    Class attributes: `gateway_args` (extra command line arguments), `gateway_listen` (list of
    --listen values), `per_test_gateway` (True: a fresh gateway per test; False: one per class).
    Whatever the mode, the gateway must exit with status 0 on SIGTERM, or the test (per-test
    mode) or the class (tearDownClass) is reported as an error.
    """

    gateway_args = ()
    gateway_listen = None
    per_test_gateway = False
    _class_gw = None
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._class_gw = None
        if not cls.per_test_gateway:
            cls._class_gw = Gateway(*cls.gateway_args, listen=cls.gateway_listen).start()

    @classmethod
    def tearDownClass(cls):
        gw, cls._class_gw = cls._class_gw, None
        try:
            if gw is not None:
                gw.stop()
        finally:
            super().tearDownClass()

    def setUp(self):
        super().setUp()
        if self.per_test_gateway:
            self.gw = self.start_gateway(*self.gateway_args, listen=self.gateway_listen)
        else:
            self.gw = type(self)._class_gw
        self._log_mark = self.gw.log_mark() if self.gw else 0

    def run(self, result=None):
        """Run the test; if it failed, print the gateway log lines written during it."""
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        gw = getattr(self, "gw", None)
        if gw is not None and len(result.failures) + len(result.errors) > before:
            lines = gw.log_lines(self._log_mark)[-200:]
            sys.stderr.write("\n---- gateway log during %s ----\n%s\n---- end ----\n"
                             % (self.id(), "\n".join(lines)))
        return out

    def start_gateway(self, *args, listen=None):
        """Start an extra gateway for this test; it is stopped (status 0 required) at cleanup."""
        gw = Gateway(*args, listen=listen).start()
        self.addCleanup(gw.stop)
        return gw

    # -- assertions shared by many files ---------------------------------------------------

    def assertNotCached(self, r):
        cc = (r.header("Cache-Control") or "").lower()
        tokens = {t.strip() for t in cc.split(",")}
        for t in ("no-store", "no-cache", "must-revalidate", "max-age=0"):
            self.assertIn(t, tokens, "Cache-Control %r lacks %s" % (cc, t))
        self.assertIsNone(r.header("Expires"), "not-cached response has Expires")
        self.assertIsNone(r.header("Last-Modified"), "not-cached response has Last-Modified")

    def assertLongCached(self, r):
        cc = (r.header("Cache-Control") or "").lower()
        tokens = {t.strip() for t in cc.split(",")}
        self.assertIn("public", tokens, "Cache-Control %r" % cc)
        self.assertIn("max-age=31536000", tokens, "Cache-Control %r" % cc)
        expires = r.header("Expires")
        self.assertIsNotNone(expires, "long-cached response without Expires")
        when = email.utils.parsedate_to_datetime(expires).timestamp()
        self.assertGreater(when, time.time() + 300 * 86400, "Expires %r is not a year ahead"
                           % expires)

    def assertCors(self, r, origin=None):
        """CORS headers for a request sent with Origin `origin` (None: no Origin header)."""
        acao = r.header("Access-Control-Allow-Origin")
        acac = r.header("Access-Control-Allow-Credentials")
        if origin is None:
            self.assertEqual(acao, "*")
            self.assertIsNone(acac, "credentials header without Origin")
        elif origin == "null" and acao == "*":
            self.assertIsNone(acac, "'*' with credentials for Origin: null")
        else:
            self.assertEqual(acao, origin)
            self.assertEqual(acac, "true")

    def assertContentType(self, r, expected):
        ct = r.header("Content-Type")
        self.assertIsNotNone(ct, "no Content-Type")
        norm = lambda v: ";".join(p.strip().lower() for p in v.split(";"))
        self.assertEqual(norm(ct), norm(expected), "Content-Type %r" % ct)

    def assertNoCookie(self, r):
        self.assertIsNone(r.header("Set-Cookie"), "unexpected Set-Cookie")

    def assertJsessionid(self, r, value):
        sc = r.header("Set-Cookie")
        self.assertIsNotNone(sc, "no Set-Cookie")
        parts = [p.strip() for p in sc.split(";")]
        self.assertEqual(parts[0], "JSESSIONID=" + value)
        self.assertIn("path=/", [p.lower() for p in parts[1:]])

    def assertClosedByServer(self, conn, timeout=TIMEOUT):
        data = conn.read_until_eof(timeout)
        self.assertEqual(data, b"", "data after the response on a closed connection: %r"
                         % data[:200])


def stop_all(*processes):
    """Stops every process (gateways, redis-servers: anything with stop()), even when one stop
    fails, so that a failing node does not leave the others running; then raises the first
    failure."""
    errors = []
    for p in processes:
        try:
            p.stop()
        except Exception as e:  # noqa: BLE001 - re-raised below
            errors.append(e)
    if errors:
        raise errors[0]


def main():
    unittest.main()


# --------------------------------------------------------------------------------------------
# Sockets and HTTP
# --------------------------------------------------------------------------------------------

class ConnectionClosed(Exception):
    pass


class Conn:
    """A TCP connection with a read buffer. All reads are bounded by a timeout."""

    def __init__(self, port, host="127.0.0.1", timeout=TIMEOUT, rcvbuf=None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf:
            # Before connect(), so that the window stays small (a peer that reads slowly).
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        # Small writes go out as they are written, so tests can split requests and frames.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False
        self.reset = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def try_send(self, data):
        """Send, ignoring a connection the server already closed. Returns True if sent."""
        try:
            self.send(data)
            return True
        except (BrokenPipeError, ConnectionResetError, OSError):
            return False

    def fill(self, timeout=None):
        """Read more bytes into the buffer. False at EOF. Raises socket.timeout."""
        if self.eof:
            return False
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            data = self.sock.recv(262144)
        except ConnectionResetError:
            data = b""
            self.reset = True
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _deadline(self, timeout):
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    def _left(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        return left

    def read_exact(self, n, timeout=None):
        deadline = self._deadline(timeout)
        while len(self.buf) < n:
            if not self.fill(self._left(deadline)):
                raise ConnectionClosed("EOF after %d of %d bytes: %r"
                                       % (len(self.buf), n, bytes(self.buf[:200])))
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_until(self, delim, timeout=None, limit=1 << 20):
        deadline = self._deadline(timeout)
        start = 0
        while True:
            i = self.buf.find(delim, start)
            if i >= 0:
                data = bytes(self.buf[:i + len(delim)])
                del self.buf[:i + len(delim)]
                return data
            if len(self.buf) > limit:
                raise AssertionError("no %r within %d bytes" % (delim, limit))
            start = max(0, len(self.buf) - len(delim) + 1)
            if not self.fill(self._left(deadline)):
                raise ConnectionClosed("EOF before %r; got %r" % (delim, bytes(self.buf[:200])))

    def read_some(self, timeout=None):
        """Buffered bytes, or wait for new ones; b'' at EOF."""
        if not self.buf:
            self.fill(timeout)
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def read_until_eof(self, timeout=None):
        """Everything until the peer closes (raises socket.timeout if it does not)."""
        deadline = self._deadline(timeout)
        while self.fill(self._left(deadline)):
            pass
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def is_closed(self, timeout=None):
        """True if the peer closes within `timeout` without sending anything more."""
        try:
            data = self.read_until_eof(timeout)
        except socket.timeout:
            return False
        return data == b""

    def expect_silence(self, duration):
        """Assert that nothing arrives (and no EOF) for `duration` seconds."""
        if self.buf:
            raise AssertionError("unexpected data: %r" % bytes(self.buf[:200]))
        try:
            got = self.fill(duration)
        except socket.timeout:
            return
        if got:
            raise AssertionError("unexpected data: %r" % bytes(self.buf[:200]))
        raise AssertionError("connection closed unexpectedly")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Close with a TCP RST (SO_LINGER 0)."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Response:
    def __init__(self, version, status, reason, headers):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) in wire order
        self.body = b""

    def header(self, name):
        """The header's value (several fields joined with ', '), or None."""
        vals = self.header_all(name)
        return ", ".join(vals) if vals else None

    def header_all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    @property
    def text(self):
        return self.body.decode("utf-8")

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %s %s %r body=%r>" % (self.status, self.reason, self.headers,
                                                 self.body[:300])


def build_request(method, path, body=None, headers=None, version="HTTP/1.1", host=True,
                  content_length=None):
    """Bytes of an HTTP request. `headers` is a dict or a list of pairs (sent in order).

    A Host header is added unless `host` is False or one is given. Content-Length is added when
    `body` is not None, unless given, unless `content_length` is False (then none is sent);
    `content_length` as an int overrides the value.
    """
    if isinstance(body, str):
        body = body.encode("utf-8")
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {n.lower() for n, _ in pairs}
    lines = ["%s %s %s" % (method, path, version)]
    if host and "host" not in names:
        lines.append("Host: 127.0.0.1")
    for n, v in pairs:
        lines.append("%s: %s" % (n, v))
    if content_length is not False and "content-length" not in names \
            and "transfer-encoding" not in names:
        if content_length is not None:
            lines.append("Content-Length: %d" % content_length)
        elif body is not None:
            lines.append("Content-Length: %d" % len(body))
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    return head + (body or b"")


def chunked(body, sizes=None):
    """`body` in chunked transfer coding (chunk sizes from `sizes`, else one chunk)."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    out = bytearray()
    pos = 0
    for n in (sizes or [len(body)]):
        part = body[pos:pos + n]
        pos += n
        if part:
            out += b"%x\r\n%s\r\n" % (len(part), part)
    if pos < len(body):
        out += b"%x\r\n%s\r\n" % (len(body) - pos, body[pos:])
    return bytes(out + b"0\r\n\r\n")


def read_response_head(conn, timeout=None):
    head = conn.read_until(b"\r\n\r\n", timeout=timeout, limit=1 << 16)
    lines = head[:-4].decode("latin-1").split("\r\n")
    m = re.match(r"(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
    if not m:
        raise AssertionError("bad status line %r" % lines[0])
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise AssertionError("bad header line %r" % line)
        headers.append((name, value.strip()))
    return Response(m.group(1), int(m.group(2)), m.group(3) or "", headers)


class BodyReader:
    """Incremental reader of a response body: Content-Length, chunked, or read-to-close."""

    def __init__(self, conn, resp, method="GET"):
        self.conn = conn
        self.resp = resp
        self.ended = False
        self._left = 0
        te = (resp.header("Transfer-Encoding") or "").lower()
        cl = resp.header("Content-Length")
        if method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200:
            self.mode = "none"
            self.ended = True
        elif "chunked" in te:
            self.mode = "chunked"
        elif cl is not None:
            self.mode = "length"
            self._left = int(cl)
            self.ended = self._left == 0
        else:
            self.mode = "close"
        self._pending = bytearray()

    def _read_raw(self, timeout):
        """Next piece of decoded body; b'' at the end of the body."""
        if self.ended:
            return b""
        c = self.conn
        if self.mode == "length":
            if not c.buf and not c.fill(timeout):
                raise ConnectionClosed("EOF with %d body bytes missing" % self._left)
            data = bytes(c.buf[:self._left])
            del c.buf[:len(data)]
            self._left -= len(data)
            if self._left == 0:
                self.ended = True
            return data
        if self.mode == "close":
            if not c.buf and not c.fill(timeout):
                self.ended = True
                return b""
            data = bytes(c.buf)
            c.buf.clear()
            return data
        # chunked
        if self._left == 0:
            line = c.read_until(b"\r\n", timeout=timeout, limit=4096)
            size_text = line[:-2].split(b";")[0].strip()
            if not re.fullmatch(rb"[0-9a-fA-F]+", size_text):
                raise AssertionError("bad chunk size line %r" % line)
            size = int(size_text, 16)
            if size == 0:
                while c.read_until(b"\r\n", timeout=timeout, limit=8192) != b"\r\n":
                    pass
                self.ended = True
                return b""
            self._left = size
        if not c.buf and not c.fill(timeout):
            raise ConnectionClosed("EOF inside a chunk")
        data = bytes(c.buf[:self._left])
        del c.buf[:len(data)]
        self._left -= len(data)
        if self._left == 0:
            crlf = c.read_exact(2, timeout=timeout)
            if crlf != b"\r\n":
                raise AssertionError("chunk not followed by CRLF: %r" % crlf)
        return data

    def read_some(self, timeout=None):
        if self._pending:
            data = bytes(self._pending)
            self._pending.clear()
            return data
        while True:
            data = self._read_raw(timeout)
            if data or self.ended:
                return data

    def readline(self, timeout=None):
        """Bytes up to and including the next b'\\n'; None if the body ends first (any
        partial line is then available from read_all)."""
        deadline = time.monotonic() + (self.conn.timeout if timeout is None else timeout)
        while True:
            i = self._pending.find(b"\n")
            if i >= 0:
                line = bytes(self._pending[:i + 1])
                del self._pending[:i + 1]
                return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out waiting for a line; have %r"
                                     % bytes(self._pending[:200]))
            data = self._read_raw(left)
            if not data and self.ended:
                return None
            self._pending += data

    def read_exact(self, n, timeout=None):
        deadline = time.monotonic() + (self.conn.timeout if timeout is None else timeout)
        while len(self._pending) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out")
            data = self._read_raw(left)
            if not data and self.ended:
                raise ConnectionClosed("body ended after %d of %d bytes"
                                       % (len(self._pending), n))
            self._pending += data
        data = bytes(self._pending[:n])
        del self._pending[:n]
        return data

    def read_all(self, timeout=None):
        deadline = time.monotonic() + (self.conn.timeout if timeout is None else timeout)
        out = bytearray(self._pending)
        self._pending.clear()
        while not self.ended:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out reading body; have %r" % bytes(out[:200]))
            out += self._read_raw(left)
        return bytes(out)


def read_response(conn, method="GET", timeout=None):
    """Read one whole response (head and body) from `conn`."""
    resp = read_response_head(conn, timeout=timeout)
    resp.body = BodyReader(conn, resp, method).read_all(timeout=timeout)
    return resp


def request(port, method, path, body=None, headers=None, version="HTTP/1.1", host="127.0.0.1",
            timeout=TIMEOUT, **kw):
    """One request on a new connection; returns the Response (the connection is closed)."""
    with Conn(port, host=host, timeout=timeout) as c:
        c.send(build_request(method, path, body=body, headers=headers, version=version, **kw))
        return read_response(c, method=method, timeout=timeout)


# --------------------------------------------------------------------------------------------
# WebSocket (RFC 6455)
# --------------------------------------------------------------------------------------------

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

Frame = collections.namedtuple("Frame", "fin rsv opcode payload")


class HandshakeError(AssertionError):
    def __init__(self, response):
        super().__init__("websocket handshake refused: %r" % (response,))
        self.response = response


def ws_accept(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def ws_handshake_request(path, key, headers=None, version="13"):
    pairs = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
             ("Sec-WebSocket-Key", key)]
    if version is not None:
        pairs.append(("Sec-WebSocket-Version", str(version)))
    override = dict((n.lower(), (n, v)) for n, v in (headers or {}).items())
    out = []
    for n, v in pairs:
        if n.lower() in override:
            n2, v2 = override.pop(n.lower())
            if v2 is not None:
                out.append((n2, v2))
        else:
            out.append((n, v))
    out += [(n, v) for n, v in override.values() if v is not None]
    return build_request("GET", path, headers=out)


def encode_frame(opcode, payload=b"", fin=True, mask=True, rsv=0, mask_key=None):
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    return head + key + mask_payload(payload, key)


def mask_payload(payload, key):
    if not payload:
        return b""
    n = len(payload)
    k = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ k).to_bytes(n, "big")


class WebSocket:
    """A minimal RFC 6455 client over a `Conn`."""

    def __init__(self, conn, response):
        self.conn = conn
        self.response = response
        self.close_received = None  # (code, reason) once a close frame arrived
        # permessage-deflate (RFC 7692), when the handshake response accepted it.
        self.deflate = parse_deflate_response(response.header("Sec-WebSocket-Extensions")
                                              if response else None)
        self._inflater = None
        self._deflater = None

    @classmethod
    def connect(cls, port, path, headers=None, host="127.0.0.1", timeout=TIMEOUT, rcvbuf=None):
        """Handshake; returns a WebSocket or raises HandshakeError (with .response)."""
        conn = Conn(port, host=host, timeout=timeout, rcvbuf=rcvbuf)
        key = base64.b64encode(os.urandom(16)).decode()
        try:
            conn.send(ws_handshake_request(path, key, headers))
            resp = read_response_head(conn)
            if resp.status != 101:
                resp.body = BodyReader(conn, resp).read_all()
                raise HandshakeError(resp)
            if resp.header("Sec-WebSocket-Accept") != ws_accept(key):
                raise AssertionError("bad Sec-WebSocket-Accept %r"
                                     % resp.header("Sec-WebSocket-Accept"))
        except BaseException:
            conn.close()
            raise
        return cls(conn, resp)

    # -- sending --------------------------------------------------------------------------

    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0):
        self.conn.send(encode_frame(opcode, payload, fin=fin, mask=mask, rsv=rsv))

    def send_text(self, text, compress=None):
        """A text message; compressed (RSV1) if permessage-deflate was negotiated, unless
        `compress` says otherwise."""
        data = text.encode("utf-8") if isinstance(text, str) else text
        if compress is None:
            compress = self.deflate is not None
        if compress:
            self.send_frame(OP_TEXT, self._compress(data), rsv=4)
        else:
            self.send_frame(OP_TEXT, data)

    def _compress(self, data):
        if self._deflater is None or "client_no_context_takeover" in self.deflate:
            bits = int(self.deflate.get("client_max_window_bits") or 15)
            self._deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED,
                                              -max(bits, 9))
        out = self._deflater.compress(data) + self._deflater.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(b"\x00\x00\xff\xff")
        return out[:-4]

    def _decompress(self, data):
        if self._inflater is None or "server_no_context_takeover" in self.deflate:
            self._inflater = zlib.decompressobj(-15)
        return self._inflater.decompress(data + b"\x00\x00\xff\xff")

    def send_binary(self, data):
        self.send_frame(OP_BINARY, data)

    def ping(self, payload=b""):
        self.send_frame(OP_PING, payload)

    def send_close(self, code=1000, reason=b"", raw=None):
        """Send a close frame: `raw` payload as is, else code (None: empty) + reason."""
        if raw is None:
            if isinstance(reason, str):
                reason = reason.encode("utf-8")
            raw = b"" if code is None else struct.pack("!H", code) + reason
        self.send_frame(OP_CLOSE, raw)

    def send_sockjs(self, *messages):
        self.send_text(json.dumps(list(messages)))

    # -- receiving ------------------------------------------------------------------------

    def recv_frame(self, timeout=None):
        c = self.conn
        deadline = time.monotonic() + (c.timeout if timeout is None else timeout)
        left = lambda: max(0.001, deadline - time.monotonic())
        b0, b1 = c.read_exact(2, timeout=left())
        if b1 & 0x80:
            raise AssertionError("server sent a masked frame")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", c.read_exact(2, timeout=left()))[0]
        elif n == 127:
            n = struct.unpack("!Q", c.read_exact(8, timeout=left()))[0]
        payload = c.read_exact(n, timeout=left()) if n else b""
        f = Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, payload)
        if f.opcode == OP_CLOSE:
            self.close_received = parse_close_payload(payload)
        return f

    def recv_message(self, timeout=None):
        """Next message as (opcode, payload): data messages reassembled from fragments, control
        frames returned as they come (a ping is not answered automatically)."""
        deadline = time.monotonic() + (self.conn.timeout if timeout is None else timeout)
        parts = []
        first = None
        compressed = False
        while True:
            f = self.recv_frame(timeout=max(0.001, deadline - time.monotonic()))
            if f.opcode >= 0x8:
                if f.rsv:
                    raise AssertionError("server control frame with RSV bits %d" % f.rsv)
                if not f.fin:
                    raise AssertionError("server sent a fragmented control frame")
                return f.opcode, f.payload
            if first is None:
                if f.opcode == OP_CONT:
                    raise AssertionError("server sent a continuation without a start")
                first = f.opcode
                if f.rsv == 4 and self.deflate is not None:
                    compressed = True
                elif f.rsv:
                    raise AssertionError("server frame with RSV bits %d" % f.rsv)
            elif f.opcode != OP_CONT:
                raise AssertionError("server interleaved a new data message in a fragmented one")
            elif f.rsv:
                raise AssertionError("server continuation frame with RSV bits %d" % f.rsv)
            parts.append(f.payload)
            if f.fin:
                data = b"".join(parts)
                return first, self._decompress(data) if compressed else data

    def recv_text(self, timeout=None):
        op, data = self.recv_message(timeout)
        if op != OP_TEXT:
            raise AssertionError("expected a text message, got opcode %d payload %r"
                                 % (op, data[:200]))
        return data.decode("utf-8")

    def recv_sockjs(self, timeout=None, skip_heartbeats=False):
        """Next SockJS frame (a text message) as a string."""
        while True:
            frame = self.recv_text(timeout)
            if not (skip_heartbeats and frame == "h"):
                return frame

    def expect_close(self, timeout=None, reply=True):
        """Read until the server's close frame (data messages before it are skipped and
        returned), reply with a close frame, then require that the server closes TCP.
        Returns (code, reason, skipped_messages); code None for an empty close payload."""
        deadline = time.monotonic() + (self.conn.timeout if timeout is None else timeout)
        skipped = []
        while True:
            f = self.recv_frame(timeout=max(0.001, deadline - time.monotonic()))
            if f.opcode == OP_CLOSE:
                break
            skipped.append((f.opcode, f.payload))
        code, reason = self.close_received
        if reply:
            self.conn.try_send(encode_frame(OP_CLOSE, f.payload[:2]))
        rest = self.conn.read_until_eof(timeout=max(0.001, deadline - time.monotonic()))
        if rest:
            raise AssertionError("data after the close frame: %r" % rest[:200])
        return code, reason, skipped

    def close(self):
        self.conn.close()


def parse_deflate_response(value):
    """The permessage-deflate parameters a handshake response accepted (a dict, possibly
    empty), or None if it accepted no extension."""
    if not value:
        return None
    params = [p.strip() for p in value.split(";")]
    if params[0].lower() != "permessage-deflate" or "," in value:
        raise AssertionError("unexpected Sec-WebSocket-Extensions %r" % value)
    out = {}
    for p in params[1:]:
        name, _, arg = p.partition("=")
        name = name.strip().lower()
        if name not in ("server_no_context_takeover", "client_no_context_takeover",
                        "server_max_window_bits", "client_max_window_bits") or name in out:
            raise AssertionError("bad permessage-deflate parameter %r" % p)
        out[name] = arg.strip().strip('"') or None
    return out


def parse_close_payload(payload):
    if len(payload) == 0:
        return None, ""
    if len(payload) == 1:
        raise AssertionError("close frame with a 1-byte payload")
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8")


# --------------------------------------------------------------------------------------------
# SockJS
# --------------------------------------------------------------------------------------------

PRELUDE = b"h" * 2048 + b"\n"


def session_url(prefix, session=None, server="000"):
    return "%s/%s/%s" % (prefix, server, session or str(uuid.uuid4()))


def parse_frame(frame):
    """'o' | 'h' | 'a[...]' | 'c[code,"reason"]' -> (kind, value)."""
    if isinstance(frame, bytes):
        frame = frame.decode("utf-8")
    frame = frame.rstrip("\n")
    if frame in ("o", "h"):
        return frame, None
    if frame[:1] in ("a", "c"):
        return frame[0], json.loads(frame[1:])
    raise AssertionError("not a SockJS frame: %r" % frame[:200])


def close_frame(code, reason):
    return "c" + json.dumps([code, reason], separators=(",", ":"))


# The test application's close frames and timers, as every protocol test expects them.
ANOTHER = close_frame(2010, "Another connection still open")
GO_AWAY = close_frame(3000, "Go away!")
INTERRUPTED = close_frame(1002, "Connection interrupted")
# /short_timers_*: heartbeat and disconnect delay of 1 s, with room for a loaded machine.
TIMER_MIN, TIMER_MAX = 0.8, 3.0


def message_frame(*messages):
    return "a" + json.dumps(list(messages), separators=(",", ":"))


class XhrSession:
    """A SockJS session over xhr polling + xhr_send."""

    def __init__(self, gw, prefix="/echo", session=None, headers=None, url=None):
        self.gw = gw
        self.url = url or session_url(prefix, session)
        self.headers = headers or {}

    @classmethod
    def of(cls, gw, url, headers=None):
        """The session of a session URL (`/<prefix>/<server>/<session>`), e.g. to xhr_send to
        a session whose receiver is a stream."""
        return cls(gw, url=url, headers=headers)

    def xhr(self, headers=None, timeout=TIMEOUT):
        h = dict(self.headers)
        h.update(headers or {})
        return request(self.gw.port, "POST", self.url + "/xhr", body=b"", headers=h,
                       host=self.gw.host, timeout=timeout)

    def poll(self, timeout=TIMEOUT):
        """One xhr poll: the frame, without its newline (asserts 200 and one line)."""
        r = self.xhr(timeout=timeout)
        if r.status != 200:
            raise AssertionError("xhr status %d: %r" % (r.status, r))
        if not r.body.endswith(b"\n") or b"\n" in r.body[:-1]:
            raise AssertionError("xhr body is not one frame plus newline: %r" % r.body[:300])
        return r.body[:-1].decode("utf-8")

    def open(self):
        frame = self.poll()
        if frame != "o":
            raise AssertionError("expected o, got %r" % frame[:300])
        return self

    def start_poll(self):
        """Send an xhr poll without waiting; returns the Conn to read the response from."""
        c = self.gw.connect()
        h = dict(self.headers)
        c.send(build_request("POST", self.url + "/xhr", body=b"", headers=h))
        return c

    def send_raw(self, body, headers=None, **kw):
        h = dict(self.headers)
        h.update(headers or {})
        return request(self.gw.port, "POST", self.url + "/xhr_send", body=body, headers=h,
                       host=self.gw.host, **kw)

    def send(self, *messages):
        r = self.send_raw(json.dumps(list(messages)))
        if r.status != 204:
            raise AssertionError("xhr_send status %d: %r" % (r.status, r))
        return r


class XhrStream:
    """An xhr_streaming receiver: the response head is read and the prelude checked."""

    def __init__(self, gw, url, headers=None, version="HTTP/1.1", check_prelude=True):
        self.url = url
        self.conn = gw.connect()
        self.conn.send(build_request("POST", url + "/xhr_streaming", body=b"", headers=headers,
                                     version=version))
        self.response = read_response_head(self.conn)
        if self.response.status != 200:
            raise AssertionError("xhr_streaming status %d: %r" % (self.response.status,
                                                                 self.response))
        self.body = BodyReader(self.conn, self.response, "POST")
        if check_prelude:
            prelude = self.body.read_exact(len(PRELUDE))
            if prelude != PRELUDE:
                raise AssertionError("bad xhr_streaming prelude %r" % prelude[:100])

    def frame(self, timeout=None, skip_heartbeats=False):
        """The next frame (str, no newline), or None if the stream ended."""
        while True:
            line = self.body.readline(timeout)
            if line is None:
                rest = self.body.read_all(timeout)
                if rest:
                    raise AssertionError("stream ended inside a frame: %r" % rest[:200])
                return None
            frame = line[:-1].decode("utf-8")
            if not (skip_heartbeats and frame == "h"):
                return frame

    def expect_end(self, timeout=None):
        """The stream ends next (last chunk, or EOF for a close-delimited response)."""
        f = self.frame(timeout)
        if f is not None:
            raise AssertionError("expected the end of the stream, got frame %r" % f[:200])

    def close(self):
        self.conn.close()

    def abort(self):
        self.conn.abort()


# --------------------------------------------------------------------------------------------
# SockJS GET transports: eventsource, htmlfile, jsonp (+ jsonp_send)
# --------------------------------------------------------------------------------------------

import urllib.parse  # noqa: E402 (this section was appended to the harness)

# The htmlfile page before its padding, `<cb>` standing for the callback (SOCKJS_TEST_APP.md).
HTMLFILE_PAGE = """<!doctype html>
<html><head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
</head><body><h2>Don't panic!</h2>
  <script>
    document.domain = document.domain;
    var c = parent.<cb>;
    c.start();
    function p(d) {c.message(d);};
    window.onload = function() {c.stop();};
  </script>"""


def htmlfile_page(callback):
    return HTMLFILE_PAGE.replace("<cb>", callback)


def eventsource_escape(frame):
    """What the spec requires of an eventsource data line: %, CR, LF and NUL percent-encoded
    (uppercase hex, as JavaScript's escape() writes them); nothing else changes."""
    return (frame.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
            .replace("\0", "%00"))


_URI_RESERVED = set(";/?:@&=+$,#")
_HEX2 = re.compile(r"[0-9a-fA-F]{2}")


def decode_uri(s):
    """JavaScript's decodeURI(): %XX escapes decoded as UTF-8, except those of the reserved
    characters ;/?:@&=+$,# (kept as written). Raises ValueError where decodeURI throws
    URIError (a malformed escape or invalid UTF-8)."""
    def byte_at(j):
        if s[j:j + 1] != "%" or not _HEX2.fullmatch(s[j + 1:j + 3]):
            raise ValueError("URIError: bad escape at %d in %r" % (j, s[j:j + 12]))
        return int(s[j + 1:j + 3], 16)
    out = []
    i = 0
    while i < len(s):
        if s[i] != "%":
            out.append(s[i])
            i += 1
            continue
        b = byte_at(i)
        if b < 0x80:
            ch = chr(b)
            out.append(s[i:i + 3] if ch in _URI_RESERVED else ch)
            i += 3
            continue
        if b & 0xE0 == 0xC0:
            n = 1
        elif b & 0xF0 == 0xE0:
            n = 2
        elif b & 0xF8 == 0xF0:
            n = 3
        else:
            raise ValueError("URIError: bad UTF-8 lead byte %%%02X" % b)
        seq = bytes([b] + [byte_at(i + 3 * k) for k in range(1, n + 1)])
        try:
            out.append(seq.decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError("URIError: invalid UTF-8 %r" % seq)
        i += 3 * (n + 1)
    return "".join(out)


class GetStream:
    """A receiver stream requested with GET (eventsource, htmlfile): the response head is read
    (200 required) and, unless check_prelude is False, the prelude is read and checked."""

    transport = None

    def __init__(self, gw, url, query="", headers=None, version="HTTP/1.1", check_prelude=True):
        self.url = url
        self.conn = gw.connect()
        self.conn.send(build_request("GET", "%s/%s%s" % (url, self.transport, query),
                                     headers=headers, version=version))
        self.response = read_response_head(self.conn)
        if self.response.status != 200:
            try:
                self.response.body = BodyReader(self.conn, self.response).read_all()
            except Exception:
                pass
            self.conn.close()
            raise AssertionError("%s status %d: %r" % (self.transport, self.response.status,
                                                       self.response))
        self.body = BodyReader(self.conn, self.response, "GET")
        self.prelude = None
        if check_prelude:
            self.prelude = self.read_prelude()

    def read_prelude(self):
        raise NotImplementedError

    def raw_frame(self, timeout=None):
        """The next frame in its transport encoding, or None if the stream ended."""
        raise NotImplementedError

    def decode(self, raw):
        raise NotImplementedError

    def frame(self, timeout=None, skip_heartbeats=False):
        """The next frame (str), or None if the stream ended."""
        while True:
            raw = self.raw_frame(timeout)
            if raw is None:
                return None
            frame = self.decode(raw)
            if not (skip_heartbeats and frame == "h"):
                return frame

    def _end(self, timeout):
        rest = self.body.read_all(timeout)
        if rest:
            raise AssertionError("%s stream ended inside a frame: %r"
                                 % (self.transport, rest[:200]))
        return None

    def expect_end(self, timeout=None):
        """The stream ends next (last chunk, or EOF for a close-delimited response)."""
        f = self.frame(timeout)
        if f is not None:
            raise AssertionError("expected the end of the %s stream, got frame %r"
                                 % (self.transport, f[:200]))

    def close(self):
        self.conn.close()

    def abort(self):
        self.conn.abort()


class EventSourceStream(GetStream):
    """GET S/eventsource: prelude b'\\r\\n', then b'data: <escaped frame>\\r\\n\\r\\n' per frame.
    raw_frame() gives the data line's text as sent (still percent-escaped); frame() decodes it
    the way the client does, with decodeURI()."""

    transport = "eventsource"

    def read_prelude(self):
        prelude = self.body.read_exact(2)
        if prelude != b"\r\n":
            raise AssertionError("bad eventsource prelude %r" % prelude)
        return prelude

    def raw_frame(self, timeout=None):
        line = self.body.readline(timeout)
        if line is None:
            return self._end(timeout)
        if not line.startswith(b"data: ") or not line.endswith(b"\r\n") \
                or b"\r" in line[:-2] or b"\0" in line:
            raise AssertionError("bad eventsource data line %r" % line[:300])
        blank = self.body.readline(timeout)
        if blank != b"\r\n":
            raise AssertionError("eventsource event not ended by an empty line: %r + %r"
                                 % (line[:200], blank))
        return line[6:-2].decode("utf-8")

    def decode(self, raw):
        return decode_uri(raw)


HTMLFILE_SCRIPT_RE = re.compile(rb"<script>\np\((.*)\);\n</script>\r\n", re.S)


class HtmlFileStream(GetStream):
    """GET S/htmlfile?c=<cb>: the page padded past 1024 bytes and b'\\r\\n\\r\\n', then
    b'<script>\\np(<frame as a JSON string>);\\n</script>\\r\\n' per frame. raw_frame() gives
    the JSON string literal as sent; frame() parses it."""

    transport = "htmlfile"

    def __init__(self, gw, url, callback="callback", query=None, **kw):
        self.callback = callback
        super().__init__(gw, url, query=("?c=" + callback) if query is None else query, **kw)

    def read_prelude(self):
        out = bytearray()
        while not out.endswith(b"\r\n\r\n"):
            line = self.body.readline()
            if line is None:
                raise AssertionError("htmlfile stream ended inside its page: %r"
                                     % bytes(out[-200:]))
            out += line
            if len(out) > 65536:
                raise AssertionError("no \\r\\n\\r\\n after the htmlfile page")
        return bytes(out)

    def raw_frame(self, timeout=None):
        deadline = time.monotonic() + (self.conn.timeout if timeout is None else timeout)
        out = bytearray()
        while not out.endswith(b"</script>\r\n"):
            line = self.body.readline(max(0.001, deadline - time.monotonic()))
            if line is None:
                if out:
                    raise AssertionError("htmlfile stream ended inside a script: %r"
                                         % bytes(out[:200]))
                return self._end(timeout)
            out += line
            if not b"<script>\n".startswith(bytes(out[:9])):
                raise AssertionError("htmlfile frame does not start with <script>: %r"
                                     % bytes(out[:200]))
        m = HTMLFILE_SCRIPT_RE.fullmatch(bytes(out))
        if not m:
            raise AssertionError("bad htmlfile frame %r" % bytes(out[:300]))
        return m.group(1).decode("utf-8")

    def decode(self, raw):
        value = json.loads(raw)
        if not isinstance(value, str):
            raise AssertionError("htmlfile p() argument is not a JSON string: %r" % raw[:200])
        return value


def parse_jsonp_body(body, callback):
    """`/**/<cb>(<frame as a JSON string>);\\r\\n` -> the frame."""
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    m = re.fullmatch(r"/\*\*/%s\((.*)\);\r\n" % re.escape(callback), body, re.S)
    if not m:
        raise AssertionError("bad jsonp body for callback %r: %r" % (callback, body[:300]))
    value = json.loads(m.group(1))
    if not isinstance(value, str):
        raise AssertionError("jsonp argument is not a JSON string: %r" % body[:300])
    return value


FORM_CT = "application/x-www-form-urlencoded"


class JsonpSession:
    """A SockJS session over jsonp polling + jsonp_send."""

    def __init__(self, gw, prefix="/echo", session=None, callback="cb", headers=None, url=None):
        self.gw = gw
        self.url = url or session_url(prefix, session)
        self.callback = callback
        self.headers = headers or {}

    @classmethod
    def of(cls, gw, url, callback="cb", headers=None):
        return cls(gw, url=url, callback=callback, headers=headers)

    def _headers(self, extra):
        h = dict(self.headers)
        h.update(extra or {})
        return h

    def jsonp(self, query=None, headers=None, timeout=TIMEOUT, version="HTTP/1.1"):
        q = ("?c=" + self.callback) if query is None else query
        return request(self.gw.port, "GET", self.url + "/jsonp" + q,
                       headers=self._headers(headers), host=self.gw.host, timeout=timeout,
                       version=version)

    def poll(self, timeout=TIMEOUT):
        """One jsonp poll: the frame (asserts 200 and the body's form)."""
        r = self.jsonp(timeout=timeout)
        if r.status != 200:
            raise AssertionError("jsonp status %d: %r" % (r.status, r))
        return parse_jsonp_body(r.body, self.callback)

    def open(self):
        frame = self.poll()
        if frame != "o":
            raise AssertionError("expected o, got %r" % frame[:300])
        return self

    def start_poll(self):
        """Send a jsonp poll without waiting; returns the Conn to read the response from."""
        c = self.gw.connect()
        c.send(build_request("GET", self.url + "/jsonp?c=" + self.callback,
                             headers=self._headers(None)))
        return c

    def send_raw(self, body, content_type=FORM_CT, headers=None, **kw):
        """POST S/jsonp_send with `body` as is (content_type None: no Content-Type)."""
        h = self._headers(headers)
        if content_type is not None:
            h.setdefault("Content-Type", content_type)
        return request(self.gw.port, "POST", self.url + "/jsonp_send", body=body, headers=h,
                       host=self.gw.host, **kw)

    def send(self, *messages):
        """The messages as a form `d=<url-encoded JSON array>` (asserts 200 `ok`)."""
        body = "d=" + urllib.parse.quote(json.dumps(list(messages)), safe="")
        r = self.send_raw(body)
        if r.status != 200 or r.body != b"ok":
            raise AssertionError("jsonp_send: %r" % r)
        return r


# --------------------------------------------------------------------------------------------
# Shared checks of the streaming transports
# --------------------------------------------------------------------------------------------

def assert_messages_in_frames(test, stream, messages):
    """Reads `a` frames from stream until they carry exactly `messages`, in order: the
    gateway may batch messages queued together into one frame or send one frame each."""
    got = []
    while len(got) < len(messages):
        frame = stream.frame()
        kind, value = parse_frame(frame)
        test.assertEqual(kind, "a", "expected a message frame, got %r" % frame)
        got += value
    test.assertEqual(got, list(messages))


class StreamResponseLimitTests:
    """response_limit for a streaming transport; mixed into a GatewayTestCase whose
    stream(url) opens one receiver of that transport on the test app."""

    def test_one_4096_message_ends_stream(self):
        # /echo: response_limit 4096; one message of 4096 x is past it.
        url = session_url("/echo")
        st = self.stream(url)
        self.assertEqual(st.frame(), "o")
        s = XhrSession.of(self.gw, url)
        s.send("x" * 4096)
        self.assertEqual(st.frame(), 'a["%s"]' % ("x" * 4096))
        st.expect_end()
        # The session survives the end of the stream: the next receiver gets what follows.
        s.send("after")
        self.assertEqual(s.poll(), 'a["after"]')

    def test_limit_counts_frames(self):
        # 1300-x messages: three stay under 4096 whether the count is of frames or of their
        # transport encoding (eventsource 3956, htmlfile 4030 bytes); the fourth brings it
        # past either way.
        url = session_url("/echo")
        st = self.stream(url)
        self.assertEqual(st.frame(), "o")
        s = XhrSession.of(self.gw, url)
        msg = "x" * 1300
        for i in range(4):
            s.send(msg)
            self.assertEqual(st.frame(), 'a["%s"]' % msg, "message %d" % (i + 1))
        st.expect_end()

    def test_amplify(self):
        # /amplify has the default 128 KiB limit: one 64 KiB message fits, the second ends it.
        url = session_url("/amplify")
        st = self.stream(url)
        self.assertEqual(st.frame(), "o")
        s = XhrSession.of(self.gw, url)
        s.send("16")
        self.assertEqual(st.frame(), 'a["%s"]' % ("x" * 65536))
        s.send("16")
        self.assertEqual(st.frame(), 'a["%s"]' % ("x" * 65536))
        st.expect_end()


class StreamLifecycleTests:
    """Heartbeats and the close frame on a streaming transport; mixed into a GatewayTestCase
    whose stream(url) opens one receiver of that transport on the test app, and which says
    how its raw_frame() shows a heartbeat (HEARTBEAT_FRAME)."""

    HEARTBEAT_FRAME = "h"

    def test_heartbeat(self):
        st = self.stream(session_url("/short_timers_echo"))
        self.assertEqual(st.frame(), "o")
        t = time.monotonic()
        for i in range(2):
            self.assertEqual(st.raw_frame(), self.HEARTBEAT_FRAME)
            now = time.monotonic()
            self.assertTrue(TIMER_MIN <= now - t <= TIMER_MAX,
                            "heartbeat %d after %.2f s" % (i + 1, now - t))
            t = now

    def test_close(self):
        url = session_url("/close")
        st = self.stream(url)
        self.assertEqual(st.frame(), "o")
        self.assertEqual(st.frame(), GO_AWAY)
        st.expect_end()
        st = self.stream(url)
        self.assertEqual(st.frame(), GO_AWAY)
        st.expect_end()


class StreamHttpVersionTests:
    """A streaming transport's framing by HTTP version: chunked on HTTP/1.1, close-delimited on
    HTTP/1.0 even when kept alive; mixed into a GatewayTestCase whose stream(url, version=...,
    headers=...) opens one receiver of that transport on the test app. A transport with more to
    check of an HTTP/1.0 stream's prelude says so in assertHttp10Prelude(st)."""

    def assertHttp10Prelude(self, st):
        pass

    def test_chunked_on_http11(self):
        st = self.stream(session_url("/close"))
        self.assertEqual(st.response.version, "HTTP/1.1")
        self.assertIn("chunked", (st.response.header("Transfer-Encoding") or "").lower())
        self.assertIsNone(st.response.header("Content-Length"))
        self.assertEqual(st.frame(), "o")
        self.assertEqual(st.frame(), GO_AWAY)
        st.expect_end()  # the last chunk
        self.assertTrue(st.body.ended)

    def test_close_delimited_on_http10(self):
        st = self.stream(session_url("/close"), version="HTTP/1.0")
        r = st.response
        self.assertIsNone(r.header("Transfer-Encoding"), "chunked on an HTTP/1.0 response")
        self.assertIsNone(r.header("Content-Length"))
        self.assertEqual(st.body.mode, "close")
        self.assertHttp10Prelude(st)
        self.assertEqual(st.frame(), "o")
        self.assertEqual(st.frame(), GO_AWAY)
        st.expect_end()  # EOF
        self.assertTrue(st.conn.eof)

    def test_http10_keep_alive_stream_still_closes(self):
        # A stream has no length: even when an HTTP/1.0 client asks for keep-alive, the
        # response is not chunked and ends by closing the connection.
        st = self.stream(session_url("/close"), version="HTTP/1.0",
                         headers={"Connection": "keep-alive"})
        self.assertIsNone(st.response.header("Transfer-Encoding"))
        self.assertIsNone(st.response.header("Content-Length"))
        self.assertEqual(st.frame(), "o")
        self.assertEqual(st.frame(), GO_AWAY)
        st.expect_end()
        self.assertTrue(st.conn.eof)

    def test_http10_echo_and_limit(self):
        url = session_url("/echo")
        st = self.stream(url, version="HTTP/1.0")
        self.assertEqual(st.frame(), "o")
        s = XhrSession.of(self.gw, url)
        s.send("hello")
        self.assertEqual(st.frame(), 'a["hello"]')
        s.send("x" * 4096)
        self.assertEqual(st.frame(), 'a["%s"]' % ("x" * 4096))
        st.expect_end()
        self.assertTrue(st.conn.eof)
