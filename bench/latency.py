#!/usr/bin/python3
"""Publish -> receive latency of scoped delivery.

Holds --sessions websocket sessions (default 1,000; distinct users of one company, on one site)
with bench/latency_client (C, libevent: it reads every socket and takes the receive time right
after read(), which Python could not do for 1,000 sockets without measuring itself), publishes
--events events through the publish API at --rate publishes per second, each with its publish
time (CLOCK_REALTIME ns, taken just before the request is written) in `data.t`, and reports the
publish -> receive latency over all deliveries: p50/p99 per run and the median of --runs runs.

Scenarios:
  (a) embedded: one node, the embedded engine; sessions and API on that node;
  (b) redis:    two nodes on one private redis-server; publishes on node 1's API, sessions on
                node 2 (every event crosses Redis).

The scope is "client" (one publish -> one delivery per session) unless --scope user, where one
publish lists every user id (same fan-out, one channel per user).

Every run starts fresh gateway(s) (and Redis) on ephemeral loopback ports and stops them with
SIGTERM; the exact command lines are printed. Not a test: nothing passes or fails.

    bench/latency.py build/sockjs-gateway
    bench/latency.py build/sockjs-gateway --scenario redis --events 1000 --rate 200
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

API_KEY = "bench-key"
SECRET = "bench-secret"
SITE = "bench"
COMPANY = "acme"
LISTEN_RE = re.compile(r"listening on ([0-9.]+):(\d+)")
API_RE = re.compile(r"publish API on ([0-9.]+):(\d+)")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims):
    head = b64url(b'{"alg":"HS256","typ":"JWT"}') + "." + \
        b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(SECRET.encode(), head.encode(), hashlib.sha256).digest()
    return head + "." + b64url(sig)


class Proc:
    """A child process whose output is drained into a list of lines."""

    def __init__(self, cmd, name, stdin=subprocess.DEVNULL):
        self.cmd = cmd
        self.name = name
        self.lines = []
        self.cond = threading.Condition()
        self.eof = False
        self.p = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for raw in self.p.stdout:
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_line(self, rx, timeout):
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

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            return self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


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


def start_redis(binary):
    port = free_port()
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
           "no"]
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


def start_gateway(binary, extra):
    cmd = [binary, "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--api-key",
           API_KEY, "--jwt-secret", SECRET] + extra
    g = Proc(cmd, "gateway")
    m = g.wait_line(LISTEN_RE, 30)
    a = g.wait_line(API_RE, 30)
    g.port, g.api_port = int(m.group(2)), int(a.group(2))
    return g


class Api:
    """Keep-alive HTTP/1.1 connection to the publish API (reconnects if the server closes)."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def post(self, body):
        data = json.dumps(body).encode()
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                self.conn.connect()
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.conn.request("POST", "/api/publish", body=data, headers={
                    "Authorization": "Bearer " + API_KEY, "Content-Type": "application/json"})
                r = self.conn.getresponse()
                payload = r.read()
                if r.will_close:
                    self.conn.close()
                    self.conn = None
                return r.status, payload
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise

    def publish_timed(self, event_body):
        """The body with data.t = now (ns) set as late as possible."""
        event_body["data"] = {"t": time.time_ns()}
        return self.post(event_body)


def wait_api_ready(api, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        status, _ = api.post({"scope": "global", "site": "bench-probe", "event": "probe",
                              "data": None})
        if status == 202:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("publish API not ready (status %d)" % status)
        time.sleep(0.05)


def run_once(args, scenario, tokens_path, users, printed):
    procs = []
    redis = None
    try:
        if scenario == "embedded":
            g = start_gateway(args.gateway, args.gateway_arg)
            procs.append(g)
            pub_node, sess_node = g, g
        else:
            redis, rport = start_redis(args.redis_server)
            engine = ["--engine", "redis://127.0.0.1:%d" % rport]
            n1 = start_gateway(args.gateway, engine + args.gateway_arg)
            procs.append(n1)
            n2 = start_gateway(args.gateway, engine + args.gateway_arg)
            procs.append(n2)
            pub_node, sess_node = n1, n2
            deadline = time.monotonic() + 30
            while redis_numsub(rport) < 2:
                if time.monotonic() > deadline:
                    raise RuntimeError("nodes did not subscribe")
                time.sleep(0.02)
        api = Api(pub_node.api_port)
        wait_api_ready(api)
        if scenario == "redis":
            wait_api_ready(Api(sess_node.api_port))
        expect = args.events * args.sessions
        client_cmd = [args.client, "--port", str(sess_node.port), "--tokens", tokens_path,
                      "--sessions", str(args.sessions), "--expect", str(expect),
                      "--timeout", str(max(30, 3 * args.events / args.rate + 20))]
        client = Proc(client_cmd, "latency_client", stdin=subprocess.PIPE)
        procs.append(client)
        if not printed:
            if redis:
                print("# redis:   %s" % shlex.join(redis.cmd))
            for p in procs:
                print("# %s: %s" % (p.name, shlex.join(p.cmd)))
            sys.stdout.flush()
        client.wait_line(r"^ready \d+", 120)
        if args.scope == "client":
            body = {"scope": "client", "site": SITE, "ids": [COMPANY], "event": "bench"}
        else:
            body = {"scope": "user", "site": SITE, "ids": users, "event": "bench"}
        interval = 1.0 / args.rate
        nodes = [p for p in procs if p.name == "gateway"]
        cpu0 = [cpu_seconds(p.p.pid) for p in nodes]
        next_at = time.monotonic()
        for _ in range(args.events):
            now = time.monotonic()
            if next_at > now:
                time.sleep(next_at - now)  # pacing the load, not synchronisation
            next_at += interval
            status, payload = api.publish_timed(dict(body))
            if status != 202:
                raise RuntimeError("publish answered %d: %r" % (status, payload[:200]))
        m = client.wait_line(r"^done (\d+) (\d+) ([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+) "
                             r"([-\d.]+)", 3 * args.events / args.rate + 60)
        cpu = [cpu_seconds(p.p.pid) - c0 for p, c0 in zip(nodes, cpu0)]
        client.p.stdin.close()
        client.stop()
        got, lost = int(m.group(1)), int(m.group(2))
        p50, p90, p99, p999, mx = (float(m.group(i)) for i in range(3, 8))
        return {"received": got, "expected": expect, "lost_sessions": lost, "p50": p50,
                "p90": p90, "p99": p99, "p999": p999, "max": mx, "cpu": cpu}
    finally:
        for p in reversed(procs):
            if p.p.poll() is None:
                if p.name == "latency_client":
                    try:
                        p.p.stdin.close()
                    except OSError:
                        pass
                status = p.stop()
                if p.name == "gateway" and status != 0:
                    print("# warning: gateway exited with status %s" % status)
        if redis:
            redis.stop()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("gateway", help="path of sockjs-gateway")
    ap.add_argument("--client", help="latency_client binary (default: bench/latency_client "
                    "next to the gateway binary)")
    ap.add_argument("--scenario", choices=("embedded", "redis", "both"), default="both")
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--events", type=int, default=500, help="publishes per run (500)")
    ap.add_argument("--rate", type=float, default=100.0,
                    help="publishes per second (100: 100k deliveries/s with 1,000 sessions)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--scope", choices=("client", "user"), default="client")
    ap.add_argument("--gateway-arg", action="append", default=[],
                    help="extra gateway argument (repeatable)")
    ap.add_argument("--redis-server", default=shutil.which("redis-server") or
                    "/usr/bin/redis-server")
    args = ap.parse_args()
    args.gateway = os.path.abspath(args.gateway)
    args.client = args.client or os.path.join(os.path.dirname(args.gateway), "bench",
                                              "latency_client")
    if not os.path.exists(args.client):
        sys.exit("no latency_client at %s (build the bench targets, or pass --client)"
                 % args.client)

    print("# command: %s" % shlex.join([sys.executable] + sys.argv))
    users = ["bench-user-%d" % i for i in range(args.sessions)]
    exp = int(time.time()) + 24 * 3600
    fd, tokens_path = tempfile.mkstemp(prefix="latency-tokens-")
    with os.fdopen(fd, "w") as f:
        for u in users:
            f.write(jwt({"sub": u, "client": COMPANY, "site": SITE, "exp": exp}) + "\n")
    scenarios = ("embedded", "redis") if args.scenario == "both" else (args.scenario,)
    summary = []
    try:
        for sc in scenarios:
            results = []
            for run in range(args.runs):
                r = run_once(args, sc, tokens_path, users, printed=run > 0)
                results.append(r)
                print("%-8s run %d: %d/%d deliveries, lost sessions %d, p50 %.0f us, p90 %.0f "
                      "us, p99 %.0f us, p99.9 %.0f us, max %.0f us; gateway CPU s %s"
                      % (sc, run + 1, r["received"], r["expected"], r["lost_sessions"],
                         r["p50"], r["p90"], r["p99"], r["p999"], r["max"],
                         "/".join("%.2f" % c for c in r["cpu"])))
                sys.stdout.flush()
            summary.append((sc, statistics.median(r["p50"] for r in results),
                            statistics.median(r["p99"] for r in results),
                            all(r["received"] == r["expected"] for r in results)))
    finally:
        os.unlink(tokens_path)
    print()
    print("| scenario | sessions | events | rate (publishes/s) | deliveries/s | p50 (ms) "
          "| p99 (ms) | all delivered |")
    print("|---|---|---|---|---|---|---|---|")
    for sc, p50, p99, ok in summary:
        print("| %s | %d | %d | %g | %d | %.2f | %.2f | %s |"
              % (sc, args.sessions, args.events, args.rate, int(args.rate * args.sessions),
                 p50 / 1000, p99 / 1000, "yes" if ok else "NO"))
    print("(median of %d runs; scope %s)" % (args.runs, args.scope))


if __name__ == "__main__":
    main()
