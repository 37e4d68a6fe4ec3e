#!/usr/bin/python3
"""What presence costs on a session's open and close, and how fast a dead node's users leave.

Per round, on the embedded engine and then against a private redis-server (fresh for each
round) with `--engine redis`:
  1. loadgen opens N websocket sessions (users u<i> of 100 companies, site "bench") on node 1,
     unpaced, 1,000 connecting at once, holds them --hold seconds and closes them;
  2. once node 1's /api/stats shows no connection and no lingering session (the leave delay
     over), reads node 1's CPU seconds (utime + stime) spent from before loadgen started, and
     Redis's command counts (INFO commandstats: calls, over every command) and node 1's
     presence.redis_commands;
  3. with 2 nodes on that Redis: opens --dead-sessions sessions on node 2, waits until node 1's answer for the site counts
     them, SIGKILLs node 2 and polls node 1's /api/presence (global scope) until they are gone:
     the time a dead node's users take to leave (--node-timeout-ms).
With --baseline BINARY, step 1 and 2 also run on that binary (a build without presence; it
gets no presence options) in the same round, so the extra CPU per open+close is a difference
measured side by side.

    bench/presence.py build/sockjs-gateway --baseline /tmp/old/sockjs-gateway --rounds 3

Polling with a deadline is how the state is awaited: a count has no event to wait for.
"""

import argparse
import json
import os
import signal
import statistics
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402


def api_get(port, path):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 headers={"Authorization": "Bearer " + bl.API_KEY})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def redis_calls(port):
    """Commands Redis has executed (INFO commandstats, the scripts' own calls included), and
    the EVAL/EVALSHA among them (the commands the gateway sent)."""
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            data += chunk
            if not chunk or (data.startswith(b"$") and b"\r\n" in data and
                             len(data) >= int(data[1:data.index(b"\r\n")]) +
                             data.index(b"\r\n") + 4):
                break
    total = evals = 0
    for line in data.decode().splitlines():
        if line.startswith("cmdstat_"):
            name, rest = line.split(":", 1)
            calls = int(rest.split("calls=")[1].split(",")[0])
            total += calls
            if name in ("cmdstat_eval", "cmdstat_evalsha"):
                evals += calls
    return total, evals


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(0.02)


def open_close(args, binary, rport, loadgen):
    """rport None: the embedded engine."""
    engine = ["--engine", "redis://127.0.0.1:%d" % rport] if rport else []
    g = bl.start_server(bl.gateway_cmd(binary, engine))
    try:
        wait_until(lambda: api_get(g.api_port, "/api/stats")["engine"]["available"], 30,
                   "the engine")
        calls0, evals0 = redis_calls(rport) if rport else (0, 0)
        cpu0 = bl.cpu_seconds(g.p.pid)
        lg = bl.Proc([loadgen, "--target", "127.0.0.1:%d" % g.port, "--sessions",
                      str(args.sessions), "--procs", "1", "--rate", "0", "--max-inflight", "1000",
                      "--jwt-secret", bl.SECRET, "--site", "bench", "--users", str(args.sessions),
                      "--companies", "100", "--hold", str(args.hold), "--timeout", "300"],
                     "loadgen")
        summary = bl.summary_line(lg, 320)
        lg.stop()

        def settled():
            st = api_get(g.api_port, "/api/stats")
            return (st["sessions"]["connections"] == 0 and
                    st.get("presence", {}).get("lingering", 0) == 0 and st)
        st = wait_until(settled, 60, "sessions and lingering presence to end")
        cpu = bl.cpu_seconds(g.p.pid) - cpu0
        calls, evals = redis_calls(rport) if rport else (0, 0)
        pres = st.get("presence", {})
        return {"opened": summary["opened"], "cpu_s": cpu,
                "cpu_us_per_session": cpu * 1e6 / max(1, summary["opened"]),
                "redis_calls": calls - calls0, "redis_evals": evals - evals0,
                "presence_commands": pres.get("redis_commands"),
                "presence_changes": pres.get("redis_changes")}
    finally:
        g.stop()


def dead_node(args, binary, rport, loadgen):
    extra = ["--engine", "redis://127.0.0.1:%d" % rport, "--node-timeout-ms",
             str(args.node_timeout_ms), "--presence-events"]
    n1 = bl.start_server(bl.gateway_cmd(binary, extra))
    n2 = bl.start_server(bl.gateway_cmd(binary, extra))
    lg = None
    try:
        for n in (n1, n2):
            wait_until(lambda: api_get(n.api_port, "/api/stats")["engine"]["available"], 30,
                       "the engine")
        lg = bl.Proc([loadgen, "--target", "127.0.0.1:%d" % n2.port, "--sessions",
                      str(args.dead_sessions), "--jwt-secret", bl.SECRET, "--site", "deadbench",
                      "--users", str(args.dead_sessions), "--companies", "10", "--timeout",
                      "300"], "loadgen", stdin=__import__("subprocess").PIPE)
        lg.wait_line(r"^ready ", 120)

        def counted():
            return api_get(n1.api_port, "/api/presence?site=deadbench&scope=global")[
                "sessions"] == args.dead_sessions
        wait_until(counted, 30, "node 2's sessions in node 1's answer")
        killed = time.monotonic()
        n2.stop(signal.SIGKILL)
        wait_until(lambda: api_get(n1.api_port, "/api/presence?site=deadbench&scope=global")[
            "sessions"] == 0, args.node_timeout_ms / 1000 * 3 + 30, "the dead node's sessions")
        took = time.monotonic() - killed
        leaves = api_get(n1.api_port, "/api/stats")["presence"]["leaves"]
        return {"dead_leave_s": took, "leaves_on_node1": leaves}
    finally:
        if lg:
            lg.stop(signal.SIGKILL)
        n2.stop(signal.SIGKILL)
        n1.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gateway")
    ap.add_argument("--baseline", help="a gateway binary without presence, measured alike")
    ap.add_argument("--loadgen", default=None)
    ap.add_argument("--redis", default="/usr/bin/redis-server")
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--hold", type=float, default=1.0)
    ap.add_argument("--dead-sessions", type=int, default=1000)
    ap.add_argument("--node-timeout-ms", type=int, default=15000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    loadgen = args.loadgen or os.path.join(os.path.dirname(os.path.abspath(args.gateway)),
                                           "bench", "loadgen")
    runs = []
    for rnd in range(args.rounds):
        r = {"round": rnd + 1}
        redis, rport = bl.start_redis(args.redis)
        try:
            for engine, port in (("local", None), ("redis", rport)):
                head = open_close(args, args.gateway, port, loadgen)
                r.update({"%s_head_%s" % (engine, k): v for k, v in head.items()})
                if args.baseline:
                    base = open_close(args, args.baseline, port, loadgen)
                    r.update({"%s_base_%s" % (engine, k): v for k, v in base.items()})
                    r[engine + "_extra_cpu_us_per_session"] = (head["cpu_us_per_session"] -
                                                               base["cpu_us_per_session"])
            r.update(dead_node(args, args.gateway, rport, loadgen))
        finally:
            redis.stop()
        print(json.dumps(r), flush=True)
        runs.append(r)
    keys = [k for k in runs[0] if k != "round" and isinstance(runs[0][k], (int, float))
            and all(isinstance(r.get(k), (int, float)) for r in runs)]
    med = {k: statistics.median(r[k] for r in runs) for k in keys}
    print("median over %d rounds:" % len(runs))
    for k in keys:
        print("  %-32s %.3f" % (k, med[k]))


if __name__ == "__main__":
    main()
