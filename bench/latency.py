#!/usr/bin/python3
"""Publish -> receive latency of scoped delivery.

Holds --sessions websocket sessions (default 1,000; distinct users "u<i>" of one company "c0", on
site "bench") with bench/loadgen (C: it reads every socket and takes the receive time right
after read(), which Python could not do for 1,000 sockets without measuring itself), publishes
--events events through the publish API at --rate publishes per second with bench/publisher
(each event's data carries its publish time, CLOCK_REALTIME ns, taken as the request is
written), and reports loadgen's publish -> receive latency over all deliveries: p50/p99 per run
and the median of --runs runs.

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
import threading
import time

API_KEY = "bench-key"
SECRET = "bench-secret"
SITE = "bench"
COMPANY = "c0"  # loadgen --companies 1: every session is in company c0
LISTEN_RE = re.compile(r"listening on ([0-9.]+):(\d+)")
API_RE = re.compile(r"publish API on ([0-9.]+):(\d+)")


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


def summary_line(proc, timeout):
    """The JSON summary line a bench tool prints last."""
    m = proc.wait_line(r"^\{.*\}$", timeout)
    return json.loads(m.group(0))


def wait_api_ready(args, node, timeout=30):
    """Until one probe publish (global, to a site nobody is on) is accepted: with Redis the API
    answers 503 until the engine is connected. Polling with a deadline: there is no event."""
    deadline = time.monotonic() + timeout
    cmd = [args.publisher, "--api", "127.0.0.1:%d" % node.api_port, "--api-key", API_KEY,
           "--scope", "global", "--site", "bench-probe", "--count", "1", "--timeout", "5"]
    while True:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if r.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("publish API not ready: %s" % r.stdout.strip())
        time.sleep(0.05)


def run_once(args, scenario, printed):
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
        wait_api_ready(args, pub_node)
        if scenario == "redis":
            wait_api_ready(args, sess_node)
        expect = args.events * args.sessions
        send_seconds = args.events / args.rate
        client_cmd = [args.loadgen, "--target", "127.0.0.1:%d" % sess_node.port,
                      "--sessions", str(args.sessions), "--jwt-secret", SECRET, "--site", SITE,
                      "--users", str(args.sessions), "--companies", "1",
                      "--expect", str(expect), "--timeout", str(int(3 * send_seconds + 120))]
        client = Proc(client_cmd, "loadgen", stdin=subprocess.PIPE)
        procs.append(client)
        client.wait_line(r"^ready \d+", 120)
        if args.scope == "client":
            ids = COMPANY
        else:
            ids = ",".join("u%d" % i for i in range(args.sessions))
        pub_cmd = [args.publisher, "--api", "127.0.0.1:%d" % pub_node.api_port,
                   "--api-key", API_KEY, "--scope", args.scope, "--site", SITE, "--ids", ids,
                   "--event", "bench", "--rate", str(args.rate), "--count", str(args.events)]
        if not printed:
            if redis:
                print("# redis:   %s" % shlex.join(redis.cmd))
            for p in procs:
                print("# %s: %s" % (p.name, shlex.join(p.cmd)))
            shown = list(pub_cmd)
            if "," in ids:
                shown[shown.index("--ids") + 1] = "<%d ids>" % len(ids.split(","))
            print("# publisher: %s" % shlex.join(shown))
            sys.stdout.flush()
        nodes = [p for p in procs if p.name == "gateway"]
        cpu0 = [cpu_seconds(p.p.pid) for p in nodes]
        pub = Proc(pub_cmd, "publisher")
        procs.append(pub)
        ps = summary_line(pub, send_seconds + 60)
        if ps["accepted"] != args.events:
            raise RuntimeError("publisher: %r" % ps)
        ls = summary_line(client, 3 * send_seconds + 60)
        cpu = [cpu_seconds(p.p.pid) - c0 for p, c0 in zip(nodes, cpu0)]
        lat = ls["lat_us"]
        return {"received": ls["messages"], "expected": expect, "lost_sessions": ls["lost"],
                "p50": lat["p50"], "p90": lat["p90"], "p99": lat["p99"], "p999": lat["p999"],
                "max": lat["max"], "cpu": cpu}
    finally:
        for p in reversed(procs):
            if p.p.poll() is None:
                if p.name == "loadgen":
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
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("gateway", help="path of sockjs-gateway")
    ap.add_argument("--loadgen", help="loadgen binary (default: bench/loadgen next to the "
                    "gateway binary)")
    ap.add_argument("--publisher", help="publisher binary (default: bench/publisher next to "
                    "the gateway binary)")
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
    for tool in ("loadgen", "publisher"):
        path = getattr(args, tool) or os.path.join(os.path.dirname(args.gateway), "bench", tool)
        if not os.access(path, os.X_OK):
            sys.exit("no %s at %s (build the bench targets, or pass --%s)" % (tool, path, tool))
        setattr(args, tool, path)

    print("# command: %s" % shlex.join([sys.executable] + sys.argv))
    scenarios = ("embedded", "redis") if args.scenario == "both" else (args.scenario,)
    summary = []
    for sc in scenarios:
        results = []
        for run in range(args.runs):
            r = run_once(args, sc, printed=run > 0)
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
