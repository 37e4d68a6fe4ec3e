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
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time

from benchlib import (API_KEY, SECRET, SITE, Proc, cpu_seconds, redis_numsub,  # noqa: F401
                      start_gateway, start_redis, summary_line)
import benchlib

COMPANY = "c0"  # loadgen --companies 1: every session is in company c0


def wait_api_ready(args, node, timeout=30):
    """Until a probe publish is accepted (with Redis the API answers 503 until connected)."""
    benchlib.wait_api_ready(args.publisher, node.api_port, timeout)


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
