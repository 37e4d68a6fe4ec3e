#!/usr/bin/python3
"""Hash flooding, measured: the time to open --sessions xhr-polling sessions whose ids all
collide under FNV-1a (the session table's hash before issue 14; the ids are those of
tests/integration/test_hash_flood.py), and for comparison as many ordinary ids; pipelined on
one keep-alive connection, the gateway's CPU-seconds alongside. Medians over --runs.

    bench/hash_flood.py build/sockjs-gateway [--sessions 20000] [--runs 3]
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
import benchlib  # noqa: E402
from test_hash_flood import HttpClient, fnv_colliding_ids  # noqa: E402

PIPELINE = 500


def open_all(port, ids):
    client = HttpClient(port)
    try:
        for start in range(0, len(ids), PIPELINE):
            batch = ids[start:start + PIPELINE]
            for sid in batch:
                client.send("POST", "/sockjs/000/%s/xhr" % sid)
            for sid in batch:
                status, _, body = client.response()
                if (status, body) != (200, b"o\n"):
                    raise RuntimeError("%s: %d %r" % (sid, status, body))
    finally:
        client.close()


def one_run(binary, ids):
    # Every session must live through the run. (benchlib turns --max-sessions-per-ip off.)
    g = benchlib.start_gateway(binary, ["--disconnect-delay-ms", "600000",
                                        "--auth-timeout-ms", "600000"])
    try:
        cpu0, t0 = benchlib.cpu_seconds(g.pid), time.monotonic()
        open_all(g.port, ids)
        return time.monotonic() - t0, benchlib.cpu_seconds(g.pid) - cpu0
    finally:
        g.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--sessions", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out")
    args = ap.parse_args()
    colliding = fnv_colliding_ids(args.sessions)
    # Same length as the colliding ones (12), so that only the hash differs.
    ordinary = ["o%011d" % i for i in range(args.sessions)]

    def run_once():
        seconds, cpu = one_run(args.binary, colliding)
        ordinary_seconds, ordinary_cpu = one_run(args.binary, ordinary)
        return {"sessions": args.sessions, "colliding_s": seconds, "colliding_cpu_s": cpu,
                "ordinary_s": ordinary_seconds, "ordinary_cpu_s": ordinary_cpu}

    benchlib.run_rounds(run_once, args.runs, ("colliding_s", "colliding_cpu_s", "ordinary_s",
                                              "ordinary_cpu_s"), args.out)


if __name__ == "__main__":
    main()
