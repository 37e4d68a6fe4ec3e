"""The code in docs/INTEGRATING.md works as written.

Every fenced block preceded by `<!-- snippet: NAME -->` is extracted and run as a program
(python3 in isolated mode, node, sh) in an empty temporary directory, with only the environment
variables the docs name (GATEWAY_JWT_SECRET, GATEWAY_API, GATEWAY_API_KEY, GATEWAY_URL), against
a real gateway started here. Tokens minted by the snippets open sessions (websocket and xhr
polling, the token in the URL as sockjs-client sends it, and as the first message) that must
receive what the publish snippets send. The client snippets (stock sockjs-client, and
web/sockjs-gateway.js in Node) print what they receive, also across a gateway restart.
"""

import base64
import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import unittest

import gwtest
import scopedfix
from scopedfix import ScopedGateway, Session

DOC = os.path.join(gwtest.REPO_ROOT, "docs", "INTEGRATING.md")
SNIPPET_RE = re.compile(r"<!-- snippet: ([a-z0-9-]+) -->\n```([a-z]+)\n(.*?)\n```\n", re.S)
RUNNERS = {"python": ["python3", "-I"], "js": ["node"], "sh": ["sh", "-eu"]}
SUFFIXES = {"python": ".py", "js": ".js", "sh": ".sh"}
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
RUN_TIMEOUT = 30
# sockjs-client for Node, as tests/node installs it (scripts/setup.sh --test).
NODE_MODULES = os.path.join(gwtest.REPO_ROOT, "tests", "node", "node_modules")
DOC_ORIGIN = "https://gateway.example.com"
# How long a closed stock client is watched for a reconnect that must not come.
STAYS_CLOSED_S = 3

# What the snippets address: user 42 of company 7 on site "shop".
USER, CLIENT, SITE = "42", "7", "shop"


def snippets():
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    found = {}
    for name, lang, code in SNIPPET_RE.findall(text):
        if name in found:
            raise AssertionError("snippet %s appears twice in %s" % (name, DOC))
        found[name] = (lang, code + "\n")
    return found


def claims_of(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class DocsSnippetsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.snippets = snippets()

    def setUp(self):
        # One gateway per test: the snippets name fixed ids, so that no event of another test
        # reaches this one's sessions.
        self.gw = ScopedGateway().start()
        self.addCleanup(self.gw.stop)
        self.dir = tempfile.mkdtemp(prefix="gw-docs-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write_snippet(self, name, prologue=""):
        """The snippet (after `prologue`) in a file of the empty directory; (command, env) to
        run it with the documented variables only."""
        self.assertIn(name, self.snippets, "no snippet %r in %s" % (name, DOC))
        lang, code = self.snippets[name]
        path = os.path.join(self.dir, name + SUFFIXES[lang])
        with open(path, "w", encoding="utf-8") as f:
            f.write(prologue + code)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "GATEWAY_JWT_SECRET": scopedfix.SECRET,
               "GATEWAY_API": "http://%s:%d" % (self.gw.api_host, self.gw.api_port),
               "GATEWAY_API_KEY": scopedfix.API_KEY}
        return RUNNERS[lang] + [path], env

    def run_snippet(self, name):
        """Runs the snippet; returns its stdout (stripped), failing the test with its stderr
        when it exits non-zero."""
        command, env = self.write_snippet(name)
        p = subprocess.run(command, cwd=self.dir, env=env, capture_output=True,
                           timeout=RUN_TIMEOUT)
        if p.returncode != 0:
            raise AssertionError("snippet %s exited %d\n--- stdout ---\n%s\n--- stderr ---\n%s"
                                 % (name, p.returncode, p.stdout.decode(), p.stderr.decode()))
        return p.stdout.decode().strip()

    def open_session(self, token, transport="websocket"):
        s = Session(self.gw, transport, token=token)
        self.addCleanup(s.close)
        s.expect_open()
        s.wait_ready()
        return s

    def assert_minted(self, name):
        token = self.run_snippet(name)
        claims = claims_of(token)
        self.assertEqual((claims["sub"], claims["client"], claims["site"]), (USER, CLIENT, SITE))
        self.assertEqual(set(claims), {"sub", "client", "site", "exp"})
        self.assertNotIn("=", token)
        # The token opens authenticated sessions: the user's own channel reaches them, over a
        # websocket and over xhr polling.
        sessions = [self.open_session(token, t) for t in ("websocket", "xhr_polling")]
        self.gw.publish(scopedfix.publish_body("user", SITE, "minted." + name, {"n": 1},
                                               ids=[USER]))
        for s in sessions:
            m = s.next_message()
            self.assertEqual((m["scope"], m["site"], m["event"], m["data"], m["seq"]),
                             ("user", SITE, "minted." + name, {"n": 1}, 1))
        return token

    def test_python_minted_token_opens_a_session(self):
        self.assert_minted("mint-python")

    def test_node_minted_token_opens_a_session(self):
        self.assert_minted("mint-node")

    def test_minted_token_as_first_message(self):
        token = self.run_snippet("mint-python")
        s = Session(self.gw, "websocket", site=None)
        self.addCleanup(s.close)
        s.expect_open()
        s.send({"token": token})
        s.wait_ready()
        self.gw.publish(scopedfix.publish_body("client", SITE, "first.message", None,
                                               ids=[CLIENT]))
        m = s.next_message()
        self.assertEqual((m["scope"], m["event"], m["data"]), ("client", "first.message", None))

    def test_both_snippets_mint_the_same_claims(self):
        py, node = claims_of(self.run_snippet("mint-python")), \
            claims_of(self.run_snippet("mint-node"))
        self.assertLessEqual(abs(py.pop("exp") - node.pop("exp")), 5)
        self.assertEqual(py, node)

    def assert_publish_reaches(self, name, scope, event, data):
        token = self.run_snippet("mint-python")
        session = self.open_session(token)
        out = self.run_snippet(name)
        ids = UUID_RE.findall(out)
        self.assertEqual(len(ids), 1, "one publish id expected in %r" % out)
        m = session.next_message()
        self.assertEqual((m["scope"], m["site"], m["event"], m["data"], m["seq"]),
                         (scope, SITE, event, data, 1))

    def test_curl_publish_reaches_the_user(self):
        self.assert_publish_reaches("publish-curl", "user", "order.shipped", {"order": 1001})

    def test_python_publish_reaches_the_company(self):
        self.assert_publish_reaches("publish-python", "client", "order.created",
                                    {"order": 1002, "by": "42"})

    def test_node_publish_reaches_the_site(self):
        self.assert_publish_reaches("publish-node", "global", "maintenance.planned",
                                    {"at": "02:00"})

    def start_client(self, command, env):
        """Starts a long-running snippet with sockjs-client on NODE_PATH; returns a function
        giving its next output line (failing the test when none comes in time)."""
        self.assertTrue(os.path.isdir(os.path.join(NODE_MODULES, "sockjs-client")),
                        "%s/sockjs-client is missing: scripts/setup.sh --test" % NODE_MODULES)
        env.update(NODE_PATH=NODE_MODULES)
        client = subprocess.Popen(command, cwd=self.dir, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        lines = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(x.rstrip("\n")) for x in client.stdout],
                                  daemon=True)
        reader.start()

        def stop():
            client.kill()
            client.wait(RUN_TIMEOUT)
            reader.join(RUN_TIMEOUT)
            client.stdout.close()
        self.addCleanup(stop)

        def next_line(what, timeout=gwtest.TIMEOUT):
            """The next line; None, when `what` is None, if none comes within `timeout`."""
            try:
                return lines.get(timeout=timeout)
            except queue.Empty:
                if what is None:
                    return None
                raise AssertionError("the client printed no %s" % what) from None
        return next_line

    def test_stock_client_snippet_receives_events(self):
        # The sockjs-client block as a Node program: what it needs around it (the library, a
        # token) goes before it, and the gateway's address replaces the example origin.
        token = self.run_snippet("mint-node")
        lang, code = self.snippets["receive-sockjs-client"]
        self.assertIn(DOC_ORIGIN, code)
        self.snippets["receive-sockjs-client"] = (
            lang, code.replace(DOC_ORIGIN, "http://127.0.0.1:%d" % self.gw.port))
        command, env = self.write_snippet(
            "receive-sockjs-client",
            prologue='const SockJS = require("sockjs-client");\n'
                     'const token = process.env.GATEWAY_TOKEN;\n')
        env.update(GATEWAY_TOKEN=token)
        next_line = self.start_client(command, env)
        first = next_line("ready line")
        self.assertTrue(first.startswith("ready "), first)
        self.assertEqual(sorted(json.loads(first[len("ready "):])), ["client", "global", "user"])
        self.run_snippet("publish-curl")
        self.assertEqual(next_line("event line"), 'user order.shipped 1 {"order":1001}')

        # "It stays closed": the gateway drains and comes back; the stock client does not
        # reconnect (web/sockjs-gateway.js would within 2 s after a 1001).
        port = self.gw.port
        self.gw.stop()
        self.assertEqual(next_line("close line"), "closed 1001 Going away")
        self.gw = ScopedGateway(listen=["127.0.0.1:%d" % port]).start()
        self.addCleanup(self.gw.stop)
        self.assertIsNone(next_line(None, timeout=STAYS_CLOSED_S))

    def test_library_snippet_receives_events(self):
        # Next to it, as the docs say: web/sockjs-gateway.js and the Node minting snippet.
        shutil.copy(os.path.join(gwtest.REPO_ROOT, "web", "sockjs-gateway.js"), self.dir)
        with open(os.path.join(self.dir, "mint-token.js"), "w", encoding="utf-8") as f:
            f.write(self.snippets["mint-node"][1])
        command, env = self.write_snippet("receive-library-node")
        env.update(GATEWAY_URL="http://127.0.0.1:%d" % self.gw.port)
        next_line = self.start_client(command, env)
        self.assertEqual(next_line("ready line"), "ready, to refetch: []")
        self.run_snippet("publish-curl")
        self.assertEqual(next_line("event line"), 'user order.shipped 1 {"order":1001}')

        # What a restarting seq means (the docs' "seq and epoch"): the gateway restarts on its
        # embedded engine, its history gone. The library reconnects by itself, says every scope
        # must be refetched, and the channel counts from 1 again.
        port = self.gw.port
        self.gw.stop()
        self.gw = ScopedGateway(listen=["127.0.0.1:%d" % port]).start()
        self.addCleanup(self.gw.stop)
        line = next_line("ready line after the restart")
        self.assertTrue(line.startswith("ready, to refetch: "), line)
        self.assertEqual(sorted(json.loads(line[len("ready, to refetch: "):])),
                         ["client", "global", "user"])
        self.run_snippet("publish-curl")
        self.assertEqual(next_line("event line"), 'user order.shipped 1 {"order":1001}')

    def test_presence_snippet(self):
        token = self.run_snippet("mint-python")
        self.open_session(token)
        self.open_session(token, "xhr_polling")
        self.assertEqual(json.loads(self.run_snippet("presence-curl")),
                         {"sessions": 2, "users": {USER: 2}})

    def test_the_documented_missing_data_answer(self):
        # The docs say a publish without data is refused, and quote the answer.
        body = scopedfix.publish_body("user", SITE, "no.data", ids=[USER])
        body.pop("data", None)
        r = self.gw.publish_raw(body)
        self.assertEqual(r.status, 400)
        answer = "400 %s" % json.dumps(r.json())
        with open(DOC, encoding="utf-8") as f:
            self.assertIn("`%s`" % answer, f.read())


if __name__ == "__main__":
    gwtest.main()
