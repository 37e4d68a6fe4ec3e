#!/usr/bin/python3
"""10,000 aborted polls: xhr and jsonp polls on 10,000 distinct session ids of
/short_timers_echo, each connection closed (FIN or RST) before its poll is answered or right
after the `o`. After disconnect_delay every one of those sessions is gone (xhr_send gets 404 on
a sample of them), and the gateway's open fds and RSS are back near where they were before.

Spec: SOCKJS_TEST_APP.md, "Session lifecycle" (a receiver dropped by the client closes the
session; a session is destroyed disconnect_delay after its last receiver ended). The session
count is not exposed in test mode, so it is checked through behaviour; leaks of memory are
caught by the RSS bound here and by LeakSanitizer at exit under ASan (Gateway.stop requires
exit status 0).
"""

import os
import time

import gwtest
from gwtest import build_request, read_response, session_url

PREFIX = "/short_timers_echo"
N = 10000
BATCH = 200


def uses_asan(pid):
    try:
        with open("/proc/%d/maps" % pid) as f:
            if "libasan" in f.read():
                return True
    except OSError:
        pass
    try:
        with open(gwtest.gateway_binary(), "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


class AbortedPolls(gwtest.GatewayTestCase):
    per_test_gateway = True

    def start_gateway(self, *args, listen=None):
        # ASan's quarantine (256 MB by default) would hold every freed block of the run, so
        # RSS could not come back; 16 MB keeps use-after-free detection and a stable RSS.
        # LeakSanitizer stays on: a leak still fails the exit status at stop().
        opts = os.environ.get("ASAN_OPTIONS", "")
        env = {"ASAN_OPTIONS": (opts + ":" if opts else "") + "quarantine_size_mb=16"}
        gw = gwtest.Gateway(*args, listen=listen, env=env).start()
        self.addCleanup(gw.stop)
        return gw

    def setUp(self):
        super().setUp()
        if not os.path.isdir("/proc/%d/fd" % self.gw.proc.pid):
            self.skipTest("no /proc")

    # -- the aborted polls -----------------------------------------------------------------

    def abort_polls(self, urls):
        """One aborted poll per session URL, BATCH connections at a time. Four ways, in turn:
        0 xhr poll closed (FIN) right after sending it, before its answer;
        1 jsonp poll reset (RST) right after sending it;
        2 two pipelined xhr polls: the `o` is read, the connection closed (FIN) while the
          second poll waits for a message;
        3 jsonp poll reset (RST) right after its `o` was read."""
        for start in range(0, len(urls), BATCH):
            batch = urls[start:start + BATCH]
            conns = []
            try:
                for i, url in enumerate(batch):
                    c = self.gw.connect()
                    conns.append(c)
                    kind = (start + i) % 4
                    if kind == 0:
                        c.send(build_request("POST", url + "/xhr", body=b""))
                    elif kind == 1 or kind == 3:
                        c.send(build_request("GET", url + "/jsonp?c=cb"))
                    else:
                        req = build_request("POST", url + "/xhr", body=b"")
                        c.send(req + req)
                    if kind == 0:
                        c.close()
                    elif kind == 1:
                        c.abort()
                for i, c in enumerate(conns):
                    kind = (start + i) % 4
                    if kind == 2:
                        r = read_response(c, method="POST")
                        self.assertEqual(r.body, b"o\n")
                        c.close()
                    elif kind == 3:
                        r = read_response(c)
                        self.assertEqual(r.body, b'/**/cb("o");\r\n')
                        c.abort()
            finally:
                for c in conns:
                    c.close()

    def wait_sessions_gone(self, urls, timeout):
        """xhr_send to every URL in `urls` until all get 404 (session destroyed)."""
        deadline = time.monotonic() + timeout
        left = list(urls)
        while left:
            still = []
            for url in left:
                r = gwtest.request(self.gw.port, "POST", url + "/xhr_send", body='["x"]')
                if r.status != 404:
                    self.assertIn(r.status, (204,), r)
                    still.append(url)
            left = still
            if not left:
                return
            self.assertLess(time.monotonic(), deadline,
                            "%d of %d sampled sessions still exist %.0f s later"
                            % (len(left), len(urls), timeout))
            time.sleep(0.2)  # no event to await: xhr_send is the only probe

    def test_ten_thousand_aborted_polls(self):
        asan = uses_asan(self.gw.proc.pid)
        # Warm-up: the same 10,000 aborted polls once, so that the session table, the
        # allocator's arenas (and ASan's quarantine, capped below) have grown to what this
        # load needs before the baseline is taken: freed memory is reused, not necessarily
        # given back to the system.
        warm = [session_url(PREFIX) for _ in range(N)]
        self.abort_polls(warm)
        self.wait_sessions_gone(warm[::100] + warm[-5:], timeout=20)
        fd_base = self.gw.stable_fd_count()
        rss_base = self.gw.rss_kb()

        t0 = time.monotonic()
        urls = [session_url(PREFIX) for _ in range(N)]
        self.abort_polls(urls)
        took = time.monotonic() - t0
        rss_peak = self.gw.rss_kb()

        # Every kind of abort is in the sample (50 apart: each kind 50 times over the run),
        # the last connections included.
        sample = urls[::50] + urls[-20:]
        self.wait_sessions_gone(sample, timeout=20)
        self.gw.assert_alive()

        n = self.gw.wait_fds(fd_base)
        self.assertLessEqual(n, fd_base, "gateway holds %d fds, %d before" % (n, fd_base))

        rss = self.gw.rss_kb()
        # Measured: no growth at all without ASan once warm, about 1 MB with ASan (16 MB
        # quarantine). 2 MB is a leak of 200 bytes per aborted poll.
        margin = (6 if asan else 2) * 1024
        self.assertLessEqual(rss, rss_base + margin,
                             "RSS %d kB after the polls, %d kB before (peak %d kB): a leak of "
                             "about %d bytes per aborted poll" % (
                                 rss, rss_base, rss_peak, (rss - rss_base) * 1024 // N))
        # The gateway still serves new sessions normally.
        s = gwtest.XhrSession(self.gw, PREFIX).open()
        s.send("after")
        self.assertEqual(s.poll(), 'a["after"]')
        if os.environ.get("GW_TEST_VERBOSE"):
            print("aborted polls: %d in %.1f s; RSS %d -> %d (peak %d) kB; fds %d -> %d%s"
                  % (N, took, rss_base, rss, rss_peak, fd_base, n, " (ASan)" if asan else ""))


if __name__ == "__main__":
    gwtest.main()
