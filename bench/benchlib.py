"""Helpers shared by the benchmark scripts (bench/run, idle_memory.py, latency.py, deflate.py).

Standard library only. Everything here starts processes on 127.0.0.1 with ephemeral ports and
stops them by PID; nothing is left running when a `Proc` is stopped.

- `Proc`: a child whose stdout+stderr are drained into a list of lines (so a chatty child never
  blocks on a full pipe), with `wait_line(regex, timeout)`.
- `start_server(cmd)`: a sockjs-gateway or a peer (same options and log lines): waits for the
  `listening on` and `publish API on` lines and sets `.port` / `.api_port`.
- `/proc` readers: `status_kib` (VmRSS, RssAnon, ...), `cpu_seconds` (utime + stime),
  `settled_rss_kib`.
- Redis: `start_redis`, `redis_numsub`.
- `summary_line`: the JSON line loadgen/publisher print last.
- `run_rounds`: repeat a measurement, print each result and the medians, save them as JSON.
"""

import json
import os
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

# The load generators stand for thousands of clients from a handful of source addresses
# (loadgen --sources), which the gateway's per-address session limit (--max-sessions-per-ip,
# 10,000 by default) would partly refuse: off for every gateway a bench starts. Given in the
# environment, which binaries from before the option and the peers ignore.
os.environ.setdefault("SOCKJS_GATEWAY_MAX_SESSIONS_PER_IP", "0")

API_KEY = "bench-key"
SECRET = "bench-secret"
SITE = "bench"
LISTEN_RE = re.compile(r"listening on ([0-9.]+):(\d+)")
API_RE = re.compile(r"publish API on ([0-9.]+):(\d+)")


class Proc:
    """A child process whose output (stdout and stderr merged) is drained into `lines`."""

    def __init__(self, cmd, name, stdin=subprocess.DEVNULL, keep=5000, preexec_fn=None):
        self.cmd = cmd
        self.name = name
        self.lines = []
        self.dropped = 0  # lines dropped from the front once more than `keep` were held
        self.keep = keep
        self.cond = threading.Condition()
        self.eof = False
        self.p = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, preexec_fn=preexec_fn)
        self.pid = self.p.pid
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for raw in self.p.stdout:
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                if len(self.lines) > self.keep:
                    # Keep the head (startup lines) and drop the middle: bounded memory.
                    del self.lines[100:100 + self.keep // 2]
                    self.dropped += self.keep // 2
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_line(self, rx, timeout):
        """The first match of `rx` in any line so far or to come, within `timeout` s."""
        rx = re.compile(rx)
        deadline = time.monotonic() + timeout
        with self.cond:
            i = 0
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i])
                    if m:
                        return m
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    raise RuntimeError("%s: no line matching %r; output:\n%s"
                                       % (self.name, rx.pattern, "\n".join(self.lines[-30:])))
                self.cond.wait(left)

    def last_match(self, rx):
        """The last line matching `rx` so far (a match object) or None."""
        rx = re.compile(rx)
        with self.cond:
            for line in reversed(self.lines):
                m = rx.search(line)
                if m:
                    return m
        return None

    def close_stdin(self):
        if self.p.stdin:
            try:
                self.p.stdin.close()
            except OSError:
                pass

    def running(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signal (SIGTERM) and wait; SIGKILL after `timeout` s. Returns the exit status."""
        if self.p.poll() is None:
            try:
                self.p.send_signal(sig)
            except ProcessLookupError:
                pass
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


def status_kib(pid, key):
    """A `key: N kB` field of /proc/PID/status (VmRSS, RssAnon, ...), in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError("no %s for pid %d" % (key, pid))


def vm_rss_kib(pid):
    return status_kib(pid, "VmRSS")


def settled_rss_kib(pid, interval=1.0, tolerance_kib=64, max_seconds=60.0):
    """VmRSS once two reads `interval` apart agree within the tolerance, or the last read and
    False after max_seconds. This is measurement, not synchronisation: readiness is known
    from the server's log and the clients' `ready` lines before this is called."""
    deadline = time.monotonic() + max_seconds
    prev = vm_rss_kib(pid)
    while True:
        time.sleep(interval)
        cur = vm_rss_kib(pid)
        if abs(cur - prev) <= tolerance_kib:
            return cur, True
        if time.monotonic() > deadline:
            return cur, False
        prev = cur


def cpu_seconds(pid):
    """utime + stime of a process, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_redis(binary, cmd_prefix=()):
    """A private redis-server on a free loopback port (no persistence); (Proc, port)."""
    port = free_port()
    cmd = list(cmd_prefix) + [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"]
    r = Proc(cmd, "redis-server")
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or r.p.poll() is not None:
            r.stop(signal.SIGKILL)
            raise RuntimeError("redis-server did not start:\n" + "\n".join(r.lines[-20:]))
        time.sleep(0.02)
    return r, port


def redis_numsub(port):
    """Subscribers of the gateway's publish channel on the Redis at `port`."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"*3\r\n$6\r\nPUBSUB\r\n$6\r\nNUMSUB\r\n$22\r\nsockjs-gateway:publish\r\n")
        data = b""
        # *2 $22 sockjs-gateway:publish :N -> four CRLF-terminated lines
        while data.count(b"\r\n") < 4:
            chunk = s.recv(256)
            if not chunk:
                raise RuntimeError("redis closed the connection")
            data += chunk
    return int(data.split(b"\r\n")[3][1:])


def wait_redis_subscribers(port, n, timeout=30):
    deadline = time.monotonic() + timeout
    while redis_numsub(port) < n:
        if time.monotonic() > deadline:
            raise RuntimeError("only %d of %d nodes subscribed to Redis"
                               % (redis_numsub(port), n))
        time.sleep(0.02)


def start_server(cmd, name="gateway", timeout=30):
    """Starts a server command line that logs `listening on HOST:PORT` and `publish API on
    HOST:PORT` (the gateway and the peers do), waits for both; sets .port and .api_port."""
    g = Proc(cmd, name)
    try:
        m = g.wait_line(LISTEN_RE, timeout)
        a = g.wait_line(API_RE, timeout)
    except BaseException:
        g.stop(signal.SIGKILL)
        raise
    g.port, g.api_port = int(m.group(2)), int(a.group(2))
    return g


def gateway_cmd(binary, extra=(), api=True, secret=SECRET):
    """The gateway's (or a peer's) command line on ephemeral loopback ports."""
    cmd = [binary, "--listen", "127.0.0.1:0"]
    if api:
        cmd += ["--api-listen", "127.0.0.1:0", "--api-key", API_KEY]
    return cmd + ["--jwt-secret", secret] + list(extra)


def start_gateway(binary, extra=()):
    """One gateway with the API, the bench key and secret (latency.py's and deflate.py's)."""
    return start_server(gateway_cmd(binary, extra))


def run_rounds(run_once, rounds, keys, out=None):
    """Calls run_once() `rounds` times, printing each result (a dict) as a JSON line, then
    the median of each of `keys` over the rounds; writes all of it to `out` (JSON) if given."""
    runs = []
    for _ in range(rounds):
        r = run_once()
        print(json.dumps(r), flush=True)
        runs.append(r)
    medians = {k: statistics.median(r[k] for r in runs if r.get(k) is not None) for k in keys}
    print("median over %d runs: %s" % (len(runs), json.dumps(medians)))
    if out:
        with open(out, "w") as f:
            json.dump({"command": sys.argv, "runs": runs, "medians": medians}, f, indent=1)
    return medians


def summary_line(proc, timeout):
    """The JSON summary line a bench tool (loadgen, publisher) prints last."""
    m = proc.wait_line(r"^\{.*\}$", timeout)
    return json.loads(m.group(0))


def wait_api_ready(publisher, api_port, timeout=30, cmd_prefix=()):
    """Until one probe publish (global, to a site nobody is on) is accepted: with Redis the API
    answers 503 until the engine is connected. Polling with a deadline: there is no event."""
    deadline = time.monotonic() + timeout
    cmd = list(cmd_prefix) + [publisher, "--api", "127.0.0.1:%d" % api_port, "--api-key",
                              API_KEY, "--scope", "global", "--site", "bench-probe", "--count",
                              "1", "--timeout", "5"]
    while True:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if r.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("publish API not ready: %s" % r.stdout.strip())
        time.sleep(0.05)


async def read_ws_frame(reader):
    """(opcode, payload) of one unmasked server websocket frame from an asyncio reader (the
    gateway does not fragment)."""
    head = await reader.readexactly(2)
    n = head[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    return head[0] & 0x0F, await reader.readexactly(n)
