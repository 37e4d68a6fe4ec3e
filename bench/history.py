#!/usr/bin/python3
"""What history and recovery cost: memory per channel kept, and how fast a recovering session
gets what it missed. On the embedded engine and on a private redis-server (--engine redis://).

    bench/history.py build/sockjs-gateway                       # everything, 3 rounds (~4 min)
    bench/history.py build/sockjs-gateway --only memory --channels 10000 --messages 100
    bench/history.py build/sockjs-gateway --only replay --engines local --repeats 5
    bench/history.py build/sockjs-gateway --out /tmp/history.json

publish (per engine, per round, history on and off): gateway CPU per publish to a random user
        (--publish-count of them among --publish-users), nobody subscribed.
memory  (per engine, per round, once with --history-size 100 (the default) and once with
        --history-size 0): a fresh gateway (and a fresh redis-server for the Redis engine);
        gateway VmRSS/RssAnon and Redis `INFO memory` used_memory once stable; --channels user
        channels x --messages publishes of --data-bytes bytes of data (one publish per channel
        and message, in arrays of --batch per request, message-major so that every channel has
        its full history); the same figures once stable again. Bytes per channel and per message
        of the delta, and the history's own cost: delta with history minus delta without.
replay  (per engine, per round, fresh gateway with the default --history-size):
        parallel: --replay-sessions websocket sessions (user u<i> each) open, read their ready
        message, close; --replay-messages publishes to each user; then all of them come back at
        once with {"token": ..., "recover": {"user": position}} as first message and read until
        they have every missed message: messages/s = sessions x messages / (first connect to
        last message), plus the gateway's CPU per replayed message;
        serial: --serial-sessions of them come back one after the other: median ms from connect
        to the last missed message;
        big: a gateway with --history-size --big-messages and --max-queued-bytes
        --big-max-queued-bytes (0, no limit: at the default 1 MiB a replay over half of it is
        answered "recovered": false, ~3,000 messages of 100 B), one user channel with that many
        messages, one session recovering all of them from seq 0, --big-replays times in a row:
        median messages/s and the gateway's CPU per message.
        Every recovery is checked: "recovered": true, seqs after the position, none missing.

The client is Python (asyncio, one process): it splits each SockJS frame with one json.loads
and decodes only the first and last message of a frame (their seqs bound the frame), so at high
rates it may be the limit; the gateway CPU per replayed message does not depend on it.
Everything runs on 127.0.0.1 with ephemeral ports; every process started is stopped by PID.
Builds nothing: pass the gateway binary; redis-server from PATH or --redis-server.
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

SITE = bl.SITE


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --- tokens, publish API, Redis ------------------------------------------------------------------

def b64url(b):
    if isinstance(b, str):
        b = b.encode()
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(sub, client):
    claims = {"sub": sub, "client": client, "site": SITE, "exp": int(time.time()) + 86400}
    signing = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":"))) + "." + \
        b64url(json.dumps(claims, separators=(",", ":")))
    sig = hmac.new(bl.SECRET.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64url(sig)


class Api:
    """POST /api/publish over one keep-alive connection."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method, path, body=None):
        headers = {"Authorization": "Bearer " + bl.API_KEY}
        if body is not None:
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        return r.status, r.read()

    def publish(self, body, deadline):
        """One request: `body` a JSON array of publish objects."""
        while True:
            status, data = self.request("POST", "/api/publish", body)
            if status in (200, 202):
                return
            if status != 503 or time.monotonic() > deadline:
                raise RuntimeError("publish: %d %s" % (status, data[:200]))
            time.sleep(0.05)  # Redis engine not connected yet / backpressure

    def stats(self):
        status, data = self.request("GET", "/api/stats")
        if status != 200:
            raise RuntimeError("stats: %d" % status)
        return json.loads(data)

    def close(self):
        self.conn.close()


def publish_user(api, users, messages, data_bytes, batch, timeout=600):
    """`messages` publishes to each of `users` (message-major), arrays of `batch`."""
    one = json.dumps({"scope": "user", "site": SITE, "event": "h", "data": "x" * data_bytes,
                      "ids": ["@"]}, separators=(",", ":")).replace("%", "%%").replace("@", "%s")
    deadline = time.monotonic() + timeout
    items = []
    for _ in range(messages):
        for u in users:
            items.append(one % u)
            if len(items) == batch:
                api.publish("[" + ",".join(items) + "]", deadline)
                items = []
    if items:
        api.publish("[" + ",".join(items) + "]", deadline)


def redis_cmd(port, *args):
    """One command, its reply decoded just enough for INFO and integers."""
    req = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(req)
        buf = b""
        while b"\r\n" not in buf:
            buf += s.recv(65536)
        if buf[:1] == b"$":
            n = int(buf[1:buf.index(b"\r\n")])
            start = buf.index(b"\r\n") + 2
            while len(buf) < start + n + 2:
                buf += s.recv(65536)
            return buf[start:start + n].decode()
        if buf[:1] == b":":
            return int(buf[1:buf.index(b"\r\n")])
        return buf.decode(errors="replace").strip()


def redis_used_memory(port):
    info = redis_cmd(port, "INFO", "memory")
    return int(info.split("used_memory:", 1)[1].split("\r\n", 1)[0])


def redis_cpu_seconds(port):
    info = redis_cmd(port, "INFO", "cpu")
    return sum(float(info.split(k + ":", 1)[1].split("\r\n", 1)[0])
               for k in ("used_cpu_user", "used_cpu_sys"))


def redis_settled(port, interval=1.0, tolerance=64 * 1024, max_seconds=30):
    prev = redis_used_memory(port)
    deadline = time.monotonic() + max_seconds
    while True:
        time.sleep(interval)
        cur = redis_used_memory(port)
        if abs(cur - prev) <= tolerance or time.monotonic() > deadline:
            return cur
        prev = cur


# --- processes -----------------------------------------------------------------------------------

class Setup:
    """A gateway (and its redis-server for the Redis engine), stopped by PID in stop()."""

    def __init__(self, args, engine, extra=()):
        self.redis = self.redis_port = None
        self.gw = None
        try:
            gw_args = list(extra)
            if engine == "redis":
                self.redis, self.redis_port = bl.start_redis(args.redis_server)
                gw_args += ["--engine", "redis://127.0.0.1:%d" % self.redis_port]
            self.gw = bl.start_gateway(args.gateway, gw_args)
            self.api = Api(self.gw.api_port)
            deadline = time.monotonic() + 30
            while not self.api.stats()["engine"]["available"]:
                if time.monotonic() > deadline:
                    raise RuntimeError("engine not available after 30 s")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        status = None
        if self.gw:
            try:
                self.api.close()
            except Exception:
                pass
            status = self.gw.stop()
        if self.redis:
            self.redis.stop()
        return status


def gw_memory(pid, args):
    kib, ok = bl.settled_rss_kib(pid, args.settle_interval, args.stable_kib, args.settle_max)
    return {"vmrss_kib": kib, "anon_kib": bl.status_kib(pid, "RssAnon"), "settled": ok}


# --- memory --------------------------------------------------------------------------------------

def memory_round(args, engine, size):
    s = Setup(args, engine, ["--history-size", str(size)])
    try:
        users = ["u%d" % i for i in range(args.channels)]
        before = gw_memory(s.gw.pid, args)
        r_before = redis_settled(s.redis_port) if engine == "redis" else None
        t0 = time.monotonic()
        publish_user(s.api, users, args.messages, args.data_bytes, args.batch)
        secs = time.monotonic() - t0
        after = gw_memory(s.gw.pid, args)
        res = {"engine": engine, "history_size": size, "channels": args.channels,
               "messages": args.messages, "data_bytes": args.data_bytes,
               "publish_seconds": round(secs, 2),
               "publish_rate": round(args.channels * args.messages / secs),
               "anon_before_kib": before["anon_kib"], "anon_after_kib": after["anon_kib"],
               "vmrss_before_kib": before["vmrss_kib"], "vmrss_after_kib": after["vmrss_kib"],
               "settled": before["settled"] and after["settled"],
               "gw_anon_delta": (after["anon_kib"] - before["anon_kib"]) * 1024,
               "gw_vmrss_delta": (after["vmrss_kib"] - before["vmrss_kib"]) * 1024}
        if engine == "redis":
            r_after = redis_settled(s.redis_port)
            res.update({"redis_before": r_before, "redis_after": r_after,
                        "redis_delta": r_after - r_before,
                        "redis_keys": redis_cmd(s.redis_port, "DBSIZE"),
                        "redis_one_history_key": redis_cmd(
                            s.redis_port, "MEMORY", "USAGE",
                            "sockjs-gateway:history:" + first_history_channel(s.redis_port))
                        if size else None})
        res["exit"] = s.stop()
        return res
    finally:
        s.stop()


def first_history_channel(port):
    """The name of one history list (SCAN; the channel naming is the gateway's)."""
    out = redis_cmd(port, "RANDOMKEY")
    for _ in range(200):
        if out.startswith("sockjs-gateway:history:"):
            return out[len("sockjs-gateway:history:"):]
        out = redis_cmd(port, "RANDOMKEY")
    return ""


def memory(args, engine):
    rounds = {args.history_size: [], 0: []}
    for rnd in range(args.repeats):
        for size in (args.history_size, 0):
            r = memory_round(args, engine, size)
            rounds[size].append(r)
            log("  memory %s round %d, --history-size %d: gateway RssAnon %+.1f MiB, VmRSS "
                "%+.1f MiB%s; %.0f publishes/s"
                % (engine, rnd + 1, size, r["gw_anon_delta"] / 2**20, r["gw_vmrss_delta"] / 2**20,
                   ", Redis used_memory %+.1f MiB (%d keys)"
                   % (r["redis_delta"] / 2**20, r["redis_keys"]) if engine == "redis" else "",
                   r["publish_rate"]))
            print(json.dumps(r), flush=True)
    on, off = rounds[args.history_size], rounds[0]
    n_ch, n_msg = args.channels, args.channels * args.messages
    key = "redis_delta" if engine == "redis" else "gw_anon_delta"
    med_on = statistics.median(r[key] for r in on)
    med_off = statistics.median(r[key] for r in off)
    # The history's own cost: per round (history on minus off of the same round), then median.
    diff = statistics.median(a[key] - b[key] for a, b in zip(on, off))
    out = {"engine": engine, "measure": "redis used_memory" if engine == "redis"
           else "gateway RssAnon", "channels": n_ch, "messages_per_channel": args.messages,
           "data_bytes": args.data_bytes, "history_size": args.history_size,
           "delta_on": med_on, "delta_off": med_off, "history_cost": diff,
           "per_channel": diff / n_ch, "per_message": diff / n_msg,
           "per_channel_on": med_on / n_ch, "per_message_on": med_on / n_msg,
           "gw_anon_delta_on": statistics.median(r["gw_anon_delta"] for r in on),
           "gw_anon_delta_off": statistics.median(r["gw_anon_delta"] for r in off),
           "rounds_on": [r[key] for r in on], "rounds_off": [r[key] for r in off]}
    log("memory %s (%s, median of %d): with history %+.1f MiB, without %+.1f MiB; history: "
        "%.0f B per channel, %.1f B per message (of %d B data)"
        % (engine, out["measure"], len(on), med_on / 2**20, med_off / 2**20, out["per_channel"],
           out["per_message"], args.data_bytes))
    return out


# --- websocket client ----------------------------------------------------------------------------

def ws_text(payload):
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    m = (mask * (n // 4 + 1))[:n]
    return head + mask + bytes(a ^ b for a, b in zip(payload, m))


class Session:
    """One SockJS websocket session; the first message is the token (and the recover)."""

    async def open(self, port, i, first):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port,
                                                                 limit=1 << 22)
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write(("GET /sockjs/%03d/h%d-%d/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n"
                           % (i % 1000, os.getpid(), i, key)).encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError("handshake: %r" % head[:80])
        op, payload = await bl.read_ws_frame(self.reader)
        if payload != b"o":
            raise RuntimeError("expected o, got %r" % payload[:80])
        self.writer.write(ws_text(json.dumps([json.dumps(first)]).encode()))
        self.pending = []

    async def frames(self):
        """The messages (JSON strings) of the next a[...] frame."""
        while True:
            op, payload = await bl.read_ws_frame(self.reader)
            if op == 8:
                raise RuntimeError("websocket closed: %r" % payload[:80])
            if op != 1 or not payload.startswith(b"a"):
                if payload.startswith(b"c"):
                    raise RuntimeError("session closed: %r" % payload[:80])
                continue
            return json.loads(payload[1:])

    async def ready(self):
        msgs = await self.frames()
        first = json.loads(msgs[0])
        if list(first) != ["ready"]:
            raise RuntimeError("first message is not ready: %r" % msgs[0][:200])
        self.pending = msgs[1:]
        return first["ready"]

    async def collect(self, n, after):
        """Until n messages, checking their seqs run on from `after`; returns the last read's
        time."""
        got, seq = 0, after
        msgs = self.pending
        while True:
            if msgs:
                a, b = json.loads(msgs[0])["seq"], json.loads(msgs[-1])["seq"]
                if a != seq + 1 or b != seq + len(msgs):
                    raise RuntimeError("seqs %d..%d in a frame of %d after %d"
                                       % (a, b, len(msgs), seq))
                got += len(msgs)
                seq = b
                if got >= n:
                    return time.monotonic()
            msgs = await self.frames()

    def close(self):
        try:
            self.writer.close()
        except Exception:
            pass


async def positions(port, users, concurrency=500):
    """The user channel's position of each user, from a session's ready message."""
    out = {}
    sem = asyncio.Semaphore(concurrency)

    async def one(i, u):
        async with sem:
            s = Session()
            await s.open(port, i, {"token": token(u, "c" + u[1:])})
            r = await s.ready()
            s.close()
            out[u] = {"seq": r["user"]["seq"], "epoch": r["user"]["epoch"]}
    await asyncio.gather(*(one(i, u) for i, u in enumerate(users)))
    return out


async def recover(port, i, u, pos, n):
    """Connect, recover, read n messages: (seconds from connect to the last one)."""
    t0 = time.monotonic()
    s = Session()
    try:
        await s.open(port, i, {"token": token(u, "c" + u[1:]), "recover": {"user": pos}})
        r = await s.ready()
        if r["user"].get("recovered") is not True or r["user"]["seq"] != pos["seq"] + n:
            raise RuntimeError("not recovered: %r (from %r, %d missed)" % (r["user"], pos, n))
        t1 = await s.collect(n, pos["seq"])
        return t0, t1
    finally:
        s.close()


# --- replay --------------------------------------------------------------------------------------

def replay_round(args, engine):
    s = Setup(args, engine)
    try:
        users = ["u%d" % i for i in range(args.replay_sessions)]
        pos = asyncio.run(positions(s.gw.port, users))
        publish_user(s.api, users, args.replay_messages, args.data_bytes, args.batch)
        m = args.replay_messages
        st0 = s.api.stats()["recovery"]
        cpu0 = bl.cpu_seconds(s.gw.pid)

        async def parallel():
            return await asyncio.wait_for(asyncio.gather(
                *(recover(s.gw.port, 10000 + i, u, pos[u], m) for i, u in enumerate(users))),
                args.timeout)
        t = asyncio.run(parallel())
        cpu = bl.cpu_seconds(s.gw.pid) - cpu0
        secs = max(b for _, b in t) - min(a for a, _ in t)
        total = len(users) * m
        res = {"engine": engine, "sessions": len(users), "messages_per_session": m,
               "parallel_seconds": round(secs, 4), "parallel_rate": total / secs,
               "parallel_gw_cpu_us_per_message": cpu / total * 1e6,
               "parallel_session_ms_median": statistics.median(b - a for a, b in t) * 1e3}

        async def serial():
            out = []
            for i, u in enumerate(users[:args.serial_sessions]):
                a, b = await asyncio.wait_for(recover(s.gw.port, 20000 + i, u, pos[u], m),
                                              args.timeout)
                out.append(b - a)
            return out
        ts = asyncio.run(serial())
        res["serial_ms_median"] = statistics.median(ts) * 1e3
        res["serial_rate"] = m / statistics.median(ts)
        st1 = s.api.stats()["recovery"]
        res["replayed"] = st1["replayed"] - st0["replayed"]
        res["recovered"] = st1["recovered"] - st0["recovered"]
        res["exit"] = s.stop()
    finally:
        s.stop()
    if res["replayed"] != total + len(ts) * m:
        raise RuntimeError("gateway counted %d replayed, expected %d"
                           % (res["replayed"], total + len(ts) * m))
    return res


def big_round(args, engine):
    n = args.big_messages
    # One session gets all n at once: more than --max-queued-bytes (1 MiB by default, ~6,000
    # messages of 100 B) and the gateway closes it as a slow consumer (4008).
    s = Setup(args, engine, ["--history-size", str(n),
                             "--max-queued-bytes", str(args.big_max_queued_bytes)])
    try:
        u = "u0"
        pos = asyncio.run(positions(s.gw.port, [u]))[u]
        publish_user(s.api, [u], n, args.data_bytes, args.batch)
        times, cpus = [], []
        for k in range(args.big_replays):
            cpu0 = bl.cpu_seconds(s.gw.pid)
            a, b = asyncio.run(asyncio.wait_for(recover(s.gw.port, 30000 + k, u, pos, n),
                                                args.timeout))
            cpus.append(bl.cpu_seconds(s.gw.pid) - cpu0)
            times.append(b - a)
        res = {"engine": engine, "messages": n, "replays": len(times),
               "ms_median": statistics.median(times) * 1e3,
               "rate": n / statistics.median(times),
               "gw_cpu_us_per_message": sum(cpus) / (n * len(cpus)) * 1e6,
               "rates": [round(n / t) for t in times]}
        res["exit"] = s.stop()
        return res
    finally:
        s.stop()


def replay(args, engine):
    rounds, bigs = [], []
    for rnd in range(args.repeats):
        r = replay_round(args, engine)
        print(json.dumps(r), flush=True)
        rounds.append(r)
        log("  replay %s round %d: parallel %d x %d in %.3f s: %.0f msg/s (gateway %.2f CPU-us "
            "per message); serial: %.1f ms per session (%.0f msg/s)"
            % (engine, rnd + 1, r["sessions"], r["messages_per_session"], r["parallel_seconds"],
               r["parallel_rate"], r["parallel_gw_cpu_us_per_message"], r["serial_ms_median"],
               r["serial_rate"]))
        if args.big_messages:
            b = big_round(args, engine)
            print(json.dumps(b), flush=True)
            bigs.append(b)
            log("  replay %s round %d: one session, %d messages: %.1f ms, %.0f msg/s (gateway "
                "%.2f CPU-us per message)" % (engine, rnd + 1, b["messages"], b["ms_median"],
                                              b["rate"], b["gw_cpu_us_per_message"]))

    def med(xs, k):
        return statistics.median(x[k] for x in xs)
    out = {"engine": engine, "sessions": args.replay_sessions,
           "messages_per_session": args.replay_messages,
           "parallel_rate": med(rounds, "parallel_rate"),
           "parallel_gw_cpu_us_per_message": med(rounds, "parallel_gw_cpu_us_per_message"),
           "serial_ms_median": med(rounds, "serial_ms_median"),
           "serial_rate": med(rounds, "serial_rate")}
    if bigs:
        out.update({"big_messages": args.big_messages, "big_ms": med(bigs, "ms_median"),
                    "big_rate": med(bigs, "rate"),
                    "big_gw_cpu_us_per_message": med(bigs, "gw_cpu_us_per_message")})
    log("replay %s (median of %d): parallel %.0f msg/s (%.2f gateway CPU-us per message), "
        "serial %.1f ms per %d-message recovery%s"
        % (engine, len(rounds), out["parallel_rate"], out["parallel_gw_cpu_us_per_message"],
           out["serial_ms_median"], args.replay_messages,
           "; one session x %d: %.0f msg/s (%.1f ms, %.2f gateway CPU-us per message)"
           % (args.big_messages, out["big_rate"], out["big_ms"], out["big_gw_cpu_us_per_message"])
           if bigs else ""))
    return out


def publish_cost(args, engine):
    """Gateway CPU per publish with history on (the default size) and off, nobody subscribed:
    --publish-count publishes, each to one of --publish-users random users (most channels new,
    so the history's per-channel ring is made each time: its worst case)."""
    import random
    rng = random.Random(7)
    users = ["p%d" % rng.randrange(args.publish_users) for _ in range(args.publish_count)]
    rounds = {"on": [], "off": []}
    redis_rounds = {"on": [], "off": []}
    for rnd in range(args.repeats):
        for name, extra in (("on", []), ("off", ["--history-size", "0"])):
            s = Setup(args, engine, extra)
            try:
                deadline = time.monotonic() + args.timeout
                cpu0 = bl.cpu_seconds(s.gw.pid)
                redis0 = redis_cpu_seconds(s.redis_port) if s.redis_port else 0
                for i in range(0, len(users), args.batch):
                    items = [json.dumps({"scope": "user", "site": SITE, "event": "h",
                                         "data": "x" * args.data_bytes, "ids": [u]})
                             for u in users[i:i + args.batch]]
                    s.api.publish("[" + ",".join(items) + "]", deadline)
                # Published means numbered and delivered: wait for the engine to have them all.
                while s.api.stats()["hub"]["publishes"] < len(users):
                    if time.monotonic() > deadline:
                        raise RuntimeError("publishes not delivered in time")
                    time.sleep(0.05)
                us = (bl.cpu_seconds(s.gw.pid) - cpu0) / len(users) * 1e6
                redis_us = ((redis_cpu_seconds(s.redis_port) - redis0) / len(users) * 1e6
                            if s.redis_port else 0.0)
            finally:
                s.stop()
            rounds[name].append(us)
            redis_rounds[name].append(redis_us)
            log("  publish %s round %d, history %s: %.2f gateway CPU-us per publish%s"
                % (engine, rnd + 1, name, us,
                   ", redis-server %.2f" % redis_us if s.redis_port else ""))
    out = {"engine": engine, "publishes": len(users), "users": args.publish_users,
           "on_us": statistics.median(rounds["on"]), "off_us": statistics.median(rounds["off"]),
           "redis_on_us": statistics.median(redis_rounds["on"]),
           "redis_off_us": statistics.median(redis_rounds["off"])}
    log("publish %s (median of %d): gateway CPU-us per publish %.2f with history, %.2f without;"
        " redis-server %.2f with, %.2f without"
        % (engine, args.repeats, out["on_us"], out["off_us"], out["redis_on_us"],
           out["redis_off_us"]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("gateway")
    ap.add_argument("--only", default="memory,replay,publish",
                    help="any of memory, replay, publish (comma-separated)")
    ap.add_argument("--publish-count", type=int, default=50000)
    ap.add_argument("--publish-users", type=int, default=100000)
    ap.add_argument("--engines", default="local,redis", help="local, redis or both")
    ap.add_argument("--redis-server", default=shutil.which("redis-server") or
                    "/usr/bin/redis-server")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--channels", type=int, default=10000)
    ap.add_argument("--messages", type=int, default=100, help="per channel (memory)")
    ap.add_argument("--history-size", type=int, default=100, help="memory: the 'on' size")
    ap.add_argument("--data-bytes", type=int, default=100)
    ap.add_argument("--batch", type=int, default=1000, help="publishes per API request")
    ap.add_argument("--replay-sessions", type=int, default=1000)
    ap.add_argument("--replay-messages", type=int, default=100)
    ap.add_argument("--serial-sessions", type=int, default=50)
    ap.add_argument("--big-messages", type=int, default=10000, help="0: skip")
    ap.add_argument("--big-replays", type=int, default=5)
    ap.add_argument("--big-max-queued-bytes", type=int, default=0,
                    help="the big replay's gateway --max-queued-bytes (0: no limit; at the "
                    "default 1 MiB a replay over half of it is not recovered)")
    ap.add_argument("--timeout", type=float, default=120, help="per recovery phase, s")
    ap.add_argument("--settle-interval", type=float, default=1.0)
    ap.add_argument("--stable-kib", type=int, default=64)
    ap.add_argument("--settle-max", type=float, default=30)
    ap.add_argument("--out", help="write every round and the summary here (JSON)")
    args = ap.parse_args()
    args.gateway = os.path.abspath(args.gateway)
    only = [x for x in args.only.split(",") if x]
    engines = [x for x in args.engines.split(",") if x]
    summary = {"command": sys.argv, "memory": [], "replay": [], "publish": []}

    def on_term(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    for engine in engines:
        if "memory" in only:
            summary["memory"].append(memory(args, engine))
        if "replay" in only:
            summary["replay"].append(replay(args, engine))
        if "publish" in only:
            summary["publish"].append(publish_cost(args, engine))
    print(json.dumps({"summary": summary}), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
