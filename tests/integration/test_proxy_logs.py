"""Proxies configured as docs/PROXIES.md ("Keeping tokens out of access logs") says log a polling
request without the token it carries in `?token=`.

Real HAProxy and nginx (proxyfix.py) in front of a real gateway: HAProxy with the documented
`log-format` lines (taken from the doc's marked blocks), HAProxy with the configuration that
deploy/haproxy/render.py renders with `--log`, and nginx with the documented `log_format`. Each
logs the request (the path is there) and the token is nowhere in its output. The same request
through the proxies' default formats does log the token, so the checks can see one.
"""

import os
import re
import subprocess
import sys
import time
import unittest
import uuid

import gwtest
import proxyfix
import scopedfix
from scopedfix import ScopedGateway

DOC = os.path.join(gwtest.REPO_ROOT, "docs", "PROXIES.md")
RENDER = os.path.join(gwtest.REPO_ROOT, "deploy", "haproxy", "render.py")
SNIPPET_RE = re.compile(r"<!-- snippet: ([a-z0-9-]+) -->\n```\n(.*?)\n```\n", re.S)
NGINX_DOC_LOG = "/var/log/nginx/access.log"
LOG_TIMEOUT = 10


def snippet(name):
    with open(DOC, encoding="utf-8") as f:
        found = dict(SNIPPET_RE.findall(f.read()))
    if name not in found:
        raise AssertionError("no snippet %r in %s" % (name, DOC))
    return found[name].split("\n")


def wait_for(what, read, needle):
    """Polls `read()` (the proxy's log so far) until it contains `needle`; returns it."""
    deadline = time.monotonic() + LOG_TIMEOUT
    while True:
        text = read()
        if needle in text:
            return text
        if time.monotonic() > deadline:
            raise AssertionError("%s: no log line with %r within %d s; the log:\n%s"
                                 % (what, needle, LOG_TIMEOUT, text))
        time.sleep(0.02)  # polling interval of a log file that the proxy appends to


class HAProxyWithLines(proxyfix.HAProxy):
    """proxyfix's HAProxy with `defaults_lines` in place of its `log global` + `option httplog`
    (None: those two as they are) and `frontend_lines` in its frontend."""

    def __init__(self, gw_port, defaults_lines=None, frontend_lines=()):
        super().__init__({"fe": (gw_port, "", list(frontend_lines))})
        self.defaults_lines = defaults_lines

    def config(self):
        cfg = super().config()
        if self.defaults_lines is not None:
            default = "    log global\n    option httplog\n"
            assert default in cfg, cfg
            cfg = cfg.replace(default, "\n".join(self.defaults_lines) + "\n")
        return cfg


class RenderedHAProxy(proxyfix.HAProxy):
    """HAProxy running what deploy/haproxy/render.py prints for one node, logging to stderr."""

    def __init__(self, node_port):
        super().__init__({"fe": (node_port, "", [])})
        self.node_port = node_port

    def config(self):
        bind = "127.0.0.1:%d" % self.endpoint().port
        return subprocess.run(
            [sys.executable, RENDER, "--nodes", "127.0.0.1:%d" % self.node_port, "--bind", bind,
             "--maxconn-per-server", "100", "--log", "stderr"],
            check=True, capture_output=True, text=True).stdout


class NginxWithLines(proxyfix.Nginx):
    """proxyfix's nginx with `http_lines` in place of its `access_log` line; NGINX_DOC_LOG in
    them is replaced by the log file of this nginx (None: the default `combined` format)."""

    def __init__(self, gw_port, http_lines=None):
        super().__init__({"fe": (gw_port, [])})
        self.http_lines = http_lines

    @property
    def access_log(self):
        return os.path.join(self.dir, "access.log")

    def config(self):
        cfg = super().config()
        if self.http_lines is not None:
            default = "    access_log %s;\n" % self.access_log
            assert default in cfg, cfg
            lines = "\n".join(self.http_lines).replace(NGINX_DOC_LOG, self.access_log)
            cfg = cfg.replace(default, lines + "\n")
        return cfg

    def log_file_text(self):
        try:
            with open(self.access_log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


class ProxyLogsTest(unittest.TestCase):
    def setUp(self):
        # A `,proxy` listener for the rendered configuration (send-proxy-v2), a plain one for
        # proxyfix's proxies.
        self.gw = ScopedGateway(listen=["127.0.0.1:0", "127.0.0.1:0,proxy"]).start()
        self.addCleanup(self.gw.stop)
        self.plain_port = self.gw.addresses[0][1]
        self.proxy_port = self.gw.addresses[1][1]
        self.token = scopedfix.token_for("logs")
        self.session = uuid.uuid4().hex

    def start(self, proxy):
        proxy.start()
        self.addCleanup(proxy.stop)
        return proxy

    def poll_through(self, proxy):
        """A polling session's first request through the proxy, token in the URL as
        sockjs-client sends it; the gateway opens the session. Returns the logged path."""
        path = "/sockjs/000/%s/xhr" % self.session
        r = gwtest.request(proxy.port, "POST", path + "?site=logs&token=%s&t=1" % self.token,
                           body=b"")
        self.assertEqual((r.status, r.body), (200, b"o\n"), r)
        return path

    def assert_no_token(self, text):
        signature = self.token.rsplit(".", 1)[1]
        self.assertNotIn(signature, text)
        self.assertNotIn("token=" + self.token[:20], text)

    def proxy_output(self, proxy):
        """The proxy's output so far (HAProxy logs there; nginx writes its error log there)."""
        return lambda: "\n".join(proxy.lines)

    def haproxy_logs_without_token(self, proxy):
        """Starts `proxy`, polls through it; its log shows the request's path and method, and
        no token. Returns the log."""
        path = self.poll_through(self.start(proxy))
        text = wait_for(proxy.name, self.proxy_output(proxy), '"POST %s HTTP/1.1"' % path)
        self.assert_no_token(text)
        return text

    def test_haproxy_documented_log_format(self):
        self.haproxy_logs_without_token(
            HAProxyWithLines(self.plain_port, snippet("haproxy-log-format")))

    def test_haproxy_documented_query_variable(self):
        lines = [line.strip() for line in snippet("haproxy-log-query")]
        text = self.haproxy_logs_without_token(
            HAProxyWithLines(self.plain_port, frontend_lines=lines))
        self.assertIn('"site=logs&token=-&t=1"', text)

    def test_haproxy_rendered_configuration(self):
        text = self.haproxy_logs_without_token(RenderedHAProxy(self.proxy_port))
        self.assertIn(" gateways_session/g1 ", text)

    def test_haproxy_httplog_logs_the_token(self):
        # What the documented lines replace: option httplog writes the query.
        proxy = self.start(HAProxyWithLines(self.plain_port))
        self.poll_through(proxy)
        wait_for("haproxy httplog", self.proxy_output(proxy), "token=" + self.token)

    def test_nginx_documented_log_format(self):
        proxy = self.start(NginxWithLines(self.plain_port, snippet("nginx-log-format")))
        path = self.poll_through(proxy)
        text = wait_for("nginx", proxy.log_file_text, '"POST %s HTTP/1.1" 200' % path)
        self.assert_no_token(text)

    def test_nginx_combined_logs_the_token(self):
        proxy = self.start(NginxWithLines(self.plain_port))
        self.poll_through(proxy)
        wait_for("nginx combined", proxy.log_file_text, "token=" + self.token)

    def test_nginx_error_log_quotes_the_request_line(self):
        # The caveat the docs give: an upstream failure (here: nothing listens) is written to
        # the error log with the whole request line, whatever the access log's format.
        proxy = self.start(NginxWithLines(proxyfix.free_port(), snippet("nginx-log-format")))
        r = gwtest.request(proxy.port, "GET", "/sockjs/000/%s/xhr?token=%s" % (self.session,
                                                                                self.token))
        self.assertEqual(r.status, 502, r)
        wait_for("nginx error log", self.proxy_output(proxy), "request: \"GET /sockjs/000/%s/xhr"
                 "?token=%s HTTP/1.1\"" % (self.session, self.token))


if __name__ == "__main__":
    gwtest.main()
