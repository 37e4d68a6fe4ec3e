#!/usr/bin/python3
"""permessage-deflate: bytes on the wire and gateway CPU, with and without --ws-deflate.

Per run: a fresh gateway (default mode, embedded engine, ephemeral loopback ports), --sessions
websocket sessions of one company held by bench/loadgen (C; with --deflate it offers
permessage-deflate like Chromium and inflates what arrives), then --messages realistic
`contacts.updated` events (~500 bytes of JSON with repetition, different in every event)
published to that company through the publish API, --batch publishes per request. loadgen stops
once every session has every event (--expect); the gateway's CPU time (utime + stime from
/proc/PID/stat) is taken when the sessions are ready and again at the end.

Reported per run and as the median of --repeats runs per mode:
  wire B/msg    bytes read from the sockets per delivered message (loadgen's `bytes`, which also
                holds each session's 101 response, "o" and ready message: ~1 byte per message at
                300 messages)
  frame B/msg   the SockJS frame as the application sees it (inflated), for comparison
  CPU ms/1k     gateway CPU milliseconds per 1,000 deliveries (publish parsing included)

Not a test: nothing passes or fails. The exact command lines are printed.

    bench/deflate.py build/sockjs-gateway
    bench/deflate.py build/sockjs-gateway --sessions 2000 --messages 500 --repeats 5
"""

import argparse
import http.client
import json
import os
import shlex
import statistics
import sys
import time

import benchlib

NAMES = [("Anna", "Müller"), ("Jonas", "Schmidt"), ("Lea", "Schneider"), ("Paul", "Fischer"),
         ("Marie", "Weber"), ("Felix", "Meyer"), ("Sophie", "Wagner"), ("Lukas", "Becker")]
CITIES = [("Berlin", "10115"), ("Hamburg", "20095"), ("München", "80331"), ("Köln", "50667")]


def event(i, company):
    """One contacts.updated event; ids, names and times change from event to event."""
    first, last = NAMES[i % len(NAMES)]
    city, zip_code = CITIES[i % len(CITIES)]
    login = "%s.%s" % (first.lower(), last.lower().replace("ü", "ue"))
    data = {
        "contact": {
            "id": 100000 + i, "first_name": first, "last_name": last,
            "email": "%s@example.com" % login, "phone": "+49 30 %07d" % (1234567 + 37 * i),
            "company": "Example Handels GmbH", "tags": ["customer", "newsletter"],
            "address": {"street": "Hauptstraße %d" % (i % 200 + 1), "city": city,
                        "zip": zip_code, "country": "DE"},
            "updated_at": "2026-11-21T14:%02d:%02dZ" % (i // 60 % 60, i % 60),
            "updated_by": {"id": 42, "name": "Max Mustermann",
                           "email": "max.mustermann@example.com"},
        },
        "changes": ["email", "phone", "address.street"],
    }
    return {"scope": "client", "site": benchlib.SITE, "ids": [company],
            "event": "contacts.updated", "data": data}


class Api:
    """One keep-alive connection to the publish API (embedded engine: ready once it listens)."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def publish(self, body):
        self.conn.request("POST", "/api/publish", body=json.dumps(body).encode(), headers={
            "Authorization": "Bearer " + benchlib.API_KEY, "Content-Type": "application/json"})
        r = self.conn.getresponse()
        payload = r.read()
        if r.status != 202:
            raise RuntimeError("publish answered %d: %r" % (r.status, payload[:200]))

    def close(self):
        self.conn.close()


def run_once(args, deflate):
    extra = ["--ws-deflate"] if deflate else []
    gw = benchlib.start_gateway(args.gateway, extra)
    lg = None
    try:
        print("  $ " + shlex.join(gw.cmd), flush=True)
        api = Api(gw.api_port)
        expect = args.sessions * args.messages
        cmd = [args.loadgen, "--target", "127.0.0.1:%d" % gw.port, "--sessions",
               str(args.sessions), "--jwt-secret", benchlib.SECRET, "--site", benchlib.SITE,
               "--companies", "1", "--expect", str(expect), "--timeout", "300"]
        if deflate:
            cmd.append("--deflate")
        print("  $ " + shlex.join(cmd), flush=True)
        lg = benchlib.Proc(cmd, "loadgen")
        lg.wait_line(r"^ready (\d+)", 120)
        time.sleep(0.2)  # let the opening settle: only delivery work in the measurement
        cpu0 = benchlib.cpu_seconds(gw.p.pid)
        for first in range(0, args.messages, args.batch):
            body = [event(i, "c0") for i in range(first, min(first + args.batch, args.messages))]
            api.publish(body)
        api.close()
        summary = benchlib.summary_line(lg, 300)
        cpu1 = benchlib.cpu_seconds(gw.p.pid)
    finally:
        if lg is not None:
            lg.stop()
        status = gw.stop()
    if summary.get("error") or summary["messages"] < expect:
        raise RuntimeError("loadgen: %s (%d of %d messages)"
                           % (summary.get("error"), summary["messages"], expect))
    if bool(summary.get("deflate")) != deflate:
        raise RuntimeError("deflate negotiated: %r, expected %r" % (summary.get("deflate"),
                                                                     deflate))
    n = summary["messages"]
    return {"wire": summary["bytes"] / n, "frame": summary["payload_bytes"] / n,
            "cpu": (cpu1 - cpu0) * 1000 / (n / 1000), "exit": status}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gateway", nargs="?", default="build/sockjs-gateway")
    ap.add_argument("--loadgen", help="default: bench/loadgen next to the gateway binary")
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--batch", type=int, default=10, help="publishes per API request")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    args.loadgen = args.loadgen or os.path.join(os.path.dirname(args.gateway), "bench",
                                                "loadgen")
    results = {False: [], True: []}
    for r in range(args.repeats):
        for deflate in (False, True):
            print("run %d, %s:" % (r + 1, "--ws-deflate" if deflate else "plain"), flush=True)
            res = run_once(args, deflate)
            print("  wire %.1f B/msg, frame %.1f B/msg, CPU %.2f ms/1k deliveries, exit %d"
                  % (res["wire"], res["frame"], res["cpu"], res["exit"]), flush=True)
            results[deflate].append(res)
    print("\n%d sessions x %d events, median of %d runs" % (args.sessions, args.messages,
                                                          args.repeats))
    print("mode           wire B/msg  frame B/msg  CPU ms/1k deliveries")
    for deflate in (False, True):
        rs = results[deflate]
        print("%-14s %10.1f  %11.1f  %20.2f" % (
            "--ws-deflate" if deflate else "plain",
            statistics.median(x["wire"] for x in rs), statistics.median(x["frame"] for x in rs),
            statistics.median(x["cpu"] for x in rs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
