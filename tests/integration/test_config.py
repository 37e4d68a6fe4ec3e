#!/usr/bin/python3
"""Configuration as an operator writes it: listeners with ,proxy and ,trusted from the
environment (real PROXY v2 and X-Forwarded-For connections), the --config file syntax (comments,
quotes, escapes, errors naming file:line), the refusal to start without a --jwt-secret, the
warning about short secrets (at start and on SIGHUP), and --print-config (secrets masked, read
back by --config to the same configuration).

Spec: docs/CONFIGURATION.md.
"""

import os
import re
import signal
import subprocess
import tempfile
import unittest

import gwtest
import scopedfix
from gwtest import Gateway
from scopedfix import ScopedGateway, ScopedTestCase, publish_body, token_for, unique
from test_client_address import connect, get_info, proxy_v2

SECRET_IN_FILE = 'file secret # with "quotes", a \\ and a tab\tof 32+ bytes'
KEY_IN_FILE = 'the key # with "quotes" and \\n taken as is'


def run_gateway(*args, env=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([gwtest.gateway_binary(), *args], capture_output=True, text=True,
                          timeout=20, env=full_env, stdin=subprocess.DEVNULL)


class EnvListenGateway(Gateway):
    """--test-app with its listeners from SOCKJS_GATEWAY_LISTEN only (no --listen)."""

    def __init__(self, listen_env, n_listeners, *args):
        super().__init__(*args, env={"SOCKJS_GATEWAY_LISTEN": listen_env})
        self.listen = [listen_env] * n_listeners  # how many "listening on" lines to await

    def command(self):
        listen, self.listen = self.listen, []
        try:
            return super().command()
        finally:
            self.listen = listen


class ListenersFromTheEnvironment(unittest.TestCase):
    def assertProxyListener(self, gw, index, source):
        mark = gw.log_mark()
        with connect(gw.addresses[index][1]) as s:
            s.sendall(proxy_v2(source, 40002, "127.0.0.1", 80))
            self.assertTrue(get_info(s).startswith(b"HTTP/1.1 200"))
        gw.wait_log(re.escape("%s:40002: GET /echo/info" % source), since=mark)
        # Without the header the connection is refused: the listener requires it.
        with connect(gw.addresses[index][1]) as s:
            self.assertEqual(get_info(s), b"")
        gw.wait_log("no valid PROXY protocol header", since=mark)

    def assertTrustedListener(self, gw, index, forwarded):
        mark = gw.log_mark()
        with connect(gw.addresses[index][1]) as s:
            get_info(s, b"X-Forwarded-For: %s\r\n" % forwarded.encode())
        gw.wait_log(re.escape("%s: GET /echo/info" % forwarded), since=mark)

    def assertPlainListener(self, gw, index):
        mark = gw.log_mark()
        with connect(gw.addresses[index][1]) as s:
            self.assertTrue(get_info(s, b"X-Forwarded-For: 192.0.2.99\r\n")
                            .startswith(b"HTTP/1.1 200"))
        gw.wait_log(r"127\.0\.0\.1:\d+: GET /echo/info", since=mark)
        self.assertIsNone(gw.find_log("192.0.2.99", since=mark))

    def test_blank_separated_listeners_keep_their_flags(self):
        with EnvListenGateway("127.0.0.1:0,proxy 127.0.0.1:0,trusted\t127.0.0.1:0", 3,
                              "--log-level", "debug") as gw:
            self.assertEqual(len(gw.addresses), 3)
            self.assertProxyListener(gw, 0, "198.51.100.9")
            self.assertTrustedListener(gw, 1, "192.0.2.44")
            self.assertPlainListener(gw, 2)

    def test_comma_separated_listeners_keep_their_flags(self):
        # Commas alone still separate values: a flag stays with the address before it.
        with EnvListenGateway("127.0.0.1:0,trusted,proxy,127.0.0.1:0", 2,
                              "--log-level", "debug") as gw:
            self.assertEqual(len(gw.addresses), 2)
            mark = gw.log_mark()
            with connect(gw.addresses[0][1]) as s:
                s.sendall(proxy_v2("198.51.100.10", 40002, "127.0.0.1", 80))
                get_info(s, b"X-Forwarded-For: 192.0.2.45\r\n")
            gw.wait_log(re.escape("192.0.2.45: GET /echo/info"), since=mark)
            self.assertPlainListener(gw, 1)


def write_file(test, text):
    fd, path = tempfile.mkstemp(suffix=".conf")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    test.addCleanup(os.unlink, path)
    return path


def quoted(value):
    """`value` in the file's "..." syntax."""
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")


class ConfigFile(ScopedTestCase):
    per_test_gateway = True

    def test_comments_quotes_and_escapes(self):
        path = write_file(self, "\n".join([
            "# a comment line, then a blank one",
            "",
            "   # an indented comment",
            "jwt-secret = %s   # the comment is not part of the secret" % quoted(SECRET_IN_FILE),
            "jwt-secret = %s # a second secret, bare" % scopedfix.SECRET,
            "api-key = '%s'  # single quotes: literal" % KEY_IN_FILE,
            "allow-anonymous   # a flag alone is set",
            "max-ids = 7\t# tab, then a comment",
            ""]))
        gw = self.start_gateway("--config", path, api_key=None, secrets=())
        gw.api_key = KEY_IN_FILE
        # Both secrets, exactly as written, sign accepted tokens.
        for secret in (SECRET_IN_FILE, scopedfix.SECRET):
            sub = unique("u")
            s = self.session(gw=gw, token=token_for(self.site, sub, secret=secret))
            s.expect_open()
            s.wait_ready()
            gw.publish(publish_body("user", self.site, "e", secret, ids=[sub]))
            self.assertEqual(s.next_message()["data"], secret)
        # The flag alone was set: a session without a token gets the site's global scope.
        anonymous = self.session(gw=gw, site=self.site)
        anonymous.expect_open()
        anonymous.wait_ready()
        gw.publish(publish_body("global", self.site, "g", "to all"))
        self.assertEqual(anonymous.next_message()["data"], "to all")
        # The bare value ended before the comment: 8 ids are one too many.
        r = gw.publish_raw(publish_body("user", self.site, "e", 1, ids=list("abcdefgh")))
        self.assertEqual(r.status, 400, r)
        self.assertEqual(gw.publish_raw(publish_body("user", self.site, "e", 1,
                                                     ids=list("abcdefg"))).status, 202)
        # With the comment kept (the old reading), neither the secret nor the key would work.
        self.assertEqual(gw.publish_raw(publish_body("global", self.site, "e", 1),
                                        key=KEY_IN_FILE.split(" #")[0]).status, 401)

    def test_errors_name_the_file_and_line(self):
        cases = [
            ('jwt-secret = "no closing quote', "no closing '\"'"),
            ("jwt-secret = 'no closing quote", "no closing \"'\""),
            ('jwt-secret = "bad \\q escape"', "unknown escape"),
            ('jwt-secret = "a" b', "text after the closing '\"'"),
            ("jwt secret = x", "expected '=' after the name"),
            ("= x", "no option name before '='"),
            ("no-such-option = 1", "unknown option 'no-such-option'"),
            ("max-ids = 7x # comment", "max-ids: expected a number"),
        ]
        for line, reason in cases:
            with self.subTest(line=line):
                path = write_file(self, "# comment\n\nallow-anonymous\n%s\n" % line)
                r = run_gateway("--config", path, "--listen", "127.0.0.1:0")
                self.assertEqual(r.returncode, 2, r.stderr)
                lines = r.stderr.splitlines()
                self.assertEqual(len(lines), 1, r.stderr)
                self.assertTrue(lines[0].startswith("sockjs-gateway: %s:4: %s" % (path, reason)),
                                lines[0])


class Secrets(ScopedTestCase):
    per_test_gateway = True

    def test_no_secret_is_refused_with_one_line(self):
        r = run_gateway("--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0",
                        env={"SOCKJS_GATEWAY_JWT_SECRET": ""})
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stdout, "")
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("no --jwt-secret", lines[0])
        self.assertIn("--allow-anonymous", lines[0])

    def test_allow_anonymous_starts_without_a_secret(self):
        gw = self.start_gateway("--allow-anonymous", secrets=())
        gw.wait_log("no --jwt-secret: every session token is refused")
        s = self.session(gw=gw, site=self.site)
        s.expect_open()
        s.wait_ready()
        gw.publish(publish_body("global", self.site, "e", 1))
        self.assertEqual(s.next_message()["data"], 1)

    def test_a_secret_from_the_environment_or_a_file_is_enough(self):
        gw = self.start_gateway(secrets=(), env={"SOCKJS_GATEWAY_JWT_SECRET": scopedfix.SECRET})
        self.assertIsNone(gw.find_log("jwt-secret"))
        path = write_file(self, "jwt-secret = %s\n" % scopedfix.SECRET)
        self.start_gateway("--config", path, secrets=())

    def test_short_secrets_are_warned_about_by_position(self):
        short = "tiny-" + unique("s")  # 19 bytes
        path = write_file(self, "jwt-secret = %s\njwt-secret = %s\n" % (scopedfix.SECRET, short))
        gw = self.start_gateway("--config", path, secrets=())
        gw.wait_log(r"WARN.*--jwt-secret #2 is 19 bytes: use at least 32")
        self.assertIsNone(gw.find_log(r"--jwt-secret #1 "))
        # The short one works (a warning, not a refusal).
        s = self.user_session(gw=gw, secret=short)
        # On SIGHUP the running secrets are checked again.
        with open(path, "w") as f:
            f.write("jwt-secret = %s\njwt-secret = %s\n" % (short, short + "-longer-by-13"))
        mark = gw.log_mark()
        gw.signal(signal.SIGHUP)
        gw.wait_log("reload: done", since=mark)
        lines = "\n".join(gw.log_lines(mark))
        self.assertIn("--jwt-secret #1 is 19 bytes", lines)
        self.assertNotIn("#2 is", lines)  # exactly 32 bytes: enough
        for line in gw.log_lines():
            self.assertNotIn(short, line)
        s.close()

    def test_a_reload_without_any_secret_is_refused(self):
        path = write_file(self, "jwt-secret = %s\n" % scopedfix.SECRET)
        gw = self.start_gateway("--config", path, secrets=())
        s = self.user_session(gw=gw)
        with open(path, "w") as f:
            f.write("# the secret is gone\n")
        mark = gw.log_mark()
        gw.signal(signal.SIGHUP)
        gw.wait_log("reload: the configuration was refused", since=mark)
        self.user_session(gw=gw)
        s.close()


class PrintConfig(unittest.TestCase):
    SECRETS = ("print-config-secret-one-of-32-bytes", "print-config-secret-two # quoted")
    KEY = "print-config-api-key"
    REDIS_PASSWORD = "print-config-redis-password"

    def test_effective_configuration_masked_and_read_back(self):
        fd, path = tempfile.mkstemp(suffix=".conf")
        with os.fdopen(fd, "w") as f:
            f.write("heartbeat-ms = 1111\nmax-ids = 2222\nmax-sites = 3333\n"
                    "jwt-secret = %s\n" % quoted(self.SECRETS[0]))
        self.addCleanup(os.unlink, path)
        r = run_gateway("--config", path, "--max-sites", "3", "--print-config",
                        "--jwt-secret", self.SECRETS[0], "--jwt-secret", self.SECRETS[1],
                        env={"SOCKJS_GATEWAY_MAX_IDS": "22", "SOCKJS_GATEWAY_MAX_SITES": "33",
                             "SOCKJS_GATEWAY_API_KEY": self.KEY,
                             "SOCKJS_GATEWAY_NODE_ID": " an id # with a comment sign",
                             "SOCKJS_GATEWAY_ENGINE":
                                 "redis://:%s@127.0.0.1:1" % self.REDIS_PASSWORD,
                             "SOCKJS_GATEWAY_LISTEN": "127.0.0.1:1,proxy 127.0.0.1:2"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        out = r.stdout
        for secret in self.SECRETS + (self.KEY, self.REDIS_PASSWORD):
            self.assertNotIn(secret, out)
        lines = out.splitlines()
        # Precedence: file < environment < command line.
        for line in ("heartbeat-ms = 1111", "max-ids = 22", "max-sites = 3",
                     "jwt-secret = ***", "api-key = ***", "engine = redis://***@127.0.0.1:1",
                     "listen = 127.0.0.1:1,proxy", "listen = 127.0.0.1:2",
                     'node-id = " an id # with a comment sign"', "allow-anonymous = false"):
            self.assertIn(line, lines)
        self.assertEqual(lines.count("jwt-secret = ***"), 2)
        # Every option once per value: the help's options, less the command-line-only ones.
        help_names = set(re.findall(r"^  --([a-z0-9-]+)", run_gateway("--help").stdout, re.M))
        printed = {l.split(" =")[0] for l in lines if not l.startswith("#")}
        self.assertEqual(printed, help_names - {"config", "print-config", "help", "version"})

        # Read back by --config (no environment this time), it prints the same.
        fd, copy = tempfile.mkstemp(suffix=".conf")
        with os.fdopen(fd, "w") as f:
            f.write(out)
        self.addCleanup(os.unlink, copy)
        again = subprocess.run([gwtest.gateway_binary(), "--config", copy, "--print-config"],
                               capture_output=True, text=True, timeout=20,
                               env={k: v for k, v in os.environ.items()
                                    if not k.startswith("SOCKJS_GATEWAY_")})
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(again.stdout, out)

    def test_no_secret_needed_to_print(self):
        r = run_gateway("--print-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("# jwt-secret: none", r.stdout.splitlines())


if __name__ == "__main__":
    unittest.main()
