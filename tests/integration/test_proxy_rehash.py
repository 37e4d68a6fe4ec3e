"""What a node coming back does to polling sessions behind HAProxy (docs/OPERATING.md, "`balance
source` and a node coming back").

Three gateways behind the HAProxy configuration that deploy/haproxy/render.py renders. Node g2 is
put in maintenance (stats socket), polling sessions are opened meanwhile, g2 is enabled again,
and every session sends a message (xhr_send: 204 while its node holds it, 404 on a node that
does not know it). HAProxy's log says which node answered each send.

- As rendered (hash of the session segment, consistent): sessions opened before the outage are
  all kept; of those opened during it, the ones whose id hashes to g2 are lost, and only on g2.
- With `balance source` (map-based, HAProxy's default hash-type), one client address per
  session: the return of g2 also sends sessions to the wrong surviving node.
"""

import os
import socket
import subprocess
import sys
import time
import unittest
import uuid

import gwtest
import proxyfix

RENDER = os.path.join(gwtest.REPO_ROOT, "deploy", "haproxy", "render.py")
NODES = 3
SESSIONS = 30
WAIT = 15  # seconds for HAProxy to change a server's state, or to log a request


class ClusterHAProxy(proxyfix.HAProxy):
    """HAProxy running render.py's configuration for `node_ports` (their `,proxy` listeners),
    with a stats socket and logs on stderr; `edit(cfg)` may change the rendered text."""

    def __init__(self, node_ports, edit=None):
        super().__init__({"fe": (node_ports[0], "", [])})
        self.node_ports = node_ports
        self.edit = edit

    @property
    def stats_socket(self):
        return os.path.join(self.dir, "admin.sock")

    def config(self):
        cfg = subprocess.run(
            [sys.executable, RENDER, "--bind", "127.0.0.1:%d" % self.endpoint().port,
             "--nodes", ",".join("127.0.0.1:%d" % p for p in self.node_ports),
             "--maxconn-per-server", "100", "--check-inter", "200ms", "--log", "stderr",
             "--stats-socket", self.stats_socket],
            check=True, capture_output=True, text=True).stdout
        return self.edit(cfg) if self.edit else cfg

    def command_socket(self, command):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(gwtest.TIMEOUT)
            s.connect(self.stats_socket)
            s.sendall(command.encode() + b"\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out.decode()
                out += chunk

    def status(self, server):
        """The `show stat` status of `server` in backend gateways_session."""
        rows = self.command_socket("show stat").splitlines()
        header = rows[0].lstrip("# ").split(",")
        for row in rows[1:]:
            cols = dict(zip(header, row.split(",")))
            if cols.get("pxname") == "gateways_session" and cols.get("svname") == server:
                return cols["status"]
        raise AssertionError("no server %s in show stat:\n%s" % (server, "\n".join(rows)))

    def wait_status(self, server, wanted):
        deadline = time.monotonic() + WAIT
        while (status := self.status(server)) != wanted:
            if time.monotonic() > deadline:
                raise AssertionError("%s is %s, not %s, after %d s\n%s"
                                     % (server, status, wanted, WAIT, self.log_text()))
            time.sleep(0.02)  # polling interval of HAProxy's state

    def server_of(self, path):
        """The server that answered the request for `path`, from HAProxy's log."""
        needle = '"POST %s HTTP/1.1"' % path
        deadline = time.monotonic() + WAIT
        while True:
            with self._lock:
                lines = [line for line in self.lines if needle in line]
            if lines:
                return lines[-1].split(" gateways_session/", 1)[1].split(" ", 1)[0]
            if time.monotonic() > deadline:
                raise AssertionError("no log line for %s\n%s" % (path, self.log_text()))
            time.sleep(0.02)  # polling interval of the log


def balance_source(cfg):
    """The session backend balanced on the client address, HAProxy's default hash-type."""
    hashed = "    balance hash path,field(4,/)\n    hash-type consistent\n"
    assert hashed in cfg, cfg
    return cfg.replace(hashed, "    balance source\n")


class RehashTest(unittest.TestCase):
    def setUp(self):
        self.nodes = []
        for _ in range(NODES):
            gw = gwtest.Gateway("--allow-anonymous", "--unknown-session-rate", "0",
                                "--disconnect-delay-ms", "120000",
                                "--api-listen", "127.0.0.1:0",
                                listen=["127.0.0.1:0,proxy"], test_app=False).start()
            self.addCleanup(gw.stop)
            self.nodes.append(gw)

    def start_proxy(self, edit=None):
        proxy = ClusterHAProxy([gw.port for gw in self.nodes], edit)
        proxy.start()
        self.addCleanup(proxy.stop)
        for i in range(1, NODES + 1):
            proxy.wait_status("g%d" % i, "UP")
        return proxy

    def post(self, proxy, path, source, body=b""):
        conn = proxy.connect(source=(source, 0))
        try:
            conn.send(gwtest.build_request("POST", path + "?site=rehash", body=body))
            return gwtest.read_response(conn, method="POST")
        finally:
            conn.close()

    def open_sessions(self, proxy, sources):
        """One polling session per source address; returns [(session path, source)]."""
        opened = []
        for source in sources:
            base = "/sockjs/000/%s" % uuid.uuid4().hex
            r = self.post(proxy, base + "/xhr", source)
            self.assertEqual((r.status, r.body), (200, b"o\n"), r)
            opened.append((base, source))
        return opened

    def send_all(self, proxy, sessions):
        """xhr_send on each session, from its address: {session: (status, server)}."""
        out = {}
        for base, source in sessions:
            r = self.post(proxy, base + "/xhr_send", source, body=b'["{\\"events\\": []}"]')
            self.assertIn(r.status, (204, 404), r)
            out[base] = (r.status, proxy.server_of(base + "/xhr_send"))
        return out

    def outage_of_g2(self, proxy, sources_before, sources_during):
        before = self.open_sessions(proxy, sources_before)
        proxy.command_socket("disable server gateways_session/g2")
        proxy.wait_status("g2", "MAINT")
        during = self.open_sessions(proxy, sources_during)
        proxy.command_socket("enable server gateways_session/g2")
        proxy.wait_status("g2", "UP")
        return self.send_all(proxy, before), self.send_all(proxy, during)

    def test_session_hashing_loses_only_what_hashes_to_the_returning_node(self):
        proxy = self.start_proxy()
        one = ["127.0.0.2"]
        before, during = self.outage_of_g2(proxy, one * SESSIONS, one * SESSIONS)
        self.assertEqual({s for s, _ in before.values()}, {204}, before)
        lost = {base: server for base, (status, server) in during.items() if status == 404}
        kept = {base: server for base, (status, server) in during.items() if status == 204}
        self.assertTrue(lost and kept, during)
        self.assertEqual(set(lost.values()), {"g2"}, during)
        self.assertNotIn("g2", kept.values())

    def test_balance_source_sends_sessions_to_the_wrong_surviving_node(self):
        proxy = self.start_proxy(balance_source)
        sources = ["127.0.0.%d" % (10 + i) for i in range(SESSIONS)]
        _, during = self.outage_of_g2(proxy, [], sources)
        lost_elsewhere = [base for base, (status, server) in during.items()
                          if status == 404 and server != "g2"]
        self.assertTrue(lost_elsewhere, during)


if __name__ == "__main__":
    gwtest.main()
