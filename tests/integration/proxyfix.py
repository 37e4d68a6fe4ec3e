"""Fixtures for the legacy-proxy tests (test_proxies.py): private HAProxy and nginx processes.

Each proxy gets its own generated configuration in a temporary directory (pid file, logs and
temp paths inside it), listens on free loopback ports, runs in the foreground as a child of the
test (`haproxy -db -f CFG`, `nginx -p PREFIX -c CFG -e stderr -g 'daemon off;'`), and is stopped
by its PID at the end. Nothing system-wide (configs, services, /var/log) is read or written.

A `Proxy` looks like a `gwtest.Gateway` to the SockJS helpers: `host`, `port`, `connect()`
(for its first frontend), and `endpoint(name)` gives the same for another frontend, so
`gwtest.XhrSession(proxy, ...)` and `gwtest.XhrStream(proxy, ...)` go through the proxy.

The proxies' own output (stderr) is drained and kept; `log_text()` shows it when a test fails.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import gwtest

START_TIMEOUT = float(os.environ.get("GW_PROXY_START_TIMEOUT", "10"))
STOP_TIMEOUT = 10.0


def find_binary(name):
    """The proxy binary: $PATH, then /usr/sbin (Debian puts haproxy and nginx there, and
    /usr/sbin is not on every user's PATH). None if not installed."""
    path = shutil.which(name)
    if path:
        return path
    for d in ("/usr/sbin", "/usr/local/sbin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


def free_port(host="127.0.0.1"):
    """A port the kernel just handed out for `host` (free now; the proxy binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Endpoint:
    """One listening address, with the `host`/`port`/`connect()` interface of a Gateway."""

    def __init__(self, host, port):
        self.host = host
        self.port = port

    def connect(self, timeout=gwtest.TIMEOUT, index=0, source=None):
        """A gwtest.Conn to this address; `source` (host, port) binds the client end first."""
        if source is None:
            return gwtest.Conn(self.port, host=self.host, timeout=timeout)
        c = gwtest.Conn.__new__(gwtest.Conn)
        # gwtest.Conn connects in its constructor; to choose the source address (a client at
        # 127.0.0.x) the socket is bound first, so this mirrors that constructor.
        c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sock.bind(source)
        c.sock.settimeout(timeout)
        c.sock.connect((self.host, self.port))
        c.timeout = timeout
        c.buf = bytearray()
        c.eof = False
        c.reset = False
        return c

    def __repr__(self):
        return "<Endpoint %s:%d>" % (self.host, self.port)


class Proxy:
    """A proxy process. Subclasses write the config and the command line."""

    name = "proxy"

    def __init__(self):
        self.dir = None
        self.proc = None
        self.endpoints = {}  # frontend name -> Endpoint, first one is the default
        self.lines = []
        self._lock = threading.Lock()
        self._reader = None

    # -- the Gateway-like interface ---------------------------------------------------------

    def endpoint(self, name=None):
        if name is None:
            return next(iter(self.endpoints.values()))
        return self.endpoints[name]

    @property
    def host(self):
        return self.endpoint().host

    @property
    def port(self):
        return self.endpoint().port

    def connect(self, timeout=gwtest.TIMEOUT, index=0, source=None):
        return self.endpoint().connect(timeout=timeout, source=source)

    # -- lifecycle ----------------------------------------------------------------------------

    def config(self):
        raise NotImplementedError

    def command(self, cfg_path):
        raise NotImplementedError

    def start(self):
        binary = find_binary(self.binary_name)
        if binary is None:
            raise AssertionError("%s is not installed (scripts/setup.sh --test installs it, or "
                                 "apt-get install -y haproxy nginx)" % self.binary_name)
        self.binary = binary
        # The ports were free when chosen; another process may take one before the proxy
        # binds it (then the proxy exits at once): try again with new ports.
        for attempt in range(3):
            self.dir = tempfile.mkdtemp(prefix="gw-%s-" % self.name)
            cfg_path = os.path.join(self.dir, self.name + ".conf")
            with open(cfg_path, "w") as f:
                f.write(self.config())
            self.proc = subprocess.Popen(self.command(cfg_path), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         cwd=self.dir)
            self._reader = threading.Thread(target=self._drain, daemon=True)
            self._reader.start()
            try:
                self.wait_ready()
                return self
            except AssertionError:
                # Not listening: a port taken by someone else (nginx retries bind() for
                # 2.5 s before it gives up; HAProxy exits at once).
                self.stop()
                if attempt == 2:
                    raise
            except BaseException:
                self.stop()
                raise
            for ep in self.endpoints.values():
                ep.port = free_port(ep.host)
        return self

    def _drain(self):
        for raw in self.proc.stdout:
            with self._lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))

    def listening_ports(self):
        """The TCP ports the proxy process itself listens on (Linux /proc), so that readiness
        is not fooled by another process holding a port we chose."""
        inodes = set()
        fd_dir = "/proc/%d/fd" % self.proc.pid
        try:
            for fd in os.listdir(fd_dir):
                try:
                    link = os.readlink(os.path.join(fd_dir, fd))
                except OSError:
                    continue
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            return set()
        ports = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as f:
                    rows = f.read().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                cols = row.split()
                if len(cols) > 9 and cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
        return ports

    def wait_ready(self):
        """Poll until the proxy process listens on every endpoint and accepts a connection
        there, within START_TIMEOUT."""
        deadline = time.monotonic() + START_TIMEOUT
        for ep in self.endpoints.values():
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError("%s exited with status %s before listening\n%s"
                                         % (self.name, self.proc.returncode, self.log_text()))
                if ep.port in self.listening_ports():
                    try:
                        socket.create_connection((ep.host, ep.port), timeout=1).close()
                        break
                    except OSError:
                        pass
                if time.monotonic() > deadline:
                    raise AssertionError("%s does not accept on %s:%d within %.0f s\n%s"
                                         % (self.name, ep.host, ep.port, START_TIMEOUT,
                                            self.log_text()))
                time.sleep(0.02)  # polling interval of the readiness probe

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL: the proxy vanishes at once, its sockets closed by the kernel."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT)

    def stop(self):
        """SIGTERM to our child by its PID (SIGKILL if it lingers); the temp dir goes away."""
        if self.proc is not None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(STOP_TIMEOUT)
            if self._reader:
                self._reader.join(STOP_TIMEOUT)
            try:
                self.proc.stdout.close()
            except OSError:
                pass
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def log_text(self, last=100):
        with self._lock:
            lines = self.lines[-last:]
        return "---- %s output (last %d lines) ----\n%s\n---- end of %s output ----" % (
            self.name, len(lines), "\n".join(lines), self.name)


class HAProxy(Proxy):
    """HAProxy in http mode. `backends` maps a frontend name to (gateway port, server options,
    frontend lines), e.g. {"plain": (8080, "", []), "pp2": (8081, "send-proxy-v2", []),
    "xff": (8082, "", ["option forwardfor"])}. Timeouts are the short ones of a strict
    legacy setup: the client and server sides give up after 3 s of silence, an upgraded
    (tunnel) connection after 30 s."""

    name = "haproxy"
    binary_name = "haproxy"

    TIMEOUTS = {
        "connect": "2s",
        "client": "3s",
        "server": "3s",
        "tunnel": "30s",
        "http-request": "2s",
    }

    def __init__(self, backends, timeouts=None):
        super().__init__()
        self.backends = backends
        self.timeouts = dict(self.TIMEOUTS)
        self.timeouts.update(timeouts or {})
        for fe in backends:
            self.endpoints[fe] = Endpoint("127.0.0.1", free_port())

    def config(self):
        out = [
            "global",
            "    maxconn 512",
            "    log stderr format raw local0 info",
            "defaults",
            "    mode http",
            "    log global",
            "    option httplog",
        ]
        out += ["    timeout %s %s" % kv for kv in self.timeouts.items()]
        for fe, (gw_port, server_opts, fe_lines) in self.backends.items():
            ep = self.endpoints[fe]
            out += ["frontend fe_%s" % fe,
                    "    bind %s:%d" % (ep.host, ep.port)]
            out += ["    " + line for line in fe_lines]
            out += ["    default_backend be_%s" % fe,
                    "backend be_%s" % fe,
                    "    server gw 127.0.0.1:%d %s" % (gw_port, server_opts)]
        return "\n".join(out) + "\n"

    def command(self, cfg_path):
        return [self.binary, "-db", "-f", cfg_path]


class Nginx(Proxy):
    """nginx as an old-style reverse proxy: buffering on, no Upgrade forwarding. `servers` maps
    a frontend name to (gateway port, extra location lines); the location sets
    `proxy_http_version` (1.0 unless the extra lines say otherwise), `proxy_buffering on` and
    `proxy_read_timeout` (5 s). Single process (`master_process off`), so the PID is the proxy."""

    name = "nginx"
    binary_name = "nginx"

    def __init__(self, servers, read_timeout="5s"):
        super().__init__()
        self.servers = servers
        self.read_timeout = read_timeout
        for fe in servers:
            self.endpoints[fe] = Endpoint("127.0.0.1", free_port())

    def config(self):
        d = self.dir
        out = [
            "master_process off;",
            "pid %s/nginx.pid;" % d,
            "error_log stderr info;",
            "events { worker_connections 256; }",
            "http {",
            "    access_log %s/access.log;" % d,
            "    client_body_temp_path %s/client_body;" % d,
            "    proxy_temp_path %s/proxy_temp;" % d,
            "    fastcgi_temp_path %s/fastcgi_temp;" % d,
            "    uwsgi_temp_path %s/uwsgi_temp;" % d,
            "    scgi_temp_path %s/scgi_temp;" % d,
        ]
        for fe, (gw_port, lines) in self.servers.items():
            ep = self.endpoints[fe]
            out += [
                "    server {",
                "        listen %s:%d;" % (ep.host, ep.port),
                "        location / {",
                "            proxy_pass http://127.0.0.1:%d;" % gw_port,
                "            proxy_buffering on;",
                "            proxy_read_timeout %s;" % self.read_timeout,
            ]
            if not any(line.startswith("proxy_http_version") for line in lines):
                out.append("            proxy_http_version 1.0;")
            out += ["            " + line for line in lines]
            out += ["        }", "    }"]
        out.append("}")
        return "\n".join(out) + "\n"

    def command(self, cfg_path):
        # -e stderr: the log nginx writes before it has read the config (otherwise the
        # compiled-in /var/log/nginx/error.log); daemon off: a foreground child.
        return [self.binary, "-p", self.dir, "-c", cfg_path, "-e", "stderr",
                "-g", "daemon off;"]
