"""What the bridge tests share: certificates made here, bridge processes, a WAN link to cut.

Certificates come from :mod:`gridbus.bridge.pki` (the ``cryptography``
package): a lab CA with a certificate per site, and a second, unrelated CA
with a certificate of its own (the intruder).  Every socket is on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from gridbus.bench.peers import read_line
from gridbus.bridge.pki import Issued, issue, make_ca

READY_TIMEOUT = 30.0  # s a child gets to say it is ready


@dataclass
class Pki:
    ca: Issued
    sites: dict[str, Issued]
    wrong_ca: Issued
    intruder: Issued  # signed by wrong_ca
    self_signed: Issued  # its own CA, presented while trusting the real CA


def make_pki(root: Path) -> Pki:
    ca = make_ca(root / "ca")
    sites = {name: issue(ca, root / "sites", name) for name in ("A", "B")}
    wrong = make_ca(root / "wrong", "some other CA")
    intruder = issue(wrong, root / "intruder", "A")  # claims to be site A
    lone = make_ca(root / "lone", "B")
    return Pki(ca, sites, wrong, intruder, lone)


def port_for(domain: int, k: int = 0) -> int:
    """A loopback port per test domain (tests of other suites use other domains)."""
    return 21000 + domain * 8 + k


def start_bridge(site: str, domain: int, pki: Pki, *args: str, env: dict | None = None) -> subprocess.Popen:
    """``gridbus bridge`` for ``site`` in a subprocess; returns once it says ready."""
    tls = pki.sites[site]
    cmd = [
        sys.executable, "-m", "gridbus.cli.main", "bridge", "--site", site, "--domain", str(domain),
        "--cert", str(tls.cert), "--key", str(tls.key), "--ca", str(pki.ca.cert), *args,
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or dict(os.environ))
    line = read_line(proc, READY_TIMEOUT)  # bounded: a hung child fails the test, it does not hang it
    if line is None or not line.startswith('{"ready"'):
        proc.kill()
        _out, err = proc.communicate()
        raise AssertionError(f"bridge {site} did not start within {READY_TIMEOUT:g} s: {line}{err}")
    return proc


def stop(proc: subprocess.Popen, timeout: float = 10) -> dict:
    """End a long-running gridbus command with SIGTERM; its ``done`` report (or {})."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _err = proc.communicate()
    for line in out.splitlines():
        if line.startswith('{"done"'):
            return json.loads(line)["done"]
    return {}


def wait_until(condition, timeout: float = 10.0, step: float = 0.05) -> bool:
    """Poll ``condition()`` until true or ``timeout`` s (bounded)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())


class WanLink:
    """A TCP relay on 127.0.0.1 standing for the WAN between two bridges; ``cut()`` and ``restore()``.

    Cutting closes every relayed connection and refuses new ones until
    restored, as a WAN outage does (the TLS session inside breaks).
    """

    def __init__(self, listen_port: int, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.server = socket.create_server(("127.0.0.1", listen_port))
        self.server.settimeout(0.1)
        self.up = True
        self.closed = False
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                continue
            if not self.up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._relay, args=(client, upstream), daemon=True).start()

    def _relay(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while self.up and not self.closed:
                ready, _, _ = select.select([a, b], [], [], 0.1)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    peers[s].sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                s.close()

    def cut(self) -> None:
        self.up = False
        with self._lock:
            for s in self._conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._conns.clear()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self.closed = True
        self._thread.join(timeout=2)
        self.server.close()
