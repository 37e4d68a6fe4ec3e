"""A private redis-server for the integration tests, and a minimal RESP client.

`RedisServer` starts `redis-server --port N --bind 127.0.0.1 --save "" --appendonly no` (plus any
`args`, e.g. `--requirepass`; `unix_socket=True` adds a unix socket in a private directory) on a
free loopback port, waits for it by connecting and sending PING (deadline, no sleep as
synchronisation beyond the retry interval of a poll), and stops it by PID (SIGTERM, then SIGKILL
after a deadline). `kill()` SIGKILLs it mid-test; `start()` again restarts it on the same port.
It is never left running: use it as a context manager or register `stop` as a cleanup. With
`password`, its own clients (readiness, `command`, `client`) AUTH first; `password` can be
changed when a test changes the server's (CONFIG SET requirepass).

Standard library only.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

REDIS_BINARY = os.environ.get("GW_REDIS_SERVER") or shutil.which("redis-server") \
    or "/usr/bin/redis-server"
START_TIMEOUT = float(os.environ.get("GW_REDIS_START_TIMEOUT", "20"))
STOP_TIMEOUT = 10.0


class RedisError(Exception):
    """An error reply (-ERR ...)."""


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def encode_command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode("utf-8")
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Resp:
    """A blocking RESP2 connection to 127.0.0.1:port; every read has a timeout. AUTHs with
    `password` (and `user`) first when given."""

    def __init__(self, port, timeout=5.0, password=None, user=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = bytearray()
        if password is not None:
            try:
                self.command(*(["AUTH"] + ([user] if user else []) + [password]))
            except BaseException:
                self.close()
                raise

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            self._fill()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("redis closed the connection")
        self.buf += data

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n + 2]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ConnectionError("bad RESP line %r" % line)

    def command(self, *args):
        self.sock.sendall(encode_command(*args))
        return self.reply()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class RedisServer:
    def __init__(self, port=None, args=(), password=None, unix_socket=False):
        self.port = port
        self.args = [str(a) for a in args]
        self.password = password
        self.proc = None
        self.logfile = None
        self.socket_dir = tempfile.mkdtemp(prefix="gw-redis-") if unix_socket else None

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    @property
    def socket_path(self):
        return os.path.join(self.socket_dir, "redis.sock") if self.socket_dir else None

    def start(self):
        """Start (or restart on the same port) and wait until it answers PING."""
        assert self.proc is None, "already running"
        if self.logfile is None:
            fd, self.logfile = tempfile.mkstemp(prefix="gw-redis-", suffix=".log")
            os.close(fd)
        tries = 0 if self.port else 5
        while True:
            port = self.port or free_port()
            log = open(self.logfile, "ab")
            try:
                self.proc = subprocess.Popen(
                    [REDIS_BINARY, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--daemonize", "no"]
                    + (["--unixsocket", self.socket_path, "--unixsocketperm", "700"]
                       if self.socket_dir else []) + self.args,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            finally:
                log.close()
            try:
                self._wait_ready(port)
                self.port = port
                return self
            except Exception:
                self._reap()
                if tries <= 0:
                    raise
                tries -= 1  # the free port was taken in between: another one

    def _wait_ready(self, port):
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited with status %s:\n%s"
                                   % (self.proc.returncode, self.log_text()))
            try:
                with Resp(port, timeout=1.0, password=self.password) as r:
                    if r.command("PING") == "PONG":
                        return
            except (OSError, ConnectionError, RedisError) as e:
                last = e
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server on port %d did not answer PING within %.0f s"
                                   " (%r)\n%s" % (port, START_TIMEOUT, last, self.log_text()))
            time.sleep(0.02)

    def log_text(self):
        try:
            with open(self.logfile, "r", errors="replace") as f:
                return f.read()[-4000:]
        except (OSError, TypeError):
            return ""

    def client(self):
        return Resp(self.port, password=self.password)

    def command(self, *args):
        with Resp(self.port, password=self.password) as r:
            return r.command(*args)

    def info(self, section):
        """INFO `section` as a dict of its "name:value" lines (values as text)."""
        text = self.command("INFO", section).decode()
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def numsub(self, channel):
        reply = self.command("PUBSUB", "NUMSUB", channel)
        return int(reply[1])

    def wait_subscribers(self, channel, n, timeout=20.0):
        """Poll PUBSUB NUMSUB until `channel` has at least n subscribers (no event to await)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.numsub(channel)
            if got >= n:
                return got
            if time.monotonic() > deadline:
                raise AssertionError("%d subscribers to %s on redis :%d after %.0f s, %d "
                                     "expected" % (got, channel, self.port, timeout, n))
            time.sleep(0.02)

    def _reap(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None

    def kill(self):
        """SIGKILL (a crash); start() brings it back on the same port."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)
            self.proc = None

    def stop(self):
        if self.proc is None:
            self._cleanup_log()
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
        self.proc = None
        self._cleanup_log()

    def _cleanup_log(self):
        if self.socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
            self.socket_dir = None
        if self.logfile:
            try:
                os.unlink(self.logfile)
            except OSError:
                pass
            self.logfile = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
