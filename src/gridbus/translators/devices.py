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
    fault on|off the device reports a fault (a drive stops)
    quit
"""

from __future__ import annotations

import logging
import os
import random
import select
import sys
import tempfile
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..extras import require
from .link import char_time
from .profile import Profile
from .protocols import parse_number, xor_checksum

RAMP = 30.0  # Hz/s, the simulated drive's acceleration and deceleration
log = logging.getLogger(__name__)


class Rejected(Exception):
    """The device refuses a command (value out of range, unknown command)."""


# -- the device model ---------------------------------------------------------------------
@dataclass
class DeviceModel:
    """What the device does, in bus units: a drive or a load."""

    profile: Profile
    values: dict[str, float] = field(default_factory=dict)
    on_command: Callable[[str, float | None], None] | None = None  # the testbed hooks its plant here
    read_values: Callable[[], dict[str, float]] | None = None

    def __post_init__(self) -> None:
        self.power_on()

    def power_on(self) -> None:
        """The settings a device has after power-up (a drive stopped, references at defaults)."""
        self.values = {
            "running": 0.0,
            "fault": 0.0,
            "f": 0.0,
            "speed": 0.0,
            "P": 0.0,
            "Q": 0.0,
            "f_ref": 60.0,
            "P_ref": 0.0,
            "Q_ref": 0.0,
            "V": 120.0,
        }

    def command(self, name: str, value: float | None) -> None:
        spec = self.profile.commands.get(name)
        if spec is None:
            raise Rejected(f"unknown command {name}")
        if value is not None and not (spec.min <= value <= spec.max):
            raise Rejected(f"{name}={value:g} out of range {spec.min:g}..{spec.max:g}")
        if self.on_command is not None:
            self.on_command(name, value)
            return
        if name == "start":
            if self.values["fault"]:
                raise Rejected("device in fault")
            self.values["running"] = 1.0
        elif name == "stop":
            self.values["running"] = 0.0
        elif value is None:
            self.values["running"] = 1.0  # a value-less step such as "INP ON"
        else:
            self.values[name] = float(value)

    def step(self, dt: float) -> None:
        v = self.values
        if self.profile.kind == "drive":
            target = v["f_ref"] if v["running"] and not v["fault"] else 0.0
            v["f"] += max(-RAMP * dt, min(RAMP * dt, target - v["f"]))
            v["speed"] = 30.0 * v["f"]
            v["P"] = v["P_ref"] if v["running"] and v["f"] > 0.9 * v["f_ref"] else 0.0
        else:
            v["P"] = v["P_ref"] if v["running"] else 0.0
            v["Q"] = v["Q_ref"] if v["running"] else 0.0

    def status(self, name: str) -> float:
        values = self.read_values() if self.read_values is not None else self.values
        return float(values.get(name, 0.0))


# -- protocol servers ---------------------------------------------------------------------
class ModbusServer:
    def __init__(self, model: DeviceModel) -> None:
        require("pymodbus", "a Modbus RTU device")  # the serial extra; imported here, where it is used
        from pymodbus.framer import FramerRTU
        from pymodbus.pdu import DecodePDU

        self.model, self.profile = model, model.profile
        self.framer = FramerRTU(DecodePDU(True))
        registers = self.profile.status_registers()
        self.status_area = (registers[0], registers[-1])

    def handle(self, buffer: bytes) -> tuple[int, bytes | None]:
        """(bytes used, reply) for the buffer received so far; (0, None) = wait for more."""
        used, pdu = self.framer.handleFrame(buffer, 0, 0)
        if pdu is None:
            return used, None
        if pdu.dev_id != self.profile.unit:
            return used, b""  # another device's request: stay silent
        return used, self.framer.buildFrame(self._answer(pdu))

    def _answer(self, pdu: Any) -> Any:  # pymodbus's PDUs carry no types
        from pymodbus.pdu import ExceptionResponse
        from pymodbus.pdu.register_message import (
            ReadHoldingRegistersRequest,
            ReadHoldingRegistersResponse,
            WriteSingleRegisterRequest,
            WriteSingleRegisterResponse,
        )

        unit = self.profile.unit
        self.last_kind = "query" if isinstance(pdu, ReadHoldingRegistersRequest) else "command"
        if isinstance(pdu, ReadHoldingRegistersRequest):
            span = range(pdu.address, pdu.address + pdu.count)
            if not 1 <= pdu.count <= 125:  # the Modbus limit of one read
                return ExceptionResponse(pdu.function_code, 3, device_id=unit)
            if not (self.status_area[0] <= span.start and span.stop - 1 <= self.status_area[1]):
                return ExceptionResponse(pdu.function_code, 2, device_id=unit)
            words = {r: 0 for r in span}
            for name, item in self.profile.status.items():
                if item.register not in words:
                    continue  # another block's register
                value = self.model.status(name)
                if item.bit is not None:
                    words[item.register] |= (1 if value else 0) << item.bit
                else:
                    words[item.register] = int(round(value * item.scale)) & 0xFFFF
            return ReadHoldingRegistersResponse(registers=[words[r] for r in span], dev_id=unit)
        if isinstance(pdu, WriteSingleRegisterRequest):
            word = pdu.registers[0]
            matches = [
                c
                for c in self.profile.commands.values()
                if c.register == pdu.address and (c.value is None or c.value == word)
            ]
            if not matches:
                return ExceptionResponse(
                    pdu.function_code,
                    2 if all(c.register != pdu.address for c in self.profile.commands.values()) else 3,
                    device_id=unit,
                )
            spec = matches[0]
            try:
                signed = word - 0x10000 if spec.min < 0 and word >= 0x8000 else word
                self.model.command(spec.name, None if spec.value is not None else signed / spec.scale)
            except Rejected:
                return ExceptionResponse(pdu.function_code, 3, device_id=unit)
            return WriteSingleRegisterResponse(address=pdu.address, registers=[word], dev_id=unit)
        return ExceptionResponse(pdu.function_code, 1, device_id=unit)

    def corrupt(self, reply: bytes) -> bytes:
        return reply[:-1] + bytes([reply[-1] ^ 0xFF])


class TextServer:
    def __init__(self, model: DeviceModel) -> None:
        self.model, self.profile = model, model.profile
        self.terminator = self.profile.terminator.encode()
        self.errors: list[str] = []

    def handle(self, buffer: bytes) -> tuple[int, bytes | None]:
        end = buffer.find(self.terminator)
        if end < 0:
            return 0, None
        line, used = buffer[:end], end + len(self.terminator)
        if self.profile.checksum == "xor":
            payload, star, check = line.rpartition(b"*")
            if not star or xor_checksum(payload) != check.decode(errors="replace").upper():
                return used, self._frame("ERR 2 checksum")
            line = payload
        answer = self._answer(line.decode(errors="replace").strip())
        return used, (b"" if answer is None else self._frame(answer))

    def _frame(self, text: str) -> bytes:
        data = text.encode()
        if self.profile.checksum == "xor":
            data += b"*" + xor_checksum(data).encode()
        return data + self.terminator

    def _answer(self, text: str) -> str | None:
        scpi = self.profile.protocol == "scpi"
        self.last_kind = "query" if text.endswith("?") else "command"
        if scpi and self.profile.error_query and text == self.profile.error_query:
            return self.errors.pop(0) if self.errors else '0,"No error"'
        for name, item in self.profile.status.items():
            if text == item.query:
                value = self.model.status(name) * item.scale
                return f"{value:.3f}"
        for name, spec in self.profile.commands.items():
            for template in spec.send:
                number = _match(template, text)
                if number is False:
                    continue
                try:
                    self.model.command(name, None if number is None else number / spec.scale)
                except Rejected as exc:
                    if scpi:
                        self.errors.append(f'-222,"Data out of range; {exc}"')
                        return None
                    return f"ERR 3 {exc}"
                return None if scpi else "OK"
        if scpi:
            self.errors.append('-113,"Undefined header"')
            return None
        return "ERR 1 unknown command"

    def corrupt(self, reply: bytes) -> bytes:
        body = reply[: -len(self.terminator)]
        return body[:-1] + (b"0" if body[-1:] != b"0" else b"1") + self.terminator


def _match(template: str, text: str) -> float | None | bool:
    """The number a command line carries if it fits ``template`` (None: no number; False: no fit)."""
    if "{" not in template:
        return None if text == template else False
    head = template.split("{", 1)[0]
    tail = template.rsplit("}", 1)[1]
    if not (text.startswith(head) and text.endswith(tail)) or len(text) <= len(head) + len(tail):
        return False
    try:
        return parse_number(text[len(head) : len(text) - len(tail) if tail else None])
    except Exception:
        return False


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
    ) -> None:
        self.profile = profile
        self.model = model or DeviceModel(profile)
        self.server = ModbusServer(self.model) if profile.protocol == "modbus-rtu" else TextServer(self.model)
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
        """Apply one fault-injection line; returns what was done."""
        words = line.split()
        if not words:
            return ""
        verb, arg = words[0], (words[1] if len(words) > 1 else "")
        if verb == "silent":
            self.silent_until = time.monotonic() + float(arg or 1)
        elif verb in ("garbage", "corrupt"):
            self.next_reply_fault = verb
        elif verb in ("unplug", "power"):
            self.port.unplug()
            self.buffer = b""
            self.unplugged_until = time.monotonic() + float(arg or 1)
            if verb == "power":
                self.model.power_on()
        elif verb == "fault":
            self.model.values["fault"] = 1.0 if arg != "off" else 0.0
            if arg != "off":
                self.model.values["running"] = 0.0
        else:
            return f"unknown control {verb!r}"
        return f"{verb} {arg}".strip()

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
) -> int:
    """``gridbus device-sim``: serve until stdin says quit or ``duration`` passes.

    ``emit`` gets what the simulator has to say, one dict each: first ``{"port": ...}``, then
    the reply to each control line (``{"control": ...}``) and, with ``trace``, each request.
    """
    sim = Simulator(profile, link, trace=emit if trace else None)
    emit({"port": sim.path, "profile": profile.name, "protocol": profile.protocol})
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
            sim.model.step(now - last)
            last = now
    finally:
        sim.port.close()
    return 0
