"""Client addresses behind proxies: the PROXY protocol (v1 and v2) on listeners that require it,
and X-Forwarded-For on trusted listeners only; the logs name the real client."""

import re
import socket
import struct
import unittest

import gwtest
from gwtest import Gateway


def get_info(sock, extra=b""):
    sock.sendall(b"GET /echo/info HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + extra + b"\r\n")
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def proxy_v2(src, sport, dst, dport):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    addrs = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(addrs)) + addrs


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=gwtest.TIMEOUT)


class ProxyProtocol(unittest.TestCase):
    def test_v1_v2_and_refusal(self):
        with Gateway("--log-level", "debug", listen=["127.0.0.1:0,proxy"]) as gw:
            with connect(gw.port) as s:
                s.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 40001 80\r\n")
                self.assertTrue(get_info(s).startswith(b"HTTP/1.1 200"))
            gw.wait_log(re.escape("203.0.113.7:40001: GET /echo/info"))
            with connect(gw.port) as s:
                s.sendall(proxy_v2("198.51.100.9", 40002, "127.0.0.1", 80))
                self.assertTrue(get_info(s).startswith(b"HTTP/1.1 200"))
            gw.wait_log(re.escape("198.51.100.9:40002: GET /echo/info"))
            with connect(gw.port) as s:
                # The header may arrive in pieces.
                s.sendall(b"PROXY TCP6 2001:db8::1 ")
                s.sendall(b"::1 40003 80\r\nGET /echo/info HTTP/1.1\r\nConnection: close\r\n\r\n")
                self.assertIn(b"HTTP/1.1 200", s.recv(200))
            gw.wait_log(re.escape("[2001:db8::1]:40003: GET /echo/info"))
            # Without the header: closed without an answer, and said so in the log.
            with connect(gw.port) as s:
                self.assertEqual(get_info(s), b"")
            gw.wait_log("no valid PROXY protocol header")
            gw.assert_alive()


class ForwardedFor(unittest.TestCase):
    def test_trusted_listener_only(self):
        with Gateway("--log-level", "debug",
                     listen=["127.0.0.1:0,trusted", "127.0.0.1:0"]) as gw:
            trusted, plain = gw.addresses[0][1], gw.addresses[1][1]
            with connect(trusted) as s:
                get_info(s, b"X-Forwarded-For: 10.9.8.7, 192.0.2.44\r\n")
            gw.wait_log(re.escape("192.0.2.44: GET /echo/info"))
            mark = gw.log_mark()
            with connect(plain) as s:
                get_info(s, b"X-Forwarded-For: 192.0.2.55\r\n")
            gw.wait_log(r"127\.0\.0\.1:\d+: GET /echo/info", since=mark)
            self.assertIsNone(gw.find_log("192.0.2.55", since=mark))
            # Garbage in the header is ignored, not logged as an address.
            with connect(trusted) as s:
                get_info(s, b"X-Forwarded-For: <script>\r\n")
            gw.wait_log("not an address")

    def test_unknown_listen_option_refused(self):
        gw = Gateway(listen=["127.0.0.1:0,bogus"])
        with self.assertRaises(gwtest.GatewayError):
            gw.start()
        gw.stop() if gw.proc and gw.proc.poll() is None else None


if __name__ == "__main__":
    unittest.main()
