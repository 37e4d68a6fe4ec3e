#!/usr/bin/python3
"""How long one large publish keeps the gateway from other work.

Holds --sessions websocket sessions (default 10,000; users "u<i>" of site "bench", opened by
bench/loadgen with tokens), then publishes the largest publish the default limits allow: one
user publish naming every session's id, padded with ids nobody holds up to --channels (10,000,
the default --max-publish-channels), or with --batch B an array of B of them. Meanwhile a
prober sends GET /sockjs/info every --interval-ms (1 ms) on one keep-alive connection,
pipelined (it does not wait for an answer before sending the next), and times each answer.

Reported per run:
  - delivery: publish written -> last message received (loadgen's latency maximum; the event
    data carries the publish time);
  - /info latency over the requests sent from the publish until the last message arrived:
    p50 / p99 / max and how many.
Then the median of --runs runs (a fresh gateway each). Not a test: nothing passes or fails.

    bench/publish_stall.py build/sockjs-gateway
    bench/publish_stall.py /tmp/old/build/sockjs-gateway --loadgen build/bench/loadgen --batch 10
"""

import argparse
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import threading
import time

from benchlib import API_KEY, SECRET, SITE, Proc, start_gateway, summary_line

INFO_REQUEST = b"GET /sockjs/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


class InfoProber:
    """GET /sockjs/info every `interval` s, pipelined on one connection; (sent, answered) pairs
    in CLOCK_MONOTONIC seconds. Responses come in request order (HTTP/1.1)."""

    def __init__(self, port, interval):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.interval = interval
        self.sent = []
        self.answered = []
        self.stop_flag = False
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.writer = threading.Thread(target=self._write, daemon=True)

    def start(self):
        self.reader.start()
        self.writer.start()

    def _write(self):
        next_t = time.monotonic()
        while not self.stop_flag:
            with self.lock:
                self.sent.append(time.monotonic())
            self.sock.sendall(INFO_REQUEST)
            next_t += self.interval
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.monotonic()

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            now = time.monotonic()
            # Each response is a head with Content-Length and a body.
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = buf[:end].decode("latin-1").lower()
                length = 0
                for line in head.split("\r\n"):
                    if line.startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                if len(buf) < end + 4 + length:
                    break
                buf = buf[end + 4 + length:]
                self.answered.append(now)

    def stop(self):
        self.stop_flag = True
        self.writer.join()
        # Every request sent gets its answer before the connection is closed.
        deadline = time.monotonic() + 30
        while len(self.answered) < len(self.sent) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.sock.close()

    def latencies(self, t0, t1):
        """Latencies (s) of the requests sent in [t0, t1]."""
        with self.lock:
            pairs = list(zip(self.sent, self.answered))
        return [a - s for s, a in pairs if t0 <= s <= t1]


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def publish(api_port, body):
    """POST /api/publish on a new connection; returns (status, response, CLOCK_MONOTONIC s of
    the write). Every `"t":0` in the body becomes the time of writing (CLOCK_REALTIME ns, as
    loadgen expects)."""
    data = json.dumps(body, separators=(",", ":")).encode()
    written = time.monotonic()
    data = data.replace(b'"t":0', b'"t":%d' % time.time_ns())
    req = (b"POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
           b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
           % (API_KEY.encode(), len(data))) + data
    with socket.create_connection(("127.0.0.1", api_port), timeout=60) as s:
        s.sendall(req)
        resp = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            resp += chunk
    return int(resp.split(b" ", 2)[1]), resp, written


def run_once(args, printed):
    procs = []
    prober = None
    try:
        extra = ["--api-max-body-bytes", str(16 << 20)] + args.gateway_arg
        g = start_gateway(args.gateway, extra)
        procs.append(g)
        expect = args.sessions * args.batch
        client = Proc([args.loadgen, "--target", "127.0.0.1:%d" % g.port, "--sessions",
                       str(args.sessions), "--jwt-secret", SECRET, "--site", SITE,
                       "--users", str(args.sessions), "--expect", str(expect),
                       "--timeout", "300"], "loadgen", stdin=subprocess.PIPE)
        procs.append(client)
        client.wait_line(r"^ready \d+", 180)
        if not printed:
            for p in procs:
                print("# %s: %s" % (p.name, shlex.join(p.cmd)))
            sys.stdout.flush()
        ids = ["u%d" % i for i in range(args.sessions)]
        ids += ["nobody%d" % i for i in range(args.channels - len(ids))]
        prober = InfoProber(g.port, args.interval_ms / 1000.0)
        prober.start()
        time.sleep(0.2)  # a baseline of answered probes before the publish
        body = [{"scope": "user", "site": SITE, "ids": ids, "event": "stall%d" % b,
                 "data": {"t": 0}} for b in range(args.batch)]
        status, resp, t0 = publish(g.api_port, body if args.batch > 1 else body[0])
        if status != 202:
            raise RuntimeError("publish answered %d: %r" % (status, resp[:300]))
        ls = summary_line(client, 300)
        prober.stop()
        # The window ends with the last delivery, not with loadgen's report: loadgen checks its
        # count every 100 ms and closes its 10,000 sessions before it reports.
        t1 = t0 + ls["lat_us"]["max"] / 1e6
        lat = prober.latencies(t0, t1)
        return {"received": ls["messages"], "expected": expect,
                "delivery_ms": ls["lat_us"]["max"] / 1000.0,
                "info_n": len(lat), "info_p50_ms": percentile(lat, 50) * 1000,
                "info_p99_ms": percentile(lat, 99) * 1000, "info_max_ms": max(lat) * 1000}
    finally:
        if prober and not prober.stop_flag:
            prober.stop()
        for p in reversed(procs):
            if p.p.poll() is None:
                if p.name == "loadgen":
                    p.close_stdin()
                status = p.stop()
                if p.name == "gateway" and status != 0:
                    print("# warning: gateway exited with status %s" % status)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("gateway", help="path of sockjs-gateway")
    ap.add_argument("--loadgen", help="loadgen binary (default: bench/loadgen next to the "
                    "gateway binary)")
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--channels", type=int, default=10000, help="ids per publish (10,000)")
    ap.add_argument("--batch", type=int, default=1, help="publishes in the one request (1)")
    ap.add_argument("--interval-ms", type=float, default=1.0, help="/sockjs/info period (1 ms)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--gateway-arg", action="append", default=[],
                    help="extra gateway argument (repeatable)")
    args = ap.parse_args()
    args.gateway = os.path.abspath(args.gateway)
    args.loadgen = args.loadgen or os.path.join(os.path.dirname(args.gateway), "bench",
                                                "loadgen")
    if not os.access(args.loadgen, os.X_OK):
        sys.exit("no loadgen at %s (build the bench targets, or pass --loadgen)" % args.loadgen)
    if args.channels < args.sessions:
        sys.exit("--channels must be at least --sessions")

    print("# command: %s" % shlex.join([sys.executable] + sys.argv))
    results = []
    for run in range(args.runs):
        r = run_once(args, printed=run > 0)
        results.append(r)
        print("run %d: %d/%d delivered in %.1f ms; /info during it: %d requests, p50 %.2f ms, "
              "p99 %.2f ms, max %.2f ms"
              % (run + 1, r["received"], r["expected"], r["delivery_ms"], r["info_n"],
                 r["info_p50_ms"], r["info_p99_ms"], r["info_max_ms"]))
        sys.stdout.flush()
    med = {k: statistics.median(r[k] for r in results)
           for k in ("delivery_ms", "info_p50_ms", "info_p99_ms", "info_max_ms")}
    print()
    print("| sessions | channels x publishes | delivery (ms) | /info p50 (ms) | /info p99 (ms) "
          "| /info max (ms) | all delivered |")
    print("|---|---|---|---|---|---|---|")
    print("| %d | %d x %d | %.1f | %.2f | %.2f | %.2f | %s |"
          % (args.sessions, args.channels, args.batch, med["delivery_ms"], med["info_p50_ms"],
             med["info_p99_ms"], med["info_max_ms"],
             "yes" if all(r["received"] == r["expected"] for r in results) else "NO"))
    print("(median of %d runs)" % args.runs)


if __name__ == "__main__":
    main()
