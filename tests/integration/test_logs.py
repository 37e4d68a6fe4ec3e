#!/usr/bin/python3
"""The info log lines an operator greps for, over real sockets (default mode, embedded engine):
one line per session close (transport, user, company, site, duration, close code and reason,
client address) on websocket, xhr_streaming and xhr_polling; one line per publish holding the
id the API returned; token refusals naming the failing claim, transport and client (bad
signature, expired, exp in milliseconds, exp beyond --max-token-lifetime-s, missing
client/sub/site); the slow-consumer line naming the session; no token anywhere in a debug log.

Spec: docs/PROTOCOL.md "Tokens" and "Logs".
"""

import os
import re
import signal
import tempfile
import time

import gwtest
from gwtest import BodyReader, read_response_head
from scopedfix import (SECRET, TRANSPORTS, ScopedTestCase, claims_for, jwt_encode, publish_body,
                       token_for, unique)

CLIENT = r"127\.0\.0\.1:\d+"


def close_line_re(transport, user, company, site, code, reason):
    return (r'session closed: transport=%s user=%s company=%s site=%s duration_ms=\d+ '
            r'code=%d reason="%s" client=%s$'
            % (transport, re.escape(user), re.escape(company), re.escape(site), code,
               re.escape(reason), CLIENT))


class CloseLines(ScopedTestCase):
    """One info line per session close, with every field, on each transport."""

    gateway_args = ("--disconnect-delay-ms", "300")

    def test_close_line_per_transport(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                s = self.user_session(t)
                mark = self.gw.log_mark()
                # The client goes away (for polling: with its poll outstanding).
                s.close()
                line = self.gw.wait_log(r"session closed: transport=%s user=%s "
                                        % (t, re.escape(s.sub)), since=mark)
                self.assertRegex(line, close_line_re(t, s.sub, s.client, s.site, 1002,
                                                     "Connection interrupted"))
                self.assertIn(" INFO ", line)

    def test_polling_session_keeps_the_address_that_opened_it(self):
        """A polling session that times out has no request at hand: the line still has the
        address of the request that opened it."""
        s = self.user_session("xhr_polling")
        # Let the outstanding poll end with a message, and send no further poll.
        poll, s._poll = s._poll, None
        self.gw.publish(publish_body("user", s.site, "e", 1, ids=[s.sub]))
        resp = read_response_head(poll)
        self.assertEqual(resp.status, 200)
        BodyReader(poll, resp, "POST").read_all()
        poll.close()
        line = self.gw.wait_log(r"session closed: transport=xhr_polling user=%s "
                                % re.escape(s.sub))
        self.assertRegex(line, close_line_re("xhr_polling", s.sub, s.client, s.site, 0,
                                             "Timed out"))

    def test_close_by_the_gateway_names_code_and_reason(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                mark = self.gw.log_mark()
                s = self.session(t, token=jwt_encode(claims_for(self.site), secret="wrong"))
                s.expect_open()
                code, reason, _ = s.expect_close()
                self.assertEqual((code, reason), (4001, "Invalid token"))
                line = self.gw.wait_log(r"session closed: transport=%s " % t, since=mark)
                self.assertRegex(line, close_line_re(t, "-", "-", "-", 4001, "Invalid token"))

    def test_anonymous_session_names_its_site(self):
        gw = self.start_gateway("--allow-anonymous")
        s = self.session("websocket", gw=gw, site=self.site)
        s.expect_open()
        s.wait_ready()
        mark = gw.log_mark()
        s.close()
        line = gw.wait_log(r"session closed: transport=websocket ", since=mark)
        self.assertRegex(line, close_line_re("websocket", "-", "-", self.site, 1002,
                                             "Connection interrupted"))


class TestAppCloseLines(gwtest.GatewayTestCase):
    """Apps without identities (the test app) log the same line without those fields; the raw
    websocket endpoint is told apart."""

    def test_echo_sessions(self):
        mark = self.gw.log_mark()
        ws = gwtest.WebSocket.connect(self.gw.port, "/echo/000/%s/websocket" % unique("s"))
        ws.close()
        line = self.gw.wait_log(r"session closed: transport=websocket ", since=mark)
        self.assertRegex(line, r'session closed: transport=websocket duration_ms=\d+ code=1002 '
                               r'reason="Connection interrupted" client=%s$' % CLIENT)
        mark = self.gw.log_mark()
        raw = gwtest.WebSocket.connect(self.gw.port, "/echo/websocket")
        raw.close()
        line = self.gw.wait_log(r"session closed: transport=websocket_raw ", since=mark)
        self.assertRegex(line, r'session closed: transport=websocket_raw duration_ms=\d+ '
                               r'code=1002 reason="Connection interrupted" client=%s$' % CLIENT)


class PublishLines(ScopedTestCase):
    """The publish id the API returns is in the log, with scope, site, channels, event."""

    def test_publish_line_holds_the_returned_id(self):
        ids = ["a", "b", "c"]
        mark = self.gw.log_mark()
        [pid] = self.gw.publish(publish_body("user", self.site, "order.new", {"k": 1}, ids=ids))
        line = self.gw.wait_log(r"publish: id=%s " % pid, since=mark)
        self.assertRegex(line, r"publish: id=%s scope=user site=%s sites=1 channels=3 "
                               r"event=order\.new result=accepted$" % (pid, self.site))

    def test_every_publish_of_an_array_has_its_line(self):
        other = unique("site")
        body = [publish_body("global", None, "g", 1, sites=[self.site, other]),
                publish_body("client", self.site, "c", 2, ids=["x"])]
        mark = self.gw.log_mark()
        pids = self.gw.publish(body)
        self.assertRegex(self.gw.wait_log(r"publish: id=%s " % pids[0], since=mark),
                         r"scope=global site=%s sites=2 channels=2 event=g result=accepted$"
                         % self.site)
        self.assertRegex(self.gw.wait_log(r"publish: id=%s " % pids[1], since=mark),
                         r"scope=client site=%s sites=1 channels=1 event=c result=accepted$"
                         % self.site)

    def test_rejected_publish_has_its_reason(self):
        mark = self.gw.log_mark()
        r = self.gw.publish_raw({"scope": "user", "site": self.site, "event": "e", "data": 1})
        self.assertEqual(r.status, 400, r)
        line = self.gw.wait_log(r"publish: result=rejected ", since=mark)
        self.assertRegex(line, r'publish: result=rejected reason="[^"]+" index=0 client=%s$'
                         % CLIENT)
        mark = self.gw.log_mark()
        self.assertEqual(self.gw.publish_raw("{not json").status, 400)
        self.assertRegex(self.gw.wait_log(r"publish: result=rejected ", since=mark),
                         r'reason="malformed JSON: [^"]+" client=%s$' % CLIENT)


class Refusals(ScopedTestCase):
    """Each refused token: one line naming the claim, the transport and the client address."""

    LIFETIME_S = 86400
    gateway_args = ("--max-token-lifetime-s", str(LIFETIME_S))

    def refused(self, transport, token, code, claim, reason):
        mark = self.gw.log_mark()
        s = self.session(transport, token=token)
        s.expect_open()
        got = s.expect_close()[:2]
        self.assertEqual(got, (code, "Invalid token" if code == 4001 else "Token expired"))
        line = self.gw.wait_log(r"session refused: ", since=mark)
        self.assertRegex(line, r'session refused: code=%d claim=%s reason="%s" transport=%s '
                               r'client=%s$' % (code, claim, re.escape(reason), transport,
                                                CLIENT))
        return line

    def test_each_refusal_names_its_claim(self):
        now = int(time.time())
        site = self.site
        cases = [
            (jwt_encode(claims_for(site), secret="not-the-secret"), 4001, "signature",
             "matches no secret"),
            (token_for(site, ttl=-10), 4002, "exp", "expired"),
            (jwt_encode(dict(claims_for(site), exp=(now + 3600) * 1000)), 4001, "exp",
             "looks like milliseconds"),
            (jwt_encode(dict(claims_for(site), exp=now + self.LIFETIME_S + 3600)), 4001, "exp",
             "beyond --max-token-lifetime-s"),
            (jwt_encode({"sub": "u", "site": site, "exp": now + 60}), 4001, "client", "missing"),
            (jwt_encode({"client": "c", "site": site, "exp": now + 60}), 4001, "sub", "missing"),
            (jwt_encode({"sub": "u", "client": "c", "exp": now + 60}), 4001, "site", "missing"),
        ]
        for t in TRANSPORTS:
            for token, code, claim, reason in cases:
                with self.subTest(transport=t, claim=claim, reason=reason):
                    self.refused(t, token, code, claim, reason)

    def test_token_in_a_message_is_refused_the_same_way(self):
        s = self.session("websocket")
        s.expect_open()
        mark = self.gw.log_mark()
        s.send({"token": jwt_encode(dict(claims_for(self.site), iat=int(time.time()) * 1000))})
        self.assertEqual(s.expect_close()[:2], (4001, "Invalid token"))
        self.assertRegex(self.gw.wait_log(r"session refused: ", since=mark),
                         r'code=4001 claim=iat reason="looks like milliseconds" '
                         r'transport=websocket client=%s$' % CLIENT)

    def test_lifetime_within_the_limit_is_accepted(self):
        self.user_session("websocket", ttl=self.LIFETIME_S - 60)

    def test_lifetime_limit_from_the_environment(self):
        gw = self.start_gateway(env={"SOCKJS_GATEWAY_MAX_TOKEN_LIFETIME_S": "600"})
        mark = gw.log_mark()
        s = self.session("websocket", gw=gw, token=token_for(self.site, ttl=3600))
        s.expect_open()
        self.assertEqual(s.expect_close()[:2], (4001, "Invalid token"))
        gw.wait_log(r'claim=exp reason="beyond --max-token-lifetime-s"', since=mark)

    def test_lifetime_limit_applies_on_reload(self):
        fd, config = tempfile.mkstemp(suffix=".conf")
        os.close(fd)
        self.addCleanup(os.unlink, config)

        def write(lifetime):
            with open(config, "w") as f:
                f.write("jwt-secret = %s\nmax-token-lifetime-s = %d\n" % (SECRET, lifetime))

        write(0)
        gw = self.start_gateway("--config", config, secrets=())
        far = jwt_encode(dict(claims_for(self.site), exp=int(time.time()) + 400 * 86400))
        s = self.session("websocket", gw=gw, token=far)
        s.expect_open()
        s.wait_ready()
        write(3600)
        mark = gw.log_mark()
        gw.signal(signal.SIGHUP)
        gw.wait_log(r"reload: done", since=mark)
        s2 = self.session("websocket", gw=gw, token=far)
        s2.expect_open()
        self.assertEqual(s2.expect_close()[:2], (4001, "Invalid token"))
        gw.wait_log(r'claim=exp reason="beyond --max-token-lifetime-s"', since=mark)


class SlowConsumerLine(ScopedTestCase):
    """The slow-consumer close names the session: transport, id, identity, queued bytes."""

    MAX_QUEUED = 64 * 1024
    gateway_args = ("--max-queued-bytes", str(MAX_QUEUED))

    def test_slow_consumer_line(self):
        sub, client = unique("u"), unique("c")
        mark = self.gw.log_mark()
        slow = self.session("xhr_streaming", token=token_for(self.site, sub, client),
                            rcvbuf=4096)
        slow.expect_open()
        filler = "x" * 16384
        # Up to 4 MiB: more than the kernel's socket buffers take before our queue grows.
        for i in range(256):
            self.gw.publish(publish_body("user", self.site, "big", filler, ids=[sub]))
            if self.gw.find_log(r"slow consumer", since=mark):
                break
        line = self.gw.wait_log(r"session closed: slow consumer", since=mark)
        session_id = slow.base.rsplit("/", 1)[1]
        self.assertRegex(line, r" WARN session closed: slow consumer: transport=xhr_streaming "
                               r"session=%s user=%s company=%s site=%s queued=\d+ limit=%d "
                               r"client=%s$" % (session_id, sub, client, self.site,
                                                self.MAX_QUEUED, CLIENT))
        queued = int(re.search(r"queued=(\d+)", line).group(1))
        self.assertGreater(queued, self.MAX_QUEUED)
        self.gw.wait_log(r"session closed: transport=xhr_streaming user=%s .* code=4008 "
                         r'reason="Slow consumer"' % sub, since=mark)


class NoTokenInLogs(ScopedTestCase):
    """At debug level, nothing of a token reaches the log: not in request lines, not in
    refusals, on any transport, accepted or not."""

    gateway_args = ("--log-level", "debug")

    def test_no_token_anywhere(self):
        tokens = []
        for t in TRANSPORTS:
            good = token_for(self.site)
            bad = jwt_encode(claims_for(self.site), secret="wrong")
            tokens += [good, bad]
            s = self.session(t, token=good)
            s.expect_open()
            s.wait_ready()
            s.send({"token": good})
            s.barrier()
            s.close()
            b = self.session(t, token=bad)
            b.expect_open()
            b.expect_close()
        self.gw.publish(publish_body("global", self.site, "e", 1))
        mark = self.gw.log_mark()
        s = self.session("websocket", token=tokens[0])
        s.expect_open()
        s.close()
        self.gw.wait_log(r"session closed: transport=websocket ", since=mark)
        log = "\n".join(self.gw.log_lines())
        self.assertIn(" DEBUG ", log)
        for tok in tokens:
            # Any of the token's three parts would be a leak.
            for part in tok.split("."):
                self.assertNotIn(part, log)


if __name__ == "__main__":
    gwtest.main()
