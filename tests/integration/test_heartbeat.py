#!/usr/bin/python3
"""The heartbeat contract proxies rely on: no attached receiver is silent for longer than
--heartbeat-ms plus the heartbeat window, although heartbeats falling due within the window are
written together in one loop turn; a receiver that gets other frames gets no heartbeat.

Both ways of writing a loop turn's output are checked: one io_uring submission for every
connection (the default) and one writev per connection (--no-io-uring, and where io_uring is
unavailable). Checked with a short heartbeat (1,000 ms, window 100 ms) over websocket and xhr-streaming
sessions, each read by its own thread that timestamps every frame: the longest gap between two
frames after the ready message, over three heartbeat intervals, must stay within the bound plus a
margin for this side's own scheduling (the reader threads share a busy machine); and a session
published to every 300 ms for 3 s receives no "h" at all.

Spec: docs/PROTOCOL.md "Heartbeats".
"""

import threading
import time

from scopedfix import ScopedTestCase, publish_body

HEARTBEAT_MS = 1000
WINDOW_MS = 100
# The reader's own delay between the frame's arrival and its timestamp, on a shared machine.
READER_MARGIN_MS = 400


class Heartbeats(ScopedTestCase):
    gateway_args = ("--heartbeat-ms", str(HEARTBEAT_MS), "--heartbeat-window-ms", str(WINDOW_MS))

    def read_frames(self, s, seconds, out):
        """Appends (monotonic time, frame) for every frame s gets within `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                frame = s.frame(timeout=max(0.05, deadline - time.monotonic()),
                                skip_heartbeats=False)
            except Exception:  # the read timed out at the deadline
                break
            out.append((time.monotonic(), frame))

    def test_no_receiver_is_silent_longer_than_the_heartbeat_and_window(self):
        sessions = [self.user_session("websocket") for _ in range(12)]
        sessions += [self.user_session("xhr_streaming") for _ in range(4)]
        seconds = 3 * HEARTBEAT_MS / 1000 + 0.5
        frames = [[] for _ in sessions]
        start = time.monotonic()
        threads = [threading.Thread(target=self.read_frames, args=(s, seconds, f))
                   for s, f in zip(sessions, frames)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        bound_ms = HEARTBEAT_MS + WINDOW_MS + READER_MARGIN_MS
        for s, got in zip(sessions, frames):
            beats = [t for t, f in got if f == "h"]
            self.assertGreaterEqual(len(beats), 2, (s.transport, got))
            times = [start] + [t for t, _ in got]
            longest_ms = max(b - a for a, b in zip(times, times[1:])) * 1000
            self.assertLessEqual(longest_ms, bound_ms, (s.transport, got))
            # Never early either: heartbeats of an idle receiver are a heartbeat apart at least
            # (less this side's scheduling noise).
            gaps_ms = [(b - a) * 1000 for a, b in zip(beats, beats[1:])]
            self.assertGreaterEqual(min(gaps_ms), HEARTBEAT_MS - READER_MARGIN_MS, gaps_ms)

    def test_a_receiver_that_gets_messages_gets_no_heartbeat(self):
        s = self.user_session("websocket")
        frames = []

        def read_until_ten_messages():
            while sum(f.startswith("a[") for f in frames) < 10:
                frames.append(s.frame(timeout=5, skip_heartbeats=False))

        reader = threading.Thread(target=read_until_ten_messages)
        reader.start()
        # Ten publishes 300 ms apart: 3 s of traffic, three heartbeat intervals, each publish well
        # within one heartbeat of the one before it.
        for i in range(10):
            self.gw.publish(publish_body("user", self.site, "tick", i, ids=[s.sub]))
            time.sleep(0.3)  # the traffic pattern under test, not a synchronisation
        reader.join()
        self.assertEqual(frames.count("h"), 0, frames)
        self.assertEqual(len(frames), 10, frames)

class HeartbeatsWrittenOneConnectionAtATime(Heartbeats):
    """The same contract on the writev path, which gateways without io_uring take."""
    gateway_args = Heartbeats.gateway_args + ("--no-io-uring",)


if __name__ == "__main__":
    import gwtest
    gwtest.main()
