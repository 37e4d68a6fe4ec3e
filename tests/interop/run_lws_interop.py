#!/usr/bin/python3
"""Starts the gateway in --test-app mode, runs lws_echo_client against it, stops the gateway.

Usage: run_lws_interop.py GATEWAY_BINARY LWS_ECHO_CLIENT [TIMEOUT_SECONDS]

Fails (non-zero) if the gateway does not start, the client fails, or the gateway does not exit
with status 0 on SIGTERM (under ASan a leak makes that status non-zero).
"""

import re
import subprocess
import sys
import threading
import time

START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0
LISTEN_RE = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


class Gateway:
    """The gateway on an ephemeral port; the port comes from its log, never from a guess."""

    def __init__(self, binary):
        self.log = []
        self.port = None
        self._ready = threading.Event()
        self.proc = subprocess.Popen(
            [binary, "--test-app", "--listen", "127.0.0.1:0", "--drain-ms", "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, errors="replace")
        # Drained for the whole run: an unread pipe would eventually block the gateway.
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        if not self._ready.wait(START_TIMEOUT) or self.port is None:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("gateway did not log 'listening on 127.0.0.1:PORT' within "
                               f"{START_TIMEOUT:.0f} s (exit {self.proc.returncode}); log:\n"
                               + self.log_text())

    def _read_log(self):
        for line in self.proc.stderr:
            self.log.append(line)
            m = LISTEN_RE.search(line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self._ready.set()
        self._ready.set()  # EOF: the gateway is gone; the waiter sees port None.

    def log_text(self, tail=60):
        return "".join(self.log[-tail:])

    def stop(self):
        """SIGTERM; returns the exit status (or raises if it does not exit)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            status = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"gateway ignored SIGTERM for {STOP_TIMEOUT:.0f} s")
        self._reader.join(5)
        return status


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    binary, client = sys.argv[1], sys.argv[2]
    timeout = float(sys.argv[3]) if len(sys.argv) == 4 else 60.0

    try:
        gw = Gateway(binary)
    except (OSError, RuntimeError) as e:
        print(f"FAIL: cannot start gateway: {e}", file=sys.stderr)
        return 1
    print(f"gateway listening on 127.0.0.1:{gw.port}", flush=True)

    ok = True
    started = time.monotonic()
    try:
        # The client bounds itself; the extra margin only catches a hung client.
        r = subprocess.run([client, str(gw.port), str(timeout)], timeout=timeout + 15)
        if r.returncode != 0:
            print(f"FAIL: lws_echo_client exited {r.returncode}", file=sys.stderr)
            ok = False
    except subprocess.TimeoutExpired:
        print("FAIL: lws_echo_client hung past its own timeout", file=sys.stderr)
        ok = False
    print(f"client finished in {time.monotonic() - started:.2f} s", flush=True)

    try:
        status = gw.stop()
        if status != 0:
            print(f"FAIL: gateway exit status {status} after SIGTERM (expected 0)",
                  file=sys.stderr)
            ok = False
    except RuntimeError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        ok = False

    if not ok:
        print("--- gateway log (tail) ---\n" + gw.log_text(), file=sys.stderr)
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
