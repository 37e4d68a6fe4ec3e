#!/usr/bin/python3
"""The drain's timeline: N websocket sessions (asyncio, one process, 127.0.0.1), SIGTERM, and
when each session's c[1001,"Going away"] and websocket close frame arrive, and when the process
exits. Medians over --runs; raw figures to --out (JSON).

    bench/drain.py build/sockjs-gateway                  # 10,000 sessions, --drain-ms 5000
    bench/drain.py build/sockjs-gateway --sessions 2000 --drain-ms 1000 --runs 1
"""

import argparse
import asyncio
import base64
import os
import signal
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

GOING_AWAY = b'c[1001,"Going away"]'


async def open_session(port, i):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 16)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(("GET /sockjs/000/s%d/websocket?site=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n" % (i, benchlib.SITE, key)).encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError("handshake: %r" % head[:80])
    op, payload = await benchlib.read_ws_frame(reader)
    if payload != b"o":
        raise RuntimeError("expected o, got %r" % payload)
    return reader, writer


async def await_close(reader, writer, started):
    """Times (s after SIGTERM) of the going-away message and of the close frame."""
    got_message = got_close = None
    code = None
    while got_close is None:
        op, payload = await benchlib.read_ws_frame(reader)
        if op == 1 and payload == GOING_AWAY:
            got_message = time.monotonic() - started
        elif op == 8:
            got_close = time.monotonic() - started
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
    # Our close frame back (masked, empty), then let the server end the TCP connection.
    writer.write(b"\x88\x80" + os.urandom(4))
    try:
        await reader.read()
    except ConnectionError:
        pass
    writer.close()
    return got_message, got_close, code


async def one_run(binary, sessions, drain_ms):
    server = benchlib.start_server(benchlib.gateway_cmd(binary, [
        "--allow-anonymous", "--drain-ms", str(drain_ms), "--heartbeat-ms", "600000"]))
    try:
        conns = []
        for start in range(0, sessions, 500):
            conns += await asyncio.gather(*(open_session(server.port, i)
                                            for i in range(start, min(start + 500, sessions))))
        started = time.monotonic()
        os.kill(server.pid, signal.SIGTERM)
        waits = [asyncio.ensure_future(await_close(r, w, started)) for r, w in conns]
        loop = asyncio.get_running_loop()
        exit_status = await loop.run_in_executor(None, server.p.wait)
        exited = time.monotonic() - started
        results = await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), 30)
    finally:
        server.stop(signal.SIGKILL)
    told = server.last_match(r"drain: (\d+) connections told to go away between \+(\d+) and "
                             r"\+(\d+) ms; (\d+) left at \+(\d+) ms")
    ok = [r for r in results if isinstance(r, tuple) and r[0] is not None and r[1] is not None]
    messages = sorted(r[0] for r in ok)
    closes = sorted(r[1] for r in ok)
    return {
        "sessions": sessions,
        "drain_ms": drain_ms,
        "closed_with_going_away": len(ok),
        "close_codes": sorted(set(r[2] for r in ok)),
        "failed": len(results) - len(ok),
        "first_message_s": messages[0] if messages else None,
        "median_message_s": statistics.median(messages) if messages else None,
        "last_message_s": messages[-1] if messages else None,
        "last_close_frame_s": closes[-1] if closes else None,
        # Closes per tenth of the window: how even the spread is.
        "per_tenth": [sum(1 for t in messages if k * drain_ms / 10000 <= t < (k + 1) * drain_ms
                          / 10000) for k in range(10)] if drain_ms else [],
        # The gateway's own view (its drain log line): when it told the first and the last
        # connection, and when it was done; the client's times above include its own delays.
        "gateway_first_told_ms": int(told.group(2)) if told else None,
        "gateway_last_told_ms": int(told.group(3)) if told else None,
        "gateway_done_ms": int(told.group(5)) if told else None,
        "exit_s": exited,
        "exit_status": exit_status,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--drain-ms", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=None, help="write the runs and medians here (JSON)")
    args = ap.parse_args()
    benchlib.run_rounds(
        lambda: asyncio.run(one_run(args.binary, args.sessions, args.drain_ms)), args.runs,
        ("first_message_s", "median_message_s", "last_message_s", "last_close_frame_s", "exit_s",
         "gateway_first_told_ms", "gateway_last_told_ms", "gateway_done_ms"), args.out)


if __name__ == "__main__":
    main()
