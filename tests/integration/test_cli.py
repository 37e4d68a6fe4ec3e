#!/usr/bin/python3
"""The command line and the log as an operator meets them: -h works like --help, an unknown
option gets one line and a hint (not the whole help), and a token in a URL never reaches the
log, even at debug level.

Spec: README.md (options), docs/PROTOCOL.md (the debug request lines).
"""

import subprocess
import unittest

import gwtest
import scopedfix
from scopedfix import ScopedTestCase, token_for, unique


class CommandLine(unittest.TestCase):
    def run_gateway(self, *args):
        return subprocess.run([gwtest.gateway_binary(), *args], capture_output=True, text=True,
                              timeout=20)

    def test_h_is_help(self):
        short, long = self.run_gateway("-h"), self.run_gateway("--help")
        self.assertEqual(short.returncode, 0, short.stderr)
        self.assertTrue(short.stdout.startswith("Usage: sockjs-gateway"), short.stdout[:200])
        self.assertEqual(short.stdout, long.stdout)

    def test_an_unknown_option_gets_one_line_and_a_hint(self):
        r = self.run_gateway("--no-such-option")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, "")
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 2, r.stderr)
        self.assertIn("no-such-option", lines[0])
        self.assertIn("--help", lines[1])


class TokensNotLogged(ScopedTestCase):
    gateway_args = ("--log-level", "debug")

    def test_url_tokens_are_redacted_in_debug_lines(self):
        mark = self.gw.log_mark()
        token = token_for(self.site, unique("u"))
        for transport in scopedfix.TRANSPORTS:
            s = self.session(transport, token=token)
            s.expect_open()
            s.wait_ready()
            s.close()
        lines = self.gw.log_lines(mark)
        self.assertTrue(any("token=<redacted>" in l for l in lines), "\n".join(lines[-20:]))
        signature = token.rsplit(".", 1)[1]
        for line in lines:
            self.assertNotIn(signature, line)
            self.assertNotIn(token.split(".")[1], line)


if __name__ == "__main__":
    unittest.main()
