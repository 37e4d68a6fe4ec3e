"""`cmake --install` of the build tree this suite runs from (GW_BUILD_DIR, else the directory
of GW_BINARY), into a temporary prefix: the installed binary serves its web files from the
prefix (read once at start; a moved install too), the systemd unit names the installed binary,
the deploy files parse, and --static-dir refuses what it cannot read."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

import gwtest
import scopedfix
from gwtest import Gateway

WEB_FILES = {
    "/static/sockjs-gateway.js": "sockjs-gateway.js",
    "/static/sockjs.min.js": "vendor/sockjs-client-1.6.1.min.js",
    "/demo/": "demo.html",
}


def build_dir():
    d = os.environ.get("GW_BUILD_DIR") or os.path.dirname(gwtest.gateway_binary())
    if not os.path.exists(os.path.join(d, "CMakeCache.txt")):
        raise AssertionError("%s is not a CMake build tree (set GW_BUILD_DIR)" % d)
    return d


def read(path):
    with open(path, "rb") as f:
        return f.read()


def append(path, data):
    with open(path, "ab") as f:
        f.write(data)


def get(gw, path):
    return gwtest.request(gw.port, "GET", path, host=gw.host)


def parse_unit(path):
    """{section: [(key, value), ...]} of a systemd unit (keys may repeat)."""
    sections, current = {}, None
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                current = sections.setdefault(line[1:-1], [])
                continue
            if current is None or "=" not in line:
                raise AssertionError("%s:%d: not a key=value line in a section: %r"
                                     % (path, n, line))
            key, value = line.split("=", 1)
            current.append((key.strip(), value.strip()))
    return sections


def run_refused(binary, *args):
    """Runs the gateway expecting it to refuse to start: returns its output (exit status 2)."""
    r = subprocess.run([binary, "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0",
                        "--jwt-secret", scopedfix.SECRET] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=gwtest.START_TIMEOUT)
    out = r.stdout.decode("utf-8", "replace")
    if r.returncode != 2:
        raise AssertionError("exit status %s, 2 expected:\n%s" % (r.returncode, out))
    return out


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gw-install-")
        cls.prefix = os.path.join(cls.tmp, "prefix")
        cmake = os.environ.get("GW_CMAKE", "cmake")
        r = subprocess.run([cmake, "--install", build_dir(), "--prefix", cls.prefix],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        if r.returncode != 0:
            shutil.rmtree(cls.tmp)
            raise AssertionError("cmake --install failed:\n" + r.stdout.decode())
        cls.binary = os.path.join(cls.prefix, "bin", "sockjs-gateway")
        cls.web = os.path.join(cls.prefix, "share", "sockjs-gateway", "web")
        cls.deploy = os.path.join(cls.prefix, "share", "sockjs-gateway", "deploy")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def gateway(self, binary, *args):
        """The installed binary with the installed example configuration (ports overridden; the
        secret, which the example leaves to the environment, given)."""
        return Gateway("--config", os.path.join(self.deploy, "sockjs-gateway.conf"),
                       "--api-listen", "127.0.0.1:0", "--jwt-secret", scopedfix.SECRET, *args,
                       binary=binary, test_app=False)

    def test_layout(self):
        self.assertTrue(os.access(self.binary, os.X_OK))
        for name in WEB_FILES.values():
            self.assertEqual(read(os.path.join(self.web, name)),
                             read(os.path.join(gwtest.REPO_ROOT, "web", name)), name)
        doc = os.path.join(self.prefix, "share", "doc", "sockjs-gateway")
        self.assertEqual(read(os.path.join(doc, "README.md")),
                         read(os.path.join(gwtest.REPO_ROOT, "README.md")))
        for name in os.listdir(os.path.join(gwtest.REPO_ROOT, "docs")):
            if name.endswith(".md"):
                self.assertTrue(os.path.isfile(os.path.join(doc, "docs", name)), name)
        for name in ("README.md", "sockjs-gateway.conf", "sysctl/90-sockjs-gateway.conf"):
            self.assertEqual(read(os.path.join(self.deploy, name)),
                             read(os.path.join(gwtest.REPO_ROOT, "deploy", name)), name)
        # The unit is installed once, where systemd looks, with this prefix's binary.
        self.assertFalse(os.path.exists(os.path.join(self.deploy, "systemd")))

    def test_serves_the_installed_files_read_once_and_stops_on_sigterm(self):
        # Installed copies changed before the start are what the gateway serves.
        marks = {}
        for path, name in WEB_FILES.items():
            marks[path] = ("\n<!-- installed copy of %s -->\n" % name).encode()
            append(os.path.join(self.web, name), marks[path])
        expected = {path: read(os.path.join(self.web, name)) for path, name in WEB_FILES.items()}
        gw = self.gateway(self.binary).start()
        try:
            self.assertIsNotNone(gw.find_log(r"web files: 3 of 3 from %s$"
                                             % re.escape(os.path.realpath(self.web))),
                                 gw.log_text())
            for path in WEB_FILES:
                r = get(gw, path)
                self.assertEqual(r.status, 200, path)
                self.assertEqual(r.body, expected[path], path)
                self.assertTrue(r.body.endswith(marks[path]), path)
            # Read once at start: a later change (even removing the file) is not seen.
            for name in WEB_FILES.values():
                os.unlink(os.path.join(self.web, name))
            for path in WEB_FILES:
                self.assertEqual(get(gw, path).body, expected[path], path)
        finally:
            for name in WEB_FILES.values():
                shutil.copyfile(os.path.join(gwtest.REPO_ROOT, "web", name),
                                os.path.join(self.web, name))
            gw.stop()  # SIGTERM: drains and requires exit status 0
        self.assertEqual(gw.returncode, 0)

    def test_moved_install_finds_its_own_files(self):
        moved = os.path.join(self.tmp, "moved")
        shutil.copytree(self.prefix, moved, symlinks=True)
        try:
            demo = os.path.join(moved, "share", "sockjs-gateway", "web", "demo.html")
            append(demo, b"<!-- moved -->")
            with self.gateway(os.path.join(moved, "bin", "sockjs-gateway")) as gw:
                self.assertEqual(get(gw, "/demo/").body, read(demo))
                self.assertTrue(get(gw, "/demo/").body.endswith(b"<!-- moved -->"))
        finally:
            shutil.rmtree(moved)

    def test_build_tree_binary_serves_built_in_copies(self):
        # What scripts/run.sh runs: no install next to it, so the built-in copies.
        with Gateway() as gw:
            self.assertIsNotNone(gw.find_log(r"web files: built in"), gw.log_text())
            self.assertEqual(get(gw, "/static/sockjs-gateway.js").body,
                             read(os.path.join(gwtest.REPO_ROOT, "web", "sockjs-gateway.js")))

    def test_static_dir_option(self):
        d = os.path.join(self.tmp, "static")
        os.mkdir(d)
        try:
            # Only demo.html here: the other two keep their built-in copies.
            with open(os.path.join(d, "demo.html"), "wb") as f:
                f.write(b"<p>custom demo</p>")
            with self.gateway(self.binary, "--static-dir", d) as gw:
                self.assertEqual(get(gw, "/demo/").body, b"<p>custom demo</p>")
                self.assertEqual(get(gw, "/static/sockjs.min.js").body, read(os.path.join(
                    gwtest.REPO_ROOT, "web", "vendor", "sockjs-client-1.6.1.min.js")))
                self.assertIsNotNone(gw.find_log(r"web files: 1 of 3 from "), gw.log_text())
            # embedded: never the installed files, even from the prefix.
            append(os.path.join(self.web, "demo.html"), b"<!-- not served -->")
            try:
                with self.gateway(self.binary, "--static-dir", "embedded") as gw:
                    self.assertEqual(get(gw, "/demo/").body,
                                     read(os.path.join(gwtest.REPO_ROOT, "web", "demo.html")))
            finally:
                shutil.copyfile(os.path.join(gwtest.REPO_ROOT, "web", "demo.html"),
                                os.path.join(self.web, "demo.html"))
        finally:
            shutil.rmtree(d)

    def test_static_dir_refused_when_unreadable(self):
        missing = os.path.join(self.tmp, "no-such-dir")
        out = run_refused(self.binary, "--static-dir", missing)
        self.assertIn("--static-dir %s: No such file or directory" % missing, out)
        d = os.path.join(self.tmp, "bad-static")
        os.mkdir(d)
        try:
            os.mkdir(os.path.join(d, "demo.html"))
            out = run_refused(self.binary, "--static-dir", d)
            self.assertIn("demo.html: not a regular file", out)
            os.rmdir(os.path.join(d, "demo.html"))
            with open(os.path.join(d, "sockjs-gateway.js"), "wb") as f:
                f.truncate(8 * 1024 * 1024 + 1)
            out = run_refused(self.binary, "--static-dir", d)
            self.assertIn("sockjs-gateway.js: 8388609 bytes, more than the 8388608", out)
        finally:
            shutil.rmtree(d)

    def test_systemd_unit_names_the_installed_binary(self):
        unit = os.path.join(self.prefix, "lib", "systemd", "system", "sockjs-gateway.service")
        sections = parse_unit(unit)
        service = dict(sections["Service"])
        exec_start = service["ExecStart"].split()
        self.assertEqual(exec_start[0], self.binary)
        self.assertEqual(exec_start[1:], ["--config", "/etc/sockjs-gateway/sockjs-gateway.conf"])
        self.assertEqual(service["Type"], "simple")
        self.assertEqual(service["LimitNOFILE"], "1048576")
        self.assertEqual(service["Restart"], "on-failure")
        self.assertEqual(service["KillSignal"], "SIGTERM")
        self.assertEqual(service["ExecReload"], "/bin/kill -HUP $MAINPID")
        self.assertEqual(service["EnvironmentFile"], "-/etc/default/sockjs-gateway")
        # Longer than the default drain (5 s) plus linger (2 s) and leaving presence (2 s).
        self.assertGreater(int(service["TimeoutStopSec"]), 9)
        for key in ("DynamicUser", "NoNewPrivileges", "ProtectHome", "PrivateTmp"):
            self.assertEqual(service[key], "yes", key)
        self.assertEqual(service["ProtectSystem"], "strict")
        self.assertEqual(dict(sections["Install"])["WantedBy"], "multi-user.target")
        # Everything else the unit says must be known to systemd (when this machine has it:
        # verify parses the unit without systemd running as PID 1).
        analyze = shutil.which("systemd-analyze")
        if analyze:
            r = subprocess.run([analyze, "verify", "--man=no", unit], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            out = r.stdout.decode("utf-8", "replace")
            self.assertEqual(r.returncode, 0, out)
            self.assertNotIn(unit, out)

    def test_sysctl_file_names_existing_settings(self):
        path = os.path.join(self.deploy, "sysctl", "90-sockjs-gateway.conf")
        keys = []
        comment = False
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    comment = False
                    continue
                if line.startswith("#"):
                    comment = True
                    continue
                self.assertTrue(comment, "no comment saying why before %r" % line)
                key, value = (s.strip() for s in line.split("=", 1))
                optional = key.startswith("-")
                key = key.lstrip("-")
                keys.append(key)
                self.assertRegex(value, r"^\d+( \d+)*$", key)
                if not optional:
                    self.assertTrue(os.path.exists("/proc/sys/" + key.replace(".", "/")), key)
        for key in ("fs.file-max", "fs.nr_open", "net.ipv4.ip_local_port_range",
                    "net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_mem",
                    "net.netfilter.nf_conntrack_max"):
            self.assertIn(key, keys)


if __name__ == "__main__":
    unittest.main()
