"""Device simulators: a pseudo-terminal that behaves like the device a profile describes.

``gridbus device-sim PROFILE`` opens a pty pair, prints the path to give the
translator's ``--port`` (a stable symlink, like ``/dev/serial/by-id/...``), and
answers on the device's protocol from the same profile the translator uses:
commands change the device model (a drive ramps its speed, a load follows its
power reference), out-of-range values are rejected the device's way, and
status queries report the model.  Lines on stdin inject faults:

    silent S     answer nothing for S seconds (timeouts)
    garbage      answer the next request with garbage
    corrupt      answer the next request with a bad CRC / checksum
    unplug S     the port disappears for S seconds, then comes back at the same path
    power S      the device is off for S seconds: the port disappears and the device comes
                 back with its power-on settings (it forgot every command)
    reboot S     the drive restarts: silent for S seconds (the port stays), then back with its
                 power-on settings
    fault on [CODE] | off   the device trips with fault code CODE (default 1): a drive stops and
                 stays faulted until a reset command (or ``fault off``)
    @UNIT LINE   (multidrop) apply LINE to one unit id only; without it a line is for all units
    writes       (Modbus) the register writes received since the last ``writes``, heartbeats aside:
                 ``writes [[unit, address, [words...]], ...]`` (what tests check the drive was sent)
    quit

The device model is in :mod:`gridbus.translators.device_model`, the protocol
responders in :mod:`gridbus.translators.responders`; this module is the pty
with a stable path and the simulator loop.
"""

from __future__ import annotations

import json
import logging
import os
import random
import select
import sys
import tempfile
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .device_model import RAMP, DeviceModel, Rejected
from .link import char_time
from .modbus_device import LineServer, line_server
from .profile import Profile
from .responders import ModbusServer, TextServer

# the device model and the protocol responders moved out; re-exported for old imports
__all__ = ["RAMP", "DeviceModel", "ModbusServer", "PtyPort", "Rejected", "Simulator", "TextServer", "run_simulator"]

log = logging.getLogger(__name__)


# -- the pseudo-terminal with a stable path -----------------------------------------------
class PtyPort:
    """A pty pair whose slave is reachable through a symlink that survives unplug/replug."""

    def __init__(self, link: str | None = None) -> None:
        self.link = Path(link) if link else Path(tempfile.mkdtemp(prefix="gridbus-sim-")) / "tty"
        self.master: int | None = None
        self.slave: int | None = None
        self.plug()

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tty.setraw(self.master)
        os.set_blocking(self.master, False)
        tmp = self.link.with_name(self.link.name + ".new")
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(os.ttyname(self.slave))
        os.replace(tmp, self.link)

    def unplug(self) -> None:
        if self.link.is_symlink():
            self.link.unlink()
        for fd in (self.master, self.slave):
            if fd is not None:
                os.close(fd)
        self.master = self.slave = None

    def close(self) -> None:
        self.unplug()


# -- the simulator loop -------------------------------------------------------------------
class Simulator:
    def __init__(
        self,
        profile: Profile,
        link: str | None = None,
        model: DeviceModel | None = None,
        trace: Callable[[dict[str, Any]], None] | None = None,
        units: list[int] | None = None,
        unit_profiles: dict[int, Profile] | None = None,
    ) -> None:
        """``units``: the unit ids played on one line (a multidrop line); ``unit_profiles``: the
        units that are another kind of drive (the rest follow ``profile``)."""
        self.profile = profile
        self.model = model or DeviceModel(profile)
        others = unit_profiles or {}
        self.models = {
            u: (self.model if i == 0 and u not in others else DeviceModel(others.get(u, profile)))
            for i, u in enumerate(units or [profile.unit])
        }
        self.server = line_server(self.models) if profile.protocol == "modbus-rtu" else TextServer(self.model)
        self.port = PtyPort(link)
        self.trace = trace
        self.buffer = b""
        self.silent_until = 0.0
        self.unplugged_until = 0.0
        self.next_reply_fault: str | None = None
        self.requests = 0

    @property
    def path(self) -> str:
        return str(self.port.link)

    def control(self, line: str) -> str:
        """Apply one fault-injection line; returns what was done (or why not)."""
        try:
            return self._control(line)
        except ValueError:
            return f"unknown control {line!r}: a number was expected"

    def _control(self, line: str) -> str:
        words = line.split()
        units = list(self.models)
        if words and words[0].startswith("@"):
            unit = int(words.pop(0)[1:])
            if unit not in self.models:
                return f"no unit {unit} here; units: {', '.join(map(str, units))}"
            units = [unit]
        if not words:
            return ""
        verb, arg = words[0], (words[1] if len(words) > 1 else "")
        if verb == "writes":
            taken = self.server.take_writes() if isinstance(self.server, (ModbusServer, LineServer)) else []
            return f"writes {json.dumps(taken)}"
        if verb == "silent":
            self.silent_until = time.monotonic() + float(arg or 1)
        elif verb in ("garbage", "corrupt"):
            self.next_reply_fault = verb
        elif verb in ("unplug", "power"):
            self.port.unplug()
            self.buffer = b""
            self.unplugged_until = time.monotonic() + float(arg or 1)
            if verb == "power":
                self._power_on(units)
        elif verb == "reboot":
            self.silent_until = time.monotonic() + float(arg or 0)
            self._power_on(units)
        elif verb == "fault":
            for unit in units:
                if arg == "off":
                    self.models[unit].values.update(fault=0.0, fault_code=0.0)
                else:
                    self.models[unit].trip(int(words[2]) if len(words) > 2 else 1)
        else:
            return f"unknown control {verb!r}"
        return f"{verb} {arg}".strip()

    def _power_on(self, units: list[int]) -> None:
        for unit in units:
            self.models[unit].power_on()
            if isinstance(self.server, (ModbusServer, LineServer)):
                self.server.power_on(unit)

    def step(self, dt: float) -> None:
        for model in self.models.values():
            model.step(dt)

    def poll(self, timeout: float) -> None:
        """Serve the line for up to ``timeout`` seconds."""
        if self.port.master is None:
            if time.monotonic() >= self.unplugged_until:
                self.port.plug()
            else:
                time.sleep(min(timeout, 0.01))
            return
        ready, _, _ = select.select([self.port.master], [], [], timeout)
        if not ready:
            return
        try:
            chunk = os.read(self.port.master, 4096)
        except (BlockingIOError, OSError):
            return
        self.buffer += chunk
        while self.buffer:
            try:
                used, reply = self.server.handle(self.buffer)
            except Exception as exc:  # a device never dies of what it hears
                log.error("device-sim: %s: %s", type(exc).__name__, exc)
                self.buffer = b""
                break
            if used == 0:
                break
            self.buffer = self.buffer[used:]
            self.requests += 1
            if self.trace:
                self.trace(
                    {"rx": time.time(), "requests": self.requests, "kind": getattr(self.server, "last_kind", "")}
                )
            if reply:
                self._reply(reply)

    def _reply(self, reply: bytes) -> None:
        if time.monotonic() < self.silent_until:
            return
        if self.next_reply_fault == "garbage":
            reply = bytes(random.randrange(256) for _ in range(7))
        elif self.next_reply_fault == "corrupt":
            reply = self.server.corrupt(reply)
        self.next_reply_fault = None
        time.sleep(len(reply) * char_time(self.profile.serial))  # the bytes' time on the line
        if self.port.master is None:  # unplugged meanwhile: lost, as on a pulled cable
            return
        try:
            os.write(self.port.master, reply)
        except OSError:
            pass


def run_simulator(
    profile: Profile,
    link: str | None = None,
    duration: float | None = None,
    trace: bool = False,
    *,
    emit: Callable[[dict[str, Any]], None],
    units: list[int] | None = None,
    unit_profiles: dict[int, Profile] | None = None,
) -> int:
    """``gridbus device-sim``: serve until stdin says quit or ``duration`` passes.

    ``emit`` gets what the simulator has to say, one dict each: first ``{"port": ...}``, then
    the reply to each control line (``{"control": ...}``) and, with ``trace``, each request.
    """
    sim = Simulator(profile, link, trace=emit if trace else None, units=units, unit_profiles=unit_profiles)
    emit({"port": sim.path, "profile": profile.name, "protocol": profile.protocol, "units": list(sim.models)})
    start = last = time.monotonic()
    stdin_open = True
    try:
        while duration is None or time.monotonic() - start < duration:
            if stdin_open:
                ready, _, _ = select.select([sys.stdin], [], [], 0)
                if ready:
                    line = sys.stdin.readline()
                    if not line:
                        stdin_open = False  # no controller attached: keep serving
                        continue
                    if line.strip() == "quit":
                        break
                    emit({"control": sim.control(line.strip())})
            sim.poll(0.002)
            now = time.monotonic()
            sim.step(now - last)
            last = now
    finally:
        sim.port.close()
    return 0
