#!/usr/bin/python3
"""Descriptor exhaustion, measured: a gateway under a small open-files limit with
--max-connections above it (so that accept() itself fails with EMFILE), one websocket session
echoing through it, a flood of idle TCP connections past the limit held for --hold seconds;
the gateway's CPU while held, the session's round trips meanwhile, and the time from freeing
the descriptors to the first new request answered. Medians over --runs.

    bench/exhaustion.py build/sockjs-gateway
"""

import argparse
import base64
import os
import resource
import socket
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402


def ws_connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /echo/000/x/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
               % key).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    rest = buf.split(b"\r\n\r\n", 1)[1]
    return s, rest


def ws_text(s, buf):
    """One unmasked server text frame (short) and what is left of buf."""
    while len(buf) < 2 or len(buf) < 2 + (buf[1] & 0x7F):
        buf += s.recv(4096)
    n = buf[1] & 0x7F
    return buf[2:2 + n], buf[2 + n:]


def ws_send(s, text):
    mask = os.urandom(4)
    data = bytes(b ^ mask[i % 4] for i, b in enumerate(text))
    s.sendall(struct.pack("!BB", 0x81, 0x80 | len(data)) + mask + data)


def one_run(binary, nofile, flood, hold):
    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    p = benchlib.Proc([binary, "--test-app", "--listen", "127.0.0.1:0", "--drain-ms", "0",
                       "--max-connections", "1000000"], "gateway", preexec_fn=limit)
    try:
        port = int(p.wait_line(benchlib.LISTEN_RE.pattern, 20).group(2))
        ws, buf = ws_connect(port)
        frame, buf = ws_text(ws, buf)
        assert frame == b"o", frame
        conns = []
        for _ in range(flood):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            conns.append(c)
        cpu0 = benchlib.cpu_seconds(p.pid)
        t0 = time.monotonic()
        rtts = []
        while time.monotonic() - t0 < hold:
            sent = time.monotonic()
            ws_send(ws, b'["ping"]')
            frame, buf = ws_text(ws, buf)
            rtts.append((time.monotonic() - sent) * 1000)
            assert frame == b'a["ping"]', frame
            time.sleep(0.05)
        cpu = benchlib.cpu_seconds(p.pid) - cpu0
        freed = time.monotonic()
        for c in conns:
            c.close()
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /echo/info HTTP/1.1\r\nHost: x\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    s.close()
                    break
                s.close()
            except OSError:
                time.sleep(0.001)
        again_ms = (time.monotonic() - freed) * 1000
        ws.close()
        return {"nofile": nofile, "flood": flood, "hold_s": hold,
                "cpu_s_while_held": cpu, "cpu_share": cpu / hold,
                "session_rtt_ms_median": statistics.median(rtts),
                "session_rtt_ms_max": max(rtts), "round_trips": len(rtts),
                "accepting_again_ms": again_ms}
    finally:
        p.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--nofile", type=int, default=1024)
    ap.add_argument("--flood", type=int, default=3000)
    ap.add_argument("--hold", type=float, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out")
    args = ap.parse_args()
    benchlib.run_rounds(lambda: one_run(args.binary, args.nofile, args.flood, args.hold),
                        args.runs, ("cpu_s_while_held", "cpu_share", "session_rtt_ms_median",
                                    "session_rtt_ms_max", "accepting_again_ms"), args.out)


if __name__ == "__main__":
    main()
