#!/usr/bin/python3
"""SIGHUP: the gateway reads its --config file again and applies what can change live.

Checked, with the secrets, API key and limits in the file (the command line would override
them): JWT secret rotation (old and new secret side by side, then the old one dropped) without
dropping the sessions opened with the old one; a new API key taking over from the old one; the
log level; a live limit (--max-request-channels); an option that needs a restart (--heartbeat-ms,
--history-size) reported as such in the log and left as it runs; a file that does not load (an
unknown option, a bad number, an unknown log level) refused as a whole, with a log line and the
running configuration unchanged; secrets never in the log.

Waiting: every reload ends with one "reload: done" or "reload: ... refused" log line, awaited.

Spec: docs/PROTOCOL.md "Reload".
"""

import json
import os
import signal
import subprocess
import tempfile
import unittest

import gwtest
import scopedfix
from scopedfix import ScopedGateway, ScopedTestCase, publish_body, token_for, unique

OLD_SECRET = "old-secret-" + "x" * 24
NEW_SECRET = "new-secret-" + "y" * 24
OLD_KEY = "old-api-key"
NEW_KEY = "new-api-key"


class Reload(ScopedTestCase):
    per_test_gateway = True

    def write_config(self, **options):
        with open(self.config, "w") as f:
            for name, value in options.items():
                for v in value if isinstance(value, list) else [value]:
                    f.write("%s = %s\n" % (name.replace("_", "-"), v))

    def start(self, **options):
        fd, self.config = tempfile.mkstemp(suffix=".conf")
        os.close(fd)
        self.addCleanup(os.unlink, self.config)
        self.write_config(**options)
        gw = ScopedGateway("--config", self.config, api_key=None, secrets=())
        gw.start()
        self.addCleanup(gw.stop)
        return gw

    def reload(self, gw, **options):
        """Writes the file, sends SIGHUP, returns the log lines of the reload."""
        self.write_config(**options)
        mark = gw.log_mark()
        gw.signal(signal.SIGHUP)
        gw.wait_log(r"reload: (done|the configuration was refused)", since=mark)
        return gw.log_lines(mark)

    def session(self, gw, secret, sub):
        s = scopedfix.Session(gw, "websocket",
                              token=token_for(self.site, sub, secret=secret))
        self.addCleanup(s.close)
        s.expect_open()
        s.wait_ready()
        return s

    def assertRefusedToken(self, gw, secret):
        s = scopedfix.Session(gw, "websocket", token=token_for(self.site, unique("u"),
                                                                secret=secret))
        self.addCleanup(s.close)
        s.expect_open()
        code, _, _ = s.expect_close()
        self.assertEqual(code, 4001)

    def publish_to(self, gw, key, sub, data):
        return gw.api("POST", "/api/publish", key=key,
                      body=publish_body("user", self.site, "e", data, ids=[sub]))

    def test_secrets_and_key_rotate_without_dropping_sessions(self):
        gw = self.start(jwt_secret=OLD_SECRET, api_key=OLD_KEY)
        old = self.session(gw, OLD_SECRET, "u-old")
        self.assertRefusedToken(gw, NEW_SECRET)
        # Step 1: both secrets, the new key.
        lines = self.reload(gw, jwt_secret=[NEW_SECRET, OLD_SECRET], api_key=NEW_KEY)
        text = "\n".join(lines)
        self.assertIn("reload: jwt-secret changed", text)
        self.assertIn("reload: api-key changed", text)
        for secret in (OLD_SECRET, NEW_SECRET, OLD_KEY, NEW_KEY):
            self.assertNotIn(secret, text)
        new = self.session(gw, NEW_SECRET, "u-new")
        self.session(gw, OLD_SECRET, "u-old2")
        self.assertEqual(self.publish_to(gw, OLD_KEY, "u-old", 0).status, 401)
        self.assertEqual(self.publish_to(gw, NEW_KEY, "u-old", 1).status, 202)
        self.assertEqual(old.next_message()["data"], 1)
        # Step 2: the old secret goes; its sessions stay until their tokens expire.
        self.reload(gw, jwt_secret=NEW_SECRET, api_key=NEW_KEY)
        self.assertRefusedToken(gw, OLD_SECRET)
        self.assertEqual(self.publish_to(gw, NEW_KEY, "u-old", 2).status, 202)
        self.assertEqual(old.next_message()["data"], 2)
        self.assertEqual(self.publish_to(gw, NEW_KEY, "u-new", 3).status, 202)
        self.assertEqual(new.next_message()["data"], 3)

    def test_live_limits_and_log_level_apply_restart_only_options_are_reported(self):
        gw = self.start(jwt_secret=OLD_SECRET, api_key=OLD_KEY, max_request_channels=10)
        ids = ["i%d" % i for i in range(20)]
        body = publish_body("user", self.site, "e", 0, ids=ids)
        self.assertEqual(gw.api("POST", "/api/publish", key=OLD_KEY, body=body).status, 400)
        lines = self.reload(gw, jwt_secret=OLD_SECRET, api_key=OLD_KEY, max_request_channels=100,
                            log_level="debug", heartbeat_ms=1000, history_size=5)
        text = "\n".join(lines)
        self.assertIn("reload: max-request-channels changed", text)
        self.assertIn("reload: log-level changed", text)
        self.assertRegex(text, r"reload: heartbeat-ms changed, but needs a restart")
        self.assertRegex(text, r"reload: history-size changed, but needs a restart")
        self.assertIn("reload: done, 2 options changed, 2 more need a restart", text)
        self.assertEqual(gw.api("POST", "/api/publish", key=OLD_KEY, body=body).status, 202)
        # Debug lines now appear (a request logs at debug level).
        mark = gw.log_mark()
        gw.api("GET", "/api/stats", key=OLD_KEY)
        gw.wait_log(r"\bDEBUG\b", since=mark)

    def test_the_log_format_changes_live(self):
        gw = self.start(jwt_secret=OLD_SECRET, api_key=OLD_KEY)
        lines = self.reload(gw, jwt_secret=OLD_SECRET, api_key=OLD_KEY, log_format="json")
        done = [l for l in lines if "reload: done" in l]
        self.assertEqual(len(done), 1, lines)
        self.assertEqual(json.loads(done[0])["msg"], "reload: done, 1 options changed, "
                         "0 more need a restart")
        lines = self.reload(gw, jwt_secret=OLD_SECRET, api_key=OLD_KEY, log_format="text")
        self.assertTrue(lines[-1].split()[1] == "INFO" and "reload: done" in lines[-1], lines)

    def test_a_sighup_as_soon_as_the_first_listener_is_up_is_a_reload(self):
        # A supervisor may signal as soon as it sees "listening on": the handlers must already be
        # there (the default action of SIGHUP kills). Signalled at the very first listener line,
        # before the API listener is up, the process reloads and then stops cleanly.
        fd, config = tempfile.mkstemp(suffix=".conf")
        os.close(fd)
        self.addCleanup(os.unlink, config)
        with open(config, "w") as f:
            f.write("jwt-secret = %s\napi-key = %s\nlisten = 127.0.0.1:0\n"
                    "api-listen = 127.0.0.1:0\n" % (OLD_SECRET, OLD_KEY))
        proc = subprocess.Popen([gwtest.gateway_binary(), "--config", config],
                                stderr=subprocess.PIPE, text=True)
        self.addCleanup(proc.stderr.close)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        seen = []
        signalled = False
        for line in proc.stderr:
            seen.append(line)
            if not signalled and "listening on" in line:
                proc.send_signal(signal.SIGHUP)
                signalled = True
            if "reload: done" in line:
                proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=gwtest.TIMEOUT), 0, "".join(seen))
        self.assertTrue(any("reload: done" in l for l in seen), "".join(seen))

    def test_a_bad_file_is_refused_whole(self):
        gw = self.start(jwt_secret=OLD_SECRET, api_key=OLD_KEY)
        s = self.session(gw, OLD_SECRET, "u1")
        bad_files = [
            dict(jwt_secret=NEW_SECRET, api_key=NEW_KEY, no_such_option="1"),
            dict(jwt_secret=NEW_SECRET, api_key=NEW_KEY, heartbeat_ms="many"),
            dict(jwt_secret=NEW_SECRET, api_key=NEW_KEY, log_level="loud"),
            dict(jwt_secret=NEW_SECRET, api_key=NEW_KEY, log_format="xml"),
        ]
        for options in bad_files:
            with self.subTest(options=options):
                lines = self.reload(gw, **options)
                self.assertIn("reload: the configuration was refused", "\n".join(lines))
                # Nothing of it applied: the old key and secret still rule.
                self.assertEqual(self.publish_to(gw, NEW_KEY, "u1", 0).status, 401)
                self.assertEqual(self.publish_to(gw, OLD_KEY, "u1", 1).status, 202)
                self.assertEqual(s.next_message()["data"], 1)
                self.assertRefusedToken(gw, NEW_SECRET)
        # The file gone altogether: refused too.
        os.unlink(self.config)
        mark = gw.log_mark()
        gw.signal(signal.SIGHUP)
        gw.wait_log(r"reload: the configuration was refused", since=mark)
        self.write_config(jwt_secret=OLD_SECRET)  # for the cleanup's unlink
        self.assertEqual(self.publish_to(gw, OLD_KEY, "u1", 2).status, 202)


if __name__ == "__main__":
    unittest.main()
