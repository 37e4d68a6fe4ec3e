#!/usr/bin/python3
"""Heap allocations on the HTTP upgrade path: how many malloc/calloc/realloc calls the gateway
makes to take one websocket session from accept to its open frame `o`.

The target (issue 5): none besides the session itself, i.e. the objects the open session keeps
(connection, websocket state, SockJS session; with a token also its user channel). The gateway
runs with bench/alloc_count.c preloaded, which counts every allocation and free into a file
mapped shared; this script reads the counters between sessions. After a warm-up (pools and
hash tables grown, libraries initialised), it opens sessions one at a time, each waited for
until its `o` arrived, and keeps them open, so that

    allocations per upgrade = (allocations after - before) / N
    kept per upgrade        = ((allocations - frees) after - before) / N   (the session itself)
    transient per upgrade   = allocations - kept

Modes: `echo` (--test-app, /echo: no token) and `token` (default app, an HS256 token in the URL:
verification and the three channel subscriptions included).

    bench/upgrade_allocs.py build/sockjs-gateway [--mode echo|token|both] [--sessions 1000]
"""
import argparse
import os
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import gwtest  # noqa: E402  (the integration harness: Gateway, WebSocket)
import scopedfix  # noqa: E402  (jwt_encode)

SECRET = "upgrade-allocs-secret"


class Counters:
    """The alloc_count file: malloc, calloc, realloc, free (uint64 each)."""

    def __init__(self):
        fd, self.path = tempfile.mkstemp(prefix="alloc-count-")
        os.write(fd, bytes(64))
        os.close(fd)

    def read(self):
        with open(self.path, "rb") as f:
            m, c, r, fr = struct.unpack("<4Q", f.read(32))
        return {"allocs": m + c + r, "frees": fr}

    def remove(self):
        os.unlink(self.path)


def open_session(port, mode, i):
    if mode == "echo":
        path = "/echo/000/s%d/websocket" % i
    else:
        token = scopedfix.jwt_encode({"sub": "u%d" % i, "client": "c%d" % (i % 100),
                                      "site": "bench", "exp": int(time.time()) + 3600},
                                     secret=SECRET)
        path = "/sockjs/000/s%d/websocket?token=%s" % (i, token)
    ws = gwtest.WebSocket.connect(port, path)
    if ws.recv_text() != "o":
        raise RuntimeError("session %d: no open frame" % i)
    return ws


def measure(binary, preload, mode, warmup, n):
    counters = Counters()
    args = ["--api-listen", "127.0.0.1:0"]
    if mode == "token":
        args += ["--jwt-secret", SECRET, "--api-key", "k"]
    gw = gwtest.Gateway(*args, test_app=mode == "echo", binary=binary,
                        env={"LD_PRELOAD": preload, "ALLOC_COUNT_FILE": counters.path})
    sessions = []
    try:
        gw.start()
        port = gw.port
        for i in range(warmup):
            sessions.append(open_session(port, mode, i))
        before = counters.read()
        for i in range(warmup, warmup + n):
            sessions.append(open_session(port, mode, i))
        after = counters.read()
    finally:
        for ws in sessions:
            ws.conn.close()
        gw.stop()
        counters.remove()
    allocs = (after["allocs"] - before["allocs"]) / n
    kept = ((after["allocs"] - after["frees"]) - (before["allocs"] - before["frees"])) / n
    return {"mode": mode, "sessions": n, "allocs_per_upgrade": allocs,
            "kept_per_upgrade": kept, "transient_per_upgrade": allocs - kept}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("gateway")
    ap.add_argument("--mode", choices=["echo", "token", "both"], default="both")
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--preload", help="liballoc_count.so (default: next to the gateway, "
                    "bench/liballoc_count.so)")
    args = ap.parse_args()
    binary = os.path.abspath(args.gateway)
    preload = args.preload or os.path.join(os.path.dirname(binary), "bench",
                                           "liballoc_count.so")
    modes = ["echo", "token"] if args.mode == "both" else [args.mode]
    for mode in modes:
        r = measure(binary, preload, mode, args.warmup, args.sessions)
        print("%-5s %d sessions: %.3f allocations per upgrade (%.3f kept by the open session, "
              "%.3f transient)" % (mode, r["sessions"], r["allocs_per_upgrade"],
                                   r["kept_per_upgrade"], r["transient_per_upgrade"]))


if __name__ == "__main__":
    main()
