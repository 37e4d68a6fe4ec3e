#!/usr/bin/python3
"""Smoke test of the benchmark tools (bench/loadgen, bench/publisher) against a real gateway,
so that they do not rot: loadgen opens 50 sessions (2 worker processes, 2 source addresses,
tokens it mints itself) over websocket, xhr_streaming and xhr polling, prints `ready 50`; the
publisher sends a few timed events to their company; loadgen stops at --expect and its JSON
summary must show every session opened, none lost, sessions x events messages and latencies.

The tools are taken from the gateway's build tree (bench/ next to GW_BINARY), so the ASan build
checks them too (a leak makes them exit non-zero). Spec: bench/loadgen.c and bench/publisher.c
header comments (the ready line and the JSON summaries).
"""

import json
import os
import re
import selectors
import subprocess
import tempfile
import time

import gwtest
from scopedfix import API_KEY, SECRET, ScopedTestCase

SESSIONS = 50
EVENTS = 5
RUN_TIMEOUT = 60


def tool(name):
    path = os.path.join(os.path.dirname(gwtest.gateway_binary()), "bench", name)
    if not os.access(path, os.X_OK):
        raise AssertionError("%s not built at %s" % (name, path))
    return path


class Tool:
    """A bench tool with stdout read line by line (with deadlines) and stderr kept in a file."""

    def __init__(self, cmd):
        self.cmd = cmd
        self.err = tempfile.TemporaryFile()
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.p.stdout, selectors.EVENT_READ)

    def line(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.sel.select(max(0.01, deadline - time.monotonic())):
                return self.p.stdout.readline().decode("utf-8", "replace")
        raise AssertionError("%s: no output within %.0f s; stderr:\n%s"
                             % (os.path.basename(self.cmd[0]), timeout, self.stderr()))

    def summary(self, timeout=RUN_TIMEOUT):
        """The JSON summary line (the last line) and the exit status."""
        line = self.line(timeout)
        self.assert_json(line)
        status = self.p.wait(timeout)
        return json.loads(line), status

    def assert_json(self, line):
        if not line.startswith("{"):
            raise AssertionError("expected the JSON summary, got %r; stderr:\n%s"
                                 % (line, self.stderr()))

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode("utf-8", "replace")[-4000:]

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        for f in (self.p.stdin, self.p.stdout):
            f.close()
        self.sel.close()
        self.err.close()


class BenchTools(ScopedTestCase):
    def start(self, cmd):
        t = Tool(cmd)
        self.addCleanup(t.close)
        return t

    def loadgen(self, transport, *extra):
        return self.start([
            tool("loadgen"), "--target", "%s:%d" % (self.gw.host, self.gw.port),
            "--sessions", str(SESSIONS), "--procs", "2", "--sources", "2",
            "--transport", transport, "--jwt-secret", SECRET, "--site", self.site,
            "--companies", "1", "--expect", str(SESSIONS * EVENTS),
            "--timeout", str(RUN_TIMEOUT), *extra])

    def publish(self, *extra):
        p = self.start([
            tool("publisher"), "--api", "%s:%d" % (self.gw.api_host, self.gw.api_port),
            "--api-key", API_KEY, "--scope", "client", "--site", self.site, "--ids", "c0",
            "--count", str(EVENTS), "--rate", "50", *extra])
        s, status = p.summary()
        self.assertEqual((s["tool"], s["publishes"], s["accepted"], s["rejected"], s["errors"],
                          s["error"], status), ("publisher", EVENTS, EVENTS, {}, 0, None, 0),
                         "%r\n%s" % (s, p.stderr()))

    def check_run(self, transport, publisher_args=(), loadgen_args=()):
        lg = self.loadgen(transport, *loadgen_args)
        line = lg.line(RUN_TIMEOUT)
        self.assertEqual(line, "ready %d\n" % SESSIONS, lg.stderr())
        self.publish(*publisher_args)
        s, status = lg.summary()
        why = "%r\n%s" % (s, lg.stderr())
        self.assertEqual(status, 0, why)
        self.assertEqual((s["tool"], s["transport"], s["sessions"], s["procs"], s["sources"]),
                         ("loadgen", transport.replace("_", "-"), SESSIONS, 2, 2), why)
        self.assertEqual((s["opened"], s["failed"], s["lost"], s["error"], s["stopped_by"]),
                         (SESSIONS, 0, 0, None, "expect"), why)
        self.assertEqual(s["messages"], SESSIONS * EVENTS, why)
        self.assertGreater(s["lat_us"]["n"], 0, why)
        self.assertGreater(s["lat_us"]["p50"], 0, why)
        self.assertGreaterEqual(s["lat_us"]["max"], s["lat_us"]["p99"], why)
        self.assertGreater(s["bytes"], s["payload_bytes"], why)
        return s

    def test_websocket(self):
        self.check_run("websocket")

    def test_websocket_deflate_offer(self):
        # The gateway may or may not accept permessage-deflate: either way every message
        # arrives, and the summary says which.
        s = self.check_run("websocket", loadgen_args=("--deflate",))
        self.assertIn(s["deflate"], (True, False))
        if s["deflate"]:
            self.assertGreater(s["inflated_bytes"], 0)

    def test_xhr_streaming(self):
        # Batches of two publishes per request, pipelined two at a time.
        self.check_run("xhr-streaming", publisher_args=("--batch", "2", "--window", "2"))

    def test_xhr_polling(self):
        self.check_run("xhr-polling")

    def test_hold_and_stdin(self):
        """--hold ends a run after `ready`; so does closing stdin; neither is an error."""
        lg = self.start([tool("loadgen"), "--target", "%s:%d" % (self.gw.host, self.gw.port),
                         "--sessions", "10", "--hold", "0.2", "--timeout", str(RUN_TIMEOUT)])
        self.assertEqual(lg.line(RUN_TIMEOUT), "ready 10\n", lg.stderr())
        s, status = lg.summary()
        self.assertEqual((s["opened"], s["stopped_by"], s["error"], status),
                         (10, "hold", None, 0), s)
        lg = self.start([tool("loadgen"), "--target", "%s:%d" % (self.gw.host, self.gw.port),
                         "--sessions", "10", "--procs", "2", "--timeout", str(RUN_TIMEOUT)])
        self.assertEqual(lg.line(RUN_TIMEOUT), "ready 10\n", lg.stderr())
        lg.p.stdin.close()
        s, status = lg.summary()
        self.assertEqual((s["opened"], s["stopped_by"], s["error"], status),
                         (10, "stdin", None, 0), s)

    def test_heartbeats_in_progress_lines(self):
        """Heartbeats are counted, in the summary and at the end of the once-a-second progress
        line (bench/run's idle-cpu scenario reads them there to bracket its CPU window)."""
        gw = self.start_gateway("--heartbeat-ms", "200")
        lg = self.start([tool("loadgen"), "--target", "%s:%d" % (gw.host, gw.port),
                         "--sessions", "10", "--procs", "2", "--hold", "2.5",
                         "--timeout", str(RUN_TIMEOUT)])
        self.assertEqual(lg.line(RUN_TIMEOUT), "ready 10\n", lg.stderr())
        s, status = lg.summary()
        err = lg.stderr()
        why = "%r\n%s" % (s, err)
        self.assertEqual((s["opened"], s["lost"], s["error"], status), (10, 0, None, 0), why)
        # 10 sessions x 2.5 s / 0.2 s: ~120; at least half of that arrives on a busy machine.
        self.assertGreaterEqual(s["heartbeats"], 60, why)
        progress = re.findall(r"^loadgen: .* lost 0  messages 0 \(\+0/s\)  heartbeats (\d+)$",
                              err, re.M)
        self.assertTrue(progress, why)
        self.assertGreater(int(progress[-1]), 0, why)
        self.assertLessEqual(int(progress[-1]), s["heartbeats"], why)

    def test_refused_sessions_are_counted(self):
        """A wrong secret: the gateway closes every session with 4001 right after `o`; within
        the hold loadgen counts each of them failed or lost (which depends on timing)."""
        lg = self.start([tool("loadgen"), "--target", "%s:%d" % (self.gw.host, self.gw.port),
                         "--sessions", "4", "--jwt-secret", "not-the-secret",
                         "--timeout", str(RUN_TIMEOUT), "--hold", "2", "--max-failed", "4"])
        line = lg.line(RUN_TIMEOUT)
        if line.startswith("ready "):
            line = lg.line(RUN_TIMEOUT)
        lg.assert_json(line)
        s = json.loads(line)
        self.assertEqual((s["failed"] + s["lost"], s["messages"]), (4, 0),
                         "%r\n%s" % (s, lg.stderr()))
        self.assertIn("code 4001", lg.stderr())

if __name__ == "__main__":
    gwtest.main()
