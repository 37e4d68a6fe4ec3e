#!/usr/bin/python3
"""Idle memory per SockJS session, measured on the gateway's resident set.

For each of R rounds, with a fresh gateway (`--listen 127.0.0.1:0`, default mode):
  1. read VmRSS from /proc/PID/status once the gateway is listening and its RSS is stable;
  2. open N sessions with bench/loadgen (its worker processes hold at most --per-process each,
     since a process can hold only ~19,900 fds) and wait for its `ready N` line;
  3. wait until the gateway's RSS is stable again (two reads --settle-interval apart differ by
     at most --stable-kib), read it, and compute (RSS_N - RSS_0) / N;
then close loadgen's stdin (it stops and prints its JSON summary: sessions lost, heartbeats) and
stop the gateway. Prints a table and the median bytes per session.

Builds nothing: pass the gateway binary and, unless it sits next to it as bench/loadgen in the
same build tree, --loadgen PATH.

    bench/idle_memory.py build/sockjs-gateway
    bench/idle_memory.py build/sockjs-gateway --sessions 19000 --repeats 5
    bench/idle_memory.py build/sockjs-gateway --transport xhr-streaming

Sessions authenticate with a token each (loadgen mints them: distinct users "u<i>" of 100
companies on site "bench"), so that the delivery state (three channel subscriptions) is
counted. Only user-space memory of the gateway is measured; the kernel's socket memory (~10 KB
per loopback connection pair) is not in VmRSS.
"""

import argparse
import json
import math
import os
import re
import selectors
import statistics
import subprocess
import sys
import threading
import time

from benchlib import settled_rss_kib, status_kib  # /proc readers shared with bench/run

LISTEN_RE = re.compile(r"listening on 127\.0\.0\.1:(\d+)")

# The gateway is started with this secret; loadgen mints the sessions' tokens with it.
SECRET = "idle-memory-secret"


class Gateway:
    def __init__(self, binary, extra_args, start_timeout):
        self.log = []
        self.port = None
        self._ready = threading.Event()
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--jwt-secret", SECRET, *extra_args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, errors="replace")
        # Drained for the whole run: an unread pipe would eventually block the gateway.
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        if not self._ready.wait(start_timeout) or self.port is None:
            self.kill()
            raise RuntimeError("gateway did not log 'listening on 127.0.0.1:PORT'; log tail:\n"
                               + "".join(self.log[-20:]))

    def _read_log(self):
        for line in self.proc.stderr:
            self.log.append(line)
            if len(self.log) > 2000:
                del self.log[:1000]
            m = LISTEN_RE.search(line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self._ready.set()
        self._ready.set()

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def start_loadgen(args, port):
    """Starts loadgen and waits for its `ready` line. Returns the process (its stdin open:
    closing it stops loadgen)."""
    procs = max(1, math.ceil(args.sessions / args.per_process))
    cmd = [args.loadgen, "--target", "127.0.0.1:%d" % port, "--prefix", args.prefix,
           "--sessions", str(args.sessions), "--procs", str(procs),
           "--sources", str(args.sources), "--transport", args.transport,
           "--jwt-secret", SECRET, "--site", "bench", "--users", str(args.sessions),
           "--companies", "100", "--connect-timeout", str(args.ready_timeout),
           # The hold ends when we close stdin; this only bounds a run that went wrong.
           "--timeout", str(args.ready_timeout + args.idle_seconds + 3 * args.settle_max + 120)]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + args.ready_timeout + 10
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("loadgen not ready in time")
            if not sel.select(min(left, 1.0)):
                continue
            line = p.stdout.readline()
            if line.startswith("ready "):
                return p
            if line == "" or line.startswith("{"):
                raise RuntimeError("loadgen ended before ready (status %s): %s"
                                   % (p.wait(), line.strip()))
    except BaseException:
        stop_loadgen(p)
        raise
    finally:
        sel.close()


def stop_loadgen(p):
    """Closes loadgen's stdin (its signal to stop); returns its JSON summary (or {})."""
    try:
        p.stdin.close()
    except OSError:
        pass
    # loadgen writes one short line at exit, so waiting before reading cannot block.
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    out = p.stdout.read()
    p.stdout.close()
    for line in out.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    return {}


def one_round(args, n):
    gw = Gateway(args.gateway, args.gateway_arg, args.start_timeout)
    try:
        rss0, ok0 = settled_rss_kib(gw.proc.pid, args.settle_interval, args.stable_kib,
                                    args.settle_max)
        anon0 = status_kib(gw.proc.pid, "RssAnon")
        t0 = time.monotonic()
        lg = start_loadgen(args, gw.port)
        open_s = time.monotonic() - t0
        # Optional: let a heartbeat round (25 s by default) pass, so its buffers are counted.
        time.sleep(args.idle_seconds)
        rss_n, ok_n = settled_rss_kib(gw.proc.pid, args.settle_interval, args.stable_kib,
                                      args.settle_max)
        anon_n = status_kib(gw.proc.pid, "RssAnon")
        summary = stop_loadgen(lg)
        lost, heartbeats = summary.get("lost", -1), summary.get("heartbeats", -1)
    finally:
        status = gw.stop()
    per = (rss_n - rss0) * 1024 / args.sessions
    # RssAnon leaves out file-backed pages (library code first touched by the sessions' code
    # paths), which are shared and do not grow with the number of sessions.
    anon_per = (anon_n - anon0) * 1024 / args.sessions
    return {"round": n, "rss0": rss0, "rss_n": rss_n, "per": per, "anon_per": anon_per,
            "open_s": open_s,
            "settled": ok0 and ok_n, "lost": lost, "heartbeats": heartbeats,
            "status": status}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gateway", help="path of the sockjs-gateway binary")
    ap.add_argument("--loadgen", help="path of loadgen (default: bench/loadgen in the "
                    "gateway's build tree)")
    ap.add_argument("--transport", default="websocket",
                    choices=("websocket", "xhr-streaming", "xhr-polling"))
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--per-process", type=int, default=10000,
                    help="sessions per loadgen worker process (fd limit: keep below ~19,900)")
    ap.add_argument("--sources", type=int, default=0,
                    help="source addresses 127.0.0.2.. (default: one per 20k sessions, at "
                    "least 2)")
    ap.add_argument("--prefix", default="/sockjs")
    ap.add_argument("--gateway-arg", action="append", default=[],
                    help="extra gateway argument (repeatable)")
    ap.add_argument("--idle-seconds", type=float, default=0.0,
                    help="hold the sessions this long before measuring (e.g. 30 to include "
                    "a heartbeat round)")
    ap.add_argument("--settle-interval", type=float, default=1.0)
    ap.add_argument("--stable-kib", type=int, default=64,
                    help="two RSS reads within this many KiB count as stable")
    ap.add_argument("--settle-max", type=float, default=60.0)
    ap.add_argument("--start-timeout", type=float, default=20.0)
    ap.add_argument("--ready-timeout", type=float, default=300.0)
    args = ap.parse_args()

    if args.loadgen is None:
        args.loadgen = os.path.join(os.path.dirname(os.path.abspath(args.gateway)), "bench",
                                    "loadgen")
    for path in (args.gateway, args.loadgen):
        if not os.access(path, os.X_OK):
            ap.error(f"{path} is not an executable (build it, or pass --loadgen)")
    if args.sessions <= 0 or args.repeats <= 0 or not 0 < args.per_process <= 19900:
        ap.error("need --sessions > 0, --repeats > 0, 0 < --per-process <= 19900")
    if args.sources <= 0:
        args.sources = max(2, math.ceil(args.sessions / 20000))

    print(f"idle memory: {args.sessions} {args.transport} sessions on {args.prefix}, "
          f"{math.ceil(args.sessions / args.per_process)} loadgen worker(s), "
          f"{args.repeats} round(s)", flush=True)
    rows = []
    for n in range(1, args.repeats + 1):
        try:
            rows.append(one_round(args, n))
        except RuntimeError as e:
            print(f"round {n} failed: {e}", file=sys.stderr)
            return 1
        r = rows[-1]
        print(f"  round {n}: RSS {r['rss0']} KiB -> {r['rss_n']} KiB, "
              f"{r['per']:.0f} B/session ({r['anon_per']:.0f} B anonymous), opened in {r['open_s']:.1f} s", flush=True)

    print()
    print(f"{'round':>5} {'RSS_0 KiB':>10} {'RSS_N KiB':>10} {'B/session':>10} {'anon B/s':>9} "
          f"{'open s':>7} {'lost':>5} {'hb':>7} {'settled':>7} {'exit':>5}")
    for r in rows:
        print(f"{r['round']:>5} {r['rss0']:>10} {r['rss_n']:>10} {r['per']:>10.0f} "
              f"{r['anon_per']:>9.0f} "
              f"{r['open_s']:>7.1f} {r['lost']:>5} {r['heartbeats']:>7} "
              f"{'yes' if r['settled'] else 'NO':>7} "
              f"{'-' if r['status'] is None else r['status']:>5}")
    med = statistics.median(r["per"] for r in rows)
    anon_med = statistics.median(r["anon_per"] for r in rows)
    print(f"median: {med:.0f} bytes per idle session (VmRSS), {anon_med:.0f} bytes anonymous "
          f"memory (RssAnon) (N = {args.sessions})")
    if any(r["lost"] for r in rows):
        print("warning: sessions were lost while idle; the figure is suspect", file=sys.stderr)
    if any(r["status"] not in (0,) for r in rows):
        print("warning: the gateway did not exit 0 on SIGTERM in every round", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
