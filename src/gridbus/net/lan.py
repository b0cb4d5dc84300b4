"""A lab LAN in a box: hosts as network namespaces joined by a bridge.

::

    with Lan(hosts=3) as lan:                       # h1, h2, h3 on 10.254.0.0/24
        lan.impair("h1", Impairment(delay_ms=10, jitter_ms=5, loss_pct=2, rate_mbit=1))
        sink = lan.popen("h2", ["gridbus", "subscribe", "G"])
        lan.run("h1", ["gridbus", "publish", "G_1", "f=60"])

Topology: a **switch** namespace holds the bridge ``br0``; each host
namespace has ``lo`` and ``eth0``, a veth whose other end ``p<i>`` is a
bridge port.  An impaired link without netem goes through the userspace
stage instead: ``p<i>`` leaves the bridge, and the stage forwards between it
and ``q<i>``, whose veth peer ``r<i>`` takes its place on the bridge.  No
interface is ever created in, or moved to, the root namespace.

Every program run on a host gets ``CYCLONEDDS_URI`` naming that host's
generated Cyclone configuration (:mod:`gridbus.net.cyclone`): its ``eth0``,
multicast discovery, unicast or multicast per topic.
"""

from __future__ import annotations

import atexit
import ipaddress
import itertools
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import NetError
from . import ns as nsmod
from .cyclone import host_config
from .impair import Impairment, netem_args, tbf_args

log = logging.getLogger(__name__)

__all__ = ["Lan", "Host"]

_HOST_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")
_counter = itertools.count(1)
_STAGE = Path(__file__).with_name("stage.py")  # stdlib only: starts fast, imports no Cyclone
_OFFLOAD = Path(__file__).with_name("offload.py")
_netem: bool | None = None


class Host:
    """One host of a LAN: its namespace, address and Cyclone configuration."""

    def __init__(self, lan: Lan, name: str, index: int, address: str) -> None:
        self.lan, self.name, self.index, self.address = lan, name, index, address
        self.ns = f"{lan.name}-{name}"
        self.port = f"p{index}"  # its bridge port in the switch namespace
        self.config = lan.state_dir / f"{name}.xml"
        self.impairment = Impairment()
        self.stage: subprocess.Popen[bytes] | None = None
        self.stage_stats: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"Host({self.name!r}, {self.address}, ns={self.ns!r})"


class Lan:
    """N hosts on one bridged subnet; a context manager that removes everything on exit."""

    def __init__(
        self,
        hosts: int | Sequence[str] = 2,
        subnet: str = "10.254.0.0/24",
        topic_map: Any = None,
        transport: str | None = None,
        impair: Mapping[str, Impairment] | None = None,
        netem: bool | None = None,
    ) -> None:
        """``transport`` forces unicast or multicast for every topic; ``netem`` None = use it if the kernel has it."""
        names = [f"h{i}" for i in range(1, hosts + 1)] if isinstance(hosts, int) else list(hosts)
        _check_hosts(names)
        try:
            self.subnet = ipaddress.IPv4Network(subnet)
        except ValueError as exc:
            raise NetError(f"subnet {subnet!r}: {exc}") from None
        if self.subnet.num_addresses < len(names) + 12:
            raise NetError(f"subnet {subnet} is too small for {len(names)} hosts")
        self.name = f"{nsmod.PREFIX}{os.getpid()}x{next(_counter)}"
        self.switch = f"{self.name}-sw"
        self.state_dir = nsmod.STATE_DIR / self.name
        self.hosts = {n: Host(self, n, i, str(self.subnet[10 + i])) for i, n in enumerate(names, start=1)}
        self._topic_map, self._transport = topic_map, transport
        self._initial = dict(impair or {})
        self._want_netem = netem
        self.netem = False
        self._procs: list[subprocess.Popen[Any]] = []
        self._up = False

    # ------------------------------------------------------------------ life cycle
    def __enter__(self) -> Lan:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> Lan:
        """Build the LAN (after removing stale LANs of dead owners)."""
        nsmod.require_root()
        for name in self._initial:
            self.host(name)
        nsmod.sweep()
        atexit.register(self.down)
        self._up = True
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._make_switch()
            for host in self.hosts.values():
                self._make_host(host)
            _software_checksums([f"{h.ns}:eth0" for h in self.hosts.values()])
            self._write_configs()
            self._write_state()
            for name, impairment in self._initial.items():
                self.impair(name, impairment)
        except BaseException:
            self.down()
            raise
        log.info("LAN %s up: %s", self.name, ", ".join(f"{h.name}={h.address}" for h in self.hosts.values()))
        return self

    def down(self) -> None:
        """Stop every process, delete every namespace and file of this LAN (idempotent)."""
        if not self._up:
            return
        self._up = False
        atexit.unregister(self.down)
        for host in self.hosts.values():
            self._stop_stage(host)
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=3)
        nsmod.remove_lan(self.name)

    # ------------------------------------------------------------------ building
    def _make_switch(self) -> None:
        nsmod.ip("netns", "add", self.switch)
        _quiet_ipv6(self.switch)
        nsmod.ip("link", "set", "lo", "up", ns=self.switch)
        nsmod.ip("link", "add", "br0", "type", "bridge", "mcast_snooping", "0", ns=self.switch)
        nsmod.ip("link", "set", "br0", "up", ns=self.switch)
        self.netem = _has_netem(self.switch) if self._want_netem is None else self._want_netem

    def _make_host(self, host: Host) -> None:
        nsmod.ip("netns", "add", host.ns)
        _quiet_ipv6(host.ns)
        nsmod.ip("link", "set", "lo", "up", ns=host.ns)
        nsmod.ip("link", "add", "eth0", "type", "veth", "peer", "name", host.port, "netns", self.switch, ns=host.ns)
        nsmod.ip("addr", "add", f"{host.address}/{self.subnet.prefixlen}", "dev", "eth0", ns=host.ns)
        nsmod.ip("link", "set", "eth0", "up", ns=host.ns)
        nsmod.ip("route", "add", "224.0.0.0/4", "dev", "eth0", ns=host.ns)
        nsmod.ip("link", "set", host.port, "master", "br0", "up", ns=self.switch)

    def _write_configs(self) -> None:
        for host in self.hosts.values():
            host.config.write_text(host_config("eth0", host.address, self._topic_map, self._transport))

    def _write_state(self) -> None:
        state = {
            "lan": self.name,
            "owner": os.getpid(),
            "owner_started": nsmod.start_time(os.getpid()),  # a later process reusing the PID is not the owner
            "subnet": str(self.subnet),
            "hosts": {h.name: {"ns": h.ns, "address": h.address, "config": str(h.config)} for h in self.hosts.values()},
        }
        (self.state_dir / "lan.json").write_text(json.dumps(state, indent=1))

    # ------------------------------------------------------------------ using
    def host(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise NetError(f"no host {name!r} on LAN {self.name}; hosts: {', '.join(self.hosts)}") from None

    def env(self, host: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a program on ``host``: its Cyclone configuration, its name."""
        h = self.host(host)
        env = dict(os.environ)
        env.update(CYCLONEDDS_URI=f"file://{h.config}", GRIDBUS_NET_HOST=h.name, GRIDBUS_NET_LAN=self.name)
        env.update(extra or {})
        return env

    def popen(
        self, host: str, argv: Sequence[str], env: Mapping[str, str] | None = None, **kw: Any
    ) -> subprocess.Popen[Any]:
        """Start ``argv`` on ``host``; it is stopped by :meth:`down` if still running."""
        proc = subprocess.Popen(nsmod.ns_exec(self.host(host).ns, argv), env=self.env(host, env), **kw)
        self._procs.append(proc)
        return proc

    def run(
        self, host: str, argv: Sequence[str], timeout: float = 60, env: Mapping[str, str] | None = None, **kw: Any
    ) -> subprocess.CompletedProcess[Any]:
        """Run ``argv`` on ``host`` to completion (``capture_output``/``text`` etc. as for subprocess.run)."""
        return subprocess.run(nsmod.ns_exec(self.host(host).ns, argv), env=self.env(host, env), timeout=timeout, **kw)

    def python(self, host: str, code: str, **kw: Any) -> subprocess.Popen[Any]:
        """Start ``python -c code`` on ``host`` with this interpreter."""
        return self.popen(host, [sys.executable, "-c", code], **kw)

    def counters(self, host: str) -> dict[str, int]:
        """Bytes and packets through the host's ``eth0`` (as the host sees them)."""
        out = nsmod.ip("-s", "-j", "link", "show", "eth0", ns=self.host(host).ns)
        stats = json.loads(out)[0]["stats64"]
        return {
            "tx_bytes": stats["tx"]["bytes"],
            "tx_packets": stats["tx"]["packets"],
            "rx_bytes": stats["rx"]["bytes"],
            "rx_packets": stats["rx"]["packets"],
        }

    def set_link(self, host: str, up: bool) -> None:
        """Cut (``up=False``) or restore a host's link at the switch, as pulling its cable."""
        h = self.host(host)
        nsmod.ip("link", "set", h.port, "up" if up else "down", ns=self.switch)

    # ------------------------------------------------------------------ impairment
    def impair(self, host: str, impairment: Impairment) -> None:
        """Give ``host``'s link (both directions) these settings; ``Impairment()`` cleans it."""
        h = self.host(host)
        self._stop_stage(h)
        for ns, dev in ((h.ns, "eth0"), (self.switch, h.port)):
            subprocess.run(["tc", "-n", ns, "qdisc", "del", "dev", dev, "root"], capture_output=True, timeout=10)
        use_stage = impairment.needs_stage and not self.netem
        self._route_through_stage(h, use_stage)
        for ns, dev in ((h.ns, "eth0"), (self.switch, h.port)):
            if impairment.needs_stage and self.netem:
                _tc(ns, dev, netem_args(impairment))
            elif impairment.rate_mbit:
                _tc(ns, dev, tbf_args(impairment.rate_mbit))
        if use_stage:
            self._start_stage(h, impairment)
        h.impairment = impairment
        log.info("link %s: %s%s", host, impairment.label(), " (userspace stage)" if use_stage else "")

    def _route_through_stage(self, h: Host, through: bool) -> None:
        q, r = f"q{h.index}", f"r{h.index}"
        exists = (
            subprocess.run(["ip", "-n", self.switch, "link", "show", q], capture_output=True, timeout=10).returncode
            == 0
        )
        if through and not exists:
            nsmod.ip("link", "add", q, "type", "veth", "peer", "name", r, ns=self.switch)
            nsmod.ip("link", "set", q, "up", ns=self.switch)
            nsmod.ip("link", "set", r, "master", "br0", "up", ns=self.switch)
        if through:
            nsmod.ip("link", "set", h.port, "nomaster", ns=self.switch)
        elif exists:
            nsmod.ip("link", "del", q, ns=self.switch)
            nsmod.ip("link", "set", h.port, "master", "br0", ns=self.switch)

    def _start_stage(self, h: Host, imp: Impairment) -> None:
        ready = self.state_dir / f"stage-{h.name}.ready"
        ready.unlink(missing_ok=True)
        argv = [sys.executable, str(_STAGE), h.port, f"q{h.index}", "--delay-ms", str(imp.delay_ms)]
        argv += ["--jitter-ms", str(imp.jitter_ms), "--loss-pct", str(imp.loss_pct)]
        argv += ["--stats", str(self.state_dir / f"stage-{h.name}.json"), "--ready", str(ready), "--realtime"]
        errors = self.state_dir / f"stage-{h.name}.log"  # a file: a pipe no one drains would block the stage
        with errors.open("wb") as sink:
            h.stage = subprocess.Popen(nsmod.ns_exec(self.switch, argv), stderr=sink)
        deadline = time.monotonic() + 15
        while not ready.exists():
            if h.stage.poll() is not None or time.monotonic() > deadline:
                err = errors.read_text(errors="replace")
                self._stop_stage(h)
                raise NetError(f"the impairment stage of {h.name} did not start: {err.strip()[-300:]}")
            time.sleep(0.02)

    def _stop_stage(self, h: Host) -> None:
        if h.stage is None:
            return
        stage, h.stage = h.stage, None
        if stage.poll() is None:
            stage.terminate()
        try:
            stage.wait(timeout=5)
        except subprocess.TimeoutExpired:
            stage.kill()
            stage.wait(timeout=5)
        stats = self.state_dir / f"stage-{h.name}.json"
        if stats.exists():
            h.stage_stats = json.loads(stats.read_text())

    def stage_pid(self, host: str) -> int | None:
        """The process id of ``host``'s impairment stage (None without one)."""
        stage = self.host(host).stage
        return stage.pid if stage is not None else None


def _check_hosts(names: list[str]) -> None:
    if not names:
        raise NetError("a LAN needs at least one host")
    if len(names) > 60:
        raise NetError(f"{len(names)} hosts: at most 60 per LAN")
    for name in names:
        if not _HOST_NAME.match(name) or name == "sw":
            raise NetError(
                f"host name {name!r}: use 1-12 lower-case letters and digits, starting with a letter, not 'sw'"
            )
    if len(set(names)) != len(names):
        raise NetError(f"host names repeat: {', '.join(names)}")


def _software_checksums(pairs: list[str]) -> None:
    """Checksums computed by each host's kernel, so frames survive the userspace stage."""
    proc = subprocess.run([sys.executable, str(_OFFLOAD), *pairs], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise NetError(f"turning off checksum offload failed: {proc.stderr.strip()[-300:]}")


def _quiet_ipv6(ns: str) -> None:
    """IPv6 off in a namespace: no router solicitations or DAD traffic in the byte counts."""
    nsmod.run_in(ns, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])


def _tc(ns: str, dev: str, qdisc: list[str]) -> None:
    proc = subprocess.run(
        ["tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", *qdisc], capture_output=True, text=True, timeout=10
    )
    if proc.returncode != 0:
        raise NetError(f"tc qdisc {' '.join(qdisc)} on {dev} in {ns}: {proc.stderr.strip()}")


def _has_netem(ns: str) -> bool:
    """Whether this kernel has the netem qdisc (tried once, on the switch's loopback)."""
    global _netem
    if _netem is None:
        probe = subprocess.run(
            ["tc", "-n", ns, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
            capture_output=True,
            timeout=10,
        )
        _netem = probe.returncode == 0
        subprocess.run(["tc", "-n", ns, "qdisc", "del", "dev", "lo", "root"], capture_output=True, timeout=10)
        log.info("netem qdisc %s", "available" if _netem else "not in this kernel: the userspace stage delays")
    return _netem
